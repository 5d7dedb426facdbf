//! Privacy end to end: retention in the running collector and from
//! `ringsource retention`, erasure and export over the admin API and the
//! CLI, and backups taken while visits are written, restored by the CLI.
//! Visits and calls go through the real HTTP routes (calls as signed
//! generic PBX webhooks).
//!
//! Retention, erasure and export run on both backends (`name::sqlite`,
//! `name::postgres`), reading the database through the harness. Two tests
//! run once: `retention_settings_are_checked` parses configurations and
//! reaches no store, and `backup_while_serving_then_restore_after_stopping`
//! is SQLite's own machinery (`ringsource backup` and `restore` copy the
//! file and refuse a PostgreSQL configuration, which `pg_dump` serves).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::pbx_support::{GENERIC_KEY, GENERIC_SECRET, b64, hmac_sha256};
use ringsource_collector::clock::{Clock, ManualClock, SystemClock};
use ringsource_collector::config::Config;
use ringsource_collector::server::{self, Spawned};
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000_000;
const DAY_MS: i64 = 86_400_000;
const TOKEN: &str = "privacy-admin-token-0123456789";
const POOL_SETTINGS: &str = "hold_secs = 60\nheartbeat_secs = 10\ncooldown_secs = 600\non_exhaustion = \"original\"";
/// The caller whose data the tests erase and export, and another one.
const CALLER: &str = "+79161234567";
const OTHER: &str = "+79035550011";

fn server_extra(retention_interval_secs: u64) -> String {
    format!("admin_token = \"{TOKEN}\"\nretention_interval_secs = {retention_interval_secs}")
}

/// The generic PBX on, a short uniqueness window (so callers may be masked
/// soon), then `tail`: table sections such as `[sites.retention]`.
fn site_extra(tail: &str) -> String {
    format!("pbx_secrets = {{ generic = \"{GENERIC_SECRET}\" }}\nuniqueness_window_days = 3\n{tail}")
}

/// A signed generic end report of an answered call that rang at `ring_ms`,
/// sent when the clock (the collector's) says it ended.
fn call(client: &crate::common::http::Client, url: &str, id: &str, from: &str, to: &str, ring_ms: i64) {
    let fmt = ringsource_collector::dates::format_ms;
    let ended_ms = ring_ms + 65_000;
    let body = json!({
        "call_id": id, "from": from, "to": to, "phase": "end", "status": "answered",
        "started_at": fmt(ring_ms), "answered_at": fmt(ring_ms + 5_000), "ended_at": fmt(ended_ms),
        "duration": 65, "talk_time": 60
    })
    .to_string();
    let ts = ended_ms / 1000;
    let sig = b64(&hmac_sha256(GENERIC_KEY, format!("{id}.{ts}.{body}").as_bytes()));
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", format!("v1,{sig}"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap());
}

fn admin(client: &crate::common::http::Client, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut req = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    }
    .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn visit_with(h: &Harness, client_id: Option<&str>) -> Value {
    let mut body = visit_body(None, paid());
    if let Some(c) = client_id {
        body["client_id"] = json!(c);
    }
    let (status, v) = h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200, "{v}");
    v
}

fn session_of(v: &Value) -> String {
    v["session_id"].as_str().unwrap().to_owned()
}

fn number_of(v: &Value) -> String {
    v["number"].as_str().unwrap_or_else(|| panic!("no number in {v}")).to_owned()
}

/// A test's database on either backend, read through the harness.
trait Counts {
    fn count(&self, query: &str) -> i64;
}

impl Counts for Harness {
    fn count(&self, query: &str) -> i64 {
        self.scalar(query)
    }
}

impl Counts for TestDatabase {
    fn count(&self, query: &str) -> i64 {
        self.scalar(query)
    }
}

