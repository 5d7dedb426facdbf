//! Leases of pool numbers, decided in the visit's transaction with core's
//! rules, correct with any number of instances on one database.
//!
//! 1. The pool's numbers are read in one query: open leases with their
//!    holders, each free number's last holder, cooldowns. An open lease
//!    whose hold ran out counts as ended at its expiry (its cooldown runs
//!    from then), as the SQLite writer ends such leases before it picks;
//!    here the row is ended by whoever takes the number next.
//! 2. Core decides (`lease::pick`, the exhaustion policy, the fair shares)
//!    over what was read, exactly as the SQLite adapter does over its book.
//! 3. The number decided on is locked with `FOR UPDATE SKIP LOCKED`: a
//!    number that another transaction (of any instance) is deciding right
//!    now is skipped, never waited for, and the decision is made again
//!    without it. A number locked is read again (a statement of its own, so
//!    it sees every commit made before the lock was had); if it changed
//!    since step 1, the decision is made again on the new state.
//! 4. The lease rows change under that lock. Every change to a number's
//!    leases happens under its row lock, and the partial unique index on
//!    open leases refuses a second open lease of a number whatever happens.
//!
//! Heartbeats renew a lease without the number's lock: they change only
//! `expires_at_ms` of a live lease, and the row lock of the lease orders
//! them with an end made under the number's lock.

use ringsource_core::lease::{
    self, Exhaustion, ExhaustionPolicy, Fairness, Groups, Holder, Level, LiveLease, NumberState, Pick, Visitor,
};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::wire::NumberKind;
use tokio_postgres::Row;

use super::{Fair, MAX_HOLDERS, pg};
use crate::config::{Pool, Site};
use crate::storage::demand::Demand;
use crate::storage::{StorageError, VisitOutcome};

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// One pool number as read, and what this transaction knows of its lock.
#[derive(Clone, Debug, PartialEq)]
struct NumberRow {
    state: NumberState,
    /// The open lease (live, or expired and not yet ended): its id and expiry.
    open: Option<(i64, i64)>,
}

/// The pool as this transaction sees it.
struct PoolView {
    rows: Vec<NumberRow>,
    /// Locked by this transaction: the row is current until it commits.
    locked: Vec<bool>,
    /// Locked by another transaction: out of this decision.
    busy: Vec<bool>,
}

/// Changes to the instance's memory, made once the transaction commits.
#[derive(Default)]
pub(super) struct Effects {
    /// The visitor's ask for a fresh number (site, pool, the pool's hold,
    /// groups, when).
    pub(super) ask: Option<(String, String, u32, Groups, i64)>,
    /// Lease ids that ended, and leases started or renewed with the holder's groups.
    pub(super) ended: Vec<i64>,
    pub(super) held: Vec<(i64, String, Groups)>,
}

impl Effects {
    pub(super) fn apply(self, fair: &mut Fair) {
        if let Some((site, pool, hold_secs, groups, at_ms)) = self.ask {
            fair.demand.entry((site, pool)).or_insert_with(|| Demand::new(hold_secs)).ask(&groups, at_ms);
        }
        for id in self.ended {
            fair.holders.remove(&id);
        }
        for (id, session, groups) in self.held {
            if fair.holders.len() >= MAX_HOLDERS {
                // The older half goes; their holders are unknown from then on.
                let mut ids: Vec<i64> = fair.holders.keys().copied().collect();
                ids.sort_unstable();
                let keep_from = ids[ids.len() / 2];
                fair.holders.retain(|&id, _| id >= keep_from);
            }
            fair.holders.insert(id, (session, groups));
        }
    }
}

/// A refusal of a free number, counted per minute before the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) reason: &'static str,
    pub(super) policy: &'static str,
    pub(super) outcome: &'static str,
    pub(super) number: String,
}

/// Why a lease ended, as `leases.end_reason` spells it.
#[derive(Clone, Copy)]
enum LeaseEnd {
    Expired,
    Released,
    TakenOver,
    HandedOver,
}

