//! Calls end to end: leases taken through the real visits API on a simulated
//! clock, call events fed through the storage-backed `CallSink`, and the
//! admin calls API read over HTTP from the same database, on both backends.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use ringsource_collector::clock::ManualClock;
use ringsource_collector::config::Config;
use ringsource_collector::services::calls::CallsService;
use ringsource_collector::services::calls::{CallSink, RecordOutcome};
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use ringsource_core::phone::PhoneNumber;
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000_000;
const TOKEN: &str = "admin-token-for-tests-0123";
const SERVER: &str = "admin_token = \"admin-token-for-tests-0123\"";
/// Hold 60 s, heartbeat 10 s, cooldown 600 s; grace is the site's (120 s by default).
const POOL_SETTINGS: &str = "hold_secs = 60\nheartbeat_secs = 10\ncooldown_secs = 600\non_exhaustion = \"original\"";
const BILLBOARD: &str = "+74957000013";
const CALLER: &str = "+79161234567";

struct Calls {
    h: Harness,
    clock: Arc<ManualClock>,
    sink: CallsService,
}

/// The real server plus a `CallsService` on the same database, standing in
/// for the PBX adapters that feed the server's own.
fn start_calls(backend: Backend, test: &str, site_extra: &str) -> Option<Calls> {
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock_on(backend, test, SERVER, site_extra, POOL_SETTINGS, clock.clone())?;
    let text = site_toml(&h.db, SERVER, site_extra, POOL_SETTINGS);
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap();
    let store = h.call_store();
    let sink = CallsService::new(store, &config.sites, clock.clone());
    Some(Calls { h, clock, sink })
}

fn at(clock: &ManualClock, secs: i64) {
    clock.set_ms(T0 + secs * 1000);
}

fn ms(secs: i64) -> u64 {
    (T0 + secs * 1000) as u64
}

fn event(id: &str, phase: CallPhase, status: CallStatus, to: &str, ring_s: i64) -> CallEvent {
    CallEvent {
        pbx: "generic".into(),
        pbx_call_id: id.into(),
        phase,
        from: Some(CALLER.into()),
        to: PhoneNumber::parse(to).unwrap(),
        started_at_ms: Some(ms(ring_s)),
        answered_at_ms: None,
        ended_at_ms: None,
        duration_secs: None,
        talk_secs: None,
        status,
        recording_url: None,
    }
}

fn start_ev(id: &str, to: &str, ring_s: i64) -> CallEvent {
    event(id, CallPhase::Start, CallStatus::InProgress, to, ring_s)
}

/// The same report from another caller (so no caller history applies).
fn by(caller: &str, e: CallEvent) -> CallEvent {
    CallEvent { from: Some(caller.into()), ..e }
}

/// An answered call's end report with `talk` seconds of conversation.
fn answered_end(id: &str, to: &str, ring_s: i64, talk: u32) -> CallEvent {
    CallEvent {
        answered_at_ms: Some(ms(ring_s + 5)),
        ended_at_ms: Some(ms(ring_s + 5 + i64::from(talk))),
        duration_secs: Some(talk + 5),
        talk_secs: Some(talk),
        recording_url: Some(format!("https://pbx.example/rec/{id}.mp3")),
        ..event(id, CallPhase::End, CallStatus::Answered, to, ring_s)
    }
}

