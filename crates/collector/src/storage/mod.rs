//! The storage port: the traits the services persist through, with the
//! types they take and give, and no backend's types. SQL lives only behind
//! it, in the SQLite adapter [`sqlite`] and the PostgreSQL adapter
//! [`postgres`] (issue #17).
//!
//! ## The traits
//!
//! - [`Storage`]: the browser's writes. `visit`, `heartbeat` and `page_view`
//!   answer with a [`Pending`]: the backend may queue and batch them (SQLite:
//!   one writer thread, one `BEGIN IMMEDIATE` per batch) and complete the
//!   answer from wherever it runs (a PostgreSQL adapter: a task on its
//!   pooled async client). The handler awaits it on the executor, the demo
//!   waits for it on a plain thread; neither holds a thread while it waits.
//! - [`calls::CallStore`], [`money::MoneyStore`], [`money::OutboxStore`],
//!   [`pools::PoolReportStore`], [`privacy::PrivacyStore`]: the admin and
//!   PBX side. These are blocking calls that the services make on the
//!   blocking pool (`web::block`), never on the executor; an adapter with an
//!   async pool (deadpool, sqlx) completes them there by blocking on its
//!   future, or uses the synchronous client of the same driver.
//! - [`users::UserStore`], [`call_notes::NotesStore`],
//!   [`recordings::RecordingStore`]: the dashboard's users and sessions,
//!   managers' tags and notes, a call's recording URL. Blocking too; the
//!   SQLite adapters keep a connection of their own each, so the guard's
//!   session look-ups never wait on the writer.
//!
//! ## What a backend decides, and how PostgreSQL can
//!
//! - **Leases.** A [`VisitCommand`] says what the routing rules want
//!   ([`Want`]); the backend picks the number and answers a
//!   [`VisitOutcome`]. The invariant every backend keeps: a number is never
//!   leased to two live sessions, and every pool exhaustion is recorded with
//!   the policy applied. SQLite, with one writer, decides from an in-memory
//!   book of each pool's numbers (`sqlite::leases`), which stays inside the
//!   adapter. A multi-instance PostgreSQL picks the number in SQL: the free
//!   number whose cooldown ended longest ago, `FOR UPDATE SKIP LOCKED`, with
//!   the partial unique index on open leases (`leases(number) WHERE
//!   ended_at_ms IS NULL`) as the constraint that makes a double lease
//!   impossible whatever the instances do. Core's rules (`lease::pick`,
//!   the fair shares) decide from the counts either backend reads.
//! - **The call workflow.** Recording a PBX event is one transaction in the
//!   backend: store the event once, then the calls service's
//!   [`calls::CallWorkflow`] refolds, attributes and builds the exports,
//!   reading and writing through [`calls::CallFacts`] on that transaction.
//!   A backend serialises the recordings of one call: SQLite by its single
//!   writer, PostgreSQL by locking the call row (`SELECT … FOR UPDATE`,
//!   after an `INSERT … ON CONFLICT DO NOTHING` of the call).
//! - **PBX deliveries are deduplicated by the database.** A delivery id is
//!   stored in the transaction that stores its event (primary key
//!   `(site_id, pbx, delivery_id)`); a retry racing the first delivery waits
//!   for that transaction at the key and finds the id only if it committed.
//!   Events are idempotent per call too (`UNIQUE (call_id, event_json)`).
//! - **The outbox claim is a port operation**
//!   ([`money::OutboxStore::claim_due`]): due rows are taken with an attempt
//!   counted and a claim deadline, so two workers (or two instances) never
//!   send a row at once, and a worker that dies leaves its rows to be
//!   retried. PostgreSQL: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
//!   LOCKED) RETURNING …`.
//! - **Time.** Methods take the clock rather than a timestamp: the backend
//!   reads the time once it holds the write lock, so stored times are in the
//!   order the writes happened (a lease taken over cannot end before it
//!   started).
//! - **Errors.** [`StorageError`] carries the backend's own error as a boxed
//!   source ([`BackendError`]); no backend type appears in the port.

pub mod call_notes;
pub mod calls;
pub(crate) mod demand;
pub mod money;
pub mod pools;
pub mod postgres;
pub mod privacy;
pub mod recordings;
pub mod sqlite;
pub mod stores;
pub mod users;

use ringsource_core::lease::{ExhaustionPolicy, Groups};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::touch::Touch;
use ringsource_core::wire::NumberKind;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::clock::Clock;
use crate::config::Site;

/// The backend's own error (SQLite's, PostgreSQL's), kept as the source.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// A storage failure. These are the collector's own faults (disk, schema),
/// never the client's, and surface as 500 with the context here.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: BackendError },
    #[error(
        "cannot preallocate the write-ahead log {path}: {source} (set `server.wal_preallocate_mib = 0` to let it grow instead)"
    )]
    PreallocateWal { path: String, source: std::io::Error },
    #[error("cannot sync the folder of the database {path} to disk: {source}")]
    SyncDir { path: String, source: std::io::Error },
    #[error("cannot sync the write-ahead log {path} to disk: {source}")]
    SyncWal { path: String, source: std::io::Error },
    #[error("cannot migrate the database schema: {0}")]
    Migrate(BackendError),
    #[error("database error while {doing}: {source}")]
    Sql { doing: &'static str, source: BackendError },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("the system has no randomness to offer: {0}")]
    NoRandomness(String),
    #[error("cannot start a database thread: {0}")]
    Thread(std::io::Error),
    #[error("the database writer thread has stopped")]
    WriterGone,
    #[error(
        "cannot reach PostgreSQL at {target}: {source} (check that the server runs and listens there \
         (listen_addresses, port), that pg_hba.conf lets this user in from this host, and that the \
         password is in RINGSOURCE_DATABASE_PASSWORD or the URL)"
    )]
    Connect { target: String, source: BackendError },
}

