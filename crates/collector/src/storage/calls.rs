//! Calls in storage: the types the calls service and the admin API read,
//! and [`CallStore`], the persistence of calls beside [`super::Storage`].
//!
//! Recording an event is one atomic step in the backend: store the event
//! (once), refold the call from all its events, attribute it, and rewrite
//! its candidates and credits. The decisions are `ringsource_core`'s
//! ([`ringsource_core::call::Call::fold`], [`ringsource_core::attribution`]);
//! the backend only gathers their inputs and stores their outputs.

use ringsource_core::call::{CallEvent, CallStatus};
use ringsource_core::promo::PromoCode;
use serde::Serialize;

use super::StorageError;
use crate::clock::Clock;
use crate::config::Site;
use crate::pbx::Delivery;

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The PBX call id is already a call of another site: the same PBX
    /// account must not report one call to two sites.
    #[error("call {pbx}/{pbx_call_id} belongs to site {owner:?}, not {site:?}")]
    OtherSite { pbx: String, pbx_call_id: String, owner: String, site: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What recording one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub call_id: i64,
    /// The call did not exist before this event.
    pub created: bool,
    /// `false` when the same event, or a delivery with the same id, had
    /// been recorded before (a retried delivery): nothing changed.
    pub new_event: bool,
}

/// `status=` filter of the call list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Is(CallStatus),
    /// Any missed status (no-answer, busy, canceled, failed).
    Missed,
}

/// Filters of `GET /v1/calls` and the CSV export. Times are Unix ms,
/// `[from, to)` on ring time.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub site: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Matched against the call's headline touch, ignoring ASCII case.
    pub channel: Option<String>,
    pub source: Option<String>,
    pub campaign: Option<String>,
    pub status: Option<StatusFilter>,
    pub target: Option<bool>,
    /// Only calls a manager tagged so (`call_notes::tag` form).
    pub tag: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One call as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    pub id: i64,
    pub site: String,
    pub pbx: String,
    pub pbx_call_id: String,
    pub caller: Option<String>,
    pub dialled: String,
    /// `pool`, `static`, `overflow`, `original` or `unknown`.
    pub number_kind: String,
    pub pool_id: Option<String>,
    pub static_label: Option<String>,
    pub ring_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub duration_secs: Option<i64>,
    pub talk_secs: Option<i64>,
    pub status: String,
    pub target: bool,
    pub missed: bool,
    /// `first-time`, `repeat` or `anonymous`.
    pub caller_kind: String,
    pub recording_url: Option<String>,
    pub session_id: Option<String>,
    pub confidence: String,
    pub reason: String,
    pub model: String,
    pub promo_code: Option<String>,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub term: Option<String>,
}

/// A session attribution considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateView {
    pub session_id: String,
    /// `live`, `grace`, `expired`, `promo` or `caller-history`.
    pub relation: String,
    pub held_from_ms: Option<i64>,
    pub held_until_ms: Option<i64>,
    pub chosen: bool,
}

/// One share of the call's credit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditView {
    pub share: f64,
    pub at_ms: Option<i64>,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionView {
    pub model: String,
    pub confidence: String,
    pub reason: String,
    pub chosen_session_id: Option<String>,
    pub candidates: Vec<CandidateView>,
    pub credits: Vec<CreditView>,
}

/// A touch on the visitor's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TouchView {
    pub session_id: String,
    pub at_ms: i64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    pub click_id_kind: Option<String>,
    pub click_id: Option<String>,
    pub landing_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageViewView {
    pub session_id: String,
    pub at_ms: i64,
    pub url: String,
    pub title: Option<String>,
}

/// The visitor behind a session: their touches and page views across the
/// sessions that share the analytics client id, up to the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitorPath {
    pub session_id: String,
    pub client_id: Option<String>,
    pub ym_uid: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// The first page of the session.
    pub landing_page: Option<String>,
    /// The search term of the session's latest touch that has one.
    pub keyword: Option<String>,
    pub touches: Vec<TouchView>,
    pub page_views: Vec<PageViewView>,
}

/// A raw event as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub received_at_ms: i64,
    pub event: serde_json::Value,
}

