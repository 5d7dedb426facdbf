//! [`Storage`] on one SQLite file.
//!
//! One connection behind a mutex does all the work: SQLite allows a single
//! writer anyway, every request here writes (sessions, touches, leases), and
//! WAL lets outside readers (reports, tests, `sqlite3`) read meanwhile.
//! Writes that must be atomic run in `BEGIN IMMEDIATE`, which takes the write
//! lock up front so two processes on the same file cannot interleave a lease.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ringsource_core::lease::{self, Exhaustion, Holder, LiveLease, NumberState, Pick, Visitor};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::touch::Touch;
use ringsource_core::wire::NumberKind;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use super::{Renewal, Storage, StorageError, VisitCommand, VisitOutcome, Want};
use crate::clock::Clock;
use crate::config::{Pool, Site};

mod calls;
pub mod money;
mod pools;

const SCHEMA_V1: &str = include_str!("schema_v1.sql");
const SCHEMA_V2: &str = include_str!("schema_v2.sql");
const SCHEMA_V3: &str = include_str!("schema_v3.sql");

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(SCHEMA_V1), M::up(SCHEMA_V2), M::up(SCHEMA_V3)])
}

/// Wraps a rusqlite error with what was being done.
fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |source| StorageError::Sql { doing, source }
}

pub struct SqliteStorage {
    inner: Mutex<Inner>,
}

struct Inner {
    conn: Connection,
    /// The latest time handed out, so time under the lock never runs
    /// backwards even if the wall clock does (NTP steps).
    last_now_ms: i64,
}

impl SqliteStorage {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StorageError::CreateDir { path: dir.display().to_string(), source })?;
        }
        let open_err = |source| StorageError::Open { path: path.display().to_string(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        // WAL + NORMAL: durable at checkpoints, ~40x the transactions of FULL
        // on this hardware; a power cut can lose the last few leases, which
        // heal on the next heartbeat.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(open_err)?;
        migrations().to_latest(&mut conn)?;
        Ok(Self { inner: Mutex::new(Inner { conn, last_now_ms: i64::MIN }) })
    }

    /// The connection and the current time, read under the lock.
    fn lock(&self, clock: &dyn Clock) -> (MutexGuard<'_, Inner>, i64) {
        // A panic inside a transaction rolls it back when the transaction is
        // dropped, so the connection is still consistent after poisoning.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let now_ms = clock.now_ms().max(inner.last_now_ms);
        inner.last_now_ms = now_ms;
        (inner, now_ms)
    }
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StorageError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("beginning a write transaction"))
}

