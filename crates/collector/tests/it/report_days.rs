//! Report days on the site's clock, over HTTP against the real app, on
//! both backends: calls posted through the generic PBX webhook (signed), cost
//! and revenue through the money API, then the calls report, the call list
//! and its CSV, and the pools report. Every expectation is computed by hand
//! in the comments from the zone's rules:
//!
//! - Europe/Moscow is UTC+3 all year: its day D runs from D−1 21:00Z to
//!   D 21:00Z;
//! - America/New_York springs forward on 2027-03-14 at 02:00 EST (07:00Z),
//!   so that day runs 05:00Z..04:00Z next day (23 h), and falls back on
//!   2027-11-07 at 02:00 EDT (06:00Z), so that day runs 04:00Z..05:00Z next
//!   day (25 h).
//!
//! The site's static numbers name the source their cost is uploaded with:
//! Instagram's calls and cost meet in one row, and so do the billboard's.
//!
//! `a_bad_time_zone_or_static_source_is_named_in_the_config_errors` reads a
//! configuration and starts no server, so it runs once, on no backend.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ringsource_collector::clock::{Clock, ManualClock};
use ringsource_collector::config::Config;
use serde_json::{Value, json};

use crate::common::{Backend, Harness, start_with_toml_on};
use crate::pbx_support::{GENERIC_KEY, GENERIC_SECRET, b64, hmac_sha256};

const TOKEN: &str = "report-days-token-0123456789";
const INSTAGRAM: &str = "+74957000011";
const BILLBOARD: &str = "+74957000013";
const DIRECTORY: &str = "+74957000014";
const HOUR: i64 = 3_600_000;

struct Site {
    h: Harness,
    clock: Arc<ManualClock>,
}

/// The site in `time_zone` on a fresh database of `backend`, its Instagram
/// number reported under `instagram_source`; `None` without PostgreSQL.
fn start(backend: Backend, test: &str, time_zone: &str, instagram_source: &str) -> Option<Site> {
    let clock = Arc::new(ManualClock::new(0));
    let h = start_with_toml_on(
        backend,
        test,
        |db| site_toml(db, time_zone, instagram_source),
        Arc::clone(&clock) as Arc<dyn Clock>,
    )?;
    Some(Site { h, clock })
}

/// What the Instagram number's calls are reported under.
const INSTAGRAM_SOURCE: &str = "source = \"Instagram\"\nmedium = \"social\"\ncampaign = \"stories\"";

fn site_toml(db: &Path, time_zone: &str, instagram_source: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
database = "{db}"
admin_token = "{TOKEN}"
wal_preallocate_mib = 1

[[sites]]
id = "shop"
region = "RU"
time_zone = "{time_zone}"
originals = ["+7 495 123-45-67"]
pbx_secrets = {{ generic = "{GENERIC_SECRET}" }}

[[sites.static_numbers]]
number = "{INSTAGRAM}"
label = "Instagram bio"
rule = {{ utm_source = "instagram" }}
{instagram_source}

[[sites.static_numbers]]
number = "{BILLBOARD}"
label = "Billboard on the ring road"
source = "billboard"
medium = "offline"

# No source: its label stands in, as before sources could be configured.
[[sites.static_numbers]]
number = "{DIRECTORY}"
label = "Directory"

[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02"]
rules = [{{ channel = "Paid Search" }}]
on_exhaustion = "original"
"#,
        db = db.display()
    )
}

/// `2027-01-15T21:30:00Z` in Unix ms.
fn utc(text: &str) -> i64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn rfc3339(ms: i64) -> String {
    ringsource_collector::dates::format_ms(ms)
}

