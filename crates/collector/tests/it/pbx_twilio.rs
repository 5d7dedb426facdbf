//! The Twilio adapter over HTTP. Twilio's scheme signs no timestamp, so
//! there is no staleness to test; replays fold into the same call.

use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};

const PATH: &str = "/v1/sites/shop/pbx/twilio";

/// Twilio's signature, computed here independently of the adapter.
fn twilio_sig(token: &str, url: &str, pairs: &[(&str, &str)]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    b64(&hmac_sha1(token.as_bytes(), data.as_bytes()))
}

fn completed() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AccountSid", "AC0000000000000000000000000000000a"),
        ("CallSid", "CA42"),
        ("From", "+79161234567"),
        ("To", "+74957000003"),
        ("Direction", "inbound"),
        ("CallStatus", "completed"),
        ("CallDuration", "42"),
        ("Timestamp", "Wed, 01 May 2024 07:00:00 +0000"),
        ("RecordingUrl", "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"),
        ("ApiVersion", "2010-04-01"),
    ]
}

fn post(h: &PbxHarness, pairs: &[(&str, &str)], signature: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = signature.map(|s| ("X-Twilio-Signature", s)).into_iter().collect();
    h.post(PATH, "application/x-www-form-urlencoded", form(pairs), &headers)
}

#[test]
fn a_signed_status_callback_reaches_the_sink_mapped() {
    let h = start(&all_adapters());
    let pairs = completed();
    let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, &pairs)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"], "recorded");
    let e = &h.events()[0];
    assert_eq!((e.pbx.as_str(), e.pbx_call_id.as_str()), ("twilio", "CA42"));
    assert_eq!((e.phase, e.status), (CallPhase::End, CallStatus::Answered));
    assert_eq!(e.to.e164(), "+74957000003");
    assert_eq!(e.from.as_deref(), Some("+79161234567"));
    assert_eq!(e.ended_at_ms, Some(NOW_MS as u64));
    assert_eq!(e.talk_secs, Some(42));
    assert_eq!(e.recording_url.as_deref(), Some("https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"));
}

#[test]
fn each_call_status_maps_to_a_phase_and_status() {
    let h = start(&all_adapters());
    let cases = [
        ("ringing", CallPhase::Start, CallStatus::InProgress),
        ("in-progress", CallPhase::Answer, CallStatus::InProgress),
        ("busy", CallPhase::End, CallStatus::Busy),
        ("no-answer", CallPhase::End, CallStatus::NoAnswer),
        ("canceled", CallPhase::End, CallStatus::Canceled),
        ("failed", CallPhase::End, CallStatus::Failed),
    ];
    for (status, _, _) in cases {
        let pairs = [("CallSid", "CA7"), ("From", "+79161234567"), ("To", "+74957000001"), ("CallStatus", status)];
        let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, &pairs)));
        assert_eq!(r.status, 200, "{status}: {}", r.body);
    }
    let got: Vec<_> = h.events().iter().map(|e| (e.phase, e.status)).collect();
    let want: Vec<_> = cases.iter().map(|(_, p, s)| (*p, *s)).collect();
    assert_eq!(got, want);
}

#[test]
fn legs_twilio_dials_out_are_ignored() {
    let h = start(&all_adapters());
    let pairs = [
        ("CallSid", "CA8"),
        ("From", "+74957000001"),
        ("To", "+79260000000"),
        ("CallStatus", "completed"),
        ("Direction", "outbound-dial"),
    ];
    let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, &pairs)));
    assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("ignored")), "{}", r.body);
    assert!(h.events().is_empty());
}

#[test]
fn a_wrong_or_missing_signature_is_401() {
    let h = start(&all_adapters());
    let pairs = completed();
    let wrong_token = post(&h, &pairs, Some(&twilio_sig("another-token", TWILIO_URL, &pairs)));
    assert_eq!((wrong_token.status, wrong_token.code()), (401, "bad_credentials"));
    assert!(wrong_token.message().contains("X-Twilio-Signature"), "{}", wrong_token.message());
    // The URL the collector sees (plain http on a random port) is not what Twilio signs.
    let seen_url = twilio_sig(TWILIO_TOKEN, &h.url(PATH), &pairs);
    assert_eq!(post(&h, &pairs, Some(&seen_url)).status, 401);
    // A tampered parameter breaks it.
    let good = twilio_sig(TWILIO_TOKEN, TWILIO_URL, &pairs);
    let mut tampered = pairs.clone();
    tampered[3] = ("To", "+74957000002");
    assert_eq!(post(&h, &tampered, Some(&good)).status, 401);
    let missing = post(&h, &pairs, None);
    assert_eq!((missing.status, missing.code()), (401, "missing_credentials"));
    assert!(missing.message().contains("X-Twilio-Signature"));
    assert!(h.events().is_empty());
}

#[test]
fn a_bad_body_with_a_good_signature_is_400() {
    let h = start(&all_adapters());
    let cases: [&[(&str, &str)]; 4] = [
        &[("CallSid", "CA9"), ("To", "+74957000001")],
        &[("CallSid", "CA9"), ("To", "+74957000001"), ("CallStatus", "exploded")],
        &[("CallSid", "CA9"), ("To", "sip:100@pbx"), ("CallStatus", "ringing")],
        &[("CallSid", "CA9"), ("To", "+74957000001"), ("CallStatus", "ringing"), ("Timestamp", "yesterday")],
    ];
    for pairs in cases {
        let r = post(&h, pairs, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, pairs)));
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{pairs:?}: {}", r.body);
    }
    assert!(h.events().is_empty());
}

/// Twilio's published validation example (token 12345, the URL with a query
/// string, five parameters → GvWf1cFY/Q7PnoempGyD5oXAezc=), end to end: the
/// signature is accepted, and the request then fails only on having no
/// CallStatus (it is a voice request, not a status callback).
#[test]
fn twilios_published_example_passes_authentication() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let h = start(&format!(
        r#"pbx_secrets = {{ twilio = "12345" }}
pbx = {{ twilio_url = "{url}" }}"#
    ));
    let pairs = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675310"),
        ("Digits", "1234"),
        ("From", "+14158675310"),
        ("To", "+18005551212"),
    ];
    assert_eq!(twilio_sig("12345", url, &pairs), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
    let r = post(&h, &pairs, Some("GvWf1cFY/Q7PnoempGyD5oXAezc="));
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", r.body);
    assert!(r.message().contains("CallStatus"), "{}", r.message());
    let mut changed = pairs;
    changed[2] = ("Digits", "1235");
    assert_eq!(post(&h, &changed, Some("GvWf1cFY/Q7PnoempGyD5oXAezc=")).status, 401);
}
