//! Leases of pool numbers, decided from the writer's in-memory book.
//!
//! A lease decision needs the state of every number of the pool. Reading it
//! from SQLite took three queries per number on every visit; the book keeps it
//! in memory instead, loaded once per site and changed only together with the
//! rows it mirrors, inside the same transaction. The database stays the truth:
//! every change is written before the visitor is answered, the partial unique
//! index still refuses a second open lease of a number, and the writer drops
//! the book whenever a write fails or another connection changed the file.
//!
//! Beside the rows, the book keeps what only memory holds: which address
//! groups each live lease's holder came from, and each pool's demand per
//! group (the fresh numbers it asked for lately), which the fair-share rules
//! of `core::lease::Fairness` decide with. Neither is written to the
//! database (addresses are the visitors' own); the groups outlive a reload
//! of the book, and after a restart a lease's holder is unknown, and never
//! taken over, until its session's next visit or heartbeat names it again.

use std::collections::HashMap;

use ringsource_core::lease::{
    self, Exhaustion, ExhaustionPolicy, Fairness, Groups, Holder, Level, LiveLease, NumberState, Pick, Visitor,
};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::wire::NumberKind;
use rusqlite::{OptionalExtension, Transaction, params};

use super::sql;
use super::tally::{Refusal, Tally};
use crate::config::{Pool, Site};
use crate::storage::demand::Demand;
use crate::storage::{StorageError, VisitOutcome};

/// The state of every pool number, by site, as the database holds it.
#[derive(Default)]
pub(super) struct LeaseBook {
    sites: HashMap<String, SiteBook>,
    /// SQLite's `data_version` when the book was last in step: it changes
    /// when another connection (another process, `sqlite3`, a test) commits.
    data_version: Option<i64>,
    /// Demand per site and pool. It mirrors no row, so it is kept when the
    /// book is dropped.
    demand: HashMap<String, HashMap<String, Demand>>,
    /// The holders' groups of the open leases of a dropped site book, by
    /// lease id, with the session that held it: the reload takes them back.
    salvage: HashMap<String, HashMap<i64, (String, Groups)>>,
    /// Asks counted in the transaction under way (site, pool, groups, when),
    /// taken back if it fails: the writer runs a failed batch's visits
    /// again, which would count them twice.
    asked: Vec<(String, String, Groups, i64)>,
    /// The transaction's first asks and refusals, written before it commits.
    pub(super) tally: Tally,
}

/// One site's pools, in configured order; each pool's numbers likewise.
struct SiteBook {
    pools: Vec<PoolBook>,
}

/// Parallel to `Pool::numbers`: the state the pick rules read, the open
/// lease row behind each live number, and its holder's address groups;
/// and the open leases per group, kept with `holders`.
struct PoolBook {
    e164: Vec<String>,
    states: Vec<NumberState>,
    open: Vec<Option<OpenLease>>,
    holders: Vec<Option<Groups>>,
    held: HashMap<(Level, u128), u32>,
}

#[derive(Clone, Copy)]
struct OpenLease {
    id: i64,
    hold_secs: u32,
    /// The holder session's last visit or page view: heartbeats alone renew
    /// the lease only so long after it.
    active_ms: i64,
}

impl LeaseBook {
    /// Forgets the rows, after a failed transaction (or a change of the
    /// sites); the next use reloads them from the database. The failed
    /// transaction's asks are taken back.
    pub(super) fn clear(&mut self) {
        self.drop_sites();
        self.data_version = None;
        self.tally.clear();
        let now_ms = self.asked.iter().map(|a| a.3).max().unwrap_or(0);
        for (site, pool, groups, at_ms) in std::mem::take(&mut self.asked) {
            if let Some(demand) = self.demand.get_mut(&site).and_then(|d| d.get_mut(&pool)) {
                demand.unask(&groups, at_ms, now_ms);
            }
        }
    }

    /// The transaction committed: its asks stay counted.
    pub(super) fn committed(&mut self) {
        self.asked.clear();
    }