/// Rows per table naming the session (session ids are the collector's
/// own, so they go into the SQL as they are).
fn session_rows(db: &impl Counts, session: &str) -> [i64; 4] {
    assert!(session.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{session}");
    [
        db.count(&format!("SELECT COUNT(*) FROM sessions WHERE id = '{session}'")),
        db.count(&format!("SELECT COUNT(*) FROM touches WHERE session_id = '{session}'")),
        db.count(&format!("SELECT COUNT(*) FROM page_views WHERE session_id = '{session}'")),
        db.count(&format!("SELECT COUNT(*) FROM leases WHERE session_id = '{session}'")),
    ]
}

/// The command-line tool on the configuration `config`, on its backend.
fn ringsource(args: &[&str], config: &Path) -> Output {
    ringsource_command().args(args).arg("--config").arg(config).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn config_file(db: &Path, server: &str, site: &str) -> PathBuf {
    named_config(db, "ringsource.toml", server, site)
}

/// SQLite's configuration, for the backup test.
fn named_config(db: &Path, name: &str, server: &str, site: &str) -> PathBuf {
    let path = db.parent().unwrap().join(name);
    std::fs::write(&path, site_toml(db, server, site, POOL_SETTINGS)).unwrap();
    path
}

fn spawn_at(db: &TestDatabase, server: &str, site: &str, clock: Arc<dyn Clock>) -> Spawned {
    let config = db.config(&site_toml(&db.file, server, site, POOL_SETTINGS));
    server::spawn(config, "127.0.0.1:0".parse().unwrap(), clock).unwrap()
}

/// Visits (and one call) written through a collector whose clock says
/// `days_ago` days before now; the collector is stopped again.
fn old_visits(db: &TestDatabase, server: &str, site: &str, days_ago: i64, call_from: Option<&str>) -> Vec<String> {
    let at = SystemClock.now_ms() - days_ago * DAY_MS;
    let clock = Arc::new(ManualClock::new(at));
    let s = spawn_at(db, server, site, clock.clone());
    let client = crate::common::http::Client::builder().user_agent(BROWSER_UA).build().unwrap();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let resp = client
            .post(s.url("/v1/sites/shop/visits"))
            .header("content-type", "text/plain")
            .body(visit_body(None, paid()).to_string())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().unwrap();
        sessions.push(session_of(&v));
        if let (Some(from), 1) = (call_from, sessions.len()) {
            clock.set_ms(at + 65_000 + 5_000);
            call(&client, &s.url("/v1/sites/shop/pbx/generic"), "old-call", from, &number_of(&v), at + 5_000);
            clock.set_ms(at + 100_000);
        }
    }
    sessions
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- retention

crate::on_both_backends! {
    the_running_collector_drops_old_visits_and_masks_old_callers_by_itself =>
        the_running_collector_drops_old_visits_and_masks_old_callers_by_itself_on;
    retention_runs_on_demand_and_serve_logs_what_it_removed => retention_runs_on_demand_and_serve_logs_what_it_removed_on;
    erase_over_http_removes_the_callers_calls_and_sessions => erase_over_http_removes_the_callers_calls_and_sessions_on;
    export_and_erase_from_the_cli_while_the_collector_runs => export_and_erase_from_the_cli_while_the_collector_runs_on;
}

/// The running collector applies each kind's days by itself: a visit no
/// call went to goes whole (with its lease or promo code), and the pool's
/// counts of its minutes go too; the caller's session stays (its touches are the
/// call's attribution) but loses its page views and User-Agent; the call
/// stays, attributed, with the caller masked in the call, its events and
/// the list; a fresh visit is untouched.
fn the_running_collector_drops_old_visits_and_masks_old_callers_by_itself_on(backend: Backend) {
    let clock = Arc::new(ManualClock::new(T0));
    let settings = "[sites.promo]\nfallback = true\nhold_days = 1\n\
                    [sites.retention]\nvisits_days = 10\npage_views_days = 5\nuser_agent_days = 2\ncaller_days = 3";
    let Some(h) = start_with_clock_on(
        backend,
        "the_running_collector_drops_old_visits_and_masks_old_callers_by_itself",
        &server_extra(1),
        &site_extra(settings),
        POOL_SETTINGS,
        clock.clone(),
    ) else {
        return;
    };
    let a = visit_with(&h, None);
    let b = visit_with(&h, None);
    let (a, b_number, b) = (session_of(&a), number_of(&b), session_of(&b));
    // The pool's last number, then a visitor it has none for, then one
    // that matches no pool and gets a promo code.
    let d = session_of(&visit_with(&h, None));
    let exhausted = visit_with(&h, None);
    assert_eq!(exhausted["kind"], "original", "{exhausted}");
    let e = session_of(&exhausted);
    let promo = h.visit(None, touch("Referral", "news.example", "referral"));
    assert_eq!(promo["kind"], "promo", "{promo}");
    let p = session_of(&promo);
    clock.set_ms(T0 + 70_000);
    call(&h.client, &h.url("/v1/sites/shop/pbx/generic"), "c1", CALLER, &b_number, T0 + 5_000);
    assert_eq!(session_rows(&h, &a), [1, 1, 1, 1]);
    assert_eq!(h.count("SELECT SUM(events) FROM pool_exhaustions"), 1);
    assert_eq!(h.count("SELECT SUM(sessions) FROM pool_first_asks"), 4, "a, b, d and e asked the pool");
    assert_eq!(h.count(&format!("SELECT COUNT(*) FROM sessions WHERE id = '{e}' AND asked_pools = 'paid'")), 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM promo_codes"), 1);

    clock.set_ms(T0 + 12 * DAY_MS);
    let c = session_of(&visit_with(&h, None));
    wait_for("the retention pass", || session_rows(&h, &a)[0] == 0);
    wait_for("the caller's masking", || h.count("SELECT COUNT(*) FROM calls WHERE caller_key IS NULL") == 1);

    for s in [&a, &d, &e, &p] {
        assert_eq!(session_rows(&h, s), [0, 0, 0, 0], "a visit nobody called from is gone whole: {s}");
    }
    // The counts name nobody, but go with the leases of their hours; today's
    // first ask stays.
    assert_eq!(h.count("SELECT COUNT(*) FROM pool_exhaustions"), 0);
    let first_asks = format!("SELECT COUNT(*) FROM pool_first_asks WHERE minute_ms < {}", T0 + DAY_MS);
    assert_eq!(h.count(&first_asks), 0);
    assert_eq!(h.count("SELECT SUM(sessions) FROM pool_first_asks"), 1, "c's ask today");
    assert_eq!(h.count("SELECT COUNT(*) FROM promo_codes"), 0);
    assert_eq!(session_rows(&h, &b), [1, 1, 0, 1], "the call's session keeps its touches and lease, not its pages");
    assert_eq!(session_rows(&h, &c), [1, 1, 1, 1], "today's visit is untouched");
    assert_eq!(h.count(&format!("SELECT COUNT(*) FROM sessions WHERE id = '{b}' AND user_agent = ''")), 1);
    assert_eq!(h.count(&format!("SELECT COUNT(*) FROM sessions WHERE id = '{c}' AND user_agent <> ''")), 1);

    let (status, list) = admin(&h.client, "GET", &h.url("/v1/calls?site=shop"), None);
    assert_eq!(status, 200, "{list}");
    let id = list["calls"][0]["id"].as_i64().unwrap();
    assert_eq!(list["calls"][0]["caller"], "+*********67");
    let (_, detail) = admin(&h.client, "GET", &h.url(&format!("/v1/calls/{id}")), None);
    assert_eq!(detail["caller"], "+*********67");
    assert_eq!(detail["session_id"], json!(b), "{detail}");
    assert_eq!(detail["confidence"], "high");
    assert_eq!(detail["attribution"]["credits"][0]["channel"], "Paid Search");
    assert_eq!(detail["visitor"]["touches"].as_array().unwrap().len(), 1);
    for e in detail["events"].as_array().unwrap() {
        assert_eq!(e["event"]["from"], "+*********67", "{e}");
    }
    let stored = h.count("SELECT COUNT(*) FROM call_events WHERE event_json LIKE '%9161234567%'")
        + h.count("SELECT COUNT(*) FROM calls WHERE caller LIKE '%9161234567%'");
    assert_eq!(stored, 0, "the number is nowhere in the calls");
}

/// `ringsource retention` applies the defaults on demand (93 days for a
/// visit, 31 for page views, 7 for User-Agents); `ringsource serve` does
/// the same on its own and logs what it removed.
fn retention_runs_on_demand_and_serve_logs_what_it_removed_on(backend: Backend) {
    let Some(db) = TestDatabase::on(backend, "retention_runs_on_demand_and_serve_logs_what_it_removed") else {
        return;
    };
    let server = server_extra(3600);
    let site = site_extra("");
    let config = db.config_file("ringsource.toml", &site_toml(&db.file, &server, &site, POOL_SETTINGS));
    let old = old_visits(&db, &server, &site, 100, Some(CALLER));
    let recent = old_visits(&db, &server, &site, 80, None);

    let out = stdout(&ringsource(&["retention"], &config));
    assert_eq!(
        out.trim(),
        "retention: site \"shop\": removed 1 visits (1 touches, 4 page views in all, 1 leases, 0 promo codes), 2 rows \
         of pool counts, 0 delivered exports; emptied 3 user agents; masked 0 callers",
        "the 100-day-old visit nobody called from goes; the one behind the call and the 80-day-old ones stay, \
         without their page views and User-Agents; the first asks of 100 days ago (two minutes) go"
    );
    assert_eq!(session_rows(&db, &old[1]), [0, 0, 0, 0]);
    assert_eq!(session_rows(&db, &old[0]), [1, 1, 0, 1]);
    for s in &recent {
        assert_eq!(session_rows(&db, s), [1, 1, 0, 1]);
    }
    assert!(db.orphans().is_empty(), "{:?}", db.orphans());
    // Nothing more is due: a second run removes nothing.
    let again = stdout(&ringsource(&["retention", "--site", "shop"], &config));
    assert!(again.contains("removed 0 visits"), "{again}");
    let unknown = ringsource(&["retention", "--site", "nope"], &config);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no site \"nope\""));

    let more = old_visits(&db, &server, &site, 120, None);
    let every_second =
        db.config_file("every-second.toml", &site_toml(&db.file, &server_extra(1), &site, POOL_SETTINGS));
    let child = ringsource_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&every_second)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("retention:") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("serve logs its retention pass");
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("retention: site \"shop\": removed 2 visits (2 touches, 2 page views"), "{line}");
    drop(child);
    for s in &more {
        assert_eq!(session_rows(&db, s), [0, 0, 0, 0]);
    }
    assert!(db.orphans().is_empty(), "{:?}", db.orphans());
}

