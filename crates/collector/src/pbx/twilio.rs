//! Twilio voice status callbacks (`application/x-www-form-urlencoded`).
//!
//! ## Signature
//!
//! `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL + every POST
//! parameter as name followed by value, sorted by name)). The URL is the one
//! configured in Twilio (`[sites.pbx] twilio_url`), not the one the collector
//! sees: behind a TLS-terminating proxy those differ, and the signature would
//! never match.
//!
//! Twilio does not always sign the URL in the same form: sometimes with the
//! scheme's default port written out, sometimes without it. Its own
//! validators (twilio-python's `RequestValidator.validate`, twilio-node's
//! `validateRequest`) therefore accept a signature over either of two URLs:
//! the URL with its port removed, and the URL with the scheme's default port
//! added when it names none (`:443` for https, `:80` for anything else). This
//! adapter accepts exactly those two (the configured URL is always one of
//! them). Both libraries sort the parameter names and, under a repeated name,
//! the distinct values, so a name and value sent twice are signed once; so
//! are they here. twilio-node also retries with the query string re-encoded
//! by Node's legacy `querystring` module; that variant is not accepted here
//! (twilio-python has no such retry).
//!
//! Twilio's scheme has no timestamp, so a captured callback can be replayed;
//! that is harmless here because events are idempotent per `CallSid` and a
//! replay carries the same facts.
//!
//! ## Mapping
//!
//! `CallSid` → call id; `From`, `To`; `CallStatus` queued / initiated /
//! ringing → start, in-progress → answer, completed → end answered, busy /
//! no-answer / canceled / failed → end with that status; `RecordingUrl`.
//! Legs Twilio dials out (`Direction` outbound-…) are not calls to a tracking
//! number and are ignored.
//!
//! ## Times
//!
//! What Twilio documents for status callbacks (the Call resource's
//! StatusCallbackEvent section, and the TwiML request parameters):
//! - `Timestamp` is when the event fired, UTC, RFC 2822, whole seconds;
//! - `CallDuration` is the length in seconds of the call that just ended,
//!   sent with the terminal events (completed, busy, failed, no-answer,
//!   canceled);
//! - `Duration` is the same length in whole minutes, rounded up for billing;
//! - `SequenceNumber` orders the callbacks of one call (they may arrive out of
//!   order); `CallbackSource` is always `call-progress-events`.
//!
//! The status callback configured on a Twilio phone number is called once,
//! after the call has ended (TwiML docs: "Ending the call: callback
//! requests"); progress events (initiated, ringing, answered) are sent only
//! where they are asked for with `StatusCallbackEvent`, on calls created
//! through the API or legs dialled with `<Number>`. So an incoming call
//! usually arrives as one terminal callback, most often `completed`. Hence:
//! - ring time: `Timestamp` of a queued / initiated / ringing callback when
//!   one comes; from a terminal callback alone, `Timestamp − CallDuration`.
//!   Twilio takes an incoming call as soon as it arrives (it requests and
//!   runs the number's TwiML right away) and counts the call's length from
//!   then, so this is the arrival, within a second (both fields are whole
//!   seconds). Without `CallDuration` the end is the only time known, and the
//!   ring time falls back to it;
//! - answer time: `Timestamp` of an in-progress callback, when one comes;
//! - end time: `Timestamp` of the terminal callback;
//! - duration: `CallDuration`; talk time: `CallDuration` of a completed call
//!   (Twilio reports the call in progress for its whole length; the
//!   conversation with an operator behind a `<Dial>` is the dialled leg's,
//!   which is ignored).
//!
//! `Duration` is not used: rounded up to whole minutes, it would move the
//! ring time by up to a minute. `SequenceNumber` is not needed: the fold
//! does not depend on the order of reports.