    /// Drops the site books, keeping their holders' groups for the reload.
    fn drop_sites(&mut self) {
        for (site_id, book) in self.sites.drain() {
            let salvage = self.salvage.entry(site_id).or_default();
            for pool in &book.pools {
                for n in 0..pool.states.len() {
                    if let (Some(open), Some(groups), Some(live)) =
                        (pool.open[n], pool.holders[n], &pool.states[n].live)
                    {
                        salvage.insert(open.id, (live.holder.session_id.clone(), groups));
                    }
                }
            }
        }
    }

    /// Forgets the book if another connection wrote to the file since it
    /// was last in step. Call at the start of each write transaction.
    pub(super) fn check_outside_writes(&mut self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        let version: i64 = tx
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(sql("reading the database's data version"))?;
        if self.data_version != Some(version) {
            self.drop_sites();
            self.data_version = Some(version);
        }
        Ok(())
    }

    fn site(&mut self, tx: &Transaction<'_>, site: &Site) -> Result<&mut SiteBook, StorageError> {
        if !self.sites.contains_key(&site.id) {
            let salvage = self.salvage.remove(&site.id).unwrap_or_default();
            let loaded = SiteBook::load(tx, site, &salvage)?;
            self.sites.insert(site.id.clone(), loaded);
        }
        Ok(self.sites.get_mut(&site.id).expect("inserted above"))
    }

    /// The session was active (a page view): heartbeats may renew its lease
    /// for another `heartbeat_only_secs`.
    pub(super) fn viewed(&mut self, site: &Site, session_id: &str, now_ms: i64) {
        let Some(book) = self.sites.get_mut(&site.id) else { return };
        for pool in &mut book.pools {
            for n in 0..pool.states.len() {
                let holds = pool.states[n].live.as_ref().is_some_and(|l| l.holder.session_id == session_id);
                if let (true, Some(open)) = (holds, pool.open[n].as_mut()) {
                    open.active_ms = open.active_ms.max(now_ms);
                }
            }
        }
    }

    /// Gives the session's new client id to the holders it appears as, as the
    /// `sessions` row now says.
    pub(super) fn client_id_changed(&mut self, site: &Site, session_id: &str, client_id: &str) {
        let Some(book) = self.sites.get_mut(&site.id) else { return };
        let holders = book
            .pools
            .iter_mut()
            .flat_map(|p| p.states.iter_mut())
            .flat_map(|s| s.live.as_mut().map(|l| &mut l.holder).into_iter().chain(s.last_holder.as_mut()));
        for holder in holders.filter(|h| h.session_id == session_id) {
            holder.client_id = Some(client_id.to_owned());
        }
    }

    /// Renews the session's live lease on a heartbeat, if it has one: a hold
    /// from now, but no later than the pool's `heartbeat_only_secs` after
    /// the session's last visit or page view. A beat that would move the
    /// expiry by less than half a heartbeat interval (a client beating
    /// faster than told, or a lease at that limit) writes nothing and
    /// answers the expiry as it stands.
    pub(super) fn renew(
        &mut self,
        tx: &Transaction<'_>,
        site: &Site,
        session_id: &str,
        client: Option<Groups>,
        now_ms: i64,
    ) -> Result<Option<Renewed>, StorageError> {
        let book = self.site(tx, site)?;
        for (p, pool) in book.pools.iter_mut().enumerate() {
            let held = pool.states.iter().position(|state| {
                state.live.as_ref().is_some_and(|live| {
                    live.holder.session_id == session_id && lease::is_live(live.expires_at_ms, now_ms)
                })
            });
            let Some(n) = held else { continue };
            let config = &site.pools[p];
            let open = pool.open[n].ok_or_else(no_row)?;
            if pool.holders[n].is_none() {
                pool.set_holder(n, client);
            }
            let current = pool.states[n].live.as_ref().ok_or_else(no_row)?.expires_at_ms;
            let target = lease::heartbeat_expiry(now_ms, open.hold_secs, open.active_ms, config.heartbeat_only_secs);
            let number = config.numbers[n].clone();
            if target - current < i64::from(config.heartbeat_secs) * 500 {
                return Ok(Some(Renewed { number, expires_at_ms: current, written: false }));
            }
            pool.extend(tx, n, target)?;
            return Ok(Some(Renewed { number, expires_at_ms: target, written: true }));
        }
        Ok(None)
    }

