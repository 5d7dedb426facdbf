//! The Twilio adapter over HTTP. Twilio's scheme signs no timestamp, so
//! there is no staleness to test; replays fold into the same call.
//!
//! The tests whose events reach the sink run on both backends
//! (`name::sqlite`, `name::postgres`): the sink stores them, and the database
//! decides what is a duplicate. The ignored-leg, signature, bad-body and
//! twilio-python vector tests stay on SQLite: their requests are refused or
//! ignored before the sink (each vector is checked by the 400 or 401 it
//! gets), so no backend has anything to do with them (the harness checks that
//! nothing was stored).

use crate::common::Backend;
use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};

const PATH: &str = "/v1/sites/shop/pbx/twilio";

/// Twilio's signature, computed independently of the adapter (see pbx_support).
fn twilio_sig(token: &str, url: &str, pairs: &[(&str, &str)]) -> String {
    twilio_signature(token, url, pairs)
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

crate::on_both_backends! {
    a_signed_status_callback_reaches_the_sink_mapped => a_signed_status_callback_reaches_the_sink_mapped_on;
    each_call_status_maps_to_a_phase_and_status => each_call_status_maps_to_a_phase_and_status_on;
    a_status_callback_signed_with_the_default_port_is_recorded => a_status_callback_signed_with_the_default_port_is_recorded_on;
    a_missed_call_alone_rings_callduration_before_its_end => a_missed_call_alone_rings_callduration_before_its_end_on;
}

fn a_signed_status_callback_reaches_the_sink_mapped_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_signed_status_callback_reaches_the_sink_mapped", &all_adapters()) else {
        return;
    };
    let pairs = completed();
    let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, &pairs)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"], "recorded");
    let e = &h.events()[0];
    assert_eq!((e.pbx.as_str(), e.pbx_call_id.as_str()), ("twilio", "CA42"));
    assert_eq!((e.phase, e.status), (CallPhase::End, CallStatus::Answered));
    assert_eq!(e.to.e164(), "+74957000003");
    assert_eq!(e.from.as_deref(), Some("+79161234567"));
    // The completed callback fires at hang-up (Timestamp); the call arrived
    // CallDuration seconds before.
    assert_eq!(e.ended_at_ms, Some(NOW_MS as u64));
    assert_eq!(e.started_at_ms, Some(NOW_MS as u64 - 42_000));
    assert_eq!(e.answered_at_ms, None);
    assert_eq!((e.duration_secs, e.talk_secs), (Some(42), Some(42)));
    assert_eq!(e.recording_url.as_deref(), Some("https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"));
}

fn each_call_status_maps_to_a_phase_and_status_on(backend: Backend) {
    let Some(h) = start_on(backend, "each_call_status_maps_to_a_phase_and_status", &all_adapters()) else { return };
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

/// A site whose Twilio status callback is configured as `url`, with
/// twilio-python's test token.
fn site_with_url(url: &str) -> PbxHarness {
    start(&format!(
        r#"pbx_secrets = {{ twilio = "12345" }}
pbx = {{ twilio_url = "{url}" }}"#
    ))
}

/// twilio-python's request-validator test parameters (tests/unit/test_request_validator.py).
const VALIDATOR_PARAMS: [(&str, &str); 5] = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
];
const VALIDATOR_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

/// Authenticated: the request then fails only on having no CallStatus (a
/// voice request, not a status callback), which is a 400, not a 401.
fn passes_authentication(h: &PbxHarness, pairs: &[(&str, &str)], signature: &str) -> bool {
    let r = post(h, pairs, Some(signature));
    match r.status {
        400 => {
            assert!(r.message().contains("CallStatus"), "{}", r.message());
            true
        }
        401 => false,
        other => panic!("{other}: {}", r.body),
    }
}

