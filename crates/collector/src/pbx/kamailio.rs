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
//! | `at` | integer | Unix seconds of this event (`$TS`) |
//! | `started_at`, `answered_at` | integer | Unix seconds, kept in dialog variables, sent with `end` |
//! | `sip_code` | integer | with `end`: the final reply code (200 for a dialog that was answered) |

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
    at: i64,
    #[serde(default)]
    started_at: Option<i64>,
    #[serde(default)]
    answered_at: Option<i64>,
    #[serde(default)]
    sip_code: Option<u16>,
}

fn map(inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let p: Payload = serde_json::from_slice(inbound.body)
        .map_err(|e| PbxError::bad(format!("the body is not a Kamailio dialog event: {e}")))?;
    let at_ms = super::secs_to_ms(p.at).ok_or_else(|| PbxError::bad(format!("at {} is not Unix seconds", p.at)))?;
    let started_at_ms = p.started_at.and_then(super::secs_to_ms);
    let answered_at_ms = p.answered_at.and_then(super::secs_to_ms);
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
