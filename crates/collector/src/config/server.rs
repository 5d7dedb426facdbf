//! `[server]`: where to listen, where the files are, the admin token, the
//! proxy in front and the per-client rate limits.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Env, Issues};

/// The environment variable that overrides `[server] admin_token`.
pub const ADMIN_TOKEN_ENV: &str = "RINGSOURCE_ADMIN_TOKEN";

/// The environment variable that names the database instead of `[server]
/// database`: a `postgres://` URL (whose password may stay out of both).
pub const DATABASE_URL_ENV: &str = "RINGSOURCE_DATABASE_URL";
/// The environment variable with the PostgreSQL password, which then need
/// not be in the URL.
pub const DATABASE_PASSWORD_ENV: &str = "RINGSOURCE_DATABASE_PASSWORD";

/// The write-ahead log written out when the collector starts, by default:
/// four seconds of WAL at the heaviest load measured (about 15 MB/s), and
/// little for any disk to spare.
pub const DEFAULT_WAL_PREALLOCATE_MIB: u32 = 64;

/// `[server]`: where to listen and where the files are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A SQLite file, or a `postgres://user@host:port/dbname` URL.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// PEM file of the CA that signed the PostgreSQL server's certificate,
    /// when the URL asks for TLS (`sslmode=require`); without it the
    /// system's CAs are trusted.
    #[serde(default)]
    pub database_ca_file: Option<PathBuf>,
    #[serde(default = "default_bundle_dir")]
    pub bundle_dir: PathBuf,
    #[serde(default = "default_www_dir")]
    pub www_dir: PathBuf,
    /// Bearer token of the admin API. `RINGSOURCE_ADMIN_TOKEN` overrides it.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Behind a reverse proxy: take the client's address from the entry the
    /// proxy appended to `forwarded_header`, and the page's host for the
    /// same-origin check from the forwarded host.
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// Which header the trusted proxy writes.
    #[serde(default)]
    pub forwarded_header: ForwardedHeader,
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// MiB of write-ahead log written out when the collector starts, so that
    /// commits overwrite allocated blocks instead of growing the file (see
    /// storage/sqlite/wal.rs); 0 lets the WAL grow as it is written.
    #[serde(default = "default_wal_preallocate_mib")]
    pub wal_preallocate_mib: u32,
    /// HTTP worker threads; by default one fewer than the CPUs (at least
    /// one), which leaves a CPU to the database writer thread.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Seconds between the retention passes of a running collector (the
    /// first this long after it starts).
    #[serde(default = "default_retention_interval_secs")]
    pub retention_interval_secs: u64,
    /// An IP database in the MaxMind DB format (GeoLite2-City, DB-IP
    /// IP-to-City Lite): each new visitor's region and city are read in it.
    #[serde(default)]
    pub geoip_database: Option<PathBuf>,
    /// Seconds between the first stop signal and closing the listener:
    /// readiness answers 503 meanwhile, so a load balancer stops sending
    /// new requests before connections are refused. 0 stops at once.
    #[serde(default = "default_drain_secs")]
    pub drain_secs: u64,
    /// Seconds the requests in flight when the listener closes have to
    /// finish; past it their connections are dropped.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

/// The header a trusted reverse proxy appends the client's address to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (with `X-Forwarded-Host` and `X-Forwarded-Proto`).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded` (`for=`, `host=`, `proto=`).
    Forwarded,
}

/// `[server.rate_limit]`: token buckets per client (an IPv4 address or an
/// IPv6 /64), one for `POST …/visits` and one for heartbeats and page views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Visits allowed in a burst.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Sustained visits per minute (bucket refill rate).
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Heartbeats and page views allowed in a burst.
    #[serde(default = "default_session_burst")]
    pub session_burst: u32,
    /// Sustained heartbeats and page views per minute.
    #[serde(default = "default_session_per_minute")]
    pub session_per_minute: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: default_burst(),
            per_minute: default_per_minute(),
            session_burst: default_session_burst(),
            session_per_minute: default_session_per_minute(),
        }
    }
}

fn default_burst() -> u32 {
    30
}
fn default_per_minute() -> u32 {
    60
}
/// A visible tab beats once a minute by default: this is a household's or
/// an office's worth of tabs, plus their page views.
fn default_session_burst() -> u32 {
    120
}
fn default_session_per_minute() -> u32 {
    240
}
fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_wal_preallocate_mib() -> u32 {
    DEFAULT_WAL_PREALLOCATE_MIB
}
/// Beyond this a typo (MiB taken for bytes) is likelier than an intent.
const MAX_WAL_PREALLOCATE_MIB: u32 = 4096;
/// More HTTP workers than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

