//! Pool health in storage: the lease history and exhaustion events the
//! pools report (`GET /v1/reports/pools`) is computed from. The arithmetic
//! is `ringsource_core::pool_usage`'s; the backend only reads rows.

use serde::Serialize;

use super::StorageError;

/// A lease as it lasted: `[started_at_ms, ended_at_ms)`, where an open lease
/// ends at its current expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSpan {
    pub pool_id: String,
    /// The number, E.164: a number's own leases and cooldowns follow each other.
    pub number: String,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
}

/// Sessions that first asked a pool for a number (their first lease or
/// refusal there) in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAsk {
    pub pool_id: String,
    /// The minute's start.
    pub at_ms: i64,
    pub sessions: u32,
}

/// Refusals of one kind in one minute of a pool, as the report lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExhaustionView {
    #[serde(skip)]
    pub pool_id: String,
    /// The first and the last refusal of the minute.
    pub at_ms: i64,
    pub last_at_ms: i64,
    /// How many visitors were refused so.
    pub count: u32,
    /// `exhausted` (no number was free) or `over-share` (the visitor's
    /// network was flooding the pool and held its share).
    pub reason: String,
    /// `overflow`, `original` or `take-over-oldest`.
    pub policy: String,
    /// `overflow`, `original` or `taken-over`.
    pub outcome: String,
    pub number: Option<String>,
}

impl ExhaustionView {
    /// The pool had no free number (rather than refusing one to a flood).
    pub fn exhausted(&self) -> bool {
        self.reason == "exhausted"
    }
}

/// Everything the report needs about one site's pools in `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolActivity {
    /// Leases overlapping the window, or ending a cooldown before it.
    pub leases: Vec<LeaseSpan>,
    /// First asks inside the window, per minute.
    pub first_asks: Vec<FirstAsk>,
    /// Refusals inside the window, per minute and kind, oldest first.
    pub exhaustions: Vec<ExhaustionView>,
    /// Leases live at `now_ms`, per pool.
    pub live_now: Vec<(String, u32)>,
}

/// The reads behind the pools report.
pub trait PoolReportStore: Send + Sync + 'static {
    /// `max_cooldown_ms`: the longest cooldown of the site's pools, so leases
    /// whose cooldown reaches into the window are read too.
    fn pool_activity(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
        max_cooldown_ms: i64,
    ) -> Result<PoolActivity, StorageError>;
}
