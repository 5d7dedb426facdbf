//! The `ringsource` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server;

/// Ringsource collector: leases tracking numbers to website visitors and
/// attributes phone calls to the advertising source that brought them.
#[derive(Debug, Parser)]
#[command(name = "ringsource", version, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const LONG_ABOUT: &str = "\
Ringsource collector: leases tracking numbers to website visitors and attributes
phone calls to the advertising source that brought them.

The configuration is one TOML file (see examples/demo/ringsource.toml).
Relative paths in it resolve against the current directory.";

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
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
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
                        "demo data for site {:?}: {} sessions, {} calls, {} cost rows, {} deals",
                        s.site, s.sessions, s.calls, s.cost_rows, s.deals
                    );
                    ExitCode::SUCCESS
                }
                Err(e @ crate::demo::DemoError::NotEmpty { .. }) if if_empty => {
                    println!("no demo data written: {e}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ringsource: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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
                    eprintln!("ringsource: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve(cfg: Config, listen: Option<SocketAddr>) -> Result<(), server::StartError> {
    let listen = listen.unwrap_or(cfg.server.listen);
    actix_web::rt::System::new().block_on(async move {
        let bound = server::bind(&cfg, listen, std::sync::Arc::new(crate::clock::SystemClock))?;
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
        bound.server.await.map_err(server::StartError::Run)
    })
}