#[test]
fn retention_settings_are_checked() {
    let text = site_toml(
        Path::new("x.sqlite"),
        "retention_interval_secs = 0",
        "uniqueness_window_days = 30\n[sites.retention]\nvisits_days = 0\ncaller_days = 7\nkeep_forever = true",
        "",
    );
    let err = Config::from_toml_str(&text, Path::new("r.toml"), &HashMap::<String, String>::new()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown field `keep_forever`"), "{text}");
    let text = site_toml(
        Path::new("x.sqlite"),
        "retention_interval_secs = 0",
        "uniqueness_window_days = 30\n[sites.retention]\nvisits_days = 0\ncaller_days = 7",
        "",
    );
    let err = Config::from_toml_str(&text, Path::new("r.toml"), &HashMap::<String, String>::new()).unwrap_err();
    let got: Vec<(&str, &str)> = err.issues.iter().map(|i| (i.path.as_str(), i.reason.as_str())).collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0], ("server.retention_interval_secs", "must be at least 1"));
    assert_eq!(got[1], ("sites[0].retention.visits_days", "must be 1 to 36500 days"));
    assert_eq!(got[2].0, "sites[0].retention.caller_days");
    assert!(got[2].1.contains("shorter than uniqueness_window_days (30)"), "{}", got[2].1);
}

