//! `GET /v1/reports/pools` over HTTP: leases taken through the visits API on
//! a simulated clock, then the hourly health the dashboard shows.

use std::sync::Arc;

use crate::common::*;
use ringsource_collector::clock::ManualClock;
use serde_json::Value;

/// On the hour (1_800_000_000_000 / 3_600_000 = 500_000).
const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;
const TOKEN: &str = "pools-report-token-0123456789";

fn start_clocked(backend: Backend, test: &str) -> Option<(Harness, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock_on(
        backend,
        test,
        &format!("admin_token = \"{TOKEN}\""),
        "",
        "hold_secs = 900",
        clock.clone(),
    )?;
    Some((h, clock))
}

fn get(h: &Harness, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = h.client.get(h.url(&format!("/v1/reports/pools{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

fn report(h: &Harness, query: &str) -> Value {
    let (status, body) = get(h, query, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    body
}

crate::on_both_backends! {
    hourly_utilisation_exhaustions_new_sessions_and_recommended_size => hourly_utilisation_exhaustions_new_sessions_and_recommended_size_on;
    from_is_rounded_down_to_the_hour_and_defaults_cover_a_week => from_is_rounded_down_to_the_hour_and_defaults_cover_a_week_on;
    admin_token_and_bad_parameters => admin_token_and_bad_parameters_on;
}

fn hourly_utilisation_exhaustions_new_sessions_and_recommended_size_on(backend: Backend) {
    let Some((h, clock)) = start_clocked(backend, "hourly_utilisation_exhaustions_new_sessions_and_recommended_size")
    else {
        return;
    };
    // Hour 0: three visitors fill the pool of three, a fourth overflows.
    clock.set_ms(T0 + 10 * 60_000);
    let a = h.visit(None, paid());
    h.visit(None, paid());
    h.visit(None, paid());
    let d = h.visit(None, paid());
    assert_eq!(d["number"], OVERFLOW, "{d}");
    // The first visitor comes back within the hour: not a new session.
    clock.set_ms(T0 + 12 * 60_000);
    let again = h.visit(a["session_id"].as_str(), paid());
    assert_eq!(again["number"], a["number"]);
    // Hour 1: the hour-0 leases have expired (hold 15 min); one new visitor.
    clock.set_ms(T0 + HOUR + 5 * 60_000);
    let e = h.visit(None, paid());
    assert_eq!(e["kind"], "lease", "{e}");

    let body = report(&h, &format!("?site=shop&from={T0}&to={}", T0 + 2 * HOUR));
    assert_eq!(body["interval"], "hour");
    assert_eq!(body["warning_utilisation"], 0.75);
    let pools = body["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1, "{body}");
    let p = &pools[0];
    assert_eq!(p["pool_id"], "paid");
    assert_eq!(p["size"], 3);
    assert_eq!(p["hold_secs"], 900);
    assert_eq!(p["on_exhaustion"], "overflow");
    let hours = p["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 2, "{p}");
    assert_eq!(hours[0]["hour_ms"], T0);
    assert_eq!(
        (&hours[0]["max_live"], &hours[0]["utilisation"], &hours[0]["new_sessions"], &hours[0]["exhaustions"]),
        (&3.into(), &1.0.into(), &4.into(), &1.into()),
        "{}",
        hours[0]
    );
    assert_eq!(hours[1]["hour_ms"], T0 + HOUR);
    assert_eq!(
        (&hours[1]["max_live"], &hours[1]["new_sessions"], &hours[1]["exhaustions"]),
        (&1.into(), &1.into(), &0.into())
    );
    assert!((hours[1]["utilisation"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(p["peak_live"], 3);
    assert_eq!(p["peak_utilisation"], 1.0);
    assert_eq!(p["peak_new_sessions_per_hour"], 4);
    // Busy = live or cooling down (10 min by default): the hour-0 leases
    // end at +25 and +27 min and cool down until +35 and +37, inside hour 0.
    assert_eq!((&hours[0]["max_busy"], &hours[1]["max_busy"], &p["peak_busy"]), (&3.into(), &1.into(), &3.into()));
    // The sizing inputs: four leases started in the window, one renewed
    // 2 min past its hold (the visitor came back at +12 min), so 30 s on
    // average; a session keeps a number 30 s + 15 min + 10 min = 1530 s;
    // 4 per hour × 1530 / 3600 = 1.7 numbers busy at the peak; × 1.3 =
    // 2.21 → 3. The hold alone would have said 4 × 15/60 × 1.3 = 1.3 → 2.
    let sizing = &p["sizing"];
    assert_eq!(
        (
            &sizing["peak_new_sessions_per_hour"],
            &sizing["hold_secs"],
            &sizing["cooldown_secs"],
            &sizing["leases_measured"],
            &sizing["mean_renewed_secs"],
            &sizing["occupancy_secs"],
            &sizing["margin"],
        ),
        (&4.into(), &900.into(), &600.into(), &4.into(), &30.0.into(), &1530.0.into(), &1.3.into()),
        "{sizing}"
    );
    assert!((sizing["busy_at_peak"].as_f64().unwrap() - 1.7).abs() < 1e-9, "{sizing}");
    assert_eq!((&sizing["recommended_size"], &p["recommended_size"]), (&3.into(), &3.into()));
    assert_eq!(p["warning"], true);
    assert_eq!(p["live_now"], 1);
    assert_eq!(p["exhaustion_count"], 1);
    let ex = &p["exhaustions"][0];
    assert_eq!(
        (&ex["policy"], &ex["outcome"], &ex["number"]),
        (&"overflow".into(), &"overflow".into(), &OVERFLOW.into())
    );
    assert_eq!(ex["at_ms"], T0 + 10 * 60_000);

    // The second hour alone: one lease in three, under the warning line.
    let body = report(&h, &format!("?site=shop&from={}&to={}", T0 + HOUR, T0 + 2 * HOUR));
    let p = &body["pools"][0];
    assert_eq!((&p["peak_live"], &p["warning"], &p["exhaustion_count"]), (&1.into(), &false.into(), &0.into()), "{p}");
    // 1 per hour × (0 + 15 + 10) min ÷ 60 × 1.3 = 0.54 → 1.
    assert_eq!((&p["recommended_size"], &p["sizing"]["mean_renewed_secs"]), (&1.into(), &0.0.into()));
}

fn from_is_rounded_down_to_the_hour_and_defaults_cover_a_week_on(backend: Backend) {
    let Some((h, clock)) = start_clocked(backend, "from_is_rounded_down_to_the_hour_and_defaults_cover_a_week") else {
        return;
    };
    clock.set_ms(T0 + 30 * 60_000);
    h.visit(None, paid());
    let body = report(&h, &format!("?site=shop&from={}&to={}", T0 + 20 * 60_000, T0 + HOUR));
    let hours = body["pools"][0]["hours"].as_array().unwrap();
    assert_eq!((hours.len(), &hours[0]["hour_ms"], &hours[0]["max_live"]), (1, &T0.into(), &1.into()));

    let body = report(&h, "?site=shop");
    assert_eq!(body["to_ms"], T0 + 30 * 60_000);
    assert_eq!(body["from_ms"], T0 + 30 * 60_000 - 7 * 24 * HOUR);
    assert_eq!(body["pools"][0]["hours"].as_array().unwrap().len(), 7 * 24 + 1);
    assert_eq!(body["pools"][0]["live_now"], 1);
}

fn admin_token_and_bad_parameters_on(backend: Backend) {
    let Some((h, _clock)) = start_clocked(backend, "admin_token_and_bad_parameters") else { return };
    let (status, body) = get(&h, "?site=shop", None);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    let (status, _) = get(&h, "?site=shop", Some("wrong-token-but-long-enough"));
    assert_eq!(status, 401);
    for (query, status, code) in [
        ("", 400, "bad_request"),
        ("?site=nope", 404, "unknown_site"),
        ("?site=shop&from=yesterday", 400, "bad_request"),
        ("?site=shop&from=2027-01-02&to=2027-01-01", 400, "bad_request"),
        ("?site=shop&from=2026-01-01&to=2026-12-31", 400, "bad_request"),
        ("?site=shop&pool=paid", 400, "bad_request"),
    ] {
        let (got, body) = get(&h, query, Some(TOKEN));
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{query}: {body}");
    }
    // Dates work as in the calls report.
    let body = report(&h, "?site=shop&from=2027-01-01&to=2027-01-01");
    assert_eq!(body["pools"][0]["hours"].as_array().unwrap().len(), 24);
}

#[test]
fn refusals_are_counted_per_minute_and_sessions_are_new_once() {
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock(
        &format!("admin_token = \"{TOKEN}\"\n[server.rate_limit]\nburst = 1000\nper_minute = 1000"),
        "",
        "hold_secs = 900",
        clock.clone(),
    );
    clock.set_ms(T0 + 5 * 60_000);
    for _ in 0..3 {
        assert_eq!(h.visit(None, paid())["kind"], "lease");
    }
    // Forty refusals within one minute, and one visitor among them who comes
    // back a minute later and is refused again.
    let mut refused = Vec::new();
    for i in 0..40 {
        clock.set_ms(T0 + 6 * 60_000 + i * 1000);
        let v = h.visit(None, paid());
        assert_eq!(v["number"], OVERFLOW);
        refused.push(v["session_id"].as_str().unwrap().to_owned());
    }
    clock.set_ms(T0 + 7 * 60_000 + 30_000);
    assert_eq!(h.visit(Some(&refused[0]), paid())["number"], OVERFLOW);

    let rows = h.scalar("SELECT COUNT(*) FROM pool_exhaustions");
    assert_eq!(rows, 2, "one row per minute, not per visit");

    let p = &report(&h, &format!("?site=shop&from={T0}&to={}", T0 + HOUR))["pools"][0];
    assert_eq!((&p["exhaustion_count"], &p["over_share_count"]), (&41.into(), &0.into()), "{p}");
    let listed = p["exhaustions"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{p}");
    assert_eq!(
        (&listed[0]["at_ms"], &listed[0]["last_at_ms"], &listed[0]["count"], &listed[0]["reason"]),
        (&(T0 + 6 * 60_000).into(), &(T0 + 6 * 60_000 + 39_000).into(), &40.into(), &"exhausted".into())
    );
    assert_eq!((&listed[1]["count"], &listed[1]["number"]), (&1.into(), &OVERFLOW.into()));
    // 3 leases and 40 refused sessions asked for the first time; the
    // returning one is not new.
    assert_eq!((&p["hours"][0]["new_sessions"], &p["hours"][0]["exhaustions"]), (&43.into(), &41.into()));
}
