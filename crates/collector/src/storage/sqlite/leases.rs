//! Leases of pool numbers, decided from the writer's in-memory book.
//!
//! A lease decision needs the state of every number of the pool. Reading it
//! from SQLite took three queries per number on every visit; the book keeps it
//! in memory instead, loaded once per site and changed only together with the
//! rows it mirrors, inside the same transaction. The database stays the truth:
//! every change is written before the visitor is answered, the partial unique
//! index still refuses a second open lease of a number, and the writer drops
//! the book whenever a write fails or another connection changed the file.

use std::collections::HashMap;

use ringsource_core::lease::{self, Exhaustion, Holder, LiveLease, NumberState, Pick, Visitor};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::wire::NumberKind;
use rusqlite::{OptionalExtension, Transaction, params};

use super::sql;
use crate::config::{Pool, Site};
use crate::storage::{StorageError, VisitOutcome};

/// The state of every pool number, by site, as the database holds it.
#[derive(Default)]
pub(super) struct LeaseBook {
    sites: HashMap<String, SiteBook>,
    /// SQLite's `data_version` when the book was last in step: it changes
    /// when another connection (another process, `sqlite3`, a test) commits.
    data_version: Option<i64>,
}

/// One site's pools, in configured order; each pool's numbers likewise.
struct SiteBook {
    pools: Vec<PoolBook>,
}

/// Parallel to `Pool::numbers`: the state the pick rules read, and the open
/// lease row behind each live number.
struct PoolBook {
    e164: Vec<String>,
    states: Vec<NumberState>,
    open: Vec<Option<OpenLease>>,
}

#[derive(Clone, Copy)]
struct OpenLease {
    id: i64,
    hold_secs: u32,
}

impl LeaseBook {
    /// Forgets everything; the next use reloads from the database.
    pub(super) fn clear(&mut self) {
        self.sites.clear();
        self.data_version = None;
    }

    /// Forgets the book if another connection wrote to the file since it
    /// was last in step. Call at the start of each write transaction.
    pub(super) fn check_outside_writes(&mut self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        let version: i64 = tx
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(sql("reading the database's data version"))?;
        if self.data_version != Some(version) {
            self.sites.clear();
            self.data_version = Some(version);
        }
        Ok(())
    }

    fn site(&mut self, tx: &Transaction<'_>, site: &Site) -> Result<&mut SiteBook, StorageError> {
        if !self.sites.contains_key(&site.id) {
            let loaded = SiteBook::load(tx, site)?;
            self.sites.insert(site.id.clone(), loaded);
        }
        Ok(self.sites.get_mut(&site.id).expect("inserted above"))
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

    /// Renews the session's live lease, if it has one: its number and new expiry.
    pub(super) fn renew(
        &mut self,
        tx: &Transaction<'_>,
        site: &Site,
        session_id: &str,
        now_ms: i64,
    ) -> Result<Option<(PhoneNumber, i64)>, StorageError> {
        let book = self.site(tx, site)?;
        for (p, pool) in book.pools.iter_mut().enumerate() {
            let held = pool.states.iter().position(|state| {
                state.live.as_ref().is_some_and(|live| {
                    live.holder.session_id == session_id && lease::is_live(live.expires_at_ms, now_ms)
                })
            });
            if let Some(n) = held {
                let open = pool.open[n].ok_or_else(no_row)?;
                let expires_at_ms = lease::expiry(now_ms, open.hold_secs);
                pool.extend(tx, n, expires_at_ms)?;
                return Ok(Some((site.pools[p].numbers[n].clone(), expires_at_ms)));
            }
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
        now_ms: i64,
    ) -> Result<VisitOutcome, StorageError> {
        let book = self.site(tx, site)?;
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
                    pool.end(tx, n, at, "expired", Some(cooldown_secs))?;
                } else if p != pool_index && live.holder.session_id == session_id {
                    pool.end(tx, n, now_ms, "released", Some(cooldown_secs))?;
                }
            }
        }

