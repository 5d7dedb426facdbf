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

/// When a session first asked a pool for a number (its first lease, or its
/// first exhaustion event if it never got one earlier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAsk {
    pub pool_id: String,
    pub at_ms: i64,
}

/// A pool exhaustion, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExhaustionView {
    #[serde(skip)]
    pub pool_id: String,
    pub at_ms: i64,
    /// `overflow`, `original` or `take-over-oldest`.
    pub policy: String,
    /// `overflow`, `original` or `taken-over`.
    pub outcome: String,
    pub number: Option<String>,
}

/// Everything the report needs about one site's pools in `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolActivity {
    /// Leases overlapping the window, or ending a cooldown before it.
    pub leases: Vec<LeaseSpan>,
    /// First asks inside the window.
    pub first_asks: Vec<FirstAsk>,
    /// Exhaustions inside the window, oldest first.
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
