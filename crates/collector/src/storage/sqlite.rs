//! [`Storage`] on one SQLite file.
//!
//! One connection behind a mutex does all the work: SQLite allows a single
//! writer anyway, every request here writes (sessions, touches, leases), and
//! WAL lets outside readers (reports, tests, `sqlite3`) read meanwhile.
//! The hot writes (visits, heartbeats, page views) go through the [`writer`]
//! thread, which batches them; the rest lock the connection directly.
//! Writes run in `BEGIN IMMEDIATE`, which takes the write lock up front so two
//! processes on the same file cannot interleave a lease.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ringsource_core::lease::Groups;
use ringsource_core::phone::PhoneNumber;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use super::{PageViewCommand, Pending, Renewal, Storage, StorageError, VisitCommand, VisitOutcome};
use crate::clock::Clock;
use crate::config::server::DEFAULT_WAL_PREALLOCATE_MIB;
use crate::config::{ServerConfig, Site};
use leases::LeaseBook;
use writer::Job;

pub mod backup;
pub mod call_notes;
mod calls;
mod checkpoint;
mod leases;
pub mod money;
mod pools;
pub mod privacy;
pub mod recordings;
mod tally;
pub mod to_postgres;
pub mod users;
pub mod visitor_facts;
mod visits;
mod wal;
mod writer;

const SCHEMA_V1: &str = include_str!("sqlite/schema/v1.sql");
const SCHEMA_V2: &str = include_str!("sqlite/schema/v2.sql");
const SCHEMA_V3: &str = include_str!("sqlite/schema/v3.sql");
const SCHEMA_V4: &str = include_str!("sqlite/schema/v4.sql");
const SCHEMA_V5: &str = include_str!("sqlite/schema/v5.sql");
const SCHEMA_V6: &str = include_str!("sqlite/schema/v6.sql");
const SCHEMA_V7: &str = include_str!("sqlite/schema/v7.sql");
const SCHEMA_V8: &str = include_str!("sqlite/schema/v8.sql");
const SCHEMA_V9: &str = include_str!("sqlite/schema/v9.sql");
const SCHEMA_V10: &str = include_str!("sqlite/schema/v10.sql");
const SCHEMA_V11: &str = include_str!("sqlite/schema/v11.sql");
const SCHEMA_V12: &str = include_str!("sqlite/schema/v12.sql");

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_V1),
        M::up(SCHEMA_V2),
        M::up(SCHEMA_V3),
        M::up(SCHEMA_V4),
        M::up(SCHEMA_V5),
        // Rebuilds a table that others refer to: foreign keys are off while it
        // runs, so they are checked before it commits.
        M::up(SCHEMA_V6).foreign_key_check(),
        M::up(SCHEMA_V7),
        M::up(SCHEMA_V8),
        M::up(SCHEMA_V9),
        M::up(SCHEMA_V10),
        M::up(SCHEMA_V11),
        M::up(SCHEMA_V12),
    ])
}

/// The schema version this build migrates SQLite files to (their `PRAGMA
/// user_version` once the collector has opened them): what `ringsource
/// migrate` requires of the file it copies.
pub fn latest_schema_version() -> Result<i64, StorageError> {
    let mut conn = Connection::open_in_memory().map_err(sql("opening an in-memory database"))?;
    // Silently: rusqlite_migration logs "Database migrated", which would read
    // as if the operator's file had been changed.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || migrate(&mut conn))?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("reading the schema version"))
}

/// Migrates to the latest schema. Foreign keys are off on the collector's
/// connection (see [`connect`]), as SQLite also requires for rebuilding a
/// table that others refer to; migrations that rebuild one check the keys
/// themselves.
fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    migrations().to_latest(conn).map_err(|e| StorageError::Migrate(Box::new(e)))
}

/// A connection of its own to the collector's database at `path`, created
/// and migrated if need be, set up as the writer's is (WAL, busy timeout,
/// foreign keys off), with no WAL written out ahead. For the modules that
/// keep their SQL beside them (users and sessions, call tags and notes,
/// visitor facts, recordings): SQLite lets one writer in at a time whoever
/// holds the connection, and their writes are small.
pub fn side_connection(path: &Path) -> Result<Connection, StorageError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StorageError::CreateDir { path: dir.display().to_string(), source })?;
    }
    let mut conn = connect(path, SqliteOptions { wal_preallocate_bytes: 0, ..SqliteOptions::default() })?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Wraps a rusqlite error with what was being done.
fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |source: rusqlite::Error| StorageError::Sql { doing, source: Box::new(source) }
}

pub struct SqliteStorage {
    inner: Arc<Mutex<Inner>>,
    /// `<db>-wal`, synced before an acknowledged write is answered.
    wal: PathBuf,
    ack_sync: AckSync,
    /// The queue of the [`writer`] thread, which shares `inner`.
    writer: Sender<Job>,
    /// Dropping it stops the [`checkpoint`] thread.
    _checkpointer: Sender<()>,
}

struct Inner {
    conn: Connection,
    /// The latest time handed out, so time under the lock never runs
    /// backwards even if the wall clock does (NTP steps).
    last_now_ms: i64,
    /// The pool numbers' state, kept by the writer.
    book: LeaseBook,
}

/// The current time, never before the last one handed out.
fn tick(last_now_ms: &mut i64, clock: &dyn Clock) -> i64 {
    *last_now_ms = clock.now_ms().max(*last_now_ms);
    *last_now_ms
}

/// How the database file is kept on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Bytes of WAL written out before the first write ([`wal`]); 0 leaves
    /// the WAL to grow as SQLite writes it.
    pub wal_preallocate_bytes: u64,
    /// How acknowledged writes reach the disk before they are answered.
    pub ack_sync: AckSync,
}

impl Default for SqliteOptions {
    /// [`DEFAULT_WAL_PREALLOCATE_MIB`] of WAL.
    fn default() -> Self {
        Self { wal_preallocate_bytes: u64::from(DEFAULT_WAL_PREALLOCATE_MIB) << 20, ack_sync: AckSync::default() }
    }
}

impl SqliteOptions {
    /// The options `[server]` sets; the rest default.
    pub fn of(server: &ServerConfig) -> Self {
        Self { wal_preallocate_bytes: server.wal_preallocate_bytes, ..Self::default() }
    }
}

/// How a write that someone is told is done reaches the disk first: call
/// events (a PBX does not send an acknowledged report again), revenue and
/// cost uploads, promo codes named by a manager. Visits, heartbeats and
/// page views commit with `synchronous = NORMAL` whatever this says: the WAL
/// is synced when the checkpoint thread copies it back, and by the next
/// acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckSync {
    /// The commit syncs the WAL (`synchronous = FULL` for that
    /// transaction), while it holds the connection.
    Commit,
    /// After the commit, with the connection free for the visits again, the
    /// WAL file is synced; then the caller is answered.
    #[default]
    AfterCommit,
    /// Not synced before the answer: how the collector answered before
    /// acknowledgements were made durable, kept as the baseline that
    /// `benches/durable_acks.rs` measures them against.
    Off,
}

