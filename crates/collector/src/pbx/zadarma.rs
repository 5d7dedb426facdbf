//! Zadarma PBX notifications (`NOTIFY_*`, form posts).
//!
//! `Signature` is base64 of the *hex* HMAC-SHA1 (PHP's `hash_hmac` default
//! output) of fields concatenated per event, keyed with the API secret:
//! `caller_id . called_did . call_start` for NOTIFY_START and NOTIFY_END,
//! `caller_id . destination . call_start` for NOTIFY_ANSWER (and, for the
//! outgoing events this adapter ignores, `internal . destination .
//! call_start`), as Zadarma's API page and its PHP SDK (zadarma/user-api-v1,
//! `lib/Webhook/Notify*.php`, `getSignatureString`) give them. Like Twilio's,
//! the scheme has no timestamp or nonce; replays carry the same facts and
//! fold into the same call.
//!
//! Mapping: `pbx_call_id` → call id; `caller_id` → from; `called_did` (on
//! NOTIFY_ANSWER `destination` when `called_did` is absent) → to;
//! `disposition` → status. Other events (internal, outgoing, recording, IVR)
//! are not calls to a tracking number and are ignored without being stored.
//!
//! ## Times
//!
//! Every NOTIFY_START, NOTIFY_ANSWER and NOTIFY_END carries `call_start`
//! (`YYYY-MM-DD HH:MM:SS`, whole seconds, local time of the account: offset
//! `[sites.pbx] zadarma_utc_offset`), the moment the call reached the PBX;
//! NOTIFY_END adds `duration` in seconds. No event carries an answer or an
//! end time of its own. So:
//! - ring time: `call_start` (the same in every event of the call, so a call
//!   known only from its NOTIFY_END still rings when it rang);
//! - answer time: not sent (NOTIFY_ANSWER says that, not when); none is stored;
//! - end time: `call_start + duration`;
//! - duration: `duration`; talk time: not sent, so none is stored.
//!
//! What `duration` counts: Zadarma's API page and its SDK describe it only as
//! the call's length in seconds, in NOTIFY_END and NOTIFY_OUT_END alike, and
//! send no answer time it could count from. Where Zadarma means the answered
//! part it names it so (its statistics methods give a billed `billseconds`
//! apart from the call's length). No Zadarma document says in so many words
//! which it is, so this is a reading, chosen because it is the plain one and
//! the only one that places the end: `duration` is the whole call from
//! `call_start`, ringing included. A talk time is therefore not known for
//! Zadarma calls, and they are not counted as target calls (a target call
//! needs its talk time shown). NOTIFY_OUT_END's `duration` is the same field
//! of an outgoing call, which this adapter ignores.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use sha1::Sha1;
use time::macros::format_description;
use time::{PrimitiveDateTime, UtcOffset};

use super::{Inbound, PbxError, Secret, Verified};

#[derive(Debug, Clone)]
pub struct ZadarmaAuth {
    pub secret: Secret,
    /// Zadarma writes `call_start` in the account's time zone.
    pub utc_offset: UtcOffset,
}

/// `+03:00`, `-05:30`, `+00:00`.
pub fn parse_offset(text: &str) -> Result<UtcOffset, String> {
    UtcOffset::parse(text, format_description!("[offset_hour sign:mandatory]:[offset_minute]"))
        .map_err(|e| format!("{text:?} is not a UTC offset like +03:00: {e}"))
}

/// The `Signature` Zadarma sends for `signed` (the per-event concatenation).
pub fn signature(secret: &[u8], signed: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signed.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    BASE64.encode(hex)
}

