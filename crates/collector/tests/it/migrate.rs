//! `ringsource migrate --from sqlite:FILE --to postgres://…`, run as the real
//! binary against the tests' PostgreSQL: the demo database moved and then
//! compared row by row here (not through the command's own check), the
//! collector on PostgreSQL answering the calls API as it does on the SQLite
//! file, the refusals, and the check catching a target that stores
//! something else than it was sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::common::postgres;
use crate::common::site_toml;

const TOKEN: &str = "admin-token-for-tests-0123";

fn ringsource() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringsource"));
    c.env("RINGSOURCE_LOG", "warn").env_remove("RINGSOURCE_DATABASE_URL").env_remove("RINGSOURCE_DATABASE_PASSWORD");
    c
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `ringsource migrate` with these arguments, and what it printed.
fn migrate(from: &str, to: &str, extra: &[&str]) -> (bool, String, String) {
    let out = ringsource().args(["migrate", "--from", from, "--to", to]).args(extra).output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

/// The configuration of the demo's site on `database` (a file or a URL).
fn config(dir: &Path, database: &str) -> PathBuf {
    let db = dir.join("demo.sqlite");
    let toml = site_toml(&db, &format!("admin_token = \"{TOKEN}\""), "", "")
        .replace(&format!("database = \"{}\"", db.display()), &format!("database = \"{database}\""));
    let path = dir.join(if database.starts_with("postgres") { "postgres.toml" } else { "sqlite.toml" });
    std::fs::write(&path, toml).unwrap();
    path
}

/// `ringsource demo-data` into a fresh SQLite file of `dir`: its path.
fn demo_database(dir: &Path) -> PathBuf {
    let db = dir.join("demo.sqlite");
    let cfg = config(dir, &db.display().to_string());
    let out = ringsource().args(["demo-data", "--config"]).arg(&cfg).args(["--days", "30"]).output().unwrap();
    assert!(out.status.success(), "demo-data: {:?}", text(&out));
    db
}

fn from(db: &Path) -> String {
    format!("sqlite:{}", db.display())
}

fn scalar(url: &str, sql: &str) -> i64 {
    postgres::query(url, sql).unwrap()[0][0].as_deref().unwrap().parse().unwrap()
}

/// The collector's tables in the SQLite file, each with its columns.
fn sqlite_tables(conn: &rusqlite::Connection) -> BTreeMap<String, Vec<String>> {
    let mut st =
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%'").unwrap();
    let names: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    names
        .into_iter()
        .map(|t| {
            let mut st = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid").unwrap();
            let cols = st.query_map([&t], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            (t, cols)
        })
        .collect()
}

/// Every row of every table on both sides, written out the same way here:
/// SQLite's values as stored, PostgreSQL's as its own text output, with
/// booleans as `t`/`f` and floating-point numbers by their bits. The
/// command's own check is not involved.
fn assert_same_rows(db: &Path, url: &str) -> usize {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables = sqlite_tables(&conn);
    let pg_types: BTreeMap<(String, String), String> = postgres::query(
        url,
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    .unwrap()
    .into_iter()
    .map(|r| ((r[0].clone().unwrap(), r[1].clone().unwrap()), r[2].clone().unwrap()))
    .collect();
    let pg_tables: Vec<String> = postgres::query(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()
           AND table_name <> 'refinery_schema_history' ORDER BY 1",
    )
    .unwrap()
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    assert_eq!(pg_tables, tables.keys().cloned().collect::<Vec<_>>(), "the same tables on both sides");
    let mut compared = 0;
    for (table, cols) in &tables {
        let types: Vec<&str> = cols
            .iter()
            .map(|c| {
                pg_types.get(&(table.clone(), c.clone())).unwrap_or_else(|| panic!("{table}.{c} not in PostgreSQL"))
            })
            .map(String::as_str)
            .collect();
        let list = cols.join(", ");
        let mut st = conn.prepare(&format!("SELECT {list} FROM {table}")).unwrap();
        let mut sqlite: Vec<Vec<Option<String>>> = st
            .query_map([], |row| {
                Ok((0..cols.len())
                    .map(|i| match (row.get_ref(i).unwrap(), types[i]) {
                        (ValueRef::Null, _) => None,
                        (ValueRef::Integer(0), "boolean") => Some("f".to_owned()),
                        (ValueRef::Integer(1), "boolean") => Some("t".to_owned()),
                        (ValueRef::Integer(v), _) => Some(v.to_string()),
                        (ValueRef::Real(v), _) => Some(format!("f64:{}", v.to_bits())),
                        (ValueRef::Text(v), _) => Some(String::from_utf8(v.to_vec()).unwrap()),
                        (ValueRef::Blob(_), _) => panic!("{table} holds a blob"),
                    })
                    .collect())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut pg: Vec<Vec<Option<String>>> = postgres::query(url, &format!("SELECT {list} FROM {table}"))
            .unwrap()
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(&types)
                    .map(|(v, ty)| match *ty {
                        "double precision" => v.map(|v| format!("f64:{}", v.parse::<f64>().unwrap().to_bits())),
                        _ => v,
                    })
                    .collect()
            })
            .collect();
        sqlite.sort();
        pg.sort();
        assert_eq!(sqlite.len(), pg.len(), "rows of {table}");
        if let Some((s, p)) = sqlite.iter().zip(&pg).find(|(s, p)| s != p) {
            panic!("{table} differs: SQLite {s:?}, PostgreSQL {p:?} ({list})");
        }
        compared += sqlite.len();
    }
    compared
}

/// A `ringsource serve` process, killed when dropped.
struct Collector {
    child: Child,
    addr: String,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    fn start(config: &Path) -> Self {
        let mut child = ringsource()
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("no address: {line:?}"));
        Self { addr: addr.to_owned(), child }
    }

    fn get(&self, path: &str) -> Value {
        let resp = reqwest::blocking::Client::new()
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(TOKEN)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.json().unwrap()
    }
}

#[test]
fn the_demo_database_moves_to_postgres_row_by_row_and_answers_the_same() {
    let Some(url) = postgres::database("migrate_demo") else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = demo_database(dir.path());

    let (ok, stdout, stderr) = migrate(&from(&db), &url, &[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("counts and checksums equal, committed"), "{stdout}");
    assert!(stderr.contains("copying") && stderr.contains("rows/s"), "progress per table: {stderr}");

    let rows = assert_same_rows(&db, &url);
    let calls = scalar(&url, "SELECT count(*) FROM calls");
    assert!(rows > 5000 && calls > 100, "{rows} rows, {calls} calls: the demo fills every part");
    for table in ["calls", "sessions", "touches", "page_views", "leases", "call_tags", "call_notes", "revenue"] {
        assert!(scalar(&url, &format!("SELECT count(*) FROM {table}")) > 0, "the demo fills {table}");
    }

    // Every identity column hands out ids past the copied ones, as SQLite's
    // next rowid would be.
    let identities = postgres::query(
        &url,
        "SELECT table_name, column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .unwrap();
    assert!(identities.len() >= 10, "{identities:?}");
    for r in identities {
        let (t, c) = (r[0].clone().unwrap(), r[1].clone().unwrap());
        let max = scalar(&url, &format!("SELECT COALESCE(MAX({c}), 0) FROM {t}"));
        let next = scalar(&url, &format!("SELECT nextval(pg_get_serial_sequence('{t}', '{c}'))"));
        assert_eq!(next, max + 1, "next {t}.{c}");
    }

    // The collector on each database answers the calls API alike.
    let on_sqlite = Collector::start(&config(dir.path(), &db.display().to_string()));
    let on_postgres = Collector::start(&config(dir.path(), &url));
    let list = "/v1/calls?site=shop&from=0&to=9999999999999&limit=1000";
    let listed = on_sqlite.get(list);
    assert_eq!(listed, on_postgres.get(list), "the calls list");
    let ids: Vec<i64> = listed["calls"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len() as i64, calls, "every call listed");
    for id in ids {
        let path = format!("/v1/calls/{id}");
        assert_eq!(on_sqlite.get(&path), on_postgres.get(&path), "{path}");
    }
    let day = |days: i64| {
        let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * days)).unwrap();
        at.strftime("%Y-%m-%d").to_string()
    };
    let (start, end) = (day(-40), day(1));
    for group in ["channel", "source", "campaign"] {
        let path = format!("/v1/reports/calls?site=shop&group_by={group}&from={start}&to={end}");
        let report = on_sqlite.get(&path);
        assert!(report["totals"]["calls"].as_f64().unwrap() > 0.0, "{report}");
        assert_eq!(report, on_postgres.get(&path), "{path}");
    }
    for path in ["/v1/tags?site=shop", "/v1/exports?site=shop"] {
        assert_eq!(on_sqlite.get(path), on_postgres.get(path), "{path}");
    }
    // The pools report says when it was answered (`now_ms`): the one field
    // that may differ, and the only one set aside.
    let pools = format!("/v1/reports/pools?site=shop&from={}&to={}", day(-20), day(-10));
    let (mut a, mut b) = (on_sqlite.get(&pools), on_postgres.get(&pools));
    for report in [&mut a, &mut b] {
        report.as_object_mut().unwrap().remove("now_ms").expect("the report says when");
    }
    assert!(a["pools"][0]["exhaustion_count"].as_i64().unwrap() > 0, "{a}");
    assert_eq!(a, b, "{pools}");
}

#[test]
fn migrate_refuses_a_target_with_data_unless_replace() {
    let Some(url) = postgres::database("migrate_replace") else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = demo_database(dir.path());
    let (ok, out, err) = migrate(&from(&db), &url, &[]);
    assert!(ok, "{out}\n{err}");
    let calls = scalar(&url, "SELECT count(*) FROM calls");
    // A change on the target that a second copy must not silently keep or lose.
    postgres::query(&url, "DELETE FROM call_notes").unwrap();

    let (ok, out, err) = migrate(&from(&db), &url, &[]);
    assert!(!ok, "{out}");
    assert!(err.contains("already holds collector data") && err.contains("--replace"), "{err}");
    assert!(err.contains("calls") && err.contains("sessions"), "names the tables that hold data: {err}");
    assert_eq!(scalar(&url, "SELECT count(*) FROM call_notes"), 0, "nothing written");

    let (ok, out, err) = migrate(&from(&db), &url, &["--replace"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("replaced"), "{out}");
    assert_eq!(scalar(&url, "SELECT count(*) FROM calls"), calls);
    assert_same_rows(&db, &url);
}

/// A SQLite file at schema version 10, made by the collector's own
/// migrations v1 … v10.
fn version_10_file(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for sql in [
        include_str!("../../src/storage/sqlite/schema/v1.sql"),
        include_str!("../../src/storage/sqlite/schema/v2.sql"),
        include_str!("../../src/storage/sqlite/schema/v3.sql"),
        include_str!("../../src/storage/sqlite/schema/v4.sql"),
        include_str!("../../src/storage/sqlite/schema/v5.sql"),
        include_str!("../../src/storage/sqlite/schema/v6.sql"),
        include_str!("../../src/storage/sqlite/schema/v7.sql"),
        include_str!("../../src/storage/sqlite/schema/v8.sql"),
        include_str!("../../src/storage/sqlite/schema/v9.sql"),
        include_str!("../../src/storage/sqlite/schema/v10.sql"),
    ] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 10").unwrap();
}

#[test]
fn migrate_refuses_old_files_bad_values_and_unknown_tables_and_names_the_fix() {
    let Some(url) = postgres::database("migrate_refusals") else { return };
    let dir = tempfile::tempdir().unwrap();
    let nothing_written = |url: &str| {
        assert_eq!(
            postgres::query(url, "SELECT to_regclass('calls') IS NULL OR NOT EXISTS (SELECT 1 FROM sessions)")
                .map(|r| r[0][0].clone())
                .unwrap_or(Some("t".into()))
                .as_deref(),
            Some("t"),
            "the target holds no data"
        );
    };

    let old = dir.path().join("old.sqlite");
    version_10_file(&old);
    let (ok, _, err) = migrate(&from(&old), &url, &[]);
    assert!(!ok);
    assert!(
        err.contains("schema version 10") && err.contains("copies version 12") && err.contains("ringsource serve"),
        "{err}"
    );
    // The file is refused before the target is touched.
    assert_eq!(scalar(&url, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), 0);

    let db = demo_database(dir.path());
    let tampered = |name: &str, sql: &str| -> PathBuf {
        let copy = dir.path().join(name);
        let src = rusqlite::Connection::open(&db).unwrap();
        src.execute_batch(&format!("VACUUM INTO '{}'", copy.display())).unwrap();
        rusqlite::Connection::open(&copy).unwrap().execute_batch(sql).unwrap();
        copy
    };
    let lease: i64 =
        rusqlite::Connection::open(&db).unwrap().query_row("SELECT min(id) FROM leases", [], |r| r.get(0)).unwrap();
    let wide = tampered("wide.sqlite", &format!("UPDATE leases SET hold_secs = 3000000000 WHERE id = {lease}"));
    let (ok, _, err) = migrate(&from(&wide), &url, &[]);
    assert!(!ok);
    assert!(err.contains(&format!("table leases, row id={lease}, column hold_secs: 3000000000 does not fit")), "{err}");
    nothing_written(&url);

    let flag = tampered("flag.sqlite", "UPDATE calls SET is_target = 2 WHERE id = (SELECT min(id) FROM calls)");
    let (ok, _, err) = migrate(&from(&flag), &url, &[]);
    assert!(!ok);
    assert!(err.contains("table calls, row id=") && err.contains("column is_target: integer 2"), "{err}");
    assert!(err.contains("a boolean"), "{err}");
    nothing_written(&url);

    let extra = tampered("extra.sqlite", "CREATE TABLE visitor_notes (id INTEGER PRIMARY KEY, body TEXT)");
    let (ok, _, err) = migrate(&from(&extra), &url, &[]);
    assert!(!ok);
    assert!(err.contains("SQLite table visitor_notes") && err.contains("NOT_COPIED"), "{err}");
    nothing_written(&url);

    // Bad arguments and an unreachable server.
    let (ok, _, err) = migrate(&db.display().to_string(), &url, &[]);
    assert!(!ok && err.contains("--from must be sqlite:FILE"), "{err}");
    let (ok, _, err) = migrate(&from(&dir.path().join("missing.sqlite")), &url, &[]);
    assert!(!ok && err.contains("missing.sqlite does not exist"), "{err}");
    let (ok, _, err) = migrate(&from(&db), "mysql://root@127.0.0.1/ringsource", &[]);
    assert!(!ok && err.contains("--to must be a postgres://user@host:port/dbname URL"), "{err}");
    let (ok, _, err) = migrate(&from(&db), "postgres://127.0.0.1/ringsource", &[]);
    assert!(!ok && err.contains("names no user"), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ok, _, err) = migrate(&from(&db), &format!("postgres://ringsource:secret-pw@127.0.0.1:{port}/db"), &[]);
    assert!(!ok);
    assert!(err.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}/db")), "{err}");
    assert!(err.contains("RINGSOURCE_DATABASE_PASSWORD") && !err.contains("secret-pw"), "{err}");

    // After all that, the demo file still goes in whole.
    let (ok, out, err) = migrate(&from(&db), &url, &[]);
    assert!(ok, "{out}\n{err}");
}

/// The check compares what PostgreSQL holds after the copy with the SQLite
/// file: a target whose triggers change one call and drop one page view on
/// the way in (as a faulty copy would) fails the check, by content for the
/// call and by count for the page view, and nothing is committed.
#[test]
fn a_target_that_stores_something_else_fails_the_check_and_is_rolled_back() {
    let Some(url) = postgres::database("migrate_mismatch") else { return };
    let dir = tempfile::tempdir().unwrap();
    // The schema first, from an empty file at the latest version.
    let empty = dir.path().join("empty.sqlite");
    drop(ringsource_collector::storage::sqlite::SqliteStorage::open(&empty).unwrap());
    let (ok, out, err) = migrate(&from(&empty), &url, &[]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("migrated 0 rows"), "{out}");

    let db = demo_database(dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let call: i64 = conn.query_row("SELECT max(id) FROM calls", [], |r| r.get(0)).unwrap();
    let view: i64 = conn.query_row("SELECT min(id) FROM page_views", [], |r| r.get(0)).unwrap();
    postgres::query(
        &url,
        &format!(
            "CREATE FUNCTION tamper_call() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.id = {call} THEN NEW.reason := NEW.reason || '.'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER tamper_call BEFORE INSERT ON calls FOR EACH ROW EXECUTE FUNCTION tamper_call();
             CREATE FUNCTION drop_view() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.id = {view} THEN RETURN NULL; END IF; RETURN NEW; END $$;
             CREATE TRIGGER drop_view BEFORE INSERT ON page_views FOR EACH ROW EXECUTE FUNCTION drop_view();"
        ),
    )
    .unwrap();

    let (ok, out, err) = migrate(&from(&db), &url, &[]);
    assert!(!ok, "{out}");
    assert!(err.contains("verification failed for calls, page_views") && err.contains("rolled back"), "{err}");
    let line = |table: &str| out.lines().find(|l| l.starts_with(&format!("{table} "))).unwrap_or_default().to_owned();
    assert!(line("calls").contains("CONTENT"), "{out}");
    assert!(line("page_views").contains("COUNT"), "{out}");
    assert!(line("sessions").contains(" ok "), "{out}");
    assert_eq!(scalar(&url, "SELECT count(*) FROM calls"), 0, "rolled back");
    assert_eq!(scalar(&url, "SELECT count(*) FROM sessions"), 0, "rolled back");

    // Without the triggers the same copy passes.
    postgres::query(&url, "DROP TRIGGER tamper_call ON calls; DROP TRIGGER drop_view ON page_views").unwrap();
    let (ok, out, err) = migrate(&from(&db), &url, &[]);
    assert!(ok, "{out}\n{err}");
    assert_same_rows(&db, &url);
}
