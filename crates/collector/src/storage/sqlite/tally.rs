//! Counts per pool and minute (first asks, refusals) that a batch of the
//! writer adds up in memory and writes just before its commit: a flood's
//! refused visits, up to a batch's worth at a time, make one upsert per pool,
//! minute and kind instead of one each. A failed batch drops its counts with
//! its rows.

use rusqlite::{Transaction, params};

use super::sql;
use crate::storage::StorageError;

/// The start of the minute holding `at_ms`.
pub(super) fn minute_of(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(60_000)
}

#[derive(Default)]
pub(super) struct Tally {
    first_asks: Vec<FirstAsks>,
    refusals: Vec<Refusals>,
}

struct FirstAsks {
    site: String,
    pool: String,
    minute: i64,
    sessions: u32,
}

/// One row of `pool_exhaustions` to add to.
pub(super) struct Refusal<'a> {
    /// `exhausted` or `over-share`.
    pub(super) reason: &'static str,
    /// The pool's policy.
    pub(super) policy: &'static str,
    /// `overflow`, `original` or `taken-over`.
    pub(super) outcome: &'static str,
    /// The number shown, `""` for the original.
    pub(super) number: &'a str,
}

struct Refusals {
    site: String,
    pool: String,
    minute: i64,
    reason: &'static str,
    policy: &'static str,
    outcome: &'static str,
    number: String,
    events: u32,
    first_at_ms: i64,
    last_at_ms: i64,
}

impl Tally {
    /// A session asked `pool` for a number for the first time.
    pub(super) fn first_ask(&mut self, site: &str, pool: &str, at_ms: i64) {
        let minute = minute_of(at_ms);
        // A batch holds a handful of keys: a scan finds them without
        // building a key per visit.
        match self.first_asks.iter_mut().find(|f| f.minute == minute && f.pool == pool && f.site == site) {
            Some(f) => f.sessions += 1,
            None => {
                self.first_asks.push(FirstAsks { site: site.to_owned(), pool: pool.to_owned(), minute, sessions: 1 })
            }
        }
    }

    /// A visit to `pool` got no free number.
    pub(super) fn refusal(&mut self, site: &str, pool: &str, refusal: &Refusal<'_>, at_ms: i64) {
        let minute = minute_of(at_ms);
        let same = |r: &&mut Refusals| {
            r.minute == minute
                && r.reason == refusal.reason
                && r.outcome == refusal.outcome
                && r.policy == refusal.policy
                && r.number == refusal.number
                && r.pool == pool
                && r.site == site
        };
        match self.refusals.iter_mut().find(same) {
            Some(r) => {
                r.events += 1;
                r.first_at_ms = r.first_at_ms.min(at_ms);
                r.last_at_ms = r.last_at_ms.max(at_ms);
            }
            None => self.refusals.push(Refusals {
                site: site.to_owned(),
                pool: pool.to_owned(),
                minute,
                reason: refusal.reason,
                policy: refusal.policy,
                outcome: refusal.outcome,
                number: refusal.number.to_owned(),
                events: 1,
                first_at_ms: at_ms,
                last_at_ms: at_ms,
            }),
        }
    }

    /// Adds the counts to their rows, inside the batch's transaction.
    pub(super) fn write(&mut self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        for f in self.first_asks.drain(..) {
            tx.prepare_cached(
                "INSERT INTO pool_first_asks (site_id, pool_id, minute_ms, sessions) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions",
            )
            .and_then(|mut st| st.execute(params![f.site, f.pool, f.minute, f.sessions]))
            .map_err(sql("counting first asks of a pool"))?;
        }
        for r in self.refusals.drain(..) {
            tx.prepare_cached(
                "INSERT INTO pool_exhaustions (site_id, pool_id, minute_ms, reason, policy, outcome, number, events,
                     first_at_ms, last_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT DO UPDATE SET events = events + excluded.events,
                     first_at_ms = MIN(first_at_ms, excluded.first_at_ms),
                     last_at_ms = MAX(last_at_ms, excluded.last_at_ms)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    r.site,
                    r.pool,
                    r.minute,
                    r.reason,
                    r.policy,
                    r.outcome,
                    r.number,
                    r.events,
                    r.first_at_ms,
                    r.last_at_ms
                ])
            })
            .map_err(sql("counting pool exhaustions"))?;
        }
        Ok(())
    }

    /// Forgets the counts of a batch that failed.
    pub(super) fn clear(&mut self) {
        self.first_asks.clear();
        self.refusals.clear();
    }
}
