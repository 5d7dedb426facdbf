//! FreeSWITCH `mod_json_cdr`: one CDR per channel at hang-up, posted with
//! HTTP basic auth (`auth-scheme` basic, `cred` user:password).
//!
//! The body is the CDR JSON itself, or a form with the JSON in its `cdr`
//! field (url-encoded, or base64 with `encode` = base64); all are accepted.
//! With `encode-values` on (its default) every value under `variables` is
//! url-encoded by FreeSWITCH and is decoded here. The CDR reports the end of
//! a call, so each is an `end` event.
//!
//! Mapping: `variables.call_uuid` (else `variables.uuid`) → call id; caller
//! and dialled number from the first caller profile of `callflow`
//! (`caller_id_number`, `destination_number`), else the SIP variables;
//! `hangup_cause` → status. Outbound channels (`variables.direction`
//! outbound: the b-leg to an operator) are not calls to a tracking number and
//! are ignored; `log-b-leg` may stay off.
//!
//! ## Times
//!
//! FreeSWITCH's CDR variables give each moment of the channel twice: in whole
//! seconds (`*_epoch`) and in microseconds (`*_uepoch`), 0 for a moment that
//! never came. The microsecond ones are used, to the nearest millisecond; the
//! whole-second ones when a CDR template leaves them out.
//! - ring time: `start_uepoch` (`start_epoch`), when the inbound channel was
//!   created, i.e. the INVITE arrived;
//! - answer time: `answer_uepoch` (`answer_epoch`);
//! - end time: `end_uepoch` (`end_epoch`);
//! - duration: `duration` (start to end, whole seconds); talk time: `billsec`
//!   (answer to end). Without them they follow from the times.
//!
//! The CDR is written once, at hang-up, so every FreeSWITCH call arrives as
//! a single final event.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::percent_decode_str;
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use serde_json::Value;

use super::{Inbound, PbxError, Secret, Verified};

#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: String,
    pub password: Secret,
}

fn challenge(e: PbxError) -> PbxError {
    match e {
        PbxError::Unauthorized { failure, message, .. } => {
            PbxError::Unauthorized { failure, message, basic_challenge: true }
        }
        other => other,
    }
}

fn check_basic(auth: &BasicAuth, inbound: &Inbound<'_>) -> Result<(), PbxError> {
    let header = inbound.header("authorization").ok_or_else(|| {
        PbxError::missing("the Authorization header is missing; mod_json_cdr must send basic auth (auth-scheme basic, cred user:password)")
    })?;
    let encoded = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
        .ok_or_else(|| PbxError::invalid("the Authorization header is not HTTP basic auth"))?;
    let decoded = BASE64
        .decode(encoded)
        .map_err(|_| PbxError::invalid("the Authorization header's credentials are not base64"))?;
    let (user, password) = match decoded.iter().position(|&b| b == b':') {
        Some(i) => (&decoded[..i], &decoded[i + 1..]),
        None => (&decoded[..], &b""[..]),
    };
    // Both compared in full, so the timing does not tell which one was wrong.
    let user_ok = super::same_text(&auth.user, &String::from_utf8_lossy(user));
    let password_ok = auth.password.matches(password);
    if user_ok && password_ok {
        Ok(())
    } else {
        Err(PbxError::invalid(
            "the Authorization header's user or password does not match pbx.freeswitch_user and pbx_secrets.freeswitch",
        ))
    }
}

pub fn verify(auth: &BasicAuth, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    check_basic(auth, inbound).map_err(challenge)?;
    let cdr = cdr_json(inbound.body)?;
    map(&cdr, inbound)
}

/// The CDR as JSON, whichever way it was posted.
fn cdr_json(body: &[u8]) -> Result<Value, PbxError> {
    let trimmed = body.trim_ascii_start();
    let text: Vec<u8> = if trimmed.starts_with(b"{") {
        trimmed.to_vec()
    } else {
        let form = super::form_fields(body);
        let cdr =
            form.get("cdr").ok_or_else(|| PbxError::bad("the body is neither CDR JSON nor a form with a cdr field"))?;
        if cdr.trim_start().starts_with('{') {
            cdr.clone().into_bytes()
        } else {
            BASE64.decode(cdr.trim()).map_err(|_| PbxError::bad("the cdr field is neither JSON nor base64"))?
        }
    };
    serde_json::from_slice(&text).map_err(|e| PbxError::bad(format!("the CDR is not JSON: {e}")))
}

