//! [`PrivacyStore`] on PostgreSQL: retention, erasure and subject export,
//! as the SQLite adapter does them, with the database's own foreign keys.
//!
//! Retention reads what is due in one snapshot, then deletes it in small
//! transactions, checking again inside each that every row is still due.
//! A session is deleted only with its row locked (`FOR UPDATE`) and still
//! unseen: a visit, heartbeat or page view of it locks that row first, so
//! either it waits and then starts the session anew, or retention finds it
//! seen and leaves it. Its rows go by session (every referring column has
//! an index here), not by the ids the read found.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::{Blocking, PostgresStorage};
use crate::clock::{Clock, ManualClock};
use crate::storage::StorageError;
use crate::storage::calls::{PageViewView, TouchView};
use crate::storage::privacy::{
    CallExport, Erased, ExportView, LeaseView, PrivacyStore, PromoCodeView, RetentionCutoffs, RetentionReport,
    RevenueView, SessionExport, SessionRows, Subject, SubjectExport,
};

/// Rows per write transaction (as SQLite's).
const BATCH: usize = 256;

/// Calls changed this long before the read are looked at again too, in case
/// the instances' clocks disagree a little.
const CLOCK_SLACK_MS: i64 = 60_000;

fn strings(
    db: &Blocking<'_, '_>,
    doing: &'static str,
    sql: &str,
    params: &super::Params<'_>,
) -> Result<Vec<String>, StorageError> {
    Ok(db.query(doing, sql, params)?.iter().map(|r| r.get(0)).collect())
}

fn ids(
    db: &Blocking<'_, '_>,
    doing: &'static str,
    sql: &str,
    params: &super::Params<'_>,
) -> Result<Vec<i64>, StorageError> {
    Ok(db.query(doing, sql, params)?.iter().map(|r| r.get(0)).collect())
}

/// The sessions of `site` that some call names: chosen, named by a promo
/// code, or considered.
fn sessions_named_by_calls(db: &Blocking<'_, '_>, site: &str) -> Result<HashSet<String>, StorageError> {
    Ok(strings(
        db,
        "finding the sessions calls name",
        "SELECT session_id FROM calls WHERE site_id = $1 AND session_id IS NOT NULL
         UNION SELECT promo_session_id FROM calls WHERE site_id = $1 AND promo_session_id IS NOT NULL
         UNION SELECT cc.session_id FROM call_candidates cc JOIN calls c ON c.id = cc.call_id WHERE c.site_id = $1",
        &[&site],
    )?
    .into_iter()
    .collect())
}

/// The sessions that calls changed since `since_ms` name.
fn sessions_named_since(db: &Blocking<'_, '_>, site: &str, since_ms: i64) -> Result<HashSet<String>, StorageError> {
    Ok(strings(
        db,
        "finding the sessions recent calls name",
        "WITH recent AS (SELECT id, session_id, promo_session_id FROM calls WHERE site_id = $1 AND updated_at_ms >= $2)
         SELECT session_id FROM recent WHERE session_id IS NOT NULL
         UNION SELECT promo_session_id FROM recent WHERE promo_session_id IS NOT NULL
         UNION SELECT cc.session_id FROM call_candidates cc JOIN recent r ON r.id = cc.call_id",
        &[&site, &since_ms],
    )?
    .into_iter()
    .collect())
}

/// What the read found due.
#[derive(Default)]
struct Due {
    sessions: Vec<String>,
    /// Old rows of other sessions no call names.
    leases: Vec<i64>,
    promo_codes: Vec<i64>,
    page_views: Vec<i64>,
    user_agents: Vec<String>,
    callers: Vec<i64>,
    exports: Vec<i64>,
}