// ---------------------------------------------------------------- erasure

/// The CRM export cannot be delivered (nothing listens), so the calls'
/// exports are still pending when the caller is erased.
const CRM: &str = "[sites.exports.crm]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"crm-secret-0123456789abcdef\"";

/// X calls from the first visitor's number, then, like Y, from the second
/// visitor's. Erasing X removes both of X's calls, their revenue and pending
/// exports, and the first visitor's sessions (both of its browser); the
/// second visitor's session stays, as Y's call went to it too.
fn erase_over_http_removes_the_callers_calls_and_sessions_on(backend: Backend) {
    let clock = Arc::new(ManualClock::new(T0));
    let Some(h) = start_with_clock_on(
        backend,
        "erase_over_http_removes_the_callers_calls_and_sessions",
        &server_extra(3600),
        &site_extra(CRM),
        POOL_SETTINGS,
        clock.clone(),
    ) else {
        return;
    };
    let s1 = visit_with(&h, Some("GA1.2.111.222"));
    let s2 = visit_with(&h, None);
    let pbx = h.url("/v1/sites/shop/pbx/generic");
    clock.set_ms(T0 + 70_000);
    call(&h.client, &pbx, "x1", CALLER, &number_of(&s1), T0 + 5_000);
    call(&h.client, &pbx, "y1", OTHER, &number_of(&s2), T0 + 6_000);
    clock.set_ms(T0 + 75_000);
    call(&h.client, &pbx, "x2", CALLER, &number_of(&s2), T0 + 10_000);
    // The first visitor's browser came back as a new session.
    clock.set_ms(T0 + 80_000);
    let s3 = visit_with(&h, Some("GA1.2.111.222"));
    let (s1, s2, s3) = (session_of(&s1), session_of(&s2), session_of(&s3));
    let (status, rev) = admin(
        &h.client,
        "POST",
        &h.url("/v1/revenue"),
        Some(&json!({ "site": "shop", "caller": CALLER, "amount": 900 })),
    );
    assert_eq!(status, 201, "{rev}");
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"), 3);

    let erase = h.url("/v1/privacy/erase");
    let (status, body) =
        admin(&h.client, "POST", &erase, Some(&json!({ "site": "shop", "phone": "8 (916) 123-45-67" })));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phone"], "+*********67");
    let removed = &body["removed"];
    assert_eq!(
        (removed["calls"].as_i64(), removed["call_events"].as_i64(), removed["revenue"].as_i64()),
        (Some(2), Some(2), Some(1)),
        "{body}"
    );
    assert_eq!((removed["exports"].as_i64(), removed["pending_exports"].as_i64()), (Some(2), Some(2)), "{body}");
    assert_eq!(removed["sessions"], 2, "{body}");
    assert_eq!(removed["sessions_kept"], json!([s2]), "{body}");
    assert!(removed["touches"].as_i64().unwrap() >= 2 && removed["page_views"].as_i64().unwrap() >= 2, "{body}");

    for s in [&s1, &s3] {
        assert_eq!(session_rows(&h, s), [0, 0, 0, 0], "{s}");
    }
    assert_eq!(session_rows(&h, &s2)[0], 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM calls WHERE caller = '+79161234567'"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM call_events WHERE event_json LIKE '%9161234567%'"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM revenue"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%9161234567%'"), 0);
    let (_, list) = admin(&h.client, "GET", &h.url("/v1/calls?site=shop"), None);
    let callers: Vec<&Value> = list["calls"].as_array().unwrap().iter().map(|c| &c["caller"]).collect();
    assert_eq!(callers, [OTHER], "{list}");
    assert_eq!(list["calls"][0]["session_id"], json!(s2), "Y's call keeps its attribution");

    // Revenue for the erased caller finds no call; the answer names them masked.
    let (status, body) = admin(
        &h.client,
        "POST",
        &h.url("/v1/revenue"),
        Some(&json!({ "site": "shop", "caller": CALLER, "amount": 1 })),
    );
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("no_matching_call")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("+*********67") && !message.contains("9161234567"), "{message}");
    // Again: nothing left to remove.
    let (status, body) = admin(&h.client, "POST", &erase, Some(&json!({ "site": "shop", "phone": CALLER })));
    assert_eq!((status, &body["removed"]["calls"]), (200, &json!(0)), "{body}");
    // Bad input is a clear 4xx, and removes nothing.
    let (status, body) = admin(&h.client, "POST", &erase, Some(&json!({ "site": "shop", "phone": "8 (903) 555" })));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("phone:") && message.contains("region RU"), "{message}");
    let (status, body) = admin(&h.client, "POST", &erase, Some(&json!({ "site": "nope", "phone": OTHER })));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_site")), "{body}");
    let (status, body) = admin(&h.client, "POST", &erase, Some(&json!({ "phone": OTHER })));
    assert_eq!(status, 400, "{body}");
    let resp = h.client.post(&erase).json(&json!({ "site": "shop", "phone": OTHER })).send().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(h.count("SELECT COUNT(*) FROM calls"), 1, "none of that removed Y's call");
}

