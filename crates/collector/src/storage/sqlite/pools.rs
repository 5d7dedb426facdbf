//! [`PoolReportStore`] on the SQLite file: plain reads of `leases`,
//! `pool_first_asks` and `pool_exhaustions` in one snapshot.

use rusqlite::params;

use super::{SqliteStorage, sql};
use crate::storage::StorageError;
use crate::storage::pools::{ExhaustionView, FirstAsk, LeaseSpan, PoolActivity, PoolReportStore};

/// The leases that overlap `[?2 - ?4, ?3)` on site `?1`: found by
/// `leases_by_end` (schema version 12), whose expression this repeats.
pub(super) const LEASES_IN_WINDOW: &str =
    "SELECT pool_id, number, started_at_ms, COALESCE(ended_at_ms, expires_at_ms) AS until_ms FROM leases
     WHERE site_id = ?1 AND started_at_ms < ?3 AND COALESCE(ended_at_ms, expires_at_ms) > ?2 - ?4";

/// Site `?1`'s leases live at `?2`, per pool: by the index of open leases.
pub(super) const LIVE_LEASES: &str = "SELECT pool_id, COUNT(*) FROM leases
     WHERE site_id = ?1 AND ended_at_ms IS NULL AND expires_at_ms > ?2 GROUP BY pool_id";

impl PoolReportStore for SqliteStorage {
    fn pool_activity(
        &self,
        site: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
        max_cooldown_ms: i64,
    ) -> Result<PoolActivity, StorageError> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A deferred transaction: one consistent snapshot, no write lock.
        let tx = inner.conn.transaction().map_err(sql("beginning a read"))?;
        let leases = tx
            .prepare(LEASES_IN_WINDOW)
            .and_then(|mut st| {
                // Leases that ended up to a cooldown before the window still
                // keep their number busy inside it.
                st.query_map(params![site, from_ms, to_ms, max_cooldown_ms], |r| {
                    Ok(LeaseSpan {
                        pool_id: r.get(0)?,
                        number: r.get(1)?,
                        started_at_ms: r.get(2)?,
                        ended_at_ms: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("reading lease history"))?;
        // Both are counted per minute: the minute holding `from_ms` counts
        // whole.
        let from_minute = super::tally::minute_of(from_ms);
        let first_asks = tx
            .prepare(
                "SELECT pool_id, minute_ms, sessions FROM pool_first_asks
                 WHERE site_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3",
            )
            .and_then(|mut st| {
                st.query_map(params![site, from_minute, to_ms], |r| {
                    Ok(FirstAsk { pool_id: r.get(0)?, at_ms: r.get(1)?, sessions: r.get(2)? })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("reading when sessions first asked a pool"))?;
        let exhaustions = tx
            .prepare(
                "SELECT pool_id, first_at_ms, last_at_ms, events, reason, policy, outcome, number
                 FROM pool_exhaustions
                 WHERE site_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3 ORDER BY first_at_ms, minute_ms",
            )
            .and_then(|mut st| {
                st.query_map(params![site, from_minute, to_ms], |r| {
                    let number: String = r.get(7)?;
                    Ok(ExhaustionView {
                        pool_id: r.get(0)?,
                        at_ms: r.get(1)?,
                        last_at_ms: r.get(2)?,
                        count: r.get(3)?,
                        reason: r.get(4)?,
                        policy: r.get(5)?,
                        outcome: r.get(6)?,
                        number: (!number.is_empty()).then_some(number),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("reading pool exhaustions"))?;
        let live_now = tx
            .prepare(LIVE_LEASES)
            .and_then(|mut st| {
                st.query_map(params![site, now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("counting live leases"))?;
        tx.commit().map_err(sql("ending a read"))?;
        Ok(PoolActivity { leases, first_asks, exhaustions, live_now })
    }
}
