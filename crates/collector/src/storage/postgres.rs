//! [`Storage`] on PostgreSQL, for several collectors on one database
//! (issue #17; the design and its figures are in docs/postgres.md).
//!
//! The adapter owns a small tokio runtime and a deadpool of tokio-postgres
//! connections on it. The browser's writes (visits, heartbeats, page views)
//! each run as a task there, one transaction each, and answer through their
//! [`Pending`]; the blocking calls (the site sync at start) wait for theirs.
//! Nothing about the pools is cached between transactions: every lease
//! decision reads the pool's rows, locks the number it wants with
//! `FOR UPDATE SKIP LOCKED` and reads that number again under the lock
//! ([`leases`]), so another instance's writes are always seen.
//!
//! Visits, heartbeats and page views commit with `synchronous_commit = off`,
//! as SQLite commits them with `synchronous = NORMAL`: a crash of the
//! database server may lose the last fraction of a second of them (a crash
//! of a collector loses nothing it answered), and they heal on the next
//! heartbeat. The unique index on open leases holds either way.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use ringsource_core::lease::Groups;
use ringsource_core::phone::PhoneNumber;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{PageViewCommand, Pending, Renewal, Storage, StorageError, VisitCommand, VisitOutcome};
use crate::clock::Clock;
use crate::config::Site;
use crate::config::server::PostgresSettings;

