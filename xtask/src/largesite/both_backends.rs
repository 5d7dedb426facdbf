//! The same small site loaded into SQLite and into PostgreSQL: the same rows
//! in every table, and a collector on each answering the calls report and
//! the calls list alike. Skipped (with a printed line) on a machine without
//! PostgreSQL's server binaries, as the collector's own tests are.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ringsource_collector::clock::SystemClock;
use ringsource_collector::config::Config;
use ringsource_collector::storage::postgres::PostgresStorage;
use ringsource_collector::storage::sqlite::SqliteStorage;
use serde_json::Value as Json;

use super::postgres_sink::PostgresSink;
use super::sink::{Sink, SqliteSink};
use super::{Scale, generate, large_site_config};
use crate::postgres::Cluster;

const TOKEN: &str = "both-backends-token";

/// The demo config made into the small site's, on `database`, with no IP
/// database (the test reads no visitor's address).
fn config(scale: &Scale, database: &str, dir: &Path, name: &str) -> (Config, super::SiteShape) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(crate::demo::DEMO_CONFIG)).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    let shape = large_site_config(&mut table, scale, database).unwrap();
    let server = table["server"].as_table_mut().unwrap();
    server.remove("geoip_database");
    server.insert("admin_token".into(), TOKEN.into());
    for key in ["bundle_dir", "www_dir"] {
        let relative = server[key].as_str().unwrap().to_owned();
        server.insert(key.into(), root.join(relative).to_string_lossy().into_owned().into());
    }
    let path = dir.join(format!("{name}.toml"));
    let text = toml::to_string(&table).unwrap();
    std::fs::write(&path, &text).unwrap();
    let env = HashMap::<String, String>::new();
    (Config::from_toml_str(&text, &path, &env).unwrap(), shape)
}

/// `value` with every float rounded to 9 decimals: the backends add the
/// credit shares in different orders.
fn rounded(value: Json) -> Json {
    match value {
        Json::Number(n) if n.is_f64() => {
            let f = (n.as_f64().unwrap() * 1e9).round() / 1e9;
            serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
        }
        Json::Array(items) => Json::Array(items.into_iter().map(rounded).collect()),
        Json::Object(map) => Json::Object(map.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

fn get(client: &reqwest::blocking::Client, url: &str) -> Json {
    let response = client.get(url).bearer_auth(TOKEN).send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "GET {url}: {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_small_site_loads_alike_into_both_backends_and_the_collector_reports_it_alike() {
    if let Err(why) = crate::postgres::server_binaries_found() {
        println!("SKIPPED: no PostgreSQL server binaries ({why})");
        return;
    }
    let cluster = Cluster::start().unwrap();
    let url = cluster.fresh_database("largesite_small").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("small.sqlite");
    // A month ending at the last midnight (the collector's retention measures
    // from now), and a pool of two numbers: busy enough to run out at times.
    let mut scale = Scale::new(3_000, 300, 11).unwrap();
    scale.days = 30;
    scale.pool_numbers = 2;
    let (sqlite_config, shape) = config(&scale, &sqlite.to_string_lossy(), dir.path(), "sqlite");
    let (pg_config, _) = config(&scale, &url, dir.path(), "postgres");

    // The collector makes each schema, as `cargo xtask largesite` has it do.
    drop(SqliteStorage::open(&sqlite).unwrap());
    drop(PostgresStorage::open(pg_config.server.postgres.as_ref().unwrap()).unwrap());

    let mut sink: Box<dyn Sink> = Box::new(SqliteSink::open(&sqlite, true).unwrap());
    let sqlite_counts = generate(&shape, &scale, sink.as_mut()).unwrap();
    sink.finish().unwrap();
    let mut sink: Box<dyn Sink> = Box::new(PostgresSink::open(&url, true).unwrap());
    let pg_counts = generate(&shape, &scale, sink.as_mut()).unwrap();
    sink.finish().unwrap();
    assert_eq!(sqlite_counts.rows, pg_counts.rows, "the generator is deterministic for a scale and seed");
    assert!(pg_counts.calls > 100 && pg_counts.leases > 0 && pg_counts.refusals > 0, "{pg_counts:?}");

    // Every table of the collector's PostgreSQL schema holds as many rows as
    // SQLite's.
    let conn = rusqlite::Connection::open(&sqlite).unwrap();
    let tables = cluster
        .query(
            "largesite_small",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_type = 'BASE TABLE' AND table_name <> 'refinery_schema_history' ORDER BY 1",
        )
        .unwrap();
    let tables: Vec<&str> = tables.lines().collect();
    assert!(tables.len() >= 20 && tables.contains(&"call_events"), "{tables:?}");
    let mut rows = 0;
    for table in &tables {
        let in_sqlite: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        let in_pg: i64 =
            cluster.query("largesite_small", &format!("SELECT count(*) FROM {table}")).unwrap().parse().unwrap();
        assert_eq!(in_sqlite, in_pg, "rows of {table}");
        rows += in_pg;
    }
    assert_eq!(rows as u64, pg_counts.rows);
    // Each identity's next id follows the largest loaded one, so the
    // collector's own inserts do not collide with the generator's rows.
    for table in ["calls", "touches", "leases", "call_events"] {
        let next = cluster
            .query(
                "largesite_small",
                &format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id')) - max(id) FROM {table}"),
            )
            .unwrap();
        assert_eq!(next, "1", "{table}'s sequence after the load");
    }
    // The load's foreign keys and indexes are the migrations' again, and
    // checked: one row whose parent is missing is refused.
    let orphan = cluster
        .query("largesite_small", "INSERT INTO call_tags (call_id, tag, tagged_by, at_ms) VALUES (-1, 'x', 'y', 0)");
    assert!(orphan.unwrap_err().to_string().contains("foreign key"), "call_tags.call_id is checked again");

    let sqlite_server =
        ringsource_collector::server::spawn(sqlite_config, "127.0.0.1:0".parse().unwrap(), Arc::new(SystemClock))
            .unwrap();
    let pg_server =
        ringsource_collector::server::spawn(pg_config, "127.0.0.1:0".parse().unwrap(), Arc::new(SystemClock)).unwrap();
    let zone = jiff::tz::TimeZone::get("Europe/Moscow").unwrap();
    let last = jiff::Timestamp::from_millisecond(scale.end_ms - super::DAY_MS).unwrap().to_zoned_datetime(zone).date();
    let first = last.checked_sub(jiff::Span::new().days(29)).unwrap();
    let site = &shape.id;
    let client = reqwest::blocking::Client::new();
    for path in [
        format!("/v1/reports/calls?site={site}&from={first}&to={last}&group_by=channel&interval=day"),
        format!("/v1/reports/calls?site={site}&from={first}&to={last}&group_by=source&interval=day"),
        format!("/v1/calls?site={site}&from={first}&to={last}&limit=50&offset=0"),
        format!("/v1/calls?site={site}&limit=500&offset=0"),
        "/v1/calls".to_owned(),
    ] {
        let on_sqlite = rounded(get(&client, &sqlite_server.url(&path)));
        let on_pg = rounded(get(&client, &pg_server.url(&path)));
        if path.starts_with("/v1/calls") {
            let total = on_pg["total"].as_u64().unwrap();
            assert!(total > 100, "GET {path}: {total} calls");
            assert_eq!(on_sqlite["total"], on_pg["total"], "GET {path}: total");
        }
        assert_eq!(on_sqlite, on_pg, "GET {path}");
    }
}