impl SqliteStorage {
    /// Opens (creating if needed) and migrates the database at `path`, with
    /// the default [`SqliteOptions`].
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`Self::open`] with the server's [`SqliteOptions`].
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StorageError::CreateDir { path: dir.display().to_string(), source })?;
        }
        let mut conn = connect(path, options)?;
        migrate(&mut conn)?;
        let mut options = options;
        if options.wal_preallocate_bytes > 0 {
            // Closing the only connection checkpoints the WAL and deletes it
            // (unless another process has the file open), which makes room
            // for the preallocated one.
            drop(conn);
            let wal = wal::preallocate(path, options.wal_preallocate_bytes).map_err(|source| {
                StorageError::PreallocateWal { path: wal::path_of(path).display().to_string(), source }
            })?;
            // A small disk makes a smaller WAL (or none), and SQLite keeps it at that size.
            options.wal_preallocate_bytes = wal.bytes(options.wal_preallocate_bytes);
            conn = connect(path, options)?;
        }
        // The connection has the WAL open now (preallocated, or created by
        // SQLite), and keeps that file until it closes. Acknowledged writes
        // sync the WAL's data, not the folder that names it; SQLite syncs the
        // folder when it first syncs the WAL's header, which is at the first
        // write (the site sync, before anyone is answered). Synced here, the
        // names do not depend on that order: the WAL the last run deleted
        // cannot come back in place of this one after a power cut.
        sync_dir(path).map_err(|source| StorageError::SyncDir { path: path.display().to_string(), source })?;
        let restart_due = checkpoint::RestartDue::default();
        let restart_frames = wal::restart_frames(options.wal_preallocate_bytes);
        let checkpointer = checkpoint::spawn(path, restart_frames, Arc::clone(&restart_due))?;
        let inner = Arc::new(Mutex::new(Inner { conn, last_now_ms: i64::MIN, book: LeaseBook::default() }));
        let writer = writer::spawn(Arc::clone(&inner), restart_due).map_err(StorageError::Thread)?;
        Ok(Self { inner, wal: wal::path_of(path), ack_sync: options.ack_sync, writer, _checkpointer: checkpointer })
    }

    /// Runs `write`, whose transaction commits what someone will be told is
    /// done, so that the commit is on disk when it returns `Ok` (see
    /// [`AckSync`]). The answer to a retry that finds the write done is
    /// synced too: the write it found may have been committed by another
    /// request that is still syncing.
    fn acknowledged<T, E: From<StorageError>>(
        &self,
        clock: &dyn Clock,
        write: impl FnOnce(&mut Connection, i64) -> Result<T, E>,
    ) -> Result<T, E> {
        let result = {
            let (mut inner, now_ms) = self.lock(clock);
            if self.ack_sync == AckSync::Commit {
                inner.conn.pragma_update(None, "synchronous", "FULL").map_err(sql("syncing commits"))?;
                let result = write(&mut inner.conn, now_ms);
                inner.conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql("no longer syncing commits"))?;
                result
            } else {
                write(&mut inner.conn, now_ms)
            }
        };
        if result.is_ok() && self.ack_sync == AckSync::AfterCommit {
            self.sync_wal()?;
        }
        result
    }

    /// Syncs the WAL: every commit written to it so far is on disk after
    /// this. The WAL keeps its file while the collector runs (it is only
    /// cut back in place, after a checkpoint has copied its frames into
    /// the database and synced that), so syncing the file by name reaches
    /// the frames the connection wrote.
    fn sync_wal(&self) -> Result<(), StorageError> {
        std::fs::File::open(&self.wal)
            .and_then(|f| f.sync_data())
            .map_err(|source| StorageError::SyncWal { path: self.wal.display().to_string(), source })
    }

    /// Queues a job for the writer. If the writer is gone the job is dropped,
    /// and its caller hears [`StorageError::WriterGone`].
    fn send(&self, job: Job) {
        drop(self.writer.send(job));
    }

    /// The connection and the current time, read under the lock.
    fn lock(&self, clock: &dyn Clock) -> (MutexGuard<'_, Inner>, i64) {
        // A panic inside a transaction rolls it back when the transaction is
        // dropped, so the connection is still consistent after poisoning.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let now_ms = tick(&mut inner.last_now_ms, clock);
        (inner, now_ms)
    }
}