mod calls;
mod leases;
mod money;
mod notes;
mod pools;
mod privacy;
mod users;
mod visits;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Connections per instance. Each visit holds one for its transaction (a few
/// round trips); PostgreSQL's default `max_connections` (100) leaves room for
/// several instances at this size.
const POOL_SIZE: usize = 16;

/// The key of the advisory lock that instances take to migrate the schema
/// and to sync the sites, one at a time ("rngsrc" in ASCII).
pub(crate) const SCHEMA_LOCK: i64 = 0x726e_6773_7263;

/// How often a transaction that lost a deadlock or a race on a unique key
/// is run again before its error is the answer.
const ATTEMPTS: u32 = 5;

/// PostgreSQL's `text` cannot hold U+0000, which SQLite's can: a value from
/// outside (a crafted landing link's `utm_campaign=%00`, a PBX's caller id)
/// that carries one is written with U+FFFD in its place, instead of
/// failing the whole visit or call with a 500. Look-ups by such a value are
/// made the same way, so they find what was written.
pub(crate) fn without_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

pub(crate) fn without_nul_opt(text: &mut Option<String>) {
    if let Some(text) = text {
        without_nul(text);
    }
}

fn touch_without_nul(t: &mut ringsource_core::touch::Touch) {
    for text in [&mut t.source, &mut t.medium, &mut t.landing_path] {
        without_nul(text);
    }
    for text in [&mut t.campaign, &mut t.term, &mut t.content, &mut t.utm_id, &mut t.referrer_host] {
        without_nul_opt(text);
    }
    if let Some(click) = &mut t.click_id {
        without_nul(&mut click.value);
    }
}

/// A visit's text as this adapter can store it ([`without_nul`]).
fn visit_without_nul(cmd: &mut VisitCommand) {
    touch_without_nul(&mut cmd.touch);
    if let Some(first) = &mut cmd.first_touch {
        touch_without_nul(first);
    }
    for text in [&mut cmd.page_url, &mut cmd.user_agent] {
        without_nul(text);
    }
    let f = &mut cmd.facts;
    for text in [
        &mut cmd.client_id,
        &mut cmd.ym_uid,
        &mut cmd.page_title,
        &mut f.country,
        &mut f.region,
        &mut f.city,
        &mut f.device_type,
        &mut f.device,
        &mut f.browser,
        &mut f.os,
    ] {
        without_nul_opt(text);
    }
}

/// Wraps a tokio-postgres error with what was being done.
fn pg(doing: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StorageError {
    move |source| StorageError::Sql { doing, source: Box::new(PgError(source)) }
}

/// The driver's error, shown with the server's message: tokio-postgres
/// says only "db error" and keeps what PostgreSQL said (the message, its
/// detail, the SQLSTATE) in its source.
#[derive(Debug)]
struct PgError(tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(f, "{} ({}): {}", db.severity(), db.code().code(), db.message())?;
                if let Some(detail) = db.detail() {
                    write!(f, "; {detail}")?;
                }
                Ok(())
            }
            None => write!(f, "{}", with_causes(&self.0)),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn pool_error(doing: &'static str) -> impl FnOnce(deadpool_postgres::PoolError) -> StorageError {
    move |source| StorageError::Sql { doing, source: Box::new(source) }
}

/// An error with its causes, for a message that names the real reason (the
/// driver says "error performing TLS handshake"; its cause says which
/// certificate was refused and why).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Whether running the transaction again may succeed: it lost a deadlock,
/// or a race on a unique key (two instances creating one session id).
fn retryable(e: &StorageError) -> bool {
    let StorageError::Sql { source, .. } = e else { return false };
    let Some(code) = source.downcast_ref::<PgError>().and_then(|e| e.0.code()) else {
        return false;
    };
    [SqlState::T_R_DEADLOCK_DETECTED, SqlState::T_R_SERIALIZATION_FAILURE, SqlState::UNIQUE_VIOLATION].contains(code)
}

/// What the adapter keeps in memory beside the database: core's fair-share
/// inputs, which are the visitors' addresses and are never stored. Each
/// instance knows the demand of the visits it served and the address groups
/// of the leases it started or renewed; a lease whose holder it does not
/// know is never taken over by the fair-share rules (as after a restart of
/// the SQLite writer).
#[derive(Default)]
struct Fair {
    demand: std::collections::HashMap<(String, String), super::demand::Demand>,
    /// Lease id → (holder session, its groups).
    holders: std::collections::HashMap<i64, (String, Groups)>,
}

/// Leases whose groups this instance keeps; beyond it the oldest ids go
/// (the map is pruned of ended leases as pools are read).
const MAX_HOLDERS: usize = 1 << 18;

struct Shared {
    pool: Pool,
    /// The latest time handed out, so times never run backwards here even
    /// if the wall clock does.
    last_now_ms: AtomicI64,
    fair: Mutex<Fair>,
}

impl Shared {
    fn now(&self, clock: &dyn Clock) -> i64 {
        let now = clock.now_ms();
        self.last_now_ms.fetch_max(now, Ordering::Relaxed).max(now)
    }

    fn fair(&self) -> std::sync::MutexGuard<'_, Fair> {
        self.fair.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct PostgresStorage {
    shared: Arc<Shared>,
    /// `Some` until dropped: the runtime the connections live on.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        // The storage may be dropped on an executor thread (the server's
        // system), where a runtime may not block while it shuts down.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The TLS connector: the CA file's certificates, or the system's CAs.
pub(crate) fn tls(settings: &PostgresSettings) -> Result<MakeRustlsConnect, StorageError> {
    let open = |why: String| StorageError::Open { path: settings.shown.clone(), source: why.into() };
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(file) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
                .map_err(|e| open(format!("cannot read server.database_ca_file {}: {e}", file.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| open(format!("server.database_ca_file {}: {e}", file.display())))?;
                roots.add(cert).map_err(|e| open(format!("server.database_ca_file {}: {e}", file.display())))?;
            }
        }
        None => {
            // Certificates the system cannot parse are skipped, as reqwest does.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| open(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl PostgresStorage {
    /// Connects, migrates the schema (one instance at a time) and opens the
    /// pool. Fails with what to check when the server cannot be reached.
    pub fn open(settings: &PostgresSettings) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ringsource-pg")
            .enable_all()
            .build()
            .map_err(StorageError::Thread)?;
        match Self::connect(settings, &runtime) {
            Ok(shared) => Ok(Self { shared: Arc::new(shared), runtime: Some(runtime) }),
            Err(e) => {
                // The caller may be on an executor thread (see Drop).
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    fn connect(settings: &PostgresSettings, runtime: &tokio::runtime::Runtime) -> Result<Shared, StorageError> {
        let tls = tls(settings)?;
        let connect = client_config(settings);
        let target = settings.shown.clone();
        let migrate_tls = tls.clone();
        let migrate_config = connect.clone();
        wait_on(runtime, async move {
            let (mut client, connection) = migrate_config
                .connect(migrate_tls)
                .await
                .map_err(|e| StorageError::Connect { target, source: with_causes(&e).into() })?;
            let driver = tokio::spawn(connection);
            let result = migrate(&mut client).await;
            drop(client);
            let _ = driver.await;
            result
        })?;
        let manager = Manager::from_config(connect, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StorageError::Open { path: settings.shown.clone(), source: Box::new(e) })?;
        Ok(Shared { pool, last_now_ms: AtomicI64::new(i64::MIN), fair: Mutex::default() })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Runs `work` on the adapter's runtime and answers through a [`Pending`].
    fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
    ) -> Pending<T> {
        let (answer, pending) = Pending::channel();
        self.runtime().spawn(async move {
            let _ = answer.send(work.await);
        });
        pending
    }

    /// Runs `work` on the adapter's runtime and waits for it.
    fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
    ) -> Result<T, StorageError> {
        wait_on(self.runtime(), work)
    }
}

/// The driver's configuration for `settings`: the URL's, with a connect
/// timeout of 5 s unless the URL sets one, and the application name.
pub(crate) fn client_config(settings: &PostgresSettings) -> tokio_postgres::Config {
    let mut connect = settings.connect.clone();
    if connect.get_connect_timeout().is_none() {
        connect.connect_timeout(Duration::from_secs(5));
    }
    connect.application_name("ringsource");
    connect
}

/// Runs `work` on `runtime` and blocks this thread until it is done. The
/// callers (server start) may be on another runtime's executor thread, where
/// tokio refuses `block_on` and blocking receives; a std channel blocks any
/// thread.
fn wait_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
) -> Result<T, StorageError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().unwrap_or(Err(StorageError::WriterGone))
}

/// Applies the embedded migrations, one instance at a time: refinery takes
/// no lock of its own, and two collectors starting together would both try.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StorageError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK]).await.map_err(pg("waiting for the schema lock"))?;
    let result = embedded::migrations::runner().run_async(client).await.map(drop);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK]).await;
    result.map_err(|e| StorageError::Migrate(Box::new(e)))?;
    unlocked.map(drop).map_err(pg("releasing the schema lock"))
}

/// Runs `$body` (an async block using the transaction `$tx` and the time
/// `$now`) in a transaction of its own, again if it lost a deadlock or a
/// race on a unique key, with the time read anew for each attempt. A macro
/// rather than a function taking an async closure: the futures it makes
/// must be `Send` for any borrow, which closures cannot say yet.
/// Visits, heartbeats and page views only: they commit without waiting for
/// the disk (see the module's docs).
macro_rules! transact {
    ($shared:expr, $clock:expr, |$tx:ident, $now:ident| $body:expr) => {{
        let shared: &$crate::storage::postgres::Shared = $shared;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result: Result<_, StorageError> = async {
                let mut client = shared
                    .pool
                    .get()
                    .await
                    .map_err($crate::storage::postgres::pool_error("taking a database connection"))?;
                let $tx = client.transaction().await.map_err(pg("beginning a transaction"))?;
                $tx.batch_execute("SET LOCAL synchronous_commit = off")
                    .await
                    .map_err(pg("setting the commit mode"))?;
                let $now = shared.now($clock);
                let value = $body.await?;
                $tx.commit().await.map_err(pg("committing"))?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => break Ok(value),
                Err(e) if attempt < $crate::storage::postgres::ATTEMPTS && $crate::storage::postgres::retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "a database transaction lost a race; running it again");
                }
                Err(e) => break Err(e),
            }
        }
    }};
}
use transact;

