//! Each pool's demand per address group, which core's fair-share rules
//! (`lease::Fairness`) decide with: kept in memory by the backend that
//! decides leases (the SQLite writer; each PostgreSQL instance for the
//! visits it serves), never written to a database, since addresses are the
//! visitors' own.

use ringsource_core::lease::{self, Groups, Level};

use crate::recent::Recent;

/// Fresh numbers a pool was asked for lately, per address group: a count
/// that halves every hold time (`lease::decayed`).
pub(crate) struct Demand {
    half_life_ms: i64,
    levels: [Recent<u128, (f64, i64)>; 3],
}

/// Groups kept per level and generation: a flood of new addresses drops the
/// oldest counts instead of growing the map.
const MAX_DEMAND_GROUPS: usize = 1 << 18;

impl Demand {
    pub(crate) fn new(hold_secs: u32) -> Self {
        let half_life_ms = i64::from(hold_secs).max(1) * 1000;
        // Four half-lives untouched: a sixteenth of the count is left.
        let level = || Recent::new(half_life_ms * 4, MAX_DEMAND_GROUPS);
        Self { half_life_ms, levels: [level(), level(), level()] }
    }

    pub(crate) fn ask(&mut self, groups: &Groups, now_ms: i64) {
        let half_life_ms = self.half_life_ms;
        for level in Level::ALL {
            let count = self.levels[level as usize].get_or_insert_with(groups.key(level), now_ms, || (0.0, now_ms));
            *count = (lease::decayed(count.0, count.1, now_ms, half_life_ms) + 1.0, now_ms);
        }
    }

    /// Takes back an ask counted at `at_ms`.
    pub(crate) fn unask(&mut self, groups: &Groups, at_ms: i64, now_ms: i64) {
        let half_life_ms = self.half_life_ms;
        for level in Level::ALL {
            let count = self.levels[level as usize].get_or_insert_with(groups.key(level), now_ms, || (0.0, now_ms));
            let left = lease::decayed(count.0, count.1, now_ms, half_life_ms)
                - lease::decayed(1.0, at_ms, now_ms, half_life_ms);
            *count = (left.max(0.0), now_ms);
        }
    }

    pub(crate) fn of(&self, level: Level, key: u128, now_ms: i64) -> f64 {
        self.levels[level as usize]
            .get(&key)
            .map_or(0.0, |&(count, at_ms)| lease::decayed(count, at_ms, now_ms, self.half_life_ms))
    }
}