/// Every request that writes waits on the one writer thread, and HTTP
/// workers on every CPU leave that thread to take turns with them: on two
/// CPUs, one worker served 5–8% more visits a second than two.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}
/// Hourly: nothing is kept much more than an hour past its time, and a pass
/// that finds nothing due costs one read of the site's tables.
fn default_retention_interval_secs() -> u64 {
    3600
}
/// A load balancer that probes every 1–2 s and takes an instance out after
/// two or three failed probes (nginx's, HAProxy's and the cloud balancers'
/// usual settings) has stopped sending within this.
fn default_drain_secs() -> u64 {
    5
}
/// A visit's body may take 10 s plus a second per KiB received at the
/// edge (`http::edge::BODY_TIMEOUT`): 20 s lets the slowest visit the edge
/// allows finish, and every ordinary request has long finished.
fn default_shutdown_timeout_secs() -> u64 {
    20
}
/// Longer than this is a typo (minutes taken for seconds), and a supervisor
/// would kill the process first anyway.
const MAX_SHUTDOWN_SECS: u64 = 600;
fn default_database() -> PathBuf {
    PathBuf::from("ringsource.sqlite")
}
fn default_bundle_dir() -> PathBuf {
    PathBuf::from("target/pkg")
}
fn default_www_dir() -> PathBuf {
    PathBuf::from("www")
}

/// PostgreSQL as the database, from `server.database` or
/// [`DATABASE_URL_ENV`].
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// The parsed URL with the password from the environment; its `Debug`
    /// does not show the password.
    pub connect: tokio_postgres::Config,
    /// Where the database is, for messages: `host:port/dbname`.
    pub shown: String,
    pub ca_file: Option<PathBuf>,
}

/// Validated `[server]` section.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The SQLite file (meaningless when [`Self::postgres`] is set).
    pub database: PathBuf,
    /// Set when the database is PostgreSQL.
    pub postgres: Option<PostgresSettings>,
    pub bundle_dir: PathBuf,
    pub www_dir: PathBuf,
    pub admin_token: Option<String>,
    pub trust_forwarded_for: bool,
    pub forwarded_header: ForwardedHeader,
    pub rate_limit: RateLimit,
    pub wal_preallocate_bytes: u64,
    pub workers: usize,
    pub retention_interval_secs: u64,
    pub geoip_database: Option<PathBuf>,
    pub drain_secs: u64,
    pub shutdown_timeout_secs: u64,
}

impl RawServer {
    pub(super) fn default_shape() -> RawServer {
        toml::from_str("").expect("every server field has a default")
    }

    /// The validated section, or `None` after pushing every problem.
    pub(super) fn validate(self, env: &dyn Env, issues: &mut Issues<'_>) -> Option<ServerConfig> {
        let raw = self;
        let listen = raw
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| issues.push("server.listen", format!("{:?} is not an IP:port address: {e}", raw.listen)))
            .ok();
        if raw.wal_preallocate_mib > MAX_WAL_PREALLOCATE_MIB {
            issues.push(
                "server.wal_preallocate_mib",
                format!(
                    "{} MiB is more than {MAX_WAL_PREALLOCATE_MIB}; it is in MiB, not bytes",
                    raw.wal_preallocate_mib
                ),
            );
        }
        if raw.workers.is_some_and(|n| n == 0 || n > MAX_WORKERS) {
            issues.push(
                "server.workers",
                format!("must be 1 to {MAX_WORKERS}; leave it out for one fewer than the CPUs"),
            );
        }
        if raw.retention_interval_secs == 0 {
            issues.push("server.retention_interval_secs", "must be at least 1");
        }
        if raw.drain_secs > MAX_SHUTDOWN_SECS {
            issues.push("server.drain_secs", format!("must be 0 to {MAX_SHUTDOWN_SECS} seconds"));
        }
        if raw.shutdown_timeout_secs == 0 || raw.shutdown_timeout_secs > MAX_SHUTDOWN_SECS {
            issues.push("server.shutdown_timeout_secs", format!("must be 1 to {MAX_SHUTDOWN_SECS} seconds"));
        }
        let rl = raw.rate_limit;
        if [rl.burst, rl.per_minute, rl.session_burst, rl.session_per_minute].contains(&0) {
            issues.push(
                "server.rate_limit",
                "burst, per_minute, session_burst and session_per_minute must be at least 1",
            );
        }
        let postgres = postgres_settings(&raw, env, issues);
        let admin_token = env.var(ADMIN_TOKEN_ENV).or(raw.admin_token);
        if admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            issues.push("server.admin_token", format!("must be at least 16 characters (or set {ADMIN_TOKEN_ENV})"));
        }
        let listen = listen?;
        Some(ServerConfig {
            listen,
            database: raw.database,
            postgres,
            bundle_dir: raw.bundle_dir,
            www_dir: raw.www_dir,
            admin_token,
            trust_forwarded_for: raw.trust_forwarded_for,
            forwarded_header: raw.forwarded_header,
            rate_limit: raw.rate_limit,
            wal_preallocate_bytes: u64::from(raw.wal_preallocate_mib) << 20,
            workers: raw.workers.unwrap_or_else(default_workers),
            retention_interval_secs: raw.retention_interval_secs,
            geoip_database: raw.geoip_database,
            drain_secs: raw.drain_secs,
            shutdown_timeout_secs: raw.shutdown_timeout_secs,
        })
    }
}

