//! Mango Office VPBX events, posted to `…/pbx/mango/events/{event}` as form
//! fields `vpbx_api_key`, `sign` and `json`.
//!
//! `sign` is the hex SHA-256 of `vpbx_api_key + json + api_salt`; the key
//! must also be this site's. No timestamp is signed; replays fold into the
//! same call (events are keyed by `entry_id`).
//!
//! - `events/call` (one per leg and state): `Appeared` → start at
//!   `timestamp`, `Connected` → answer at `timestamp`. `Disconnected` ends a
//!   *leg* (an operator's phone stops ringing when another picks up), not
//!   the call, so it is ignored; the call's end comes from `events/summary`.
//!   The dialled number is `to.line_number` (the company line), else
//!   `to.number`. A call placed by an employee (`from.extension`) is ignored.
//! - `events/summary` (one per call, at its end): `create_time`,
//!   `forward_time`, `talk_time` (the moment of answer, 0 if none),
//!   `end_time` (Unix seconds), `entry_result` (1 = answered),
//!   `disconnect_reason`, `line_number`. Only incoming calls
//!   (`call_direction` 1) are kept.
//! - Other events (recording, dtmf, sms, …) are ignored.
//!
//! The call id is `entry_id`, which all legs and the summary share.
//!
//! ## Times
//!
//! All Mango times are Unix seconds, whole.
//! - ring time: `create_time` of the summary, the moment the call entered the
//!   VPBX; `timestamp` of the first `Appeared`, when call events come.
//!   `forward_time` (when the call was handed to an operator, after any voice
//!   menu) is later than the ring and is not used;
//! - answer time: `talk_time` of the summary (0 = never); `timestamp` of
//!   `Connected`;
//! - end time: `end_time` of the summary;
//! - duration: `end_time − create_time`; talk time: `end_time − talk_time`.
//!
//! A call Mango reports only with its summary therefore keeps all three.
//!
//! ## Status
//!
//! A summary with `entry_result` 1 is answered, whatever ended it (most
//! answered calls end with 1110, the caller hanging up, or 1120, the
//! operator). For the others, `disconnect_reason` (Mango's result codes, the
//! 11xx range for how a call ended, 2xxx for billing limits) tells how the
//! call was missed; [`missed_status`] holds the table. A code not in it
//! leaves the call no-answer.

use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use sha2::{Digest, Sha256};

use super::{Inbound, PbxError, Secret, Verified};

#[derive(Debug, Clone)]
pub struct MangoAuth {
    /// Mango's `vpbx_api_key` (not secret: it travels in every request).
    pub api_key: String,
    pub api_salt: Secret,
}

/// The `sign` Mango computes over a `json` field.
pub fn sign(api_key: &str, json: &str, api_salt: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(api_key.as_bytes());
    hash.update(json.as_bytes());
    hash.update(api_salt);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn verify(auth: &MangoAuth, event: &str, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let form = super::form_fields(inbound.body);
    let key = form.get("vpbx_api_key").ok_or_else(|| PbxError::missing("the vpbx_api_key form field is missing"))?;
    let given = form.get("sign").ok_or_else(|| PbxError::missing("the sign form field is missing"))?;
    let json = form.get("json").map_or("", String::as_str);
    // Both compared in full, so the answer's timing does not tell which one failed.
    let key_ok = super::same_text(&auth.api_key, key);
    let sign_ok = super::same_text(&sign(&auth.api_key, json, auth.api_salt.expose()), &given.to_ascii_lowercase());
    if !(key_ok && sign_ok) {
        return Err(PbxError::invalid(
            "vpbx_api_key and sign do not match this site's pbx.mango_api_key and Mango salt (pbx_secrets.mango)",
        ));
    }
    if json.is_empty() {
        return Err(PbxError::bad("the json form field is missing"));
    }
    match event {
        "call" => map_call(json, inbound),
        "summary" => map_summary(json, inbound),
        other => Ok(Verified::ignored(format!("events/{other} says nothing about a call's start, answer or end"))),
    }
}

/// Mango writes numbers as strings, some integrations as JSON numbers.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s).filter(|s| !s.is_empty())),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(de::Error::custom(format!("expected a string or a number, found {other}"))),
    }
}

