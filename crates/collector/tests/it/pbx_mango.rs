//! The Mango Office adapter over HTTP. Mango signs no timestamp; replays
//! fold into the same call (keyed by entry_id).
//!
//! The tests whose events reach the sink run on both backends
//! (`name::sqlite`, `name::postgres`): the sink stores them, and the database
//! decides what is a duplicate. The sign, bad-body and route tests stay on
//! SQLite: their requests are refused before the sink, so no backend has
//! anything to do with them (the harness checks that nothing was stored).

use crate::common::Backend;
use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};
use serde_json::json;
use sha2::{Digest, Sha256};

fn sign(key: &str, json: &str, salt: &str) -> String {
    hex(&Sha256::digest(format!("{key}{json}{salt}").as_bytes()))
}

fn post(h: &PbxHarness, event: &str, fields: &[(&str, &str)]) -> Reply {
    h.post(&format!("/v1/sites/shop/pbx/mango/events/{event}"), "application/x-www-form-urlencoded", form(fields), &[])
}

fn signed(h: &PbxHarness, event: &str, json: &str) -> Reply {
    post(h, event, &[("vpbx_api_key", MANGO_KEY), ("sign", &sign(MANGO_KEY, json, MANGO_SALT)), ("json", json)])
}

fn call_event(state: &str, ts: i64) -> String {
    json!({
        "entry_id": "MTAxNjAyMjQ6Mjk=", "call_id": "MToxMDE2MDIyNDoyOTo0", "timestamp": ts, "seq": 1,
        "call_state": state, "location": "abonent",
        "from": { "number": "79161234567" },
        "to": { "extension": "101", "number": "sip:manager@vpbx.mangosip.ru", "line_number": "74957000002" }
    })
    .to_string()
}

crate::on_both_backends! {
    call_states_and_the_summary_reach_the_sink_mapped => call_states_and_the_summary_reach_the_sink_mapped_on;
    missed_outgoing_and_other_events => missed_outgoing_and_other_events_on;
    disconnect_reasons_map_to_missed_statuses => disconnect_reasons_map_to_missed_statuses_on;
}

fn call_states_and_the_summary_reach_the_sink_mapped_on(backend: Backend) {
    let Some(h) = start_on(backend, "call_states_and_the_summary_reach_the_sink_mapped", &all_adapters()) else {
        return;
    };
    let summary = json!({
        "entry_id": "MTAxNjAyMjQ6Mjk=", "call_direction": 1,
        "from": { "number": "79161234567" }, "to": { "extension": "101", "number": "sip:manager@vpbx.mangosip.ru" },
        "line_number": "74957000002",
        "create_time": NOW_SECS - 60, "forward_time": NOW_SECS - 58, "talk_time": NOW_SECS - 50, "end_time": NOW_SECS,
        "entry_result": 1, "disconnect_reason": 1110
    })
    .to_string();
    // The summary first: events arrive out of order.
    for (event, json) in [
        ("summary", summary),
        ("call", call_event("Appeared", NOW_SECS - 60)),
        ("call", call_event("Connected", NOW_SECS - 50)),
    ] {
        let r = signed(&h, event, &json);
        assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{}", r.body);
    }
    let disconnected = signed(&h, "call", &call_event("Disconnected", NOW_SECS));
    assert_eq!(disconnected.body["outcome"], "ignored", "{}", disconnected.body);
    let events = h.events();
    assert_eq!(events.len(), 3);
    for e in &events {
        assert_eq!((e.pbx.as_str(), e.pbx_call_id.as_str()), ("mango", "MTAxNjAyMjQ6Mjk="));
        assert_eq!(e.to.e164(), "+74957000002");
        assert_eq!(e.from.as_deref(), Some("+79161234567"));
    }
    let end = &events[0];
    let ms = |s: i64| Some((s * 1000) as u64);
    assert_eq!((end.phase, end.status), (CallPhase::End, CallStatus::Answered));
    assert_eq!(
        (end.started_at_ms, end.answered_at_ms, end.ended_at_ms),
        (ms(NOW_SECS - 60), ms(NOW_SECS - 50), ms(NOW_SECS))
    );
    assert_eq!((end.duration_secs, end.talk_secs), (Some(60), Some(50)));
    assert_eq!((events[1].phase, events[1].started_at_ms), (CallPhase::Start, ms(NOW_SECS - 60)));
    assert_eq!((events[2].phase, events[2].answered_at_ms), (CallPhase::Answer, ms(NOW_SECS - 50)));
}