impl Calls {
    fn record(&self, e: CallEvent) -> RecordOutcome {
        CallSink::record(&self.sink, "shop", None, e).unwrap()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.h.client.get(self.h.url(path)).bearer_auth(TOKEN).send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The call with this PBX id, in full.
    fn call(&self, pbx_call_id: &str) -> Value {
        let list = self.ok("/v1/calls?site=shop&limit=1000");
        let id = list["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["pbx_call_id"] == pbx_call_id)
            .unwrap_or_else(|| panic!("no call {pbx_call_id} in {list}"))["id"]
            .clone();
        self.ok(&format!("/v1/calls/{id}"))
    }
}

fn session(v: &Value) -> String {
    v["session_id"].as_str().unwrap().to_owned()
}

crate::on_both_backends! {
    a_report_without_calls_totals_zero => a_report_without_calls_totals_zero_on;
    grace_window_counts_a_late_caller_and_not_a_later_one => grace_window_counts_a_late_caller_and_not_a_later_one_on;
    a_number_reused_after_cooldown_goes_to_the_second_session => a_number_reused_after_cooldown_goes_to_the_second_session_on;
    repeat_callers_and_the_caller_history_heuristic => repeat_callers_and_the_caller_history_heuristic_on;
    a_static_number_maps_to_its_source => a_static_number_maps_to_its_source_on;
    promo_codes_are_issued_looked_up_and_win_over_everything => promo_codes_are_issued_looked_up_and_win_over_everything_on;
    out_of_order_and_duplicate_events_make_one_correct_call => out_of_order_and_duplicate_events_make_one_correct_call_on;
    missed_calls_keep_the_pbx_status_and_unknown_numbers_are_stored => missed_calls_keep_the_pbx_status_and_unknown_numbers_are_stored_on;
    linear_model_splits_credit_in_the_report => linear_model_splits_credit_in_the_report_on;
    csv_export_has_a_header_and_one_row_per_call => csv_export_has_a_header_and_one_row_per_call_on;
    the_calls_api_needs_the_admin_token => the_calls_api_needs_the_admin_token_on;
}

/// An empty month's totals are zeros, never `-0.0`, which a dashboard or
/// a spreadsheet reading the JSON would show as "-0".
fn a_report_without_calls_totals_zero_on(backend: Backend) {
    let Some(c) = start_calls(backend, "a_report_without_calls_totals_zero", "") else { return };
    let report = c.ok("/v1/reports/calls?site=shop&from=2027-01-01&to=2027-01-31");
    let totals = report["totals"].as_object().unwrap();
    assert_eq!(totals["calls"].as_f64(), Some(0.0), "{report}");
    for (field, value) in totals {
        if let Some(v) = value.as_f64() {
            assert!(v.is_sign_positive(), "totals.{field} is {v}: {report}");
        }
    }
}

fn grace_window_counts_a_late_caller_and_not_a_later_one_on(backend: Backend) {
    let Some(c) = start_calls(backend, "grace_window_counts_a_late_caller_and_not_a_later_one", "") else { return };
    let a = c.h.visit(None, paid());
    assert_eq!(a["number"], POOL[0]);
    // The lease expires at 60 s; grace is 120 s.
    c.record(start_ev("late", POOL[0], 60 + 119));
    c.record(by("+79990000002", start_ev("too-late", POOL[0], 60 + 121)));
    c.record(start_ev("live", POOL[0], 30));

    let live = c.call("live");
    assert_eq!((live["session_id"].as_str(), live["confidence"].as_str()), (Some(session(&a).as_str()), Some("high")));

    let late = c.call("late");
    assert_eq!(late["session_id"], session(&a));
    assert_eq!(late["confidence"], "medium");
    assert!(late["reason"].as_str().unwrap().contains("within the 120 s grace window"), "{late}");
    assert_eq!(late["attribution"]["candidates"][0]["relation"], "grace");
    assert_eq!(late["attribution"]["candidates"][0]["chosen"], true);

    let too_late = c.call("too-late");
    assert_eq!(too_late["session_id"], Value::Null, "unattributed, yet stored");
    assert_eq!(too_late["confidence"], "none");
    assert_eq!(too_late["channel"], "(unattributed)");
    assert!(too_late["reason"].as_str().unwrap().contains("beyond the 120 s grace window"), "{too_late}");
    // The caller of the "late" call dialling again that late is another matter:
    // their earlier call names the session, with low confidence.
    c.record(start_ev("again", POOL[0], 60 + 125));
    let again = c.call("again");
    assert_eq!((again["session_id"].as_str(), again["confidence"].as_str()), (Some(session(&a).as_str()), Some("low")));
    assert_eq!(again["caller_kind"], "repeat");
    let cand = &too_late["attribution"]["candidates"][0];
    assert_eq!(
        (cand["session_id"].as_str(), cand["relation"].as_str(), cand["chosen"].as_bool()),
        (Some(session(&a).as_str()), Some("expired"), Some(false))
    );
}

fn a_number_reused_after_cooldown_goes_to_the_second_session_on(backend: Backend) {
    let Some(c) = start_calls(backend, "a_number_reused_after_cooldown_goes_to_the_second_session", "") else { return };
    let a = c.h.visit(None, paid());
    let b = c.h.visit(None, paid());
    let d = c.h.visit(None, paid());
    assert_eq!([&a["number"], &b["number"], &d["number"]], [POOL[0], POOL[1], POOL[2]]);
    // All expire at 60 and cool down until 660; then the pool's first number
    // goes to a new visitor.
    at(&c.clock, 700);
    let e = c.h.visit(None, paid());
    assert_eq!(e["number"], POOL[0]);
    c.record(start_ev("second", POOL[0], 710));
    // A report that arrives late about an earlier call still finds the first holder.
    c.record(start_ev("first", POOL[0], 20));
    assert_eq!(c.call("second")["session_id"], session(&e));
    assert_eq!(c.call("second")["confidence"], "high");
    assert_eq!(c.call("first")["session_id"], session(&a));
}

fn repeat_callers_and_the_caller_history_heuristic_on(backend: Backend) {
    let Some(c) =
        start_calls(backend, "repeat_callers_and_the_caller_history_heuristic", "uniqueness_window_days = 10")
    else {
        return;
    };
    let a = c.h.visit(None, paid());
    c.record(start_ev("c1", POOL[0], 10));
    // Two days later the same caller dials the site's own number.
    c.record(start_ev("c2", ORIGINAL, 2 * 86_400));
    // Another caller, same day.
    c.record(CallEvent { from: Some("+79990000001".into()), ..start_ev("c3", ORIGINAL, 2 * 86_400 + 5) });
    // The same caller again, eleven days after the last call: outside the window.
    c.record(start_ev("c4", ORIGINAL, 13 * 86_400 + 1));
    // Anonymous.
    c.record(CallEvent { from: Some("anonymous".into()), ..start_ev("c5", ORIGINAL, 100) });

    let kinds: Vec<_> = ["c1", "c2", "c3", "c4", "c5"].iter().map(|id| c.call(id)["caller_kind"].clone()).collect();
    assert_eq!(
        kinds,
        vec![json!("first-time"), json!("repeat"), json!("first-time"), json!("first-time"), json!("anonymous")]
    );

    let c2 = c.call("c2");
    assert_eq!(c2["session_id"], session(&a), "the caller's earlier call names the session");
    assert_eq!(c2["confidence"], "low");
    assert!(c2["reason"].as_str().unwrap().contains("same caller's earlier call"), "{c2}");
    assert_eq!(c.call("c3")["confidence"], "none");
    assert_eq!(c.call("c4")["confidence"], "none", "beyond the uniqueness window the history is not used");

    // A call reported late that rang before c1 makes c1 a repeat.
    c.record(start_ev("c0", ORIGINAL, 5));
    assert_eq!(c.call("c0")["caller_kind"], "first-time");
    assert_eq!(c.call("c1")["caller_kind"], "repeat");
}

fn a_static_number_maps_to_its_source_on(backend: Backend) {
    let Some(c) = start_calls(backend, "a_static_number_maps_to_its_source", "") else { return };
    c.record(answered_end("bb", BILLBOARD, 50, 40));
    let call = c.call("bb");
    assert_eq!(call["number_kind"], "static");
    assert_eq!(call["static_label"], "Billboard");
    assert_eq!(
        (call["confidence"].as_str(), call["source"].as_str(), call["channel"].as_str()),
        (Some("high"), Some("Billboard"), Some("Offline"))
    );
    assert_eq!(call["session_id"], Value::Null);
    assert_eq!(call["reason"], "static number of Billboard");
    assert_eq!(call["target"], true);
}

fn promo_codes_are_issued_looked_up_and_win_over_everything_on(backend: Backend) {
    let Some(c) = start_calls(
        backend,
        "promo_codes_are_issued_looked_up_and_win_over_everything",
        "promo = { fallback = true, length = 6 }",
    ) else {
        return;
    };
    let mut referral = touch("Referral", "blog.example", "referral");
    referral["term"] = json!("best shop");
    let v = c.h.visit(None, referral);
    assert_eq!(v["kind"], "promo", "{v}");
    assert!(v.get("number").is_none());
    let code = v["promo_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    // The same session keeps its code; another session gets another one.
    assert_eq!(
        c.h.visit(Some(&session(&v)), touch("Referral", "blog.example", "referral"))["promo_code"],
        code.as_str()
    );
    let other = c.h.visit(None, touch("Referral", "blog.example", "referral"));
    assert_ne!(other["promo_code"], code.as_str());
    // Pool visitors still get numbers.
    let paid_visitor = c.h.visit(None, paid());
    assert_eq!(paid_visitor["kind"], "lease");
    assert!(paid_visitor.get("promo_code").is_none());

    let found = c.ok(&format!("/v1/promo/{}?site=shop", code.to_ascii_lowercase()));
    assert_eq!(found["session_id"], session(&v));
    assert_eq!(found["live"], true);
    assert_eq!(found["visitor"]["touches"][0]["source"], "blog.example");
    assert_eq!(found["visitor"]["keyword"], "best shop");
    let (status, err) = c.get("/v1/promo/3333?site=shop");
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("unknown_promo_code")));
    let (status, err) = c.get("/v1/promo/OOPS0?site=shop");
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("bad_request")));

    // The caller dials the pool number while the paid visitor holds it, and
    // names the promo code: the manager's word wins.
    at(&c.clock, 20);
    c.record(start_ev("p1", POOL[0], 20));
    let id = c.call("p1")["id"].as_i64().unwrap();
    assert_eq!(c.call("p1")["session_id"], session(&paid_visitor));
    let resp =
        c.h.client
            .post(c.h.url(&format!("/v1/calls/{id}/promo")))
            .bearer_auth(TOKEN)
            .json(&json!({ "code": code }))
            .send()
            .unwrap();
    assert_eq!(resp.status(), 200);
    let attached: Value = resp.json().unwrap();
    assert_eq!(attached["session_id"], session(&v));
    assert_eq!(attached["confidence"], "high");
    assert!(attached["reason"].as_str().unwrap().starts_with("promo code named by the manager"), "{attached}");
    assert_eq!(attached["promo_code"], code.as_str());
    assert_eq!(attached["source"], "blog.example");
    // A later event about the same call keeps the promo attribution.
    c.record(answered_end("p1", POOL[0], 20, 31));
    let after = c.call("p1");
    assert_eq!(
        (after["session_id"].clone(), after["status"].clone(), after["target"].clone()),
        (json!(session(&v)), json!("answered"), json!(true))
    );

    // Unknown code on a real call: 404; unknown call: 404.
    let post = |path: String, body: Value| {
        let r = c.h.client.post(c.h.url(&path)).bearer_auth(TOKEN).json(&body).send().unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    assert_eq!(
        post(format!("/v1/calls/{id}/promo"), json!({ "code": "3333" })).1["error"]["code"],
        "unknown_promo_code"
    );
    assert_eq!(post("/v1/calls/999999/promo".into(), json!({ "code": code })).0, 404);
    assert_eq!(post(format!("/v1/calls/{id}/promo"), json!({ "kode": code })).0, 400);
}