impl LeaseEnd {
    const fn as_str(self) -> &'static str {
        match self {
            LeaseEnd::Expired => "expired",
            LeaseEnd::Released => "released",
            LeaseEnd::TakenOver => "taken-over",
            LeaseEnd::HandedOver => "handed-over",
        }
    }
}

/// What to do for the visitor, decided over the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// The session holds number i live: renew it.
    Renew(usize),
    /// The same visitor (client id) holds it in another session: hand it over.
    HandOver(usize),
    /// Lease free (or returning) number i.
    Start(usize),
    /// Take number i over from its holder (fair shares, or the policy).
    TakeOver(usize),
    Overflow,
    Original,
}

impl Action {
    fn number(self) -> Option<usize> {
        match self {
            Action::Renew(i) | Action::HandOver(i) | Action::Start(i) | Action::TakeOver(i) => Some(i),
            Action::Overflow | Action::Original => None,
        }
    }
}

/// Reads `numbers` (E.164, in pool order) as the pick rules need them at
/// `now_ms`.
async fn read_numbers(
    tx: &Tx<'_>,
    numbers: &[String],
    cooldown_secs: u32,
    now_ms: i64,
) -> Result<Vec<NumberRow>, StorageError> {
    let st = tx
        .prepare_cached(
            "SELECT n.cooldown_until_ms, l.id, l.session_id, s.client_id, l.started_at_ms, l.expires_at_ms,
                    last.session_id, last.client_id
             FROM unnest($1::text[]) WITH ORDINALITY AS c(number, ord)
             JOIN numbers n ON n.number = c.number
             LEFT JOIN leases l ON l.number = c.number AND l.ended_at_ms IS NULL
             LEFT JOIN sessions s ON s.id = l.session_id
             LEFT JOIN LATERAL (
                 SELECT pl.session_id, ps.client_id FROM leases pl JOIN sessions ps ON ps.id = pl.session_id
                 WHERE pl.number = c.number AND l.id IS NULL ORDER BY pl.id DESC LIMIT 1
             ) last ON true
             ORDER BY c.ord",
        )
        .await
        .map_err(pg("preparing the read of a pool"))?;
    let rows = tx.query(&st, &[&numbers]).await.map_err(pg("reading a pool's numbers"))?;
    if rows.len() != numbers.len() {
        return Err(StorageError::Corrupt("a configured pool number has no numbers row".to_owned()));
    }
    Ok(rows.iter().map(|r| number_row(r, cooldown_secs, now_ms)).collect())
}

fn number_row(r: &Row, cooldown_secs: u32, now_ms: i64) -> NumberRow {
    let cooldown_until_ms: i64 = r.get(0);
    let open_id: Option<i64> = r.get(1);
    match open_id {
        Some(id) => {
            let holder = Holder { session_id: r.get(2), client_id: r.get(3) };
            let started_at_ms: i64 = r.get(4);
            let expires_at_ms: i64 = r.get(5);
            let state = if lease::is_live(expires_at_ms, now_ms) {
                NumberState {
                    live: Some(LiveLease { holder, started_at_ms, expires_at_ms }),
                    last_holder: None,
                    cooldown_until_ms,
                }
            } else {
                // Ended at its expiry, as far as the rules are concerned.
                NumberState {
                    live: None,
                    last_holder: Some(holder),
                    cooldown_until_ms: cooldown_until_ms.max(lease::cooldown_end(expires_at_ms, cooldown_secs)),
                }
            };
            NumberRow { state, open: Some((id, expires_at_ms)) }
        }
        None => {
            let last: Option<String> = r.get(6);
            let last_holder = last.map(|session_id| Holder { session_id, client_id: r.get(7) });
            NumberRow { state: NumberState { live: None, last_holder, cooldown_until_ms }, open: None }
        }
    }
}

/// Locks number `e164` unless another transaction holds it.
async fn try_lock(tx: &Tx<'_>, e164: &str) -> Result<bool, StorageError> {
    let st = tx
        .prepare_cached("SELECT 1 FROM numbers WHERE number = $1 FOR UPDATE SKIP LOCKED")
        .await
        .map_err(pg("preparing a number's lock"))?;
    Ok(tx.query_opt(&st, &[&e164]).await.map_err(pg("locking a number"))?.is_some())
}

