//! Money over HTTP: cost uploads (JSON and CSV, all-or-nothing, upserts),
//! revenue from the CRM (by call, by caller in a window, idempotent per
//! deal), and the calls report's cost, revenue, cost per target call and ROI.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use ringsource_collector::clock::ManualClock;
use ringsource_collector::config::Config;
use ringsource_collector::services::calls::CallsService;
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use ringsource_core::phone::PhoneNumber;
use serde_json::{Value, json};

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_800_000_000_000;
const TOKEN: &str = "admin-token-for-tests-0123";
const SERVER: &str = "admin_token = \"admin-token-for-tests-0123\"";
const POOL_SETTINGS: &str = "on_exhaustion = \"original\"";
const INSTAGRAM: &str = "+74957000011";

struct Money {
    h: Harness,
    sink: CallsService,
}

fn start_money(backend: Backend, test: &str, site_extra: &str) -> Option<Money> {
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock_on(backend, test, SERVER, site_extra, POOL_SETTINGS, clock.clone())?;
    let text = site_toml(&h.db, SERVER, site_extra, POOL_SETTINGS);
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap();
    let sink = CallsService::new(h.call_store(), &config.sites, clock);
    Some(Money { h, sink })
}

fn answered(id: &str, from: &str, to: &str, ring_s: i64, talk: u32) -> CallEvent {
    let ms = |s: i64| (T0 + s * 1000) as u64;
    CallEvent {
        pbx: "generic".into(),
        pbx_call_id: id.into(),
        phase: CallPhase::End,
        from: Some(from.into()),
        to: PhoneNumber::parse(to).unwrap(),
        started_at_ms: Some(ms(ring_s)),
        answered_at_ms: Some(ms(ring_s + 5)),
        ended_at_ms: Some(ms(ring_s + 5 + i64::from(talk))),
        duration_secs: Some(talk + 5),
        talk_secs: Some(talk),
        status: CallStatus::Answered,
        recording_url: None,
    }
}

impl Money {
    fn call(&self, e: CallEvent) -> i64 {
        self.sink.record("shop", &e).unwrap().call_id
    }

    fn send(&self, req: crate::common::http::RequestBuilder) -> (u16, Value) {
        let resp = req.bearer_auth(TOKEN).send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.h.client.post(self.h.url(path)).json(body))
    }

    fn post_csv(&self, path: &str, csv: &str) -> (u16, Value) {
        self.send(self.h.client.post(self.h.url(path)).header("content-type", "text/csv").body(csv.to_owned()))
    }

    fn report(&self, group_by: &str) -> Value {
        let path = format!("/v1/reports/calls?site=shop&group_by={group_by}&from=2027-01-15&to=2027-01-15");
        let (status, body) = self.send(self.h.client.get(self.h.url(&path)));
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn row<'a>(report: &'a Value, group: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == group)
        .unwrap_or_else(|| panic!("no group {group} in {report}"))
}

fn campaign_touch(source: &str, campaign: &str) -> Value {
    let mut t = paid();
    t["source"] = json!(source);
    t["campaign"] = json!(campaign);
    t
}

crate::on_both_backends! {
    costs_and_revenue_make_cost_per_target_call_and_roi => costs_and_revenue_make_cost_per_target_call_and_roi_on;
    uploads_are_refused_whole_with_every_bad_field_named => uploads_are_refused_whole_with_every_bad_field_named_on;
    linear_attribution_splits_revenue_like_calls => linear_attribution_splits_revenue_like_calls_on;
    amounts_beyond_the_bound_are_refused_and_sums_stay_finite => amounts_beyond_the_bound_are_refused_and_sums_stay_finite_on;
}

