//! The generic adapter over HTTP: Standard Webhooks signatures, timestamp
//! tolerance, webhook-id replay, field mapping.
//!
//! The tests whose events reach the sink run on both backends
//! (`name::sqlite`, `name::postgres`): the sink stores them, and the database
//! decides what is a duplicate. The signature, missing-header and bad-body
//! tests stay on SQLite: their requests are refused before the sink, so no
//! backend has anything to do with them (the harness checks that nothing was
//! stored).

use crate::common::Backend;
use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};
use serde_json::json;

const PATH: &str = "/v1/sites/shop/pbx/generic";

fn signed_headers(id: &str, ts: i64, body: &str, key: &[u8]) -> Vec<(String, String)> {
    let sig = b64(&hmac_sha256(key, format!("{id}.{ts}.{body}").as_bytes()));
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), ts.to_string()),
        ("webhook-signature".to_owned(), format!("v1,{sig}")),
    ]
}

fn post(h: &PbxHarness, body: &str, headers: &[(String, String)]) -> Reply {
    let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.post(PATH, "application/json", body.to_owned(), &hs)
}

fn end_event() -> String {
    json!({
        "call_id": "call-1",
        "from": "8 (916) 123-45-67",
        "to": "84957000001",
        "started_at": "2024-05-01T06:59:00Z",
        "answered_at": "2024-05-01T06:59:10+00:00",
        "ended_at": "2024-05-01T10:00:00+03:00",
        "duration": 60,
        "talk_time": 50,
        "status": "answered",
        "recording_url": "https://pbx.example/rec/call-1.mp3",
        "phase": "end"
    })
    .to_string()
}

crate::on_both_backends! {
    a_signed_event_reaches_the_sink_mapped => a_signed_event_reaches_the_sink_mapped_on;
    phase_and_status_default_from_the_times => phase_and_status_default_from_the_times_on;
    an_end_before_its_start_is_still_mapped => an_end_before_its_start_is_still_mapped_on;
    any_one_of_several_signatures_may_match => any_one_of_several_signatures_may_match_on;
    a_replayed_webhook_id_is_a_duplicate_and_not_recorded_twice => a_replayed_webhook_id_is_a_duplicate_and_not_recorded_twice_on;
    a_timestamp_outside_five_minutes_is_401 => a_timestamp_outside_five_minutes_is_401_on;
    duration_and_talk_time_follow_from_the_times => duration_and_talk_time_follow_from_the_times_on;
}

fn a_signed_event_reaches_the_sink_mapped_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_signed_event_reaches_the_sink_mapped", &all_adapters()) else { return };
    let body = end_event();
    let r = post(&h, &body, &signed_headers("msg_1", NOW_SECS, &body, GENERIC_KEY));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"], "recorded");
    assert_eq!(r.body["pbx_call_id"], "call-1");
    let events = h.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.pbx, "generic");
    assert_eq!(e.pbx_call_id, "call-1");
    assert_eq!(e.phase, CallPhase::End);
    assert_eq!(e.status, CallStatus::Answered);
    // National numbers are read in the site's region (RU).
    assert_eq!(e.to.e164(), "+74957000001");
    assert_eq!(e.from.as_deref(), Some("+79161234567"));
    assert_eq!(e.started_at_ms, Some(1_714_546_740_000));
    assert_eq!(e.answered_at_ms, Some(1_714_546_750_000));
    assert_eq!(e.ended_at_ms, Some(NOW_MS as u64));
    assert_eq!((e.duration_secs, e.talk_secs), (Some(60), Some(50)));
    assert_eq!(e.recording_url.as_deref(), Some("https://pbx.example/rec/call-1.mp3"));
}