    /// The visitor's number from `site.pools[pool]`, inside the visit's
    /// transaction.
    pub(super) fn lease(
        &mut self,
        tx: &Transaction<'_>,
        site: &Site,
        pool_index: usize,
        visitor: &Visitor<'_>,
        client: Option<Groups>,
        now_ms: i64,
    ) -> Result<VisitOutcome, StorageError> {
        self.site(tx, site)?;
        let LeaseBook { sites, demand, asked, tally, .. } = self;
        let book = sites.get_mut(&site.id).ok_or_else(no_row)?;
        let session_id = visitor.session_id;
        // 1. Close the site's expired leases; their cooldown runs from expiry.
        // 2. A session holds numbers in one pool at a time: moving to
        //    another source releases the number of the previous one.
        for (p, pool) in book.pools.iter_mut().enumerate() {
            let cooldown_secs = site.pools[p].cooldown_secs;
            for n in 0..pool.states.len() {
                let Some(live) = &pool.states[n].live else { continue };
                if !lease::is_live(live.expires_at_ms, now_ms) {
                    let at = live.expires_at_ms;
                    pool.end(tx, n, at, LeaseEnd::Expired, Some(cooldown_secs))?;
                } else if p != pool_index && live.holder.session_id == session_id {
                    pool.end(tx, n, now_ms, LeaseEnd::Released, Some(cooldown_secs))?;
                }
            }
        }

        // 3. Pick from the pool's state.
        let config = &site.pools[pool_index];
        let pool = &mut book.pools[pool_index];
        // Looked up before inserting: no key is built for every visit.
        if !demand.get(&site.id).is_some_and(|pools| pools.contains_key(&config.id)) {
            demand.entry(site.id.clone()).or_default().insert(config.id.clone(), Demand::new(config.hold_secs));
        }
        let demand = demand.get_mut(&site.id).and_then(|pools| pools.get_mut(&config.id)).expect("inserted above");
        let pick = lease::pick(&pool.states, visitor, now_ms);
        // Asks for a number the visitor does not hold count towards its
        // groups' demand, refused ones too.
        if let (Some(groups), Pick::Fresh(_) | Pick::Exhausted) = (&client, pick) {
            demand.ask(groups, now_ms);
            asked.push((site.id.clone(), config.id.clone(), *groups, now_ms));
        }
        let demand_of = |level, key| demand.of(level, key, now_ms);
        let held_of = |level, key| pool.held.get(&(level, key)).copied().unwrap_or(0);
        let capped = client.as_ref().is_some_and(|g| fairness(pool, config, &demand_of, &held_of).capped(g));
        match pick {
            Pick::Renew(i) => {
                let holder = &pool.states[i].live.as_ref().ok_or_else(no_row)?.holder.session_id;
                if holder == session_id {
                    let expires_at_ms = lease::expiry(now_ms, config.hold_secs);
                    pool.extend(tx, i, expires_at_ms)?;
                    let open = pool.open[i].as_mut().ok_or_else(no_row)?;
                    open.active_ms = now_ms;
                    if pool.holders[i].is_none() {
                        pool.set_holder(i, client);
                    }
                    Ok(leased(session_id, &config.numbers[i], expires_at_ms))
                } else {
                    // Same visitor (client id) in a new session: the number
                    // moves to the new session at once, without cooldown, so
                    // calls are attributed to the session the visitor is in now.
                    pool.end(tx, i, now_ms, LeaseEnd::HandedOver, None)?;
                    pool.start(tx, site, config, i, visitor, client, now_ms)
                }
            }
            Pick::Return(i) | Pick::Fresh(i) if !capped => pool.start(tx, site, config, i, visitor, client, now_ms),
            Pick::Return(_) | Pick::Fresh(_) | Pick::Exhausted => {
                let reason = if pick == Pick::Exhausted { "exhausted" } else { "over-share" };
                let policy = config.on_exhaustion.as_str();
                let held_of = |level, key| pool.held.get(&(level, key)).copied().unwrap_or(0);
                let rules = fairness(pool, config, &demand_of, &held_of);
                // A number held against the fair shares goes to a newcomer
                // within them, whatever the pool's policy.
                if let Some(i) = client.as_ref().and_then(|g| rules.preempt(&pool.states, g, now_ms)) {
                    let refusal = Refusal { reason, policy, outcome: "taken-over", number: &pool.e164[i] };
                    tally.refusal(&site.id, &config.id, &refusal, now_ms);
                    pool.end(tx, i, now_ms, LeaseEnd::TakenOver, None)?;
                    return pool.start(tx, site, config, i, visitor, client, now_ms);
                }
                // The take-over policy spares the groups this visitor is
                // louder than, and one refused for its share takes over only
                // what its own client holds.
                let decision = match (config.on_exhaustion, client) {
                    (ExhaustionPolicy::TakeOverOldest, Some(g)) => rules
                        .take_over_oldest(&pool.states, &g, capped, now_ms)
                        .map_or(Exhaustion::Original, Exhaustion::TakeOver),
                    (policy, _) if pick == Pick::Exhausted => lease::on_exhaustion(policy, &pool.states, now_ms),
                    (ExhaustionPolicy::Overflow, _) => Exhaustion::Overflow,
                    _ => Exhaustion::Original,
                };
                let (outcome, number) = match decision {
                    Exhaustion::Overflow => ("overflow", site.overflow_number.as_ref().map(PhoneNumber::e164)),
                    Exhaustion::Original => ("original", None),
                    Exhaustion::TakeOver(i) => ("taken-over", Some(config.numbers[i].e164())),
                };
                let refusal = Refusal { reason, policy, outcome, number: number.as_deref().unwrap_or_default() };
                tally.refusal(&site.id, &config.id, &refusal, now_ms);
                match decision {
                    Exhaustion::Overflow => Ok(match &site.overflow_number {
                        Some(n) => VisitOutcome {
                            session_id: session_id.to_owned(),
                            kind: NumberKind::Lease,
                            number: Some(n.clone()),
                            expires_at_ms: None,
                            overflow: true,
                            promo_code: None,
                        },
                        // Configuration validation requires an overflow number
                        // for this policy; without one the original is the safe answer.
                        None => VisitOutcome::original(session_id.to_owned()),
                    }),
                    Exhaustion::Original => Ok(VisitOutcome::original(session_id.to_owned())),
                    Exhaustion::TakeOver(i) => {
                        pool.end(tx, i, now_ms, LeaseEnd::TakenOver, None)?;
                        pool.start(tx, site, config, i, visitor, client, now_ms)
                    }
                }
            }
        }
    }
}