pub fn verify(auth: &ZadarmaAuth, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let form = super::form_fields(inbound.body);
    let get = |name: &str| form.get(name).map(String::as_str);
    let event = get("event").ok_or_else(|| PbxError::bad("event is missing"))?;
    let to_field = match event {
        "NOTIFY_START" | "NOTIFY_END" => "called_did",
        "NOTIFY_ANSWER" => "destination",
        other => {
            return Ok(Verified::ignored(format!("event {other}: not the start, answer or end of an incoming call")));
        }
    };

    let given = inbound.header("signature").ok_or_else(|| PbxError::missing("the Signature header is missing"))?;
    let signed =
        format!("{}{}{}", get("caller_id").unwrap_or(""), get(to_field).unwrap_or(""), get("call_start").unwrap_or(""));
    if !super::same_text(&signature(auth.secret.expose(), &signed), given) {
        return Err(PbxError::invalid(format!(
            "Signature does not match this site's Zadarma secret over caller_id, {to_field} and call_start"
        )));
    }

    let pbx_call_id = super::call_id("pbx_call_id", get("pbx_call_id"))?;
    let started_at_ms = match get("call_start").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(local_ms(s, auth.utc_offset)?),
    };
    let dialled = get("called_did").filter(|s| !s.trim().is_empty()).or_else(|| get(to_field));
    let dialled = dialled.ok_or_else(|| PbxError::bad(format!("{to_field} is missing")))?;
    let to = match super::parse_number(to_field, dialled, inbound.region) {
        Ok(n) => n,
        // NOTIFY_ANSWER's destination is often the extension that picked up;
        // the call's number came with NOTIFY_START and its end comes with
        // NOTIFY_END, so nothing is lost by passing over this one.
        Err(_) if event == "NOTIFY_ANSWER" => {
            return Ok(Verified::ignored(format!(
                "NOTIFY_ANSWER names destination {dialled:?}, an extension rather than the dialled number"
            )));
        }
        Err(e) => return Err(e),
    };

    let (phase, status, duration_secs) = match event {
        "NOTIFY_START" => (CallPhase::Start, CallStatus::InProgress, None),
        "NOTIFY_ANSWER" => (CallPhase::Answer, CallStatus::InProgress, None),
        _ => {
            let duration = match get("duration").filter(|d| !d.is_empty()) {
                None => None,
                Some(d) => {
                    Some(d.parse::<u32>().map_err(|_| PbxError::bad(format!("duration {d:?} is not whole seconds")))?)
                }
            };
            let disposition = get("disposition").ok_or_else(|| PbxError::bad("disposition is missing"))?;
            (CallPhase::End, disposition_status(disposition), duration)
        }
    };
    // `duration` counts from `call_start` (see the module docs).
    let ended_at_ms = started_at_ms.zip(duration_secs).map(|(start, secs)| start + u64::from(secs) * 1000);
    Ok(Verified::event(CallEvent {
        pbx: "zadarma".to_owned(),
        pbx_call_id,
        phase,
        from: super::caller(get("caller_id"), inbound.region),
        to,
        started_at_ms,
        answered_at_ms: None,
        ended_at_ms,
        duration_secs,
        talk_secs: None,
        status,
        recording_url: None,
    }))
}

/// Zadarma's dispositions: answered, busy, cancel, no answer, and failures
/// of many kinds (failed, no money, unallocated number, line limit, …).
fn disposition_status(disposition: &str) -> CallStatus {
    match disposition {
        "answered" => CallStatus::Answered,
        "busy" => CallStatus::Busy,
        "cancel" => CallStatus::Canceled,
        "no answer" => CallStatus::NoAnswer,
        _ => CallStatus::Failed,
    }
}

fn local_ms(text: &str, offset: UtcOffset) -> Result<u64, PbxError> {
    let local = PrimitiveDateTime::parse(text, format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"))
        .map_err(|e| PbxError::bad(format!("call_start {text:?} is not YYYY-MM-DD HH:MM:SS: {e}")))?;
    super::secs_to_ms(local.assume_offset(offset).unix_timestamp())
        .ok_or_else(|| PbxError::bad(format!("call_start {text:?} is before 1970")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-checked with PHP's formula in Python:
    /// base64(hmac.new(b"secret", b"79161234567" b"74951234567" b"2024-05-01 10:00:00", sha1).hexdigest()).
    #[test]
    fn signs_the_hex_digest_in_base64() {
        assert_eq!(
            signature(b"secret", "79161234567749512345672024-05-01 10:00:00"),
            "ZmI3MjA0NTIyZjA5YTk5ZDI1ZjQxMTZmMGVhN2Y5ZjEzOTFlYzU1ZA=="
        );
    }

    #[test]
    fn call_start_is_local_time_of_the_account() {
        let moscow = parse_offset("+03:00").unwrap();
        assert_eq!(local_ms("2024-05-01 10:00:00", moscow).unwrap(), 1_714_546_800_000);
        assert_eq!(local_ms("2024-05-01 07:00:00", UtcOffset::UTC).unwrap(), 1_714_546_800_000);
        assert!(parse_offset("3 hours").is_err());
    }
}
