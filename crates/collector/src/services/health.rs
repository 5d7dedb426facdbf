//! Whether this instance can do its job, for a load balancer's readiness
//! probe, and the stop that goes with it: once [`Health::drain`] is called
//! (the first stop signal) readiness fails for good, so the balancer takes
//! the instance out before its listener closes.
//!
//! Readiness asks the storage port for a [`Storage::ping`]: on SQLite a job
//! through the writer's queue, so one answer within [`READY_DEADLINE`] says
//! that the database file answers, that the writer thread is alive and that
//! it is not so far behind that a visit would wait longer than that.
//! Liveness asks nothing: an instance that answers HTTP is alive, and a
//! balancer that restarted instances over a database outage would turn one
//! fault into many.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use crate::storage::{Storage, StorageError};

/// How long the database may take to answer a readiness probe. A writer's
/// batch takes milliseconds; load balancers give a probe 2–5 s.
pub const READY_DEADLINE: Duration = Duration::from_secs(1);

/// Why the instance is not ready; the message names the check that failed.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the collector is shutting down")]
    ShuttingDown,
    #[error("the database writer thread has stopped")]
    WriterGone,
    #[error("the database did not answer within {} ms", .0.as_millis())]
    Slow(Duration),
    #[error("the database failed: {0}")]
    Database(#[source] StorageError),
}

/// The last readiness answered, so that a change is logged once and the
/// probes in between are not.
const UNKNOWN: u8 = 0;
const READY: u8 = 1;
const NOT_READY: u8 = 2;

pub struct Health {
    storage: Arc<dyn Storage>,
    draining: AtomicBool,
    last: AtomicU8,
}

impl Health {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage, draining: AtomicBool::new(false), last: AtomicU8::new(UNKNOWN) }
    }

    /// From now on readiness answers [`NotReady::ShuttingDown`].
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Whether the instance can serve: not shutting down, and the database
    /// answers within [`READY_DEADLINE`]. A change from the last answer is
    /// logged (a failure as a warning with its reason); repeats are not.
    pub async fn ready(&self) -> Result<(), NotReady> {
        let result = if self.draining() { Err(NotReady::ShuttingDown) } else { self.flushed(READY_DEADLINE).await };
        let now = if result.is_ok() { READY } else { NOT_READY };
        let before = self.last.swap(now, Ordering::Relaxed);
        match &result {
            Err(NotReady::ShuttingDown) => {}
            Err(e) if before != NOT_READY => tracing::warn!(reason = %e, "not ready"),
            Ok(()) if before == NOT_READY => tracing::info!("ready again"),
            _ => {}
        }
        result
    }

    /// Waits until everything the storage has queued so far is written, or
    /// `within` has passed.
    pub async fn flushed(&self, within: Duration) -> Result<(), NotReady> {
        match tokio::time::timeout(within, self.storage.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(StorageError::WriterGone)) => Err(NotReady::WriterGone),
            Ok(Err(e)) => Err(NotReady::Database(e)),
            Err(_) => Err(NotReady::Slow(within)),
        }
    }
}