fn find_due(db: &Blocking<'_, '_>, c: &RetentionCutoffs) -> Result<Due, StorageError> {
    let site = c.site.as_str();
    let named = sessions_named_by_calls(db, site)?;
    let sessions: Vec<String> = strings(
        db,
        "finding sessions past their time",
        "SELECT id FROM sessions WHERE site_id = $1 AND last_seen_ms < $2",
        &[&site, &c.sessions_before_ms],
    )?
    .into_iter()
    .filter(|s| !named.contains(s))
    .collect();
    let doomed: HashSet<&str> = sessions.iter().map(String::as_str).collect();
    // A row goes with its session, or when it is old and its session is not
    // behind a call (a refolded call finds its leases again).
    let old_rows = |doing: &'static str, sql: &str| -> Result<Vec<i64>, StorageError> {
        Ok(db
            .query(doing, sql, &[&site, &c.session_rows_before_ms])?
            .iter()
            .filter_map(|r| {
                let session: &str = r.get(1);
                (!doomed.contains(session) && !named.contains(session)).then(|| r.get(0))
            })
            .collect())
    };
    let leases = old_rows(
        "finding old leases",
        "SELECT id, session_id FROM leases
         WHERE site_id = $1 AND LEAST(COALESCE(ended_at_ms, expires_at_ms), expires_at_ms) < $2",
    )?;
    let promo_codes = old_rows(
        "finding old promo codes",
        "SELECT id, session_id FROM promo_codes WHERE site_id = $1 AND reserved_until_ms < $2",
    )?;
    let page_views = ids(
        db,
        "finding old page views",
        "SELECT p.id FROM page_views p JOIN sessions s ON s.id = p.session_id WHERE s.site_id = $1 AND p.at_ms < $2",
        &[&site, &c.page_views_before_ms],
    )?;
    let user_agents = strings(
        db,
        "finding old user agents",
        "SELECT id FROM sessions WHERE site_id = $1 AND created_at_ms < $2 AND user_agent <> ''",
        &[&site, &c.user_agents_before_ms],
    )?
    .into_iter()
    .filter(|s| !doomed.contains(s.as_str()))
    .collect();
    let callers = match c.callers_before_ms {
        Some(before) => ids(
            db,
            "finding old callers",
            "SELECT id FROM calls WHERE site_id = $1 AND caller_key IS NOT NULL AND ring_at_ms < $2",
            &[&site, &before],
        )?,
        None => Vec::new(),
    };
    let exports = ids(
        db,
        "finding delivered exports",
        "SELECT id FROM outbox WHERE site_id = $1 AND status IN ('sent', 'skipped') AND updated_at_ms < $2",
        &[&site, &c.exports_before_ms],
    )?;
    Ok(Due { sessions, leases, promo_codes, page_views, user_agents, callers, exports })
}

/// Removes the sessions and every row that names them, inside the caller's
/// transaction (children first: the database checks its foreign keys).
fn delete_sessions(db: &Blocking<'_, '_>, sessions: &[String], report: &mut SessionRows) -> Result<(), StorageError> {
    if sessions.is_empty() {
        return Ok(());
    }
    let by_session = |table: &str, doing: &'static str| {
        db.execute(doing, &format!("DELETE FROM {table} WHERE session_id = ANY($1)"), &[&sessions])
    };
    report.touches += by_session("touches", "removing touches")?;
    report.page_views += by_session("page_views", "removing page views")?;
    report.leases += by_session("leases", "removing leases")?;
    report.promo_codes += by_session("promo_codes", "removing promo codes")?;
    report.sessions += db.execute("removing sessions", "DELETE FROM sessions WHERE id = ANY($1)", &[&sessions])?;
    Ok(())
}

