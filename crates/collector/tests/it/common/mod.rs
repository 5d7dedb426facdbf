//! Shared test harness: the real app on 127.0.0.1:0 with a fresh SQLite
//! file, or a fresh PostgreSQL database ([`Backend`], [`postgres`]).
#![allow(dead_code, reason = "not every test module uses every helper")]

pub mod http;
pub mod openapi;
pub mod postgres;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringsource_collector::clock::{Clock, SystemClock};
use ringsource_collector::config::Config;
use ringsource_collector::server::{self, Spawned};
use ringsource_collector::services::calls::CallSink;
use ringsource_collector::storage::calls::CallStore;
use serde_json::{Value, json};

pub const BROWSER_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";

/// A site with a 3-number paid-search pool, Instagram and email static
/// numbers, an offline billboard number and an overflow number. `extra_site`
/// is appended to the `[[sites]]` table, `pool` to the pool table.
pub fn site_toml(db: &Path, server_extra: &str, site_extra: &str, pool: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
database = "{db}"
bundle_dir = "{bundle}"
www_dir = "{www}"
# A small WAL keeps the many servers these tests start cheap; the default is exercised end to end.
wal_preallocate_mib = 1
{server_extra}

[[sites]]
id = "shop"
allowed_origins = ["https://shop.example", "http://localhost:3000"]
region = "RU"
originals = ["8 (495) 123-45-67"]
overflow_number = "+7 495 700-00-99"
{site_extra}

[[sites.static_numbers]]
number = "+7 495 700-00-11"
label = "Instagram"
rule = {{ utm_source = "instagram" }}

[[sites.static_numbers]]
number = "+7 495 700-00-12"
label = "Email"
rule = {{ channel = "Email" }}

[[sites.static_numbers]]
number = "+7 495 700-00-13"
label = "Billboard"

[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02", "+7 495 700-00-03"]
rules = [{{ channel = "Paid Search" }}]
{pool}
"#,
        db = db.display(),
        bundle = db.parent().unwrap().join("pkg").display(),
        www = db.parent().unwrap().join("www").display(),
    )
}

pub const POOL: [&str; 3] = ["+74957000001", "+74957000002", "+74957000003"];
pub const OVERFLOW: &str = "+74957000099";
pub const ORIGINAL: &str = "+74951234567";

/// Which database a test's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A database of its own on the tests' PostgreSQL ([`postgres`]).
    Postgres,
}

/// Runs a test body, written once against a [`Harness`] started by
/// [`start_on`] and friends, on both backends: `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$body($crate::common::Backend::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$body($crate::common::Backend::Postgres);
            }
        }
    )*};
}

pub struct Harness {
    pub server: Spawned,
    /// The SQLite file (unused on PostgreSQL).
    pub db: PathBuf,
    /// The PostgreSQL database's URL, on that backend.
    pub pg: Option<String>,
    pub client: crate::common::http::Client,
    _dir: tempfile::TempDir,
}

pub fn start(server_extra: &str, site_extra: &str, pool: &str) -> Harness {
    start_with_clock(server_extra, site_extra, pool, Arc::new(SystemClock))
}

pub fn start_with_clock(server_extra: &str, site_extra: &str, pool: &str, clock: Arc<dyn Clock>) -> Harness {
    start_with_toml(|db| site_toml(db, server_extra, site_extra, pool), clock)
}

/// The app on the configuration `toml` writes for a fresh database path.
pub fn start_with_toml(toml: impl FnOnce(&Path) -> String, clock: Arc<dyn Clock>) -> Harness {
    start_with_toml_on(Backend::Sqlite, "start_with_toml", toml, clock).expect("SQLite is always there")
}

/// [`start`] on `backend`; `None` when the backend is PostgreSQL and there
/// is none here (the test then passes after a SKIPPED line).
pub fn start_on(backend: Backend, test: &str, server_extra: &str, site_extra: &str, pool: &str) -> Option<Harness> {
    start_with_clock_on(backend, test, server_extra, site_extra, pool, Arc::new(SystemClock))
}

