//! The Kamailio dialog-event adapter over HTTP (bearer token; see
//! examples/kamailio for the script that posts these).
//!
//! The tests whose events reach the sink run on both backends
//! (`name::sqlite`, `name::postgres`): the sink stores them, and the database
//! decides what is a duplicate. The token and bad-body tests stay on SQLite:
//! their requests are refused before the sink, so no backend has anything to
//! do with them (the harness checks that nothing was stored).

use crate::common::Backend;
use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};
use serde_json::{Value, json};

const PATH: &str = "/v1/sites/shop/pbx/kamailio";

fn post(h: &PbxHarness, body: &Value, auth: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    h.post(PATH, "application/json", body.to_string(), &headers)
}

fn bearer() -> String {
    format!("Bearer {KAMAILIO_TOKEN}")
}

crate::on_both_backends! {
    dialog_events_reach_the_sink_mapped => dialog_events_reach_the_sink_mapped_on;
    failed_dialogs_map_their_sip_code => failed_dialogs_map_their_sip_code_on;
    fractional_times_are_kept_to_the_millisecond => fractional_times_are_kept_to_the_millisecond_on;
}

fn dialog_events_reach_the_sink_mapped_on(backend: Backend) {
    let Some(h) = start_on(backend, "dialog_events_reach_the_sink_mapped", &all_adapters()) else { return };
    let call = "3c26700b5d3f0a1b@127.0.0.1";
    let events = [
        json!({ "event": "end", "call_id": call, "from": "79161234567", "to": "74957000001", "at": NOW_SECS, "started_at": NOW_SECS - 40, "answered_at": NOW_SECS - 30, "sip_code": 200 }),
        json!({ "event": "start", "call_id": call, "from": "79161234567", "to": "74957000001", "at": NOW_SECS - 40 }),
        json!({ "event": "answer", "call_id": call, "from": "79161234567", "to": "74957000001", "at": NOW_SECS - 30, "started_at": NOW_SECS - 40 }),
    ];
    for e in &events {
        let r = post(&h, e, Some(&bearer()));
        assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{}", r.body);
    }
    let got = h.events();
    let ms = |s: i64| Some((s * 1000) as u64);
    let end = &got[0];
    assert_eq!((end.pbx.as_str(), end.pbx_call_id.as_str()), ("kamailio", call));
    assert_eq!((end.phase, end.status), (CallPhase::End, CallStatus::Answered));
    assert_eq!(
        (end.started_at_ms, end.answered_at_ms, end.ended_at_ms),
        (ms(NOW_SECS - 40), ms(NOW_SECS - 30), ms(NOW_SECS))
    );
    assert_eq!((end.duration_secs, end.talk_secs), (Some(40), Some(30)));
    assert_eq!(end.to.e164(), "+74957000001");
    assert_eq!(end.from.as_deref(), Some("+79161234567"));
    assert_eq!((got[1].phase, got[1].started_at_ms), (CallPhase::Start, ms(NOW_SECS - 40)));
    assert_eq!((got[2].phase, got[2].answered_at_ms), (CallPhase::Answer, ms(NOW_SECS - 30)));
}

fn failed_dialogs_map_their_sip_code_on(backend: Backend) {
    let Some(h) = start_on(backend, "failed_dialogs_map_their_sip_code", &all_adapters()) else { return };
    for code in [486, 487, 480, 503] {
        let e = json!({ "event": "end", "call_id": format!("c{code}"), "to": "74957000001", "at": NOW_SECS, "started_at": NOW_SECS - 20, "sip_code": code });
        assert_eq!(post(&h, &e, Some(&bearer())).status, 200);
    }
    let got: Vec<_> = h.events().iter().map(|e| (e.status, e.talk_secs)).collect();
    assert_eq!(
        got,
        [
            (CallStatus::Busy, None),
            (CallStatus::Canceled, None),
            (CallStatus::NoAnswer, None),
            (CallStatus::Failed, None)
        ]
    );
}

#[test]
fn a_missing_or_wrong_token_is_401() {
    let h = start(&all_adapters());
    let e = json!({ "event": "start", "call_id": "c", "to": "74957000001", "at": NOW_SECS });
    let missing = post(&h, &e, None);
    assert_eq!((missing.status, missing.code()), (401, "missing_credentials"));
    assert!(missing.message().contains("Authorization"));
    for auth in
        ["Bearer wrong-token-0123456789".to_owned(), format!("Basic {KAMAILIO_TOKEN}"), KAMAILIO_TOKEN.to_owned()]
    {
        let r = post(&h, &e, Some(&auth));
        assert_eq!((r.status, r.code()), (401, "bad_credentials"), "{auth}");
    }
    assert!(h.events().is_empty());
}

#[test]
fn a_bad_body_with_a_good_token_is_400() {
    let h = start(&all_adapters());
    let cases = [
        json!("not an object"),
        json!({ "event": "ring", "call_id": "c", "to": "74957000001", "at": NOW_SECS }),
        json!({ "event": "start", "call_id": "c", "to": "100", "at": NOW_SECS }),
        json!({ "event": "start", "call_id": "c", "to": "74957000001", "at": -5 }),
        json!({ "event": "end", "call_id": "c", "to": "74957000001", "at": NOW_SECS }),
    ];
    for body in &cases {
        let r = post(&h, body, Some(&bearer()));
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{body}: {}", r.body);
    }
    assert!(h.events().is_empty());
}

/// The shipped script sends $TV(Sn) times, seconds with microseconds; a
/// dialog variable may also reach the body as a string.
fn fractional_times_are_kept_to_the_millisecond_on(backend: Backend) {
    let Some(h) = start_on(backend, "fractional_times_are_kept_to_the_millisecond", &all_adapters()) else { return };
    for body in [sample("kamailio/end.json"), sample("kamailio/start.json"), sample("kamailio/answer.json")] {
        let r = h.post(PATH, "application/json", body, &[("Authorization", bearer().as_str())]);
        assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{}", r.body);
    }
    let got = h.events();
    let base = NOW_SECS as u64 * 1000;
    let end = &got[0];
    assert_eq!(
        (end.started_at_ms, end.answered_at_ms, end.ended_at_ms),
        (Some(base + 30_250), Some(base + 40_731), Some(base + 800_403))
    );
    assert_eq!((end.duration_secs, end.talk_secs), (Some(770), Some(759)));
    assert_eq!(got[1].started_at_ms, Some(base + 30_250));
    assert_eq!(got[2].answered_at_ms, Some(base + 40_731));

    let as_strings = json!({ "event": "end", "call_id": "c-str", "to": "74957000001", "at": format!("{NOW_SECS}.5"),
        "started_at": format!("{}.25", NOW_SECS - 20), "answered_at": "", "sip_code": 487 });
    let r = post(&h, &as_strings, Some(&bearer()));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &h.events()[3];
    assert_eq!((e.started_at_ms, e.answered_at_ms, e.ended_at_ms), (Some(base - 19_750), None, Some(base + 500)));
    assert_eq!((e.status, e.duration_secs), (CallStatus::Canceled, Some(20)));

    for bad in [json!("soon"), json!(-1.5), json!(true)] {
        let body = json!({ "event": "start", "call_id": "c-bad", "to": "74957000001", "at": bad });
        assert_eq!(post(&h, &body, Some(&bearer())).status, 400, "{bad}");
    }
}
