//! The writer: one thread that takes visits, heartbeats and page views from a
//! queue and writes each batch of them in one transaction.
//!
//! Every visit writes, and SQLite has one writer per file anyway; what a
//! transaction per request paid for was the commit (the WAL append of every
//! dirty page) and the hop through the blocking pool. A batch shares one
//! commit among everything that queued while the previous batch ran, and no
//! one is answered before the commit that holds their writes. A batch is all
//! or nothing: if any write in it fails, it is rolled back and each request is
//! run again alone, so one bad request fails only itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use ringsource_core::lease::Groups;
use rusqlite::Transaction;

use super::checkpoint::{self, RestartDue};
use super::leases::LeaseBook;
use super::{Inner, immediate, sql, visits};
use crate::clock::Clock;
use crate::config::Site;
use crate::storage::{Answer, PageViewCommand, Renewal, StorageError, VisitCommand, VisitOutcome};

/// Enough to share a commit widely, small enough that the connection is not
/// held from the other stores (calls, reports) for long.
const MAX_BATCH: usize = 256;

/// A request for the writer, with where its answer goes.
pub(super) enum Job {
    Visit {
        cmd: Box<VisitCommand>,
        clock: Arc<dyn Clock>,
        answer: Answer<VisitOutcome>,
    },
    Heartbeat {
        site: Arc<Site>,
        session_id: String,
        client: Option<Groups>,
        clock: Arc<dyn Clock>,
        answer: Answer<Renewal>,
    },
    PageView {
        view: PageViewCommand,
        clock: Arc<dyn Clock>,
        answer: Answer<bool>,
    },
    /// `SELECT 1` in the queue's order: answered once everything queued
    /// before it is committed (readiness, and the last wait of a stop).
    Ping {
        answer: Answer<()>,
    },
}

enum Done {
    Visit(VisitOutcome),
    Heartbeat(Renewal),
    PageView(bool),
    Ping,
}

impl Job {
    /// The clock the job's times are read from; a ping reads none.
    fn clock(&self) -> Option<&dyn Clock> {
        match self {
            Job::Visit { clock, .. } | Job::Heartbeat { clock, .. } | Job::PageView { clock, .. } => {
                Some(clock.as_ref())
            }
            Job::Ping { .. } => None,
        }
    }

    fn run(&self, tx: &Transaction<'_>, book: &mut LeaseBook, now_ms: i64) -> Result<Done, StorageError> {
        Ok(match self {
            Job::Visit { cmd, .. } => Done::Visit(visits::visit(tx, book, cmd, now_ms)?),
            Job::Heartbeat { site, session_id, client, .. } => {
                Done::Heartbeat(visits::heartbeat(tx, book, site, session_id, *client, now_ms)?)
            }
            Job::PageView { view, .. } => Done::PageView(visits::page_view(tx, book, view, now_ms)?),
            Job::Ping { .. } => {
                tx.query_row("SELECT 1", [], |_| Ok(())).map_err(sql("answering a ping"))?;
                Done::Ping
            }
        })
    }

    /// Sends the answer. A caller that stopped waiting is no error.
    fn answer(self, result: Result<Done, StorageError>) {
        let mismatch = || StorageError::Corrupt("the writer answered a request with another's result".to_owned());
        match self {
            Job::Visit { answer, .. } => {
                let _ = answer.send(result.and_then(|d| if let Done::Visit(v) = d { Ok(v) } else { Err(mismatch()) }));
            }
            Job::Heartbeat { answer, .. } => {
                let _ =
                    answer.send(result.and_then(|d| if let Done::Heartbeat(r) = d { Ok(r) } else { Err(mismatch()) }));
            }
            Job::PageView { answer, .. } => {
                let _ =
                    answer.send(result.and_then(|d| if let Done::PageView(b) = d { Ok(b) } else { Err(mismatch()) }));
            }
            Job::Ping { answer } => {
                let _ = answer.send(result.and_then(|d| if let Done::Ping = d { Ok(()) } else { Err(mismatch()) }));
            }
        }
    }
}

/// Starts the writer on `inner`; it stops when the returned sender is dropped.
pub(super) fn spawn(inner: Arc<Mutex<Inner>>, restart_due: RestartDue) -> std::io::Result<Sender<Job>> {
    let (tx, rx) = channel();
    std::thread::Builder::new().name("ringsource-writer".to_owned()).spawn(move || run(&inner, &rx, &restart_due))?;
    Ok(tx)
}

fn run(inner: &Mutex<Inner>, queue: &Receiver<Job>, restart_due: &AtomicBool) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(job) = queue.recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = {
            let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
            // A panic would otherwise take the thread, and with it every later
            // request; the transaction rolls back as it unwinds.
            catch_unwind(AssertUnwindSafe(|| write(&mut inner, &batch))).unwrap_or_else(|panic| {
                inner.book.clear();
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                batch
                    .iter()
                    .map(|_| Err(StorageError::Corrupt(format!("the database writer panicked: {why}"))))
                    .collect()
            })
        };
        for (job, result) in batch.drain(..).zip(results) {
            job.answer(result);
        }
        // After the answers, so no one waits on the restart but the batches
        // that queue meanwhile.
        checkpoint::restart_if_due(inner, restart_due);
    }
}

/// The batch in one transaction, or, if that fails, each job in its own: a
/// clean attempt with a fresh book, whose error is that job's alone.
fn write(inner: &mut Inner, batch: &[Job]) -> Vec<Result<Done, StorageError>> {
    match transaction(inner, batch) {
        Ok(done) => done.into_iter().map(Ok).collect(),
        Err(_) => batch
            .iter()
            .map(|job| transaction(inner, std::slice::from_ref(job)).map(|mut done| done.remove(0)))
            .collect(),
    }
}

fn transaction(inner: &mut Inner, jobs: &[Job]) -> Result<Vec<Done>, StorageError> {
    let Inner { conn, book, last_now_ms } = inner;
    let result = (|| {
        let tx = immediate(conn)?;
        book.check_outside_writes(&tx)?;
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            let now_ms = job.clock().map_or(*last_now_ms, |clock| super::tick(last_now_ms, clock));
            done.push(job.run(&tx, book, now_ms)?);
        }
        book.tally.write(&tx)?;
        tx.commit().map_err(sql("committing a batch of visits"))?;
        book.committed();
        Ok(done)
    })();
    if result.is_err() {
        book.clear();
    }
    result
}