/// The first caller profile: the number as dialled, before any transfer.
/// `callflow` is an array in recent FreeSWITCH and an object in old ones;
/// the array lists the newest first.
fn first_profile(cdr: &Value) -> Option<&Value> {
    let flow = match &cdr["callflow"] {
        Value::Array(items) => items.last()?,
        other => other,
    };
    flow.get("caller_profile")
}

fn map(cdr: &Value, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let vars =
        cdr.get("variables").filter(|v| v.is_object()).ok_or_else(|| PbxError::bad("the CDR has no variables"))?;
    // FreeSWITCH url-encodes variable values (encode-values); '+' stays '+'.
    let var = |name: &str| -> Option<String> {
        let raw = match vars.get(name)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(percent_decode_str(&raw).decode_utf8_lossy().into_owned()).filter(|s| !s.is_empty())
    };
    let profile =
        |name: &str| first_profile(cdr).and_then(|p| p.get(name)).and_then(Value::as_str).filter(|s| !s.is_empty());
    let epoch = |name: &str| -> Result<Option<u64>, PbxError> {
        match var(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(super::secs_to_ms)
                .map_err(|_| PbxError::bad(format!("variables.{name} {v:?} is not Unix seconds"))),
        }
    };
    let secs = |name: &str| -> Result<Option<u32>, PbxError> {
        match var(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| PbxError::bad(format!("variables.{name} {v:?} is not whole seconds"))),
        }
    };

    if let Some(direction) = var("direction").filter(|d| d == "outbound") {
        return Ok(Verified::ignored(format!(
            "direction {direction}: a leg FreeSWITCH placed, not a call to a tracking number"
        )));
    }
    let pbx_call_id = super::call_id("variables.call_uuid", var("call_uuid").or_else(|| var("uuid")).as_deref())?;
    let dialled = profile("destination_number")
        .map(str::to_owned)
        .or_else(|| var("sip_req_user"))
        .or_else(|| var("sip_to_user"))
        .ok_or_else(|| {
            PbxError::bad("no destination_number in callflow.caller_profile, nor sip_req_user / sip_to_user")
        })?;
    let from = profile("caller_id_number")
        .map(str::to_owned)
        .or_else(|| var("caller_id_number"))
        .or_else(|| var("sip_from_user"));

    let micros = |name: &str| -> Result<Option<u64>, PbxError> {
        match var(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|us| u64::try_from(us).ok().filter(|&us| us > 0).map(|us| (us + 500) / 1000))
                .map_err(|_| PbxError::bad(format!("variables.{name} {v:?} is not Unix microseconds"))),
        }
    };
    // A moment in microseconds when the CDR has it, else in seconds.
    let moment = |stem: &str| -> Result<Option<u64>, PbxError> {
        match micros(&format!("{stem}_uepoch"))? {
            Some(ms) => Ok(Some(ms)),
            None => epoch(&format!("{stem}_epoch")),
        }
    };
    let started_at_ms = moment("start")?;
    let answered_at_ms = moment("answer")?;
    let ended_at_ms = moment("end")?;
    let talk_secs = secs("billsec")?.or_else(|| super::secs_between(answered_at_ms, ended_at_ms));
    let answered = answered_at_ms.is_some() || talk_secs.is_some_and(|t| t > 0);
    let cause = var("hangup_cause").unwrap_or_default();
    Ok(Verified::event(CallEvent {
        pbx: "freeswitch".to_owned(),
        pbx_call_id,
        phase: CallPhase::End,
        from: super::caller(from.as_deref(), inbound.region),
        to: super::parse_number("destination_number", &dialled, inbound.region)?,
        started_at_ms,
        answered_at_ms,
        ended_at_ms,
        duration_secs: secs("duration")?.or_else(|| super::secs_between(started_at_ms, ended_at_ms)),
        talk_secs,
        status: cause_status(&cause, answered),
        recording_url: None,
    }))
}

/// Q.850 hang-up causes as FreeSWITCH names them. An answered call is
/// answered whatever ended it (most end NORMAL_CLEARING, some with a media
/// timeout); the causes only tell the missed ones apart.
fn cause_status(cause: &str, answered: bool) -> CallStatus {
    if answered {
        return CallStatus::Answered;
    }
    match cause {
        "USER_BUSY" => CallStatus::Busy,
        "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" | "PROGRESS_TIMEOUT" => CallStatus::NoAnswer,
        // The caller hung up while it rang (also what an unanswered call
        // that the caller ended with NORMAL_CLEARING means).
        "ORIGINATOR_CANCEL" | "NORMAL_CLEARING" => CallStatus::Canceled,
        _ => CallStatus::Failed,
    }
}