/// `GET /v1/calls/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: CallSummary,
    pub attribution: AttributionView,
    pub visitor: Option<VisitorPath>,
    pub events: Vec<StoredEvent>,
}

/// What reports group calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Channel,
    Source,
    Medium,
    Campaign,
    Term,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "channel" => GroupBy::Channel,
            "source" => GroupBy::Source,
            "medium" => GroupBy::Medium,
            "campaign" => GroupBy::Campaign,
            "term" => GroupBy::Term,
            _ => return None,
        })
    }
    /// The `call_credits` column (a fixed identifier, never user text).
    pub const fn column(self) -> &'static str {
        match self {
            GroupBy::Channel => "channel",
            GroupBy::Source => "source",
            GroupBy::Medium => "medium",
            GroupBy::Campaign => "campaign",
            GroupBy::Term => "term",
        }
    }
}

/// `GET /v1/reports/calls`, per day of the site's time zone.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    /// The site, for its id, its time zone (report days) and its static
    /// numbers (the channel of their cost rows).
    pub site: std::sync::Arc<Site>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub group_by: GroupBy,
    /// Only calls a manager tagged so; cost stays the groups' whole cost.
    pub tag: Option<String>,
}

/// One group on one day. Counts are credit sums: fractional under the
/// linear model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// `YYYY-MM-DD`, a day of the site's time zone.
    pub day: String,
    pub group: String,
    pub calls: f64,
    pub target_calls: f64,
    pub missed_calls: f64,
    pub first_time_callers: f64,
    /// Revenue of the calls, split by the same credit shares as the calls.
    pub revenue: f64,
    /// Advertising cost of the group that day; `null` for `group_by=term`
    /// (cost is uploaded per source/medium/campaign, not per keyword).
    pub cost: Option<f64>,
    /// `cost / target_calls`; `null` without target calls or without cost.
    pub cost_per_target_call: Option<f64>,
    /// `(revenue - cost) / cost`; `null` when the cost is 0 or unknown.
    pub roi: Option<f64>,
}

impl ReportRow {
    /// Fills the ratios from the sums.
    pub fn with_ratios(mut self) -> Self {
        self.cost_per_target_call = self.cost.filter(|_| self.target_calls > 0.0).map(|c| c / self.target_calls);
        self.roi = self.cost.filter(|c| *c > 0.0).map(|c| (self.revenue - c) / c);
        self
    }
}

/// `GET /v1/promo/{code}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromoLookup {
    pub code: String,
    pub site: String,
    pub session_id: String,
    pub issued_at_ms: i64,
    pub reserved_until_ms: i64,
    /// Still reserved for its session (not reissued since).
    pub live: bool,
    pub visitor: VisitorPath,
}

/// The persistence of calls.
pub trait CallStore: Send + Sync + 'static {
    /// Stores the event once, refolds and (re)attributes its call, in one
    /// write transaction. With a `delivery`, its id is stored in the same
    /// transaction, and a delivery whose id is stored already changes
    /// nothing (`new_event: false`): a retry is only ever told "duplicate"
    /// once the first delivery's event is stored.
    fn record_call_event(
        &self,
        site: &Site,
        delivery: Option<&Delivery>,
        event: &CallEvent,
        clock: &dyn Clock,
    ) -> Result<Recorded, RecordError>;
    /// Calls matching the filter, newest ring first, and how many match in all.
    fn list_calls(&self, filter: &CallFilter) -> Result<(Vec<CallSummary>, u64), StorageError>;
    /// The site a call belongs to.
    fn call_site(&self, id: i64) -> Result<Option<String>, StorageError>;
    fn call(&self, id: i64) -> Result<Option<CallDetail>, StorageError>;
    fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, StorageError>;
    /// The latest issue of `code` on the site.
    fn promo_lookup(&self, site: &str, code: &PromoCode) -> Result<Option<PromoLookup>, StorageError>;
    /// Attributes the call to the session the code was issued to (the
    /// latest issue of the code before the call rang, else the latest).
    /// `Ok(None)` when the code was never issued on the call's site.
    fn attach_promo(
        &self,
        site: &Site,
        call_id: i64,
        code: &PromoCode,
        clock: &dyn Clock,
    ) -> Result<Option<()>, StorageError>;
}
