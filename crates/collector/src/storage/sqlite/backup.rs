//! Online backups and restores of the database file, with SQLite's backup
//! API.
//!
//! A backup copies every page in one step: a step holds one read
//! transaction on the source, and in WAL mode a reader never blocks the
//! collector's writer, so the copy is the database as of one commit while
//! visits go on. Copying in several steps would let a write in between
//! restart the copy, forever on a busy collector.
//!
//! A restore refuses a database that any other connection has open (a
//! running collector, a `sqlite3` shell): it takes SQLite's exclusive lock
//! first, which no open WAL connection lets it have, and copies the backup
//! in through that connection, so the target's write-ahead log is taken
//! into account rather than left to replay over the restored pages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} already exists; give a new file name (a backup never overwrites one)")]
    Exists { path: PathBuf },
    #[error("there is no database at {path}")]
    Missing { path: PathBuf },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "{path} is in use by another process (a running collector, a sqlite3 shell): stop it, then restore \
         ({source})"
    )]
    InUse { path: PathBuf, source: rusqlite::Error },
    #[error("{path} is not a Ringsource database: {reason}")]
    NotRingsource { path: PathBuf, reason: String },
    #[error("{path} has schema version {found}, newer than this collector's {known}: restore it with that version")]
    Newer { path: PathBuf, found: i64, known: i64 },
    #[error("{path} fails SQLite's integrity check: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("copying {from} to {to} failed: {source}")]
    Copy { from: PathBuf, to: PathBuf, source: rusqlite::Error },
    #[error("cannot move the finished copy into place at {path}: {source}")]
    Rename { path: PathBuf, source: std::io::Error },
}

/// What was copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub pages: i64,
    pub page_size: i64,
    /// The schema version (`PRAGMA user_version`) of the copy.
    pub schema_version: i64,
}

impl Copied {
    pub fn bytes(&self) -> i64 {
        self.pages * self.page_size
    }
}

/// Copies the database at `db` to the new file `to`, while the collector
/// may be writing to it. The copy is written beside `to` and renamed into
/// place once complete and checked, so `to` is never a half-written file.
pub fn backup(db: &Path, to: &Path) -> Result<Copied, BackupError> {
    if !db.exists() {
        return Err(BackupError::Missing { path: db.to_owned() });
    }
    if to.exists() {
        return Err(BackupError::Exists { path: to.to_owned() });
    }
    let open = |path: &Path, flags| {
        Connection::open_with_flags(path, flags).map_err(|source| BackupError::Open { path: path.to_owned(), source })
    };
    let src = open(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    src.busy_timeout(Duration::from_secs(10)).map_err(|source| BackupError::Open { path: db.to_owned(), source })?;
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let copied = {
        let mut dst = open(&partial, OpenFlags::default())?;
        copy(&src, &mut dst, db, &partial)?;
        // A backup is one self-contained file: no WAL beside it.
        dst.pragma_update(None, "journal_mode", "DELETE").map_err(|source| BackupError::Copy {
            from: db.to_owned(),
            to: partial.clone(),
            source,
        })?;
        check(&dst, &partial)?
    };
    std::fs::rename(&partial, to).map_err(|source| BackupError::Rename { path: to.to_owned(), source })?;
    Ok(copied)
}

/// Replaces the database at `db` with the backup `from`; refuses while any
/// other connection has `db` open. `db` is created when it does not exist.
pub fn restore(from: &Path, db: &Path) -> Result<Copied, BackupError> {
    if !from.exists() {
        return Err(BackupError::Missing { path: from.to_owned() });
    }
    let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| BackupError::Open { path: from.to_owned(), source })?;
    let expected = check(&src, from)?;
    let known = latest_schema_version()?;
    if expected.schema_version > known {
        return Err(BackupError::Newer { path: from.to_owned(), found: expected.schema_version, known });
    }
    let mut dst = Connection::open(db).map_err(|source| BackupError::Open { path: db.to_owned(), source })?;
    let in_use = |source| BackupError::InUse { path: db.to_owned(), source };
    // No waiting: a lock held by a running collector is not let go.
    dst.busy_timeout(Duration::ZERO).map_err(in_use)?;
    // In exclusive locking mode the lock, once taken, is kept until the
    // connection closes: nobody can open the file between the check and
    // the copy.
    dst.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(in_use)?;
    dst.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(in_use)?;
    copy(&src, &mut dst, from, db)?;
    // The collector runs the file in WAL mode; the backup was made without.
    dst.pragma_update(None, "journal_mode", "WAL").map_err(|source| BackupError::Copy {
        from: from.to_owned(),
        to: db.to_owned(),
        source,
    })?;
    let restored = check(&dst, db)?;
    debug_assert_eq!(restored.schema_version, expected.schema_version);
    Ok(restored)
}

fn copy(src: &Connection, dst: &mut Connection, from: &Path, to: &Path) -> Result<(), BackupError> {
    let err = |source| BackupError::Copy { from: from.to_owned(), to: to.to_owned(), source };
    let backup = Backup::new(src, dst).map_err(err)?;
    // -1: every page in one step, one read transaction on the source. A
    // step that finds a lock held (a checkpoint resetting the WAL) is tried
    // again, for a few seconds at most.
    for _ in 0..BUSY_TRIES {
        match backup.step(-1).map_err(err)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => std::thread::sleep(BUSY_WAIT),
            // A new kind of result in a later rusqlite: try again as for busy.
            _ => std::thread::sleep(BUSY_WAIT),
        }
    }
    Err(err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some(format!("the database stayed locked for {} s", BUSY_TRIES * BUSY_WAIT.as_millis() as u32 / 1000)),
    )))
}

const BUSY_TRIES: u32 = 100;
const BUSY_WAIT: Duration = Duration::from_millis(50);

/// The file's size and schema version, once it passes SQLite's quick check
/// and holds the collector's tables.
fn check(conn: &Connection, path: &Path) -> Result<Copied, BackupError> {
    let open = |source| BackupError::Open { path: path.to_owned(), source };
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(open)?;
    if verdict != "ok" {
        return Err(BackupError::Damaged { path: path.to_owned(), reason: verdict });
    }
    let has_sites: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sites')", [], |r| {
            r.get(0)
        })
        .map_err(open)?;
    if !has_sites {
        return Err(BackupError::NotRingsource { path: path.to_owned(), reason: "it has no `sites` table".to_owned() });
    }
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0)).map_err(open);
    Ok(Copied {
        pages: pragma("page_count")?,
        page_size: pragma("page_size")?,
        schema_version: pragma("user_version")?,
    })
}

/// The schema version this collector migrates to.
fn latest_schema_version() -> Result<i64, BackupError> {
    let memory = Path::new(":memory:");
    let open = |source| BackupError::Open { path: memory.to_owned(), source };
    let mut conn = Connection::open_in_memory().map_err(open)?;
    super::migrate(&mut conn)
        .map_err(|e| BackupError::NotRingsource { path: memory.to_owned(), reason: e.to_string() })?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(open)
}

/// Where a backup is written before it is complete.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    to.with_file_name(name)
}