/// The fair-share rules of `pool` over its current holders.
fn fairness<'a>(
    book: &'a PoolBook,
    pool: &Pool,
    demand: &'a dyn Fn(Level, u128) -> f64,
    held: &'a dyn Fn(Level, u128) -> u32,
) -> Fairness<'a> {
    let size = book.holders.len();
    // Flooding: more fresh asks (halving every hold time) than twice the
    // pool's numbers.
    Fairness { holders: &book.holders, caps: pool.shares.caps(size), flood_above: 2.0 * size as f64, demand, held }
}

/// A heartbeat's renewal.
pub(super) struct Renewed {
    pub(super) number: PhoneNumber,
    pub(super) expires_at_ms: i64,
    /// Whether the lease row changed (a beat too soon changes nothing).
    pub(super) written: bool,
}

impl SiteBook {
    fn load(tx: &Transaction<'_>, site: &Site, salvage: &HashMap<i64, (String, Groups)>) -> Result<Self, StorageError> {
        let pools = site.pools.iter().map(|pool| PoolBook::load(tx, pool, salvage)).collect::<Result<_, _>>()?;
        Ok(Self { pools })
    }
}

impl PoolBook {
    fn load(tx: &Transaction<'_>, pool: &Pool, salvage: &HashMap<i64, (String, Groups)>) -> Result<Self, StorageError> {
        let e164s: Vec<String> = pool.numbers.iter().map(PhoneNumber::e164).collect();
        let mut states = Vec::with_capacity(e164s.len());
        let mut open = Vec::with_capacity(e164s.len());
        let mut holders = Vec::with_capacity(e164s.len());
        for e164 in &e164s {
            let live: Option<(OpenLease, LiveLease)> = tx
                .prepare_cached(
                    "SELECT l.id, l.hold_secs, l.session_id, s.client_id, l.started_at_ms, l.expires_at_ms
                     FROM leases l JOIN sessions s ON s.id = l.session_id
                     WHERE l.number = ?1 AND l.ended_at_ms IS NULL",
                )
                .and_then(|mut st| {
                    st.query_row([e164], |r| {
                        Ok((
                            OpenLease { id: r.get(0)?, hold_secs: r.get(1)?, active_ms: r.get(4)? },
                            LiveLease {
                                holder: Holder { session_id: r.get(2)?, client_id: r.get(3)? },
                                started_at_ms: r.get(4)?,
                                expires_at_ms: r.get(5)?,
                            },
                        ))
                    })
                    .optional()
                })
                .map_err(sql("reading a number's lease"))?;
            let last_holder = if live.is_none() {
                tx.prepare_cached(
                    "SELECT l.session_id, s.client_id FROM leases l JOIN sessions s ON s.id = l.session_id
                     WHERE l.number = ?1 ORDER BY l.id DESC LIMIT 1",
                )
                .and_then(|mut st| {
                    st.query_row([e164], |r| Ok(Holder { session_id: r.get(0)?, client_id: r.get(1)? })).optional()
                })
                .map_err(sql("reading a number's last holder"))?
            } else {
                None
            };
            let cooldown_until_ms: i64 = tx
                .query_row("SELECT cooldown_until_ms FROM numbers WHERE number = ?1", [e164], |r| r.get(0))
                .map_err(sql("reading a number's cooldown"))?;
            let (mut row, live) = live.unzip();
            if let (Some(row), Some(live)) = (row.as_mut(), &live) {
                // Every visit and page view is a page_views row.
                let viewed: Option<i64> = tx
                    .prepare_cached("SELECT MAX(at_ms) FROM page_views WHERE session_id = ?1")
                    .and_then(|mut st| st.query_row([&live.holder.session_id], |r| r.get(0)))
                    .map_err(sql("reading a lease holder's last page view"))?;
                row.active_ms = row.active_ms.max(viewed.unwrap_or(i64::MIN));
            }
            let groups = match (&row, &live) {
                (Some(row), Some(live)) => salvage
                    .get(&row.id)
                    .filter(|(session, _)| *session == live.holder.session_id)
                    .map(|(_, groups)| *groups),
                _ => None,
            };
            holders.push(groups);
            open.push(row);
            states.push(NumberState { live, last_holder, cooldown_until_ms });
        }
        let mut held = HashMap::new();
        for groups in holders.iter().flatten() {
            for level in Level::ALL {
                *held.entry((level, groups.key(level))).or_insert(0) += 1;
            }
        }
        Ok(Self { e164: e164s, states, open, holders, held })
    }

