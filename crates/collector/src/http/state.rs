//! The one state every handler shares, built once per server by
//! [`crate::server`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{ForwardedHeader, Site};
use crate::http::error::ApiError;
use crate::http::ratelimit::RateLimiter;
use crate::services::auth::UserStore;
use crate::services::auth::throttle::Throttle;
use crate::services::call_notes::NotesStore;
use crate::services::calls::{CallSink, CallsService};
use crate::services::exports::ExportsService;
use crate::services::health::Health;
use crate::services::money::MoneyService;
use crate::services::pools::PoolsService;
use crate::services::privacy::PrivacyService;
use crate::services::recordings::RecordingStore;
use crate::services::visitor_facts::VisitorFacts;
use crate::services::visits::VisitsService;

pub struct AppState {
    pub sites: Arc<HashMap<String, Arc<Site>>>,
    pub clock: Arc<dyn Clock>,
    /// `None`: no token configured, every admin request is refused.
    pub admin_token: Option<String>,
    pub visits: VisitsService,
    pub calls: Arc<CallsService>,
    /// Where verified PBX events go (the calls service, or a test's sink);
    /// without one, reports are verified and then refused with 500.
    pub call_sink: Option<Arc<dyn CallSink>>,
    pub money: MoneyService,
    pub exports: ExportsService,
    pub pools: PoolsService,
    pub privacy: Arc<PrivacyService>,
    /// Per client: visits, and heartbeats with page views.
    pub visit_limiter: RateLimiter,
    pub session_limiter: RateLimiter,
    /// The header a trusted proxy appends the client to; `None` trusts no
    /// forwarded header (see [`crate::http::client_addr`]).
    pub forwarded: Option<ForwardedHeader>,
    /// Dashboard users and their sessions (the guard and the users API).
    pub users: Arc<dyn UserStore>,
    /// Sign-in attempts per client address and per user name.
    pub login_by_address: Throttle,
    pub login_by_name: Throttle,
    /// Managers' tags and notes on calls.
    pub notes: Arc<dyn NotesStore>,
    /// What the recording route reads of a call, and the client it fetches
    /// recordings from the PBXs with.
    pub recordings: Arc<dyn RecordingStore>,
    pub recordings_client: reqwest::Client,
    /// A new visitor's place and device, and the stored ones for the calls API.
    pub visitor_facts: Arc<VisitorFacts>,
    /// Readiness, and whether the server is stopping (see [`crate::server`]).
    pub health: Arc<Health>,
}

impl AppState {
    pub fn site(&self, id: &str) -> Result<Arc<Site>, ApiError> {
        self.sites.get(id).cloned().ok_or_else(|| ApiError::unknown_site(id))
    }
}
