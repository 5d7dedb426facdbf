//! `ringsource demo-data`: a seeded month through the real visit and call
//! paths, which the report API then shows with calls, target calls, cost
//! and revenue, flagged as demo data and never exported.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use ringsource_collector::clock::SystemClock;
use ringsource_collector::config::Config;
use ringsource_collector::demo::{self, DemoError, DemoOptions};
use ringsource_collector::server;
use serde_json::Value;

const TOKEN: &str = "admin-token-for-tests-0123";
const SERVER: &str = "admin_token = \"admin-token-for-tests-0123\"";
/// Exports on, to a port nobody listens on: demo calls must not reach them.
const EXPORTS: &str =
    r#"exports = { crm = { url = "http://127.0.0.1:9/crm", secret = "a-crm-secret-of-32-bytes-or-so" } }"#;
/// 2027-02-01T00:00:00Z: the demo fills the days before.
const NOW_MS: i64 = 1_801_440_000_000;

fn config(dir: &Path) -> (Config, String) {
    let text = site_toml(&dir.join("ringsource.sqlite"), SERVER, EXPORTS, "");
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap();
    (config, text)
}

fn options(seed: u64) -> DemoOptions {
    DemoOptions { site: None, days: 10, seed }
}

/// The report over the demo's days, by source.
fn report_of(config: Config) -> Value {
    let server = server::spawn(config, "127.0.0.1:0".parse().unwrap(), Arc::new(SystemClock)).unwrap();
    let resp = crate::common::http::Client::new()
        .get(server.url("/v1/reports/calls?site=shop&group_by=source&from=2027-01-22&to=2027-01-31"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().unwrap()
}

#[test]
fn a_demo_month_shows_calls_cost_and_revenue_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = config(dir.path());
    let summary = demo::fill_until(&cfg, &options(42), NOW_MS).unwrap();
    assert!(summary.sessions >= 300 && summary.calls >= 30 && summary.deals > 0, "{summary:?}");
    assert_eq!(summary.cost_rows, 10 * 4);

    let report = report_of(cfg.clone());
    assert_eq!(report["demo_data"], true);
    let totals = &report["totals"];
    assert_eq!(totals["calls"].as_f64().unwrap(), f64::from(summary.calls));
    for field in ["target_calls", "missed_calls", "cost", "revenue"] {
        assert!(totals[field].as_f64().unwrap() > 0.0, "{field}: {totals}");
    }
    let rows = report["rows"].as_array().unwrap();
    let google: Vec<&Value> = rows.iter().filter(|r| r["group"] == "google").collect();
    assert_eq!(google.len(), 10, "a google row on each day");
    assert!(
        google
            .iter()
            .any(|r| r["calls"].as_f64() > Some(0.0) && r["revenue"].as_f64() > Some(0.0) && r["roi"].is_number())
    );
    // Calls through the pool are attributed to their visits.
    let db = rusqlite::Connection::open(dir.path().join("ringsource.sqlite")).unwrap();
    let attributed: i64 = db
        .query_row("SELECT COUNT(*) FROM calls WHERE confidence = 'high' AND session_id IS NOT NULL", [], |r| r.get(0))
        .unwrap();
    assert!(attributed > 10, "{attributed} calls attributed to a session");
    let (outbox, foreign): (i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM outbox),
                    (SELECT COUNT(*) FROM sessions WHERE user_agent <> 'ringsource demo data')
                  + (SELECT COUNT(*) FROM calls WHERE pbx <> 'demo')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((outbox, foreign), (0, 0), "demo rows are marked and never exported");
    // SQLite does not enforce foreign keys on the collector's connection: a
    // month of visits, calls, costs and revenue names no missing row.
    assert_eq!(orphans(&db), [], "rows naming a missing parent");

    // A database with calls is left alone.
    assert!(matches!(demo::fill_until(&cfg, &options(42), NOW_MS), Err(DemoError::NotEmpty { .. })));

    // The same seed, the same month.
    let other = tempfile::tempdir().unwrap();
    let (cfg2, _) = config(other.path());
    assert_eq!(demo::fill_until(&cfg2, &options(42), NOW_MS).unwrap(), summary);
    let again = report_of(cfg2);
    assert_eq!(again["totals"], report["totals"]);
    assert_eq!(again["rows"], report["rows"]);
}

/// `ringsource demo-data` for three days on the configuration `file`.
fn three_demo_days(file: &Path) -> std::process::Output {
    ringsource_command()
        .args(["demo-data", "--config", file.to_str().unwrap(), "--days", "3", "--seed", "7"])
        .output()
        .unwrap()
}

#[test]
fn the_cli_fills_the_configured_database() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = config(dir.path());
    let file = dir.path().join("ringsource.toml");
    std::fs::write(&file, text).unwrap();
    let run = || three_demo_days(&file);
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("demo data for site \"shop\": "), "{stdout}");
    let second = run();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already has"), "refuses a database with calls");
    // What `cargo xtask demo` runs before serving: a filled database is fine.
    let quiet = std::process::Command::new(env!("CARGO_BIN_EXE_ringsource"))
        .args(["demo-data", "--config", file.to_str().unwrap(), "--if-empty"])
        .output()
        .unwrap();
    assert!(quiet.status.success(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert!(String::from_utf8_lossy(&quiet.stdout).starts_with("no demo data written"));
}

/// The tests' site, with exports, parsed on `db`.
fn config_on(db: &TestDatabase) -> Config {
    db.config(&site_toml(&db.file, SERVER, EXPORTS, ""))
}

/// What both backends must hold alike after the same seeded month: calls by
/// attribution, sessions by what they were shown, leases, promo codes,
/// notes, tags, users, cost and revenue rows, and nothing to export.
const SAME_ON_BOTH: [&str; 10] = [
    "SELECT COUNT(*) FROM sessions WHERE user_agent = 'ringsource demo data'",
    "SELECT COUNT(*) FROM calls WHERE pbx = 'demo' AND confidence = 'high' AND session_id IS NOT NULL",
    "SELECT COUNT(*) FROM calls WHERE session_id IS NULL",
    "SELECT COUNT(*) FROM leases",
    "SELECT COUNT(*) FROM promo_codes",
    "SELECT COUNT(*) FROM page_views",
    "SELECT COUNT(*) FROM call_tags",
    "SELECT COUNT(*) FROM call_notes",
    "SELECT COUNT(*) FROM users",
    "SELECT COUNT(*) FROM outbox",
];

/// `ringsource demo-data` writes through the storage port, so the same seed
/// makes the same month on PostgreSQL as on SQLite: the same summary (but
/// the promo codes, drawn from the system's randomness), the same rows, and
/// the same report.
#[test]
fn a_demo_month_on_postgresql_is_the_month_sqlite_gets() {
    let test = "a_demo_month_on_postgresql";
    let Some(pg_db) = TestDatabase::on(Backend::Postgres, test) else { return };
    let lite_db = TestDatabase::on(Backend::Sqlite, test).unwrap();
    let (sqlite, pg) = (config_on(&lite_db), config_on(&pg_db));
    let mut on_sqlite = demo::fill_until(&sqlite, &options(42), NOW_MS).unwrap();
    let mut on_pg = demo::fill_until(&pg, &options(42), NOW_MS).unwrap();
    assert_eq!(on_pg.promo_codes.len(), on_sqlite.promo_codes.len());
    on_sqlite.promo_codes.clear();
    on_pg.promo_codes.clear();
    assert_eq!(on_pg, on_sqlite);

    for sql in SAME_ON_BOTH {
        assert_eq!(pg_db.scalar(sql), lite_db.scalar(sql), "{sql}");
    }
    let report = report_of(sqlite);
    let again = report_of(pg.clone());
    assert_eq!(again["demo_data"], true);
    assert_eq!(again["totals"], report["totals"]);
    assert_eq!(again["rows"], report["rows"]);

    // A database with calls is left alone, and the refusal names the
    // database without its password.
    match demo::fill_until(&pg, &options(42), NOW_MS) {
        Err(e @ DemoError::NotEmpty { .. }) => {
            let shown = pg.server.postgres.as_ref().unwrap().shown.clone();
            assert!(e.to_string().contains(&shown), "{e}");
        }
        other => panic!("a second month went in: {other:?}"),
    }
}

/// The command itself on a configuration whose database is PostgreSQL.
#[test]
fn the_cli_fills_a_postgresql_database() {
    let Some(db) = TestDatabase::on(Backend::Postgres, "the_cli_fills_a_postgresql_database") else { return };
    let file = db.config_file("ringsource.toml", &site_toml(&db.file, SERVER, EXPORTS, ""));
    let run = || three_demo_days(&file);
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("demo data for site \"shop\": "));
    assert_ne!(db.scalar("SELECT COUNT(*) FROM calls WHERE pbx = 'demo'"), 0, "the calls are in PostgreSQL");
    assert!(!db.file.exists(), "no SQLite file beside it");
    let second = run();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already has"), "refuses a database with calls");
}