/// A storage answer on its way: await it on the executor, or [`Pending::wait`]
/// for it on a plain thread. The hot writes (visits, heartbeats, page views)
/// answer this way so a backend can queue and batch them without holding up
/// an executor thread.
pub struct Pending<T>(tokio::sync::oneshot::Receiver<Result<T, StorageError>>);

/// The sending half of a [`Pending`].
pub type Answer<T> = tokio::sync::oneshot::Sender<Result<T, StorageError>>;

impl<T> Pending<T> {
    pub fn channel() -> (Answer<T>, Self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (tx, Self(rx))
    }

    /// Blocks the thread until the answer comes. Not for executor threads.
    pub fn wait(self) -> Result<T, StorageError> {
        self.0.blocking_recv().unwrap_or(Err(StorageError::WriterGone))
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, StorageError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(StorageError::WriterGone)))
    }
}

/// What a visit asks of the pool, decided by the routing rules. Indices are
/// into the command's site, so a command owns everything it needs and can wait
/// in the writer's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A number from `site.pools[i]`.
    Pool(usize),
    /// The static number `site.static_numbers[i]`.
    Static(usize),
    /// A promo code from `site.promo` (the page keeps its original number).
    Promo,
    /// Keep the original number (no rule matched, crawler, or the number is
    /// hidden behind the show-number button and was not revealed).
    Original,
}

/// One `POST …/visits`, parsed and routed.
#[derive(Debug, Clone)]
pub struct VisitCommand {
    pub site: Arc<Site>,
    /// The session id the browser sent, already checked for shape.
    pub session_id: Option<String>,
    /// A fresh id, used when the browser sent none or one of another site.
    pub new_session_id: String,
    pub client_id: Option<String>,
    pub ym_uid: Option<String>,
    pub touch: Touch,
    pub first_touch: Option<Touch>,
    pub page_url: String,
    pub page_title: Option<String>,
    pub user_agent: String,
    pub is_bot: bool,
    /// The address groups the visit came from (`None` for visits not sent
    /// over the network, such as the demo month's): the pools' fair shares
    /// are kept per group.
    pub client: Option<Groups>,
    pub want: Want,
    /// Where the visitor was and what they came on, stored with a new session.
    pub facts: Facts,
}

/// A page view of a running session.
#[derive(Debug, Clone)]
pub struct PageViewCommand {
    pub site: Arc<Site>,
    pub session_id: String,
    pub url: String,
    pub title: Option<String>,
}

/// What the visitor is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitOutcome {
    pub session_id: String,
    pub kind: NumberKind,
    pub number: Option<PhoneNumber>,
    pub expires_at_ms: Option<i64>,
    pub overflow: bool,
    /// The session's promo code, for [`Want::Promo`].
    pub promo_code: Option<String>,
}

impl VisitOutcome {
    /// The page keeps its original number.
    pub fn original(session_id: String) -> Self {
        Self {
            session_id,
            kind: NumberKind::Original,
            number: None,
            expires_at_ms: None,
            overflow: false,
            promo_code: None,
        }
    }
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    Renewed {
        number: PhoneNumber,
        expires_at_ms: i64,
    },
    /// The session exists but holds no live lease (expired, taken over, or
    /// it never had one).
    Gone,
    UnknownSession,
}

/// A pool exhaustion as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEvent {
    pub pool_id: String,
    pub session_id: String,
    pub policy: ExhaustionPolicy,
    pub at_ms: i64,
}

/// The collector's persistence.
///
/// Methods take the clock rather than a timestamp: the backend reads the time
/// once it holds the write lock, so the times it stores are in the order the
/// writes happened (a lease taken over cannot end before it started).
pub trait Storage: Send + Sync + 'static {
    /// Makes the stored sites and numbers match the configuration.
    fn sync_sites(&self, sites: &[Site], clock: &dyn Clock) -> Result<(), StorageError>;
    /// Starts or continues a session and gives it a number, atomically.
    fn visit(&self, cmd: VisitCommand, clock: Arc<dyn Clock>) -> Pending<VisitOutcome>;
    /// Renews the session's live lease; `client` is where the heartbeat came from.
    fn heartbeat(
        &self,
        site: Arc<Site>,
        session_id: String,
        client: Option<Groups>,
        clock: Arc<dyn Clock>,
    ) -> Pending<Renewal>;
    /// Records a page view; `false` when the session is unknown.
    fn page_view(&self, view: PageViewCommand, clock: Arc<dyn Clock>) -> Pending<bool>;
    /// Answers once the backend has run a trivial query on the path its
    /// writes take, after every write queued before it: what readiness
    /// asks (is the database there, is whatever writes to it alive), and
    /// what a stopping server waits for before it exits (everything
    /// accepted is written). SQLite: a job on the writer's queue, in a
    /// `BEGIN IMMEDIATE` of its own batch, so it also needs the write lock.
    fn ping(&self) -> Pending<()>;
}

/// A session's `asked_pools` (space-separated pool ids) with `pool_id`
/// added; `None` when it is there already. Both adapters store the list so.
pub fn asked_with(asked: Option<&str>, pool_id: &str) -> Option<String> {
    match asked {
        Some(list) if list.split(' ').any(|p| p == pool_id) => None,
        Some(list) if !list.is_empty() => Some(format!("{list} {pool_id}")),
        _ => Some(pool_id.to_owned()),
    }
}

/// Where a visitor was and what they came on, stored with their session
/// (never the address they came from).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    /// `desktop`, `phone`, `tablet`, `bot` or `other`.
    pub device_type: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
}