impl Storage for SqliteStorage {
    fn sync_sites(&self, sites: &[Site], clock: &dyn Clock) -> Result<(), StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        tx.execute("UPDATE numbers SET active = 0", []).map_err(sql("deactivating numbers"))?;
        for site in sites {
            tx.execute(
                "INSERT INTO sites (id, updated_at_ms) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET updated_at_ms = excluded.updated_at_ms",
                params![site.id, now_ms],
            )
            .map_err(sql("saving a site"))?;
            let upsert = |number: &PhoneNumber, kind: &str, pool: Option<&str>, label: Option<&str>| {
                tx.execute(
                    "INSERT INTO numbers (number, site_id, kind, pool_id, label, active) VALUES (?1, ?2, ?3, ?4, ?5, 1)
                     ON CONFLICT(number) DO UPDATE SET site_id = excluded.site_id, kind = excluded.kind,
                        pool_id = excluded.pool_id, label = excluded.label, active = 1",
                    params![number.e164(), site.id, kind, pool, label],
                )
                .map(drop)
                .map_err(sql("saving a number"))
            };
            for n in &site.originals {
                upsert(n, "original", None, None)?;
            }
            if let Some(n) = &site.overflow_number {
                upsert(n, "overflow", None, None)?;
            }
            for s in &site.static_numbers {
                upsert(&s.number, "static", None, Some(&s.label))?;
            }
            for p in &site.pools {
                for n in &p.numbers {
                    upsert(n, "pool", Some(&p.id), None)?;
                }
            }
        }
        tx.commit().map_err(sql("committing the site sync"))
    }

    fn visit(&self, cmd: &VisitCommand<'_>, clock: &dyn Clock) -> Result<VisitOutcome, StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        let session_id = upsert_session(&tx, cmd, now_ms)?;
        record_touches(&tx, &session_id, cmd.touch, cmd.first_touch, now_ms)?;
        tx.execute(
            "INSERT INTO page_views (session_id, at_ms, url, title) VALUES (?1, ?2, ?3, ?4)",
            params![session_id, now_ms, cmd.page_url, cmd.page_title],
        )
        .map_err(sql("recording the landing page view"))?;
        let outcome = match cmd.want {
            Want::Original => VisitOutcome {
                session_id,
                kind: NumberKind::Original,
                number: None,
                expires_at_ms: None,
                overflow: false,
                promo_code: None,
            },
            Want::Static(number) => VisitOutcome {
                session_id,
                kind: NumberKind::Static,
                number: Some(number.clone()),
                expires_at_ms: None,
                overflow: false,
                promo_code: None,
            },
            Want::Pool(pool) => lease_from_pool(&tx, cmd.site, pool, session_id, now_ms)?,
            Want::Promo(promo) => {
                match calls::promo_code_for(&tx, cmd.site, promo, &session_id, now_ms)? {
                    Some(code) => VisitOutcome {
                        session_id,
                        kind: NumberKind::Promo,
                        number: None,
                        expires_at_ms: None,
                        overflow: false,
                        promo_code: Some(code),
                    },
                    // No free code: the original number, as for any visit
                    // that gets nothing to track.
                    None => original(session_id),
                }
            }
        };
        tx.commit().map_err(sql("committing the visit"))?;
        Ok(outcome)
    }

    fn heartbeat(&self, site: &Site, session_id: &str, clock: &dyn Clock) -> Result<Renewal, StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        let live: Option<(i64, String, u32)> = tx
            .query_row(
                "SELECT id, number, hold_secs FROM leases
                 WHERE site_id = ?1 AND session_id = ?2 AND ended_at_ms IS NULL AND expires_at_ms > ?3
                 ORDER BY id DESC LIMIT 1",
                params![site.id, session_id, now_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("finding the session's lease"))?;
        let renewal = match live {
            Some((id, number, hold_secs)) => {
                let expires_at_ms = lease::expiry(now_ms, hold_secs);
                tx.execute("UPDATE leases SET expires_at_ms = ?1 WHERE id = ?2", params![expires_at_ms, id])
                    .map_err(sql("renewing a lease"))?;
                tx.execute("UPDATE sessions SET last_seen_ms = ?1 WHERE id = ?2", params![now_ms, session_id])
                    .map_err(sql("touching the session"))?;
                Renewal::Renewed { number: parse_stored(&number)?, expires_at_ms }
            }
            None if session_exists(&tx, &site.id, session_id)? => Renewal::Gone,
            None => Renewal::UnknownSession,
        };
        tx.commit().map_err(sql("committing the heartbeat"))?;
        Ok(renewal)
    }

    fn page_view(
        &self,
        site: &Site,
        session_id: &str,
        url: &str,
        title: Option<&str>,
        clock: &dyn Clock,
    ) -> Result<bool, StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        if !session_exists(&tx, &site.id, session_id)? {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO page_views (session_id, at_ms, url, title) VALUES (?1, ?2, ?3, ?4)",
            params![session_id, now_ms, url, title],
        )
        .map_err(sql("recording a page view"))?;
        tx.execute("UPDATE sessions SET last_seen_ms = ?1 WHERE id = ?2", params![now_ms, session_id])
            .map_err(sql("touching the session"))?;
        tx.commit().map_err(sql("committing the page view"))?;
        Ok(true)
    }
}

fn parse_stored(number: &str) -> Result<PhoneNumber, StorageError> {
    PhoneNumber::parse(number).map_err(|e| StorageError::Corrupt(format!("stored number {number:?}: {e}")))
}

