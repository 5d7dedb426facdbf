//! The WAL file, laid out on disk before SQLite writes to it.
//!
//! Appending to a file makes ext4 allocate its blocks, and it allocates them
//! late, when the pages are written back, under the inode's block-map lock,
//! which writing a page past the allocated blocks needs too. The checkpoint
//! thread syncs the WAL while the writer appends to it, so commits waited on
//! that lock: 16–41 ms commits, a visit p99 of 16–20 ms at 64 connections.
//! Overwriting blocks that are already allocated takes no such lock.
//!
//! So when there is no WAL, one is written full of zeros before SQLite opens
//! the database for good. SQLite takes a WAL whose header is not valid for an
//! empty one and writes its frames from the start; `journal_size_limit` (set
//! by the caller to the same size) cuts it back to that size each time the
//! WAL starts over, and the checkpoint thread has it start over long before
//! it reaches the end (see [`restart_frames`]).
//!
//! A WAL that exists may hold committed transactions, so it is never
//! touched: the zeros are written under another name and linked into place
//! only if no WAL has appeared meanwhile.
//!
//! The WAL takes at most a quarter of the disk's free space ([`fitted`]),
//! and none when that is under a MiB: a small disk makes a smaller WAL, not
//! a collector that refuses to start. The database itself, and the WAL's
//! growth past its preallocated size while a checkpoint waits, need the rest.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The page size SQLite uses here (its default), which is the size of a WAL frame's page.
const PAGE_BYTES: u64 = 4096;

/// The WAL restart threshold without a preallocated WAL: about 128 MiB.
const UNBOUNDED_RESTART_FRAMES: i64 = 32_768;

/// `<db>-wal`, where SQLite keeps the WAL of `db`.
pub(super) fn path_of(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// The smallest WAL worth writing out.
const MIN_PREALLOCATE_BYTES: u64 = 1 << 20;

/// What the WAL of `db` was left as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Preallocated {
    /// Written out, this many bytes.
    Written(u64),
    /// A WAL was there already (or appeared meanwhile) and stands as it is.
    Existing,
    /// None: asked for none, or too little disk; SQLite grows the WAL.
    None,
}

impl Preallocated {
    /// The size SQLite keeps the WAL at when it starts over, given `asked`.
    pub(super) fn bytes(self, asked: u64) -> u64 {
        match self {
            Preallocated::Written(n) => n,
            Preallocated::Existing => asked,
            Preallocated::None => 0,
        }
    }
}

/// `asked` bytes when they fit in a quarter of `free` bytes of disk, else
/// that quarter in whole MiB, and 0 when it is under [`MIN_PREALLOCATE_BYTES`].
pub(super) fn fitted(asked: u64, free: u64) -> u64 {
    let room = free / 4;
    if asked <= room {
        return asked;
    }
    let fit = room - room % (1 << 20);
    if fit < MIN_PREALLOCATE_BYTES { 0 } else { fit }
}

/// Bytes an unprivileged process may still write on the disk holding `path`.
#[cfg(unix)]
fn free_bytes(path: &Path) -> io::Result<u64> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// Writes a WAL of `bytes` zeros next to `db` unless one exists, fitted to
/// the free disk. No connection may be open on `db` in this process.
pub(super) fn preallocate(db: &Path, bytes: u64) -> io::Result<Preallocated> {
    let wal = path_of(db);
    if bytes == 0 {
        return Ok(Preallocated::None);
    }
    if wal.exists() {
        return Ok(Preallocated::Existing);
    }
    let free = free_bytes(db)?;
    let fit = fitted(bytes, free);
    if fit != bytes {
        tracing::warn!(
            database = %db.display(),
            asked_mib = bytes >> 20,
            free_mib = free >> 20,
            written_mib = fit >> 20,
            "{} MiB of write-ahead log asked, {} MiB free on the disk of {}: {}",
            bytes >> 20,
            free >> 20,
            db.display(),
            if fit == 0 {
                "the WAL grows as it is written".to_owned()
            } else {
                format!("{} MiB written out", fit >> 20)
            }
        );
    }
    if fit == 0 {
        return Ok(Preallocated::None);
    }
    let mut draft = db.as_os_str().to_owned();
    draft.push("-wal-preallocating");
    let draft = PathBuf::from(draft);
    let written = write_zeros(&draft, fit).and_then(|()| match std::fs::hard_link(&draft, &wal) {
        Ok(()) => Ok(Preallocated::Written(fit)),
        // Another process opened the database meanwhile: its WAL stands.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Preallocated::Existing),
        Err(e) => Err(e),
    });
    let removed = std::fs::remove_file(&draft);
    let outcome = match written {
        // The disk filled up meanwhile: SQLite grows the WAL instead.
        Err(e) if e.kind() == io::ErrorKind::StorageFull => {
            tracing::warn!(
                database = %db.display(),
                error = %e,
                "the disk filled up while writing out the WAL; the WAL grows as it is written"
            );
            Preallocated::None
        }
        other => other?,
    };
    removed?;
    Ok(outcome)
}

