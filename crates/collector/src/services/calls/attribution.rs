//! The call workflow: refold a call from its events, find the session behind
//! it with core's matcher, split its credit over the visitor's touches,
//! rank its caller first-time or repeat, and build its exports when it ends.
//! Storage runs it inside the transaction that stores the event and only
//! reads and writes what it asks for ([`CallFacts`]).

use ringsource_core::attribution::{
    CallerKind, Chosen, Dialled, DialledKind, Facts, Model, caller_kind, credit, match_call,
};
use ringsource_core::call::Call;
use ringsource_core::touch::Touch;
use serde_json::Value;

use crate::config::{NOT_SET, Site, StaticSource};
use crate::exports::ExportKind;
use crate::storage::StorageError;
use crate::storage::calls::{CallAttribution, CallDetail, CallFacts, CallWorkflow, CreditView, caller_key};

const DAY_MS: i64 = 86_400_000;

/// Group labels for calls that have no touch to credit.
pub const UNATTRIBUTED: &str = "(unattributed)";

/// The calls service's [`CallWorkflow`].
pub struct Workflow;

impl CallWorkflow for Workflow {
    fn attribute(&self, facts: &mut dyn CallFacts, site: &Site, call_id: i64, now_ms: i64) -> Result<(), StorageError> {
        attribute(facts, site, call_id, now_ms)
    }