/// Unix seconds, as a number or a numeric string.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match text(d)? {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| de::Error::custom(format!("{s:?} is not Unix seconds"))),
    }
}

#[derive(Deserialize, Default)]
struct Party {
    #[serde(default, deserialize_with = "text")]
    number: Option<String>,
    #[serde(default, deserialize_with = "text")]
    extension: Option<String>,
    #[serde(default, deserialize_with = "text")]
    line_number: Option<String>,
}

#[derive(Deserialize)]
struct CallState {
    #[serde(deserialize_with = "text")]
    entry_id: Option<String>,
    call_state: String,
    #[serde(default, deserialize_with = "seconds")]
    timestamp: Option<i64>,
    #[serde(default)]
    from: Party,
    #[serde(default)]
    to: Party,
}

fn map_call(json: &str, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let c: CallState =
        serde_json::from_str(json).map_err(|e| PbxError::bad(format!("json is not a Mango call event: {e}")))?;
    if let Some(ext) = &c.from.extension {
        return Ok(Verified::ignored(format!("placed by extension {ext}: not a call to a tracking number")));
    }
    let phase = match c.call_state.as_str() {
        "Appeared" => CallPhase::Start,
        "Connected" => CallPhase::Answer,
        "Disconnected" | "OnHold" => {
            return Ok(Verified::ignored(format!(
                "call_state {}: a leg's state; the call's end comes with events/summary",
                c.call_state
            )));
        }
        other => return Err(PbxError::bad(format!("call_state {other:?} is not a Mango call state"))),
    };
    let at_ms = c.timestamp.and_then(super::secs_to_ms);
    let dialled =
        c.to.line_number
            .as_deref()
            .or(c.to.number.as_deref())
            .ok_or_else(|| PbxError::bad("to.line_number is missing"))?;
    Ok(Verified::event(CallEvent {
        pbx: "mango".to_owned(),
        pbx_call_id: super::call_id("entry_id", c.entry_id.as_deref())?,
        phase,
        from: super::caller(c.from.number.as_deref(), inbound.region),
        to: super::parse_number("to.line_number", dialled, inbound.region)?,
        started_at_ms: if phase == CallPhase::Start { at_ms } else { None },
        answered_at_ms: if phase == CallPhase::Answer { at_ms } else { None },
        ended_at_ms: None,
        duration_secs: None,
        talk_secs: None,
        status: CallStatus::InProgress,
        recording_url: None,
    }))
}

#[derive(Deserialize)]
struct Summary {
    #[serde(deserialize_with = "text")]
    entry_id: Option<String>,
    #[serde(default, deserialize_with = "seconds")]
    call_direction: Option<i64>,
    #[serde(default)]
    from: Party,
    #[serde(default)]
    to: Party,
    #[serde(default, deserialize_with = "text")]
    line_number: Option<String>,
    #[serde(default, deserialize_with = "seconds")]
    create_time: Option<i64>,
    #[serde(default, deserialize_with = "seconds")]
    talk_time: Option<i64>,
    #[serde(default, deserialize_with = "seconds")]
    end_time: Option<i64>,
    #[serde(default, deserialize_with = "seconds")]
    entry_result: Option<i64>,
    #[serde(default, deserialize_with = "seconds")]
    disconnect_reason: Option<i64>,
}