/// The CLI exports and erases while the collector runs on the same file;
/// the HTTP export answers the same data.
fn export_and_erase_from_the_cli_while_the_collector_runs_on(backend: Backend) {
    let clock = Arc::new(ManualClock::new(T0));
    let server = server_extra(3600);
    let site = site_extra("");
    let Some(h) = start_with_clock_on(
        backend,
        "export_and_erase_from_the_cli_while_the_collector_runs",
        &server,
        &site,
        POOL_SETTINGS,
        clock.clone(),
    ) else {
        return;
    };
    let config = h.config_file("ringsource.toml", &site_toml(&h.db, &server, &site, POOL_SETTINGS));
    let v = visit_with(&h, Some("GA1.2.333.444"));
    let session = session_of(&v);
    let (status, _) =
        h.post("/v1/sites/shop/pageviews", &json!({ "session_id": session, "url": "https://shop.example/price" }));
    assert_eq!(status, 204);
    clock.set_ms(T0 + 70_000);
    call(&h.client, &h.url("/v1/sites/shop/pbx/generic"), "x1", CALLER, &number_of(&v), T0 + 5_000);
    call(&h.client, &h.url("/v1/sites/shop/pbx/generic"), "y1", OTHER, "+74957000013", T0 + 6_000);
    let (status, _) = admin(
        &h.client,
        "POST",
        &h.url("/v1/revenue"),
        Some(&json!({ "site": "shop", "caller": CALLER, "amount": 500 })),
    );
    assert_eq!(status, 201);

    let out = stdout(&ringsource(&["export", "--site", "shop", "--phone", "8 916 123 45 67"], &config));
    let doc: Value = serde_json::from_str(&out).unwrap();
    let shop = &doc["sites"][0];
    assert_eq!(shop["phone"], CALLER);
    let calls = shop["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{shop}");
    assert_eq!(calls[0]["caller"], CALLER);
    assert_eq!(calls[0]["pbx_call_id"], "x1");
    assert_eq!(calls[0]["visitor"]["session_id"], json!(session));
    assert_eq!(calls[0]["revenue"][0]["amount"], 500.0);
    assert_eq!(calls[0]["events"][0]["event"]["from"], CALLER);
    let sessions = shop["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{shop}");
    assert_eq!(sessions[0]["id"], json!(session));
    assert_eq!(sessions[0]["client_id"], "GA1.2.333.444");
    assert_eq!(sessions[0]["user_agent"], BROWSER_UA);
    assert_eq!(sessions[0]["page_views"].as_array().unwrap().len(), 2);
    assert_eq!(sessions[0]["leases"][0]["number"], json!(number_of(&v)));
    assert_eq!(sessions[0]["asked_pools"], json!(["paid"]));
    assert_eq!(sessions[0]["touches"][0]["source"], "google");

    // The same over HTTP, and into a file without --site (every site).
    let (status, api) = admin(
        &h.client,
        "POST",
        &h.url("/v1/privacy/export"),
        Some(&json!({ "site": "shop", "phone": "+79161234567" })),
    );
    assert_eq!(status, 200, "{api}");
    assert_eq!(&api, shop);
    let file = h.db.parent().unwrap().join("export.json");
    stdout(&ringsource(&["export", "--phone", "89161234567", "--output", file.to_str().unwrap()], &config));
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(&from_file["sites"][0], shop);

    let bad = ringsource(&["erase", "--site", "shop", "--phone", "12"], &config);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("phone:"), "{}", String::from_utf8_lossy(&bad.stderr));
    let out = stdout(&ringsource(&["erase", "--site", "shop", "--phone", "+7 916 123-45-67"], &config));
    assert!(!out.contains("9161234567"), "the answer does not repeat the number: {out}");
    let erased: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(erased["phone"], "+*********67");
    assert_eq!((erased["removed"]["calls"].as_i64(), erased["removed"]["sessions"].as_i64()), (Some(1), Some(1)));

    let after: Value =
        serde_json::from_str(&stdout(&ringsource(&["export", "--site", "shop", "--phone", CALLER], &config))).unwrap();
    assert_eq!(after["sites"][0]["calls"], json!([]));
    assert_eq!(after["sites"][0]["sessions"], json!([]));
    // The collector goes on: the other caller's call is there, and the
    // erased visitor's browser gets a number again.
    let (_, list) = admin(&h.client, "GET", &h.url("/v1/calls?site=shop"), None);
    assert_eq!(list["total"], 1);
    clock.set_ms(T0 + 2_000_000);
    let back = h.visit(Some(&session), paid());
    assert!(back["number"].is_string(), "{back}");
}

