//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside whichever commit crosses the
//! threshold, and a checkpoint writes pages back into the database file and
//! syncs it. On the writer's thread that stall held up every visit queued
//! behind it (measured: 7.6k visits/s with automatic checkpoints against 19k
//! without). Here a second connection copies the WAL back in passive mode,
//! which never blocks the writer; only when the WAL has grown past
//! [`FORCE_FRAMES`] despite that (writes never paused long enough for a
//! passive pass to catch up) does it make the writer wait for a full one.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

use crate::storage::StorageError;

/// How often the WAL is copied back.
const EVERY: Duration = Duration::from_millis(200);

/// WAL pages (4 KiB each) beyond which a checkpoint may block the writer:
/// about 64 MiB of WAL.
const FORCE_FRAMES: i64 = 16_384;

/// The checkpointer runs until the returned sender is dropped.
pub(super) fn spawn(path: &Path) -> Result<Sender<()>, StorageError> {
    let open_err = |source| StorageError::Open { path: path.display().to_string(), source };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    // As durable as the writer's connection: the WAL is synced before its
    // pages are copied back, the database file after.
    conn.execute_batch("PRAGMA synchronous = NORMAL").map_err(open_err)?;
    let (stop, stopped) = channel();
    std::thread::Builder::new()
        .name("ringsource-checkpoint".to_owned())
        .spawn(move || run(&conn, &stopped))
        .map_err(StorageError::Thread)?;
    Ok(stop)
}

fn run(conn: &Connection, stopped: &Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        match checkpoint(conn, "PASSIVE") {
            Ok(frames) if frames > FORCE_FRAMES => {
                // A second passive pass copies what came in during the first,
                // so the restart, which holds the writer up, has little left
                // to copy and sync.
                if let Err(e) = checkpoint(conn, "PASSIVE").and_then(|_| checkpoint(conn, "RESTART")) {
                    eprintln!("ringsource: WAL checkpoint (restart) failed, will retry: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("ringsource: WAL checkpoint failed, will retry: {e}"),
        }
    }
}

/// Runs one checkpoint; returns the frames the WAL held.
fn checkpoint(conn: &Connection, mode: &str) -> Result<i64, rusqlite::Error> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}