impl Storage for PostgresStorage {
    fn sync_sites(&self, sites: &[Site], clock: &dyn Clock) -> Result<(), StorageError> {
        let shared = Arc::clone(&self.shared);
        let sites = sites.to_vec();
        let now_ms = self.shared.now(clock);
        self.block(async move {
            let mut client = shared.pool.get().await.map_err(pool_error("taking a database connection"))?;
            let tx = client.transaction().await.map_err(pg("beginning the site sync"))?;
            // Instances starting together take turns; the one that waits finds
            // the rows as it would write them and changes nothing.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .await
                .map_err(pg("waiting for the sync lock"))?;
            sync_sites(&tx, &sites, now_ms).await?;
            tx.commit().await.map_err(pg("committing the site sync"))
        })
    }

    fn visit(&self, mut cmd: VisitCommand, clock: Arc<dyn Clock>) -> Pending<VisitOutcome> {
        visit_without_nul(&mut cmd);
        let shared = Arc::clone(&self.shared);
        self.spawn(async move { visits::visit(&shared, &cmd, clock.as_ref()).await })
    }

    fn heartbeat(
        &self,
        site: Arc<Site>,
        session_id: String,
        client: Option<Groups>,
        clock: Arc<dyn Clock>,
    ) -> Pending<Renewal> {
        let shared = Arc::clone(&self.shared);
        self.spawn(async move { visits::heartbeat(&shared, &site, &session_id, client, clock.as_ref()).await })
    }

