//! Kamailio dialog events, posted by the `http_client` module from the
//! routing script (`examples/kamailio/kamailio.cfg`).
//!
//! Kamailio's script has no HMAC function that `http_client_query` could
//! use on the body, so authentication is a static bearer token
//! (`Authorization: Bearer <pbx_secrets.kamailio>`, at least 16 characters).
//! Meant for loopback or a private network: over anything else put TLS in
//! front, since a bearer token is replayable by whoever can read it.
//!
//! Body (JSON, this collector's own format; unknown fields ignored):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `event` | `start` \| `answer` \| `end` | INVITE seen, dialog confirmed (200 OK), dialog over (BYE, or a failed INVITE) |
//! | `call_id` | string | the SIP Call-ID (`$ci`) |
//! | `from` | string | the caller's user part (`$fU`) |
//! | `to` | string | the dialled user part (`$rU`): the tracking number's digits |
//! | `at` | Unix seconds | when this event happened |
//! | `started_at`, `answered_at` | Unix seconds | kept in dialog variables, sent with `answer` and `end` |
//! | `sip_code` | integer | with `end`: the final reply code (200 for a dialog that was answered) |
//!
//! ## Times
//!
//! Times are Unix seconds, as a JSON number or a numeric string, whole or
//! with a fraction (`1714546800.123456`); they are kept to the millisecond.
//! The dialog module's own timestamps (`$dlg(start_ts)` and the dialog's
//! creation and end times) are whole seconds, and so are `$TS` and `$Ts`;
//! `$TV(Sn)` gives the time of day as `seconds.microseconds`, read when the
//! script runs. The shipped script stores `$TV(Sn)` in dialog variables
//! (`$dlg_var`) when the INVITE arrives and when the dialog is confirmed, and
//! sends it as `at`:
//! - ring time: `at` of `start`, or `started_at` of any later event (so a
//!   call whose `start` was lost, or that is reported only at its `end`,
//!   still rings when it rang);
//! - answer time: `at` of `answer`, or `answered_at` of `end`;
//! - end time: `at` of `end`;
//! - duration and talk time follow from them (whole seconds, rounded down).

use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use serde::Deserialize;

use super::{Inbound, PbxError, Secret, Verified};

pub fn verify(token: &Secret, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let header = inbound.header("authorization").ok_or_else(|| {
        PbxError::missing("the Authorization header is missing; send Authorization: Bearer <pbx_secrets.kamailio>")
    })?;
    let given = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, rest)| rest.trim())
        .ok_or_else(|| PbxError::invalid("the Authorization header is not a Bearer token"))?;
    if !token.matches(given.as_bytes()) {
        return Err(PbxError::invalid("the Bearer token does not match this site's pbx_secrets.kamailio"));
    }
    map(inbound)
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Event {
    Start,
    Answer,
    End,
}

#[derive(Deserialize)]
struct Payload {
    event: Event,
    call_id: String,
    to: String,
    #[serde(default)]
    from: Option<String>,
    at: serde_json::Value,
    #[serde(default)]
    started_at: Option<serde_json::Value>,
    #[serde(default)]
    answered_at: Option<serde_json::Value>,
    #[serde(default)]
    sip_code: Option<u16>,
}

/// Unix seconds (a number or a numeric string, whole or fractional) to
/// milliseconds. `Ok(None)` for 0, an empty string or null: a dialog
/// variable never set (`$dlg_var` of a dialog that was never confirmed)
/// reaches the body as one of these.
fn unix_ms(field: &str, value: &serde_json::Value) -> Result<Option<u64>, PbxError> {
    let bad = || PbxError::bad(format!("{field} {value} is not Unix seconds"));
    let secs: f64 = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        serde_json::Value::String(s) if s.trim().is_empty() => return Ok(None),
        serde_json::Value::String(s) => s.trim().parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    // Whole milliseconds: an f64 holds today's Unix time to well under a
    // microsecond, so rounding to the nearest millisecond is exact enough.
    let ms = (secs * 1000.0).round();
    if ms >= 1.0e15 {
        return Err(bad());
    }
    // Finite, non-negative and below 10^15: the cast is exact.
    let ms = ms as u64;
    Ok(Some(ms).filter(|&ms| ms > 0))
}

fn map(inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let p: Payload = serde_json::from_slice(inbound.body)
        .map_err(|e| PbxError::bad(format!("the body is not a Kamailio dialog event: {e}")))?;
    let at_ms = unix_ms("at", &p.at)?.ok_or_else(|| PbxError::bad(format!("at {} is not Unix seconds", p.at)))?;
    let started_at_ms = p.started_at.as_ref().map(|v| unix_ms("started_at", v)).transpose()?.flatten();
    let answered_at_ms = p.answered_at.as_ref().map(|v| unix_ms("answered_at", v)).transpose()?.flatten();
    let (phase, status, started, answered, ended) = match p.event {
        Event::Start => (CallPhase::Start, CallStatus::InProgress, Some(at_ms), None, None),
        Event::Answer => (CallPhase::Answer, CallStatus::InProgress, started_at_ms, Some(at_ms), None),
        Event::End => {
            let status = match (p.sip_code, answered_at_ms) {
                // A dialog that was confirmed; one that was not reports its
                // failure code instead.
                (Some(200..=299), _) | (None, Some(_)) => CallStatus::Answered,
                (Some(486 | 600), _) => CallStatus::Busy,
                (Some(487), _) => CallStatus::Canceled,
                (Some(408 | 480), _) => CallStatus::NoAnswer,
                (Some(_), _) => CallStatus::Failed,
                (None, None) => return Err(PbxError::bad("an end event needs sip_code or answered_at")),
            };
            (CallPhase::End, status, started_at_ms, answered_at_ms, Some(at_ms))
        }
    };
    Ok(Verified::event(CallEvent {
        pbx: "kamailio".to_owned(),
        pbx_call_id: super::call_id("call_id", Some(&p.call_id))?,
        phase,
        from: super::caller(p.from.as_deref(), inbound.region),
        to: super::parse_number("to", &p.to, inbound.region)?,
        started_at_ms: started,
        answered_at_ms: answered,
        ended_at_ms: ended,
        duration_secs: super::secs_between(started, ended),
        talk_secs: super::secs_between(answered, ended),
        status,
        recording_url: None,
    }))
}
