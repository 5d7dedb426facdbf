//! Calls in storage: the types the calls service and the admin API read,
//! and [`CallStore`], the persistence of calls beside [`super::Storage`].
//!
//! Recording an event is one atomic step in the backend: store the event
//! (once), refold the call from all its events, attribute it, and rewrite
//! its candidates and credits. The decisions are `ringsource_core`'s
//! ([`ringsource_core::call::Call::fold`], [`ringsource_core::attribution`]);
//! the backend only gathers their inputs and stores their outputs.

use ringsource_core::attribution::{CallerKind, Candidate, Confidence, DialledKind, Model, Relation, Tenure};
use ringsource_core::call::{Call, CallEvent, CallStatus};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::promo::PromoCode;
use ringsource_core::touch::Touch;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::StorageError;
use crate::clock::Clock;
use crate::config::Site;
use crate::exports::ExportKind;
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

/// One call as listed, folded from its PBX events and attributed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallSummary {
    pub id: i64,
    pub site: String,
    pub pbx: String,
    pub pbx_call_id: String,
    /// The caller as the PBX gave it.
    pub caller: Option<String>,
    #[schema(value_type = ringsource_core::phone::PhoneNumber)]
    pub dialled: String,
    /// What the dialled number is to the site.
    pub number_kind: DialledKind,
    pub pool_id: Option<String>,
    pub static_label: Option<String>,
    pub ring_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub duration_secs: Option<i64>,
    pub talk_secs: Option<i64>,
    /// The PBX's status; missed calls keep it.
    pub status: CallStatus,
    /// Answered and talked at least the site's `target_call_secs`.
    pub target: bool,
    pub missed: bool,
    /// Within the site's `uniqueness_window_days`.
    pub caller_kind: CallerKind,
    pub recording_url: Option<String>,
    /// The session the call is attributed to (none for static and
    /// unattributed calls).
    pub session_id: Option<String>,
    pub confidence: Confidence,
    /// Why, in words.
    pub reason: String,
    pub model: Model,
    /// A promo code the manager named.
    pub promo_code: Option<String>,
    /// The headline touch: the model's touch (linear: the last non-direct
    /// one); `(unattributed)` when nothing matched.
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub term: Option<String>,
}

/// A session attribution considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CandidateView {
    pub session_id: String,
    pub relation: Relation,
    pub held_from_ms: Option<i64>,
    pub held_until_ms: Option<i64>,
    pub chosen: bool,
}

/// One share of the call's credit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]

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

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttributionView {
    pub model: Model,
    pub confidence: Confidence,
    pub reason: String,
    pub chosen_session_id: Option<String>,
    pub candidates: Vec<CandidateView>,
    /// Shares sum to 1.
    pub credits: Vec<CreditView>,
}

/// A touch on the visitor's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]

pub struct TouchView {
    pub session_id: String,
    pub at_ms: i64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    #[schema(value_type = Option<ringsource_core::visit::ClickIdKind>)]
    pub click_id_kind: Option<String>,
    pub click_id: Option<String>,
    pub landing_path: String,
}

/// A page the visitor saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PageViewView {
    pub session_id: String,
    pub at_ms: i64,
    pub url: String,
    pub title: Option<String>,
}

/// The visitor behind a session: their touches and page views across the
/// sessions that share the analytics client id, up to the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]

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

/// A PBX event as received, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredEvent {
    pub received_at_ms: i64,
    #[schema(value_type = ringsource_core::call::CallEvent)]
    pub event: serde_json::Value,
}

/// `GET /v1/calls/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]

pub struct CallDetail {
    #[serde(flatten)]
    pub call: CallSummary,
    pub attribution: AttributionView,
    pub visitor: Option<VisitorPath>,
    /// The normalised PBX events as received.
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
    pub const ALL: [GroupBy; 5] =
        [GroupBy::Channel, GroupBy::Source, GroupBy::Medium, GroupBy::Campaign, GroupBy::Term];

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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReportRow {
    /// `YYYY-MM-DD`, a day of the site's time zone.
    #[schema(format = Date)]
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

/// A report's rows with its cost added: cost on a day and group without
/// calls is a row too, as money spent for nothing is what the report is for.
/// `costs` is `None` for a grouping that carries no cost (terms).
pub fn report_with_costs(rows: Vec<ReportRow>, costs: Option<Vec<(String, String, f64)>>) -> Vec<ReportRow> {
    let mut merged: std::collections::BTreeMap<(String, String), ReportRow> =
        rows.into_iter().map(|r| ((r.day.clone(), r.group.clone()), r)).collect();
    for (day, group, cost) in costs.into_iter().flatten() {
        let row = merged.entry((day.clone(), group.clone())).or_insert_with(|| ReportRow {
            day,
            group,
            calls: 0.0,
            target_calls: 0.0,
            missed_calls: 0.0,
            first_time_callers: 0.0,
            revenue: 0.0,
            cost: Some(0.0),
            cost_per_target_call: None,
            roi: None,
        });
        row.cost = Some(row.cost.unwrap_or(0.0) + cost);
    }
    merged.into_values().map(ReportRow::with_ratios).collect()
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PromoLookup {
    #[schema(value_type = ringsource_core::promo::PromoCode)]
    pub code: String,
    pub site: String,
    pub session_id: String,
    pub issued_at_ms: i64,
    pub reserved_until_ms: i64,
    /// Still reserved for its session (not reissued since).
    pub live: bool,
    pub visitor: VisitorPath,
}

// ------------------------------------------------ the recording workflow

/// The key repeat callers are found by: E.164 when the caller parses as an
/// international number, else its digits when there are enough to be a
/// number, else none (anonymous, an extension).
pub fn caller_key(from: Option<&str>) -> Option<String> {
    let from = from?.trim();
    if let Ok(n) = PhoneNumber::parse(from) {
        return Some(n.e164());
    }
    let digits: String = from.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 5).then_some(digits)
}

/// A dialled number as the site's numbers are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRole {
    pub kind: DialledKind,
    pub pool_id: Option<String>,
    pub label: Option<String>,
}

/// What a stored call carries beside its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallState {
    pub first_heard_at_ms: i64,
    /// The promo code a manager named, and the session it was issued to.
    pub promo_code: Option<String>,
    pub promo_session: Option<String>,
}