pub fn start_with_clock_on(
    backend: Backend,
    test: &str,
    server_extra: &str,
    site_extra: &str,
    pool: &str,
    clock: Arc<dyn Clock>,
) -> Option<Harness> {
    start_with_toml_on(backend, test, |db| site_toml(db, server_extra, site_extra, pool), clock)
}

/// [`start_with_toml`] on `backend`: on PostgreSQL, `database` names a
/// fresh database instead of the file `toml` was given.
pub fn start_with_toml_on(
    backend: Backend,
    test: &str,
    toml: impl FnOnce(&Path) -> String,
    clock: Arc<dyn Clock>,
) -> Option<Harness> {
    start_with_sink_on(backend, test, toml, clock, |_| None)
}

/// [`start_with_toml_on`] with the server's PBX routes going through the
/// sink `sink` makes of the server's configuration, when it makes one,
/// instead of the server's own ([`call_store_of`] opens the calls store of
/// the same database for it).
pub fn start_with_sink_on(
    backend: Backend,
    test: &str,
    toml: impl FnOnce(&Path) -> String,
    clock: Arc<dyn Clock>,
    sink: impl FnOnce(&Config) -> Option<Arc<dyn CallSink>>,
) -> Option<Harness> {
    let TestDatabase { dir, file: db, pg } = TestDatabase::on(backend, test)?;
    let config = parse_config(&on_database(&toml(&db), &db, pg.as_deref()));
    let sink = sink(&config);
    let server = server::spawn_with(config, "127.0.0.1:0".parse().unwrap(), clock, sink).unwrap();
    let client = crate::common::http::Client::builder().user_agent(BROWSER_UA).build().unwrap();
    Some(Harness { server, db, pg, client, _dir: dir })
}

/// A fresh database on a backend, for tests that start the collector
/// themselves (`ringsource serve` as a child, the command-line tools, or
/// servers one after another on one database): a SQLite file's path in a
/// temp dir, or a database of its own on the tests' PostgreSQL.
pub struct TestDatabase {
    pub dir: tempfile::TempDir,
    /// The SQLite file, named by the configurations the test writes (on
    /// PostgreSQL, [`TestDatabase::toml`] puts the URL in its place).
    pub file: PathBuf,
    pub pg: Option<String>,
}

impl TestDatabase {
    /// `None` when the backend is PostgreSQL and there is none here (the
    /// test then passes after a SKIPPED line).
    pub fn on(backend: Backend, test: &str) -> Option<TestDatabase> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ringsource.sqlite");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres::database(test)?),
        };
        Some(TestDatabase { dir, file, pg })
    }

    /// A configuration written for [`TestDatabase::file`], on this database.
    pub fn toml(&self, text: &str) -> String {
        on_database(text, &self.file, self.pg.as_deref())
    }

    /// [`TestDatabase::toml`], parsed as the collector would parse it.
    pub fn config(&self, text: &str) -> Config {
        parse_config(&self.toml(text))
    }

    /// [`TestDatabase::toml`] written to `name` beside the SQLite file.
    pub fn config_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, self.toml(text)).unwrap();
        path
    }

    /// See [`Harness::rows`].
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        read_rows(&self.file, self.pg.as_deref(), sql)
    }

    /// See [`Harness::scalar`].
    pub fn scalar(&self, sql: &str) -> i64 {
        scalar_of(&self.rows(sql), sql)
    }

    /// Rows whose foreign key names no row (see [`orphans`]); none on
    /// PostgreSQL, which refuses them itself.
    pub fn orphans(&self) -> Vec<(String, i64, String)> {
        match self.pg {
            Some(_) => Vec::new(),
            None => orphans(&rusqlite::Connection::open(&self.file).unwrap()),
        }
    }
}

/// `text`, a configuration that names the SQLite file `file`, with the
/// PostgreSQL URL `pg` in its place when there is one.
fn on_database(text: &str, file: &Path, pg: Option<&str>) -> String {
    let Some(url) = pg else { return text.to_owned() };
    let named = format!("database = \"{}\"", file.display());
    assert!(text.contains(&named), "the test's configuration names its database file");
    text.replace(&named, &format!("database = \"{url}\""))
}

