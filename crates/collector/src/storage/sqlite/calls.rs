//! [`CallStore`] on the SQLite file, and promo code issuing for visits.
//!
//! Every write here runs in one `BEGIN IMMEDIATE` transaction: the event,
//! the refolded call, its candidates and credits change together or not at
//! all, and two PBX deliveries of the same call cannot interleave.

use ringsource_core::attribution::{self, CallerKind, Confidence, DialledKind, Model, Relation, Tenure};
use ringsource_core::call::{CallEvent, CallStatus};
use ringsource_core::channel::Channel;
use ringsource_core::promo::PromoCode;
use ringsource_core::touch::Touch;
use ringsource_core::visit::{ClickId, ClickIdKind};
use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};

use super::{SqliteStorage, immediate, sql};
use crate::clock::Clock;
use crate::config::{PromoConfig, Site};
use crate::dates::{self, LocalDay};
use crate::pbx::Delivery;
use crate::storage::StorageError;
use crate::storage::calls::{
    AttributionView, CallAttribution, CallDetail, CallFacts, CallFilter, CallState, CallStore, CallSummary,
    CallWorkflow, CandidateView, CreditView, GroupBy, NumberRole, PageViewView, PromoLookup, RecordError, Recorded,
    ReportQuery, ReportRow, StatusFilter, StoredEvent, TouchView, VisitorPath, report_with_costs,
};

const DAY_MS: i64 = 86_400_000;
/// Attempts at a fresh promo code before giving up on one visit. With
/// 3.2 million codes, sixteen collisions in a row mean the site's code space
/// is nearly full (raise `promo.length`), not bad luck.
const PROMO_ATTEMPTS: usize = 16;

/// Group labels for calls that have no touch to credit.
const UNATTRIBUTED: &str = "(unattributed)";
const NOT_SET: &str = "(not set)";

// ------------------------------------------------------------ promo codes

/// The session's promo code: its live one, renewed, or a new one unique
/// among the site's live codes. `None` when no free code was found.
pub(super) fn promo_code_for(
    tx: &Transaction<'_>,
    site: &Site,
    promo: &PromoConfig,
    session_id: &str,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    let reserved_until = now_ms + i64::from(promo.hold_days) * DAY_MS;
    let held: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, code FROM promo_codes
             WHERE site_id = ?1 AND session_id = ?2 AND retired = 0 AND reserved_until_ms > ?3
             ORDER BY id DESC LIMIT 1",
            params![site.id, session_id, now_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql("finding the session's promo code"))?;
    if let Some((id, code)) = held {
        tx.execute("UPDATE promo_codes SET reserved_until_ms = ?2 WHERE id = ?1", params![id, reserved_until])
            .map_err(sql("renewing a promo code"))?;
        return Ok(Some(code));
    }
    // Lapsed reservations free their codes for reuse (the rows stay, so a
    // call that names an old code can still be explained).
    tx.execute(
        "UPDATE promo_codes SET retired = 1 WHERE site_id = ?1 AND retired = 0 AND reserved_until_ms <= ?2",
        params![site.id, now_ms],
    )
    .map_err(sql("retiring lapsed promo codes"))?;
    for _ in 0..PROMO_ATTEMPTS {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| StorageError::NoRandomness(e.to_string()))?;
        let code = PromoCode::generate(u64::from_le_bytes(bytes), promo.length)
            .map_err(|e| StorageError::Corrupt(format!("promo length passed validation but: {e}")))?;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO promo_codes (site_id, code, session_id, issued_at_ms, reserved_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![site.id, code.as_str(), session_id, now_ms, reserved_until],
            )
            .map_err(sql("issuing a promo code"))?;
        if inserted == 1 {
            return Ok(Some(code.into()));
        }
    }
    tracing::warn!(
        site = site.id.as_str(),
        length = promo.length,
        attempts = PROMO_ATTEMPTS,
        "no free promo code found; raise the site's promo.length"
    );
    Ok(None)
}

// ------------------------------------------------------------ attribution

/// A touch on the path with the session it was recorded for.
struct PathTouch {
    session_id: String,
    touch: Touch,
}