// ---------------------------------------------------------------- backups

/// `ringsource serve` as a child process, killed if the test ends first.
struct Serve {
    child: std::process::Child,
    addr: String,
}

impl Serve {
    fn start(config: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringsource"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_owned();
        Serve { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops it as a supervisor would (SIGTERM: the server finishes what it
    /// is doing and the storage writes out its queue).
    fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn visit_to(client: &crate::common::http::Client, s: &Serve) {
    let resp = client
        .post(s.url("/v1/sites/shop/visits"))
        .header("content-type", "text/plain")
        .body(visit_body(None, touch("Organic Search", "google", "organic")).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn sessions_in(db: &Path) -> i64 {
    rusqlite::Connection::open(db).unwrap().query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap()
}

/// A backup taken while visits are being written is one consistent
/// snapshot; `restore` refuses while the collector runs, and once it is
/// stopped puts the snapshot back, and the collector starts on it.
#[test]
fn backup_while_serving_then_restore_after_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsource.sqlite");
    // Visits as fast as one client sends them, from one address.
    // No load balancer to drain: SIGTERM stops at once (see shutdown.rs).
    let server = server_extra(3600) + "\ndrain_secs = 0\n[server.rate_limit]\nburst = 1000000\nper_minute = 1000000";
    let config = config_file(&db, &server, &site_extra(""));
    let live = Arc::new(Serve::start(&config));
    let client = crate::common::http::Client::builder().user_agent(BROWSER_UA).build().unwrap();
    for _ in 0..20 {
        visit_to(&client, &live);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (live, stop, client) = (Arc::clone(&live), Arc::clone(&stop), client.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                visit_to(&client, &live);
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let backup = dir.path().join("backup.sqlite");
    let out = stdout(&ringsource(&["backup", backup.to_str().unwrap()], &config));
    assert!(out.starts_with(&format!("backed up {} to {}", db.display(), backup.display())), "{out}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let during = writer.join().unwrap();
    for _ in 0..5 {
        visit_to(&client, &live);
    }
    let at_backup = sessions_in(&backup);
    let now = sessions_in(&db);
    assert!(during > 0, "visits were written while the backup ran");
    assert!((20..=now - 5).contains(&at_backup), "backup {at_backup}, live {now}");
    {
        let copy = rusqlite::Connection::open(&backup).unwrap();
        assert_eq!(copy.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).unwrap(), "ok");
        assert_eq!(copy.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0)).unwrap(), "delete");
        assert!(orphans(&copy).is_empty());
    }
    // Never over an existing file.
    let again = ringsource(&["backup", backup.to_str().unwrap()], &config);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let refused = ringsource(&["restore", backup.to_str().unwrap()], &config);
    assert!(!refused.status.success(), "{}", String::from_utf8_lossy(&refused.stdout));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("is in use by another process"), "{why}");
    assert_eq!(sessions_in(&db), now, "a refused restore changes nothing");

    Arc::into_inner(live).expect("the writer thread is done").stop();
    let out = stdout(&ringsource(&["restore", backup.to_str().unwrap()], &config));
    assert!(out.starts_with(&format!("restored {} into {}", backup.display(), db.display())), "{out}");
    assert_eq!(sessions_in(&db), at_backup, "the visits after the backup are gone");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        assert_eq!(conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).unwrap(), "ok");
        assert!(orphans(&conn).is_empty());
    }
    let restarted = Serve::start(&config);
    visit_to(&client, &restarted);
    restarted.stop();
    assert_eq!(sessions_in(&db), at_backup + 1);

    // A file that is not a collector's database is refused before anything is touched.
    let stranger = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&stranger).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    let refused = ringsource(&["restore", stranger.to_str().unwrap()], &config);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a Ringsource database"));
    // Nor is a backup of a later schema than this collector knows.
    rusqlite::Connection::open(&backup).unwrap().execute_batch("PRAGMA user_version = 999").unwrap();
    let refused = ringsource(&["restore", backup.to_str().unwrap()], &config);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("has schema version 999, newer than this collector's"), "{why}");
    assert_eq!(sessions_in(&db), at_backup + 1);
}

/// `backup` and `restore` copy SQLite's file; on a PostgreSQL configuration
/// they refuse, point to `pg_dump` and `pg_restore`, and write nothing.
#[test]
fn backup_and_restore_refuse_a_postgresql_configuration() {
    let Some(db) = TestDatabase::on(Backend::Postgres, "backup_and_restore_refuse_a_postgresql_configuration") else {
        return;
    };
    let config = db.config_file("ringsource.toml", &site_toml(&db.file, &server_extra(3600), &site_extra(""), ""));
    let copy = db.dir.path().join("backup.sqlite");
    for command in ["backup", "restore"] {
        let out = ringsource(&[command, copy.to_str().unwrap()], &config);
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(why.contains("works on a SQLite database only") && why.contains("pg_dump"), "{command}: {why}");
        assert!(!copy.exists() && !db.file.exists(), "{command} wrote a file");
    }
}
