//! [`PoolReportStore`] on PostgreSQL: plain reads of `leases`,
//! `pool_first_asks` and `pool_exhaustions` in one snapshot. Open leases
//! whose hold ran out count until their expiry, as on SQLite.

use super::PostgresStorage;
use crate::storage::StorageError;
use crate::storage::pools::{ExhaustionView, FirstAsk, LeaseSpan, PoolActivity, PoolReportStore};

/// A stored count, which the report keeps as `u32`.
fn count(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl PoolReportStore for PostgresStorage {
    fn pool_activity(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
        max_cooldown_ms: i64,
    ) -> Result<PoolActivity, StorageError> {
        // Both counts are per minute: the minute holding `from_ms` counts whole.
        let from_minute = from_ms - from_ms.rem_euclid(60_000);
        self.read(|db| {
            // Leases that ended up to a cooldown before the window still keep
            // their number busy inside it.
            let leases = db
                .query(
                    "reading lease history",
                    "SELECT pool_id, number, started_at_ms, COALESCE(ended_at_ms, expires_at_ms) FROM leases
                     WHERE site_id = $1 AND started_at_ms < $3 AND COALESCE(ended_at_ms, expires_at_ms) > $2::bigint - $4::bigint",
                    &[&site, &from_ms, &to_ms, &max_cooldown_ms],
                )?
                .iter()
                .map(|r| LeaseSpan {
                    pool_id: r.get(0),
                    number: r.get(1),
                    started_at_ms: r.get(2),
                    ended_at_ms: r.get(3),
                })
                .collect();
            let first_asks = db
                .query(
                    "reading when sessions first asked a pool",
                    "SELECT pool_id, minute_ms, sessions FROM pool_first_asks
                     WHERE site_id = $1 AND minute_ms >= $2 AND minute_ms < $3",
                    &[&site, &from_minute, &to_ms],
                )?
                .iter()
                .map(|r| FirstAsk { pool_id: r.get(0), at_ms: r.get(1), sessions: count(r.get(2)) })
                .collect();
            let exhaustions = db
                .query(
                    "reading pool exhaustions",
                    "SELECT pool_id, first_at_ms, last_at_ms, events, reason, policy, outcome, number
                     FROM pool_exhaustions
                     WHERE site_id = $1 AND minute_ms >= $2 AND minute_ms < $3 ORDER BY first_at_ms, minute_ms",
                    &[&site, &from_minute, &to_ms],
                )?
                .iter()
                .map(|r| {
                    let number: String = r.get(7);
                    ExhaustionView {
                        pool_id: r.get(0),
                        at_ms: r.get(1),
                        last_at_ms: r.get(2),
                        count: count(r.get(3)),
                        reason: r.get(4),
                        policy: r.get(5),
                        outcome: r.get(6),
                        number: (!number.is_empty()).then_some(number),
                    }
                })
                .collect();
            let live_now = db
                .query(
                    "counting live leases",
                    "SELECT pool_id, COUNT(*) FROM leases
                     WHERE site_id = $1 AND ended_at_ms IS NULL AND expires_at_ms > $2 GROUP BY pool_id",
                    &[&site, &now_ms],
                )?
                .iter()
                .map(|r| (r.get(0), count(r.get(1))))
                .collect();
            Ok(PoolActivity { leases, first_asks, exhaustions, live_now })
        })
    }
}