fn costs_and_revenue_make_cost_per_target_call_and_roi_on(backend: Backend) {
    let Some(m) = start_money(backend, "costs_and_revenue_make_cost_per_target_call_and_roi", "") else { return };
    let a = m.h.visit(None, campaign_touch("google", "brand"));
    let paid_call = m.call(answered("paid", "+79161112233", a["number"].as_str().unwrap(), 60, 90));
    let insta_call = m.call(answered("insta", "+79994445566", INSTAGRAM, 120, 40));

    let (status, body) = m.post_json(
        "/v1/costs",
        &json!([
            { "site": "shop", "date": "2027-01-15", "source": "google", "medium": "cpc", "campaign": "brand", "cost": 100 },
            { "site": "shop", "date": "2027-01-15", "source": "Yandex", "medium": "CPC", "cost": 50.5, "currency": "RUB" },
        ]),
    );
    assert_eq!((status, &body), (200, &json!({ "upserted": 2 })));

    // One bad line: every problem is named, and nothing is stored (the
    // first, valid line would have changed google's cost to 999).
    let bad = "date,source,medium,campaign,cost\n2027-01-15,google,cpc,brand,999\n2027-01-15,,cpc,,12\n2027-13-01,google,cpc,x,abc\n";
    let (status, body) = m.post_csv("/v1/costs?site=shop", bad);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_rows");
    let rows: Vec<(u64, &str)> = body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [(3, "source"), (4, "cost"), (4, "date")], "{body}");
    assert_eq!(row(&m.report("source"), "google")["cost"], 100.0);

    // The same key again replaces the day's number (case of source and
    // medium does not matter).
    let (status, body) =
        m.post_csv("/v1/costs?site=shop", "date,source,medium,campaign,cost\n2027-01-15,Google,CPC,brand,120\n");
    assert_eq!((status, &body), (200, &json!({ "upserted": 1 })));

    // Revenue: by call id, idempotent per deal; then by caller.
    let deal = json!({ "site": "shop", "call_id": paid_call, "amount": 1000, "deal_id": "D-1" });
    let (status, body) = m.post_json("/v1/revenue", &deal);
    assert_eq!((status, body["outcome"].as_str()), (201, Some("recorded")), "{body}");
    let (status, body) = m.post_json("/v1/revenue", &deal);
    assert_eq!((status, body["outcome"].as_str()), (200, Some("unchanged")), "{body}");
    let (status, body) =
        m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": paid_call, "amount": 1200, "deal_id": "D-1" }));
    assert_eq!((status, body["outcome"].as_str()), (200, Some("updated")), "{body}");

    let at = T0 + 3_600_000;
    let (status, body) = m.post_json(
        "/v1/revenue",
        &json!({ "site": "shop", "caller": "8 999 444-55-66", "at": at, "amount": 500, "deal_id": "D-2" }),
    );
    assert_eq!((status, body["call_id"].as_i64()), (201, Some(insta_call)), "national form finds the caller: {body}");
    // The window ends before the call: nothing to credit.
    let (status, body) = m.post_json(
        "/v1/revenue",
        &json!({ "site": "shop", "caller": "+79994445566", "at": "2027-01-15T07:00:00Z", "amount": 1 }),
    );
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("no_matching_call")), "{body}");
    let (status, body) = m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": 999_999, "amount": 1 }));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_call")), "{body}");
    let (status, _) =
        m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": paid_call, "caller": "+7999", "amount": 1 }));
    assert_eq!(status, 400, "call_id and caller together");
    let (status, _) = m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": paid_call, "amount": -5 }));
    assert_eq!(status, 400, "negative amount");

    let by_source = m.report("source");
    let google = row(&by_source, "google");
    assert_eq!(
        (&google["calls"], &google["target_calls"], &google["cost"], &google["revenue"]),
        (&json!(1.0), &json!(1.0), &json!(120.0), &json!(1200.0))
    );
    assert_eq!((&google["cost_per_target_call"], &google["roi"]), (&json!(120.0), &json!(9.0)));
    // Cost without calls is a row of its own.
    let yandex = row(&by_source, "yandex");
    assert_eq!((&yandex["calls"], &yandex["cost"], &yandex["roi"]), (&json!(0.0), &json!(50.5), &json!(-1.0)));
    assert_eq!(yandex["cost_per_target_call"], Value::Null, "no target calls");
    // A static number's calls carry its label as source; no cost, so no ROI.
    let insta = row(&by_source, "Instagram");
    assert_eq!((&insta["revenue"], &insta["cost"], &insta["roi"]), (&json!(500.0), &json!(0.0), &Value::Null));
    assert_eq!(by_source["totals"]["cost"], 170.5);
    assert_eq!(by_source["totals"]["revenue"], 1700.0);
    assert_eq!(by_source["demo_data"], false);

    // Channel: each cost row's source/medium through core's channel rules
    // (google/cpc and yandex/cpc are both paid search).
    let by_channel = m.report("channel");
    let paid_search = row(&by_channel, "Paid Search");
    assert_eq!((&paid_search["cost"], &paid_search["revenue"]), (&json!(170.5), &json!(1200.0)));

    let by_campaign = m.report("campaign");
    assert_eq!(row(&by_campaign, "brand")["cost"], 120.0);
    assert_eq!(row(&by_campaign, "(not set)")["cost"], 50.5, "a cost row without campaign");

    // Cost is not kept per keyword: the term report has none.
    let by_term = m.report("term");
    assert!(by_term["rows"].as_array().unwrap().iter().all(|r| r["cost"].is_null() && r["roi"].is_null()), "{by_term}");
    assert_eq!(by_term["totals"]["cost"], Value::Null);
}