    fn exports(&self, site: &Site, detail: &CallDetail, now_ms: i64) -> Vec<(ExportKind, Result<Value, String>)> {
        crate::services::exports::payloads(site, detail, now_ms)
    }
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

fn of_touch(t: &Touch, share: f64) -> CreditView {
    CreditView {
        share,
        at_ms: i64::try_from(t.at_ms).ok(),
        channel: t.channel.as_str().to_owned(),
        source: t.source.clone(),
        medium: t.medium.clone(),
        campaign: t.campaign.clone(),
        term: t.term.clone(),
        content: t.content.clone(),
    }
}

fn whole(channel: &str, source: &str, medium: &str) -> CreditView {
    CreditView {
        share: 1.0,
        at_ms: None,
        channel: channel.to_owned(),
        source: source.to_owned(),
        medium: medium.to_owned(),
        campaign: None,
        term: None,
        content: None,
    }
}

fn of_static(s: &StaticSource) -> CreditView {
    CreditView { campaign: s.campaign.clone(), ..whole(&s.channel, &s.source, &s.medium) }
}

/// The credit shares and the headline (the touch the list filters match).
fn credits_for(
    facts: &mut dyn CallFacts,
    site: &Site,
    call: &Call,
    chosen: &Chosen,
    ring_at_ms: i64,
) -> Result<(Vec<CreditView>, CreditView), StorageError> {
    match chosen {
        Chosen::Session(session_id) => {
            let mut touches = facts.visitor_touches(session_id, ring_at_ms)?;
            if touches.is_empty() {
                // Touches are recorded with the session, so only a clock
                // stepping back between visit and call gets here; the
                // session's touches are still the best account of it.
                touches = facts.visitor_touches(session_id, i64::MAX)?;
            }
            let model = site.attribution_model;
            let credits = credit(model, &touches);
            if credits.is_empty() {
                return Ok((vec![whole(NOT_SET, NOT_SET, NOT_SET)], whole(NOT_SET, NOT_SET, NOT_SET)));
            }
            let headline_model = if model == Model::Linear { Model::LastTouch } else { model };
            let headline = credit(headline_model, &touches)[0].touch;
            Ok((
                credits.iter().map(|c| of_touch(&touches[c.touch], c.share)).collect(),
                of_touch(&touches[headline], 1.0),
            ))
        }
        Chosen::Static(label) => {
            let row = match site.static_numbers.iter().find(|s| s.number == call.to) {
                Some(s) => of_static(&s.report_as),
                // A number the configuration no longer lists as static.
                None => whole("Static number", label, "static"),
            };
            Ok((vec![row.clone()], row))
        }
        Chosen::Nobody => {
            Ok((vec![whole(UNATTRIBUTED, UNATTRIBUTED, "(none)")], whole(UNATTRIBUTED, UNATTRIBUTED, "(none)")))
        }
    }
}

/// Refolds call `call_id` from all its events and attributes it again.
pub fn attribute(facts: &mut dyn CallFacts, site: &Site, call_id: i64, now_ms: i64) -> Result<(), StorageError> {
    let events = facts.events(call_id)?;
    let call = Call::fold(&events).map_err(|e| StorageError::Corrupt(format!("call {call_id}: {e}")))?;
    let state = facts.state(call_id)?;
    let ring_at_ms = to_i64(call.ring_at_ms()).unwrap_or(state.first_heard_at_ms);

    let dialled = call.to.e164();
    let role = facts.number_role(&site.id, &dialled)?;
    let tenures = match &role {
        Some(r) if r.kind == DialledKind::Pool => facts.tenures(&dialled, ring_at_ms)?,
        _ => Vec::new(),
    };
    let (number_kind, pool_id, static_label) = match role {
        Some(r) => (r.kind, r.pool_id, r.label),
        None => (DialledKind::Unknown, None, None),
    };
    let dialled_role = match (number_kind, &pool_id, &static_label) {
        (DialledKind::Pool, Some(pool), _) => Dialled::Pool { pool_id: pool, tenures: &tenures },
        (DialledKind::Static, _, Some(label)) => Dialled::Static { label },
        (DialledKind::Overflow, _, _) => Dialled::Overflow,
        (DialledKind::Original, _, _) => Dialled::Original,
        _ => Dialled::Unknown,
    };

    let key = caller_key(call.from.as_deref());
    let window_ms = i64::from(site.uniqueness_window_days) * DAY_MS;
    let caller_prior = match &key {
        Some(k) => facts.caller_prior(&site.id, k, call_id, ring_at_ms, window_ms)?,
        None => None,
    };
    let m = match_call(&Facts {
        ring_at_ms,
        dialled: dialled_role,
        grace_ms: i64::from(site.grace_secs) * 1000,
        promo: state.promo_code.as_deref().zip(state.promo_session.as_deref()),
        caller_prior: caller_prior.as_deref(),
    });
    let (credits, headline) = credits_for(facts, site, &call, &m.chosen, ring_at_ms)?;
    let attribution = CallAttribution {
        caller_key: key.clone(),
        number_kind,
        pool_id,
        static_label,
        ring_at_ms,
        is_target: call.is_target(site.target_call_secs),
        is_missed: call.is_missed(),
        session_id: m.session_id().map(str::to_owned),
        confidence: m.confidence,
        reason: m.reason.to_string(),
        model: site.attribution_model,
        candidates: m.candidates.clone(),
        credits,
        headline,
        call,
    };
    facts.save_attribution(call_id, &attribution, now_ms)?;
    refresh_caller_kinds(facts, site, call_id, key.as_deref())
}

/// First-time or repeat for every call of this caller, in ring order: a call
/// that arrives late (an earlier ring) can make a later call a repeat, or
/// stop it from being the first.
fn refresh_caller_kinds(
    facts: &mut dyn CallFacts,
    site: &Site,
    call_id: i64,
    key: Option<&str>,
) -> Result<(), StorageError> {
    let Some(key) = key else { return facts.save_caller_kind(call_id, CallerKind::Anonymous) };
    let mut previous: Option<i64> = None;
    for (id, ring) in facts.caller_calls(&site.id, key)? {
        // The latest earlier call decides: any earlier call within the
        // window means the latest one is within it too.
        facts.save_caller_kind(id, caller_kind(true, ring, previous, site.uniqueness_window_days))?;
        previous = Some(ring);
    }
    Ok(())
}