use std::collections::BTreeSet;
use std::ops::Range;

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
    // Sorted by name, then value; a repeated name and value counts once, as
    // Twilio's own validators build the signed text.
    let signed: BTreeSet<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (k, v) in signed {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The byte range of the authority's `:port`, if it names one, and where the
/// authority ends. `None` when `url` has no `scheme://`.
fn port_span(url: &str) -> Option<(Option<Range<usize>>, usize)> {
    let host_start = url.find("://")? + 3;
    let end = url[host_start..].find(['/', '?', '#']).map_or(url.len(), |i| host_start + i);
    let host_start = url[host_start..end].rfind('@').map_or(host_start, |i| host_start + i + 1);
    // An IPv6 literal has colons inside its brackets; a port follows the closing one.
    let after_brackets = url[host_start..end].rfind(']').map_or(host_start, |i| host_start + i + 1);
    let port = url[after_brackets..end].rfind(':').map(|i| after_brackets + i..end);
    Some((port, end))
}

/// The URLs Twilio may have signed for the configured `url`: without its
/// port, and with the scheme's default port when it names none (see the
/// module docs). The configured URL is always one of them.
pub fn signed_urls(url: &str) -> Vec<String> {
    let Some((port, authority_end)) = port_span(url) else { return vec![url.to_owned()] };
    let (without, with) = match port {
        Some(span) => (format!("{}{}", &url[..span.start], &url[span.end..]), url.to_owned()),
        None => {
            let https = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
            let default = if https { ":443" } else { ":80" };
            (url.to_owned(), format!("{}{default}{}", &url[..authority_end], &url[authority_end..]))
        }
    };
    vec![without, with]
}

pub fn verify(auth: &TwilioAuth, inbound: &Inbound<'_>) -> Result<Verified, PbxError> {
    let given = inbound
        .header("x-twilio-signature")
        .ok_or_else(|| PbxError::missing("the X-Twilio-Signature header is missing"))?;
    let params = super::form_pairs(inbound.body);
    let ok = BASE64.decode(given).is_ok_and(|bytes| {
        signed_urls(&auth.url)
            .iter()
            .any(|url| mac(auth.auth_token.expose(), url, &params).verify_slice(&bytes).is_ok())
    });
    if !ok {
        return Err(PbxError::invalid(format!(
            "X-Twilio-Signature does not match this site's Twilio auth token and the configured URL {} (with or without its default port)",
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
    let call_secs = match get("CallDuration") {
        None => None,
        Some(d) => {
            Some(d.parse::<u32>().map_err(|_| PbxError::bad(format!("CallDuration {d:?} is not whole seconds")))?)
        }
    };
    // A terminal callback fires at hang-up; the call's length counts from
    // when Twilio took it, which is when it arrived (see the module docs).
    let (started_at_ms, answered_at_ms, ended_at_ms) = match phase {
        CallPhase::Start => (at_ms, None, None),
        CallPhase::Answer => (None, at_ms, None),
        CallPhase::End => {
            let arrived = at_ms.zip(call_secs).and_then(|(end, secs)| end.checked_sub(u64::from(secs) * 1000));
            (arrived, None, at_ms)
        }
    };
    let to = get("To").ok_or_else(|| PbxError::bad("To is missing"))?;
    Ok(Verified::event(CallEvent {
        pbx: "twilio".to_owned(),
        pbx_call_id: super::call_id("CallSid", get("CallSid"))?,
        phase,
        from: super::caller(get("From"), inbound.region),
        to: super::parse_number("To", to, inbound.region)?,
        started_at_ms,
        answered_at_ms,
        ended_at_ms,
        duration_secs: if phase == CallPhase::End { call_secs } else { None },
        talk_secs: if status == CallStatus::Answered { call_secs } else { None },
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

    #[test]
    fn signed_urls_drop_or_add_the_default_port_as_twilios_validators_do() {
        assert_eq!(
            signed_urls("https://calls.example.com/hook?site=a"),
            ["https://calls.example.com/hook?site=a", "https://calls.example.com:443/hook?site=a"]
        );
        assert_eq!(
            signed_urls("http://calls.example.com"),
            ["http://calls.example.com", "http://calls.example.com:80"]
        );
        assert_eq!(
            signed_urls("https://calls.example.com:443/hook"),
            ["https://calls.example.com/hook", "https://calls.example.com:443/hook"]
        );
        // A port that is not the default is dropped too (both libraries remove any port).
        assert_eq!(
            signed_urls("https://calls.example.com:8443/h"),
            ["https://calls.example.com/h", "https://calls.example.com:8443/h"]
        );
        assert_eq!(
            signed_urls("https://u:p@[2001:db8::1]/h"),
            ["https://u:p@[2001:db8::1]/h", "https://u:p@[2001:db8::1]:443/h"]
        );
        assert_eq!(
            signed_urls("https://[2001:db8::1]:8443/h#f"),
            ["https://[2001:db8::1]/h#f", "https://[2001:db8::1]:8443/h#f"]
        );
    }

    #[test]
    fn a_repeated_name_and_value_is_signed_once() {
        let once = pairs(&[("a", "1"), ("b", "2")]);
        let twice = pairs(&[("b", "2"), ("a", "1"), ("b", "2")]);
        assert_eq!(signature(b"t", "https://x", &once), signature(b"t", "https://x", &twice));
        let other_value = pairs(&[("a", "1"), ("b", "2"), ("b", "3")]);
        assert_ne!(signature(b"t", "https://x", &once), signature(b"t", "https://x", &other_value));
    }
}
