//! [`CallStore`] on PostgreSQL: PBX events, attribution, the calls list and
//! report, promo-code look-ups.
//!
//! Recording an event is one transaction that commits durably (a PBX does
//! not send an acknowledged report again):
//! 1. the call is created if it is new (`INSERT … ON CONFLICT DO NOTHING`;
//!    an instance creating it at the same moment makes this one wait at the
//!    key) and locked (`SELECT … FOR UPDATE`): the events of one call are
//!    recorded one at a time, whichever instances they reach;
//! 2. under that lock, a delivery whose id is stored is a duplicate (the id
//!    is written in the transaction that stored its event, so it is found
//!    only once that committed), and changes nothing;
//! 3. the event is stored once (`UNIQUE (call_id, event_md5)`), and the
//!    calls service's workflow refolds and attributes the call through
//!    [`CallFacts`] on the same transaction, and writes the exports of a
//!    call that just ended.

use ringsource_core::attribution::{self, CallerKind, Confidence, DialledKind, Model, Relation, Tenure};
use ringsource_core::call::{CallEvent, CallStatus};
use ringsource_core::channel::Channel;
use ringsource_core::promo::PromoCode;
use ringsource_core::touch::Touch;
use ringsource_core::visit::{ClickId, ClickIdKind};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Blocking, HasStorageError, PostgresStorage};
use crate::clock::Clock;
use crate::config::Site;
use crate::dates::{self, LocalDay};
use crate::pbx::Delivery;
use crate::storage::StorageError;
use crate::storage::calls::{
    AttributionView, CallAttribution, CallDetail, CallFacts, CallFilter, CallState, CallStore, CallSummary,
    CallWorkflow, CandidateView, CreditView, GroupBy, NumberRole, PageViewView, PromoLookup, RecordError, Recorded,
    ReportQuery, ReportRow, StatusFilter, StoredEvent, TouchView, VisitorPath, report_with_costs,
};

/// Group labels for calls that have no touch to credit (as SQLite's).
const UNATTRIBUTED: &str = "(unattributed)";
const NOT_SET: &str = "(not set)";

impl HasStorageError for RecordError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            RecordError::Storage(e) => Some(e),
            RecordError::OtherSite { .. } => None,
        }
    }
}

/// A touch on the path with the session it was recorded for.
struct PathTouch {
    session_id: String,
    touch: Touch,
}