impl Site {
    /// A finished call, reported by the PBX right after it ended. `talk`
    /// `None` is a call nobody answered.
    fn call(&self, id: &str, from: &str, to: &str, ring_ms: i64, talk: Option<u32>) {
        let ended_ms = ring_ms + 5_000 + i64::from(talk.unwrap_or(20)) * 1000;
        self.clock.set_ms(ended_ms);
        let body = json!({
            "call_id": id,
            "from": from,
            "to": to,
            "started_at": rfc3339(ring_ms),
            "answered_at": talk.map(|_| rfc3339(ring_ms + 5_000)),
            "ended_at": rfc3339(ended_ms),
            "duration": (ended_ms - ring_ms) / 1000,
            "talk_time": talk,
            "status": if talk.is_some() { "answered" } else { "no-answer" },
            "phase": "end"
        })
        .to_string();
        let ts = ended_ms / 1000;
        let sig = b64(&hmac_sha256(GENERIC_KEY, format!("{id}.{ts}.{body}").as_bytes()));
        let resp = self
            .h
            .client
            .post(self.h.url("/v1/sites/shop/pbx/generic"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", format!("v1,{sig}"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap());
    }

    fn send(&self, req: crate::common::http::RequestBuilder) -> (u16, Value) {
        let resp = req.bearer_auth(TOKEN).send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let (status, body) = self.send(self.h.client.post(self.h.url(path)).json(body));
        assert!(status == 200 || status == 201, "{path}: {status} {body}");
        body
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(self.h.client.get(self.h.url(path)));
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    fn report(&self, group_by: &str, from: &str, to: &str) -> Value {
        self.get(&format!("/v1/reports/calls?site=shop&group_by={group_by}&from={from}&to={to}"))
    }

    fn costs(&self, rows: &[(&str, &str, &str, &str, f64)]) {
        let rows: Vec<Value> = rows
            .iter()
            .map(|(date, source, medium, campaign, cost)| {
                json!({ "site": "shop", "date": date, "source": source, "medium": medium, "campaign": campaign, "cost": cost })
            })
            .collect();
        self.post("/v1/costs", &Value::from(rows));
    }
}

/// The calls CSV of `from..=to`, as the admin downloads it.
fn csv(s: &Site, from: &str, to: &str) -> String {
    let url = s.h.url(&format!("/v1/calls.csv?site=shop&from={from}&to={to}"));
    let resp = s.h.client.get(url).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().unwrap()
}

/// The rows as `(day, group, calls, target, missed, revenue, cost, cost per
/// target call, roi)`, in the report's order (day, then group).
type Row = (String, String, f64, f64, f64, f64, Option<f64>, Option<f64>, Option<f64>);

fn rows(report: &Value) -> Vec<Row> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_f64().unwrap();
            (
                r["day"].as_str().unwrap().to_owned(),
                r["group"].as_str().unwrap().to_owned(),
                f("calls"),
                f("target_calls"),
                f("missed_calls"),
                f("revenue"),
                r["cost"].as_f64(),
                r["cost_per_target_call"].as_f64(),
                r["roi"].as_f64(),
            )
        })
        .collect()
}

fn row(
    day: &str,
    group: &str,
    counts: (f64, f64, f64),
    revenue: f64,
    cost: f64,
    cpt: Option<f64>,
    roi: Option<f64>,
) -> Row {
    (day.into(), group.into(), counts.0, counts.1, counts.2, revenue, Some(cost), cpt, roi)
}

crate::on_both_backends! {
    moscow_days_cut_at_moscow_midnight_and_static_numbers_meet_their_cost
        => moscow_days_cut_at_moscow_midnight_and_static_numbers_meet_their_cost_on;
    new_york_days_follow_daylight_saving => new_york_days_follow_daylight_saving_on;
    configuring_a_static_numbers_source_moves_its_earlier_calls_to_its_cost
        => configuring_a_static_numbers_source_moves_its_earlier_calls_to_its_cost_on;
    a_days_costs_add_up_to_the_nearest_double => a_days_costs_add_up_to_the_nearest_double_on;
}