/// The sessions of the visitor behind `session_id`: it and every other
/// session of the site with the same analytics client id, which is how one
/// visitor's visits across sessions are joined.
fn visitor_sessions(tx: &Transaction<'_>, session_id: &str) -> Result<Vec<String>, StorageError> {
    let mut st = tx
        .prepare_cached(
            "SELECT o.id FROM sessions s JOIN sessions o
               ON o.id = s.id OR (o.site_id = s.site_id AND o.client_id = s.client_id AND s.client_id IS NOT NULL)
             WHERE s.id = ?1 ORDER BY o.created_at_ms, o.id",
        )
        .map_err(sql("finding the visitor's sessions"))?;
    st.query_map([session_id], |r| r.get(0)).and_then(Iterator::collect).map_err(sql("finding the visitor's sessions"))
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A stored touch's names that must parse back into core's types.
struct StoredTouchNames {
    channel: String,
    click_id_kind: Option<String>,
    click_id: Option<String>,
}

/// The visitor's touches recorded up to `until_ms`, oldest first, each visit once.
fn visitor_touches(tx: &Transaction<'_>, session_id: &str, until_ms: i64) -> Result<Vec<PathTouch>, StorageError> {
    let sessions = visitor_sessions(tx, session_id)?;
    let query = format!(
        "SELECT session_id, channel, source, medium, campaign, term, content, utm_id, click_id_kind, click_id,
                landing_path, referrer_host, at_ms
         FROM touches WHERE session_id IN ({}) AND recorded_at_ms <= ? ORDER BY id",
        placeholders(sessions.len())
    );
    let mut values: Vec<&dyn ToSql> = sessions.iter().map(|s| s as &dyn ToSql).collect();
    values.push(&until_ms);
    let mut st = tx.prepare(&query).map_err(sql("reading the visitor's touches"))?;
    let rows: Vec<(PathTouch, StoredTouchNames)> = st
        .query_map(params_from_iter(values), |r| {
            let names = StoredTouchNames { channel: r.get(1)?, click_id_kind: r.get(8)?, click_id: r.get(9)? };
            let touch = Touch {
                // Set from `names` below, where a bad name can be an error of ours.
                channel: Channel::Unassigned,
                source: r.get(2)?,
                medium: r.get(3)?,
                campaign: r.get(4)?,
                term: r.get(5)?,
                content: r.get(6)?,
                utm_id: r.get(7)?,
                click_id: None,
                landing_path: r.get(10)?,
                referrer_host: r.get(11)?,
                at_ms: u64::try_from(r.get::<_, i64>(12)?).unwrap_or(0),
            };
            Ok((PathTouch { session_id: r.get(0)?, touch }, names))
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading the visitor's touches"))?;
    let mut touches = Vec::with_capacity(rows.len());
    for (mut path_touch, names) in rows {
        let corrupt = |what: String| {
            StorageError::Corrupt(format!("a stored touch of session {}: {what}", path_touch.session_id))
        };
        path_touch.touch.channel =
            names.channel.parse().map_err(|_| corrupt(format!("unknown channel {:?}", names.channel)))?;
        path_touch.touch.click_id = match (names.click_id_kind, names.click_id) {
            (Some(kind), Some(value)) => Some(ClickId {
                kind: ClickIdKind::from_name(&kind)
                    .ok_or_else(|| corrupt(format!("unknown click id kind {kind:?}")))?,
                value,
            }),
            _ => None,
        };
        touches.push(path_touch);
    }
    // Order and de-duplicate as core does, keeping each touch's session.
    let path = attribution::path(touches.iter().map(|t| t.touch.clone()).collect());
    let mut out = Vec::with_capacity(path.len());
    for t in path {
        let session_id = touches
            .iter()
            .find(|p| p.touch == t)
            .map(|p| p.session_id.clone())
            .unwrap_or_else(|| session_id.to_owned());
        out.push(PathTouch { session_id, touch: t });
    }
    Ok(out)
}

/// [`CallFacts`] on the transaction that records an event.
struct TxFacts<'a, 'c> {
    tx: &'a Transaction<'c>,
}

impl CallFacts for TxFacts<'_, '_> {
    fn events(&mut self, call_id: i64) -> Result<Vec<CallEvent>, StorageError> {
        let mut st = self
            .tx
            .prepare_cached("SELECT event_json FROM call_events WHERE call_id = ?1 ORDER BY id")
            .map_err(sql("reading a call's events"))?;
        let rows: Vec<String> = st
            .query_map([call_id], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(sql("reading a call's events"))?;
        rows.iter()
            .map(|j| serde_json::from_str(j))
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::Corrupt(format!("a stored event of call {call_id} does not parse: {e}")))
    }

    fn state(&mut self, call_id: i64) -> Result<CallState, StorageError> {
        self.tx
            .query_row(
                "SELECT first_heard_at_ms, promo_code, promo_session_id FROM calls WHERE id = ?1",
                [call_id],
                |r| Ok(CallState { first_heard_at_ms: r.get(0)?, promo_code: r.get(1)?, promo_session: r.get(2)? }),
            )
            .map_err(sql("reading a call"))
    }

    fn number_role(&mut self, site_id: &str, number: &str) -> Result<Option<NumberRole>, StorageError> {
        let role: Option<(String, Option<String>, Option<String>)> = self
            .tx
            .query_row(
                "SELECT kind, pool_id, label FROM numbers WHERE number = ?1 AND site_id = ?2",
                params![number, site_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("looking up the dialled number"))?;
        Ok(role.map(|(kind, pool_id, label)| NumberRole {
            kind: DialledKind::from_name(&kind).unwrap_or(DialledKind::Unknown),
            pool_id,
            label,
        }))
    }

    fn tenures(&mut self, number: &str, ring_at_ms: i64) -> Result<Vec<Tenure>, StorageError> {
        // A lease that ended early (released, taken or handed over) was
        // held until it ended; otherwise until it expired.
        let mut st = self
            .tx
            .prepare_cached(
                "SELECT session_id, started_at_ms, MIN(COALESCE(ended_at_ms, expires_at_ms), expires_at_ms)
                 FROM leases WHERE number = ?1 AND started_at_ms <= ?2
                 ORDER BY started_at_ms DESC LIMIT 64",
            )
            .map_err(sql("reading the number's leases"))?;
        st.query_map(params![number, ring_at_ms], |r| {
            Ok(Tenure { session_id: r.get(0)?, started_at_ms: r.get(1)?, held_until_ms: r.get(2)? })
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading the number's leases"))
    }

    fn caller_prior(
        &mut self,
        site_id: &str,
        caller_key: &str,
        call_id: i64,
        ring_at_ms: i64,
        window_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        self.tx
            .query_row(
                "SELECT session_id FROM calls
                 WHERE site_id = ?1 AND caller_key = ?2 AND id <> ?3 AND session_id IS NOT NULL
                   AND confidence IN ('high', 'medium')
                   AND (ring_at_ms < ?4 OR (ring_at_ms = ?4 AND id < ?3)) AND ring_at_ms >= ?4 - ?5
                 ORDER BY ring_at_ms DESC, id DESC LIMIT 1",
                params![site_id, caller_key, call_id, ring_at_ms, window_ms],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("finding the caller's earlier call"))
    }

    fn visitor_touches(&mut self, session_id: &str, until_ms: i64) -> Result<Vec<Touch>, StorageError> {
        Ok(visitor_touches(self.tx, session_id, until_ms)?.into_iter().map(|p| p.touch).collect())
    }

    fn caller_calls(&mut self, site_id: &str, caller_key: &str) -> Result<Vec<(i64, i64)>, StorageError> {
        let mut st = self
            .tx
            .prepare_cached(
                "SELECT id, ring_at_ms FROM calls WHERE site_id = ?1 AND caller_key = ?2 ORDER BY ring_at_ms, id",
            )
            .map_err(sql("reading the caller's calls"))?;
        st.query_map(params![site_id, caller_key], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(sql("reading the caller's calls"))
    }

    fn save_attribution(&mut self, call_id: i64, a: &CallAttribution, now_ms: i64) -> Result<(), StorageError> {
        let tx = self.tx;
        let call = &a.call;
        let to_i64 = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        tx.execute(
            "UPDATE calls SET caller = ?2, caller_key = ?3, dialled = ?4, number_kind = ?5, pool_id = ?6,
                static_label = ?7, ring_at_ms = ?8, answered_at_ms = ?9, ended_at_ms = ?10, duration_secs = ?11,
                talk_secs = ?12, status = ?13, is_target = ?14, is_missed = ?15, recording_url = ?16,
                session_id = ?17, confidence = ?18, reason = ?19, model = ?20, channel = ?21, source = ?22,
                medium = ?23, campaign = ?24, term = ?25, updated_at_ms = ?26
             WHERE id = ?1",
            params![
                call_id,
                call.from,
                a.caller_key,
                call.to.e164(),
                a.number_kind.as_str(),
                a.pool_id,
                a.static_label,
                a.ring_at_ms,
                to_i64(call.answered_at_ms),
                to_i64(call.ended_at_ms),
                call.duration_secs,
                call.talk_secs,
                call.status.as_str(),
                a.is_target,
                a.is_missed,
                call.recording_url,
                a.session_id,
                a.confidence.as_str(),
                a.reason,
                a.model.as_str(),
                a.headline.channel,
                a.headline.source,
                a.headline.medium,
                a.headline.campaign,
                a.headline.term,
                now_ms
            ],
        )
        .map_err(sql("saving a call"))?;
        tx.execute("DELETE FROM call_candidates WHERE call_id = ?1", [call_id]).map_err(sql("clearing candidates"))?;
        tx.execute("DELETE FROM call_credits WHERE call_id = ?1", [call_id]).map_err(sql("clearing credits"))?;
        for c in &a.candidates {
            tx.execute(
                "INSERT OR IGNORE INTO call_candidates (call_id, session_id, relation, held_from_ms, held_until_ms, chosen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    call_id,
                    c.session_id,
                    c.relation.as_str(),
                    c.held_from_ms,
                    c.held_until_ms,
                    a.session_id.as_deref() == Some(c.session_id.as_str())
                ],
            )
            .map_err(sql("saving a candidate"))?;
        }
        for (seq, c) in (0i64..).zip(&a.credits) {
            tx.execute(
                "INSERT INTO call_credits (call_id, seq, share, at_ms, channel, source, medium, campaign, term, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![call_id, seq, c.share, c.at_ms, c.channel, c.source, c.medium, c.campaign, c.term, c.content],
            )
            .map_err(sql("saving a credit"))?;
        }
        Ok(())
    }

    fn save_caller_kind(&mut self, call_id: i64, kind: CallerKind) -> Result<(), StorageError> {
        self.tx
            .execute("UPDATE calls SET caller_kind = ?2 WHERE id = ?1", params![call_id, kind.as_str()])
            .map_err(sql("saving a caller kind"))?;
        Ok(())
    }
}

// --------------------------------------------------------------- reading

const SUMMARY_COLUMNS: &str = "c.id, c.site_id, c.pbx, c.pbx_call_id, c.caller, c.dialled, c.number_kind, c.pool_id,
    c.static_label, c.ring_at_ms, c.answered_at_ms, c.ended_at_ms, c.duration_secs, c.talk_secs, c.status,
    c.is_target, c.is_missed, c.caller_kind, c.recording_url, c.session_id, c.confidence, c.reason, c.model,
    c.promo_code, c.channel, c.source, c.medium, c.campaign, c.term";

/// A stored enum value, read back as its type; a spelling the type does not
/// know is a corrupt row, not a string passed along.
fn named<T>(r: &Row<'_>, i: usize, parse: impl Fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("{text:?} is not a value this column may hold").into(),
        )
    })
}

fn summary(r: &Row<'_>) -> rusqlite::Result<CallSummary> {
    Ok(CallSummary {
        id: r.get(0)?,
        site: r.get(1)?,
        pbx: r.get(2)?,
        pbx_call_id: r.get(3)?,
        caller: r.get(4)?,
        dialled: r.get(5)?,
        number_kind: named(r, 6, DialledKind::from_name)?,
        pool_id: r.get(7)?,
        static_label: r.get(8)?,
        ring_at_ms: r.get(9)?,
        answered_at_ms: r.get(10)?,
        ended_at_ms: r.get(11)?,
        duration_secs: r.get(12)?,
        talk_secs: r.get(13)?,
        status: named(r, 14, CallStatus::from_name)?,
        target: r.get(15)?,
        missed: r.get(16)?,
        caller_kind: named(r, 17, CallerKind::from_name)?,
        recording_url: r.get(18)?,
        session_id: r.get(19)?,
        confidence: named(r, 20, Confidence::from_name)?,
        reason: r.get(21)?,
        model: named(r, 22, |s: &str| s.parse::<Model>().ok())?,
        promo_code: r.get(23)?,
        channel: r.get(24)?,
        source: r.get(25)?,
        medium: r.get(26)?,
        campaign: r.get(27)?,
        term: r.get(28)?,
    })
}

/// The visitor's path as shown to a manager, up to `until_ms`.
fn visitor_path(tx: &Transaction<'_>, session_id: &str, until_ms: i64) -> Result<Option<VisitorPath>, StorageError> {
    let session: Option<(Option<String>, Option<String>, i64, i64)> = tx
        .query_row(
            "SELECT client_id, ym_uid, created_at_ms, last_seen_ms FROM sessions WHERE id = ?1",
            [session_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(sql("reading a session"))?;
    let Some((client_id, ym_uid, first_seen_ms, last_seen_ms)) = session else { return Ok(None) };
    let touches: Vec<TouchView> = visitor_touches(tx, session_id, until_ms)?
        .into_iter()
        .map(|p| TouchView {
            session_id: p.session_id,
            at_ms: i64::try_from(p.touch.at_ms).unwrap_or(i64::MAX),
            channel: p.touch.channel.as_str().to_owned(),
            source: p.touch.source,
            medium: p.touch.medium,
            campaign: p.touch.campaign,
            term: p.touch.term,
            content: p.touch.content,
            click_id_kind: p.touch.click_id.as_ref().map(|c| c.kind.param().to_owned()),
            click_id: p.touch.click_id.map(|c| c.value),
            landing_path: p.touch.landing_path,
        })
        .collect();
    let sessions = visitor_sessions(tx, session_id)?;
    let query = format!(
        "SELECT session_id, at_ms, url, title FROM page_views WHERE session_id IN ({}) AND at_ms <= ?
         ORDER BY at_ms, id",
        placeholders(sessions.len())
    );
    let mut values: Vec<&dyn ToSql> = sessions.iter().map(|s| s as &dyn ToSql).collect();
    values.push(&until_ms);
    let page_views: Vec<PageViewView> = tx
        .prepare(&query)
        .and_then(|mut st| {
            st.query_map(params_from_iter(values), |r| {
                Ok(PageViewView { session_id: r.get(0)?, at_ms: r.get(1)?, url: r.get(2)?, title: r.get(3)? })
            })?
            .collect()
        })
        .map_err(sql("reading page views"))?;
    let landing_page = page_views.iter().find(|p| p.session_id == session_id).map(|p| p.url.clone());
    let keyword = touches.iter().rev().find_map(|t| t.term.clone());
    Ok(Some(VisitorPath {
        session_id: session_id.to_owned(),
        client_id,
        ym_uid,
        first_seen_ms,
        last_seen_ms,
        landing_page,
        keyword,
        touches,
        page_views,
    }))
}

pub(super) fn detail(tx: &Transaction<'_>, id: i64) -> Result<Option<CallDetail>, StorageError> {
    let call = tx
        .query_row(&format!("SELECT {SUMMARY_COLUMNS} FROM calls c WHERE c.id = ?1"), [id], summary)
        .optional()
        .map_err(sql("reading a call"))?;
    let Some(call) = call else { return Ok(None) };
    let candidates: Vec<CandidateView> = tx
        .prepare_cached(
            "SELECT session_id, relation, held_from_ms, held_until_ms, chosen FROM call_candidates
             WHERE call_id = ?1 ORDER BY chosen DESC, held_until_ms DESC, session_id",
        )
        .and_then(|mut st| {
            st.query_map([id], |r| {
                Ok(CandidateView {
                    session_id: r.get(0)?,
                    relation: named(r, 1, Relation::from_name)?,
                    held_from_ms: r.get(2)?,
                    held_until_ms: r.get(3)?,
                    chosen: r.get(4)?,
                })
            })?
            .collect()
        })
        .map_err(sql("reading candidates"))?;
    let credits: Vec<CreditView> = tx
        .prepare_cached(
            "SELECT share, at_ms, channel, source, medium, campaign, term, content FROM call_credits
             WHERE call_id = ?1 ORDER BY seq",
        )
        .and_then(|mut st| {
            st.query_map([id], |r| {
                Ok(CreditView {
                    share: r.get(0)?,
                    at_ms: r.get(1)?,
                    channel: r.get(2)?,
                    source: r.get(3)?,
                    medium: r.get(4)?,
                    campaign: r.get(5)?,
                    term: r.get(6)?,
                    content: r.get(7)?,
                })
            })?
            .collect()
        })
        .map_err(sql("reading credits"))?;
    let raw: Vec<(i64, String)> = tx
        .prepare_cached("SELECT received_at_ms, event_json FROM call_events WHERE call_id = ?1 ORDER BY id")
        .and_then(|mut st| st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql("reading a call's events"))?;
    let events = raw
        .into_iter()
        .map(|(received_at_ms, json)| {
            serde_json::from_str(&json)
                .map(|event| StoredEvent { received_at_ms, event })
                .map_err(|e| StorageError::Corrupt(format!("a stored event of call {id} does not parse: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let visitor = match &call.session_id {
        Some(s) => visitor_path(tx, s, call.ring_at_ms)?,
        None => None,
    };
    Ok(Some(CallDetail {
        attribution: AttributionView {
            model: call.model,
            confidence: call.confidence,
            reason: call.reason.clone(),
            chosen_session_id: call.session_id.clone(),
            candidates,
            credits,
        },
        call,
        visitor,
        events,
    }))
}

/// One page of the calls list: `filter` is its `WHERE` clause (or empty).
pub(super) fn list_query(filter: &str, limit: u32, offset: u32) -> String {
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM calls c {filter} ORDER BY c.ring_at_ms DESC, c.id DESC LIMIT {limit} OFFSET {offset}"
    )
}

/// The calls report's rows by `column` of the credits: site `?1`, the days
/// as JSON `?2` (`[day, start_ms, end_ms]`, cut to the report's range),
/// tag `?3` or NULL.
pub(super) fn report_query(column: &str) -> String {
    // Each call contributes its credit shares: whole calls under first
    // and last touch, fractions under linear. Revenue follows the same
    // shares and lands on the day the call rang.
    let amount = bounded_amount("amount");
    format!(
        "WITH days(day, start_ms, end_ms) AS (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?2))
         SELECT d.day, COALESCE(cr.{column}, '{NOT_SET}') AS grp,
            SUM(cr.share), SUM(cr.share * c.is_target), SUM(cr.share * c.is_missed),
            SUM(cr.share * (c.caller_kind = 'first-time')), SUM(cr.share * COALESCE(rv.amount, 0))
         FROM calls c JOIN days d ON c.ring_at_ms >= d.start_ms AND c.ring_at_ms < d.end_ms
         JOIN call_credits cr ON cr.call_id = c.id
         LEFT JOIN (SELECT call_id, SUM({amount}) AS amount FROM revenue GROUP BY call_id) rv ON rv.call_id = c.id
         WHERE c.site_id = ?1
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM call_tags t WHERE t.call_id = c.id AND t.tag = ?3))
         GROUP BY d.day, grp ORDER BY d.day, grp"
    )
}

/// A stored amount as the reports sum it: within `[0, money::MAX_AMOUNT]`.
/// The API refuses amounts outside it; rows stored before it did are read
/// at the bound, so that no sum overflows into infinity (a `null` total).
fn bounded_amount(column: &str) -> String {
    format!("MIN(MAX({column}, 0), {:e})", crate::storage::money::MAX_AMOUNT)
}

/// The site's cost per day and group in the report's range: by the cost
/// rows' own column for source, medium and campaign (`''` is "(not set)",
/// as a touch without that tag), and for channel by [`Site::cost_channel`]
/// (a static number's channel for its source and medium, else the channel
/// core gives a visit tagged with the row's utm_source and utm_medium).
/// A cost day counts when its local midnight is inside `[from, to)`: the
/// first of `days` only when the range starts at its midnight.
fn costs_by_group(
    tx: &Transaction<'_>,
    q: &ReportQuery,
    days: &[LocalDay],
) -> Result<Vec<(String, String, f64)>, StorageError> {
    let mut counted = days.iter().filter(|d| d.start_ms >= q.from_ms && d.start_ms < q.to_ms);
    let Some(first) = counted.next() else { return Ok(Vec::new()) };
    let last = counted.next_back().unwrap_or(first);
    let range = "site_id = ?1 AND day >= ?2 AND day <= ?3";
    let cost = bounded_amount("cost");
    let (query, by_channel) = match q.group_by {
        GroupBy::Source | GroupBy::Medium | GroupBy::Campaign => {
            let column = q.group_by.column();
            (
                format!(
                    "SELECT day, CASE WHEN {column} = '' THEN '{NOT_SET}' ELSE {column} END AS grp, SUM({cost})
                     FROM costs WHERE {range} GROUP BY day, grp"
                ),
                false,
            )
        }
        GroupBy::Channel => (
            format!("SELECT day, source, medium, SUM({cost}) FROM costs WHERE {range} GROUP BY day, source, medium"),
            true,
        ),
        GroupBy::Term => return Ok(Vec::new()),
    };
    let mut st = tx.prepare(&query).map_err(sql("reading costs"))?;
    let params = params![q.site.id, first.day, last.day];
    if by_channel {
        st.query_map(params, |r| {
            let (source, medium): (String, String) = (r.get(1)?, r.get(2)?);
            Ok((r.get(0)?, q.site.cost_channel(&source, &medium), r.get(3)?))
        })
        .and_then(Iterator::collect)
        .map_err(sql("reading costs"))
    } else {
        st.query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(sql("reading costs"))
    }
}

/// Credits the calls of the site's static numbers to what the configuration
/// now says each number stands for (its source, medium, campaign and
/// channel), so configuring a number's source moves its earlier calls to the
/// row where its cost is. Only calls the number itself decided (no session:
/// a promo code the manager named keeps its session's touches).
pub(super) fn recredit_static_calls(tx: &Transaction<'_>, site: &Site) -> Result<(), StorageError> {
    for s in &site.static_numbers {
        let r = &s.report_as;
        let calls = "SELECT id FROM calls WHERE site_id = ?1 AND dialled = ?2 AND number_kind = 'static'
                       AND session_id IS NULL";
        // Rows already credited so are left alone: a restart rewrites nothing.
        let unchanged = "channel = ?3 AND source = ?4 AND medium = ?5 AND campaign IS ?6";
        tx.execute(
            &format!(
                "UPDATE call_credits SET channel = ?3, source = ?4, medium = ?5, campaign = ?6, term = NULL,
                    content = NULL, at_ms = NULL
                 WHERE call_id IN ({calls}) AND NOT ({unchanged})"
            ),
            params![site.id, s.number.e164(), r.channel, r.source, r.medium, r.campaign],
        )
        .map_err(sql("crediting a static number's calls"))?;
        tx.execute(
            &format!(
                "UPDATE calls SET channel = ?3, source = ?4, medium = ?5, campaign = ?6, term = NULL
                 WHERE id IN ({calls}) AND NOT ({unchanged})"
            ),
            params![site.id, s.number.e164(), r.channel, r.source, r.medium, r.campaign],
        )
        .map_err(sql("crediting a static number's calls"))?;
    }
    Ok(())
}

/// Whether the call's folded status is final (anything but in-progress).
fn call_is_final(tx: &Transaction<'_>, call_id: i64) -> Result<bool, StorageError> {
    tx.query_row(
        "SELECT status <> ?2 FROM calls WHERE id = ?1",
        params![call_id, CallStatus::InProgress.as_str()],
        |r| r.get(0),
    )
    .map_err(sql("reading a call's status"))
}

/// The call a delivery with this id went to, if one was stored.
fn delivered_before(
    tx: &Transaction<'_>,
    site: &Site,
    pbx: &str,
    delivery: &Delivery,
) -> Result<Option<i64>, StorageError> {
    tx.query_row(
        "SELECT call_id FROM pbx_deliveries WHERE site_id = ?1 AND pbx = ?2 AND delivery_id = ?3",
        params![site.id, pbx, delivery.id],
        |r| r.get(0),
    )
    .optional()
    .map_err(sql("looking up a PBX delivery"))
}

/// Stores the delivery's id with the event it brought, and forgets the ids
/// whose replays the timestamp check refuses by now.
fn remember_delivery(
    tx: &Transaction<'_>,
    site: &Site,
    pbx: &str,
    delivery: &Delivery,
    call_id: i64,
    now_ms: i64,
) -> Result<(), StorageError> {
    tx.execute("DELETE FROM pbx_deliveries WHERE keep_until_ms <= ?1", [now_ms])
        .map_err(sql("forgetting old PBX deliveries"))?;
    tx.execute(
        "INSERT INTO pbx_deliveries (site_id, pbx, delivery_id, call_id, received_at_ms, keep_until_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![site.id, pbx, delivery.id, call_id, now_ms, delivery.keep_until_ms],
    )
    .map_err(sql("storing a PBX delivery"))?;
    Ok(())
}

impl SqliteStorage {
    /// A read-only look at the database under the lock (a deferred
    /// transaction: one consistent snapshot, no write lock taken).
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = inner.conn.transaction().map_err(sql("beginning a read"))?;
        let out = f(&tx)?;
        tx.commit().map_err(sql("ending a read"))?;
        Ok(out)
    }
}

impl CallStore for SqliteStorage {
    fn record_call_event(
        &self,
        site: &Site,
        delivery: Option<&Delivery>,
        event: &CallEvent,
        clock: &dyn Clock,
        workflow: &dyn CallWorkflow,
    ) -> Result<Recorded, RecordError> {
        let json = serde_json::to_string(event)
            .map_err(|e| StorageError::Corrupt(format!("a call event does not serialise: {e}")))?;
        self.acknowledged(clock, |conn, now_ms| {
            let tx = immediate(conn)?;
            // Looked up under the write lock: a retry that arrives while the
            // first delivery is being stored waits for its commit here, and
            // finds the id only if that commit happened.
            if let Some(d) = delivery
                && let Some(call_id) = delivered_before(&tx, site, &event.pbx, d)?
            {
                return Ok(Recorded { call_id, created: false, new_event: false });
            }
            let existing: Option<(i64, String)> = tx
                .query_row(
                    "SELECT id, site_id FROM calls WHERE pbx = ?1 AND pbx_call_id = ?2",
                    params![event.pbx, event.pbx_call_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql("looking up a call"))?;
            let (call_id, created) = match existing {
                Some((_, owner)) if owner != site.id => {
                    return Err(RecordError::OtherSite {
                        pbx: event.pbx.clone(),
                        pbx_call_id: event.pbx_call_id.clone(),
                        owner,
                        site: site.id.clone(),
                    });
                }
                Some((id, _)) => (id, false),
                None => {
                    // A provisional row: attribution below fills in every column
                    // from the folded events before the transaction commits.
                    tx.execute(
                    "INSERT INTO calls (site_id, pbx, pbx_call_id, dialled, number_kind, ring_at_ms, status, is_target,
                        is_missed, caller_kind, confidence, reason, model, channel, source, medium,
                        first_heard_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?9, 0, 0, ?10, ?11, '', ?6, ?7, ?7, ?7, ?5, ?5)",
                    params![
                        site.id,
                        event.pbx,
                        event.pbx_call_id,
                        event.to.e164(),
                        now_ms,
                        site.attribution_model.as_str(),
                        UNATTRIBUTED,
                        DialledKind::Unknown.as_str(),
                        CallStatus::InProgress.as_str(),
                        CallerKind::Anonymous.as_str(),
                        Confidence::None.as_str()
                    ],
                )
                .map_err(sql("creating a call"))?;
                    (tx.last_insert_rowid(), true)
                }
            };
            let was_final = !created && call_is_final(&tx, call_id)?;
            let new_event = tx
                .execute(
                    "INSERT OR IGNORE INTO call_events (call_id, event_json, received_at_ms) VALUES (?1, ?2, ?3)",
                    params![call_id, json, now_ms],
                )
                .map_err(sql("storing a call event"))?
                == 1;
            if new_event {
                workflow.attribute(&mut TxFacts { tx: &tx }, site, call_id, now_ms)?;
                // The exports of a call are written once, when it ends, in this
                // transaction: a crash cannot leave an ended call unexported nor
                // an export of a call that was never stored.
                if !was_final && call_is_final(&tx, call_id)? {
                    super::money::enqueue_call_exports(&tx, site, call_id, now_ms, workflow)?;
                }
            }
            if let Some(d) = delivery {
                remember_delivery(&tx, site, &event.pbx, d, call_id, now_ms)?;
            }
            tx.commit().map_err(sql("committing a call event"))?;
            Ok(Recorded { call_id, created, new_event })
        })
    }

    fn list_calls(&self, f: &CallFilter) -> Result<(Vec<CallSummary>, u64), StorageError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Box<dyn ToSql>> = Vec::new();
        let mut add = |clause: &'static str, v: Box<dyn ToSql>| {
            clauses.push(clause);
            values.push(v);
        };
        if let Some(s) = &f.site {
            add("c.site_id = ?", Box::new(s.clone()));
        }
        if let Some(t) = f.from_ms {
            add("c.ring_at_ms >= ?", Box::new(t));
        }
        if let Some(t) = f.to_ms {
            add("c.ring_at_ms < ?", Box::new(t));
        }
        if let Some(v) = &f.channel {
            add("c.channel = ? COLLATE NOCASE", Box::new(v.clone()));
        }
        if let Some(v) = &f.source {
            add("c.source = ? COLLATE NOCASE", Box::new(v.clone()));
        }
        if let Some(v) = &f.campaign {
            add("c.campaign = ? COLLATE NOCASE", Box::new(v.clone()));
        }
        match f.status {
            Some(StatusFilter::Is(s)) => add("c.status = ?", Box::new(s.as_str())),
            Some(StatusFilter::Missed) => add("c.is_missed = ?", Box::new(true)),
            None => {}
        }
        if let Some(t) = f.target {
            add("c.is_target = ?", Box::new(t));
        }
        if let Some(tag) = &f.tag {
            add("EXISTS (SELECT 1 FROM call_tags t WHERE t.call_id = c.id AND t.tag = ?)", Box::new(tag.clone()));
        }
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        self.read(|tx| {
            let total: i64 = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM calls c {filter}"),
                    params_from_iter(values.iter().map(|v| v.as_ref())),
                    |r| r.get(0),
                )
                .map_err(sql("counting calls"))?;
            let query = list_query(&filter, f.limit, f.offset);
            let rows = tx
                .prepare(&query)
                .and_then(|mut st| {
                    st.query_map(params_from_iter(values.iter().map(|v| v.as_ref())), summary)?.collect()
                })
                .map_err(sql("listing calls"))?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn call_site(&self, id: i64) -> Result<Option<String>, StorageError> {
        self.read(|tx| {
            tx.query_row("SELECT site_id FROM calls WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(sql("reading a call's site"))
        })
    }

    fn call(&self, id: i64) -> Result<Option<CallDetail>, StorageError> {
        self.read(|tx| detail(tx, id))
    }

    fn report(&self, q: &ReportQuery) -> Result<Vec<ReportRow>, StorageError> {
        let column = q.group_by.column();
        let days = dates::local_days(&q.site.time_zone, q.from_ms, q.to_ms)
            .map_err(|e| StorageError::Corrupt(format!("report range: {e}")))?;
        // The site's local days, each with the instants it spans, go to
        // SQLite as JSON, so a call lands on the day the site's clock showed
        // when it rang (a DST day is 23 or 25 hours long). The first and
        // last are cut to the report's range, so the days alone bound the
        // calls: with the range as a second bound on `ring_at_ms`, SQLite
        // searched the index over the whole range once per day: a year of
        // 100,000 calls took 5.2 s in SQLite, and 0.28 s bounded by the days
        // (`docs/reports-at-scale.md`).
        let days_json = serde_json::Value::from(
            days.iter()
                .map(|d| serde_json::json!([d.day, d.start_ms.max(q.from_ms), d.end_ms.min(q.to_ms)]))
                .collect::<Vec<_>>(),
        )
        .to_string();
        let query = report_query(column);
        let with_cost = q.group_by != GroupBy::Term;
        self.read(|tx| {
            let rows: Vec<ReportRow> = tx
                .prepare(&query)
                .and_then(|mut st| {
                    st.query_map(params![q.site.id, days_json, q.tag], |r| {
                        Ok(ReportRow {
                            day: r.get(0)?,
                            group: r.get(1)?,
                            calls: r.get(2)?,
                            target_calls: r.get(3)?,
                            missed_calls: r.get(4)?,
                            first_time_callers: r.get(5)?,
                            revenue: r.get(6)?,
                            cost: with_cost.then_some(0.0),
                            cost_per_target_call: None,
                            roi: None,
                        })
                    })?
                    .collect()
                })
                .map_err(sql("building the calls report"))?;
            let costs = with_cost.then(|| costs_by_group(tx, q, &days)).transpose()?;
            Ok(report_with_costs(rows, costs))
        })
    }

    fn promo_lookup(&self, site: &str, code: &PromoCode) -> Result<Option<PromoLookup>, StorageError> {
        self.read(|tx| {
            let issue: Option<(String, i64, i64, bool)> = tx
                .query_row(
                    "SELECT session_id, issued_at_ms, reserved_until_ms, retired = 0 FROM promo_codes
                     WHERE site_id = ?1 AND code = ?2 ORDER BY issued_at_ms DESC, id DESC LIMIT 1",
                    params![site, code.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(sql("looking up a promo code"))?;
            let Some((session_id, issued_at_ms, reserved_until_ms, live)) = issue else { return Ok(None) };
            let Some(visitor) = visitor_path(tx, &session_id, i64::MAX)? else {
                return Err(StorageError::Corrupt(format!("promo code {code} names a missing session")));
            };
            Ok(Some(PromoLookup {
                code: code.to_string(),
                site: site.to_owned(),
                session_id,
                issued_at_ms,
                reserved_until_ms,
                live,
                visitor,
            }))
        })
    }

    fn attach_promo(
        &self,
        site: &Site,
        call_id: i64,
        code: &PromoCode,
        clock: &dyn Clock,
        workflow: &dyn CallWorkflow,
    ) -> Result<Option<()>, StorageError> {
        self.acknowledged(clock, |conn, now_ms| {
            let tx = immediate(conn)?;
            let ring_at_ms: i64 = tx
                .query_row(
                    "SELECT ring_at_ms FROM calls WHERE id = ?1 AND site_id = ?2",
                    params![call_id, site.id],
                    |r| r.get(0),
                )
                .map_err(sql("reading a call"))?;
            // A code can be reissued after its reservation lapsed: the issue
            // that was current when the phone rang is the one the caller read.
            let session: Option<String> = tx
                .query_row(
                    "SELECT session_id FROM promo_codes WHERE site_id = ?1 AND code = ?2
                 ORDER BY issued_at_ms <= ?3 DESC, issued_at_ms DESC, id DESC LIMIT 1",
                    params![site.id, code.as_str(), ring_at_ms],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("looking up a promo code"))?;
            let Some(session) = session else { return Ok(None) };
            tx.execute(
                "UPDATE calls SET promo_code = ?2, promo_session_id = ?3 WHERE id = ?1",
                params![call_id, code.as_str(), session],
            )
            .map_err(sql("attaching a promo code"))?;
            workflow.attribute(&mut TxFacts { tx: &tx }, site, call_id, now_ms)?;
            tx.commit().map_err(sql("committing a promo code"))?;
            Ok(Some(()))
        })
    }
}