fn out_of_order_and_duplicate_events_make_one_correct_call_on(backend: Backend) {
    let Some(c) = start_calls(backend, "out_of_order_and_duplicate_events_make_one_correct_call", "") else { return };
    let a = c.h.visit(None, paid());
    let end = answered_end("ooo", POOL[0], 30, 45);
    // The end report arrives first, without a start time.
    let early_end = CallEvent { started_at_ms: None, ..end.clone() };
    assert_eq!(c.record(early_end.clone()), RecordOutcome::New);
    assert_eq!(c.record(start_ev("ooo", POOL[0], 30)), RecordOutcome::New);
    assert_eq!(c.record(early_end), RecordOutcome::Duplicate);
    assert_eq!(c.record(start_ev("ooo", POOL[0], 30)), RecordOutcome::Duplicate);

    let list = c.ok("/v1/calls?site=shop");
    assert_eq!(list["total"], 1, "{list}");
    let call = c.call("ooo");
    assert_eq!(call["events"].as_array().unwrap().len(), 2);
    assert_eq!(call["ring_at_ms"], T0 + 30_000, "ring time from the start report");
    assert_eq!(
        (call["status"].as_str(), call["talk_secs"].as_i64(), call["target"].as_bool()),
        (Some("answered"), Some(45), Some(true))
    );
    assert_eq!(call["session_id"], session(&a));
    assert_eq!(call["recording_url"], "https://pbx.example/rec/ooo.mp3");
    // The visitor's path: touch, landing page, page views up to the call.
    let visitor = &call["visitor"];
    assert_eq!(visitor["landing_page"], "https://shop.example/");
    assert_eq!(visitor["touches"].as_array().unwrap().len(), 1);
    assert_eq!(visitor["page_views"][0]["at_ms"], T0);

    let report = c.ok("/v1/reports/calls?site=shop&from=2027-01-01&to=2027-01-31");
    assert_eq!(report["totals"]["calls"], 1.0, "{report}");
    assert_eq!(report["totals"]["target_calls"], 1.0);
}