fn uploads_are_refused_whole_with_every_bad_field_named_on(backend: Backend) {
    let Some(m) = start_money(backend, "uploads_are_refused_whole_with_every_bad_field_named", "") else { return };
    let (status, body) = m.post_json(
        "/v1/costs",
        &json!([
            { "site": "shop", "date": "2027-01-15", "source": "google", "cost": 1 },
            { "site": "nope", "date": "15.01.2027", "source": "google", "cost": "1", "currency": "rub" },
            { "site": "shop", "date": "2027-01-15", "source": "google", "cost": 2 },
        ]),
    );
    assert_eq!(status, 400, "{body}");
    let found: Vec<(u64, &str)> = body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [(1, "cost"), (1, "site"), (1, "date"), (1, "currency")], "{body}");

    // Two rows for one key in one upload are a mistake in the file.
    let (status, body) =
        m.post_csv("/v1/costs?site=shop", "date,source,cost\n2027-01-15,google,1\n2027-01-15,GOOGLE,2\n");
    assert_eq!((status, body["error"]["rows"][0]["line"].as_u64()), (400, Some(3)), "{body}");
    // Header problems: an unknown column, a missing one.
    let (status, body) = m.post_csv("/v1/costs?site=shop", "day,source,clicks\n2027-01-15,google,1\n");
    let fields: Vec<&str> =
        body["error"]["rows"].as_array().unwrap().iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!((status, fields), (400, vec!["day", "clicks", "date", "cost"]), "{body}");
    assert_eq!(m.post_csv("/v1/costs", "date,source,cost\n2027-01-15,google,1\n").0, 400, "CSV needs ?site=");
    assert_eq!(m.post_json("/v1/costs", &json!([])).0, 400, "no rows");
    assert_eq!(m.post_json("/v1/costs", &json!({"not": "an array"})).0, 400);

    // Nothing of the above was stored.
    assert_eq!(m.report("source")["rows"], json!([]));
    // And money needs the admin token.
    let resp = m.h.client.post(m.h.url("/v1/costs")).json(&json!([])).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = m.h.client.post(m.h.url("/v1/revenue")).json(&json!({})).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

fn linear_attribution_splits_revenue_like_calls_on(backend: Backend) {
    let Some(m) =
        start_money(backend, "linear_attribution_splits_revenue_like_calls", "attribution_model = \"linear\"")
    else {
        return;
    };
    let mut body = visit_body(None, paid());
    body["client_id"] = json!("111.222");
    let mut first = touch("Organic Search", "google", "organic");
    first["at_ms"] = json!(1_600_000_000_000u64);
    body["first_touch"] = first;
    let (status, v) = m.h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200, "{v}");
    let call = m.call(answered("lin", "+79161112233", v["number"].as_str().unwrap(), 30, 60));
    let (status, _) = m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": call, "amount": 300 }));
    assert_eq!(status, 201);
    m.post_json(
        "/v1/costs",
        &json!([{ "site": "shop", "date": "2027-01-15", "source": "google", "medium": "cpc", "cost": 50 }]),
    );

    let by_channel = m.report("channel");
    let paid = row(&by_channel, "Paid Search");
    let organic = row(&by_channel, "Organic Search");
    assert_eq!((&paid["calls"], &paid["revenue"]), (&json!(0.5), &json!(150.0)));
    assert_eq!((&organic["calls"], &organic["revenue"]), (&json!(0.5), &json!(150.0)));
    // google/cpc is paid search; organic search has no cost rows.
    assert_eq!((&paid["cost"], &paid["roi"]), (&json!(50.0), &json!(2.0)));
    assert_eq!((&organic["cost"], &organic["roi"]), (&json!(0.0), &Value::Null));
    assert_eq!(paid["cost_per_target_call"], 100.0, "half a target call");
}