/// The sessions of the visitor behind `session_id`: it and every other
/// session of the site with the same analytics client id.
fn visitor_sessions(db: &Blocking<'_, '_>, session_id: &str) -> Result<Vec<String>, StorageError> {
    let rows = db.query(
        "finding the visitor's sessions",
        "SELECT o.id FROM sessions s JOIN sessions o
           ON o.id = s.id OR (o.site_id = s.site_id AND o.client_id = s.client_id AND s.client_id IS NOT NULL)
         WHERE s.id = $1 ORDER BY o.created_at_ms, o.id",
        &[&session_id],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The visitor's touches recorded up to `until_ms`, oldest first, each visit once.
fn visitor_touches(db: &Blocking<'_, '_>, session_id: &str, until_ms: i64) -> Result<Vec<PathTouch>, StorageError> {
    let sessions = visitor_sessions(db, session_id)?;
    let rows = db.query(
        "reading the visitor's touches",
        "SELECT session_id, channel, source, medium, campaign, term, content, utm_id, click_id_kind, click_id,
                landing_path, referrer_host, at_ms
         FROM touches WHERE session_id = ANY($1) AND recorded_at_ms <= $2 ORDER BY id",
        &[&sessions, &until_ms],
    )?;
    let mut touches = Vec::with_capacity(rows.len());
    for r in rows {
        let session: String = r.get(0);
        let corrupt = |what: String| StorageError::Corrupt(format!("a stored touch of session {session}: {what}"));
        let channel: String = r.get(1);
        let kind: Option<String> = r.get(8);
        let click: Option<String> = r.get(9);
        let touch = Touch {
            channel: channel.parse::<Channel>().map_err(|_| corrupt(format!("unknown channel {channel:?}")))?,
            source: r.get(2),
            medium: r.get(3),
            campaign: r.get(4),
            term: r.get(5),
            content: r.get(6),
            utm_id: r.get(7),
            click_id: match (kind, click) {
                (Some(kind), Some(value)) => Some(ClickId {
                    kind: ClickIdKind::from_name(&kind)
                        .ok_or_else(|| corrupt(format!("unknown click id kind {kind:?}")))?,
                    value,
                }),
                _ => None,
            },
            landing_path: r.get(10),
            referrer_host: r.get(11),
            at_ms: u64::try_from(r.get::<_, i64>(12)).unwrap_or(0),
        };
        touches.push(PathTouch { session_id: session.clone(), touch });
    }
    // Order and de-duplicate as core does, keeping each touch's session.
    let path = attribution::path(touches.iter().map(|t| t.touch.clone()).collect());
    Ok(path
        .into_iter()
        .map(|t| {
            let session_id = touches
                .iter()
                .find(|p| p.touch == t)
                .map(|p| p.session_id.clone())
                .unwrap_or_else(|| session_id.to_owned());
            PathTouch { session_id, touch: t }
        })
        .collect())
}

/// [`CallFacts`] on the transaction that records an event.
struct TxFacts<'a, 'b, 'c> {
    db: &'a Blocking<'b, 'c>,
}

impl CallFacts for TxFacts<'_, '_, '_> {
    fn events(&mut self, call_id: i64) -> Result<Vec<CallEvent>, StorageError> {
        let rows = self.db.query(
            "reading a call's events",
            "SELECT event_json FROM call_events WHERE call_id = $1 ORDER BY id",
            &[&call_id],
        )?;
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)))
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::Corrupt(format!("a stored event of call {call_id} does not parse: {e}")))
    }

    fn state(&mut self, call_id: i64) -> Result<CallState, StorageError> {
        let r = self.db.query_one(
            "reading a call",
            "SELECT first_heard_at_ms, promo_code, promo_session_id FROM calls WHERE id = $1",
            &[&call_id],
        )?;
        Ok(CallState { first_heard_at_ms: r.get(0), promo_code: r.get(1), promo_session: r.get(2) })
    }

    fn number_role(&mut self, site_id: &str, number: &str) -> Result<Option<NumberRole>, StorageError> {
        let row = self.db.query_opt(
            "looking up the dialled number",
            "SELECT kind, pool_id, label FROM numbers WHERE number = $1 AND site_id = $2",
            &[&number, &site_id],
        )?;
        Ok(row.map(|r| NumberRole {
            kind: DialledKind::from_name(r.get(0)).unwrap_or(DialledKind::Unknown),
            pool_id: r.get(1),
            label: r.get(2),
        }))
    }

    fn tenures(&mut self, number: &str, ring_at_ms: i64) -> Result<Vec<Tenure>, StorageError> {
        // A lease that ended early (released, taken or handed over) was held
        // until it ended; otherwise until it expired.
        let rows = self.db.query(
            "reading the number's leases",
            "SELECT session_id, started_at_ms, LEAST(COALESCE(ended_at_ms, expires_at_ms), expires_at_ms)
             FROM leases WHERE number = $1 AND started_at_ms <= $2
             ORDER BY started_at_ms DESC LIMIT 64",
            &[&number, &ring_at_ms],
        )?;
        Ok(rows
            .iter()
            .map(|r| Tenure { session_id: r.get(0), started_at_ms: r.get(1), held_until_ms: r.get(2) })
            .collect())
    }

    fn caller_prior(
        &mut self,
        site_id: &str,
        caller_key: &str,
        call_id: i64,
        ring_at_ms: i64,
        window_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        let row = self.db.query_opt(
            "finding the caller's earlier call",
            "SELECT session_id FROM calls
             WHERE site_id = $1 AND caller_key = $2 AND id <> $3 AND session_id IS NOT NULL
               AND confidence IN ('high', 'medium')
               AND (ring_at_ms < $4 OR (ring_at_ms = $4 AND id < $3)) AND ring_at_ms >= $4 - $5
             ORDER BY ring_at_ms DESC, id DESC LIMIT 1",
            &[&site_id, &caller_key, &call_id, &ring_at_ms, &window_ms],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn visitor_touches(&mut self, session_id: &str, until_ms: i64) -> Result<Vec<Touch>, StorageError> {
        Ok(visitor_touches(self.db, session_id, until_ms)?.into_iter().map(|p| p.touch).collect())
    }

    fn caller_calls(&mut self, site_id: &str, caller_key: &str) -> Result<Vec<(i64, i64)>, StorageError> {
        let rows = self.db.query(
            "reading the caller's calls",
            "SELECT id, ring_at_ms FROM calls WHERE site_id = $1 AND caller_key = $2 ORDER BY ring_at_ms, id",
            &[&site_id, &caller_key],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn save_attribution(&mut self, call_id: i64, a: &CallAttribution, now_ms: i64) -> Result<(), StorageError> {
        let call = &a.call;
        let to_i64 = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        let secs = |v: Option<u32>| v.map(i64::from);
        self.db.execute(
            "saving a call",
            "UPDATE calls SET caller = $2, caller_key = $3, dialled = $4, number_kind = $5, pool_id = $6,
                static_label = $7, ring_at_ms = $8, answered_at_ms = $9, ended_at_ms = $10, duration_secs = $11,
                talk_secs = $12, status = $13, is_target = $14, is_missed = $15, recording_url = $16,
                session_id = $17, confidence = $18, reason = $19, model = $20, channel = $21, source = $22,
                medium = $23, campaign = $24, term = $25, updated_at_ms = $26
             WHERE id = $1",
            &[
                &call_id,
                &call.from,
                &a.caller_key,
                &call.to.e164(),
                &a.number_kind.as_str(),
                &a.pool_id,
                &a.static_label,
                &a.ring_at_ms,
                &to_i64(call.answered_at_ms),
                &to_i64(call.ended_at_ms),
                &secs(call.duration_secs),
                &secs(call.talk_secs),
                &call.status.as_str(),
                &a.is_target,
                &a.is_missed,
                &call.recording_url,
                &a.session_id,
                &a.confidence.as_str(),
                &a.reason,
                &a.model.as_str(),
                &a.headline.channel,
                &a.headline.source,
                &a.headline.medium,
                &a.headline.campaign,
                &a.headline.term,
                &now_ms,
            ],
        )?;
        self.db.execute("clearing candidates", "DELETE FROM call_candidates WHERE call_id = $1", &[&call_id])?;
        self.db.execute("clearing credits", "DELETE FROM call_credits WHERE call_id = $1", &[&call_id])?;
        for c in &a.candidates {
            let chosen = a.session_id.as_deref() == Some(c.session_id.as_str());
            self.db.execute(
                "saving a candidate",
                "INSERT INTO call_candidates (call_id, session_id, relation, held_from_ms, held_until_ms, chosen)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&call_id, &c.session_id, &c.relation.as_str(), &c.held_from_ms, &c.held_until_ms, &chosen],
            )?;
        }
        for (seq, c) in (0i32..).zip(&a.credits) {
            self.db.execute(
                "saving a credit",
                "INSERT INTO call_credits (call_id, seq, share, at_ms, channel, source, medium, campaign, term, content)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[&call_id, &seq, &c.share, &c.at_ms, &c.channel, &c.source, &c.medium, &c.campaign, &c.term, &c.content],
            )?;
        }
        Ok(())
    }

    fn save_caller_kind(&mut self, call_id: i64, kind: CallerKind) -> Result<(), StorageError> {
        // Written only when it changes: the workflow saves the kind of every
        // call of the caller on each event, and an UPDATE that finds the row
        // as it should be neither waits for nor locks another instance's
        // call (two calls of one caller recorded at once would otherwise
        // lock each other's rows, in opposite orders).
        self.db.execute(
            "saving a caller kind",
            "UPDATE calls SET caller_kind = $2 WHERE id = $1 AND caller_kind <> $2",
            &[&call_id, &kind.as_str()],
        )?;
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
fn named<T>(r: &Row, i: usize, parse: impl Fn(&str) -> Option<T>) -> Result<T, StorageError> {
    let text: &str = r.get(i);
    parse(text).ok_or_else(|| StorageError::Corrupt(format!("{text:?} is not a value column {i} may hold")))
}

fn summary(r: &Row) -> Result<CallSummary, StorageError> {
    Ok(CallSummary {
        id: r.get(0),
        site: r.get(1),
        pbx: r.get(2),
        pbx_call_id: r.get(3),
        caller: r.get(4),
        dialled: r.get(5),
        number_kind: named(r, 6, DialledKind::from_name)?,
        pool_id: r.get(7),
        static_label: r.get(8),
        ring_at_ms: r.get(9),
        answered_at_ms: r.get(10),
        ended_at_ms: r.get(11),
        duration_secs: r.get(12),
        talk_secs: r.get(13),
        status: named(r, 14, CallStatus::from_name)?,
        target: r.get(15),
        missed: r.get(16),
        caller_kind: named(r, 17, CallerKind::from_name)?,
        recording_url: r.get(18),
        session_id: r.get(19),
        confidence: named(r, 20, Confidence::from_name)?,
        reason: r.get(21),
        model: named(r, 22, |s: &str| s.parse::<Model>().ok())?,
        promo_code: r.get(23),
        channel: r.get(24),
        source: r.get(25),
        medium: r.get(26),
        campaign: r.get(27),
        term: r.get(28),
    })
}

/// The visitor's path as shown to a manager, up to `until_ms`.
fn visitor_path(db: &Blocking<'_, '_>, session_id: &str, until_ms: i64) -> Result<Option<VisitorPath>, StorageError> {
    let Some(session) = db.query_opt(
        "reading a session",
        "SELECT client_id, ym_uid, created_at_ms, last_seen_ms FROM sessions WHERE id = $1",
        &[&session_id],
    )?
    else {
        return Ok(None);
    };
    let touches: Vec<TouchView> = visitor_touches(db, session_id, until_ms)?
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
    let sessions = visitor_sessions(db, session_id)?;
    let page_views: Vec<PageViewView> = db
        .query(
            "reading page views",
            "SELECT session_id, at_ms, url, title FROM page_views WHERE session_id = ANY($1) AND at_ms <= $2
             ORDER BY at_ms, id",
            &[&sessions, &until_ms],
        )?
        .iter()
        .map(|r| PageViewView { session_id: r.get(0), at_ms: r.get(1), url: r.get(2), title: r.get(3) })
        .collect();
    let landing_page = page_views.iter().find(|p| p.session_id == session_id).map(|p| p.url.clone());
    let keyword = touches.iter().rev().find_map(|t| t.term.clone());
    Ok(Some(VisitorPath {
        session_id: session_id.to_owned(),
        client_id: session.get(0),
        ym_uid: session.get(1),
        first_seen_ms: session.get(2),
        last_seen_ms: session.get(3),
        landing_page,
        keyword,
        touches,
        page_views,
    }))
}

pub(super) fn detail(db: &Blocking<'_, '_>, id: i64) -> Result<Option<CallDetail>, StorageError> {
    let Some(row) =
        db.query_opt("reading a call", &format!("SELECT {SUMMARY_COLUMNS} FROM calls c WHERE c.id = $1"), &[&id])?
    else {
        return Ok(None);
    };
    let call = summary(&row)?;
    let candidates = db
        .query(
            "reading candidates",
            "SELECT session_id, relation, held_from_ms, held_until_ms, chosen FROM call_candidates
             WHERE call_id = $1 ORDER BY chosen DESC, held_until_ms DESC NULLS LAST, session_id COLLATE \"C\"",
            &[&id],
        )?
        .iter()
        .map(|r| {
            Ok(CandidateView {
                session_id: r.get(0),
                relation: named(r, 1, Relation::from_name)?,
                held_from_ms: r.get(2),
                held_until_ms: r.get(3),
                chosen: r.get(4),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let credits = db
        .query(
            "reading credits",
            "SELECT share, at_ms, channel, source, medium, campaign, term, content FROM call_credits
             WHERE call_id = $1 ORDER BY seq",
            &[&id],
        )?
        .iter()
        .map(|r| CreditView {
            share: r.get(0),
            at_ms: r.get(1),
            channel: r.get(2),
            source: r.get(3),
            medium: r.get(4),
            campaign: r.get(5),
            term: r.get(6),
            content: r.get(7),
        })
        .collect();
    let events = db
        .query(
            "reading a call's events",
            "SELECT received_at_ms, event_json FROM call_events WHERE call_id = $1 ORDER BY id",
            &[&id],
        )?
        .iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(1))
                .map(|event| StoredEvent { received_at_ms: r.get(0), event })
                .map_err(|e| StorageError::Corrupt(format!("a stored event of call {id} does not parse: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let visitor = match &call.session_id {
        Some(s) => visitor_path(db, s, call.ring_at_ms)?,
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

/// A stored amount as the reports sum it: within `[0, money::MAX_AMOUNT]`
/// (as SQLite's `bounded_amount`).
fn bounded_amount(column: &str) -> String {
    format!("LEAST(GREATEST({column}, 0), {:e})", crate::storage::money::MAX_AMOUNT)
}

/// The site's cost per day and group in the report's range (as SQLite's
/// `costs_by_group`).
fn costs_by_group(
    db: &Blocking<'_, '_>,
    q: &ReportQuery,
    days: &[LocalDay],
) -> Result<Vec<(String, String, f64)>, StorageError> {
    let mut counted = days.iter().filter(|d| d.start_ms >= q.from_ms && d.start_ms < q.to_ms);
    let Some(first) = counted.next() else { return Ok(Vec::new()) };
    let last = counted.next_back().unwrap_or(first);
    let range = "site_id = $1 AND day >= $2 AND day <= $3";
    let cost = bounded_amount("cost");
    let params: [&(dyn ToSql + Sync); 3] = [&q.site.id, &first.day, &last.day];
    // Summed here, not by PostgreSQL's SUM(double precision), which adds in
    // plain floating point: SQLite's SUM (3.43 and later) compensates for
    // rounding (Kahan-Babuska-Neumaier), and the same costs must make the
    // same report on both backends. A site's cost rows in a report's range
    // are a few per day and campaign.
    match q.group_by {
        GroupBy::Source | GroupBy::Medium | GroupBy::Campaign => {
            let column = q.group_by.column();
            let rows = db.query(
                "reading costs",
                &format!(
                    "SELECT day, CASE WHEN {column} = '' THEN '{NOT_SET}' ELSE {column} END AS grp, {cost}
                     FROM costs WHERE {range} ORDER BY day, source, medium, campaign"
                ),
                &params,
            )?;
            Ok(compensated_sums(
                rows.iter().map(|r| ((r.get::<_, String>(0), r.get::<_, String>(1)), r.get::<_, f64>(2))),
            )
            .map(|((day, group), cost)| (day, group, cost))
            .collect())
        }
        GroupBy::Channel => {
            let rows = db.query(
                "reading costs",
                &format!(
                    "SELECT day, source, medium, {cost} FROM costs WHERE {range} ORDER BY day, source, medium, campaign"
                ),
                &params,
            )?;
            let costs = rows.iter().map(|r| {
                let key: (String, String, String) = (r.get(0), r.get(1), r.get(2));
                (key, r.get::<_, f64>(3))
            });
            Ok(compensated_sums(costs)
                .map(|((day, source, medium), cost)| (day, q.site.cost_channel(&source, &medium), cost))
                .collect())
        }
        GroupBy::Term => Ok(Vec::new()),
    }
}

/// The sum of each key's values as SQLite's SUM makes it: Neumaier's
/// compensated summation, the running error added at the end.
fn compensated_sums<K: Ord>(values: impl Iterator<Item = (K, f64)>) -> impl Iterator<Item = (K, f64)> {
    let mut sums = std::collections::BTreeMap::<K, (f64, f64)>::new();
    for (key, x) in values {
        let (sum, error) = sums.entry(key).or_insert((0.0, 0.0));
        let t = *sum + x;
        *error += if sum.abs() >= x.abs() { (*sum - t) + x } else { (x - t) + *sum };
        *sum = t;
    }
    sums.into_iter().map(|(key, (sum, error))| (key, sum + error))
}

/// Whether the call's folded status is final (anything but in-progress).
fn call_is_final(db: &Blocking<'_, '_>, call_id: i64) -> Result<bool, StorageError> {
    let r = db.query_one(
        "reading a call's status",
        "SELECT status <> $2 FROM calls WHERE id = $1",
        &[&call_id, &CallStatus::InProgress.as_str()],
    )?;
    Ok(r.get(0))
}

/// A filter's text as it was written ([`super::without_nul`]).
fn nul_free(text: &str) -> String {
    let mut text = text.to_owned();
    super::without_nul(&mut text);
    text
}

impl CallStore for PostgresStorage {
    fn record_call_event(
        &self,
        site: &Site,
        delivery: Option<&Delivery>,
        event: &CallEvent,
        clock: &dyn Clock,
        workflow: &dyn CallWorkflow,
    ) -> Result<Recorded, RecordError> {
        let mut event = event.clone();
        super::without_nul(&mut event.pbx_call_id);
        super::without_nul_opt(&mut event.from);
        super::without_nul_opt(&mut event.recording_url);
        let event = &event;
        let json = serde_json::to_string(event)
            .map_err(|e| StorageError::Corrupt(format!("a call event does not serialise: {e}")))?;
        self.write(clock, |db, now_ms| {
            // A provisional row: attribution below fills in every column from
            // the folded events before the transaction commits.
            let created = db
                .query_opt(
                    "creating a call",
                    "INSERT INTO calls (site_id, pbx, pbx_call_id, dialled, number_kind, ring_at_ms, status, is_target,
                        is_missed, caller_kind, confidence, reason, model, channel, source, medium,
                        first_heard_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $8, $5, $9, false, false, $10, $11, '', $6, $7, $7, $7, $5, $5)
                     ON CONFLICT (pbx, pbx_call_id) DO NOTHING RETURNING id",
                    &[
                        &site.id,
                        &event.pbx,
                        &event.pbx_call_id,
                        &event.to.e164(),
                        &now_ms,
                        &site.attribution_model.as_str(),
                        &UNATTRIBUTED,
                        &DialledKind::Unknown.as_str(),
                        &CallStatus::InProgress.as_str(),
                        &CallerKind::Anonymous.as_str(),
                        &Confidence::None.as_str(),
                    ],
                )?
                .is_some();
            // The call's lock: its events are recorded one at a time.
            let row = db.query_one(
                "locking a call",
                "SELECT id, site_id FROM calls WHERE pbx = $1 AND pbx_call_id = $2 FOR UPDATE",
                &[&event.pbx, &event.pbx_call_id],
            )?;
            let (call_id, owner): (i64, String) = (row.get(0), row.get(1));
            if owner != site.id {
                return Err(RecordError::OtherSite {
                    pbx: event.pbx.clone(),
                    pbx_call_id: event.pbx_call_id.clone(),
                    owner,
                    site: site.id.clone(),
                });
            }
            if let Some(d) = delivery
                && let Some(earlier) = db.query_opt(
                    "looking up a PBX delivery",
                    "SELECT call_id FROM pbx_deliveries WHERE site_id = $1 AND pbx = $2 AND delivery_id = $3",
                    &[&site.id, &event.pbx, &d.id],
                )?
            {
                // The id came with another call's event (a sender that reused
                // it): the row made above for this one goes too, as SQLite,
                // which looks the id up first, never makes it.
                if created {
                    db.execute("forgetting a duplicate's call", "DELETE FROM calls WHERE id = $1", &[&call_id])?;
                }
                return Ok(Recorded { call_id: earlier.get(0), created: false, new_event: false });
            }
            let was_final = !created && call_is_final(db, call_id)?;
            let new_event = db.execute(
                "storing a call event",
                "INSERT INTO call_events (call_id, event_json, received_at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (call_id, event_md5) DO NOTHING",
                &[&call_id, &json, &now_ms],
            )? == 1;
            if new_event {
                workflow.attribute(&mut TxFacts { db }, site, call_id, now_ms)?;
                // The exports of a call are written once, when it ends, in this
                // transaction: a crash cannot leave an ended call unexported nor
                // an export of a call that was never stored.
                if !was_final && call_is_final(db, call_id)? {
                    super::money::enqueue_call_exports(db, site, call_id, now_ms, workflow)?;
                }
            }
            if let Some(d) = delivery {
                // Ids whose replays the timestamp check refuses by now go, a
                // few at a time and none another transaction is deleting.
                db.execute(
                    "forgetting old PBX deliveries",
                    "DELETE FROM pbx_deliveries WHERE ctid IN (SELECT ctid FROM pbx_deliveries
                        WHERE keep_until_ms <= $1 LIMIT 64 FOR UPDATE SKIP LOCKED)",
                    &[&now_ms],
                )?;
                db.execute(
                    "storing a PBX delivery",
                    "INSERT INTO pbx_deliveries (site_id, pbx, delivery_id, call_id, received_at_ms, keep_until_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&site.id, &event.pbx, &d.id, &call_id, &now_ms, &d.keep_until_ms],
                )?;
            }
            Ok(Recorded { call_id, created, new_event })
        })
    }

    fn list_calls(&self, f: &CallFilter) -> Result<(Vec<CallSummary>, u64), StorageError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut add = |clause: &str, v: Box<dyn ToSql + Sync>| {
            values.push(v);
            clauses.push(clause.replace('?', &format!("${}", values.len())));
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
        // SQLite's COLLATE NOCASE folds ASCII letters only.
        if let Some(v) = &f.channel {
            add("lower(c.channel) = lower(?)", Box::new(nul_free(v)));
        }
        if let Some(v) = &f.source {
            add("lower(c.source) = lower(?)", Box::new(nul_free(v)));
        }
        if let Some(v) = &f.campaign {
            add("lower(c.campaign) = lower(?)", Box::new(nul_free(v)));
        }
        match f.status {
            Some(StatusFilter::Is(s)) => add("c.status = ?", Box::new(s.as_str().to_owned())),
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
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        self.read(|db| {
            let total: i64 = db.query_one("counting calls", &format!("SELECT COUNT(*) FROM calls c {filter}"), &params)?.get(0);
            let query = format!(
                "SELECT {SUMMARY_COLUMNS} FROM calls c {filter} ORDER BY c.ring_at_ms DESC, c.id DESC LIMIT {} OFFSET {}",
                f.limit, f.offset
            );
            let rows = db.query("listing calls", &query, &params)?.iter().map(summary).collect::<Result<_, _>>()?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn call_site(&self, id: i64) -> Result<Option<String>, StorageError> {
        self.read(|db| {
            Ok(db
                .query_opt("reading a call's site", "SELECT site_id FROM calls WHERE id = $1", &[&id])?
                .map(|r| r.get(0)))
        })
    }

    fn call(&self, id: i64) -> Result<Option<CallDetail>, StorageError> {
        self.read(|db| detail(db, id))
    }

    fn report(&self, q: &ReportQuery) -> Result<Vec<ReportRow>, StorageError> {
        let column = q.group_by.column();
        let days = dates::local_days(&q.site.time_zone, q.from_ms, q.to_ms)
            .map_err(|e| StorageError::Corrupt(format!("report range: {e}")))?;
        // The site's local days, each with the instants it spans, so a call
        // lands on the day the site's clock showed when it rang.
        let names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
        let starts: Vec<i64> = days.iter().map(|d| d.start_ms).collect();
        let ends: Vec<i64> = days.iter().map(|d| d.end_ms).collect();
        let amount = bounded_amount("amount");
        let query = format!(
            "SELECT d.day, COALESCE(cr.{column}, '{NOT_SET}') AS grp,
                SUM(cr.share), SUM(cr.share * c.is_target::int), SUM(cr.share * c.is_missed::int),
                SUM(cr.share * (c.caller_kind = 'first-time')::int), SUM(cr.share * COALESCE(rv.amount, 0))
             FROM calls c
             JOIN unnest($4::text[], $5::bigint[], $6::bigint[]) AS d(day, start_ms, end_ms)
               ON c.ring_at_ms >= d.start_ms AND c.ring_at_ms < d.end_ms
             JOIN call_credits cr ON cr.call_id = c.id
             LEFT JOIN (SELECT call_id, SUM({amount}) AS amount FROM revenue GROUP BY call_id) rv ON rv.call_id = c.id
             WHERE c.site_id = $1 AND c.ring_at_ms >= $2 AND c.ring_at_ms < $3
               AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM call_tags t WHERE t.call_id = c.id AND t.tag = $7))
             GROUP BY d.day, grp"
        );
        let with_cost = q.group_by != GroupBy::Term;
        self.read(|db| {
            // Planned for these bounds and days each time: after five runs of
            // a prepared statement PostgreSQL may keep a generic plan, which
            // guesses 10 days and a few hundred calls and compares every
            // call with every day (a year's report at 100,000 calls: 3.2 s
            // instead of 0.3 s; docs/reports-at-scale.md, "PostgreSQL").
            db.query(
                "planning the calls report",
                "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)",
                &[],
            )?;
            let rows = db.query(
                "building the calls report",
                &query,
                &[&q.site.id, &q.from_ms, &q.to_ms, &names, &starts, &ends, &q.tag],
            )?;
            let rows: Vec<ReportRow> = rows
                .iter()
                .map(|r| ReportRow {
                    day: r.get(0),
                    group: r.get(1),
                    calls: r.get(2),
                    target_calls: r.get(3),
                    missed_calls: r.get(4),
                    first_time_callers: r.get(5),
                    revenue: r.get(6),
                    cost: with_cost.then_some(0.0),
                    cost_per_target_call: None,
                    roi: None,
                })
                .collect();
            let costs = with_cost.then(|| costs_by_group(db, q, &days)).transpose()?;
            Ok(report_with_costs(rows, costs))
        })
    }

    fn promo_lookup(&self, site: &str, code: &PromoCode) -> Result<Option<PromoLookup>, StorageError> {
        self.read(|db| {
            let Some(issue) = db.query_opt(
                "looking up a promo code",
                "SELECT session_id, issued_at_ms, reserved_until_ms, NOT retired FROM promo_codes
                 WHERE site_id = $1 AND code = $2 ORDER BY issued_at_ms DESC, id DESC LIMIT 1",
                &[&site, &code.as_str()],
            )?
            else {
                return Ok(None);
            };
            let session_id: String = issue.get(0);
            let Some(visitor) = visitor_path(db, &session_id, i64::MAX)? else {
                return Err(StorageError::Corrupt(format!("promo code {code} names a missing session")));
            };
            Ok(Some(PromoLookup {
                code: code.to_string(),
                site: site.to_owned(),
                session_id,
                issued_at_ms: issue.get(1),
                reserved_until_ms: issue.get(2),
                live: issue.get(3),
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
        self.write(clock, |db, now_ms| {
            let ring_at_ms: i64 = db
                .query_one(
                    "reading a call",
                    "SELECT ring_at_ms FROM calls WHERE id = $1 AND site_id = $2 FOR UPDATE",
                    &[&call_id, &site.id],
                )?
                .get(0);
            // A code can be reissued after its reservation lapsed: the issue
            // that was current when the phone rang is the one the caller read.
            let Some(session) = db.query_opt(
                "looking up a promo code",
                "SELECT session_id FROM promo_codes WHERE site_id = $1 AND code = $2
                 ORDER BY issued_at_ms <= $3 DESC, issued_at_ms DESC, id DESC LIMIT 1",
                &[&site.id, &code.as_str(), &ring_at_ms],
            )?
            else {
                return Ok(None);
            };
            let session: String = session.get(0);
            db.execute(
                "attaching a promo code",
                "UPDATE calls SET promo_code = $2, promo_session_id = $3 WHERE id = $1",
                &[&call_id, &code.as_str(), &session],
            )?;
            workflow.attribute(&mut TxFacts { db }, site, call_id, now_ms)?;
            Ok(Some(()))
        })
    }
}