        // 3. Pick from the pool's state.
        let config = &site.pools[pool_index];
        let pool = &mut book.pools[pool_index];
        match lease::pick(&pool.states, visitor, now_ms) {
            Pick::Renew(i) => {
                let holder = &pool.states[i].live.as_ref().ok_or_else(no_row)?.holder.session_id;
                if holder == session_id {
                    let expires_at_ms = lease::expiry(now_ms, config.hold_secs);
                    pool.extend(tx, i, expires_at_ms)?;
                    Ok(leased(session_id, &config.numbers[i], expires_at_ms))
                } else {
                    // Same visitor (client id) in a new session: the number
                    // moves to the new session at once, without cooldown, so
                    // calls are attributed to the session the visitor is in now.
                    pool.end(tx, i, now_ms, "handed_over", None)?;
                    pool.start(tx, site, config, i, visitor, now_ms)
                }
            }
            Pick::Return(i) | Pick::Fresh(i) => pool.start(tx, site, config, i, visitor, now_ms),
            Pick::Exhausted => {
                let decision = lease::on_exhaustion(config.on_exhaustion, &pool.states, now_ms);
                let (outcome, number) = match decision {
                    Exhaustion::Overflow => ("overflow", site.overflow_number.as_ref().map(PhoneNumber::e164)),
                    Exhaustion::Original => ("original", None),
                    Exhaustion::TakeOver(i) => ("taken-over", Some(config.numbers[i].e164())),
                };
                let refusal = Refusal { reason: "exhausted", outcome, number: number.as_deref().unwrap_or_default() };
                record_refusal(tx, site, config, now_ms, &refusal)?;
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
                        pool.end(tx, i, now_ms, "taken_over", None)?;
                        pool.start(tx, site, config, i, visitor, now_ms)
                    }
                }
            }
        }
    }
}

impl SiteBook {
    fn load(tx: &Transaction<'_>, site: &Site) -> Result<Self, StorageError> {
        let pools = site.pools.iter().map(|pool| PoolBook::load(tx, pool)).collect::<Result<_, _>>()?;
        Ok(Self { pools })
    }
}

impl PoolBook {
    fn load(tx: &Transaction<'_>, pool: &Pool) -> Result<Self, StorageError> {
        let e164s: Vec<String> = pool.numbers.iter().map(PhoneNumber::e164).collect();
        let mut states = Vec::with_capacity(e164s.len());
        let mut open = Vec::with_capacity(e164s.len());
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
                            OpenLease { id: r.get(0)?, hold_secs: r.get(1)? },
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
            let (row, live) = live.unzip();
            open.push(row);
            states.push(NumberState { live, last_holder, cooldown_until_ms });
        }
        Ok(Self { e164: e164s, states, open })
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
        reason: &str,
        cooldown_secs: Option<u32>,
    ) -> Result<(), StorageError> {
        let open = self.open[n].take().ok_or_else(no_row)?;
        tx.prepare_cached("UPDATE leases SET ended_at_ms = ?2, end_reason = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![open.id, at_ms, reason]))
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
        Ok(())
    }

    /// Leases number `n` to the visitor.
    fn start(
        &mut self,
        tx: &Transaction<'_>,
        site: &Site,
        pool: &Pool,
        n: usize,
        visitor: &Visitor<'_>,
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
        self.open[n] = Some(OpenLease { id: tx.last_insert_rowid(), hold_secs: pool.hold_secs });
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

/// A pool ask that found no free number for the visitor, as counted in
/// `pool_exhaustions`.
struct Refusal<'a> {
    /// `exhausted` or `over-share`.
    reason: &'static str,
    /// `overflow`, `original` or `taken-over`.
    outcome: &'static str,
    /// The number shown, `""` for the original.
    number: &'a str,
}

/// Counts a refusal in its pool's minute: one row per pool, minute and kind,
/// so a flood adds to a count instead of writing a row per visit.
fn record_refusal(
    tx: &Transaction<'_>,
    site: &Site,
    pool: &Pool,
    now_ms: i64,
    refusal: &Refusal<'_>,
) -> Result<(), StorageError> {
    tx.prepare_cached(
        "INSERT INTO pool_exhaustions (site_id, pool_id, minute_ms, reason, policy, outcome, number, events,
             first_at_ms, last_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)
         ON CONFLICT DO UPDATE SET events = events + 1, first_at_ms = MIN(first_at_ms, excluded.first_at_ms),
             last_at_ms = MAX(last_at_ms, excluded.last_at_ms)",
    )
    .and_then(|mut st| {
        st.execute(params![
            site.id,
            pool.id,
            super::visits::minute_of(now_ms),
            refusal.reason,
            pool.on_exhaustion.as_str(),
            refusal.outcome,
            refusal.number,
            now_ms
        ])
    })
    .map(drop)
    .map_err(sql("counting a pool exhaustion"))
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