/// Two revenues of 1.5e308 made the report's totals `null` (their sum is
/// infinite). Amounts are bounded on the way in, and rows stored before the
/// bound existed are read at the bound, so every sum stays a number.
fn amounts_beyond_the_bound_are_refused_and_sums_stay_finite_on(backend: Backend) {
    let Some(m) = start_money(backend, "amounts_beyond_the_bound_are_refused_and_sums_stay_finite", "") else { return };
    let a = m.h.visit(None, campaign_touch("google", "brand"));
    let call = m.call(answered("paid", "+79161112233", a["number"].as_str().unwrap(), 60, 90));
    let bound = ringsource_collector::http::money::MAX_AMOUNT;

    for amount in [json!(1.5e308), json!(bound * 1.5)] {
        let (status, body) = m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": call, "amount": amount }));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("bad request: amount "), "{body}");
    }
    // 1e400 is not a double at all: the JSON is refused as such.
    let raw = format!(r#"{{"site":"shop","call_id":{call},"amount":1e400}}"#);
    let (status, body) = m.send(m.h.client.post(m.h.url("/v1/revenue")).body(raw));
    assert_eq!(status, 400, "{body}");
    let (status, body) = m.post_json("/v1/revenue", &json!({ "site": "shop", "call_id": call, "amount": bound }));
    assert_eq!(status, 201, "the bound itself is an amount: {body}");

    let (status, body) = m.post_json(
        "/v1/costs",
        &json!([{ "site": "shop", "date": "2027-01-15", "source": "google", "cost": 1.5e308 }]),
    );
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_rows")), "{body}");
    assert_eq!(
        (body["error"]["rows"][0]["index"].as_u64(), body["error"]["rows"][0]["field"].as_str()),
        (Some(0), Some("cost"))
    );
    for cost in ["1e309", "inf", "NaN", "2e12"] {
        let (status, body) =
            m.post_csv("/v1/costs?site=shop", &format!("date,source,cost\n2027-01-15,google,{cost}\n"));
        assert_eq!(status, 400, "{cost}: {body}");
        assert_eq!(
            (body["error"]["rows"][0]["line"].as_u64(), body["error"]["rows"][0]["field"].as_str()),
            (Some(2), Some("cost")),
            "{body}"
        );
    }

    // Rows written before the bound (or by hand) hold amounts it refuses now.
    for deal in ["old-1", "old-2"] {
        m.h.rows(&format!(
            "INSERT INTO revenue (site_id, call_id, amount, deal_id, at_ms, received_at_ms)
             VALUES ('shop', {call}, 1.5e308, '{deal}', {T0}, {T0})"
        ));
    }
    for source in ["google", "bing"] {
        m.h.rows(&format!(
            "INSERT INTO costs (site_id, day, source, medium, campaign, cost, updated_at_ms)
             VALUES ('shop', '2027-01-15', '{source}', 'cpc', '', 1.5e308, {T0})"
        ));
    }
    for group_by in ["source", "channel", "campaign", "term"] {
        let report = m.report(group_by);
        for row in report["rows"].as_array().unwrap().iter().chain([&report["totals"]]) {
            assert!(row["revenue"].as_f64().is_some_and(f64::is_finite), "{group_by}: {row}");
            if group_by != "term" {
                assert!(row["cost"].as_f64().is_some_and(f64::is_finite), "{group_by}: {row}");
            }
        }
        // Each stored amount counts at most the bound: three deals on one call.
        assert_eq!(report["totals"]["revenue"], json!(3.0 * bound), "{group_by}");
    }
}