fn session_exists(tx: &Transaction<'_>, site_id: &str, session_id: &str) -> Result<bool, StorageError> {
    tx.query_row(
        "SELECT 1 FROM sessions WHERE id = ?1 AND site_id = ?2",
        params![session_id, site_id],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(sql("looking up a session"))
}

/// Continues the browser's session when it belongs to this site, else starts
/// one (keeping the browser's id when nobody uses it yet, so a browser that
/// outlived a database reset keeps its id). Returns the session id.
fn upsert_session(tx: &Transaction<'_>, cmd: &VisitCommand<'_>, now_ms: i64) -> Result<String, StorageError> {
    let owner: Option<String> = match cmd.session_id {
        Some(id) => tx
            .query_row("SELECT site_id FROM sessions WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql("looking up a session"))?,
        None => None,
    };
    let id = match (cmd.session_id, owner) {
        (Some(id), Some(site)) if site == cmd.site.id => {
            tx.execute(
                "UPDATE sessions SET last_seen_ms = ?2, client_id = COALESCE(?3, client_id),
                    ym_uid = COALESCE(?4, ym_uid) WHERE id = ?1",
                params![id, now_ms, cmd.client_id, cmd.ym_uid],
            )
            .map_err(sql("updating a session"))?;
            return Ok(id.to_owned());
        }
        (Some(id), None) => id.to_owned(),
        _ => cmd.new_session_id.clone(),
    };
    tx.execute(
        "INSERT INTO sessions (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![id, cmd.site.id, cmd.client_id, cmd.ym_uid, cmd.user_agent, cmd.is_bot, now_ms],
    )
    .map_err(sql("creating a session"))?;
    Ok(id)
}

fn record_touches(
    tx: &Transaction<'_>,
    session_id: &str,
    last: &Touch,
    first: Option<&Touch>,
    now_ms: i64,
) -> Result<(), StorageError> {
    let has_first = tx
        .query_row("SELECT 1 FROM touches WHERE session_id = ?1 AND role = 'first'", [session_id], |_| Ok(()))
        .optional()
        .map_err(sql("looking up the first touch"))?
        .is_some();
    let insert = |role: &str, t: &Touch| -> Result<(), StorageError> {
        let json = serde_json::to_string(t)
            .map_err(|e| StorageError::Corrupt(format!("a touch does not serialise: {e}")))?;
        tx.execute(
            "INSERT INTO touches (session_id, role, at_ms, recorded_at_ms, channel, source, medium, campaign, term,
                content, click_id_kind, click_id, landing_path, touch_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                session_id,
                role,
                i64::try_from(t.at_ms).unwrap_or(i64::MAX),
                now_ms,
                t.channel.as_str(),
                t.source,
                t.medium,
                t.campaign,
                t.term,
                t.content,
                t.click_id.as_ref().map(|c| c.kind.param()),
                t.click_id.as_ref().map(|c| c.value.as_str()),
                t.landing_path,
                json
            ],
        )
        .map(drop)
        .map_err(sql("recording a touch"))
    };
    if !has_first {
        insert("first", first.unwrap_or(last))?;
    }
    insert("last", last)
}

/// Cooldown of each pool number of the site, by E.164.
fn cooldowns(site: &Site) -> HashMap<String, u32> {
    site.pools
        .iter()
        .flat_map(|p| p.numbers.iter().map(move |n| (n.e164(), p.cooldown_secs)))
        .collect()
}

/// Ends a lease at `at_ms` and starts the number's cooldown from then.
fn end_lease(
    tx: &Transaction<'_>,
    lease_id: i64,
    number: &str,
    at_ms: i64,
    reason: &str,
    cooldown_secs: u32,
) -> Result<(), StorageError> {
    tx.execute(
        "UPDATE leases SET ended_at_ms = ?2, end_reason = ?3 WHERE id = ?1",
        params![lease_id, at_ms, reason],
    )
    .map_err(sql("ending a lease"))?;
    tx.execute(
        "UPDATE numbers SET cooldown_until_ms = MAX(cooldown_until_ms, ?2) WHERE number = ?1",
        params![number, lease::cooldown_end(at_ms, cooldown_secs)],
    )
    .map_err(sql("starting a cooldown"))?;
    Ok(())
}

/// The visitor's number from `pool`, inside the visit's transaction.
fn lease_from_pool(
    tx: &Transaction<'_>,
    site: &Site,
    pool: &Pool,
    session_id: String,
    now_ms: i64,
) -> Result<VisitOutcome, StorageError> {
    let cooldown_of = cooldowns(site);
    // 1. Close the site's expired leases; their cooldown runs from expiry.
    let expired: Vec<(i64, String, i64)> = {
        let mut st = tx
            .prepare_cached(
                "SELECT id, number, expires_at_ms FROM leases
                 WHERE site_id = ?1 AND ended_at_ms IS NULL AND expires_at_ms <= ?2",
            )
            .map_err(sql("finding expired leases"))?;
        st.query_map(params![site.id, now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(sql("finding expired leases"))?
    };
    for (id, number, expires_at_ms) in expired {
        let cd = cooldown_of.get(&number).copied().unwrap_or(pool.cooldown_secs);
        end_lease(tx, id, &number, expires_at_ms, "expired", cd)?;
    }
    // 2. A session holds numbers in one pool at a time: moving to another
    //    source releases the number of the previous one.
    let elsewhere: Vec<(i64, String)> = {
        let mut st = tx
            .prepare_cached(
                "SELECT id, number FROM leases
                 WHERE site_id = ?1 AND session_id = ?2 AND pool_id <> ?3 AND ended_at_ms IS NULL",
            )
            .map_err(sql("finding the session's other leases"))?;
        st.query_map(params![site.id, session_id, pool.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(sql("finding the session's other leases"))?
    };
    for (id, number) in elsewhere {
        let cd = cooldown_of.get(&number).copied().unwrap_or(pool.cooldown_secs);
        end_lease(tx, id, &number, now_ms, "released", cd)?;
    }

    // 3. The pool's state, in configured order.
    let client_id: Option<String> = tx
        .query_row("SELECT client_id FROM sessions WHERE id = ?1", [&session_id], |r| r.get(0))
        .map_err(sql("reading the session"))?;
    let mut states = Vec::with_capacity(pool.numbers.len());
    let mut open_ids = Vec::with_capacity(pool.numbers.len());
    for number in &pool.numbers {
        let e164 = number.e164();
        let open: Option<(i64, String, Option<String>, i64, i64)> = tx
            .prepare_cached(
                "SELECT l.id, l.session_id, s.client_id, l.started_at_ms, l.expires_at_ms
                 FROM leases l JOIN sessions s ON s.id = l.session_id
                 WHERE l.number = ?1 AND l.ended_at_ms IS NULL",
            )
            .and_then(|mut st| st.query_row([&e164], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional())
            .map_err(sql("reading a number's lease"))?;
        let last_holder = if open.is_none() {
            tx.prepare_cached(
                "SELECT l.session_id, s.client_id FROM leases l JOIN sessions s ON s.id = l.session_id
                 WHERE l.number = ?1 ORDER BY l.id DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row([&e164], |r| Ok(Holder { session_id: r.get(0)?, client_id: r.get(1)? })).optional()
            })
            .map_err(sql("reading a number's last holder"))?
        } else {
            None
        };
        let cooldown_until_ms: i64 = tx
            .query_row("SELECT cooldown_until_ms FROM numbers WHERE number = ?1", [&e164], |r| r.get(0))
            .map_err(sql("reading a number's cooldown"))?;
        open_ids.push(open.as_ref().map(|o| (o.0, o.1.clone())));
        states.push(NumberState {
            live: open.map(|(_, session_id, client_id, started_at_ms, expires_at_ms)| LiveLease {
                holder: Holder { session_id, client_id },
                started_at_ms,
                expires_at_ms,
            }),
            last_holder,
            cooldown_until_ms,
        });
    }

    let visitor = Visitor { session_id: &session_id, client_id: client_id.as_deref() };
    let leased = |tx: &Transaction<'_>, i: usize| -> Result<VisitOutcome, StorageError> {
        let expires_at_ms = lease::expiry(now_ms, pool.hold_secs);
        tx.execute(
            "INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![site.id, pool.id, pool.numbers[i].e164(), session_id, now_ms, expires_at_ms, pool.hold_secs],
        )
        .map_err(sql("starting a lease"))?;
        Ok(VisitOutcome {
            session_id: session_id.clone(),
            kind: NumberKind::Lease,
            number: Some(pool.numbers[i].clone()),
            expires_at_ms: Some(expires_at_ms),
            overflow: false,
                promo_code: None,
        })
    };
    match lease::pick(&states, &visitor, now_ms) {
        Pick::Renew(i) => {
            let (lease_id, holder) = open_ids[i].clone().ok_or_else(|| {
                StorageError::Corrupt("a live number has no open lease row".to_owned())
            })?;
            if holder == session_id {
                let expires_at_ms = lease::expiry(now_ms, pool.hold_secs);
                tx.execute("UPDATE leases SET expires_at_ms = ?1 WHERE id = ?2", params![expires_at_ms, lease_id])
                    .map_err(sql("renewing a lease"))?;
                Ok(VisitOutcome {
                    session_id,
                    kind: NumberKind::Lease,
                    number: Some(pool.numbers[i].clone()),
                    expires_at_ms: Some(expires_at_ms),
                    overflow: false,
                promo_code: None,
                })
            } else {
                // Same visitor (client id) in a new session: the number moves
                // to the new session at once, without cooldown, so calls are
                // attributed to the session the visitor is in now.
                tx.execute(
                    "UPDATE leases SET ended_at_ms = ?2, end_reason = 'handed_over' WHERE id = ?1",
                    params![lease_id, now_ms],
                )
                .map_err(sql("handing a lease over"))?;
                leased(tx, i)
            }
        }
        Pick::Return(i) | Pick::Fresh(i) => leased(tx, i),
        Pick::Exhausted => {
            let decision = lease::on_exhaustion(pool.on_exhaustion, &states, now_ms);
            let (outcome, number, taken_from) = match decision {
                Exhaustion::Overflow => ("overflow", site.overflow_number.as_ref().map(PhoneNumber::e164), None),
                Exhaustion::Original => ("original", None, None),
                Exhaustion::TakeOver(i) => {
                    ("taken-over", Some(pool.numbers[i].e164()), open_ids[i].as_ref().map(|o| o.1.clone()))
                }
            };
            tx.execute(
                "INSERT INTO pool_events (site_id, pool_id, at_ms, session_id, policy, outcome, number, taken_from_session)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![site.id, pool.id, now_ms, session_id, pool.on_exhaustion.as_str(), outcome, number, taken_from],
            )
            .map_err(sql("recording a pool exhaustion"))?;
            match decision {
                Exhaustion::Overflow => match &site.overflow_number {
                    Some(n) => Ok(VisitOutcome {
                        session_id,
                        kind: NumberKind::Lease,
                        number: Some(n.clone()),
                        expires_at_ms: None,
                        overflow: true,
                        promo_code: None,
                    }),
                    // Configuration validation requires an overflow number for
                    // this policy; without one the original is the safe answer.
                    None => Ok(original(session_id)),
                },
                Exhaustion::Original => Ok(original(session_id)),
                Exhaustion::TakeOver(i) => {
                    let (lease_id, _) = open_ids[i].clone().ok_or_else(|| {
                        StorageError::Corrupt("a live number has no open lease row".to_owned())
                    })?;
                    tx.execute(
                        "UPDATE leases SET ended_at_ms = ?2, end_reason = 'taken_over' WHERE id = ?1",
                        params![lease_id, now_ms],
                    )
                    .map_err(sql("taking a lease over"))?;
                    leased(tx, i)
                }
            }
        }
    }
}

fn original(session_id: String) -> VisitOutcome {
    VisitOutcome { session_id, kind: NumberKind::Original, number: None, expires_at_ms: None, overflow: false, promo_code: None }
}
