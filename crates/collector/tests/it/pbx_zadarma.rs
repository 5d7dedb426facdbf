//! The Zadarma adapter over HTTP. Zadarma's scheme signs no timestamp, so
//! there is no staleness to test; replays fold into the same call.
//!
//! The tests whose events reach the sink run on both backends
//! (`name::sqlite`, `name::postgres`): the sink stores them, and the database
//! decides what is a duplicate. The ignored-event, signature, bad-body and
//! URL-check tests stay on SQLite: their requests are refused, ignored or
//! echoed before the sink, so no backend has anything to do with them (the
//! harness checks that nothing was stored).

use crate::common::Backend;
use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};

const PATH: &str = "/v1/sites/shop/pbx/zadarma";

/// base64 of the hex HMAC-SHA1, as PHP's `base64_encode(hash_hmac('sha1', …))`.
fn zd_sig(signed: &str) -> String {
    b64(hex(&hmac_sha1(ZADARMA_SECRET.as_bytes(), signed.as_bytes())).as_bytes())
}

fn post(h: &PbxHarness, pairs: &[(&str, &str)], signature: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = signature.map(|s| ("Signature", s)).into_iter().collect();
    h.post(PATH, "application/x-www-form-urlencoded", form(pairs), &headers)
}

fn notify_start() -> Vec<(&'static str, &'static str)> {
    vec![
        ("event", "NOTIFY_START"),
        ("call_start", "2024-05-01 10:00:00"),
        ("pbx_call_id", "in_0123456789abcdef"),
        ("caller_id", "79161234567"),
        ("called_did", "74957000001"),
    ]
}

fn notify_end(disposition: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut p = notify_start();
    p[0] = ("event", "NOTIFY_END");
    p.extend([
        ("internal", "100"),
        ("duration", "95"),
        ("disposition", disposition),
        ("status_code", "16"),
        ("is_recorded", "1"),
        ("call_id_with_rec", "1714546800.1234"),
    ]);
    p
}

/// caller_id . called_did of the test call; call_start follows.
const START_SIGNED: &str = "7916123456774957000001";

crate::on_both_backends! {
    start_and_end_reach_the_sink_mapped_even_out_of_order => start_and_end_reach_the_sink_mapped_even_out_of_order_on;
    dispositions_map_to_statuses => dispositions_map_to_statuses_on;
    answer_is_signed_over_destination => answer_is_signed_over_destination_on;
    the_sample_notifications_verify_with_the_sdk_fields => the_sample_notifications_verify_with_the_sdk_fields_on;
}

fn start_and_end_reach_the_sink_mapped_even_out_of_order_on(backend: Backend) {
    let Some(h) = start_on(backend, "start_and_end_reach_the_sink_mapped_even_out_of_order", &all_adapters()) else {
        return;
    };
    let signed = format!("{START_SIGNED}2024-05-01 10:00:00");
    let end = post(&h, &notify_end("busy"), Some(&zd_sig(&signed)));
    assert_eq!(end.status, 200, "{}", end.body);
    let start_r = post(&h, &notify_start(), Some(&zd_sig(&signed)));
    assert_eq!(start_r.status, 200, "{}", start_r.body);
    let events = h.events();
    assert_eq!(events.len(), 2);
    let (e, s) = (&events[0], &events[1]);
    assert_eq!((e.pbx.as_str(), e.pbx_call_id.as_str()), ("zadarma", "in_0123456789abcdef"));
    assert_eq!((e.phase, e.status, e.duration_secs), (CallPhase::End, CallStatus::Busy, Some(95)));
    // duration counts from call_start, the one time Zadarma sends.
    assert_eq!((e.ended_at_ms, e.answered_at_ms, e.talk_secs), (Some(NOW_MS as u64 + 95_000), None, None));
    assert_eq!(s.ended_at_ms, None);
    assert_eq!((s.phase, s.status), (CallPhase::Start, CallStatus::InProgress));
    for ev in [e, s] {
        assert_eq!(ev.to.e164(), "+74957000001");
        assert_eq!(ev.from.as_deref(), Some("+79161234567"));
        // 10:00 in the account's zone (+03:00) is 07:00 UTC.
        assert_eq!(ev.started_at_ms, Some(NOW_MS as u64));
    }
}

fn dispositions_map_to_statuses_on(backend: Backend) {
    let Some(h) = start_on(backend, "dispositions_map_to_statuses", &all_adapters()) else { return };
    let sig = zd_sig(&format!("{START_SIGNED}2024-05-01 10:00:00"));
    for d in ["answered", "cancel", "no answer", "no money"] {
        assert_eq!(post(&h, &notify_end(d), Some(&sig)).status, 200);
    }
    let got: Vec<_> = h.events().iter().map(|e| e.status).collect();
    assert_eq!(got, [CallStatus::Answered, CallStatus::Canceled, CallStatus::NoAnswer, CallStatus::Failed]);
}