/// The caller written with all but its last two digits hidden, in a call's
/// events and its CRM export: what the call's own `caller` becomes.
fn mask_call(db: &Blocking<'_, '_>, call_id: i64, before_ms: i64) -> Result<bool, StorageError> {
    let Some(row) = db.query_opt(
        "reading a caller",
        "SELECT caller FROM calls WHERE id = $1 AND caller_key IS NOT NULL AND ring_at_ms < $2 FOR UPDATE",
        &[&call_id, &before_ms],
    )?
    else {
        return Ok(false);
    };
    let Some(caller) = row.get::<_, Option<String>>(0) else { return Ok(false) };
    let masked = crate::mask::mask_phone(&caller);
    db.execute(
        "masking a caller",
        "UPDATE calls SET caller = $2, caller_key = NULL WHERE id = $1",
        &[&call_id, &masked],
    )?;
    let events = db.query(
        "reading a call's events",
        "SELECT id, event_json FROM call_events WHERE call_id = $1 ORDER BY id",
        &[&call_id],
    )?;
    for e in events {
        let (id, json): (i64, &str) = (e.get(0), e.get(1));
        let mut event: Value = serde_json::from_str(json)
            .map_err(|err| StorageError::Corrupt(format!("a stored event of call {call_id} does not parse: {err}")))?;
        let Some(from) = event.get("from").and_then(Value::as_str) else { continue };
        event["from"] = Value::String(crate::mask::mask_phone(from));
        let masked_event = event.to_string();
        // Two events that differed only in how the caller was written are
        // one event once masked: the copy goes (they fold the same), as
        // SQLite's UPDATE OR REPLACE does.
        db.execute(
            "masking a call event",
            "DELETE FROM call_events WHERE call_id = $1 AND id <> $2 AND event_md5 = decode(md5($3), 'hex')",
            &[&call_id, &id, &masked_event],
        )?;
        db.execute(
            "masking a call event",
            "UPDATE call_events SET event_json = $2 WHERE id = $1",
            &[&id, &masked_event],
        )?;
    }
    // The CRM body, changed in place (its keys keep the order they were written in).
    for r in db.query(
        "reading a call's exports",
        "SELECT id, payload FROM outbox WHERE call_id = $1 AND kind = 'crm'",
        &[&call_id],
    )? {
        let (id, payload): (i64, &str) = (r.get(0), r.get(1));
        let Ok(mut body) = serde_json::from_str::<Value>(payload) else { continue };
        let Some(slot) = body.pointer_mut("/data/call/caller").filter(|v| !v.is_null()) else { continue };
        *slot = Value::String(masked.clone());
        db.execute(
            "masking a call's export",
            "UPDATE outbox SET payload = $2 WHERE id = $1",
            &[&id, &body.to_string()],
        )?;
    }
    Ok(true)
}

/// One of the subject's calls: its id, chosen session and promo session.
type SubjectCall = (i64, Option<String>, Option<String>);