fn phase_and_status_default_from_the_times_on(backend: Backend) {
    let Some(h) = start_on(backend, "phase_and_status_default_from_the_times", &all_adapters()) else { return };
    let start_body =
        json!({ "call_id": "c2", "to": "+7 495 700-00-02", "started_at": "2024-05-01T07:00:00Z" }).to_string();
    let r = post(&h, &start_body, &signed_headers("msg_a", NOW_SECS, &start_body, GENERIC_KEY));
    assert_eq!(r.status, 200, "{}", r.body);
    let missed = json!({ "call_id": "c2", "to": "74957000002", "ended_at": "2024-05-01T07:00:30Z" }).to_string();
    let r = post(&h, &missed, &signed_headers("msg_b", NOW_SECS, &missed, GENERIC_KEY));
    assert_eq!(r.status, 200, "{}", r.body);
    let events = h.events();
    assert_eq!((events[0].phase, events[0].status), (CallPhase::Start, CallStatus::InProgress));
    assert_eq!((events[1].phase, events[1].status), (CallPhase::End, CallStatus::NoAnswer));
    assert_eq!(events[1].to.e164(), "+74957000002");
}

fn an_end_before_its_start_is_still_mapped_on(backend: Backend) {
    let Some(h) = start_on(backend, "an_end_before_its_start_is_still_mapped", &all_adapters()) else { return };
    let end = end_event();
    let start_body =
        json!({ "call_id": "call-1", "to": "84957000001", "phase": "start", "started_at": "2024-05-01T06:59:00Z" })
            .to_string();
    assert_eq!(post(&h, &end, &signed_headers("m1", NOW_SECS, &end, GENERIC_KEY)).status, 200);
    assert_eq!(post(&h, &start_body, &signed_headers("m2", NOW_SECS, &start_body, GENERIC_KEY)).status, 200);
    let phases: Vec<_> = h.events().iter().map(|e| (e.pbx_call_id.clone(), e.phase)).collect();
    assert_eq!(phases, [("call-1".to_owned(), CallPhase::End), ("call-1".to_owned(), CallPhase::Start)]);
}

fn any_one_of_several_signatures_may_match_on(backend: Backend) {
    let Some(h) = start_on(backend, "any_one_of_several_signatures_may_match", &all_adapters()) else { return };
    let body = end_event();
    let mut headers = signed_headers("msg_rot", NOW_SECS, &body, GENERIC_KEY);
    let other = b64(&hmac_sha256(b"the-previous-key", format!("msg_rot.{NOW_SECS}.{body}").as_bytes()));
    headers[2].1 = format!("v1,{other} {}", headers[2].1);
    assert_eq!(post(&h, &body, &headers).status, 200);
}

#[test]
fn a_wrong_signature_is_401() {
    let h = start(&all_adapters());
    let body = end_event();
    let r = post(&h, &body, &signed_headers("msg_1", NOW_SECS, &body, b"not-the-key"));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.code(), "bad_credentials");
    assert!(r.message().contains("webhook-signature"), "{}", r.message());
    // A signature over another body does not carry over.
    let mut headers = signed_headers("msg_1", NOW_SECS, &body, GENERIC_KEY);
    headers[0].1 = "msg_2".to_owned();
    assert_eq!(post(&h, &body, &headers).status, 401);
    assert!(h.events().is_empty());
}

#[test]
fn a_missing_header_is_401_naming_it() {
    let h = start(&all_adapters());
    let body = end_event();
    let full = signed_headers("msg_1", NOW_SECS, &body, GENERIC_KEY);
    for (i, name) in ["webhook-id", "webhook-timestamp", "webhook-signature"].into_iter().enumerate() {
        let mut headers = full.clone();
        headers.remove(i);
        let r = post(&h, &body, &headers);
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert_eq!(r.code(), "missing_credentials");
        assert!(r.message().contains(name), "{}", r.message());
    }
    assert!(h.events().is_empty());
}

fn a_replayed_webhook_id_is_a_duplicate_and_not_recorded_twice_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_replayed_webhook_id_is_a_duplicate_and_not_recorded_twice", &all_adapters())
    else {
        return;
    };
    let body = end_event();
    let headers = signed_headers("msg_replay", NOW_SECS, &body, GENERIC_KEY);
    assert_eq!(post(&h, &body, &headers).body["outcome"], "recorded");
    h.clock.advance_secs(60);
    let again = post(&h, &body, &headers);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["outcome"], "duplicate");
    assert_eq!(h.events().len(), 1);
}