    fn page_view(&self, mut view: PageViewCommand, clock: Arc<dyn Clock>) -> Pending<bool> {
        without_nul(&mut view.url);
        without_nul_opt(&mut view.title);
        let shared = Arc::clone(&self.shared);
        self.spawn(async move { visits::page_view(&shared, &view, clock.as_ref()).await })
    }

    /// A pooled connection and a trivial query: the server answers and the
    /// pool can reach it. Each write commits before it is answered, so
    /// there is no queue behind it to wait for.
    fn ping(&self) -> Pending<()> {
        let shared = Arc::clone(&self.shared);
        self.spawn(async move {
            let client = shared.pool.get().await.map_err(pool_error("taking a database connection"))?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| StorageError::Sql { doing: "a readiness ping", source: Box::new(e) })?;
            Ok(())
        })
    }
}

/// Makes the stored sites and numbers match the configuration, writing only
/// rows that change: a number row written here is locked until the sync
/// commits, and a running instance's lease picks skip locked numbers.
async fn sync_sites(tx: &deadpool_postgres::Transaction<'_>, sites: &[Site], now_ms: i64) -> Result<(), StorageError> {
    let mut configured: Vec<String> = Vec::new();
    for site in sites {
        tx.execute(
            "INSERT INTO sites (id, updated_at_ms) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET updated_at_ms = excluded.updated_at_ms",
            &[&site.id, &now_ms],
        )
        .await
        .map_err(pg("saving a site"))?;
        let mut rows: Vec<(String, &str, Option<&str>, Option<&str>)> = Vec::new();
        rows.extend(site.originals.iter().map(|n| (n.e164(), "original", None, None)));
        rows.extend(site.overflow_number.iter().map(|n| (n.e164(), "overflow", None, None)));
        rows.extend(site.static_numbers.iter().map(|s| (s.number.e164(), "static", None, Some(s.label.as_str()))));
        for p in &site.pools {
            rows.extend(p.numbers.iter().map(|n: &PhoneNumber| (n.e164(), "pool", Some(p.id.as_str()), None)));
        }
        for (number, kind, pool, label) in &rows {
            tx.execute(
                "INSERT INTO numbers (number, site_id, kind, pool_id, label, active) VALUES ($1, $2, $3, $4, $5, true)
                 ON CONFLICT (number) DO UPDATE SET site_id = excluded.site_id, kind = excluded.kind,
                    pool_id = excluded.pool_id, label = excluded.label, active = true
                 WHERE (numbers.site_id, numbers.kind, numbers.pool_id, numbers.label, numbers.active)
                       IS DISTINCT FROM (excluded.site_id, excluded.kind, excluded.pool_id, excluded.label, true)",
                &[number, &site.id, kind, pool, label],
            )
            .await
            .map_err(pg("saving a number"))?;
        }
        configured.extend(rows.into_iter().map(|r| r.0));
        recredit_static_calls(tx, site).await?;
    }
    tx.execute("UPDATE numbers SET active = false WHERE active AND NOT (number = ANY($1))", &[&configured])
        .await
        .map_err(pg("deactivating numbers"))?;
    Ok(())
}

