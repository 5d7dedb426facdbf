//! Twilio voice status callbacks (`application/x-www-form-urlencoded`).
//!
//! `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL + every POST
//! parameter as name followed by value, sorted by name)). The URL is the one
//! configured in Twilio (`[sites.pbx] twilio_url`), not the one the collector
//! sees: behind a TLS-terminating proxy those differ, and the signature would
//! never match. Twilio's scheme has no timestamp, so a captured callback can
//! be replayed; that is harmless here because events are idempotent per
//! `CallSid` and a replay carries the same facts.
//!
//! Mapping: `CallSid` → call id; `From`, `To`; `CallStatus` queued /
//! initiated / ringing → start, in-progress → answer, completed → end
//! answered, busy / no-answer / canceled / failed → end with that status;
//! `CallDuration` (answer to hang-up) → talk time; `Timestamp` (RFC 2822) →
//! the time of that phase; `RecordingUrl`. Legs Twilio dials out
//! (`Direction` outbound-…) are not calls to a tracking number and are
//! ignored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use sha1::Sha1;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::{Inbound, PbxError, Secret, Verified};

#[derive(Debug, Clone)]
pub struct TwilioAuth {
    pub auth_token: Secret,
    /// The callback URL exactly as configured in Twilio.
    pub url: String,
}

pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
        return Err(format!("{url:?} must be an http(s) URL without a #fragment, as entered in Twilio"));
    }
    Ok(())
}

/// Twilio's signature over `url` and the POST parameters.
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &[u8], url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Sorted by name, then value for repeated names, as Twilio's own
    // validators do.
    sorted.sort();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

pub fn verify(auth: &TwilioAuth, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let given = inbound
        .header("x-twilio-signature")
        .ok_or_else(|| PbxError::missing("the X-Twilio-Signature header is missing"))?;
    let params = super::form_pairs(inbound.body);
    let ok = BASE64
        .decode(given)
        .is_ok_and(|bytes| mac(auth.auth_token.expose(), &auth.url, &params).verify_slice(&bytes).is_ok());
    if !ok {
        return Err(PbxError::invalid(format!(
            "X-Twilio-Signature does not match this site's Twilio auth token and the configured URL {}",
            auth.url
        )));
    }
    map(&params, inbound)
}

fn map(params: &[(String, String)], inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    if let Some(direction) = get("Direction").filter(|d| d.starts_with("outbound")) {
        return Ok(Verified::ignored(format!(
            "Direction {direction}: a leg Twilio dialled, not a call to a tracking number"
        )));
    }
    let status_text = get("CallStatus").ok_or_else(|| PbxError::bad("CallStatus is missing"))?;
    let (phase, status) = match status_text {
        "queued" | "initiated" | "ringing" => (CallPhase::Start, CallStatus::InProgress),
        "in-progress" => (CallPhase::Answer, CallStatus::InProgress),
        "completed" => (CallPhase::End, CallStatus::Answered),
        "busy" => (CallPhase::End, CallStatus::Busy),
        "no-answer" => (CallPhase::End, CallStatus::NoAnswer),
        "canceled" => (CallPhase::End, CallStatus::Canceled),
        "failed" => (CallPhase::End, CallStatus::Failed),
        other => return Err(PbxError::bad(format!("CallStatus {other:?} is not a Twilio call status"))),
    };
    let at_ms = match get("Timestamp") {
        None => None,
        Some(t) => {
            let parsed = OffsetDateTime::parse(t, &Rfc2822)
                .map_err(|e| PbxError::bad(format!("Timestamp {t:?} is not an RFC 2822 date: {e}")))?;
            super::secs_to_ms(parsed.unix_timestamp())
        }
    };
    let talk_secs = match get("CallDuration") {
        None => None,
        Some(d) => {
            Some(d.parse::<u32>().map_err(|_| PbxError::bad(format!("CallDuration {d:?} is not whole seconds")))?)
        }
    };
    let to = get("To").ok_or_else(|| PbxError::bad("To is missing"))?;
    Ok(Verified::event(CallEvent {
        pbx: "twilio".to_owned(),
        pbx_call_id: super::call_id("CallSid", get("CallSid"))?,
        phase,
        from: super::caller(get("From"), inbound.region),
        to: super::parse_number("To", to, inbound.region)?,
        started_at_ms: if phase == CallPhase::Start { at_ms } else { None },
        answered_at_ms: if phase == CallPhase::Answer { at_ms } else { None },
        ended_at_ms: if phase == CallPhase::End { at_ms } else { None },
        duration_secs: None,
        talk_secs,
        status,
        recording_url: super::recording_url(get("RecordingUrl")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Twilio's published example (TwilioDevEd api-snippets,
    /// security/signature_validation): token 12345, the URL with its query,
    /// five POST parameters, in an order other than sorted.
    #[test]
    fn matches_twilios_published_example() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature(b"12345", url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(signature(b"12345", url, &reversed), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert_ne!(signature(b"12345", "https://mycompany.com/myapp.php", &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
    }
}