fn missed_outgoing_and_other_events_on(backend: Backend) {
    let Some(h) = start_on(backend, "missed_outgoing_and_other_events", &all_adapters()) else { return };
    let missed = json!({ "entry_id": "e2", "call_direction": 1, "from": { "number": "79161234567" }, "line_number": "74957000002",
        "create_time": NOW_SECS - 30, "talk_time": 0, "end_time": NOW_SECS, "entry_result": 0 }).to_string();
    assert_eq!(signed(&h, "summary", &missed).status, 200);
    let e = &h.events()[0];
    assert_eq!((e.status, e.answered_at_ms, e.talk_secs), (CallStatus::NoAnswer, None, None));
    let outgoing = json!({ "entry_id": "e3", "call_direction": 2, "line_number": "74957000002" }).to_string();
    assert_eq!(signed(&h, "summary", &outgoing).body["outcome"], "ignored");
    let by_employee = json!({ "entry_id": "e4", "call_state": "Appeared", "from": { "extension": "101" }, "to": { "number": "79161234567" } }).to_string();
    assert_eq!(signed(&h, "call", &by_employee).body["outcome"], "ignored");
    assert_eq!(signed(&h, "recording", r#"{"entry_id":"e2"}"#).body["outcome"], "ignored");
    assert_eq!(h.events().len(), 1);
}

#[test]
fn a_wrong_or_missing_sign_is_401() {
    let h = start(&all_adapters());
    let json = call_event("Appeared", NOW_SECS);
    let wrong_salt = post(
        &h,
        "call",
        &[("vpbx_api_key", MANGO_KEY), ("sign", &sign(MANGO_KEY, &json, "other-salt")), ("json", &json)],
    );
    assert_eq!((wrong_salt.status, wrong_salt.code()), (401, "bad_credentials"));
    let wrong_key = post(
        &h,
        "call",
        &[("vpbx_api_key", "other-key"), ("sign", &sign("other-key", &json, MANGO_SALT)), ("json", &json)],
    );
    assert_eq!((wrong_key.status, wrong_key.code()), (401, "bad_credentials"));
    let no_sign = post(&h, "call", &[("vpbx_api_key", MANGO_KEY), ("json", &json)]);
    assert_eq!((no_sign.status, no_sign.code()), (401, "missing_credentials"));
    assert!(no_sign.message().contains("sign"));
    let no_key = post(&h, "call", &[("sign", &sign(MANGO_KEY, &json, MANGO_SALT)), ("json", &json)]);
    assert_eq!((no_key.status, no_key.code()), (401, "missing_credentials"));
    assert!(no_key.message().contains("vpbx_api_key"));
    assert!(h.events().is_empty());
}

#[test]
fn a_bad_body_with_a_good_sign_is_400() {
    let h = start(&all_adapters());
    for json in [
        "not json",
        r#"{"entry_id":"e","call_state":"Exploded","to":{"line_number":"74957000002"}}"#,
        r#"{"call_state":"Appeared","to":{"line_number":"74957000002"}}"#,
        r#"{"entry_id":"e","call_state":"Appeared","to":{"line_number":"12"}}"#,
    ] {
        let r = signed(&h, "call", json);
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{json}: {}", r.body);
    }
    let r = post(&h, "call", &[("vpbx_api_key", MANGO_KEY), ("sign", &sign(MANGO_KEY, "", MANGO_SALT))]);
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    assert!(h.events().is_empty());
}

#[test]
fn the_plain_adapter_route_points_to_the_events_route() {
    let h = start(&all_adapters());
    let r = h.post("/v1/sites/shop/pbx/mango", "application/x-www-form-urlencoded", "json=%7B%7D", &[]);
    assert_eq!((r.status, r.code()), (404, "wrong_route"));
    assert!(r.message().contains("/pbx/mango/events/"), "{}", r.message());
}

/// A missed call's summary: `disconnect_reason` says how it was missed;
/// `entry_result` 1 is answered whatever ended it.
fn disconnect_reasons_map_to_missed_statuses_on(backend: Backend) {
    let Some(h) = start_on(backend, "disconnect_reasons_map_to_missed_statuses", &all_adapters()) else { return };
    let cases = [
        (0, 1110, CallStatus::Canceled),
        (0, 1111, CallStatus::NoAnswer),
        (0, 1121, CallStatus::Busy),
        (0, 1164, CallStatus::Busy),
        (0, 1163, CallStatus::NoAnswer),
        (0, 1191, CallStatus::Failed),
        (0, 2240, CallStatus::Failed),
        (0, 1100, CallStatus::NoAnswer),
        (0, 7777, CallStatus::NoAnswer),
        (1, 1120, CallStatus::Answered),
    ];
    for (i, (result, reason, _)) in cases.iter().enumerate() {
        let talk = if *result == 1 { NOW_SECS - 20 } else { 0 };
        let json = json!({ "entry_id": format!("m{i}"), "call_direction": 1, "from": { "number": "79161234567" },
            "line_number": "74957000002", "create_time": NOW_SECS - 30, "forward_time": NOW_SECS - 28,
            "talk_time": talk, "end_time": NOW_SECS, "entry_result": result, "disconnect_reason": reason })
        .to_string();
        let r = signed(&h, "summary", &json);
        assert_eq!(r.status, 200, "{reason}: {}", r.body);
    }
    let got: Vec<_> = h.events().iter().map(|e| e.status).collect();
    let want: Vec<_> = cases.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(got, want);
    // A missed call rings at create_time, not at forward_time, and has no talk time.
    let missed = &h.events()[0];
    let ms = |s: i64| Some((s * 1000) as u64);
    assert_eq!(
        (missed.started_at_ms, missed.answered_at_ms, missed.ended_at_ms),
        (ms(NOW_SECS - 30), None, ms(NOW_SECS))
    );
    assert_eq!((missed.duration_secs, missed.talk_secs), (Some(30), None));
}