fn missed_calls_keep_the_pbx_status_and_unknown_numbers_are_stored_on(backend: Backend) {
    let Some(c) = start_calls(
        backend,
        "missed_calls_keep_the_pbx_status_and_unknown_numbers_are_stored",
        "target_call_secs = 60",
    ) else {
        return;
    };
    c.h.visit(None, paid());
    c.record(CallEvent { ended_at_ms: Some(ms(40)), ..event("busy", CallPhase::End, CallStatus::Busy, POOL[0], 10) });
    c.record(answered_end("short", POOL[0], 50, 59));
    c.record(by("+79990000004", start_ev("stranger", "+74990000000", 70)));

    let busy = c.call("busy");
    assert_eq!(
        (busy["status"].as_str(), busy["missed"].as_bool(), busy["target"].as_bool()),
        (Some("busy"), Some(true), Some(false))
    );
    assert_eq!(c.call("short")["target"], false, "59 s is under the site's 60 s");
    let stranger = c.call("stranger");
    assert_eq!((stranger["number_kind"].as_str(), stranger["confidence"].as_str()), (Some("unknown"), Some("none")));
    assert!(stranger["reason"].as_str().unwrap().contains("not one of the site's numbers"));

    let missed = c.ok("/v1/calls?site=shop&status=missed");
    assert_eq!(missed["total"], 1);
    assert_eq!(missed["calls"][0]["pbx_call_id"], "busy");
    assert_eq!(c.ok("/v1/calls?site=shop&status=in-progress")["calls"][0]["pbx_call_id"], "stranger");
    assert_eq!(c.ok("/v1/calls?site=shop&target=false")["total"], 3);
    assert_eq!(c.ok("/v1/calls?site=shop&channel=paid%20search")["total"], 2);
    assert_eq!(c.ok("/v1/calls?site=shop&limit=1&offset=1")["calls"][0]["pbx_call_id"], "short", "newest ring first");
    assert_eq!(c.ok(&format!("/v1/calls?site=shop&from={}&to={}", T0 + 45_000, T0 + 60_000))["total"], 1);

    let report = c.ok("/v1/reports/calls?site=shop&from=2027-01-15&to=2027-01-15");
    assert_eq!(report["totals"]["missed_calls"], 1.0, "{report}");
    assert_eq!(report["totals"]["calls"], 3.0);
}