/// twilio-python's published vectors for the port rules, each checked here
/// against an independent computation, then posted to a site configured
/// with the URL the vector was made for.
#[test]
fn twilio_validator_vectors_with_and_without_the_default_port() {
    let http_url = VALIDATOR_URL.replace("https", "http");
    let https_1234 = VALIDATOR_URL.replace(".com", ".com:1234");
    let http_1234 = http_url.replace(".com", ".com:1234");
    // (vector, the URL it signs)
    let no_port = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    let https_443 = "kvajT1Ptam85bY51eRf/AJRuM3w=";
    let http_80 = "0ZXoZLH/DfblKGATFgpif+LLRf4=";
    let http_with_1234 = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=";
    assert_eq!(twilio_sig("12345", VALIDATOR_URL, &VALIDATOR_PARAMS), no_port);
    assert_eq!(twilio_sig("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &VALIDATOR_PARAMS), https_443);
    assert_eq!(twilio_sig("12345", "http://mycompany.com:80/myapp.php?foo=1&bar=2", &VALIDATOR_PARAMS), http_80);
    assert_eq!(twilio_sig("12345", &http_1234, &VALIDATOR_PARAMS), http_with_1234);

    // Configured without a port: signed without it, or with :443 added.
    let h = site_with_url(VALIDATOR_URL);
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, no_port));
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, https_443));
    assert!(!passes_authentication(&h, &VALIDATOR_PARAMS, http_80), "https takes :443, not :80");
    // Configured with a port: signed with it, or with every port removed.
    let h = site_with_url(&https_1234);
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, no_port));
    assert!(!passes_authentication(&h, &VALIDATOR_PARAMS, https_443));
    let h = site_with_url(&http_1234);
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, http_with_1234));
    let http_no_port = twilio_sig("12345", &http_url, &VALIDATOR_PARAMS);
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, &http_no_port));
    // Plain http: :80 is its default port, :443 is not.
    let h = site_with_url(&http_url);
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, http_80));
    assert!(passes_authentication(&h, &VALIDATOR_PARAMS, &http_no_port));
    assert!(!passes_authentication(&h, &VALIDATOR_PARAMS, https_443));
    assert!(h.events().is_empty());
}

/// twilio-python's vector for repeated parameters: names sorted, values
/// sorted under each name, a repeated name and value signed once.
#[test]
fn twilio_validator_vector_with_repeated_parameters() {
    let pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")];
    assert_eq!(twilio_sig("12345", VALIDATOR_URL, &pairs), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    let h = site_with_url(VALIDATOR_URL);
    assert!(passes_authentication(&h, &pairs, "IK+Dwps556ElfBT0I3Rgjkr1wJU="));
}

/// A status callback Twilio signed with the default port written out
/// reaches the sink like one signed without it; a wrong port does not.
fn a_status_callback_signed_with_the_default_port_is_recorded_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_status_callback_signed_with_the_default_port_is_recorded", &all_adapters())
    else {
        return;
    };
    let pairs = completed();
    let with_443 = TWILIO_URL.replace("calls.example.com", "calls.example.com:443");
    let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, &with_443, &pairs)));
    assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{}", r.body);
    for wrong in ["calls.example.com:80", "calls.example.com:8443"] {
        let url = TWILIO_URL.replace("calls.example.com", wrong);
        let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, &url, &pairs)));
        assert_eq!((r.status, r.code()), (401, "bad_credentials"), "{wrong}");
    }
    let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, &TWILIO_URL.replace("https", "http"), &pairs)));
    assert_eq!(r.status, 401, "the scheme is signed too");
    assert_eq!(h.events().len(), 1);
}

/// Twilio's terminal statuses carry CallDuration too; a missed call keeps
/// its ring time and has no talk time.
fn a_missed_call_alone_rings_callduration_before_its_end_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_missed_call_alone_rings_callduration_before_its_end", &all_adapters()) else {
        return;
    };
    let pairs = [
        ("CallSid", "CA77"),
        ("From", "+79161234567"),
        ("To", "+74957000003"),
        ("Direction", "inbound"),
        ("CallStatus", "no-answer"),
        ("CallDuration", "25"),
        ("Timestamp", "Wed, 01 May 2024 07:00:00 +0000"),
    ];
    let r = post(&h, &pairs, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, &pairs)));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &h.events()[0];
    assert_eq!((e.phase, e.status), (CallPhase::End, CallStatus::NoAnswer));
    assert_eq!((e.started_at_ms, e.ended_at_ms), (Some(NOW_MS as u64 - 25_000), Some(NOW_MS as u64)));
    assert_eq!((e.duration_secs, e.talk_secs), (Some(25), None));
    // Without CallDuration only the end is known.
    let mut no_length = pairs.to_vec();
    no_length.retain(|(k, _)| *k != "CallDuration");
    no_length[0] = ("CallSid", "CA78");
    assert_eq!(post(&h, &no_length, Some(&twilio_sig(TWILIO_TOKEN, TWILIO_URL, &no_length))).status, 200);
    let e = &h.events()[1];
    assert_eq!((e.started_at_ms, e.ended_at_ms, e.duration_secs), (None, Some(NOW_MS as u64), None));
}
