//! Persistence behind one interface, [`Storage`], so that a PostgreSQL
//! backend can be added beside [`sqlite::SqliteStorage`] without touching the
//! routes. Every method is blocking: callers on the async executor run them
//! through `web::block`.
//!
//! Invariant kept by every backend: a number is never leased to two live
//! sessions. Every pool exhaustion is recorded with the policy applied.

pub mod calls;
pub mod money;
pub mod pools;
pub mod sqlite;

use ringsource_core::lease::ExhaustionPolicy;
use ringsource_core::phone::PhoneNumber;
use ringsource_core::touch::Touch;
use ringsource_core::wire::NumberKind;

use crate::clock::Clock;
use crate::config::Site;

/// A storage failure. These are the collector's own faults (disk, schema),
/// never the client's, and surface as 500 with the context here.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("database error while {doing}: {source}")]
    Sql { doing: &'static str, source: rusqlite::Error },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("the system has no randomness to offer: {0}")]
    NoRandomness(String),
}

/// What a visit asks of the pool, decided by the routing rules.
#[derive(Debug, Clone, Copy)]
pub enum Want<'a> {
    /// A number from this pool of the site.
    Pool(&'a crate::config::Pool),
    /// This static number.
    Static(&'a PhoneNumber),
    /// A promo code (the page keeps its original number).
    Promo(&'a crate::config::PromoConfig),
    /// Keep the original number (no rule matched, crawler, or the number is
    /// hidden behind the show-number button and was not revealed).
    Original,
}

/// One `POST …/visits`, parsed and routed.
#[derive(Debug, Clone)]
pub struct VisitCommand<'a> {
    pub site: &'a Site,
    /// The session id the browser sent, already checked for shape.
    pub session_id: Option<&'a str>,
    /// A fresh id, used when the browser sent none or one of another site.
    pub new_session_id: String,
    pub client_id: Option<&'a str>,
    pub ym_uid: Option<&'a str>,
    pub touch: &'a Touch,
    pub first_touch: Option<&'a Touch>,
    pub page_url: &'a str,
    pub page_title: Option<&'a str>,
    pub user_agent: &'a str,
    pub is_bot: bool,
    pub want: Want<'a>,
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

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    Renewed { number: PhoneNumber, expires_at_ms: i64 },
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
    fn visit(&self, cmd: &VisitCommand<'_>, clock: &dyn Clock) -> Result<VisitOutcome, StorageError>;
    /// Renews the session's live lease.
    fn heartbeat(&self, site: &Site, session_id: &str, clock: &dyn Clock) -> Result<Renewal, StorageError>;
    /// Records a page view; `false` when the session is unknown.
    fn page_view(
        &self,
        site: &Site,
        session_id: &str,
        url: &str,
        title: Option<&str>,
        clock: &dyn Clock,
    ) -> Result<bool, StorageError>;
}