fn answer_is_signed_over_destination_on(backend: Backend) {
    let Some(h) = start_on(backend, "answer_is_signed_over_destination", &all_adapters()) else { return };
    let answer = [
        ("event", "NOTIFY_ANSWER"),
        ("caller_id", "79161234567"),
        ("destination", "74957000001"),
        ("call_start", "2024-05-01 10:00:00"),
        ("pbx_call_id", "in_1"),
        ("internal", "100"),
    ];
    let r = post(&h, &answer, Some(&zd_sig("79161234567749570000012024-05-01 10:00:00")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.events()[0].phase, CallPhase::Answer);
    // An extension as destination says nothing about the dialled number.
    let mut to_ext = answer;
    to_ext[2] = ("destination", "100");
    let r = post(&h, &to_ext, Some(&zd_sig("791612345671002024-05-01 10:00:00")));
    assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("ignored")), "{}", r.body);
    assert_eq!(h.events().len(), 1);
}

#[test]
fn other_events_are_ignored() {
    let h = start(&all_adapters());
    let r = post(&h, &[("event", "NOTIFY_OUT_START"), ("pbx_call_id", "out_1")], None);
    assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("ignored")));
    assert!(h.events().is_empty());
}

#[test]
fn a_wrong_or_missing_signature_is_401() {
    let h = start(&all_adapters());
    // Signed with the raw digest instead of its hex: a common mistake.
    let raw = b64(&hmac_sha1(ZADARMA_SECRET.as_bytes(), format!("{START_SIGNED}2024-05-01 10:00:00").as_bytes()));
    let r = post(&h, &notify_start(), Some(&raw));
    assert_eq!((r.status, r.code()), (401, "bad_credentials"));
    assert!(r.message().contains("Signature"));
    let mut other_did = notify_start();
    other_did[4] = ("called_did", "74957000002");
    assert_eq!(post(&h, &other_did, Some(&zd_sig(&format!("{START_SIGNED}2024-05-01 10:00:00")))).status, 401);
    let r = post(&h, &notify_start(), None);
    assert_eq!((r.status, r.code()), (401, "missing_credentials"));
    assert!(r.message().contains("Signature"));
    assert!(h.events().is_empty());
}

#[test]
fn a_bad_body_with_a_good_signature_is_400() {
    let h = start(&all_adapters());
    let mut bad_time = notify_start();
    bad_time[1] = ("call_start", "01.05.2024 10:00");
    let r = post(&h, &bad_time, Some(&zd_sig(&format!("{START_SIGNED}01.05.2024 10:00"))));
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", r.body);
    assert!(r.message().contains("call_start"));
    let mut no_id = notify_start();
    no_id.remove(2);
    let r = post(&h, &no_id, Some(&zd_sig(&format!("{START_SIGNED}2024-05-01 10:00:00"))));
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = post(&h, &[("caller_id", "1")], Some("x"));
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(r.message().contains("event"));
    assert!(h.events().is_empty());
}

#[test]
fn the_url_check_echoes_zd_echo() {
    let h = start(&all_adapters());
    let r = h.get("/v1/sites/shop/pbx/zadarma?zd_echo=abc123");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::Value::String("abc123".to_owned()));
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(h.get("/v1/sites/shop/pbx/zadarma").status, 400);
    // Off for a site without Zadarma credentials.
    let off = start("");
    let r = off.get("/v1/sites/shop/pbx/zadarma?zd_echo=abc123");
    assert_eq!((r.status, r.code()), (404, "pbx_not_configured"));
}

/// Zadarma's PHP SDK signs each event over its own fields; the sample
/// notifications of examples/webhooks verify with exactly those.
fn the_sample_notifications_verify_with_the_sdk_fields_on(backend: Backend) {
    let Some(h) = start_on(backend, "the_sample_notifications_verify_with_the_sdk_fields", &all_adapters()) else {
        return;
    };
    for file in ["zadarma/notify_start.form", "zadarma/notify_answer.form", "zadarma/notify_end.form"] {
        let body = sample(file);
        let sig = zadarma_sign_form(ZADARMA_SECRET, &form_pairs(&body));
        let r = h.post(PATH, "application/x-www-form-urlencoded", body, &[("Signature", sig.as_str())]);
        assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{file}: {}", r.body);
    }
    let got: Vec<_> = h.events().iter().map(|e| (e.phase, e.started_at_ms, e.ended_at_ms)).collect();
    let ring = Some(NOW_MS as u64 + 30_000);
    assert_eq!(
        got,
        [
            (CallPhase::Start, ring, None),
            (CallPhase::Answer, ring, None),
            (CallPhase::End, ring, Some(NOW_MS as u64 + 800_000))
        ]
    );
}