fn a_timestamp_outside_five_minutes_is_401_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_timestamp_outside_five_minutes_is_401", &all_adapters()) else { return };
    let body = end_event();
    for (ts, id) in [(NOW_SECS - 301, "old"), (NOW_SECS + 301, "future")] {
        let r = post(&h, &body, &signed_headers(id, ts, &body, GENERIC_KEY));
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.code(), "stale_timestamp");
    }
    assert!(h.events().is_empty());
    // Inside the window, both ways.
    for (ts, id) in [(NOW_SECS - 299, "late"), (NOW_SECS + 299, "early")] {
        assert_eq!(post(&h, &body, &signed_headers(id, ts, &body, GENERIC_KEY)).status, 200);
    }
    // A replay once the window has passed is refused as stale, not recorded.
    h.clock.advance_secs(600);
    let r = post(&h, &body, &signed_headers("late", NOW_SECS - 299, &body, GENERIC_KEY));
    assert_eq!(r.code(), "stale_timestamp");
}

#[test]
fn a_bad_body_with_a_good_signature_is_400() {
    let h = start(&all_adapters());
    let cases = [
        ("not json".to_owned(), "not a generic call event"),
        (json!({ "call_id": "x" }).to_string(), "to"),
        (json!({ "call_id": "x", "to": "12" }).to_string(), "to"),
        (json!({ "call_id": "x", "to": "+74957000001", "started_at": "yesterday" }).to_string(), "started_at"),
        (json!({ "call_id": "x", "to": "+74957000001", "phase": "start", "status": "busy" }).to_string(), "final"),
        (json!({ "call_id": "", "to": "+74957000001" }).to_string(), "call_id"),
    ];
    for (i, (body, needle)) in cases.iter().enumerate() {
        let r = post(&h, body, &signed_headers(&format!("bad{i}"), NOW_SECS, body, GENERIC_KEY));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.code(), "bad_request");
        assert!(r.message().contains(needle), "{body}: {}", r.message());
    }
    assert!(h.events().is_empty());
}

/// Lengths not sent follow from the event's own times and are stored with it.
fn duration_and_talk_time_follow_from_the_times_on(backend: Backend) {
    let Some(h) = start_on(backend, "duration_and_talk_time_follow_from_the_times", &all_adapters()) else { return };
    let body = json!({ "call_id": "d1", "to": "+74957000001", "started_at": "2024-05-01T06:58:00.900Z",
        "answered_at": "2024-05-01T06:58:10.100Z", "ended_at": "2024-05-01T07:00:00Z" })
    .to_string();
    assert_eq!(post(&h, &body, &signed_headers("d1", NOW_SECS, &body, GENERIC_KEY)).status, 200);
    let e = &h.events()[0];
    assert_eq!((e.phase, e.status), (CallPhase::End, CallStatus::Answered));
    assert_eq!((e.duration_secs, e.talk_secs), (Some(119), Some(109)));
    // A missed call: a duration, no talk time.
    let missed = json!({ "call_id": "d2", "to": "+74957000001", "started_at": "2024-05-01T06:59:00Z",
        "ended_at": "2024-05-01T07:00:00Z", "status": "busy" })
    .to_string();
    assert_eq!(post(&h, &missed, &signed_headers("d2", NOW_SECS, &missed, GENERIC_KEY)).status, 200);
    assert_eq!((h.events()[1].duration_secs, h.events()[1].talk_secs), (Some(60), None));
    // Sent lengths win.
    let sent = json!({ "call_id": "d3", "to": "+74957000001", "started_at": "2024-05-01T06:59:00Z",
        "ended_at": "2024-05-01T07:00:00Z", "duration": 61, "talk_time": 0 })
    .to_string();
    assert_eq!(post(&h, &sent, &signed_headers("d3", NOW_SECS, &sent, GENERIC_KEY)).status, 200);
    assert_eq!((h.events()[2].duration_secs, h.events()[2].talk_secs), (Some(61), Some(0)));
}
