//! The FreeSWITCH mod_json_cdr adapter over HTTP (basic auth). No timestamp
//! is signed; a re-sent CDR is the same event and folds into the same call.
//!
//! The tests whose events reach the sink run on both backends
//! (`name::sqlite`, `name::postgres`): the sink stores them, and the database
//! decides what is a duplicate. The credential, bad-body and outbound-leg
//! tests stay on SQLite: their requests are refused or ignored before the
//! sink, so no backend has anything to do with them (the harness checks that
//! nothing was stored).

use crate::common::Backend;
use crate::pbx_support::*;
use ringsource_core::call::{CallPhase, CallStatus};
use serde_json::{Value, json};

const PATH: &str = "/v1/sites/shop/pbx/freeswitch";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))
}

/// A CDR shaped as mod_json_cdr writes it, values url-encoded (encode-values).
fn cdr(hangup_cause: &str, answer_epoch: i64, billsec: u32) -> Value {
    json!({
        "core-uuid": "6f4c2b1e-0000-4000-8000-000000000000",
        "channel_data": { "state": "CS_REPORTING", "direction": "inbound" },
        "variables": {
            "uuid": "a1b2c3d4-0000-4000-8000-000000000001",
            "call_uuid": "a1b2c3d4-0000-4000-8000-000000000001",
            "direction": "inbound",
            "sip_from_user": "79161234567",
            "caller_id_number": "%2B79161234567",
            "start_epoch": (NOW_SECS - 60).to_string(),
            "answer_epoch": answer_epoch.to_string(),
            "end_epoch": NOW_SECS.to_string(),
            "duration": "60",
            "billsec": billsec.to_string(),
            "hangup_cause": hangup_cause,
            "effective_caller_id_name": "Ivan%20Petrov"
        },
        "callflow": [
            { "profile_index": "2", "caller_profile": { "caller_id_number": "+79161234567", "destination_number": "101" } },
            { "profile_index": "1", "caller_profile": { "caller_id_number": "+79161234567", "destination_number": "84957000003" } }
        ]
    })
}

fn post(h: &PbxHarness, content_type: &str, body: String, auth: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    h.post(PATH, content_type, body, &headers)
}

crate::on_both_backends! {
    a_json_cdr_with_basic_auth_reaches_the_sink_mapped => a_json_cdr_with_basic_auth_reaches_the_sink_mapped_on;
    a_form_posted_cdr_is_read_the_same => a_form_posted_cdr_is_read_the_same_on;
    hangup_causes_of_missed_calls => hangup_causes_of_missed_calls_on;
    microsecond_times_are_kept => microsecond_times_are_kept_on;
    the_sample_cdr_is_one_final_event => the_sample_cdr_is_one_final_event_on;
}

fn a_json_cdr_with_basic_auth_reaches_the_sink_mapped_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_json_cdr_with_basic_auth_reaches_the_sink_mapped", &all_adapters()) else {
        return;
    };
    let r = post(
        &h,
        "application/json",
        cdr("NORMAL_CLEARING", NOW_SECS - 50, 50).to_string(),
        Some(&basic(FS_USER, FS_PASSWORD)),
    );
    assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{}", r.body);
    let e = &h.events()[0];
    let ms = |s: i64| Some((s * 1000) as u64);
    assert_eq!((e.pbx.as_str(), e.pbx_call_id.as_str()), ("freeswitch", "a1b2c3d4-0000-4000-8000-000000000001"));
    assert_eq!((e.phase, e.status), (CallPhase::End, CallStatus::Answered));
    // The number first dialled, before the transfer to extension 101.
    assert_eq!(e.to.e164(), "+74957000003");
    assert_eq!(e.from.as_deref(), Some("+79161234567"));
    assert_eq!(
        (e.started_at_ms, e.answered_at_ms, e.ended_at_ms),
        (ms(NOW_SECS - 60), ms(NOW_SECS - 50), ms(NOW_SECS))
    );
    assert_eq!((e.duration_secs, e.talk_secs), (Some(60), Some(50)));
}

fn a_form_posted_cdr_is_read_the_same_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_form_posted_cdr_is_read_the_same", &all_adapters()) else { return };
    let body = form(&[("cdr", &cdr("ORIGINATOR_CANCEL", 0, 0).to_string())]);
    let r = post(&h, "application/x-www-form-urlencoded", body, Some(&basic(FS_USER, FS_PASSWORD)));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &h.events()[0];
    assert_eq!((e.status, e.answered_at_ms, e.talk_secs), (CallStatus::Canceled, None, Some(0)));
    assert_eq!(e.to.e164(), "+74957000003");
}

fn hangup_causes_of_missed_calls_on(backend: Backend) {
    let Some(h) = start_on(backend, "hangup_causes_of_missed_calls", &all_adapters()) else { return };
    for cause in ["USER_BUSY", "NO_ANSWER", "CALL_REJECTED"] {
        let mut c = cdr(cause, 0, 0);
        c["variables"]["call_uuid"] = json!(cause);
        assert_eq!(post(&h, "application/json", c.to_string(), Some(&basic(FS_USER, FS_PASSWORD))).status, 200);
    }
    let got: Vec<_> = h.events().iter().map(|e| e.status).collect();
    assert_eq!(got, [CallStatus::Busy, CallStatus::NoAnswer, CallStatus::Failed]);
}

