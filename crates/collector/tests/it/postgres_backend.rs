//! Choosing PostgreSQL: `server.database = "postgres://…"` (or
//! `RINGSOURCE_DATABASE_URL`), what a wrong URL or an unreachable server is
//! told; TLS to the database.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ringsource_collector::clock::ManualClock;
use ringsource_collector::clock::SystemClock;
use ringsource_collector::config::Config;
use ringsource_collector::server;
use ringsource_collector::storage::postgres::PostgresStorage;
use ringsource_collector::storage::privacy::{PrivacyStore, RetentionCutoffs};
use serde_json::Value;

use crate::common::*;

fn config_with(database: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.sqlite");
    let text = site_toml(&file, "", "", "")
        .replace(&format!("database = \"{}\"", file.display()), &format!("database = \"{database}\""));
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_toml_str(&text, Path::new("test.toml"), &env).map_err(|e| e.to_string())
}

fn start_error(config: Config) -> String {
    match server::spawn(config, "127.0.0.1:0".parse().unwrap(), Arc::new(SystemClock)) {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_postgres_url_selects_postgresql_and_sqlite_stays_the_default() {
    let sqlite = config_with("ringsource.sqlite", &[]).unwrap();
    assert!(sqlite.server.postgres.is_none());
    let pg = config_with("postgres://ringsource@db.example:5433/calls", &[]).unwrap();
    let settings = pg.server.postgres.expect("PostgreSQL");
    assert_eq!(settings.shown, "db.example:5433/calls");
    // The environment's URL wins over the file, and its password stays out of messages.
    let from_env = config_with(
        "ringsource.sqlite",
        &[
            ("RINGSOURCE_DATABASE_URL", "postgresql://collector@10.0.0.7/ringsource"),
            ("RINGSOURCE_DATABASE_PASSWORD", "s3cret-pass"),
        ],
    )
    .unwrap();
    let settings = from_env.server.postgres.expect("PostgreSQL from the environment");
    assert_eq!(settings.shown, "10.0.0.7:5432/ringsource");
    assert_eq!(settings.connect.get_password(), Some(&b"s3cret-pass"[..]));
    assert!(!format!("{settings:?}").contains("s3cret-pass"), "Debug hides the password");
}

#[test]
fn a_bad_database_url_is_a_config_error_that_says_the_form() {
    for (url, says) in [
        ("postgres://ringsource@db.example:port/calls", "is not a PostgreSQL URL"),
        ("postgres:///calls", "names no host"),
    ] {
        let err = config_with(url, &[]).unwrap_err();
        assert!(err.contains("server.database") && err.contains(says), "{url}: {err}");
        assert!(err.contains("postgres://user@host:port/dbname"), "{err}");
    }
    let err =
        config_with("ringsource.sqlite", &[("RINGSOURCE_DATABASE_URL", "/var/lib/ringsource.sqlite")]).unwrap_err();
    assert!(err.contains("RINGSOURCE_DATABASE_URL") && err.contains("postgres://"), "{err}");
}

#[test]
fn an_unreachable_database_says_where_and_what_to_check() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://ringsource@127.0.0.1:{port}/calls");
    let config = config_with(&url, &[]).unwrap();
    let err = start_error(config);
    assert!(err.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}/calls")), "{err}");
    assert!(err.contains("listen_addresses") && err.contains("pg_hba.conf"), "says what to check: {err}");
}

/// `sslmode=require` with `server.database_ca_file`: the collector connects
/// over TLS (rustls, ring), the server's view of its connections says so,
/// and the browser's routes work over them. Without the CA, the system's
/// CAs do not know the server's certificate and the start fails saying so.
#[test]
fn tls_to_the_database_verifies_the_server_with_the_configured_ca() {
    let Some((url, ca)) = postgres::tls_database("tls_to_the_database") else { return };
    let refused = start_error(config_with(&url, &[]).unwrap());
    assert!(refused.contains("cannot reach PostgreSQL") && refused.contains("certificate"), "{refused}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.sqlite");
    let text = site_toml(&file, &format!("database_ca_file = \"{}\"", ca.display()), "", "")
        .replace(&format!("database = \"{}\"", file.display()), &format!("database = \"{url}\""));
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap();
    let server = server::spawn(config, "127.0.0.1:0".parse().unwrap(), Arc::new(SystemClock)).unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(server.url("/v1/sites/shop/visits"))
        .header("content-type", "text/plain")
        .header("user-agent", BROWSER_UA)
        .body(visit_body(None, paid()).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["kind"], "lease");
    let plain = url.replace("sslmode=require", "sslmode=disable");
    let rows = postgres::query(
        &plain,
        "SELECT ssl, COUNT(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'ringsource' AND datname = current_database() GROUP BY ssl",
    )
    .unwrap();
    assert_eq!(rows.len(), 1, "every connection of the collector is alike: {rows:?}");
    assert_eq!(rows[0][0].as_deref(), Some("t"), "and over TLS: {rows:?}");
}

/// A retention pass on PostgreSQL removes a session last seen before the
/// cutoff with every row that names it (children first, as the database's
/// foreign keys demand), counts what it removed, and leaves a session seen
/// since; its leases' numbers are free again.
#[test]
fn retention_on_postgresql_removes_old_sessions_and_their_rows() {
    const T0: i64 = 1_800_000_000_000;
    let clock = Arc::new(ManualClock::new(T0));
    let test = "retention_on_postgresql";
    let Some(h) =
        start_with_clock_on(Backend::Postgres, test, "", "", "hold_secs = 60\nheartbeat_secs = 10", clock.clone())
    else {
        return;
    };
    let old = h.visit(None, paid());
    let old = old["session_id"].as_str().unwrap().to_owned();
    clock.set_ms(T0 + 3_600_000);
    let recent = h.visit(None, paid());
    let recent = recent["session_id"].as_str().unwrap().to_owned();
    let cut = T0 + 1_800_000;
    let store =
        PostgresStorage::open(config_with(h.pg.as_deref().unwrap(), &[]).unwrap().server.postgres.as_ref().unwrap())
            .unwrap();
    let cutoffs = RetentionCutoffs {
        site: "shop".to_owned(),
        sessions_before_ms: cut,
        session_rows_before_ms: cut,
        page_views_before_ms: cut,
        user_agents_before_ms: cut,
        callers_before_ms: None,
        exports_before_ms: cut,
    };
    let report = store.apply_retention(&cutoffs, clock.as_ref()).unwrap();
    assert_eq!((report.sessions, report.touches, report.page_views, report.leases), (1, 1, 1, 1), "{report:?}");
    for (table, column) in
        [("sessions", "id"), ("touches", "session_id"), ("page_views", "session_id"), ("leases", "session_id")]
    {
        assert_eq!(h.scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{old}'")), 0, "{table}");
        assert_eq!(h.scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{recent}'")), 1, "{table}");
    }
    // Run again: nothing more is due.
    let again = store.apply_retention(&cutoffs, clock.as_ref()).unwrap();
    assert_eq!((again.sessions, again.leases), (0, 0), "{again:?}");
}