/// Calls of a static number are credited to what the configuration says the
/// number reports as; a changed `report_as` credits them anew (as SQLite's
/// `recredit_static_calls`).
async fn recredit_static_calls(tx: &deadpool_postgres::Transaction<'_>, site: &Site) -> Result<(), StorageError> {
    for s in &site.static_numbers {
        let r = &s.report_as;
        let calls = "SELECT id FROM calls WHERE site_id = $1 AND dialled = $2 AND number_kind = 'static'
                       AND session_id IS NULL";
        let unchanged = "channel = $3 AND source = $4 AND medium = $5 AND campaign IS NOT DISTINCT FROM $6";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&site.id, &s.number.e164(), &r.channel, &r.source, &r.medium, &r.campaign];
        tx.execute(
            &format!(
                "UPDATE call_credits SET channel = $3, source = $4, medium = $5, campaign = $6, term = NULL,
                    content = NULL, at_ms = NULL
                 WHERE call_id IN ({calls}) AND NOT ({unchanged})"
            ),
            &params,
        )
        .await
        .map_err(pg("crediting a static number's calls"))?;
        tx.execute(
            &format!(
                "UPDATE calls SET channel = $3, source = $4, medium = $5, campaign = $6, term = NULL
                 WHERE id IN ({calls}) AND NOT ({unchanged})"
            ),
            &params,
        )
        .await
        .map_err(pg("crediting a static number's calls"))?;
    }
    Ok(())
}

// ------------------------------------------------ the blocking side of the port

type Params<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// The statements of one transaction, run from a blocking thread (the
/// server's blocking pool, a plain thread): each waits on the adapter's
/// runtime. The port's admin and PBX stores are blocking, and the calls
/// workflow reads its facts synchronously.
pub(crate) struct Blocking<'a, 'c> {
    rt: &'a tokio::runtime::Handle,
    tx: &'a deadpool_postgres::Transaction<'c>,
}

impl Blocking<'_, '_> {
    fn query(
        &self,
        doing: &'static str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, StorageError> {
        self.rt.block_on(async {
            let st = self.tx.prepare_cached(sql).await.map_err(pg(doing))?;
            self.tx.query(&st, params).await.map_err(pg(doing))
        })
    }

    fn query_opt(
        &self,
        doing: &'static str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<tokio_postgres::Row>, StorageError> {
        Ok(self.query(doing, sql, params)?.into_iter().next())
    }

    fn query_one(
        &self,
        doing: &'static str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<tokio_postgres::Row, StorageError> {
        self.query_opt(doing, sql, params)?.ok_or_else(|| StorageError::Corrupt(format!("no row while {doing}")))
    }

    fn execute(&self, doing: &'static str, sql: &str, params: &Params<'_>) -> Result<u64, StorageError> {
        self.rt.block_on(async {
            let st = self.tx.prepare_cached(sql).await.map_err(pg(doing))?;
            self.tx.execute(&st, params).await.map_err(pg(doing))
        })
    }
}

/// The [`StorageError`] inside an error of a store, for the retry test.
pub(crate) trait HasStorageError {
    fn storage(&self) -> Option<&StorageError>;
}

impl HasStorageError for StorageError {
    fn storage(&self) -> Option<&StorageError> {
        Some(self)
    }
}

impl PostgresStorage {
    /// Runs `body` in a transaction that commits durably (what it writes,
    /// someone is told is done), waiting on this thread; again if it lost a
    /// deadlock or a race on a unique key. Not for the adapter's own
    /// runtime threads.
    fn write<T, E>(&self, clock: &dyn Clock, body: impl Fn(&Blocking<'_, '_>, i64) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError> + HasStorageError,
    {
        let rt = self.runtime().handle();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut client =
                    rt.block_on(self.shared.pool.get()).map_err(pool_error("taking a database connection"))?;
                let tx = rt.block_on(client.transaction()).map_err(pg("beginning a transaction"))?;
                let now_ms = self.shared.now(clock);
                let value = body(&Blocking { rt, tx: &tx }, now_ms)?;
                rt.block_on(tx.commit()).map_err(pg("committing"))?;
                Ok(value)
            })();
            match result {
                Err(e) if attempt < ATTEMPTS && HasStorageError::storage(&e).is_some_and(retryable) => {
                    tracing::debug!(attempt, "a database transaction lost a race; running it again");
                }
                result => return result,
            }
        }
    }

    /// A read in one snapshot (`REPEATABLE READ, READ ONLY`), waiting on
    /// this thread.
    fn read<T>(&self, body: impl FnOnce(&Blocking<'_, '_>) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let rt = self.runtime().handle();
        let mut client = rt.block_on(self.shared.pool.get()).map_err(pool_error("taking a database connection"))?;
        let tx = rt
            .block_on(
                client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start(),
            )
            .map_err(pg("beginning a read"))?;
        let value = body(&Blocking { rt, tx: &tx })?;
        rt.block_on(tx.commit()).map_err(pg("ending a read"))?;
        Ok(value)
    }
}