/// How a call nobody answered was missed, from Mango's `disconnect_reason`
/// (the codes and their meanings are Mango's result-code table; the grouping
/// into statuses is ours):
///
/// | code | Mango's meaning | status |
/// |---|---|---|
/// | 1110 | ended by the caller | canceled |
/// | 1111 | no answer within the ringing time | no-answer |
/// | 1120 | ended by the called side | no-answer |
/// | 1121 | "busy" from the far end | busy |
/// | 1122, 1123 | rejected by the called side; "do not disturb" | busy |
/// | 1130–1134 | called number restricted, unreachable, not served, nonexistent; too many forwards | failed |
/// | 1140 | calls to the region barred by the VPBX settings | failed |
/// | 1150–1152 | caller restricted, blacklisted, not on the whitelist | failed |
/// | 1160 | a group call that nobody took | no-answer |
/// | 1161, 1162, 1164 | queueing not allowed; the queue full; every operator unavailable | busy |
/// | 1163 | waited too long in the queue | no-answer |
/// | 1170 | ended as the forwarding scheme says | no-answer |
/// | 1171 | a broken forwarding scheme | failed |
/// | 1180 | ended by a user's command | busy |
/// | 1181 | ended by a command from an outside system | failed |
/// | 1190–1192 | the number inactive, switched off, or outside its schedule | failed |
/// | 2000–2999 | billing limits (account blocked, limits reached, no funds, direction blocked) | failed |
/// | 3000–5999 | request, command and server errors | failed |
///
/// 1100 (ended normally), 1182 and 1183 (legs taken over by another
/// operator) and unknown codes say nothing about why a call was missed:
/// `None`, and the call stays no-answer.
pub fn missed_status(code: i64) -> Option<CallStatus> {
    Some(match code {
        1110 => CallStatus::Canceled,
        1111 | 1120 | 1160 | 1163 | 1170 => CallStatus::NoAnswer,
        1121..=1123 | 1161 | 1162 | 1164 | 1180 => CallStatus::Busy,
        1130..=1134 | 1140 | 1150..=1152 | 1171 | 1181 | 1190..=1192 | 2000..=5999 => CallStatus::Failed,
        _ => return None,
    })
}

fn map_summary(json: &str, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let s: Summary =
        serde_json::from_str(json).map_err(|e| PbxError::bad(format!("json is not a Mango call summary: {e}")))?;
    if let Some(d) = s.call_direction.filter(|&d| d != 1) {
        return Ok(Verified::ignored(format!("call_direction {d}: not an incoming call")));
    }
    let started_at_ms = s.create_time.and_then(super::secs_to_ms);
    let answered_at_ms = s.talk_time.and_then(super::secs_to_ms);
    let ended_at_ms = s.end_time.and_then(super::secs_to_ms);
    let answered = match s.entry_result {
        Some(result) => result == 1,
        // An older summary without entry_result: an answer time says it all.
        None => answered_at_ms.is_some(),
    };
    let status = if answered {
        CallStatus::Answered
    } else {
        s.disconnect_reason.and_then(missed_status).unwrap_or(CallStatus::NoAnswer)
    };
    let dialled = s
        .line_number
        .as_deref()
        .or(s.to.line_number.as_deref())
        .or(s.to.number.as_deref())
        .ok_or_else(|| PbxError::bad("line_number is missing"))?;
    Ok(Verified::event(CallEvent {
        pbx: "mango".to_owned(),
        pbx_call_id: super::call_id("entry_id", s.entry_id.as_deref())?,
        phase: CallPhase::End,
        from: super::caller(s.from.number.as_deref(), inbound.region),
        to: super::parse_number("line_number", dialled, inbound.region)?,
        started_at_ms,
        answered_at_ms,
        ended_at_ms,
        duration_secs: super::secs_between(started_at_ms, ended_at_ms),
        talk_secs: super::secs_between(answered_at_ms, ended_at_ms),
        status,
        recording_url: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnect_reasons_tell_missed_calls_apart() {
        assert_eq!(missed_status(1110), Some(CallStatus::Canceled));
        assert_eq!(missed_status(1111), Some(CallStatus::NoAnswer));
        assert_eq!(missed_status(1121), Some(CallStatus::Busy));
        assert_eq!(missed_status(1131), Some(CallStatus::Failed));
        assert_eq!(missed_status(2240), Some(CallStatus::Failed));
        assert_eq!(missed_status(1100), None);
        assert_eq!(missed_status(1183), None);
        assert_eq!(missed_status(9999), None);
    }

    /// Cross-checked with `printf %s "key{}salt" | sha256sum`.
    #[test]
    fn sign_is_hex_sha256_of_key_json_salt() {
        assert_eq!(sign("key", "{}", b"salt"), "6a591005f93c3d5080524c57ebe649861d4ac51865ee447be2031ae531acb3e8");
    }
}
