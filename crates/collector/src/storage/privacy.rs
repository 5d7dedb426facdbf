//! Personal data in storage: retention (what is dropped or reduced after
//! how long), erasure and export of everything tied to one caller, and
//! backups. The service in [`crate::services::privacy`] turns the configuration and a
//! typed-in phone number into the inputs here.
//!
//! What the schema holds about a person, and what becomes of it:
//!
//! | table | personal fields | retention | erasure |
//! |---|---|---|---|
//! | `sessions` | `client_id` (GA), `ym_uid` (Yandex), `user_agent`, `asked_pools` | removed `visits_days` after last seen unless a call names it; `user_agent` emptied after `user_agent_days` | the caller's sessions |
//! | `touches` | `click_id`, `term`, `landing_path`, `referrer_host`, campaign tags | with their session | with their session |
//! | `page_views` | `url`, `title` | after `page_views_days` | with their session |
//! | `leases`, `promo_codes` | the session they name | with their session | with their session |
//! | `pool_exhaustions`, `pool_first_asks` | none: counts per pool and minute, naming no session or address | after `visits_days`, as the leases beside them | nothing to remove |
//! | `calls` | `caller`, `caller_key`, `recording_url` | kept; the caller masked after `caller_days` when set | removed |
//! | `call_events` | `event_json` (`from`, `recording_url`) | masked with the call | removed |
//! | `call_candidates`, `call_credits` | the sessions considered | kept with the call | removed |
//! | `revenue` | `deal_id`, amount | kept with the call | removed |
//! | `outbox` | `payload` (CRM: the call and the visitor; GA4: the client id) | sent and skipped rows after `exports_days`; the caller masked with the call | removed, whatever their status |
//!
//! IP addresses are never written to the database: the rate limiter keeps
//! them in memory only.

use serde::Serialize;

use super::StorageError;
use super::calls::{CallDetail, PageViewView, TouchView};
use crate::clock::Clock;

/// When each kind of personal data of one site expires, as instants (Unix
/// ms): rows older than these go. `None` keeps that kind for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCutoffs {
    pub site: String,
    /// Sessions last seen before this, that no call names, go with their
    /// touches, page views, leases and promo codes. Already moved back by the
    /// longest a lease or promo code of a session can outlive its last visit,
    /// so none of theirs is still live.
    pub sessions_before_ms: i64,
    /// Leases that ended, promo codes whose reservation ended, and the
    /// minutes of pool counts, before this.
    pub session_rows_before_ms: i64,
    pub page_views_before_ms: i64,
    /// Sessions created before this have their User-Agent emptied.
    pub user_agents_before_ms: i64,
    /// Calls that rang before this have their caller masked.
    pub callers_before_ms: Option<i64>,
    /// Sent and skipped exports last updated before this go.
    pub exports_before_ms: i64,
}

/// What one retention pass did on one site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub site: String,
    /// Sessions removed (with their touches and page views).
    pub sessions: u64,
    pub touches: u64,
    /// Page views removed, with their sessions or for their age.
    pub page_views: u64,
    pub leases: u64,
    pub promo_codes: u64,
    /// Rows of pool refusal and first-ask counts (one per pool, minute and
    /// kind) whose minute was over before the cutoff.
    pub pool_counts: u64,
    pub user_agents_reduced: u64,
    pub callers_masked: u64,
    pub exports: u64,
}

impl RetentionReport {
    pub fn is_empty(&self) -> bool {
        self == &RetentionReport { site: self.site.clone(), ..RetentionReport::default() }
    }
}

/// Who a privacy request is about: one caller of one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub site: String,
    /// The caller key calls are stored under (E.164).
    pub caller_key: String,
}

