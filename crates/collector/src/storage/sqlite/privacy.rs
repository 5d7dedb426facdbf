//! [`PrivacyStore`] on the SQLite file, on a connection of its own.
//!
//! Retention scans whole tables (no index serves "older than" on the tables
//! the visit path writes, and adding one would cost every visit), so it reads
//! on its own connection, outside the collector's lock: WAL lets it read
//! while the writer writes. It then deletes what it found in small write
//! transactions, checking again inside each that every row is still due. The
//! writer notices the deletions through `PRAGMA data_version` and reloads its
//! book of pool numbers, as it does for any other process's writes.
//!
//! Every row that names a session is written while that session is seen (a
//! visit, heartbeat or page view moves `last_seen_ms`), except the calls'
//! rows. So a session still last seen before the cutoff inside a write
//! transaction has no rows beyond those the read found; and the calls that
//! changed since the read are looked at again before any session goes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{SqliteOptions, calls, connect, immediate, migrate, sql};
use crate::clock::Clock;
use crate::storage::StorageError;
use crate::storage::calls::{PageViewView, TouchView};
use crate::storage::privacy::{
    CallExport, Erased, ExportView, LeaseView, PrivacyStore, PromoCodeView, RetentionCutoffs, RetentionReport,
    RevenueView, SessionExport, SessionRows, Subject, SubjectExport,
};

/// Rows per write transaction: a few milliseconds of the write lock each,
/// so the visits queued behind one wait no longer than a batch of their own.
const BATCH: usize = 256;

/// Calls changed this long before the read are looked at again too, in case
/// the collector's clock and this one disagree a little.
const CLOCK_SLACK_MS: i64 = 60_000;

/// The privacy store: its own connection to the collector's database.
pub struct SqlitePrivacy {
    conn: Mutex<Connection>,
}