fn linear_model_splits_credit_in_the_report_on(backend: Backend) {
    let Some(c) = start_calls(backend, "linear_model_splits_credit_in_the_report", "attribution_model = \"linear\"")
    else {
        return;
    };
    // A visitor who first came from organic search, then from an ad.
    let mut body = visit_body(None, paid());
    body["client_id"] = json!("111.222");
    let mut first = touch("Organic Search", "google", "organic");
    first["at_ms"] = json!(1_600_000_000_000u64);
    body["first_touch"] = first;
    let (status, v) = c.h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200, "{v}");
    // The visitor's call, and a call nobody explains (its own group).
    c.record(answered_end("lin", POOL[0], 10, 35));
    c.record(by("+79990000003", start_ev("nobody", "+74990000000", 20)));

    let call = c.call("lin");
    let shares: Vec<f64> =
        call["attribution"]["credits"].as_array().unwrap().iter().map(|c| c["share"].as_f64().unwrap()).collect();
    assert_eq!(shares, vec![0.5, 0.5]);
    assert_eq!(call["model"], "linear");
    assert_eq!(call["channel"], "Paid Search", "headline is the last non-direct touch");

    let report = c.ok("/v1/reports/calls?site=shop&group_by=channel&interval=day&from=2027-01-15&to=2027-01-16");
    assert_eq!(report["model"], "linear");
    let rows: Vec<(String, String, f64, f64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_owned(),
                r["group"].as_str().unwrap().to_owned(),
                r["calls"].as_f64().unwrap(),
                r["target_calls"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("2027-01-15".into(), "(unattributed)".into(), 1.0, 0.0),
            ("2027-01-15".into(), "Organic Search".into(), 0.5, 0.5),
            ("2027-01-15".into(), "Paid Search".into(), 0.5, 0.5),
        ]
    );
    assert_eq!(report["totals"]["calls"], 2.0);
    assert_eq!(report["totals"]["first_time_callers"], 2.0);
    let by_campaign = c.ok("/v1/reports/calls?site=shop&group_by=campaign&from=2027-01-15&to=2027-01-15");
    assert_eq!(
        by_campaign["rows"],
        json!([{
            "day": "2027-01-15", "group": "(not set)", "calls": 2.0, "target_calls": 1.0, "missed_calls": 0.0, "first_time_callers": 2.0,
            "revenue": 0.0, "cost": 0.0, "cost_per_target_call": 0.0, "roi": null
        }])
    );

    let (status, err) = c.get("/v1/reports/calls?site=shop&group_by=keyword");
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("bad_request")));
    assert_eq!(c.get("/v1/reports/calls?site=shop&interval=week").0, 400);
    assert_eq!(c.get("/v1/reports/calls?group_by=channel").0, 400, "site is required");
    assert_eq!(c.get("/v1/reports/calls?site=nope").0, 404);
    assert_eq!(c.get("/v1/reports/calls?site=shop&from=2027-02-30").0, 400);
}