fn moscow_days_cut_at_moscow_midnight_and_static_numbers_meet_their_cost_on(backend: Backend) {
    let test = "moscow_days_cut_at_moscow_midnight_and_static_numbers_meet_their_cost";
    let Some(s) = start(backend, test, "Europe/Moscow", INSTAGRAM_SOURCE) else { return };
    // 23:30 MSK on the 15th, and an hour later 00:30 MSK on the 16th (still
    // the 15th in UTC).
    s.call("c1", "+79160000001", INSTAGRAM, utc("2027-01-15T20:30:00Z"), Some(45));
    s.call("c2", "+79160000002", INSTAGRAM, utc("2027-01-15T21:30:00Z"), Some(20));
    // The last second of the 16th and the first instant of the 17th.
    s.call("c3", "+79160000003", BILLBOARD, utc("2027-01-16T20:59:59Z"), Some(100));
    s.call("c4", "+79160000004", BILLBOARD, utc("2027-01-16T21:00:00Z"), None);
    // 01:00 MSK on the 15th, the 14th in UTC.
    s.call("c5", "+79160000005", DIRECTORY, utc("2027-01-14T22:00:00Z"), Some(40));
    // Cost uploaded per Moscow day, in the ad platform's spelling.
    s.costs(&[
        ("2027-01-14", "instagram", "social", "stories", 100.0),
        ("2027-01-15", "Instagram", "Social", "stories", 300.0),
        ("2027-01-16", "instagram", "social", "stories", 400.0),
        ("2027-01-16", "billboard", "offline", "", 1500.0),
        ("2027-01-17", "billboard", "offline", "", 1500.0),
    ]);
    // The deal of c2, posted by the caller's number.
    s.post(
        "/v1/revenue",
        &json!({ "site": "shop", "caller": "+79160000002", "at": utc("2027-01-18T10:00:00Z"), "amount": 2000 }),
    );

    let by_source = s.report("source", "2027-01-15", "2027-01-16");
    assert_eq!(by_source["time_zone"], "Europe/Moscow");
    // [2027-01-14T21:00Z, 2027-01-16T21:00Z).
    assert_eq!(by_source["from_ms"], utc("2027-01-14T21:00:00Z"));
    assert_eq!(by_source["to_ms"], utc("2027-01-16T21:00:00Z"));
    // c5 on the 15th (label as source); c1 on the 15th with 300 of cost:
    // 300 per target call, ROI (0 − 300)/300 = −1; c2 on the 16th with its
    // 2000 of revenue against 400: ROI (2000 − 400)/400 = 4, no target call
    // (20 s of talk < 30 s); c3 on the 16th with the billboard's 1500. c4
    // rang on the 17th, outside; so did the cost of the 14th and the 17th.
    assert_eq!(
        rows(&by_source),
        [
            row("2027-01-15", "Directory", (1.0, 1.0, 0.0), 0.0, 0.0, Some(0.0), None),
            row("2027-01-15", "instagram", (1.0, 1.0, 0.0), 0.0, 300.0, Some(300.0), Some(-1.0)),
            row("2027-01-16", "billboard", (1.0, 1.0, 0.0), 0.0, 1500.0, Some(1500.0), Some(-1.0)),
            row("2027-01-16", "instagram", (1.0, 0.0, 0.0), 2000.0, 400.0, None, Some(4.0)),
        ]
    );
    let totals = &by_source["totals"];
    assert_eq!(
        (&totals["calls"], &totals["target_calls"], &totals["revenue"]),
        (&json!(4.0), &json!(3.0), &json!(2000.0))
    );
    assert_eq!(totals["cost"], 2200.0);
    assert!((totals["roi"].as_f64().unwrap() - (2000.0 - 2200.0) / 2200.0).abs() < 1e-12, "{totals}");

    // A range in ms inside a day counts the calls inside it alone: the last
    // second of the 16th holds c3 (c4 rang at its end, excluded), on the
    // 16th, and no day's cost (no midnight falls inside it).
    let c3_at = utc("2027-01-16T20:59:59Z");
    assert_eq!(
        rows(&s.report("source", &c3_at.to_string(), &(c3_at + 1000).to_string())),
        [row("2027-01-16", "billboard", (1.0, 1.0, 0.0), 0.0, 0.0, Some(0.0), None)]
    );

    // The 17th alone: the missed c4 and that day's rent.
    assert_eq!(
        rows(&s.report("source", "2027-01-17", "2027-01-17")),
        [row("2027-01-17", "billboard", (1.0, 0.0, 1.0), 0.0, 1500.0, None, Some(-1.0))]
    );

    // By channel: instagram/social is Organic Social for calls and cost
    // alike; the billboard's calls and rent are Offline (a number without a
    // rule), and so is the directory's call.
    assert_eq!(
        rows(&s.report("channel", "2027-01-15", "2027-01-16")),
        [
            row("2027-01-15", "Offline", (1.0, 1.0, 0.0), 0.0, 0.0, Some(0.0), None),
            row("2027-01-15", "Organic Social", (1.0, 1.0, 0.0), 0.0, 300.0, Some(300.0), Some(-1.0)),
            row("2027-01-16", "Offline", (1.0, 1.0, 0.0), 0.0, 1500.0, Some(1500.0), Some(-1.0)),
            row("2027-01-16", "Organic Social", (1.0, 0.0, 0.0), 2000.0, 400.0, None, Some(4.0)),
        ]
    );
    // By campaign: "stories" meets its cost; the billboard's cost has no
    // campaign, nor have its calls: both "(not set)", like the directory's.
    assert_eq!(
        rows(&s.report("campaign", "2027-01-15", "2027-01-16")),
        [
            row("2027-01-15", "(not set)", (1.0, 1.0, 0.0), 0.0, 0.0, Some(0.0), None),
            row("2027-01-15", "stories", (1.0, 1.0, 0.0), 0.0, 300.0, Some(300.0), Some(-1.0)),
            row("2027-01-16", "(not set)", (1.0, 1.0, 0.0), 0.0, 1500.0, Some(1500.0), Some(-1.0)),
            row("2027-01-16", "stories", (1.0, 0.0, 0.0), 2000.0, 400.0, None, Some(4.0)),
        ]
    );

    // The call list's days are Moscow's too: the 16th holds c2 and c3, and
    // the CSV writes ring times on Moscow's clock.
    let list = s.get("/v1/calls?site=shop&from=2027-01-16&to=2027-01-16");
    assert_eq!(list["time_zone"], "Europe/Moscow");
    let ids: Vec<&str> = list["calls"].as_array().unwrap().iter().map(|c| c["pbx_call_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c3", "c2"]);
    let c2 = &list["calls"][1];
    assert_eq!(
        (&c2["channel"], &c2["source"], &c2["medium"], &c2["campaign"]),
        (&json!("Organic Social"), &json!("instagram"), &json!("social"), &json!("stories"))
    );
    assert_eq!(c2["static_label"], "Instagram bio");
    let csv = csv(&s, "2027-01-16", "2027-01-16");
    assert!(csv.contains(",2027-01-16T23:59:59.000+03:00,"), "{csv}");
    assert!(csv.contains(",2027-01-16T00:30:00.000+03:00,"), "{csv}");

    // The pools report's hours start on Moscow's hours too.
    let pools = s.get("/v1/reports/pools?site=shop&from=2027-01-16&to=2027-01-16");
    let hours = pools["pools"][0]["hours"].as_array().unwrap();
    assert_eq!((pools["time_zone"].as_str(), hours.len()), (Some("Europe/Moscow"), 24));
    assert_eq!(hours[0]["hour_ms"], utc("2027-01-15T21:00:00Z"));
}