fn subject_calls(db: &Blocking<'_, '_>, s: &Subject) -> Result<Vec<SubjectCall>, StorageError> {
    Ok(db
        .query(
            "finding the caller's calls",
            "SELECT id, session_id, promo_session_id FROM calls
             WHERE site_id = $1 AND (caller_key = $2 OR caller = $2) ORDER BY ring_at_ms, id",
            &[&s.site, &s.caller_key],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// The sessions the calls went to, and the other sessions of the same
/// browser (its analytics client id), as a call's visitor path joins them.
fn subject_sessions(db: &Blocking<'_, '_>, site: &str, calls: &[SubjectCall]) -> Result<Vec<String>, StorageError> {
    let chosen: BTreeSet<&str> =
        calls.iter().flat_map(|(_, s, p)| s.iter().chain(p.iter())).map(String::as_str).collect();
    let chosen: Vec<&str> = chosen.into_iter().collect();
    strings(
        db,
        "finding the caller's sessions",
        "WITH chosen AS (SELECT s.id, s.client_id FROM sessions s WHERE s.id = ANY($2))
         SELECT id FROM (
             SELECT id FROM chosen
             UNION SELECT o.id FROM sessions o JOIN chosen c ON o.client_id = c.client_id
               WHERE o.site_id = $1 AND c.client_id IS NOT NULL
         ) AS subject ORDER BY id COLLATE \"C\"",
        &[&site, &chosen],
    )
}

impl PostgresStorage {
    /// Deletes rows by id, `BATCH` per transaction; `still_due` is the row's
    /// condition, checked again in the deleting statement.
    fn delete_ids(&self, table: &str, still_due: &str, ids: &[i64], doing: &'static str) -> Result<u64, StorageError> {
        let mut removed = 0;
        for chunk in ids.chunks(BATCH) {
            removed += self.write(&ManualClock::new(0), |db, _| {
                db.execute(doing, &format!("DELETE FROM {table} WHERE id = ANY($1) AND ({still_due})"), &[&chunk])
            })?;
        }
        Ok(removed)
    }

    /// Removes the site's pool counts whose minute was over before
    /// `before_ms`, `BATCH` rows per transaction (as SQLite's).
    fn delete_old_pool_counts(&self, site: &str, before_ms: i64) -> Result<u64, StorageError> {
        let minutes_before = before_ms.saturating_sub(60_000);
        let statements = [
            (
                "DELETE FROM pool_first_asks WHERE site_id = $1 AND (pool_id, minute_ms) IN
                   (SELECT pool_id, minute_ms FROM pool_first_asks WHERE site_id = $1 AND minute_ms <= $2 LIMIT $3)",
                "removing old first asks",
            ),
            (
                "DELETE FROM pool_exhaustions WHERE site_id = $1
                   AND (pool_id, minute_ms, reason, policy, outcome, number) IN
                   (SELECT pool_id, minute_ms, reason, policy, outcome, number FROM pool_exhaustions
                    WHERE site_id = $1 AND minute_ms <= $2 LIMIT $3)",
                "removing old refusal counts",
            ),
        ];
        let batch = i64::try_from(BATCH).unwrap_or(i64::MAX);
        let mut removed = 0;
        for (statement, doing) in statements {
            loop {
                let n = self.write(&ManualClock::new(0), |db, _| {
                    db.execute(doing, statement, &[&site, &minutes_before, &batch])
                })?;
                removed += n;
                if n < BATCH as u64 {
                    break;
                }
            }
        }
        Ok(removed)
    }
}

impl PrivacyStore for PostgresStorage {
    fn apply_retention(&self, c: &RetentionCutoffs, clock: &dyn Clock) -> Result<RetentionReport, StorageError> {
        // On the collector's clock, which stamps the calls' updated_at_ms.
        let started_ms = clock.now_ms();
        let due = self.read(|db| find_due(db, c))?;
        let mut report = RetentionReport { site: c.site.clone(), ..RetentionReport::default() };
        let mut rows = SessionRows::default();
        for chunk in due.sessions.chunks(BATCH) {
            let chunk_rows = self.write(clock, |db, _| {
                let mut chunk_rows = SessionRows::default();
                let recent = sessions_named_since(db, &c.site, started_ms - CLOCK_SLACK_MS)?;
                // Locked, and still unseen since the read: a visit of one of
                // them waits for this commit, or was first and moved it.
                let still: Vec<String> = strings(
                    db,
                    "checking sessions again",
                    "SELECT id FROM sessions WHERE id = ANY($1) AND last_seen_ms < $2 ORDER BY id FOR UPDATE",
                    &[&chunk, &c.sessions_before_ms],
                )?
                .into_iter()
                .filter(|s| !recent.contains(s))
                .collect();
                delete_sessions(db, &still, &mut chunk_rows)?;
                Ok::<_, StorageError>(chunk_rows)
            })?;
            rows.sessions += chunk_rows.sessions;
            rows.touches += chunk_rows.touches;
            rows.page_views += chunk_rows.page_views;
            rows.leases += chunk_rows.leases;
            rows.promo_codes += chunk_rows.promo_codes;
        }
        let cut = c.session_rows_before_ms;
        report.leases = rows.leases
            + self.delete_ids(
                "leases",
                &format!("LEAST(COALESCE(ended_at_ms, expires_at_ms), expires_at_ms) < {cut}"),
                &due.leases,
                "removing old leases",
            )?;
        report.promo_codes = rows.promo_codes
            + self.delete_ids(
                "promo_codes",
                &format!("reserved_until_ms < {cut}"),
                &due.promo_codes,
                "removing old promo codes",
            )?;
        report.pool_counts = self.delete_old_pool_counts(&c.site, cut)?;
        report.page_views = rows.page_views
            + self.delete_ids(
                "page_views",
                &format!("at_ms < {}", c.page_views_before_ms),
                &due.page_views,
                "removing old page views",
            )?;
        report.sessions = rows.sessions;
        report.touches = rows.touches;
        for chunk in due.user_agents.chunks(BATCH) {
            report.user_agents_reduced += self.write(clock, |db, _| {
                db.execute(
                    "reducing user agents",
                    "UPDATE sessions SET user_agent = '' WHERE id = ANY($1) AND user_agent <> '' AND created_at_ms < $2",
                    &[&chunk, &c.user_agents_before_ms],
                )
            })?;
        }
        if let Some(before) = c.callers_before_ms {
            for chunk in due.callers.chunks(BATCH) {
                report.callers_masked += self.write(clock, |db, _| {
                    let mut masked = 0;
                    for &id in chunk {
                        masked += u64::from(mask_call(db, id, before)?);
                    }
                    Ok::<_, StorageError>(masked)
                })?;
            }
        }
        report.exports = self.delete_ids(
            "outbox",
            &format!("status IN ('sent', 'skipped') AND updated_at_ms < {}", c.exports_before_ms),
            &due.exports,
            "removing delivered exports",
        )?;
        Ok(report)
    }

    fn erase(&self, s: &Subject) -> Result<Erased, StorageError> {
        self.write(&ManualClock::new(0), |db, _| {
            let calls = subject_calls(db, s)?;
            let sessions = subject_sessions(db, &s.site, &calls)?;
            let ids: Vec<i64> = calls.iter().map(|(id, ..)| *id).collect();
            // The calls locked: no event of theirs is recorded meanwhile.
            db.execute("locking the caller's calls", "SELECT 1 FROM calls WHERE id = ANY($1) FOR UPDATE", &[&ids])?;
            let mut erased = Erased::default();
            let del = |table: &str, doing: &'static str| {
                db.execute(doing, &format!("DELETE FROM {table} WHERE call_id = ANY($1)"), &[&ids])
            };
            erased.revenue = del("revenue", "removing the caller's revenue")?;
            let pending: i64 = db
                .query_one(
                    "counting the caller's pending exports",
                    "SELECT COUNT(*) FROM outbox WHERE call_id = ANY($1) AND status = 'pending'",
                    &[&ids],
                )?
                .get(0);
            erased.pending_exports = u64::try_from(pending).unwrap_or(0);
            erased.exports = del("outbox", "removing the caller's exports")?;
            del("call_credits", "removing the caller's credits")?;
            // A manager's notes may name the caller; tags go with their call.
            del("call_notes", "removing the notes on the caller's calls")?;
            del("call_tags", "removing the tags of the caller's calls")?;
            del("call_candidates", "removing the caller's candidates")?;
            erased.call_events = del("call_events", "removing the caller's call events")?;
            erased.calls =
                db.execute("removing the caller's calls", "DELETE FROM calls WHERE id = ANY($1)", &[&ids])?;
            // Another caller's call that went to one of these sessions keeps
            // it: that is its attribution. A call that only considered one
            // loses the candidate row, which its attribution never rested on.
            let chosen_elsewhere: HashSet<String> = strings(
                db,
                "finding sessions other calls went to",
                "SELECT session_id FROM calls WHERE site_id = $1 AND session_id IS NOT NULL
                 UNION SELECT promo_session_id FROM calls WHERE site_id = $1 AND promo_session_id IS NOT NULL",
                &[&s.site],
            )?
            .into_iter()
            .collect();
            let (kept, gone): (Vec<String>, Vec<String>) =
                sessions.into_iter().partition(|id| chosen_elsewhere.contains(id));
            erased.other_calls_candidates = db.execute(
                "removing other calls' candidates",
                "DELETE FROM call_candidates WHERE session_id = ANY($1)",
                &[&gone],
            )?;
            let mut rows = SessionRows::default();
            delete_sessions(db, &gone, &mut rows)?;
            erased.count_sessions(&rows, kept);
            Ok(erased)
        })
    }

    fn export(&self, s: &Subject) -> Result<SubjectExport, StorageError> {
        self.read(|db| {
            let calls = subject_calls(db, s)?;
            let mut out = SubjectExport {
                site: s.site.clone(),
                phone: s.caller_key.clone(),
                calls: Vec::new(),
                sessions: Vec::new(),
            };
            for (id, ..) in &calls {
                let Some(detail) = super::calls::detail(db, *id)? else { continue };
                out.calls.push(CallExport { detail, revenue: revenue_of(db, *id)?, exports: exports_of(db, *id)? });
            }
            for id in subject_sessions(db, &s.site, &calls)? {
                if let Some(session) = session_export(db, &id)? {
                    out.sessions.push(session);
                }
            }
            Ok(out)
        })
    }
}

fn revenue_of(db: &Blocking<'_, '_>, call_id: i64) -> Result<Vec<RevenueView>, StorageError> {
    Ok(db
        .query(
            "reading a call's revenue",
            "SELECT id, amount, currency, deal_id, at_ms, received_at_ms FROM revenue WHERE call_id = $1 ORDER BY id",
            &[&call_id],
        )?
        .iter()
        .map(|r| RevenueView {
            id: r.get(0),
            amount: r.get(1),
            currency: r.get(2),
            deal_id: r.get(3),
            at_ms: r.get(4),
            received_at_ms: r.get(5),
        })
        .collect())
}

fn exports_of(db: &Blocking<'_, '_>, call_id: i64) -> Result<Vec<ExportView>, StorageError> {
    db.query(
        "reading a call's exports",
        "SELECT id, kind, status, created_at_ms, sent_at_ms, payload FROM outbox WHERE call_id = $1 ORDER BY id",
        &[&call_id],
    )?
    .iter()
    .map(|r| {
        let id: i64 = r.get(0);
        let payload = serde_json::from_str(r.get::<_, &str>(5))
            .map_err(|e| StorageError::Corrupt(format!("export {id}'s payload does not parse: {e}")))?;
        Ok(ExportView { id, kind: r.get(1), status: r.get(2), created_at_ms: r.get(3), sent_at_ms: r.get(4), payload })
    })
    .collect()
}

fn session_export(db: &Blocking<'_, '_>, id: &str) -> Result<Option<SessionExport>, StorageError> {
    let Some(head) = db.query_opt(
        "reading a session",
        "SELECT client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms, asked_pools FROM sessions
         WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let asked: Option<String> = head.get(6);
    let asked_pools = asked.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let touches = db
        .query(
            "reading a session's touches",
            "SELECT at_ms, channel, source, medium, campaign, term, content, click_id_kind, click_id, landing_path
             FROM touches WHERE session_id = $1 ORDER BY id",
            &[&id],
        )?
        .iter()
        .map(|r| TouchView {
            session_id: id.to_owned(),
            at_ms: r.get(0),
            channel: r.get(1),
            source: r.get(2),
            medium: r.get(3),
            campaign: r.get(4),
            term: r.get(5),
            content: r.get(6),
            click_id_kind: r.get(7),
            click_id: r.get(8),
            landing_path: r.get(9),
        })
        .collect();
    let page_views = db
        .query(
            "reading a session's page views",
            "SELECT at_ms, url, title FROM page_views WHERE session_id = $1 ORDER BY at_ms, id",
            &[&id],
        )?
        .iter()
        .map(|r| PageViewView { session_id: id.to_owned(), at_ms: r.get(0), url: r.get(1), title: r.get(2) })
        .collect();
    let leases = db
        .query(
            "reading a session's leases",
            "SELECT number, pool_id, started_at_ms, expires_at_ms, ended_at_ms FROM leases WHERE session_id = $1
             ORDER BY started_at_ms, id",
            &[&id],
        )?
        .iter()
        .map(|r| LeaseView {
            number: r.get(0),
            pool_id: r.get(1),
            started_at_ms: r.get(2),
            expires_at_ms: r.get(3),
            ended_at_ms: r.get(4),
        })
        .collect();
    let promo_codes = db
        .query(
            "reading a session's promo codes",
            "SELECT code, issued_at_ms, reserved_until_ms FROM promo_codes WHERE session_id = $1
             ORDER BY issued_at_ms, id",
            &[&id],
        )?
        .iter()
        .map(|r| PromoCodeView { code: r.get(0), issued_at_ms: r.get(1), reserved_until_ms: r.get(2) })
        .collect();
    Ok(Some(SessionExport {
        id: id.to_owned(),
        client_id: head.get(0),
        ym_uid: head.get(1),
        user_agent: head.get(2),
        is_bot: head.get(3),
        created_at_ms: head.get(4),
        last_seen_ms: head.get(5),
        asked_pools,
        touches,
        page_views,
        leases,
        promo_codes,
    }))
}