fn parse_config(text: &str) -> Config {
    Config::from_toml_str(text, Path::new("test.toml"), &HashMap::<String, String>::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The `ringsource` binary these tests were built with.
pub fn ringsource_command() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ringsource"))
}

/// The rows `sql` reads from the SQLite file `file`, or from the
/// PostgreSQL database `pg` when there is one; every value as text.
fn read_rows(file: &Path, pg: Option<&str>, sql: &str) -> Vec<Vec<Option<String>>> {
    if let Some(url) = pg {
        return postgres::query(url, sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    let conn = rusqlite::Connection::open(file).unwrap();
    let mut st = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                    rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn scalar_of(rows: &[Vec<Option<String>>], sql: &str) -> i64 {
    assert_eq!(rows.len(), 1, "{sql} reads one row");
    rows[0][0].as_deref().map_or(0, |v| v.parse().unwrap_or_else(|_| panic!("{sql}: {v} is no integer")))
}

/// The calls store of the database `config` names, on its backend, opened
/// beside the server's.
pub fn call_store_of(config: &Config) -> Arc<dyn CallStore> {
    match &config.server.postgres {
        None => Arc::new(ringsource_collector::storage::sqlite::SqliteStorage::open(&config.server.database).unwrap()),
        Some(settings) => Arc::new(ringsource_collector::storage::postgres::PostgresStorage::open(settings).unwrap()),
    }
}

pub fn touch(channel: &str, source: &str, medium: &str) -> Value {
    json!({
        "channel": channel, "source": source, "medium": medium,
        "campaign": null, "term": null, "content": null, "utm_id": null, "click_id": null,
        "landing_path": "/", "referrer_host": null, "at_ms": 1_700_000_000_000u64
    })
}

pub fn paid() -> Value {
    touch("Paid Search", "google", "cpc")
}

pub fn visit_body(session_id: Option<&str>, touch: Value) -> Value {
    let mut body = json!({ "touch": touch, "page": { "url": "https://shop.example/", "title": "Shop" } });
    if let Some(s) = session_id {
        body["session_id"] = json!(s);
    }
    body
}

/// Rows in `conn`'s database whose foreign key names no row: (table, rowid
/// or -1 without one, parent table).
pub fn orphans(conn: &rusqlite::Connection) -> Vec<(String, i64, String)> {
    let mut st = conn.prepare("PRAGMA foreign_key_check").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(-1), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The collector leaves foreign keys to its code, not to SQLite (see
/// storage/sqlite.rs): every test's database is checked for rows that name a
/// parent that does not exist.
impl Drop for Harness {
    fn drop(&mut self) {
        // PostgreSQL enforces its foreign keys itself.
        if std::thread::panicking() || self.pg.is_some() {
            return;
        }
        let orphans = self.orphans();
        assert!(orphans.is_empty(), "rows naming a missing parent (table, rowid, parent table): {orphans:?}");
    }
}

impl Harness {
    /// The storage of the test's database, opened a second time beside the
    /// server's (on its backend), as the calls store of a `CallsService`
    /// that stands in for the server's PBX routes.
    pub fn call_store(&self) -> Arc<dyn ringsource_collector::storage::calls::CallStore> {
        match &self.pg {
            None => Arc::new(ringsource_collector::storage::sqlite::SqliteStorage::open(&self.db).unwrap()),
            Some(url) => {
                let text = format!("[server]\ndatabase = \"{url}\"\n");
                let config =
                    Config::from_toml_str(&text, Path::new("store.toml"), &HashMap::<String, String>::new()).unwrap();
                let settings = config.server.postgres.as_ref().unwrap();
                Arc::new(ringsource_collector::storage::postgres::PostgresStorage::open(settings).unwrap())
            }
        }
    }

    /// The configuration `toml` writes, on the test's database and backend
    /// (`toml` is given the SQLite file's path, as at the start).
    pub fn config(&self, toml: impl FnOnce(&Path) -> String) -> Config {
        parse_config(&on_database(&toml(&self.db), &self.db, self.pg.as_deref()))
    }

    /// Starts a server on the same database with the configuration `toml`
    /// writes, in place of the running one, which then stops: a restart
    /// with changed settings.
    pub fn restart_with_toml(&mut self, toml: impl FnOnce(&Path) -> String, clock: Arc<dyn Clock>) {
        let config = self.config(toml);
        self.server = server::spawn_with(config, "127.0.0.1:0".parse().unwrap(), clock, None).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Posts JSON as the browser does: `text/plain`, no preflight.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).header("content-type", "text/plain").body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    pub fn visit(&self, session_id: Option<&str>, touch: Value) -> Value {
        let (status, body) = self.post("/v1/sites/shop/visits", &visit_body(session_id, touch));
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn db(&self) -> rusqlite::Connection {
        assert!(self.pg.is_none(), "a SQLite connection to a test on PostgreSQL: use Harness::rows");
        rusqlite::Connection::open(&self.db).unwrap()
    }

    /// The rows `sql` reads from the test's database, whichever backend,
    /// every value as text (`None` for NULL). The SQL must be both's.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        read_rows(&self.db, self.pg.as_deref(), sql)
    }

    /// Every row of every table of the test's database, each value as
    /// text: what a test looks through for something that must not be
    /// stored.
    pub fn every_row(&self) -> Vec<(String, Vec<Option<String>>)> {
        let tables = match self.pg {
            None => "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            Some(_) => {
                "SELECT table_name FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            }
        };
        let mut every = Vec::new();
        for table in self.rows(tables).into_iter().filter_map(|r| r.into_iter().next().flatten()) {
            every.extend(self.rows(&format!("SELECT * FROM \"{table}\"")).into_iter().map(|r| (table.clone(), r)));
        }
        every
    }

    /// `text`, a configuration written for [`Harness::db`], on the test's
    /// database, written to `name` beside it (for the command-line tools).
    pub fn config_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.db.parent().unwrap().join(name);
        std::fs::write(&path, on_database(text, &self.db, self.pg.as_deref())).unwrap();
        path
    }

    /// Runs `sql`, one statement or several, on the test's database.
    pub fn execute(&self, sql: &str) {
        match &self.pg {
            Some(url) => {
                postgres::query(url, sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            }
            None => self.db().execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// The one integer `sql` reads (0 for NULL, as `SUM` of no rows).
    pub fn scalar(&self, sql: &str) -> i64 {
        scalar_of(&self.rows(sql), sql)
    }

    /// [`assert_no_number_leased_twice`] on either backend.
    pub fn assert_no_number_leased_twice(&self) {
        let open_dupes = self.scalar(
            "SELECT COUNT(*) FROM (SELECT number FROM leases WHERE ended_at_ms IS NULL GROUP BY number
             HAVING COUNT(*) > 1) AS d",
        );
        assert_eq!(open_dupes, 0, "a number has two open leases");
        let overlaps = self.scalar(
            "SELECT COUNT(*) FROM leases a JOIN leases b ON a.number = b.number AND a.id < b.id
             WHERE a.started_at_ms < COALESCE(b.ended_at_ms, b.expires_at_ms)
               AND b.started_at_ms < COALESCE(a.ended_at_ms, a.expires_at_ms)",
        );
        assert_eq!(overlaps, 0, "two leases on one number overlap in time");
    }

    /// This test's rows whose foreign key names no row (see [`orphans`]).
    pub fn orphans(&self) -> Vec<(String, i64, String)> {
        orphans(&self.db())
    }
}

/// Asserts the invariant through the database: no two leases on one number
/// overlap in time, and no number has two open leases.
pub fn assert_no_number_leased_twice(conn: &rusqlite::Connection) {
    let open_dupes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT number FROM leases WHERE ended_at_ms IS NULL GROUP BY number HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open_dupes, 0, "a number has two open leases");
    let overlaps: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM leases a JOIN leases b ON a.number = b.number AND a.id < b.id
             WHERE a.started_at_ms < COALESCE(b.ended_at_ms, b.expires_at_ms)
               AND b.started_at_ms < COALESCE(a.ended_at_ms, a.expires_at_ms)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(overlaps, 0, "two leases on one number overlap in time");
}