fn new_york_days_follow_daylight_saving_on(backend: Backend) {
    let Some(s) = start(backend, "new_york_days_follow_daylight_saving", "America/New_York", INSTAGRAM_SOURCE) else {
        return;
    };
    // Around the spring-forward day 2027-03-14 (05:00Z..04:00Z next day).
    s.call("n1", "+79160000011", INSTAGRAM, utc("2027-03-14T04:59:59Z"), Some(60)); // 23:59:59 EST, the 13th
    s.call("n2", "+79160000012", INSTAGRAM, utc("2027-03-14T05:00:00Z"), Some(60)); // 00:00 EST, the 14th
    s.call("n3", "+79160000013", INSTAGRAM, utc("2027-03-15T03:59:59Z"), Some(10)); // 23:59:59 EDT, the 14th
    s.call("n4", "+79160000014", INSTAGRAM, utc("2027-03-15T04:00:00Z"), Some(60)); // 00:00 EDT, the 15th
    // The fall-back day 2027-11-07 (04:00Z..05:00Z next day): 23:30 EST is
    // 04:30Z on the 8th, still the 7th in New York.
    s.call("n5", "+79160000015", BILLBOARD, utc("2027-11-08T04:30:00Z"), Some(60));
    s.call("n6", "+79160000016", BILLBOARD, utc("2027-11-08T05:00:00Z"), Some(60)); // 00:00 EST, the 8th
    s.costs(&[
        ("2027-03-13", "instagram", "social", "stories", 10.0),
        ("2027-03-14", "instagram", "social", "stories", 20.0),
        ("2027-03-15", "instagram", "social", "stories", 40.0),
        ("2027-11-07", "billboard", "offline", "", 50.0),
    ]);

    let spring = s.report("source", "2027-03-14", "2027-03-14");
    assert_eq!(spring["time_zone"], "America/New_York");
    assert_eq!(
        (spring["from_ms"].as_i64(), spring["to_ms"].as_i64()),
        (Some(utc("2027-03-14T05:00:00Z")), Some(utc("2027-03-15T04:00:00Z")))
    );
    assert_eq!(spring["to_ms"].as_i64().unwrap() - spring["from_ms"].as_i64().unwrap(), 23 * HOUR);
    // n2 and n3 (n3 only 10 s: one target call); the 14th's 20 of cost.
    assert_eq!(rows(&spring), [row("2027-03-14", "instagram", (2.0, 1.0, 0.0), 0.0, 20.0, Some(20.0), Some(-1.0))]);

    // Three days: each call on its own day, each cost on its own.
    assert_eq!(
        rows(&s.report("source", "2027-03-13", "2027-03-15")),
        [
            row("2027-03-13", "instagram", (1.0, 1.0, 0.0), 0.0, 10.0, Some(10.0), Some(-1.0)),
            row("2027-03-14", "instagram", (2.0, 1.0, 0.0), 0.0, 20.0, Some(20.0), Some(-1.0)),
            row("2027-03-15", "instagram", (1.0, 1.0, 0.0), 0.0, 40.0, Some(40.0), Some(-1.0)),
        ]
    );

    let fall = s.report("source", "2027-11-07", "2027-11-07");
    assert_eq!(fall["to_ms"].as_i64().unwrap() - fall["from_ms"].as_i64().unwrap(), 25 * HOUR);
    assert_eq!(rows(&fall), [row("2027-11-07", "billboard", (1.0, 1.0, 0.0), 0.0, 50.0, Some(50.0), Some(-1.0))]);

    // A range given in Unix ms cuts where it says; days are still New York's.
    let ms_range = s.get(&format!(
        "/v1/reports/calls?site=shop&group_by=source&from={}&to={}",
        utc("2027-03-15T03:00:00Z"),
        utc("2027-03-15T05:00:00Z")
    ));
    // n3 (the 14th) and n4 (the 15th); the 15th's cost counts (its midnight,
    // 04:00Z, is inside), the 14th's does not (its midnight is before).
    assert_eq!(
        rows(&ms_range),
        [
            row("2027-03-14", "instagram", (1.0, 0.0, 0.0), 0.0, 0.0, None, None),
            row("2027-03-15", "instagram", (1.0, 1.0, 0.0), 0.0, 40.0, Some(40.0), Some(-1.0)),
        ]
    );

    let list = s.get("/v1/calls?site=shop&from=2027-03-14&to=2027-03-14");
    let ids: Vec<&str> = list["calls"].as_array().unwrap().iter().map(|c| c["pbx_call_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["n3", "n2"]);
    let csv = csv(&s, "2027-03-14", "2027-03-14");
    assert!(
        csv.contains(",2027-03-14T00:00:00.000-05:00,") && csv.contains(",2027-03-14T23:59:59.000-04:00,"),
        "{csv}"
    );

    // The pools report over the spring-forward day has its 23 hours.
    let pools = s.get("/v1/reports/pools?site=shop&from=2027-03-14&to=2027-03-14");
    assert_eq!(pools["pools"][0]["hours"].as_array().unwrap().len(), 23);
}

/// Nine campaigns' cost on one day: 0.1 + 0.2 + 0.3 + 1e11 + 1 + 0.7 + 3.3 +
/// 1e-9 + 0.1 is 100000000005.700000001. Doubles near 1e11 are 2^-16 apart,
/// so the nearest one is the double written 100000000005.7; adding them one
/// by one in plain floating point ends one step off, at 100000000005.70001,
/// which is what PostgreSQL's SUM over double precision gave. Every grouping
/// of the day's cost says the nearest.
fn a_days_costs_add_up_to_the_nearest_double_on(backend: Backend) {
    let Some(s) = start(backend, "a_days_costs_add_up_to_the_nearest_double", "UTC", INSTAGRAM_SOURCE) else { return };
    let costs = [0.1, 0.2, 0.3, 1e11, 1.0, 0.7, 3.3, 1e-9, 0.1];
    let campaigns: Vec<String> = (0..costs.len()).map(|i| format!("c{i}")).collect();
    let day_costs: Vec<(&str, &str, &str, &str, f64)> =
        campaigns.iter().zip(costs).map(|(c, cost)| ("2027-01-16", "google", "cpc", c.as_str(), cost)).collect();
    s.costs(&day_costs);
    for (group_by, group) in [("source", "google"), ("medium", "cpc"), ("channel", "Paid Search")] {
        assert_eq!(
            rows(&s.report(group_by, "2027-01-16", "2027-01-16")),
            [row("2027-01-16", group, (0.0, 0.0, 0.0), 0.0, 100_000_000_005.7, None, Some(-1.0))],
            "{group_by}"
        );
    }
}

#[test]
fn a_bad_time_zone_or_static_source_is_named_in_the_config_errors() {
    let text = r#"
[[sites]]
id = "shop"
time_zone = "Europe/Moskow"
originals = ["+7 495 123-45-67"]

[[sites.static_numbers]]
number = "+7 495 700-00-11"
label = "Instagram"
medium = "social"

[[sites.static_numbers]]
number = "+7 495 700-00-12"
label = "Billboard"
source = "billboard"
medium = "offline"

[[sites.static_numbers]]
number = "+7 495 700-00-13"
label = "Billboard by the station"
rule = { channel = "Display" }
source = "Billboard"
medium = "Offline"

[[sites.static_numbers]]
number = "+7 495 700-00-14"
label = "Flyer"
source = "  "
"#;
    let err = Config::from_toml_str(text, Path::new("bad.toml"), &HashMap::<String, String>::new()).unwrap_err();
    let got: Vec<(&str, &str)> = err.issues.iter().map(|i| (i.path.as_str(), i.reason.as_str())).collect();
    let paths: Vec<&str> = got.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        paths,
        [
            "sites[0].time_zone",
            "sites[0].static_numbers[0].medium",
            "sites[0].static_numbers[2].source",
            "sites[0].static_numbers[3].source",
        ],
        "{got:#?}"
    );
    assert!(got[0].1.starts_with("\"Europe/Moskow\" is not an IANA time zone name"), "{}", got[0].1);
    assert!(got[1].1.contains("needs `source`"), "{}", got[1].1);
    // Two numbers for one source and medium in two channels: its cost rows
    // could meet only one of them.
    assert!(
        got[2].1.contains("sites[0].static_numbers[1]")
            && got[2].1.contains("\"Offline\"")
            && got[2].1.contains("\"Display\""),
        "{}",
        got[2].1
    );
    assert!(got[3].1.contains("must not be empty"), "{}", got[3].1);
}

fn configuring_a_static_numbers_source_moves_its_earlier_calls_to_its_cost_on(backend: Backend) {
    // First without a source: the call is the label's, the cost a row of
    // its own that looks like money spent for nothing.
    let test = "configuring_a_static_numbers_source_moves_its_earlier_calls_to_its_cost";
    let Some(mut s) = start(backend, test, "UTC", "") else { return };
    s.call("i1", "+79160000021", INSTAGRAM, utc("2027-01-15T12:00:00Z"), Some(60));
    s.costs(&[("2027-01-15", "instagram", "social", "stories", 300.0)]);
    assert_eq!(
        rows(&s.report("source", "2027-01-15", "2027-01-15")),
        [
            row("2027-01-15", "Instagram bio", (1.0, 1.0, 0.0), 0.0, 0.0, Some(0.0), None),
            row("2027-01-15", "instagram", (0.0, 0.0, 0.0), 0.0, 300.0, None, Some(-1.0)),
        ]
    );
    // The source configured, the collector restarted on the same database:
    // the earlier call is now in the row of its cost.
    let clock = Arc::clone(&s.clock) as Arc<dyn Clock>;
    s.h.restart_with_toml(|db| site_toml(db, "UTC", INSTAGRAM_SOURCE), clock);
    assert_eq!(
        rows(&s.report("source", "2027-01-15", "2027-01-15")),
        [row("2027-01-15", "instagram", (1.0, 1.0, 0.0), 0.0, 300.0, Some(300.0), Some(-1.0))]
    );
    let call = &s.get("/v1/calls?site=shop")["calls"][0];
    assert_eq!(
        (&call["channel"], &call["source"], &call["campaign"]),
        (&json!("Organic Social"), &json!("instagram"), &json!("stories"))
    );
}