#[test]
fn outbound_legs_are_ignored() {
    let h = start(&all_adapters());
    let mut c = cdr("NORMAL_CLEARING", NOW_SECS - 50, 50);
    c["variables"]["direction"] = json!("outbound");
    let r = post(&h, "application/json", c.to_string(), Some(&basic(FS_USER, FS_PASSWORD)));
    assert_eq!(r.body["outcome"], "ignored", "{}", r.body);
    assert!(h.events().is_empty());
}

#[test]
fn missing_or_wrong_credentials_are_401_with_a_basic_challenge() {
    let h = start(&all_adapters());
    let body = cdr("NORMAL_CLEARING", NOW_SECS - 50, 50).to_string();
    let missing = post(&h, "application/json", body.clone(), None);
    assert_eq!((missing.status, missing.code()), (401, "missing_credentials"));
    assert!(missing.message().contains("Authorization"));
    assert!(missing.headers["www-authenticate"].to_str().unwrap().starts_with("Basic "));
    for auth in [
        basic(FS_USER, "wrong"),
        basic("someone", FS_PASSWORD),
        format!("Bearer {FS_PASSWORD}"),
        "Basic !!!".to_owned(),
    ] {
        let r = post(&h, "application/json", body.clone(), Some(&auth));
        assert_eq!((r.status, r.code()), (401, "bad_credentials"), "{auth}");
        assert!(r.headers.contains_key("www-authenticate"));
    }
    assert!(h.events().is_empty());
}

#[test]
fn a_bad_body_with_good_credentials_is_400() {
    let h = start(&all_adapters());
    let auth = basic(FS_USER, FS_PASSWORD);
    let mut no_uuid = cdr("NORMAL_CLEARING", 0, 0);
    no_uuid["variables"].as_object_mut().unwrap().retain(|k, _| k != "uuid" && k != "call_uuid");
    let mut bad_epoch = cdr("NORMAL_CLEARING", 0, 0);
    bad_epoch["variables"]["start_epoch"] = json!("soon");
    for body in [
        "{not json".to_owned(),
        "foo=bar".to_owned(),
        json!({ "callflow": [] }).to_string(),
        no_uuid.to_string(),
        bad_epoch.to_string(),
    ] {
        let r = post(&h, "application/json", body.clone(), Some(&auth));
        assert_eq!((r.status, r.code()), (400, "bad_request"), "{body}: {}", r.body);
    }
    assert!(h.events().is_empty());
}

/// mod_json_cdr writes each moment in seconds and in microseconds; the
/// microseconds are kept to the nearest millisecond.
fn microsecond_times_are_kept_on(backend: Backend) {
    let Some(h) = start_on(backend, "microsecond_times_are_kept", &all_adapters()) else { return };
    let mut c = cdr("NORMAL_CLEARING", NOW_SECS - 50, 50);
    c["variables"]["start_uepoch"] = json!(format!("{}250113", NOW_SECS - 60));
    c["variables"]["answer_uepoch"] = json!(format!("{}731250", NOW_SECS - 50));
    c["variables"]["end_uepoch"] = json!(format!("{}000400", NOW_SECS));
    // A template without duration and billsec: they follow from the times.
    c["variables"].as_object_mut().unwrap().retain(|k, _| k != "duration" && k != "billsec");
    let r = post(&h, "application/json", c.to_string(), Some(&basic(FS_USER, FS_PASSWORD)));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &h.events()[0];
    let ms = |s: i64, extra: u64| Some((s * 1000) as u64 + extra);
    assert_eq!(
        (e.started_at_ms, e.answered_at_ms, e.ended_at_ms),
        (ms(NOW_SECS - 60, 250), ms(NOW_SECS - 50, 731), ms(NOW_SECS, 0))
    );
    assert_eq!((e.duration_secs, e.talk_secs), (Some(59), Some(49)));
    // A moment that never came is 0 in both forms.
    let mut missed = cdr("NO_ANSWER", 0, 0);
    missed["variables"]["call_uuid"] = json!("missed-1");
    missed["variables"]["answer_uepoch"] = json!("0");
    assert_eq!(post(&h, "application/json", missed.to_string(), Some(&basic(FS_USER, FS_PASSWORD))).status, 200);
    assert_eq!(h.events()[1].answered_at_ms, None);
}

fn the_sample_cdr_is_one_final_event_on(backend: Backend) {
    let Some(h) = start_on(backend, "the_sample_cdr_is_one_final_event", &all_adapters()) else { return };
    let r = post(&h, "application/json", sample("freeswitch/cdr.json"), Some(&basic(FS_USER, FS_PASSWORD)));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &h.events()[0];
    assert_eq!((e.phase, e.status), (CallPhase::End, CallStatus::Answered));
    assert_eq!(e.to.e164(), "+74957000001");
    assert_eq!(e.started_at_ms, Some((NOW_SECS as u64 + 30) * 1000 + 250));
    assert_eq!((e.duration_secs, e.talk_secs), (Some(770), Some(760)));
}
