//! Money in storage: advertising cost per day and source, revenue the CRM
//! posts back per call, and the exports outbox. The HTTP layer validates
//! every row before it gets here ([`crate::http::money`], [`crate::services::exports`]).

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::StorageError;
use crate::clock::Clock;
pub use crate::exports::ExportKind;

/// The largest cost or revenue amount one row may carry: a trillion units of
/// its currency, above any one day's spend or any one deal in any currency
/// (a trillion dong is some 40 million dollars), and small enough that no
/// sum of the rows SQLite can hold leaves the range of a double (1.8e308),
/// where a report's totals would turn into `null`.
pub const MAX_AMOUNT: f64 = 1e12;

/// One validated cost row. `medium` and `campaign` are `""` when the cost is
/// not split that finely.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub site: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub cost: f64,
    pub currency: Option<String>,
}

/// Which call a revenue post is for.
#[derive(Debug, Clone, PartialEq)]
pub enum RevenueTarget {
    /// The collector's call id.
    Call(i64),
    /// The latest call of this caller key (see the calls store) that rang in
    /// `[at_ms - window_ms, at_ms]`.
    Caller { key: String, at_ms: i64, window_ms: i64 },
}

/// One validated revenue post.
#[derive(Debug, Clone, PartialEq)]
pub struct RevenuePost {
    pub site: String,
    pub target: RevenueTarget,
    pub amount: f64,
    pub currency: Option<String>,
    pub deal_id: Option<String>,
    /// When the deal happened (defaults to when it was posted).
    pub at_ms: Option<i64>,
}

/// What a revenue post did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]

pub struct RevenueRecorded {
    pub id: i64,
    pub call_id: i64,
    pub amount: f64,
    pub currency: Option<String>,
    pub deal_id: Option<String>,
    /// `recorded` (new), `updated` (a deal seen before, changed) or
    /// `unchanged` (the same deal posted again).
    #[schema(schema_with = revenue_outcome_schema)]
    pub outcome: &'static str,
}

/// The values of [`RevenueRecorded::outcome`].
pub const REVENUE_OUTCOMES: [&str; 3] = ["recorded", "updated", "unchanged"];

fn revenue_outcome_schema() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(REVENUE_OUTCOMES)).into()
}

/// Why a revenue post found no call.
#[derive(Debug, thiserror::Error)]
pub enum RevenueError {
    #[error("no call {0} on this site")]
    UnknownCall(i64),
    /// The caller is masked: answers end up in the CRM's logs.
    #[error(
        "no call from {} rang on this site in the {window_secs} s before {at_ms} (Unix ms)",
        crate::mask::Masked(caller)
    )]
    NoCallFromCaller { caller: String, at_ms: i64, window_secs: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Persistence of costs and revenue.
pub trait MoneyStore: Send + Sync + 'static {
    /// Upserts every row in one transaction; `demo` marks demo data.
    fn upsert_costs(&self, rows: &[CostRow], demo: bool, clock: &dyn Clock) -> Result<usize, StorageError>;
    /// Stores revenue for the call the post names, idempotently per deal id.
    fn record_revenue(
        &self,
        post: &RevenuePost,
        demo: bool,
        clock: &dyn Clock,
    ) -> Result<RevenueRecorded, RevenueError>;
    /// Whether the site's data includes rows written by `ringsource demo-data`.
    fn has_demo_data(&self, site: &str) -> Result<bool, StorageError>;
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Pending,
    Sent,
    /// Given up on (max attempts, or refused for good): the dead letter.
    Dead,
    /// Never sendable (e.g. GA4 without a client id); `last_error` says why.
    Skipped,
}

impl ExportStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Sent => "sent",
            ExportStatus::Dead => "dead",
            ExportStatus::Skipped => "skipped",
        }
    }
    pub fn from_name(s: &str) -> Option<ExportStatus> {
        Some(match s {
            "pending" => ExportStatus::Pending,
            "sent" => ExportStatus::Sent,
            "dead" => ExportStatus::Dead,
            "skipped" => ExportStatus::Skipped,
            _ => return None,
        })
    }
}