/// Whether `database` names PostgreSQL rather than a SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// PostgreSQL's settings for a URL given on the command line (`ringsource
/// migrate --to`), read as `server.database` is: the password may come from
/// [`DATABASE_PASSWORD_ENV`], and `ca_file` plays `server.database_ca_file`.
/// [`DATABASE_URL_ENV`] does not override it. The error names what is wrong
/// and the form expected.
pub fn postgres_from_url(url: &str, ca_file: Option<PathBuf>, env: &dyn Env) -> Result<PostgresSettings, String> {
    /// The environment without [`DATABASE_URL_ENV`]: the URL given wins.
    struct Given<'a>(&'a dyn Env);
    impl Env for Given<'_> {
        fn var(&self, name: &str) -> Option<String> {
            if name == DATABASE_URL_ENV { None } else { self.0.var(name) }
        }
    }
    if !is_postgres_url(url) {
        return Err("must be a postgres://user@host:port/dbname URL".to_owned());
    }
    let mut raw = RawServer::default_shape();
    raw.database = PathBuf::from(url);
    raw.database_ca_file = ca_file;
    let mut issues = super::Issues::new(std::path::Path::new(""));
    match postgres_settings(&raw, &Given(env), &mut issues) {
        Some(settings) if issues.list.is_empty() => Ok(settings),
        _ => Err(issues.list.into_iter().map(|i| i.reason).collect::<Vec<_>>().join("; ")),
    }
}

/// PostgreSQL's settings when the database is a `postgres://` URL (from
/// [`DATABASE_URL_ENV`] first), with problems pushed to `issues`.
fn postgres_settings(raw: &RawServer, env: &dyn Env, issues: &mut Issues<'_>) -> Option<PostgresSettings> {
    let (field, url) = match env.var(DATABASE_URL_ENV) {
        Some(url) => (DATABASE_URL_ENV, url),
        None => ("server.database", raw.database.to_str()?.to_owned()),
    };
    if !is_postgres_url(&url) {
        if field == DATABASE_URL_ENV {
            issues.push(field, "must be a postgres:// URL (a SQLite file goes in server.database)");
        }
        return None;
    }
    let mut connect: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(e) => {
            // The parser's message never repeats the URL, so no password leaks here.
            issues.push(field, format!("is not a PostgreSQL URL ({e}); the form is postgres://user@host:port/dbname"));
            return None;
        }
    };
    if connect.get_hosts().is_empty() {
        issues.push(field, "names no host: postgres://user@host:port/dbname");
        return None;
    }
    if connect.get_user().is_none() {
        issues.push(field, "names no user: postgres://user@host:port/dbname");
        return None;
    }
    if let Some(password) = env.var(DATABASE_PASSWORD_ENV) {
        connect.password(password);
    }
    let host = match &connect.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let port = connect.get_ports().first().copied().unwrap_or(5432);
    let dbname = connect.get_dbname().or(connect.get_user()).unwrap_or_default().to_owned();
    Some(PostgresSettings { connect, shown: format!("{host}:{port}/{dbname}"), ca_file: raw.database_ca_file.clone() })
}
