//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside whichever commit crosses the
//! threshold, and a checkpoint writes pages back into the database file and
//! syncs it. On the writer's thread that stall held up every visit queued
//! behind it (measured: 7.6k visits/s with automatic checkpoints against 19k
//! without). Here a second connection copies the WAL back in passive mode,
//! which never blocks the writer.
//!
//! Under steady writes a passive pass never quite catches up, and the WAL
//! only starts over once everything in it was copied back. So when it has
//! grown past its restart threshold ([`super::wal::restart_frames`]), the
//! thread copies and syncs until little is left ([`settle`]), then asks the
//! writer to restart the WAL between two batches. Forcing the restart from this thread instead stalled writes for
//! 56–116 ms, mostly spent polling for the write lock that the writer, busy
//! with batches, hardly ever lets go; restarting from the writer without
//! settling first, 90–185 ms.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Inner, wal};

use crate::storage::StorageError;

/// How often the WAL is copied back.
const EVERY: Duration = Duration::from_millis(200);

/// A pass or sync this short leaves the restart about as little to do.
const QUICK: Duration = Duration::from_millis(10);

/// Passes tried before going on regardless.
const CATCH_UP_PASSES: usize = 8;

/// Rounds of passes and a sync tried before restarting regardless.
const SETTLE_ROUNDS: usize = 4;

/// Raised by the checkpoint thread when the writer should restart the WAL.
pub(super) type RestartDue = Arc<AtomicBool>;

/// The checkpointer runs until the returned sender is dropped.
pub(super) fn spawn(path: &Path, restart_frames: i64, restart_due: RestartDue) -> Result<Sender<()>, StorageError> {
    let open_err =
        |source: rusqlite::Error| StorageError::Open { path: path.display().to_string(), source: Box::new(source) };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    // As durable as the writer's connection: the WAL is synced before its
    // pages are copied back, the database file after.
    conn.execute_batch("PRAGMA synchronous = NORMAL").map_err(open_err)?;
    // Opened once and kept for the thread's life: closing any descriptor of
    // the database file drops every POSIX lock this process holds on it,
    // SQLite's too, and then another process (a `ringsource restore`) could
    // take the file from under the open connections.
    let db_file = std::fs::File::open(path).map_err(|e| {
        open_err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(e.to_string()),
        ))
    })?;
    let (stop, stopped) = channel();
    std::thread::Builder::new()
        .name("ringsource-checkpoint".to_owned())
        .spawn({
            let db = path.to_owned();
            move || run(&conn, &stopped, restart_frames, &restart_due, &db, &db_file)
        })
        .map_err(StorageError::Thread)?;
    Ok(stop)
}

fn run(
    conn: &Connection,
    stopped: &Receiver<()>,
    restart_frames: i64,
    restart_due: &AtomicBool,
    db: &Path,
    db_file: &std::fs::File,
) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        match checkpoint_pass(conn) {
            Ok(pass) => {
                // A pass syncs the WAL before it copies frames back, which
                // is what puts the visits (committed without a sync) on disk.
                // Frames a reader's snapshot keeps it from copying are not
                // synced by it, however long the reader takes (a report):
                // synced here, a power cut costs the visits of about one
                // interval, readers or not.
                if pass.copied < pass.frames
                    && let Err(e) = std::fs::File::open(wal::path_of(db)).and_then(|f| f.sync_data())
                {
                    crate::outage::server_error(&format_args!(
                        "cannot sync the WAL of {}, will retry: {e}",
                        db.display()
                    ));
                }
                if pass.frames > restart_frames {
                    settle(conn, db, db_file);
                    restart_due.store(true, Ordering::Release);
                }
            }
            // Retried every pass: a full disk is summarised, not printed each time.
            Err(e) => crate::outage::server_error(&format_args!("WAL checkpoint failed, will retry: {e}")),
        }
    }
}

/// Leaves the writer's restart little to copy and little to sync: passive
/// passes until one is quick, then a sync of the database file, until that
/// sync is quick too. The restart ends with a sync of its own, and that one
/// pays for every write still waiting on the disk: 90–135 ms measured without
/// syncing first, 5–7 ms with.
fn settle(conn: &Connection, db: &Path, db_file: &std::fs::File) {
    for _ in 0..SETTLE_ROUNDS {
        if !catch_up(conn) {
            return;
        }
        let started = Instant::now();
        if let Err(e) = db_file.sync_all() {
            crate::outage::server_error(&format_args!("cannot sync {}: {e}", db.display()));
            return;
        }
        if started.elapsed() < QUICK {
            return;
        }
    }
}

/// Passive passes back to back: each copies what came in during the one
/// before, so while copying outpaces writing they shrink. Returns `false` if
/// a pass failed.
fn catch_up(conn: &Connection) -> bool {
    for _ in 0..CATCH_UP_PASSES {
        let started = Instant::now();
        if let Err(e) = passive_checkpoint(conn) {
            crate::outage::server_error(&format_args!("WAL checkpoint failed, will retry: {e}"));
            return false;
        }
        if started.elapsed() < QUICK {
            return true;
        }
    }
    // Writes outpace the copy: go on anyway, or the WAL grows without end.
    true
}

/// Restarts the WAL if the checkpoint thread asked for it. For the writer,
/// between batches: with no write in between, its pass copies the WAL to the
/// end, and its next transaction then starts the WAL over. Passive, because
/// RESTART would wait (up to the busy timeout, holding every visit) for an
/// outside reader to finish; with one reading, the WAL simply starts over at
/// a later request.
pub(super) fn restart_if_due(inner: &Mutex<Inner>, restart_due: &AtomicBool) {
    if restart_due.swap(false, Ordering::AcqRel) {
        let inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = passive_checkpoint(&inner.conn) {
            crate::outage::server_error(&format_args!("WAL checkpoint before restart failed, will retry: {e}"));
        }
    }
}

/// What one passive checkpoint found.
struct Pass {
    /// Frames in the WAL.
    frames: i64,
    /// Of them, copied back into the database (by this pass or earlier ones).
    copied: i64,
}

fn checkpoint_pass(conn: &Connection) -> Result<Pass, rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok(Pass { frames: r.get(1)?, copied: r.get(2)? }))
}

/// Runs one passive checkpoint; returns the frames the WAL held.
fn passive_checkpoint(conn: &Connection) -> Result<i64, rusqlite::Error> {
    checkpoint_pass(conn).map(|p| p.frames)
}