fn csv_export_has_a_header_and_one_row_per_call_on(backend: Backend) {
    let Some(c) = start_calls(backend, "csv_export_has_a_header_and_one_row_per_call", "") else { return };
    let a = c.h.visit(None, paid());
    c.record(answered_end("x1", POOL[0], 10, 40));
    c.record(start_ev("x2, \"quoted\"", BILLBOARD, 20));
    let resp = c.h.client.get(c.h.url("/v1/calls.csv?site=shop")).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(resp.headers()["x-total-count"], "2");
    let text = resp.text().unwrap();
    // The byte order mark Excel needs to read UTF-8; CSV readers skip it.
    assert!(text.starts_with("\u{FEFF}id,site,"), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    // Newest ring first; the quoted PBX id survives CSV quoting.
    assert_eq!(&rows[0][col("pbx_call_id")], "x2, \"quoted\"");
    assert_eq!(&rows[0][col("source")], "Billboard");
    assert_eq!(&rows[1][col("session_id")], session(&a));
    assert_eq!(&rows[1][col("ring_at")], "2027-01-15T08:00:10.000Z");
    assert_eq!(&rows[1][col("target")], "true");
    assert_eq!(&rows[1][col("confidence")], "high");
    // Filters apply to the export too.
    let resp = c.h.client.get(c.h.url("/v1/calls.csv?site=shop&target=true")).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.text().unwrap().lines().count(), 2, "header + one call");
}

fn the_calls_api_needs_the_admin_token_on(backend: Backend) {
    let Some(c) = start_calls(backend, "the_calls_api_needs_the_admin_token", "") else { return };
    for path in ["/v1/calls", "/v1/calls.csv", "/v1/calls/1", "/v1/reports/calls?site=shop", "/v1/promo/3333?site=shop"]
    {
        for auth in [None, Some("Bearer wrong-token-wrong-token"), Some(TOKEN)] {
            let mut req = c.h.client.get(c.h.url(path));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().unwrap();
            assert_eq!(resp.status(), 401, "{path} with {auth:?}");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let body: Value = resp.json().unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    let resp = c.h.client.post(c.h.url("/v1/calls/1/promo")).json(&json!({ "code": "3333" })).send().unwrap();
    assert_eq!(resp.status(), 401);
    // With the token: a JSON 404 for a call that does not exist, 400 for a bad id or filter.
    assert_eq!(c.get("/v1/calls/12345").1["error"]["code"], "unknown_call");
    assert_eq!(c.get("/v1/calls/abc").0, 400);
    assert_eq!(c.get("/v1/calls?status=lost").0, 400);
    assert_eq!(c.get("/v1/calls?sight=shop").0, 400, "unknown query keys are refused");
    assert_eq!(c.get("/v1/calls?limit=0").0, 400);
    assert_eq!(c.get("/v1/calls?site=nope").1["error"]["code"], "unknown_site");
}

#[test]
fn without_an_admin_token_the_calls_api_is_off() {
    let h = start("", "", "");
    let resp = h.client.get(h.url("/v1/calls")).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("admin_token"), "{body}");
}
