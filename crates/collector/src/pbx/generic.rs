//! The generic PBX event, signed per the Standard Webhooks specification.
//!
//! Headers: `webhook-id` (unique per delivery; a retry repeats it),
//! `webhook-timestamp` (Unix seconds), `webhook-signature` (space-separated
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`; any one matching
//! is enough, so a sender can rotate keys). The secret is `whsec_<base64>` as
//! Standard Webhooks libraries print it, or any other string used as the raw
//! key bytes.
//!
//! A timestamp more than [`TOLERANCE_SECS`] from the collector's clock is
//! refused (401 `stale_timestamp`), and a `webhook-id` already stored with an
//! event within that window is answered "duplicate" and changes nothing:
//! together they make a captured request useless to replay. The id is stored
//! in the transaction that stores the event, so a retry is never told
//! "duplicate" before the first delivery's event is stored.
//!
//! Body (JSON; unknown fields are ignored):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `call_id` | string, required | the PBX's id of the call |
//! | `to` | string, required | the dialled (tracking) number |
//! | `from` | string | the caller |
//! | `phase` | `start` \| `answer` \| `end` | default: `end` if `ended_at`, else `answer` if `answered_at`, else `start` |
//! | `status` | `in-progress` \| `answered` \| `no-answer` \| `busy` \| `canceled` \| `failed` | default: `in-progress` before the end; at the end `answered` if it was answered (`answered_at` or `talk_time` > 0), else `no-answer` |
//! | `started_at`, `answered_at`, `ended_at` | RFC 3339 string | e.g. `2024-05-01T10:00:00Z` |
//! | `duration` | integer seconds | the whole call, ringing included; default: `ended_at − started_at` |
//! | `talk_time` | integer seconds | answer to hang-up; default: `ended_at − answered_at` |
//! | `recording_url` | http(s) URL | |
//!
//! Times: the ring time is `started_at`; the answer time `answered_at`; the
//! end time `ended_at`. Times may carry fractions of a second, which are kept
//! to the millisecond. A length that is not sent is derived from the times
//! of the same event, in whole seconds rounded down, and stored with it (the
//! fold also derives it across events, when the start and the end come in
//! different reports). A sender that knows only the end may send `ended_at`
//! with `duration`: the ring time is then `ended_at − duration`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use serde::Deserialize;
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Delivery, Inbound, Mapped, PbxError, Secret, Verified};

/// How far the signed timestamp may be from the collector's clock, as the
/// Standard Webhooks reference libraries default to.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// `whsec_<base64>` → the decoded key; anything else → its bytes.
pub fn decode_secret(text: &str) -> Result<Secret, String> {
    match text.strip_prefix("whsec_") {
        Some(b64) => BASE64
            .decode(b64)
            .map(Secret::new)
            .map_err(|e| format!("a whsec_ secret must be base64 after the prefix: {e}")),
        None => Ok(Secret::new(text.as_bytes())),
    }
}

/// The `v1,` signature of a delivery (what a sender puts in `webhook-signature`).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = signed_mac(key, id, &timestamp.to_string(), body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn signed_mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

pub fn verify(key: &Secret, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let missing = |h: &str| PbxError::missing(format!("the {h} header is missing (Standard Webhooks signing)"));
    let id = inbound.header("webhook-id").ok_or_else(|| missing("webhook-id"))?;
    let timestamp = inbound.header("webhook-timestamp").ok_or_else(|| missing("webhook-timestamp"))?;
    let signatures = inbound.header("webhook-signature").ok_or_else(|| missing("webhook-signature"))?;
    if id.len() > 256 {
        return Err(PbxError::invalid("webhook-id is longer than 256 bytes"));
    }

    let mac = signed_mac(key.expose(), id, timestamp, inbound.body);
    let matched = signatures.split(' ').filter_map(|s| s.split_once(',')).any(|(version, sig)| {
        // Other versions (v1a is ed25519) are not configured here; skip them.
        version == "v1" && BASE64.decode(sig).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    });
    if !matched {
        return Err(PbxError::invalid(
            "no v1 signature in the webhook-signature header matches this site's pbx_secrets.generic",
        ));
    }

    // Checked after the signature, so that only the key's holder learns the clock.
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| PbxError::invalid(format!("webhook-timestamp {timestamp:?} is not Unix seconds")))?;
    let now_secs = inbound.now_ms.div_euclid(1000);
    if (now_secs - ts).abs() > TOLERANCE_SECS {
        let when = if ts < now_secs { "old" } else { "far in the future" };
        return Err(PbxError::stale(format!(
            "webhook-timestamp {ts} is {}s from the collector's clock ({when}); at most {TOLERANCE_SECS}s is accepted",
            (now_secs - ts).abs()
        )));
    }

    let event = map(inbound)?;
    let keep_until_ms = ts.max(now_secs).saturating_add(TOLERANCE_SECS).saturating_mul(1000);
    Ok(Verified { delivery: Some(Delivery { id: id.to_owned(), keep_until_ms }), mapped: Mapped::Event(event) })
}

#[derive(Deserialize)]
struct Payload {
    call_id: String,
    to: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    phase: Option<CallPhase>,
    #[serde(default)]
    status: Option<CallStatus>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    answered_at: Option<String>,
    #[serde(default)]
    ended_at: Option<String>,
    #[serde(default)]
    duration: Option<u32>,
    #[serde(default)]
    talk_time: Option<u32>,
    #[serde(default)]
    recording_url: Option<String>,
}

fn rfc3339_ms(field: &str, value: Option<&str>) -> Result<Option<u64>, PbxError> {
    let Some(v) = value else { return Ok(None) };
    let t = OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|e| PbxError::bad(format!("{field} {v:?} is not an RFC 3339 time: {e}")))?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map(Some)
        .map_err(|_| PbxError::bad(format!("{field} {v:?} is before 1970")))
}

fn map(inbound: &Inbound<'_>) -> Result<CallEvent, PbxError> {
    let p: Payload = serde_json::from_slice(inbound.body)
        .map_err(|e| PbxError::bad(format!("the body is not a generic call event: {e}")))?;
    let started_at_ms = rfc3339_ms("started_at", p.started_at.as_deref())?;
    let answered_at_ms = rfc3339_ms("answered_at", p.answered_at.as_deref())?;
    let ended_at_ms = rfc3339_ms("ended_at", p.ended_at.as_deref())?;
    let phase = p.phase.unwrap_or(match (answered_at_ms, ended_at_ms) {
        (_, Some(_)) => CallPhase::End,
        (Some(_), None) => CallPhase::Answer,
        (None, None) => CallPhase::Start,
    });
    let status = match (p.status, phase) {
        (Some(s), _) => s,
        (None, CallPhase::End) if answered_at_ms.is_some() || p.talk_time.is_some_and(|t| t > 0) => {
            CallStatus::Answered
        }
        (None, CallPhase::End) => CallStatus::NoAnswer,
        (None, _) => CallStatus::InProgress,
    };
    if phase != CallPhase::End && status != CallStatus::InProgress {
        return Err(PbxError::bad(format!(
            "status {:?} is final, but phase is {phase:?}; send it with phase \"end\"",
            status.as_str()
        )));
    }
    Ok(CallEvent {
        pbx: "generic".to_owned(),
        pbx_call_id: super::call_id("call_id", Some(&p.call_id))?,
        phase,
        from: super::caller(p.from.as_deref(), inbound.region),
        to: super::parse_number("to", &p.to, inbound.region)?,
        started_at_ms,
        answered_at_ms,
        ended_at_ms,
        duration_secs: p.duration.or_else(|| super::secs_between(started_at_ms, ended_at_ms)),
        talk_secs: p.talk_time.or_else(|| super::secs_between(answered_at_ms, ended_at_ms)),
        status,
        recording_url: super::recording_url(p.recording_url.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_decoded_and_others_taken_as_bytes() {
        assert_eq!(decode_secret("whsec_c2VjcmV0").unwrap().expose(), b"secret");
        assert_eq!(decode_secret("plain-secret").unwrap().expose(), b"plain-secret");
        assert!(decode_secret("whsec_not base64!").is_err());
    }

    /// The example from the Standard Webhooks specification's reference
    /// tests (msg_p5jXN8AQM9LWM0D4loKWxJek, secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw).
    #[test]
    fn signs_the_specification_example() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(key.expose(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