/// Locks number `e164`, waiting for whoever holds it.
async fn lock(tx: &Tx<'_>, e164: &str) -> Result<(), StorageError> {
    let st = tx
        .prepare_cached("SELECT 1 FROM numbers WHERE number = $1 FOR UPDATE")
        .await
        .map_err(pg("preparing a number's lock"))?;
    tx.query_one(&st, &[&e164]).await.map(drop).map_err(pg("waiting for a number's lock"))
}

/// Ends the site's open leases whose hold ran out, at their expiry, with
/// their cooldown from then, as the SQLite writer does before each pick.
/// Each under its number's lock; one that another transaction holds is
/// that transaction's to end.
async fn end_expired(tx: &Tx<'_>, site: &Site, now_ms: i64, effects: &mut Effects) -> Result<(), StorageError> {
    let st = tx
        .prepare_cached(
            "SELECT id, number, pool_id FROM leases
             WHERE site_id = $1 AND ended_at_ms IS NULL AND expires_at_ms <= $2",
        )
        .await
        .map_err(pg("preparing the read of expired leases"))?;
    let expired = tx.query(&st, &[&site.id, &now_ms]).await.map_err(pg("reading expired leases"))?;
    for row in expired {
        let (id, number, pool_id): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        if !try_lock(tx, &number).await? {
            continue;
        }
        // Under the lock, a statement of its own: ended meanwhile, it is left alone.
        let st = tx
            .prepare_cached(
                "UPDATE leases SET ended_at_ms = expires_at_ms, end_reason = 'expired'
                 WHERE id = $1 AND ended_at_ms IS NULL AND expires_at_ms <= $2 RETURNING expires_at_ms",
            )
            .await
            .map_err(pg("preparing the end of an expired lease"))?;
        let Some(ended) = tx.query_opt(&st, &[&id, &now_ms]).await.map_err(pg("ending an expired lease"))? else {
            continue;
        };
        effects.ended.push(id);
        // A pool taken out of the configuration has no cooldown to start.
        if let Some(pool) = site.pools.iter().find(|p| p.id == pool_id) {
            let until = lease::cooldown_end(ended.get(0), pool.cooldown_secs);
            let st = tx
                .prepare_cached(
                    "UPDATE numbers SET cooldown_until_ms = GREATEST(cooldown_until_ms, $2) WHERE number = $1",
                )
                .await
                .map_err(pg("preparing a cooldown"))?;
            tx.execute(&st, &[&number, &until]).await.map_err(pg("starting a cooldown"))?;
        }
    }
    Ok(())
}

/// A number locked by someone else, as the rules see it: live for nobody,
/// renewed last of all (so the take-over policy reaches it only when every
/// other number is busy too), and of no group.
fn busy_state() -> NumberState {
    NumberState {
        live: Some(LiveLease {
            holder: Holder { session_id: String::new(), client_id: None },
            started_at_ms: i64::MAX,
            expires_at_ms: i64::MAX,
        }),
        last_holder: None,
        cooldown_until_ms: 0,
    }
}

/// Ends the open lease `id` of `number` at `at_ms` (never before it
/// started: another transaction may have read its clock earlier, and
/// another instance's clock may be behind), starting the number's cooldown
/// from then when `cooldown_secs` is given. Returns when it ended, which a
/// lease that follows starts no earlier than.
async fn end(
    tx: &Tx<'_>,
    id: i64,
    number: &str,
    at_ms: i64,
    reason: LeaseEnd,
    cooldown_secs: Option<u32>,
    effects: &mut Effects,
) -> Result<i64, StorageError> {
    let st = tx
        .prepare_cached(
            "UPDATE leases SET ended_at_ms = GREATEST($2, started_at_ms), end_reason = $3
             WHERE id = $1 AND ended_at_ms IS NULL RETURNING ended_at_ms",
        )
        .await
        .map_err(pg("preparing the end of a lease"))?;
    let ended = tx.query_opt(&st, &[&id, &at_ms, &reason.as_str()]).await.map_err(pg("ending a lease"))?;
    let Some(ended) = ended else {
        return Err(StorageError::Corrupt(format!("the open lease {id} of {number} ended under its number's lock")));
    };
    let ended_at_ms: i64 = ended.get(0);
    if let Some(cooldown_secs) = cooldown_secs {
        let until = lease::cooldown_end(ended_at_ms, cooldown_secs);
        let st = tx
            .prepare_cached("UPDATE numbers SET cooldown_until_ms = GREATEST(cooldown_until_ms, $2) WHERE number = $1")
            .await
            .map_err(pg("preparing a cooldown"))?;
        tx.execute(&st, &[&number, &until]).await.map_err(pg("starting a cooldown"))?;
    }
    effects.ended.push(id);
    Ok(ended_at_ms)
}