impl SqlitePrivacy {
    /// Opens (creating and migrating if needed) the database at `path`. The
    /// collector may have it open too.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StorageError::CreateDir { path: dir.display().to_string(), source })?;
        }
        let mut conn = connect(path, SqliteOptions { wal_preallocate_bytes: 0, ..SqliteOptions::default() })?;
        migrate(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A JSON array of texts, for `IN (SELECT value FROM json_each(?))`.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn strings(
    tx: &Transaction<'_>,
    query: &str,
    params: impl rusqlite::Params,
    doing: &'static str,
) -> Result<Vec<String>, StorageError> {
    let mut st = tx.prepare(query).map_err(sql(doing))?;
    st.query_map(params, |r| r.get(0)).and_then(Iterator::collect).map_err(sql(doing))
}

/// (row id, session id) pairs.
fn owned_rows(
    tx: &Transaction<'_>,
    query: &str,
    site: &str,
    doing: &'static str,
) -> Result<Vec<(i64, String, bool)>, StorageError> {
    let mut st = tx.prepare(query).map_err(sql(doing))?;
    st.query_map([site], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).and_then(Iterator::collect).map_err(sql(doing))
}

/// The sessions of `site` that some call names: chosen, named by a promo
/// code, or considered.
fn sessions_named_by_calls(tx: &Transaction<'_>, site: &str) -> Result<HashSet<String>, StorageError> {
    Ok(strings(
        tx,
        "SELECT session_id FROM calls WHERE site_id = ?1 AND session_id IS NOT NULL
         UNION SELECT promo_session_id FROM calls WHERE site_id = ?1 AND promo_session_id IS NOT NULL
         UNION SELECT cc.session_id FROM call_candidates cc JOIN calls c ON c.id = cc.call_id WHERE c.site_id = ?1",
        [site],
        "finding the sessions calls name",
    )?
    .into_iter()
    .collect())
}

/// What the read found due, by id.
#[derive(Default)]
struct Due {
    sessions: Vec<String>,
    /// The rows of the due sessions that no index finds by session.
    children: HashMap<String, Children>,
    /// Old rows of other sessions no call names.
    leases: Vec<i64>,
    promo_codes: Vec<i64>,
    page_views: Vec<i64>,
    user_agents: Vec<String>,
    callers: Vec<i64>,
    exports: Vec<i64>,
}

/// A session's rows in the tables without an index by session, found by one
/// scan of each for the whole pass rather than one per batch.
#[derive(Default)]
struct Children {
    leases: Vec<i64>,
    promo_codes: Vec<i64>,
}

fn find_due(tx: &Transaction<'_>, c: &RetentionCutoffs) -> Result<Due, StorageError> {
    let site = c.site.as_str();
    let named = sessions_named_by_calls(tx, site)?;
    let sessions: Vec<String> = strings(
        tx,
        "SELECT id FROM sessions WHERE site_id = ?1 AND last_seen_ms < ?2",
        params![site, c.sessions_before_ms],
        "finding sessions past their time",
    )?
    .into_iter()
    .filter(|s| !named.contains(s))
    .collect();
    let doomed: HashSet<&str> = sessions.iter().map(String::as_str).collect();
    let mut children: HashMap<String, Children> = HashMap::new();
    // A row goes with its session, or when it is old and its session is
    // not behind a call (a refolded call finds its leases again).
    let mut pick = |rows: Vec<(i64, String, bool)>, of: fn(&mut Children) -> &mut Vec<i64>| -> Vec<i64> {
        let mut old_rows = Vec::new();
        for (id, session, old) in rows {
            if doomed.contains(session.as_str()) {
                of(children.entry(session).or_default()).push(id);
            } else if old && !named.contains(&session) {
                old_rows.push(id);
            }
        }
        old_rows
    };
    let cut = c.session_rows_before_ms;
    let leases = pick(
        owned_rows(
            tx,
            &format!(
                "SELECT id, session_id, MIN(COALESCE(ended_at_ms, expires_at_ms), expires_at_ms) < {cut} FROM leases
                 WHERE site_id = ?1"
            ),
            site,
            "finding old leases",
        )?,
        |c| &mut c.leases,
    );
    let promo_codes = pick(
        owned_rows(
            tx,
            &format!("SELECT id, session_id, reserved_until_ms < {cut} FROM promo_codes WHERE site_id = ?1"),
            site,
            "finding old promo codes",
        )?,
        |c| &mut c.promo_codes,
    );
    let page_views = {
        let mut st = tx
            .prepare(
                "SELECT p.id FROM page_views p JOIN sessions s ON s.id = p.session_id
                 WHERE s.site_id = ?1 AND p.at_ms < ?2",
            )
            .map_err(sql("finding old page views"))?;
        st.query_map(params![site, c.page_views_before_ms], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(sql("finding old page views"))?
    };
    let user_agents = strings(
        tx,
        "SELECT id FROM sessions WHERE site_id = ?1 AND created_at_ms < ?2 AND user_agent <> ''",
        params![site, c.user_agents_before_ms],
        "finding old user agents",
    )?
    .into_iter()
    .filter(|s| !doomed.contains(s.as_str()))
    .collect();
    let callers = match c.callers_before_ms {
        Some(before) => {
            let mut st = tx
                .prepare("SELECT id FROM calls WHERE site_id = ?1 AND caller_key IS NOT NULL AND ring_at_ms < ?2")
                .map_err(sql("finding old callers"))?;
            st.query_map(params![site, before], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(sql("finding old callers"))?
        }
        None => Vec::new(),
    };
    let exports = {
        let mut st = tx
            .prepare(
                "SELECT id FROM outbox WHERE site_id = ?1 AND (status = 'sent' OR status = 'skipped')
                   AND updated_at_ms < ?2",
            )
            .map_err(sql("finding delivered exports"))?;
        st.query_map(params![site, c.exports_before_ms], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(sql("finding delivered exports"))?
    };
    Ok(Due { sessions, children, leases, promo_codes, page_views, user_agents, callers, exports })
}

/// The sessions that calls changed since `since_ms` name: a call recorded
/// after the read may have chosen or considered a session the read found due.
fn sessions_named_since(tx: &Transaction<'_>, site: &str, since_ms: i64) -> Result<HashSet<String>, StorageError> {
    Ok(strings(
        tx,
        "WITH recent AS (SELECT id, session_id, promo_session_id FROM calls WHERE site_id = ?1 AND updated_at_ms >= ?2)
         SELECT session_id FROM recent WHERE session_id IS NOT NULL
         UNION SELECT promo_session_id FROM recent WHERE promo_session_id IS NOT NULL
         UNION SELECT cc.session_id FROM call_candidates cc JOIN recent r ON r.id = cc.call_id",
        params![site, since_ms],
        "finding the sessions recent calls name",
    )?
    .into_iter()
    .collect())
}

/// Deletes rows by id, `BATCH` per transaction; `still_due` is the row's
/// condition, checked again under the write lock.
fn delete_ids(
    conn: &mut Connection,
    table: &'static str,
    still_due: &str,
    ids: &[i64],
    doing: &'static str,
) -> Result<u64, StorageError> {
    let mut removed = 0;
    for chunk in ids.chunks(BATCH) {
        let tx = immediate(conn)?;
        removed += tx
            .execute(
                &format!("DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?1)) AND ({still_due})"),
                [json_list(chunk)],
            )
            .map_err(sql(doing))?;
        tx.commit().map_err(sql(doing))?;
    }
    Ok(count(removed))
}

/// Removes the sessions and every row that names them, inside `tx`. Their
/// touches and page views are found by index; their leases and promo codes
/// by the ids in `children` when the caller scanned for them, else by a scan
/// here (erasure: few sessions, rarely). The pools a session asked are a
/// column of its own row; the pools' counts name no session.
fn delete_sessions(
    tx: &Transaction<'_>,
    sessions: &[String],
    children: Option<&HashMap<String, Children>>,
    report: &mut SessionRows,
) -> Result<(), StorageError> {
    if sessions.is_empty() {
        return Ok(());
    }
    let list = json_list(sessions);
    let run = |statement: &str, list: &str, doing: &'static str| -> Result<u64, StorageError> {
        tx.execute(statement, [list]).map(count).map_err(sql(doing))
    };
    let by_session = |table: &str| format!("DELETE FROM {table} WHERE session_id IN (SELECT value FROM json_each(?1))");
    let by_id = |table: &str| format!("DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?1))");
    report.touches += run(&by_session("touches"), &list, "removing touches")?;
    report.page_views += run(&by_session("page_views"), &list, "removing page views")?;
    match children {
        Some(children) => {
            let ids = |of: fn(&Children) -> &Vec<i64>| {
                json_list(
                    &sessions.iter().filter_map(|s| children.get(s)).flat_map(|c| of(c).clone()).collect::<Vec<_>>(),
                )
            };
            report.leases += run(&by_id("leases"), &ids(|c| &c.leases), "removing leases")?;
            report.promo_codes += run(&by_id("promo_codes"), &ids(|c| &c.promo_codes), "removing promo codes")?;
        }
        None => {
            report.leases += run(&by_session("leases"), &list, "removing leases")?;
            report.promo_codes += run(&by_session("promo_codes"), &list, "removing promo codes")?;
        }
    }
    report.sessions += run(&by_id("sessions"), &list, "removing sessions")?;
    Ok(())
}

/// The caller written with all but its last two digits hidden, in a call's
/// events and its CRM export: what the call's own `caller` becomes.
fn mask_call(tx: &Transaction<'_>, call_id: i64, before_ms: i64) -> Result<bool, StorageError> {
    let caller: Option<String> = tx
        .query_row(
            "SELECT caller FROM calls WHERE id = ?1 AND caller_key IS NOT NULL AND ring_at_ms < ?2",
            params![call_id, before_ms],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("reading a caller"))?
        .flatten();
    let Some(caller) = caller else { return Ok(false) };
    let masked = crate::mask::mask_phone(&caller);
    tx.execute("UPDATE calls SET caller = ?2, caller_key = NULL WHERE id = ?1", params![call_id, masked])
        .map_err(sql("masking a caller"))?;
    let events: Vec<(i64, String)> = {
        let mut st = tx
            .prepare("SELECT id, event_json FROM call_events WHERE call_id = ?1")
            .map_err(sql("reading a call's events"))?;
        st.query_map([call_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(sql("reading a call's events"))?
    };
    for (id, json) in events {
        let mut event: Value = serde_json::from_str(&json)
            .map_err(|e| StorageError::Corrupt(format!("a stored event of call {call_id} does not parse: {e}")))?;
        let Some(from) = event.get("from").and_then(Value::as_str) else { continue };
        event["from"] = Value::String(crate::mask::mask_phone(from));
        // Two events that differed only in how the caller was written are
        // one event once masked: the copy goes (they fold the same).
        tx.execute("UPDATE OR REPLACE call_events SET event_json = ?2 WHERE id = ?1", params![id, event.to_string()])
            .map_err(sql("masking a call event"))?;
    }
    tx.execute(
        "UPDATE outbox SET payload = json_set(payload, '$.data.call.caller', ?2)
         WHERE call_id = ?1 AND kind = 'crm' AND payload ->> '$.data.call.caller' IS NOT NULL",
        params![call_id, masked],
    )
    .map_err(sql("masking a call's export"))?;
    Ok(true)
}

/// One of the subject's calls: its id, chosen session and promo session.
type SubjectCall = (i64, Option<String>, Option<String>);

/// The subject's calls, by ring time.
fn subject_calls(tx: &Transaction<'_>, s: &Subject) -> Result<Vec<SubjectCall>, StorageError> {
    let mut st = tx
        .prepare(
            "SELECT id, session_id, promo_session_id FROM calls
             WHERE site_id = ?1 AND (caller_key = ?2 OR caller = ?2) ORDER BY ring_at_ms, id",
        )
        .map_err(sql("finding the caller's calls"))?;
    st.query_map(params![s.site, s.caller_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(Iterator::collect)
        .map_err(sql("finding the caller's calls"))
}

/// The sessions the calls went to, and the other sessions of the same
/// browser (its analytics client id), as a call's visitor path joins them.
fn subject_sessions(tx: &Transaction<'_>, site: &str, calls: &[SubjectCall]) -> Result<Vec<String>, StorageError> {
    let chosen: BTreeSet<&str> =
        calls.iter().flat_map(|(_, s, p)| s.iter().chain(p.iter())).map(String::as_str).collect();
    let chosen: Vec<&str> = chosen.into_iter().collect();
    strings(
        tx,
        "WITH chosen AS (SELECT s.id, s.client_id FROM sessions s WHERE s.id IN (SELECT value FROM json_each(?2)))
         SELECT id FROM chosen
         UNION SELECT o.id FROM sessions o JOIN chosen c ON o.client_id = c.client_id
           WHERE o.site_id = ?1 AND c.client_id IS NOT NULL
         ORDER BY 1",
        params![site, json_list(&chosen)],
        "finding the caller's sessions",
    )
}

/// Removes the site's pool counts (refusals and first asks, one row per
/// pool, minute and kind) whose minute was over before `before_ms`, `BATCH`
/// rows per transaction. They name no one; they go when the leases beside
/// them do, so the pools report never shows counts without the leases of
/// the same hours.
fn delete_old_pool_counts(conn: &mut Connection, site: &str, before_ms: i64) -> Result<u64, StorageError> {
    // A minute still open can be added to; one that is over cannot.
    let minutes_before = before_ms.saturating_sub(60_000);
    let statements = [
        (
            "DELETE FROM pool_first_asks WHERE site_id = ?1 AND (pool_id, minute_ms) IN
               (SELECT pool_id, minute_ms FROM pool_first_asks WHERE site_id = ?1 AND minute_ms <= ?2 LIMIT ?3)",
            "removing old first asks",
        ),
        (
            "DELETE FROM pool_exhaustions WHERE site_id = ?1
               AND (pool_id, minute_ms, reason, policy, outcome, number) IN
               (SELECT pool_id, minute_ms, reason, policy, outcome, number FROM pool_exhaustions
                WHERE site_id = ?1 AND minute_ms <= ?2 LIMIT ?3)",
            "removing old refusal counts",
        ),
    ];
    let batch = i64::try_from(BATCH).unwrap_or(i64::MAX);
    let mut removed = 0;
    for (statement, doing) in statements {
        loop {
            let tx = immediate(conn)?;
            let n = tx.execute(statement, params![site, minutes_before, batch]).map_err(sql(doing))?;
            tx.commit().map_err(sql(doing))?;
            removed += n;
            if n < BATCH {
                break;
            }
        }
    }
    Ok(count(removed))
}

impl PrivacyStore for SqlitePrivacy {
    fn apply_retention(&self, c: &RetentionCutoffs, clock: &dyn Clock) -> Result<RetentionReport, StorageError> {
        let mut conn = self.conn();
        // On the collector's clock, which stamps the calls' updated_at_ms.
        let started_ms = clock.now_ms();
        let due = {
            let tx = conn.transaction().map_err(sql("beginning a read"))?;
            let due = find_due(&tx, c)?;
            tx.commit().map_err(sql("ending a read"))?;
            due
        };
        let mut report = RetentionReport { site: c.site.clone(), ..RetentionReport::default() };
        let mut rows = SessionRows::default();
        for chunk in due.sessions.chunks(BATCH) {
            let tx = immediate(&mut conn)?;
            // Still unseen since the read, and still behind no call.
            let recent = sessions_named_since(&tx, &c.site, started_ms - CLOCK_SLACK_MS)?;
            let still: Vec<String> = strings(
                &tx,
                "SELECT id FROM sessions WHERE id IN (SELECT value FROM json_each(?1)) AND last_seen_ms < ?2",
                params![json_list(chunk), c.sessions_before_ms],
                "checking sessions again",
            )?
            .into_iter()
            .filter(|s| !recent.contains(s))
            .collect();
            delete_sessions(&tx, &still, Some(&due.children), &mut rows)?;
            tx.commit().map_err(sql("committing removed sessions"))?;
        }
        let cut = c.session_rows_before_ms;
        report.leases = rows.leases
            + delete_ids(
                &mut conn,
                "leases",
                &format!("MIN(COALESCE(ended_at_ms, expires_at_ms), expires_at_ms) < {cut}"),
                &due.leases,
                "removing old leases",
            )?;
        report.promo_codes = rows.promo_codes
            + delete_ids(
                &mut conn,
                "promo_codes",
                &format!("reserved_until_ms < {cut}"),
                &due.promo_codes,
                "removing old promo codes",
            )?;
        report.pool_counts = delete_old_pool_counts(&mut conn, &c.site, cut)?;
        report.page_views = rows.page_views
            + delete_ids(
                &mut conn,
                "page_views",
                &format!("at_ms < {}", c.page_views_before_ms),
                &due.page_views,
                "removing old page views",
            )?;
        report.sessions = rows.sessions;
        report.touches = rows.touches;
        for chunk in due.user_agents.chunks(BATCH) {
            let tx = immediate(&mut conn)?;
            report.user_agents_reduced += count(
                tx.execute(
                    "UPDATE sessions SET user_agent = '' WHERE id IN (SELECT value FROM json_each(?1))
                       AND user_agent <> '' AND created_at_ms < ?2",
                    params![json_list(chunk), c.user_agents_before_ms],
                )
                .map_err(sql("reducing user agents"))?,
            );
            tx.commit().map_err(sql("committing reduced user agents"))?;
        }
        if let Some(before) = c.callers_before_ms {
            for chunk in due.callers.chunks(BATCH) {
                let tx = immediate(&mut conn)?;
                for &id in chunk {
                    report.callers_masked += u64::from(mask_call(&tx, id, before)?);
                }
                tx.commit().map_err(sql("committing masked callers"))?;
            }
        }
        report.exports = delete_ids(
            &mut conn,
            "outbox",
            &format!("(status = 'sent' OR status = 'skipped') AND updated_at_ms < {}", c.exports_before_ms),
            &due.exports,
            "removing delivered exports",
        )?;
        Ok(report)
    }

    fn erase(&self, s: &Subject) -> Result<Erased, StorageError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let calls = subject_calls(&tx, s)?;
        let sessions = subject_sessions(&tx, &s.site, &calls)?;
        let ids = json_list(&calls.iter().map(|(id, ..)| *id).collect::<Vec<_>>());
        let mut erased = Erased::default();
        let del = |table: &str, doing: &'static str| -> Result<u64, StorageError> {
            tx.execute(&format!("DELETE FROM {table} WHERE call_id IN (SELECT value FROM json_each(?1))"), [&ids])
                .map(count)
                .map_err(sql(doing))
        };
        erased.revenue = del("revenue", "removing the caller's revenue")?;
        let pending: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE call_id IN (SELECT value FROM json_each(?1)) AND status = 'pending'",
                [&ids],
                |r| r.get(0),
            )
            .map_err(sql("counting the caller's pending exports"))?;
        erased.pending_exports = u64::try_from(pending).unwrap_or(0);
        erased.exports = del("outbox", "removing the caller's exports")?;
        del("call_credits", "removing the caller's credits")?;
        // A manager's notes may name the caller; tags go with their call.
        del("call_notes", "removing the notes on the caller's calls")?;
        del("call_tags", "removing the tags of the caller's calls")?;
        del("call_candidates", "removing the caller's candidates")?;
        erased.call_events = del("call_events", "removing the caller's call events")?;
        erased.calls = tx
            .execute("DELETE FROM calls WHERE id IN (SELECT value FROM json_each(?1))", [&ids])
            .map(count)
            .map_err(sql("removing the caller's calls"))?;
        // Another caller's call that went to one of these sessions keeps it:
        // that is its attribution. A call that only considered one loses the
        // candidate row, which its attribution never rested on.
        let chosen_elsewhere: HashSet<String> = strings(
            &tx,
            "SELECT session_id FROM calls WHERE site_id = ?1 AND session_id IS NOT NULL
             UNION SELECT promo_session_id FROM calls WHERE site_id = ?1 AND promo_session_id IS NOT NULL",
            [&s.site],
            "finding sessions other calls went to",
        )?
        .into_iter()
        .collect();
        let (kept, gone): (Vec<String>, Vec<String>) =
            sessions.into_iter().partition(|id| chosen_elsewhere.contains(id));
        erased.other_calls_candidates = tx
            .execute(
                "DELETE FROM call_candidates WHERE session_id IN (SELECT value FROM json_each(?1))",
                [json_list(&gone)],
            )
            .map(count)
            .map_err(sql("removing other calls' candidates"))?;
        let mut rows = SessionRows::default();
        delete_sessions(&tx, &gone, None, &mut rows)?;
        tx.commit().map_err(sql("committing an erasure"))?;
        erased.count_sessions(&rows, kept);
        Ok(erased)
    }

    fn export(&self, s: &Subject) -> Result<SubjectExport, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("beginning a read"))?;
        let calls = subject_calls(&tx, s)?;
        let mut out = SubjectExport {
            site: s.site.clone(),
            phone: s.caller_key.clone(),
            calls: Vec::new(),
            sessions: Vec::new(),
        };
        for (id, ..) in &calls {
            let Some(detail) = calls::detail(&tx, *id)? else { continue };
            out.calls.push(CallExport { detail, revenue: revenue_of(&tx, *id)?, exports: exports_of(&tx, *id)? });
        }
        for id in subject_sessions(&tx, &s.site, &calls)? {
            if let Some(session) = session_export(&tx, &id)? {
                out.sessions.push(session);
            }
        }
        tx.commit().map_err(sql("ending a read"))?;
        Ok(out)
    }
}

fn revenue_of(tx: &Transaction<'_>, call_id: i64) -> Result<Vec<RevenueView>, StorageError> {
    let mut st = tx
        .prepare(
            "SELECT id, amount, currency, deal_id, at_ms, received_at_ms FROM revenue WHERE call_id = ?1 ORDER BY id",
        )
        .map_err(sql("reading a call's revenue"))?;
    st.query_map([call_id], |r| {
        Ok(RevenueView {
            id: r.get(0)?,
            amount: r.get(1)?,
            currency: r.get(2)?,
            deal_id: r.get(3)?,
            at_ms: r.get(4)?,
            received_at_ms: r.get(5)?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(sql("reading a call's revenue"))
}

fn exports_of(tx: &Transaction<'_>, call_id: i64) -> Result<Vec<ExportView>, StorageError> {
    let mut st = tx
        .prepare(
            "SELECT id, kind, status, created_at_ms, sent_at_ms, payload FROM outbox WHERE call_id = ?1 ORDER BY id",
        )
        .map_err(sql("reading a call's exports"))?;
    let rows: Vec<(i64, String, String, i64, Option<i64>, String)> = st
        .query_map([call_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .and_then(Iterator::collect)
        .map_err(sql("reading a call's exports"))?;
    rows.into_iter()
        .map(|(id, kind, status, created_at_ms, sent_at_ms, payload)| {
            let payload = serde_json::from_str(&payload)
                .map_err(|e| StorageError::Corrupt(format!("export {id}'s payload does not parse: {e}")))?;
            Ok(ExportView { id, kind, status, created_at_ms, sent_at_ms, payload })
        })
        .collect()
}

fn session_export(tx: &Transaction<'_>, id: &str) -> Result<Option<SessionExport>, StorageError> {
    type Head = (Option<String>, Option<String>, String, bool, i64, i64, Option<String>);
    let head: Option<Head> = tx
        .query_row(
            "SELECT client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms, asked_pools FROM sessions
             WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .optional()
        .map_err(sql("reading a session"))?;
    let Some((client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms, asked_pools)) = head else {
        return Ok(None);
    };
    let asked_pools = asked_pools.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let touches = {
        let mut st = tx
            .prepare(
                "SELECT at_ms, channel, source, medium, campaign, term, content, click_id_kind, click_id, landing_path
                 FROM touches WHERE session_id = ?1 ORDER BY id",
            )
            .map_err(sql("reading a session's touches"))?;
        st.query_map([id], |r| {
            Ok(TouchView {
                session_id: id.to_owned(),
                at_ms: r.get(0)?,
                channel: r.get(1)?,
                source: r.get(2)?,
                medium: r.get(3)?,
                campaign: r.get(4)?,
                term: r.get(5)?,
                content: r.get(6)?,
                click_id_kind: r.get(7)?,
                click_id: r.get(8)?,
                landing_path: r.get(9)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading a session's touches"))?
    };
    let page_views = {
        let mut st = tx
            .prepare("SELECT at_ms, url, title FROM page_views WHERE session_id = ?1 ORDER BY at_ms, id")
            .map_err(sql("reading a session's page views"))?;
        st.query_map([id], |r| {
            Ok(PageViewView { session_id: id.to_owned(), at_ms: r.get(0)?, url: r.get(1)?, title: r.get(2)? })
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading a session's page views"))?
    };
    let leases = {
        let mut st = tx
            .prepare(
                "SELECT number, pool_id, started_at_ms, expires_at_ms, ended_at_ms FROM leases WHERE session_id = ?1
                 ORDER BY started_at_ms, id",
            )
            .map_err(sql("reading a session's leases"))?;
        st.query_map([id], |r| {
            Ok(LeaseView {
                number: r.get(0)?,
                pool_id: r.get(1)?,
                started_at_ms: r.get(2)?,
                expires_at_ms: r.get(3)?,
                ended_at_ms: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading a session's leases"))?
    };
    let promo_codes = {
        let mut st = tx
            .prepare(
                "SELECT code, issued_at_ms, reserved_until_ms FROM promo_codes WHERE session_id = ?1 ORDER BY issued_at_ms, id",
            )
            .map_err(sql("reading a session's promo codes"))?;
        st.query_map([id], |r| {
            Ok(PromoCodeView { code: r.get(0)?, issued_at_ms: r.get(1)?, reserved_until_ms: r.get(2)? })
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading a session's promo codes"))?
    };
    Ok(Some(SessionExport {
        id: id.to_owned(),
        client_id,
        ym_uid,
        user_agent,
        is_bot,
        created_at_ms,
        last_seen_ms,
        asked_pools,
        touches,
        page_views,
        leases,
        promo_codes,
    }))
}