/// Syncs the directory that holds `db`, so that the names of the database
/// and its WAL, as they are now, survive a power cut.
#[cfg(unix)]
fn sync_dir(db: &Path) -> std::io::Result<()> {
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file to sync it; NTFS journals its
/// names itself.
#[cfg(not(unix))]
fn sync_dir(_db: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The writer's connection, configured.
fn connect(path: &Path, options: SqliteOptions) -> Result<Connection, StorageError> {
    let open_err =
        |source: rusqlite::Error| StorageError::Open { path: path.display().to_string(), source: Box::new(source) };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    // WAL + NORMAL: durable at checkpoints, ~40x the transactions of FULL
    // on this hardware; a power cut can lose the visits and leases of the
    // last checkpoint interval, which heal on the next heartbeat. Writes
    // whose senders will not send them again sync the WAL before they are
    // answered instead ([`AckSync`]).
    // Foreign keys are declared but not enforced here: every write path
    // stores a parent before the rows that name it (a session before its
    // touches, page views, leases and pool events), and looking the parents
    // up on every insert was a sixth of the writer's instructions per visit.
    // The collector's integration tests check the keys of every database
    // they leave behind (`PRAGMA foreign_key_check`).
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;")
        .map_err(open_err)?;
    // The writer's statements, each prepared once per connection.
    conn.set_prepared_statement_cache_capacity(64);
    // 32 MiB of page cache (the default is 2 MiB): the indexes the
    // writer touches on every visit stay in memory instead of being
    // read back from the OS for each batch.
    conn.pragma_update(None, "cache_size", -32_768).map_err(open_err)?;
    // The checkpointer thread copies the WAL back instead (see there).
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(open_err)?;
    if options.wal_preallocate_bytes > 0 {
        // A restarted WAL is cut back to its preallocated size, not to nothing.
        let limit = i64::try_from(options.wal_preallocate_bytes).unwrap_or(i64::MAX);
        conn.pragma_update(None, "journal_size_limit", limit).map_err(open_err)?;
    }
    Ok(conn)
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StorageError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql("beginning a write transaction"))
}

impl Storage for SqliteStorage {
    fn sync_sites(&self, sites: &[Site], clock: &dyn Clock) -> Result<(), StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        // Pools may have changed; the writer reloads what it needs.
        inner.book.clear();
        let tx = immediate(&mut inner.conn)?;
        tx.execute("UPDATE numbers SET active = 0", []).map_err(sql("deactivating numbers"))?;
        for site in sites {
            tx.execute(
                "INSERT INTO sites (id, updated_at_ms) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET updated_at_ms = excluded.updated_at_ms",
                params![site.id, now_ms],
            )
            .map_err(sql("saving a site"))?;
            let upsert = |number: &PhoneNumber, kind: &str, pool: Option<&str>, label: Option<&str>| {
                tx.execute(
                    "INSERT INTO numbers (number, site_id, kind, pool_id, label, active) VALUES (?1, ?2, ?3, ?4, ?5, 1)
                     ON CONFLICT(number) DO UPDATE SET site_id = excluded.site_id, kind = excluded.kind,
                        pool_id = excluded.pool_id, label = excluded.label, active = 1",
                    params![number.e164(), site.id, kind, pool, label],
                )
                .map(drop)
                .map_err(sql("saving a number"))
            };
            for n in &site.originals {
                upsert(n, "original", None, None)?;
            }
            if let Some(n) = &site.overflow_number {
                upsert(n, "overflow", None, None)?;
            }
            for s in &site.static_numbers {
                upsert(&s.number, "static", None, Some(&s.label))?;
            }
            for p in &site.pools {
                for n in &p.numbers {
                    upsert(n, "pool", Some(&p.id), None)?;
                }
            }
            calls::recredit_static_calls(&tx, site)?;
        }
        tx.commit().map_err(sql("committing the site sync"))
    }

    fn visit(&self, cmd: VisitCommand, clock: Arc<dyn Clock>) -> Pending<VisitOutcome> {
        let (answer, pending) = Pending::channel();
        self.send(Job::Visit { cmd: Box::new(cmd), clock, answer });
        pending
    }

    fn heartbeat(
        &self,
        site: Arc<Site>,
        session_id: String,
        client: Option<Groups>,
        clock: Arc<dyn Clock>,
    ) -> Pending<Renewal> {
        let (answer, pending) = Pending::channel();
        self.send(Job::Heartbeat { site, session_id, client, clock, answer });
        pending
    }

    fn page_view(&self, view: PageViewCommand, clock: Arc<dyn Clock>) -> Pending<bool> {
        let (answer, pending) = Pending::channel();
        self.send(Job::PageView { view, clock, answer });
        pending
    }

    fn ping(&self) -> Pending<()> {
        let (answer, pending) = Pending::channel();
        self.send(Job::Ping { answer });
        pending
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{SqliteOptions, SqliteStorage, migrations, wal};

    /// The dashboard's default views find their rows through an index, not
    /// by reading a table whole: at a year of a large site (issue #17) each
    /// of these read seconds' worth. The collector never runs `ANALYZE`, so
    /// the plans here are the plans it runs at any size.
    #[test]
    fn the_default_views_search_indexes_instead_of_reading_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.sqlite");
        drop(SqliteStorage::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let plan = |sql: &str| -> String {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            // Unbound values are NULL: the plan does not depend on them.
            let nulls = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
            let rows = st.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
        };
        // Newest calls across sites: walked backwards on the ring-time index.
        let list = plan(&super::calls::list_query("", 50, 0));
        assert!(list.contains("calls_by_time") && !list.contains("B-TREE"), "{list}");
        // The pools report's leases: those ending after its window starts.
        let leases = plan(super::pools::LEASES_IN_WINDOW);
        assert!(leases.contains("SEARCH leases USING INDEX leases_by_end"), "{leases}");
        // ...and its count of live leases keeps to the open ones.
        let live = plan(super::pools::LIVE_LEASES);
        assert!(live.contains("leases_open_by_session"), "{live}");
        // Demo data: by the PBX name, not the site's calls.
        let demo = plan(super::money::HAS_DEMO_DATA);
        assert!(demo.contains("sqlite_autoindex_calls_1 (pbx=?)"), "{demo}");
    }

    /// SQLite takes the preallocated WAL over: commits land in it (another
    /// connection reads them while the storage is open), it keeps its size,
    /// and they are in the database after a restart.
    #[test]
    fn a_preallocated_wal_holds_commits_and_keeps_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.sqlite");
        let options = SqliteOptions { wal_preallocate_bytes: 1 << 20, ..SqliteOptions::default() };
        let wal_len = || std::fs::metadata(wal::path_of(&path)).unwrap().len();
        let sites = |conn: &Connection| -> Vec<String> {
            conn.prepare("SELECT id FROM sites ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        {
            let storage = SqliteStorage::open_with(&path, options).unwrap();
            assert_eq!(wal_len(), 1 << 20);
            storage.inner.lock().unwrap().conn.execute_batch("INSERT INTO sites VALUES ('one', 0)").unwrap();
            storage.inner.lock().unwrap().conn.execute_batch("INSERT INTO sites VALUES ('two', 0)").unwrap();
            let reader = Connection::open(&path).unwrap();
            assert_eq!(sites(&reader), ["one", "two"]);
            let check: String = reader.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            assert_eq!(check, "ok");
            assert_eq!(wal_len(), 1 << 20);
        }
        let storage = SqliteStorage::open_with(&path, options).unwrap();
        assert_eq!(sites(&storage.inner.lock().unwrap().conn), ["one", "two"]);
    }

    /// Version 11 spells the lease end reasons with hyphens, as every other
    /// stored value: a version 10 file's rows are rewritten, the open-lease
    /// index survives the rebuild, and the old spelling is refused after.
    #[test]
    fn version_11_spells_lease_ends_with_hyphens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v10.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        migrations().to_version(&mut conn, 10).unwrap();
        conn.execute_batch(
            "INSERT INTO sites VALUES ('s', 0);
             INSERT INTO numbers (number, site_id, kind, pool_id) VALUES ('+15550001', 's', 'pool', 'p');
             INSERT INTO sessions (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms,
                                   asked_pools)
                 VALUES ('a', 's', NULL, NULL, 'ua', 0, 1, 1, NULL), ('b', 's', NULL, NULL, 'ua', 0, 2, 2, NULL);
             INSERT INTO leases (id, site_id, pool_id, number, session_id, started_at_ms, expires_at_ms,
                                 hold_secs, ended_at_ms, end_reason)
                 VALUES (1, 's', 'p', '+15550001', 'a', 1, 5, 4, 2, 'taken_over'),
                        (2, 's', 'p', '+15550001', 'b', 2, 9, 6, 3, 'handed_over'),
                        (3, 's', 'p', '+15550001', 'a', 3, 9, 6, 4, 'expired'),
                        (4, 's', 'p', '+15550001', 'b', 4, 9, 6, NULL, NULL);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let reasons: Vec<Option<String>> = conn
            .prepare("SELECT end_reason FROM leases ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            reasons,
            [Some("taken-over".to_owned()), Some("handed-over".to_owned()), Some("expired".to_owned()), None]
        );
        let refused = |sql: &str| conn.execute_batch(sql).unwrap_err().to_string();
        assert!(refused("UPDATE leases SET end_reason = 'taken_over' WHERE id = 1").contains("CHECK"));
        assert!(
            refused(
                "INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs)
                 VALUES ('s', 'p', '+15550001', 'a', 5, 9, 4)"
            )
            .contains("UNIQUE"),
            "a second open lease of the number"
        );
    }

    /// Version 4 rebuilds `leases` and `pool_events`, version 5 moves the
    /// touch JSON's last fields into columns, version 6 rebuilds `sessions`
    /// without a rowid, version 7 drops the pool events' index: a file written
    /// by version 3 keeps its rows, and the rebuilt tables still refuse what
    /// the old ones refused.
    #[test]
    fn versions_4_to_7_keep_rows_and_rules_of_a_version_3_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.sqlite");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 3).unwrap();
            conn.execute_batch(
                "INSERT INTO sites VALUES ('s', 0);
                 INSERT INTO numbers (number, site_id, kind, pool_id) VALUES ('+15550001', 's', 'pool', 'p');
                 INSERT INTO sessions VALUES ('a', 's', NULL, NULL, 'ua', 0, 1, 1), ('b', 's', NULL, NULL, 'ua', 0, 2, 2);
                 INSERT INTO leases (id, site_id, pool_id, number, session_id, started_at_ms, expires_at_ms,
                                     hold_secs, ended_at_ms, end_reason)
                     VALUES (7, 's', 'p', '+15550001', 'a', 1, 5, 4, 3, 'taken_over'),
                            (8, 's', 'p', '+15550001', 'b', 3, 9, 6, NULL, NULL);
                 INSERT INTO pool_events (id, site_id, pool_id, at_ms, session_id, policy, outcome, number,
                                          taken_from_session)
                     VALUES (4, 's', 'p', 3, 'b', 'take-over-oldest', 'taken-over', '+15550001', 'a');
                 INSERT INTO touches (session_id, role, at_ms, recorded_at_ms, channel, source, medium, landing_path,
                                      touch_json)
                     VALUES ('a', 'first', 1, 1, 'Referral', 'news.example', 'referral', '/',
                             '{\"channel\":\"Referral\",\"utm_id\":\"spring-42\",\"referrer_host\":\"news.example\"}'),
                            ('b', 'first', 2, 2, 'Direct', '(direct)', '(none)', '/', '{\"channel\":\"Direct\"}');",
            )
            .unwrap();
        }
        // Version 9 replaces pool_events (see the next test), so this one
        // stops at 8. Foreign keys off, as on the collector's connection
        // (version 6 rebuilds a parent).
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        migrations().to_version(&mut conn, 8).unwrap();
        drop(conn);

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 8);
        let sessions: Vec<(String, String, i64)> = conn
            .prepare("SELECT id, user_agent, last_seen_ms FROM sessions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(sessions, [("a".to_owned(), "ua".to_owned(), 1), ("b".to_owned(), "ua".to_owned(), 2)]);
        assert!(conn.prepare("SELECT rowid FROM sessions").is_err(), "sessions has no rowid");
        let leases: Vec<(i64, String, Option<i64>, Option<String>)> = conn
            .prepare("SELECT id, session_id, ended_at_ms, end_reason FROM leases ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            leases,
            [(7, "a".to_owned(), Some(3), Some("taken_over".to_owned())), (8, "b".to_owned(), None, None)]
        );
        let event: (i64, String, String, String) = conn
            .query_row("SELECT id, policy, outcome, taken_from_session FROM pool_events", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(event, (4, "take-over-oldest".to_owned(), "taken-over".to_owned(), "a".to_owned()));
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'pool_events' AND type = 'index'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "version 7 drops the pool events' index");
        let touches: Vec<(String, Option<String>, Option<String>)> = conn
            .prepare("SELECT session_id, utm_id, referrer_host FROM touches ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            touches,
            [
                ("a".to_owned(), Some("spring-42".to_owned()), Some("news.example".to_owned())),
                ("b".to_owned(), None, None)
            ]
        );
        assert!(conn.prepare("SELECT touch_json FROM touches").is_err(), "touch_json is gone");

        let refused = |sql: &str| conn.execute(sql, []).unwrap_err().to_string();
        assert!(refused("UPDATE leases SET end_reason = 'lost' WHERE id = 7").contains("CHECK"));
        assert!(refused("UPDATE leases SET end_reason = NULL WHERE id = 7").contains("CHECK"));
        let event = |policy: &str, outcome: &str| {
            format!(
                "INSERT INTO pool_events (site_id, pool_id, at_ms, session_id, policy, outcome)
                 VALUES ('s', 'p', 4, 'a', '{policy}', '{outcome}')"
            )
        };
        assert!(refused(&event("random", "original")).contains("CHECK"));
        assert!(refused(&event("original", "lost")).contains("CHECK"));
        conn.execute(&event("original", "original"), []).unwrap();
        // The invariant's index came back with the table: one open lease per number.
        let open_lease = "INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms,
                                              hold_secs)
                          VALUES ('s', 'p', '+15550001', 'a', 4, 9, 5)";
        assert!(refused(open_lease).contains("UNIQUE"));
        // And the foreign keys: no lease for a session that does not exist.
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let stranger = "INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms,
                                            hold_secs, ended_at_ms, end_reason)
                        VALUES ('s', 'p', '+15550001', 'nobody', 4, 9, 5, 9, 'expired')";
        assert!(refused(stranger).contains("FOREIGN KEY"));
        // The rebuilt sessions table is still the parent: a session with leases cannot go.
        assert!(refused("DELETE FROM sessions WHERE id = 'a'").contains("FOREIGN KEY"));
        assert!(
            refused(
                "INSERT INTO sessions (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms)
                 VALUES ('a', 's', NULL, NULL, 'ua', 0, 3, 3)"
            )
            .contains("UNIQUE")
        );
    }

    /// Version 9 counts pool refusals and first asks per minute: a version 8
    /// file's events become counts (taken-over numbers kept apart), each
    /// session's first ask of a pool (a lease or an event) is counted in its
    /// minute, and sessions remember the pools they asked.
    #[test]
    fn version_9_counts_a_version_8_files_pool_events_per_minute() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8.sqlite");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 8).unwrap();
            conn.execute_batch(
                "INSERT INTO sites VALUES ('s', 0);
                 INSERT INTO numbers (number, site_id, kind, pool_id) VALUES ('+15550001', 's', 'pool', 'p'),
                                                                           ('+15550002', 's', 'pool', 'q');
                 INSERT INTO sessions VALUES ('a', 's', NULL, NULL, 'ua', 0, 1, 1), ('b', 's', NULL, NULL, 'ua', 0, 2, 2),
                                             ('c', 's', NULL, NULL, 'ua', 0, 2, 2), ('d', 's', NULL, NULL, 'ua', 0, 2, 2);
                 -- a: a lease in p at 1 s, and one in q at 61 s.
                 INSERT INTO leases (site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs)
                     VALUES ('s', 'p', '+15550001', 'a', 1000, 901000, 900),
                            ('s', 'q', '+15550002', 'a', 61000, 961000, 900);
                 -- b: refused twice in p (the first at 2 s), then a lease there taken over from a.
                 -- c: refused in p at 59 s. d: refused in p at 60 s.
                 INSERT INTO pool_events (site_id, pool_id, at_ms, session_id, policy, outcome, number,
                                          taken_from_session)
                     VALUES ('s', 'p', 2000, 'b', 'overflow', 'overflow', '+15550099', NULL),
                            ('s', 'p', 3000, 'b', 'overflow', 'overflow', '+15550099', NULL),
                            ('s', 'p', 59000, 'c', 'overflow', 'overflow', '+15550099', NULL),
                            ('s', 'p', 60000, 'd', 'original', 'original', NULL, NULL),
                            ('s', 'p', 70000, 'b', 'take-over-oldest', 'taken-over', '+15550001', 'a');",
            )
            .unwrap();
        }
        drop(SqliteStorage::open(&path).unwrap());

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 12, "the latest version, through 9");
        assert!(conn.prepare("SELECT * FROM pool_events").is_err(), "pool_events is gone");
        type Row = (String, i64, String, String, String, String, i64, i64, i64);
        let refusals: Vec<Row> = conn
            .prepare(
                "SELECT pool_id, minute_ms, reason, policy, outcome, number, events, first_at_ms, last_at_ms
                 FROM pool_exhaustions ORDER BY minute_ms, policy",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |minute, policy: &str, outcome: &str, number: &str, events, first, last| {
            let (p, e) = ("p".to_owned(), "exhausted".to_owned());
            (p, minute, e, policy.to_owned(), outcome.to_owned(), number.to_owned(), events, first, last)
        };
        assert_eq!(
            refusals,
            [
                row(0, "overflow", "overflow", "+15550099", 3, 2000, 59000),
                row(60000, "original", "original", "", 1, 60000, 60000),
                row(60000, "take-over-oldest", "taken-over", "+15550001", 1, 70000, 70000),
            ]
        );
        let first_asks: Vec<(String, i64, i64)> = conn
            .prepare("SELECT pool_id, minute_ms, sessions FROM pool_first_asks ORDER BY pool_id, minute_ms")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // p: a (1 s), b (2 s) and c (59 s) in minute 0, d (60 s) in minute 1; q: a (61 s).
        assert_eq!(first_asks, [("p".to_owned(), 0, 3), ("p".to_owned(), 60000, 1), ("q".to_owned(), 60000, 1)]);
        let asked: Vec<(String, Option<String>)> = conn
            .prepare("SELECT id, asked_pools FROM sessions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut a_pools: Vec<&str> = asked[0].1.as_deref().unwrap().split(' ').collect();
        a_pools.sort_unstable();
        assert_eq!(a_pools, ["p", "q"]);
        assert_eq!(
            asked[1..],
            [("b".into(), Some("p".into())), ("c".into(), Some("p".into())), ("d".into(), Some("p".into()))]
        );

        let refused = |sql: &str| conn.execute(sql, []).unwrap_err().to_string();
        let refusal = |reason: &str, outcome: &str| {
            format!(
                "INSERT INTO pool_exhaustions VALUES ('s', 'p', 120000, '{reason}', 'overflow', '{outcome}', '', 1, 1, 1)"
            )
        };
        assert!(refused(&refusal("bored", "overflow")).contains("CHECK"));
        assert!(refused(&refusal("exhausted", "lost")).contains("CHECK"));
        conn.execute(&refusal("over-share", "original"), []).unwrap();
        assert!(refused(&refusal("over-share", "original")).contains("UNIQUE"));
        // And on through 10: the sessions have no place or device yet.
        let places: i64 = conn
            .query_row("SELECT count(*) FROM sessions WHERE country IS NULL AND device_type IS NULL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(places, 4);
    }

    /// Version 10 adds dashboard users, call tags and notes, and the
    /// visitor's place and device to sessions: a version 9 file keeps its
    /// sessions (with the pools they asked) and its per-minute counts, its
    /// sessions have no place until a new visit, and the new tables refuse
    /// what they should.
    #[test]
    fn version_10_keeps_a_version_9_files_sessions_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.sqlite");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 9).unwrap();
            conn.execute_batch(
                "INSERT INTO sites VALUES ('s', 0);
                 INSERT INTO sessions (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms,
                                       asked_pools)
                     VALUES ('a', 's', 'ga1', NULL, 'ua', 0, 1, 5, 'p q'), ('b', 's', NULL, NULL, 'ua', 1, 2, 2, NULL);
                 INSERT INTO pool_exhaustions VALUES ('s', 'p', 60000, 'over-share', 'overflow', 'overflow',
                                                      '+15550099', 7, 60001, 119999);
                 INSERT INTO pool_first_asks VALUES ('s', 'p', 0, 3);",
            )
            .unwrap();
        }
        drop(SqliteStorage::open(&path).unwrap());

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 12, "the latest version, through 10");
        type Session = (String, Option<String>, i64, Option<String>, Option<String>, Option<String>);
        let sessions: Vec<Session> = conn
            .prepare("SELECT id, client_id, last_seen_ms, asked_pools, region, browser FROM sessions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            sessions,
            [
                ("a".to_owned(), Some("ga1".to_owned()), 5, Some("p q".to_owned()), None, None),
                ("b".to_owned(), None, 2, None, None, None)
            ]
        );
        let counts: (i64, i64) = conn
            .query_row(
                "SELECT (SELECT events FROM pool_exhaustions WHERE reason = 'over-share'),
                        (SELECT sessions FROM pool_first_asks)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(counts, (7, 3));

        let refused = |sql: &str| conn.execute(sql, []).unwrap_err().to_string();
        let user = |name: &str, role: &str| {
            format!(
                "INSERT INTO users (username, role, all_sites, password_hash, created_at_ms, updated_at_ms)
                 VALUES ('{name}', '{role}', 1, '$argon2id$', 1, 1)"
            )
        };
        assert!(refused(&user("olga", "owner")).contains("CHECK"));
        conn.execute(&user("olga", "manager"), []).unwrap();
        assert!(refused(&user("olga", "marketer")).contains("UNIQUE"));
        // A tag belongs to a call that exists (foreign keys are on here, not
        // on the collector's connection), and a call has a tag once.
        assert!(refused("INSERT INTO call_tags VALUES (1, 'lead', 'olga', 1)").contains("FOREIGN KEY"));
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute("INSERT INTO call_tags VALUES (1, 'lead', 'olga', 1)", []).unwrap();
        assert!(refused("INSERT INTO call_tags VALUES (1, 'lead', 'olga', 2)").contains("UNIQUE"));
    }
}