/// What an erasure removed.
/// What removing sessions took with them, as both adapters count it.
#[derive(Debug, Default)]
pub struct SessionRows {
    pub sessions: u64,
    pub touches: u64,
    pub page_views: u64,
    pub leases: u64,
    pub promo_codes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub calls: u64,
    pub call_events: u64,
    pub revenue: u64,
    /// Outbox rows of those calls, whatever their status.
    pub exports: u64,
    /// Of `exports`, the ones that were still to be delivered.
    pub pending_exports: u64,
    pub sessions: u64,
    pub touches: u64,
    pub page_views: u64,
    pub leases: u64,
    pub promo_codes: u64,
    /// Other people's calls listed one of the caller's sessions as a
    /// candidate they did not choose; those candidate rows are removed.
    pub other_calls_candidates: u64,
    /// Sessions of this caller that another caller's call was attributed to
    /// (the same browser, another phone): kept, as that call's attribution.
    pub sessions_kept: Vec<String>,
}

impl Erased {
    /// The sessions removed with what they took, and the ones kept.
    pub fn count_sessions(&mut self, rows: &SessionRows, kept: Vec<String>) {
        self.sessions = rows.sessions;
        self.touches = rows.touches;
        self.page_views = rows.page_views;
        self.leases = rows.leases;
        self.promo_codes = rows.promo_codes;
        self.sessions_kept = kept;
    }
}

/// One lease of a number to the person's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeaseView {
    #[schema(value_type = ringsource_core::phone::PhoneNumber)]
    pub number: String,
    pub pool_id: String,
    pub started_at_ms: i64,
    pub expires_at_ms: i64,
    pub ended_at_ms: Option<i64>,
}

/// A promo code issued to the person's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PromoCodeView {
    #[schema(value_type = ringsource_core::promo::PromoCode)]
    pub code: String,
    pub issued_at_ms: i64,
    pub reserved_until_ms: i64,
}

/// One browsing session of the person, in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SessionExport {
    pub id: String,
    pub client_id: Option<String>,
    pub ym_uid: Option<String>,
    /// Empty once the site's `user_agent_days` have passed.
    pub user_agent: String,
    pub is_bot: bool,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    /// The pools the session asked for a number.
    pub asked_pools: Vec<String>,
    pub touches: Vec<TouchView>,
    pub page_views: Vec<PageViewView>,
    pub leases: Vec<LeaseView>,
    pub promo_codes: Vec<PromoCodeView>,
}

/// Revenue posted for one of the person's calls.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RevenueView {
    pub id: i64,
    pub amount: f64,
    pub currency: Option<String>,
    pub deal_id: Option<String>,
    pub at_ms: i64,
    pub received_at_ms: i64,
}

/// An export of one of the person's calls.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    pub id: i64,
    #[schema(value_type = crate::storage::money::ExportKind)]
    pub kind: String,
    #[schema(value_type = crate::storage::money::ExportStatus)]
    pub status: String,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
    pub payload: serde_json::Value,
}

/// One call of the person with everything stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallExport {
    #[serde(flatten)]
    pub detail: CallDetail,
    pub revenue: Vec<RevenueView>,
    pub exports: Vec<ExportView>,
}

/// Everything one site holds about one caller: what erasure would remove.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SubjectExport {
    pub site: String,
    #[schema(value_type = ringsource_core::phone::PhoneNumber)]
    pub phone: String,
    pub calls: Vec<CallExport>,
    /// The sessions the calls were attributed to, and the other sessions of
    /// the same browser (the analytics client id), in full.
    pub sessions: Vec<SessionExport>,
}

/// Retention, erasure and export.
pub trait PrivacyStore: Send + Sync + 'static {
    /// Drops and reduces what is past its time on one site. Works in small
    /// transactions, so visits wait for none of them for long.
    fn apply_retention(&self, cutoffs: &RetentionCutoffs, clock: &dyn Clock) -> Result<RetentionReport, StorageError>;
    /// Removes the subject's calls with all that hangs on them, and their
    /// sessions, in one transaction.
    fn erase(&self, subject: &Subject) -> Result<Erased, StorageError>;
    /// What [`Self::erase`] would remove, in full.
    fn export(&self, subject: &Subject) -> Result<SubjectExport, StorageError>;
}