    /// Names the holder groups of number `n`'s open lease (`None` when it
    /// ends), keeping the counts per group.
    fn set_holder(&mut self, n: usize, groups: Option<Groups>) {
        if let Some(old) = self.holders[n] {
            for level in Level::ALL {
                let key = (level, old.key(level));
                if let Some(count) = self.held.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        self.held.remove(&key);
                    }
                }
            }
        }
        if let Some(new) = groups {
            for level in Level::ALL {
                *self.held.entry((level, new.key(level))).or_insert(0) += 1;
            }
        }
        self.holders[n] = groups;
    }

    /// Moves the expiry of number `n`'s open lease to `expires_at_ms`.
    fn extend(&mut self, tx: &Transaction<'_>, n: usize, expires_at_ms: i64) -> Result<(), StorageError> {
        let open = self.open[n].ok_or_else(no_row)?;
        let live = self.states[n].live.as_mut().ok_or_else(no_row)?;
        tx.prepare_cached("UPDATE leases SET expires_at_ms = ?1 WHERE id = ?2")
            .and_then(|mut st| st.execute(params![expires_at_ms, open.id]))
            .map_err(sql("renewing a lease"))?;
        live.expires_at_ms = expires_at_ms;
        Ok(())
    }

    /// Ends number `n`'s open lease at `at_ms`, starting its cooldown from
    /// then unless the number passes straight to someone else.
    fn end(
        &mut self,
        tx: &Transaction<'_>,
        n: usize,
        at_ms: i64,
        reason: LeaseEnd,
        cooldown_secs: Option<u32>,
    ) -> Result<(), StorageError> {
        let open = self.open[n].take().ok_or_else(no_row)?;
        tx.prepare_cached("UPDATE leases SET ended_at_ms = ?2, end_reason = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![open.id, at_ms, reason.as_str()]))
            .map_err(sql("ending a lease"))?;
        let state = &mut self.states[n];
        if let Some(cooldown_secs) = cooldown_secs {
            let until = lease::cooldown_end(at_ms, cooldown_secs);
            state.cooldown_until_ms = state.cooldown_until_ms.max(until);
            // The numbers row carries the same MAX, so the two cannot drift.
            tx.prepare_cached("UPDATE numbers SET cooldown_until_ms = MAX(cooldown_until_ms, ?2) WHERE number = ?1")
                .and_then(|mut st| st.execute(params![self.e164[n], until]))
                .map_err(sql("starting a cooldown"))?;
        }
        state.last_holder = state.live.take().map(|l| l.holder);
        self.set_holder(n, None);
        Ok(())
    }

    /// Leases number `n` to the visitor, who came from `client`.
    #[allow(clippy::too_many_arguments, reason = "the lease's parts, each from a different place")]
    fn start(
        &mut self,
        tx: &Transaction<'_>,
        site: &Site,
        pool: &Pool,
        n: usize,
        visitor: &Visitor<'_>,
        client: Option<Groups>,
        now_ms: i64,
    ) -> Result<VisitOutcome, StorageError> {
        let expires_at_ms = lease::expiry(now_ms, pool.hold_secs);
        tx.prepare_cached(
            "INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                site.id,
                pool.id,
                self.e164[n],
                visitor.session_id,
                now_ms,
                expires_at_ms,
                pool.hold_secs
            ])
        })
        .map_err(sql("starting a lease"))?;
        self.open[n] = Some(OpenLease { id: tx.last_insert_rowid(), hold_secs: pool.hold_secs, active_ms: now_ms });
        self.set_holder(n, client);
        let state = &mut self.states[n];
        state.live = Some(LiveLease {
            holder: Holder {
                session_id: visitor.session_id.to_owned(),
                client_id: visitor.client_id.map(str::to_owned),
            },
            started_at_ms: now_ms,
            expires_at_ms,
        });
        state.last_holder = None;
        Ok(leased(visitor.session_id, &pool.numbers[n], expires_at_ms))
    }
}

fn leased(session_id: &str, number: &PhoneNumber, expires_at_ms: i64) -> VisitOutcome {
    VisitOutcome {
        session_id: session_id.to_owned(),
        kind: NumberKind::Lease,
        number: Some(number.clone()),
        expires_at_ms: Some(expires_at_ms),
        overflow: false,
        promo_code: None,
    }
}

fn no_row() -> StorageError {
    StorageError::Corrupt("a live number has no open lease row".to_owned())
}

/// Why a lease ended, as `leases.end_reason` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaseEnd {
    /// Its hold ran out without a heartbeat.
    Expired,
    /// The session's visit came from another source, routed to another pool.
    Released,
    /// An exhausted pool's `take-over-oldest` gave the number to another session.
    TakenOver,
    /// The same visitor (client id) came back in a new session, which the
    /// number moved to without a cooldown.
    HandedOver,
}

impl LeaseEnd {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            LeaseEnd::Expired => "expired",
            LeaseEnd::Released => "released",
            LeaseEnd::TakenOver => "taken-over",
            LeaseEnd::HandedOver => "handed-over",
        }
    }
}