/// Leases `number` of `pool` to the session.
#[allow(clippy::too_many_arguments, reason = "the lease's parts, each from a different place")]
async fn start(
    tx: &Tx<'_>,
    site: &Site,
    pool: &Pool,
    number: &PhoneNumber,
    session_id: &str,
    client: Option<Groups>,
    now_ms: i64,
    effects: &mut Effects,
) -> Result<VisitOutcome, StorageError> {
    let expires_at_ms = lease::expiry(now_ms, pool.hold_secs);
    let st = tx
        .prepare_cached(
            "INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .await
        .map_err(pg("preparing a lease"))?;
    let hold_secs = i32::try_from(pool.hold_secs).unwrap_or(i32::MAX);
    let row = tx
        .query_one(&st, &[&site.id, &pool.id, &number.e164(), &session_id, &now_ms, &expires_at_ms, &hold_secs])
        .await
        .map_err(pg("starting a lease"))?;
    if let Some(groups) = client {
        effects.held.push((row.get(0), session_id.to_owned(), groups));
    }
    Ok(leased(session_id, number, expires_at_ms))
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

/// A session holds numbers in one pool at a time: a visit routed to
/// `pool_index` releases the live leases it holds in the site's other pools,
/// each under its number's lock (one another transaction holds is being
/// taken from the session anyway).
async fn release_other_pools(
    tx: &Tx<'_>,
    site: &Site,
    pool_index: usize,
    session_id: &str,
    now_ms: i64,
    effects: &mut Effects,
) -> Result<(), StorageError> {
    let st = tx
        .prepare_cached(
            "SELECT id, number, pool_id FROM leases
             WHERE session_id = $1 AND site_id = $2 AND pool_id <> $3 AND ended_at_ms IS NULL AND expires_at_ms > $4",
        )
        .await
        .map_err(pg("preparing the read of a session's leases"))?;
    let held = tx
        .query(&st, &[&session_id, &site.id, &site.pools[pool_index].id, &now_ms])
        .await
        .map_err(pg("reading a session's leases"))?;
    for row in held {
        let (id, number, pool_id): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let Some(pool) = site.pools.iter().find(|p| p.id == pool_id) else { continue };
        if !try_lock(tx, &number).await? {
            continue;
        }
        // Under the lock: still this session's and open?
        let st = tx
            .prepare_cached("SELECT 1 FROM leases WHERE id = $1 AND ended_at_ms IS NULL AND expires_at_ms > $2")
            .await
            .map_err(pg("preparing a lease check"))?;
        if tx.query_opt(&st, &[&id, &now_ms]).await.map_err(pg("checking a lease"))?.is_some() {
            end(tx, id, &number, now_ms, LeaseEnd::Released, Some(pool.cooldown_secs), effects).await?;
        }
    }
    Ok(())
}

/// The visitor's number from `site.pools[pool_index]`, inside the visit's
/// transaction; `refusals` gets the refusal to count, if any.
#[allow(clippy::too_many_arguments, reason = "the visit's parts")]
pub(super) async fn lease(
    tx: &Tx<'_>,
    fair: &std::sync::Mutex<Fair>,
    site: &Site,
    pool_index: usize,
    visitor: &Visitor<'_>,
    client: Option<Groups>,
    now_ms: i64,
    effects: &mut Effects,
    refusals: &mut Vec<Refusal>,
) -> Result<VisitOutcome, StorageError> {
    end_expired(tx, site, now_ms, effects).await?;
    release_other_pools(tx, site, pool_index, visitor.session_id, now_ms, effects).await?;
    let config = &site.pools[pool_index];
    let e164: Vec<String> = config.numbers.iter().map(PhoneNumber::e164).collect();
    let rows = read_numbers(tx, &e164, config.cooldown_secs, now_ms).await?;
    let size = rows.len();
    let mut view = PoolView { rows, locked: vec![false; size], busy: vec![false; size] };
    let mut first = true;
    loop {
        let (action, refusal) = {
            let mut fair = fair.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            decide(&mut fair, &view, site, config, visitor, client, now_ms, first, effects)
        };
        first = false;
        // A visitor refused while numbers were being decided by others
        // waits for one of them and decides again: a refusal is only ever
        // answered for a pool that was exhausted when it was answered.
        let refused = refusal.is_some() && action.number().is_none_or(|i| view.busy[i]);
        if refused && let Some(i) = view.busy.iter().position(|&b| b) {
            lock(tx, &e164[i]).await?;
            view.busy[i] = false;
            view.locked[i] = true;
            view.rows[i] = read_numbers(tx, std::slice::from_ref(&e164[i]), config.cooldown_secs, now_ms)
                .await?
                .pop()
                .expect("one number read");
            continue;
        }
        if let Some(i) = action.number()
            && !view.locked[i]
        {
            if !try_lock(tx, &e164[i]).await? {
                view.busy[i] = true;
                view.rows[i] = NumberRow { state: busy_state(), open: None };
                continue;
            }
            view.locked[i] = true;
            let fresh = read_numbers(tx, std::slice::from_ref(&e164[i]), config.cooldown_secs, now_ms)
                .await?
                .pop()
                .expect("one number read");
            if fresh != view.rows[i] {
                view.rows[i] = fresh;
                continue;
            }
        }
        if let Some(refusal) = refusal {
            refusals.push(refusal);
        }
        let session_id = visitor.session_id;
        return match action {
            Action::Renew(i) => {
                let (id, _) = view.rows[i].open.ok_or_else(no_row)?;
                let expires_at_ms = lease::expiry(now_ms, config.hold_secs);
                let st = tx
                    .prepare_cached("UPDATE leases SET expires_at_ms = $2 WHERE id = $1")
                    .await
                    .map_err(pg("preparing a renewal"))?;
                tx.execute(&st, &[&id, &expires_at_ms]).await.map_err(pg("renewing a lease"))?;
                if let Some(groups) = client {
                    effects.held.push((id, session_id.to_owned(), groups));
                }
                Ok(leased(session_id, &config.numbers[i], expires_at_ms))
            }
            Action::HandOver(i) => {
                // Same visitor (client id) in a new session: the number moves
                // to the new session at once, without cooldown, so calls are
                // attributed to the session the visitor is in now.
                let (id, _) = view.rows[i].open.ok_or_else(no_row)?;
                let ended = end(tx, id, &e164[i], now_ms, LeaseEnd::HandedOver, None, effects).await?;
                start(tx, site, config, &config.numbers[i], session_id, client, now_ms.max(ended), effects).await
            }
            Action::Start(i) => {
                if let Some((id, expires_at_ms)) = view.rows[i].open {
                    // The hold ran out: the lease ends at its expiry.
                    let cooldown = Some(config.cooldown_secs);
                    end(tx, id, &e164[i], expires_at_ms, LeaseEnd::Expired, cooldown, effects).await?;
                }
                // Free now, or back to whoever held it last: after its end.
                start(tx, site, config, &config.numbers[i], session_id, client, now_ms, effects).await
            }
            Action::TakeOver(i) => {
                let (id, _) = view.rows[i].open.ok_or_else(no_row)?;
                let ended = end(tx, id, &e164[i], now_ms, LeaseEnd::TakenOver, None, effects).await?;
                start(tx, site, config, &config.numbers[i], session_id, client, now_ms.max(ended), effects).await
            }
            Action::Overflow => Ok(match &site.overflow_number {
                Some(n) => VisitOutcome {
                    session_id: session_id.to_owned(),
                    kind: NumberKind::Lease,
                    number: Some(n.clone()),
                    expires_at_ms: None,
                    overflow: true,
                    promo_code: None,
                },
                // Configuration validation requires an overflow number for
                // this policy; without one the original is the safe answer.
                None => VisitOutcome::original(session_id.to_owned()),
            }),
            Action::Original => Ok(VisitOutcome::original(session_id.to_owned())),
        };
    }
}

/// Core's decision over the view, as the SQLite adapter makes it over its
/// book: the pick, then for a visitor refused a free number the fair-share
/// preemption, then the pool's policy. `count_ask`: this is the visit's
/// first decision, whose ask for a fresh number counts towards its groups'
/// demand (from the commit on; here it is added to what the rules read).
#[allow(clippy::too_many_arguments, reason = "the decision's inputs")]
fn decide(
    fair: &mut Fair,
    view: &PoolView,
    site: &Site,
    config: &Pool,
    visitor: &Visitor<'_>,
    client: Option<Groups>,
    now_ms: i64,
    count_ask: bool,
    effects: &mut Effects,
) -> (Action, Option<Refusal>) {
    let states: Vec<NumberState> = view.rows.iter().map(|r| r.state.clone()).collect();
    let pick = lease::pick(&states, visitor, now_ms);
    let asking = match (client, pick) {
        (Some(groups), Pick::Fresh(_) | Pick::Exhausted) => Some(groups),
        _ => None,
    };
    if count_ask && let Some(groups) = asking {
        effects.ask = Some((site.id.clone(), config.id.clone(), config.hold_secs, groups, now_ms));
    }
    let asked = effects.ask.as_ref().map(|a| a.3);
    let holders: Vec<Option<Groups>> = view
        .rows
        .iter()
        .map(|r| {
            let (Some(live), Some((id, _))) = (&r.state.live, r.open) else { return None };
            fair.holders.get(&id).filter(|(session, _)| *session == live.holder.session_id).map(|(_, g)| *g)
        })
        .collect();
    let held = lease::held_by_group(&states, &holders, now_ms);
    let demand = fair.demand.get(&(site.id.clone(), config.id.clone()));
    let demand_of = |level: Level, key: u128| {
        let stored = demand.map_or(0.0, |d| d.of(level, key, now_ms));
        let own = asked.is_some_and(|g| g.key(level) == key);
        stored + if own { 1.0 } else { 0.0 }
    };
    let held_of = |level, key| held.get(&(level, key)).copied().unwrap_or(0);
    let size = states.len();
    // Flooding: more fresh asks (halving every hold time) than twice the
    // pool's numbers.
    let rules = Fairness {
        holders: &holders,
        caps: config.shares.caps(size),
        flood_above: 2.0 * size as f64,
        demand: &demand_of,
        held: &held_of,
    };
    let capped = client.as_ref().is_some_and(|g| rules.capped(g));
    let e164 = |i: usize| config.numbers[i].e164();
    match pick {
        Pick::Renew(i) => {
            let holder = &states[i].live.as_ref().expect("a renewed number is live").holder.session_id;
            let action = if holder == visitor.session_id { Action::Renew(i) } else { Action::HandOver(i) };
            (action, None)
        }
        Pick::Return(i) | Pick::Fresh(i) if !capped => (Action::Start(i), None),
        Pick::Return(_) | Pick::Fresh(_) | Pick::Exhausted => {
            let reason = if pick == Pick::Exhausted { "exhausted" } else { "over-share" };
            let policy = config.on_exhaustion.as_str();
            // A number held against the fair shares goes to a newcomer
            // within them, whatever the pool's policy.
            if let Some(i) = client.as_ref().and_then(|g| rules.preempt(&states, g, now_ms)) {
                let refusal = Refusal { reason, policy, outcome: "taken-over", number: e164(i) };
                return (Action::TakeOver(i), Some(refusal));
            }
            // The take-over policy spares the groups this visitor is
            // louder than, and one refused for its share takes over only
            // what its own client holds.
            let decision = match (config.on_exhaustion, client) {
                (ExhaustionPolicy::TakeOverOldest, Some(g)) => rules
                    .take_over_oldest(&states, &g, capped, now_ms)
                    .map_or(Exhaustion::Original, Exhaustion::TakeOver),
                (policy, _) if pick == Pick::Exhausted => lease::on_exhaustion(policy, &states, now_ms),
                (ExhaustionPolicy::Overflow, _) => Exhaustion::Overflow,
                _ => Exhaustion::Original,
            };
            match decision {
                Exhaustion::Overflow => {
                    let number = site.overflow_number.as_ref().map(PhoneNumber::e164).unwrap_or_default();
                    (Action::Overflow, Some(Refusal { reason, policy, outcome: "overflow", number }))
                }
                Exhaustion::Original => {
                    (Action::Original, Some(Refusal { reason, policy, outcome: "original", number: String::new() }))
                }
                Exhaustion::TakeOver(i) => {
                    (Action::TakeOver(i), Some(Refusal { reason, policy, outcome: "taken-over", number: e164(i) }))
                }
            }
        }
    }
}

/// A heartbeat's renewal of the session's live lease.
pub(super) struct Renewed {
    pub(super) number: PhoneNumber,
    pub(super) expires_at_ms: i64,
    /// Whether the lease row changed (a beat too soon changes nothing).
    pub(super) written: bool,
}

/// Renews the session's live lease in one of the site's pools, if it holds
/// one: as far as a heartbeat alone may (`lease::heartbeat_expiry`, from the
/// session's last visit or page view), and only once it has moved by half a
/// heartbeat.
pub(super) async fn renew(
    tx: &Tx<'_>,
    site: &Site,
    session_id: &str,
    client: Option<Groups>,
    now_ms: i64,
    effects: &mut Effects,
) -> Result<Option<Renewed>, StorageError> {
    let st = tx
        .prepare_cached(
            "SELECT l.id, l.pool_id, l.number, l.expires_at_ms, l.hold_secs,
                    GREATEST(l.started_at_ms, (SELECT MAX(at_ms) FROM page_views WHERE session_id = l.session_id))
             FROM leases l
             WHERE l.session_id = $1 AND l.site_id = $2 AND l.ended_at_ms IS NULL AND l.expires_at_ms > $3
             ORDER BY l.id",
        )
        .await
        .map_err(pg("preparing the read of a session's lease"))?;
    let held = tx.query(&st, &[&session_id, &site.id, &now_ms]).await.map_err(pg("reading a session's lease"))?;
    for row in held {
        let (id, pool_id, number): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let (current, hold_secs, active_ms): (i64, i32, i64) = (row.get(3), row.get(4), row.get(5));
        // Only the numbers the configuration still has in the pool.
        let Some(config) = site.pools.iter().find(|p| p.id == pool_id) else { continue };
        let Some(n) = config.numbers.iter().position(|p| p.e164() == number) else { continue };
        if let Some(groups) = client {
            effects.held.push((id, session_id.to_owned(), groups));
        }
        let hold_secs = u32::try_from(hold_secs).unwrap_or(config.hold_secs);
        let target = lease::heartbeat_expiry(now_ms, hold_secs, active_ms, config.heartbeat_only_secs);
        let number = config.numbers[n].clone();
        if target - current < i64::from(config.heartbeat_secs) * 500 {
            return Ok(Some(Renewed { number, expires_at_ms: current, written: false }));
        }
        let st = tx
            .prepare_cached("UPDATE leases SET expires_at_ms = $2 WHERE id = $1 AND ended_at_ms IS NULL")
            .await
            .map_err(pg("preparing a renewal"))?;
        if tx.execute(&st, &[&id, &target]).await.map_err(pg("renewing a lease"))? == 1 {
            return Ok(Some(Renewed { number, expires_at_ms: target, written: true }));
        }
        // Taken over while this beat waited for the lease's row.
        if client.is_some() {
            effects.held.pop();
        }
    }
    Ok(None)
}

fn no_row() -> StorageError {
    StorageError::Corrupt("a live number has no open lease row".to_owned())
}