/// A call's attribution as the calls service decided it: every column of
/// the call it rewrites, with its candidates and credit shares.
#[derive(Debug, Clone)]
pub struct CallAttribution {
    /// The call folded from all its events.
    pub call: Call,
    pub caller_key: Option<String>,
    pub number_kind: DialledKind,
    pub pool_id: Option<String>,
    pub static_label: Option<String>,
    pub ring_at_ms: i64,
    pub is_target: bool,
    pub is_missed: bool,
    pub session_id: Option<String>,
    pub confidence: Confidence,
    pub reason: String,
    pub model: Model,
    pub candidates: Vec<Candidate>,
    pub credits: Vec<CreditView>,
    /// The touch the call is listed under (list filters match it).
    pub headline: CreditView,
}

/// The reads and writes of recording one call event, all inside the
/// backend's transaction that stores the event: the calls service's
/// workflow ([`CallWorkflow`]) runs on them, so a backend implements data
/// access only. A backend serialises the recordings of one call (SQLite: one
/// writer; PostgreSQL: the call row locked `FOR UPDATE`).
pub trait CallFacts {
    /// The call's events, in the order they were stored.
    fn events(&mut self, call_id: i64) -> Result<Vec<CallEvent>, StorageError>;
    fn state(&mut self, call_id: i64) -> Result<CallState, StorageError>;
    /// What `number` is to the site; `None` when it is none of its numbers.
    fn number_role(&mut self, site_id: &str, number: &str) -> Result<Option<NumberRole>, StorageError>;
    /// The leases of pool number `number` that started by `ring_at_ms`, newest first.
    fn tenures(&mut self, number: &str, ring_at_ms: i64) -> Result<Vec<Tenure>, StorageError>;
    /// The session of this caller's latest earlier call attributed with
    /// high or medium confidence within `window_ms` before `ring_at_ms`.
    fn caller_prior(
        &mut self,
        site_id: &str,
        caller_key: &str,
        call_id: i64,
        ring_at_ms: i64,
        window_ms: i64,
    ) -> Result<Option<String>, StorageError>;
    /// The touches of the visitor behind `session_id` (its sessions joined
    /// by analytics client id) recorded by `until_ms`, as core's path orders them.
    fn visitor_touches(&mut self, session_id: &str, until_ms: i64) -> Result<Vec<Touch>, StorageError>;
    /// `(call id, ring time)` of every call of this caller on the site, in ring order.
    fn caller_calls(&mut self, site_id: &str, caller_key: &str) -> Result<Vec<(i64, i64)>, StorageError>;
    /// Rewrites the call, its candidates and its credits.
    fn save_attribution(&mut self, call_id: i64, a: &CallAttribution, now_ms: i64) -> Result<(), StorageError>;
    fn save_caller_kind(&mut self, call_id: i64, kind: CallerKind) -> Result<(), StorageError>;
}

/// The calls service's part of recording an event, run by the backend
/// inside the transaction that stores the event
/// ([`crate::services::calls::Workflow`]).
pub trait CallWorkflow: Send + Sync {
    /// Refolds call `call_id` from its events and attributes it again.
    fn attribute(&self, facts: &mut dyn CallFacts, site: &Site, call_id: i64, now_ms: i64) -> Result<(), StorageError>;
    /// The outbox rows of a call that just ended, per export kind: the
    /// body, or why the call cannot be sent (written as `skipped`). Written
    /// in the transaction that ends the call, so none is lost and none names
    /// a call that was never stored.
    fn exports(&self, site: &Site, detail: &CallDetail, now_ms: i64) -> Vec<(ExportKind, Result<Value, String>)>;
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
        workflow: &dyn CallWorkflow,
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
        workflow: &dyn CallWorkflow,
    ) -> Result<Option<()>, StorageError>;
}
