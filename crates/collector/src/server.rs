//! Builds the actix-web application and runs it, and stops it gracefully.
//!
//! A stop ([`run`]) on the first SIGTERM or SIGINT:
//! 1. readiness (`GET /v1/ready`) answers 503 for `server.drain_secs`,
//!    while everything else is served as before: a load balancer that
//!    probes readiness stops sending new requests meanwhile;
//! 2. the listener closes (new connections are refused), idle keep-alive
//!    connections are closed, and the requests in flight have
//!    `server.shutdown_timeout_secs` to finish (actix-server's graceful
//!    stop; their connections are dropped after it);
//! 3. the storage writes out what it has queued ([`Health::flushed`]);
//! 4. [`run`] returns, and the binary flushes its log buffer and exits 0.
//!
//! A second signal at any point ends [`run`] at once with
//! [`StartError::SecondSignal`]: nothing more is waited for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::{App, web};

use crate::clock::Clock;
use crate::config::Config;
use crate::http::client_addr::LocalAddr;
use crate::http::ratelimit::{Bucket, RateLimiter};
use crate::http::state::AppState;
use crate::http::static_files::{self, StaticDirs};
use crate::services::calls::{CallSink, CallsService};
use crate::services::exports::ExportsService;
use crate::services::health::Health;
use crate::services::money::MoneyService;
use crate::services::pools::PoolsService;
use crate::services::privacy::PrivacyService;
use crate::services::visitor_facts::VisitorFacts;
use crate::services::visits::VisitsService;
use crate::storage::StorageError;
use crate::storage::stores::{Backend, Stores};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot prepare the database: {0}")]
    Storage(#[from] StorageError),
    #[error("the server stopped with an error: {0}")]
    Run(#[source] std::io::Error),
    #[error("the server thread ended before it was bound")]
    ThreadGone,
    #[error(transparent)]
    VisitorFacts(#[from] crate::services::visitor_facts::VisitorFactsError),
    #[error("cannot listen for stop signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("a second {0}: stopped at once, without finishing the requests in flight")]
    SecondSignal(&'static str),
}

/// A bound, not yet awaited server.
pub struct Bound {
    pub server: actix_web::dev::Server,
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
    /// Readiness, drained by [`run`] when a stop signal comes.
    pub health: Arc<Health>,
    /// `server.drain_secs`.
    pub drain: Duration,
    /// `server.shutdown_timeout_secs` (also given to actix-server).
    pub shutdown_timeout: Duration,
}

/// Opens the database, syncs the configured sites into it and binds the HTTP
/// server. Must be called inside an actix system (`actix_web::rt::System`).
pub fn bind(config: &Config, listen: SocketAddr, clock: Arc<dyn Clock>) -> Result<Bound, StartError> {
    bind_with(config, listen, clock, None)
}

/// [`bind`] with the sink that receives verified PBX call events.
pub fn bind_with(
    config: &Config,
    listen: SocketAddr,
    clock: Arc<dyn Clock>,
    call_sink: Option<Arc<dyn CallSink>>,
) -> Result<Bound, StartError> {
    let stores = Stores::open(config)?;
    let geoip = config.server.geoip_database.as_deref();
    let visitor_facts = match &stores.backend {
        Backend::Sqlite(db) => VisitorFacts::open(db, geoip)?,
        Backend::Postgres(storage) => VisitorFacts::on_postgres(storage.clone(), geoip)?,
    };
    stores.storage.sync_sites(&config.sites, clock.as_ref())?;
    let health = Arc::new(Health::new(stores.storage.clone()));
    let sites = Arc::new(config.site_map());
    let calls = Arc::new(
        CallsService::new(stores.calls.clone(), &config.sites, Arc::clone(&clock)).with_money(stores.money.clone()),
    );
    let privacy = Arc::new(PrivacyService::new(stores.privacy.clone(), &config.sites, Arc::clone(&clock)));
    // Delivers the outbox on this runtime; it stops with the server's system.
    crate::services::exports::worker::start(crate::services::exports::worker::Worker {
        store: stores.outbox.clone(),
        sites: sites.as_ref().clone(),
        clock: Arc::clone(&clock),
    });
    crate::services::privacy::start(
        Arc::clone(&privacy),
        std::time::Duration::from_secs(config.server.retention_interval_secs),
    );
    let state = web::Data::new(AppState {
        sites,
        clock: Arc::clone(&clock),
        admin_token: config.server.admin_token.clone(),
        visits: VisitsService::new(stores.storage, Arc::clone(&clock)),
        // PBX events go to storage and attribution unless a test injects its own sink.
        call_sink: Some(call_sink.unwrap_or_else(|| calls.clone())),
        calls,
        money: MoneyService::new(stores.money, Arc::clone(&clock)),
        exports: ExportsService::new(stores.outbox, Arc::clone(&clock)),
        pools: PoolsService::new(stores.pools),
        privacy,
        visit_limiter: RateLimiter::new(Bucket::visits(&config.server.rate_limit)),
        session_limiter: RateLimiter::new(Bucket::session(&config.server.rate_limit)),
        forwarded: config.server.trust_forwarded_for.then_some(config.server.forwarded_header),
        users: stores.users,
        login_by_address: crate::http::auth::login_by_address(),
        login_by_name: crate::http::auth::login_by_name(),
        notes: stores.notes,
        recordings: stores.recordings,
        recordings_client: crate::http::recordings::client(),
        visitor_facts: Arc::new(visitor_facts),
        health: Arc::clone(&health),
    });
    let dirs = StaticDirs { bundle_dir: config.server.bundle_dir.clone(), www_dir: config.server.www_dir.clone() };
    let app = move || {
        App::new()
            // Inside the edge: users and roles are checked on requests the
            // edge has let in, and the edge's headers go on every refusal.
            .wrap(actix_web::middleware::from_fn(crate::http::extract::guard))
            .wrap(actix_web::middleware::from_fn(crate::http::edge::guard))
            // Outermost: the guard's own answers get a request id and a line too.
            .wrap(actix_web::middleware::from_fn(crate::http::requests::middleware))
            .app_data(state.clone())
            .configure(crate::http::routes::register)
            .configure(|cfg| static_files::configure(&dirs, cfg))
            .default_service(web::to(crate::http::routes::not_found))
    };
    let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
    let (server, addrs) = serve(app, listen, config.server.workers, shutdown_timeout)?;
    Ok(Bound { server, addrs, health, drain: Duration::from_secs(config.server.drain_secs), shutdown_timeout })
}

/// Runs `app` on `listen` as actix-web's `HttpServer` would, but with each
/// connection's stream behind the edge's head deadline and the connection
/// cap (see [`crate::http::edge`]).
fn serve<F, I, S, B>(
    app: F,
    listen: SocketAddr,
    workers: usize,
    shutdown_timeout: Duration,
) -> Result<(actix_web::dev::Server, Vec<SocketAddr>), StartError>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: actix_service::ServiceFactory<actix_http::Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error>,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>>,
    B: actix_web::body::MessageBody + 'static,
{
    use crate::http::edge;
    let bind_err = |source| StartError::Bind { addr: listen, source };
    let listener = std::net::TcpListener::bind(listen).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    // The cap is per worker.
    let cap = edge::max_connections();
    let per_worker = cap.div_ceil(workers.max(1)).max(1);
    let gate = edge::Gate::new(cap);
    let builder = actix_server::Server::build()
        .workers(workers)
        .max_concurrent_connections(per_worker)
        // Signals are [`run`]'s: actix's own would stop at once on SIGINT
        // and without the drain on SIGTERM.
        .disable_signals()
        .shutdown_timeout(shutdown_timeout.as_secs());
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder
        .listen("ringsource", listener, move || {
            let shutdown = shutdown.clone();
            let gate = std::sync::Arc::clone(&gate);
            let http = actix_http::HttpService::build()
                .keep_alive(edge::KEEP_ALIVE)
                .client_request_timeout(edge::HEAD_TIMEOUT)
                .client_disconnect_timeout(edge::DISCONNECT_TIMEOUT)
                .local_addr(addr)
                // Keep-alive connections close when the server stops.
                .graceful_shutdown_signal(move || {
                    let signal = shutdown.clone();
                    async move { signal.notified().await }
                })
                // The requests tell the stream when a head is complete. The
                // same-origin check compares a page's origin with the address
                // the connection arrived at (see http/client_addr.rs), which on a
                // wildcard listener is not the listener's own.
                .on_connect_ext(|io: &edge::Deadlined, data: &mut actix_http::Extensions| {
                    data.insert(io.conn());
                    if let Some(local) = io.local_addr() {
                        data.insert(LocalAddr(local));
                    }
                });
            let app = app().into_factory().map_err(|e| e.into().error_response());
            fn_service(move |io: actix_web::rt::net::TcpStream| {
                let accepted = gate.accept(io);
                async move { Ok::<_, actix_http::error::DispatchError>(accepted) }
            })
            .and_then(http.h1(map_config(app, move |()| AppConfig::default())))
        })
        .map_err(bind_err)?
        .run();
    Ok((server, vec![addr]))
}

/// Serves until the first of `signals`, then stops as the module's
/// documentation says. `Ok` once everything accepted is answered (or its
/// time was up) and written.
pub async fn run(bound: Bound, mut signals: Signals) -> Result<(), StartError> {
    let Bound { server, health, drain, shutdown_timeout, .. } = bound;
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    let first = tokio::select! {
        ended = &mut server => return ended.map_err(StartError::Run),
        name = signals.next() => name,
    };
    health.drain();
    tracing::info!(
        signal = first,
        drain_secs = drain.as_secs(),
        "stopping: readiness answers 503 while load balancers drain this instance"
    );
    tokio::select! {
        () = tokio::time::sleep(drain) => {}
        name = signals.next() => return Err(StartError::SecondSignal(name)),
        ended = &mut server => return ended.map_err(StartError::Run),
    }
    tracing::info!(
        shutdown_timeout_secs = shutdown_timeout.as_secs(),
        "stopping: the listener is closed; finishing the requests in flight"
    );
    let closing = Instant::now();
    // Sent now; the server's own future ends once its workers have stopped.
    drop(handle.stop(true));
    tokio::select! {
        ended = &mut server => ended.map_err(StartError::Run)?,
        name = signals.next() => return Err(StartError::SecondSignal(name)),
    }
    let requests_ms = closing.elapsed().as_millis();
    let flushing = Instant::now();
    let flushed = tokio::select! {
        flushed = health.flushed(shutdown_timeout) => flushed,
        name = signals.next() => return Err(StartError::SecondSignal(name)),
    };
    let write_ms = flushing.elapsed().as_millis();
    match flushed {
        Ok(()) => tracing::info!(requests_ms, write_ms, "stopped"),
        // Everything a client was told is done was committed before it was
        // told; what is lost here was never answered.
        Err(e) => tracing::error!(requests_ms, error = %e, "stopped without writing out the storage's queue"),
    }
    Ok(())
}

/// The stop signals: SIGTERM (a supervisor) and SIGINT (Ctrl-C). Listened
/// for from [`Signals::listen`] on, which must come before the server says
/// it is listening: until then either signal kills the process at once.
/// Call it inside the server's runtime.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    pub fn listen() -> Result<Self, StartError> {
        use tokio::signal::unix::{SignalKind, signal};
        let on = |kind| signal(kind).map_err(StartError::Signals);
        Ok(Self { term: on(SignalKind::terminate())?, int: on(SignalKind::interrupt())? })
    }

    #[cfg(not(unix))]
    pub fn listen() -> Result<Self, StartError> {
        Ok(Self {})
    }

    /// The next signal's name.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// A server running on its own thread (tests, tools).
pub struct Spawned {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<Result<(), StartError>>>,
}

impl Spawned {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs a runtime of its own; on a separate thread so a
        // Spawned can also be dropped inside an async test's runtime.
        let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(true))).join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the app on `listen` (port 0 picks a free one) on a new thread and
/// returns once it is bound.
pub fn spawn(config: Config, listen: SocketAddr, clock: Arc<dyn Clock>) -> Result<Spawned, StartError> {
    spawn_with(config, listen, clock, None)
}

/// [`spawn`] with the sink that receives verified PBX call events.
pub fn spawn_with(
    config: Config,
    listen: SocketAddr,
    clock: Arc<dyn Clock>,
    call_sink: Option<Arc<dyn CallSink>>,
) -> Result<Spawned, StartError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match bind_with(&config, listen, clock, call_sink) {
                Ok(bound) => {
                    let _ = tx.send(Ok((bound.addrs[0], bound.server.handle())));
                    bound.server.await.map_err(StartError::Run)
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    Ok(())
                }
            }
        })
    });
    let (addr, handle) = rx.recv().map_err(|_| StartError::ThreadGone)??;
    Ok(Spawned { addr, handle, thread: Some(thread) })
}
