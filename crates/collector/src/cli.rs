//! The `ringsource` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::server;

pub mod migrate;
pub mod users;
use crate::services::privacy::{self, PrivacyService};
use crate::storage::sqlite::backup;
use crate::storage::sqlite::privacy::SqlitePrivacy;

/// Ringsource collector: leases tracking numbers to website visitors and
/// attributes phone calls to the advertising source that brought them.
#[derive(Debug, Parser)]
#[command(name = "ringsource", version, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
}

const LONG_ABOUT: &str = "\
Ringsource collector: leases tracking numbers to website visitors and attributes
phone calls to the advertising source that brought them.

The configuration is one TOML file (see examples/demo/ringsource.toml).
Relative paths in it resolve against the current directory.

Logs go to stderr as text lines, or JSON objects with --log-format json;
--log-level (or $RINGSOURCE_LOG) picks the events, `info` by default. What a
command prints for you (erase's summary, `listening on`) goes to stdout.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (API under /v1/, script tag, bundle and pages).
    ///
    /// Prints `listening on http://ADDR` once bound, with the real port when
    /// `--listen` asks for port 0, followed by the URLs worth opening.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Overrides `[server] listen` (e.g. 127.0.0.1:0 for a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a configuration file and report every error in it.
    ///
    /// Each error names the file, the field path and the reason. Exits
    /// non-zero when there is any.
    CheckConfig {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Fill a site's database with a seeded demo month: visits, leases,
    /// calls (attributed by the real code), costs and revenue.
    ///
    /// Demo rows are marked (PBX "demo", user agent "ringsource demo data")
    /// and never exported. Refuses a database that already has calls.
    DemoData {
        /// The TOML configuration file (its `[server] database` is filled).
        #[arg(long, short)]
        config: PathBuf,
        /// Days before today (UTC) to fill.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// The same seed gives the same month.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The site to fill (default: the first in the file).
        #[arg(long)]
        site: Option<String>,
        /// Succeed without writing when the database already has calls
        /// (`cargo xtask demo` fills a fresh demo database only once).
        #[arg(long)]
        if_empty: bool,
    },
    /// Drop and reduce the personal data past its time now, as a running
    /// collector does every `server.retention_interval_secs`.
    ///
    /// Follows each site's `[sites.retention]`; prints what it removed per
    /// site. Safe while the collector runs.
    Retention {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this site (default: every site in the file).
        #[arg(long)]
        site: Option<String>,
    },
    /// Erase a caller: their calls, events, revenue and exports (pending
    /// ones too), and the sessions those calls went to with their touches,
    /// page views, leases and promo codes.
    ///
    /// Prints what was removed as JSON. Safe while the collector runs.
    Erase {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        site: String,
        /// The caller's number, national in the site's region or international.
        #[arg(long)]
        phone: String,
    },
    /// Print everything held about a caller as JSON (a subject access
    /// request): what `erase` would remove.
    Export {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this site (default: every site in the file).
        #[arg(long)]
        site: Option<String>,
        /// The caller's number, national in the site's region or international.
        #[arg(long)]
        phone: String,
        /// Write the JSON here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Copy the database to a new file while the collector runs (SQLite's
    /// online backup API: one consistent snapshot).
    Backup {
        /// The TOML configuration file (its `[server] database` is copied).
        #[arg(long, short)]
        config: PathBuf,
        /// The backup to write; must not exist yet.
        file: PathBuf,
    },
    /// Print the OpenAPI 3.1 document the server serves at /v1/openapi.json
    /// (for client generators and API docs; it needs no configuration).
    Openapi,
    /// The dashboard's users: `user add NAME --role R [--sites a,b]`,
    /// `user list`, `user remove NAME`, `user passwd NAME`.
    User {
        /// The TOML configuration file (its `[server] database` holds the users).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Copy a SQLite database into PostgreSQL: `migrate --from sqlite:FILE
    /// --to postgres://user@host:port/dbname`.
    ///
    /// Runs PostgreSQL's migrations on the target, copies every table in one
    /// transaction, verifies row counts and a checksum of every table on
    /// both sides, and commits only if all match. Refuses a target that
    /// holds collector data (unless --replace) and a SQLite file that is not
    /// at this version's schema. Stop the collector before, and back up.
    Migrate(migrate::MigrateArgs),
    /// Put a backup in place of the database. Refuses while anything (a
    /// running collector) has the database open: stop it, restore, start it.
    Restore {
        /// The TOML configuration file (its `[server] database` is replaced).
        #[arg(long, short)]
        config: PathBuf,
        /// A file written by `ringsource backup`.
        file: PathBuf,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Openapi => {
            println!("{}", crate::http::routes::openapi_json());
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::DemoData { config, days, seed, site, if_empty } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            match crate::demo::fill(&cfg, &crate::demo::DemoOptions { site, days, seed }) {
                Ok(s) => {
                    println!(
                        "demo data for site {:?}: {} sessions, {} calls ({} recorded, {} tagged), {} cost rows, {} deals",
                        s.site, s.sessions, s.calls, s.recordings, s.tagged, s.cost_rows, s.deals
                    );
                    if !s.promo_codes.is_empty() {
                        println!("promo codes callers named (try them in Promo codes): {}", s.promo_codes.join(", "));
                    }
                    print_demo_users();
                    ExitCode::SUCCESS
                }
                Err(e @ crate::demo::DemoError::NotEmpty { .. }) if if_empty => {
                    println!("no demo data written: {e}");
                    print_demo_users();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ringsource: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Retention { config, site } => {
            with_config(&config, Backends::Both, |cfg| retention(cfg, site.as_deref()))
        }
        Command::Erase { config, site, phone } => with_config(&config, Backends::Both, |cfg| erase(cfg, &site, &phone)),
        Command::Export { config, site, phone, output } => {
            with_config(&config, Backends::Both, |cfg| export(cfg, site.as_deref(), &phone, output.as_deref()))
        }
        Command::Backup { config, file } => with_config(&config, Backends::Sqlite, |cfg| {
            let db = &cfg.server.database;
            let copied = backup::backup(db, &file).map_err(|e| e.to_string())?;
            println!(
                "backed up {} to {}: {} bytes, schema version {}",
                db.display(),
                file.display(),
                copied.bytes(),
                copied.schema_version
            );
            Ok(())
        }),
        Command::Restore { config, file } => with_config(&config, Backends::Sqlite, |cfg| {
            let db = &cfg.server.database;
            let copied = backup::restore(&file, db).map_err(|e| e.to_string())?;
            println!(
                "restored {} into {}: {} bytes, schema version {}; start the collector",
                file.display(),
                db.display(),
                copied.bytes(),
                copied.schema_version
            );
            Ok(())
        }),
        Command::User { config: Some(config), command } => {
            with_config(&config, Backends::Both, |cfg| users::run(cfg, command))
        }
        Command::User { config: None, .. } => {
            eprintln!("ringsource: user needs --config FILE (the configuration whose database holds the users)");
            ExitCode::FAILURE
        }
        Command::Migrate(args) => migrate::run(args),
        Command::Serve { config, listen } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            match serve(cfg, listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // An event, so a JSON log stays JSON to its last line.
                    tracing::error!(error = %e, "the collector stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The demo's users, one per role, to sign in to the dashboard with.
fn print_demo_users() {
    println!("dashboard users of the demo (user / password):");
    for (name, role, password) in crate::demo::DEMO_USERS {
        println!("  {name:<9} / {password:<18} {}", role.as_str());
    }
}

/// Loads the configuration and runs `f`; either's error goes to stderr
/// with a failing exit code.
/// Which databases a command works on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backends {
    /// The SQLite file only (its backup and restore; PostgreSQL has pg_dump).
    Sqlite,
    /// Either.
    Both,
}

fn with_config(path: &Path, backends: Backends, f: impl FnOnce(&Config) -> Result<(), String>) -> ExitCode {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(pg) = &cfg.server.postgres {
        let refusal = match backends {
            Backends::Sqlite => Some(format!(
                "this command works on a SQLite database only, and {} names PostgreSQL ({}); use pg_dump and \
                 pg_restore there",
                path.display(),
                pg.shown
            )),
            Backends::Both => None,
        };
        if let Some(refusal) = refusal {
            eprintln!("ringsource: {refusal}");
            return ExitCode::FAILURE;
        }
    }
    match f(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringsource: {e}");
            ExitCode::FAILURE
        }
    }
}

fn privacy_service(cfg: &Config) -> Result<PrivacyService, String> {
    let store: Arc<dyn crate::storage::privacy::PrivacyStore> = match &cfg.server.postgres {
        Some(pg) => Arc::new(crate::storage::postgres::PostgresStorage::open(pg).map_err(|e| e.to_string())?),
        None => Arc::new(SqlitePrivacy::open(&cfg.server.database).map_err(|e| e.to_string())?),
    };
    Ok(PrivacyService::new(store, &cfg.sites, Arc::new(SystemClock)))
}

fn retention(cfg: &Config, site: Option<&str>) -> Result<(), String> {
    let service = privacy_service(cfg)?;
    let sites: Vec<String> = match site {
        Some(s) => vec![service.site(s).map_err(|e| e.to_string())?.id.clone()],
        None => service.site_ids().to_vec(),
    };
    for site in sites {
        let report = service.apply_retention(&site).map_err(|e| e.to_string())?;
        println!("{}", privacy::retention_line(&report));
    }
    Ok(())
}

fn erase(cfg: &Config, site: &str, phone: &str) -> Result<(), String> {
    let erased = privacy_service(cfg)?.erase(site, phone).map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&erased).map_err(|e| e.to_string())?);
    Ok(())
}

fn export(cfg: &Config, site: Option<&str>, phone: &str, output: Option<&Path>) -> Result<(), String> {
    let service = privacy_service(cfg)?;
    let sites: Vec<String> = match site {
        Some(s) => vec![s.to_owned()],
        None => service.site_ids().to_vec(),
    };
    let mut found = Vec::new();
    for site in &sites {
        found.push(service.export(site, phone).map_err(|e| format!("site {site:?}: {e}"))?);
    }
    let doc = serde_json::json!({ "exported_at_ms": SystemClock.now_ms(), "sites": found });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
    match output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => std::io::stdout().write_all(text.as_bytes()).map_err(|e| format!("cannot write the export: {e}")),
    }
}

fn serve(cfg: Config, listen: Option<SocketAddr>) -> Result<(), server::StartError> {
    let listen = listen.unwrap_or(cfg.server.listen);
    actix_web::rt::System::new().block_on(async move {
        let bound = server::bind(&cfg, listen, std::sync::Arc::new(crate::clock::SystemClock))?;
        // Before the line below: a supervisor or test that reads it may stop
        // the server at once, and that stop must be the graceful one.
        let signals = server::Signals::listen()?;
        // A closed stdout (`ringsource serve | head -1`, a supervisor that
        // stopped reading) must not take the server down, so write errors
        // are ignored rather than panicking as println! would.
        let mut out = std::io::stdout().lock();
        for addr in &bound.addrs {
            let _ = writeln!(out, "listening on http://{addr}");
        }
        if let Some(addr) = bound.addrs.first() {
            let _ = writeln!(out, "demo site:   http://{addr}/demo/");
            let _ = writeln!(out, "script tag:  http://{addr}/ringsource.js");
        }
        let _ = out.flush();
        drop(out);
        server::run(bound, signals).await
    })
}