/// One outbox row: an export of one call, as sent or to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]

pub struct OutboxRow {
    pub id: i64,
    pub site: String,
    pub kind: ExportKind,
    pub call_id: Option<i64>,
    /// The same on every attempt (the `webhook-id` header of CRM
    /// deliveries): receivers deduplicate by it.
    pub webhook_id: String,
    /// The body as sent: a GA4 Measurement Protocol body or the CRM
    /// webhook; `null` when skipped.
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub status: ExportStatus,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

/// A row handed to the worker, with the exact body text to send (the CRM
/// signature covers those bytes).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub site: String,
    pub kind: ExportKind,
    pub webhook_id: String,
    pub body: String,
    /// Including this one.
    pub attempts: u32,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Sent,
    Retry { at_ms: i64, error: String },
    Dead { error: String },
}

/// Filters of `GET /v1/exports`.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub site: Option<String>,
    pub status: Option<ExportStatus>,
    pub kind: Option<ExportKind>,
    pub limit: u32,
    pub offset: u32,
}

/// Why a requeue was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no export {0}")]
    Unknown(i64),
    #[error("export {id} is {status}; only a dead export can be retried")]
    NotDead { id: i64, status: &'static str },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Persistence of the outbox. Rows are written by the calls store, in the
/// transaction that ends a call.
pub trait OutboxStore: Send + Sync + 'static {
    /// Takes up to `limit` due pending rows and counts an attempt for each;
    /// they are not due again until `claim_ms` has passed, so a worker that
    /// dies mid-delivery leaves them to be retried, not lost.
    fn claim_due(&self, limit: u32, claim_ms: i64, clock: &dyn Clock) -> Result<Vec<Claimed>, StorageError>;
    fn finish(&self, id: i64, finish: &Finish, clock: &dyn Clock) -> Result<(), StorageError>;
    /// The earliest `next_attempt_at_ms` of a pending row.
    fn next_due_ms(&self) -> Result<Option<i64>, StorageError>;
    fn list_exports(&self, filter: &OutboxFilter) -> Result<(Vec<OutboxRow>, u64), StorageError>;
    /// A dead row back to pending, due now, with its attempts reset.
    fn retry_export(&self, id: i64, clock: &dyn Clock) -> Result<OutboxRow, RetryError>;
}

/// The PBX name of calls written by `ringsource demo-data`: they are never
/// exported, so demo calls cannot reach a real GA4 property or CRM.
pub const DEMO_PBX: &str = "demo";

/// An export a call that just ended makes, as both adapters write it to the
/// outbox.
#[derive(Debug)]
pub struct NewExport {
    pub kind: ExportKind,
    pub webhook_id: String,
    /// The body to send, or JSON `null` for a skipped export.
    pub payload: String,
    pub status: ExportStatus,
    /// Why it was skipped (a GA4 export of a call without a client id), so
    /// the gap is visible.
    pub error: Option<String>,
}

/// The exports of an ended call: none for the demo's calls; a payload the
/// call cannot make is a `skipped` row with the reason.
pub fn call_exports(
    site: &crate::config::Site,
    detail: &crate::storage::calls::CallDetail,
    now_ms: i64,
    workflow: &dyn crate::storage::calls::CallWorkflow,
) -> Result<Vec<NewExport>, StorageError> {
    if detail.call.pbx == DEMO_PBX {
        return Ok(Vec::new());
    }
    workflow
        .exports(site, detail, now_ms)
        .into_iter()
        .map(|(kind, built)| {
            let (payload, status, error) = match built {
                Ok(body) => (body.to_string(), ExportStatus::Pending, None),
                Err(reason) => (serde_json::Value::Null.to_string(), ExportStatus::Skipped, Some(reason)),
            };
            Ok(NewExport { kind, webhook_id: new_webhook_id()?, payload, status, error })
        })
        .collect()
}

/// A Standard Webhooks id: kept across an export's retries, so a receiver
/// can drop a repeated delivery.
fn new_webhook_id() -> Result<String, StorageError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| StorageError::NoRandomness(e.to_string()))?;
    Ok(format!("msg_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}