/// Bytes per write of the zeros. The page cache keeps a file in pieces
/// ("folios") as large as the writes that made them, and every later write
/// into a piece walks all of its blocks: SQLite writes each WAL frame as a
/// 24-byte header and a page, so with 1 MiB pieces those walks were two
/// fifths of the writer's time in the kernel. 4 KiB pieces made the
/// checkpoint thread's reads and syncs of the WAL dearer instead; 64 KiB cut
/// the writer's kernel time by a quarter for a little more checkpointing.
const ZEROS_PER_WRITE: usize = 64 << 10;

/// Written and synced, so the blocks are allocated now and not during the
/// first checkpoint under load.
fn write_zeros(path: &Path, bytes: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    let chunk = vec![0u8; ZEROS_PER_WRITE];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        file.write_all(&chunk[..n as usize])?;
        left -= n;
    }
    file.sync_all()
}

/// WAL frames after which the checkpoint thread has the writer start the
/// WAL over. With a preallocated WAL, at a quarter of it: the restart waits
/// for the checkpoint to settle, and meanwhile the writer goes on appending
/// (about 15 MB a second at the heaviest load measured, so the default's
/// other 48 MiB last three seconds), which must still land in allocated blocks.
pub(super) fn restart_frames(preallocated_bytes: u64) -> i64 {
    if preallocated_bytes == 0 {
        UNBOUNDED_RESTART_FRAMES
    } else {
        i64::try_from(preallocated_bytes / 4 / (PAGE_BYTES + 24)).unwrap_or(UNBOUNDED_RESTART_FRAMES).max(64)
    }
}

#[cfg(test)]
mod tests {
    use super::{Preallocated, fitted, path_of, preallocate, restart_frames};

    #[test]
    fn a_missing_wal_is_written_once_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.sqlite");
        let bytes = (3 << 20) + 5;
        assert_eq!(preallocate(&db, bytes).unwrap(), Preallocated::Written(bytes));
        let wal = std::fs::read(path_of(&db)).unwrap();
        assert_eq!(wal.len() as u64, bytes);
        assert!(wal.iter().all(|&b| b == 0));
        // Only the WAL is left: the draft it was written under is gone.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.sqlite-wal"]);
        assert_eq!(preallocate(&db, bytes).unwrap(), Preallocated::Existing);
    }

    #[test]
    fn an_existing_wal_is_never_touched() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.sqlite");
        let frames = b"committed frames a crash left behind".repeat(100);
        std::fs::write(path_of(&db), &frames).unwrap();
        assert_eq!(preallocate(&db, 1 << 20).unwrap(), Preallocated::Existing);
        assert_eq!(std::fs::read(path_of(&db)).unwrap(), frames);
    }

    #[test]
    fn no_preallocation_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.sqlite");
        assert_eq!(preallocate(&db, 0).unwrap(), Preallocated::None);
        assert!(!path_of(&db).exists());
    }

    #[test]
    fn the_wal_takes_at_most_a_quarter_of_the_free_disk() {
        let mib = 1 << 20;
        assert_eq!(fitted(64 * mib, 100 << 30), 64 * mib, "a roomy disk gives what was asked");
        assert_eq!(fitted(64 * mib, 40 * mib), 10 * mib);
        assert_eq!(fitted(64 * mib, 41 * mib), 10 * mib, "whole MiB");
        assert_eq!(fitted(64 * mib, 4 * mib), mib);
        assert_eq!(fitted(64 * mib, 4 * mib - 1), 0, "under a MiB: none");
        assert_eq!(fitted(64 * mib, 0), 0);
        assert_eq!(fitted(3 * mib + 5, 100 << 30), 3 * mib + 5, "what was asked is not rounded");
    }

    #[test]
    fn the_wal_restarts_well_before_its_preallocated_end() {
        assert_eq!(restart_frames(0), 32_768);
        let frames = restart_frames(64 << 20);
        assert!(frames * 4120 <= (64 << 20) / 4 && frames > 3_000, "{frames}");
        assert_eq!(restart_frames(4096), 64);
    }
}
