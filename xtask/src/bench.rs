//! `cargo xtask bench web|tag|collector|limiter|reports`.
//!
//! Numbers on a shared 2-core machine are noisy, so each bench measures its own
//! baseline in the same run and reports the ratio, never a bare figure.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::bundle::{Budget, bundle};
use ringsource_core::touch::classify;
use ringsource_core::visit::{UrlParts, Visit};
use ringsource_core::wire::{NumberKind, Page, VisitRequest, VisitResponse};

use crate::demo::{DEMO_CONFIG, collector_command};
use crate::largesite::Backend;
use crate::provision::{Needs, ToolchainChoice, Tools, provision};
use crate::util::{Guard, capture, cargo, display, free_port, run, wait_for_port};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// `replaceNumbers` vs plain-JS references, in headless Chromium (www/bench/replace.html).
    Web {
        /// How long to wait for the page to publish `window.__benchResult`.
        #[arg(long, default_value_t = 180)]
        timeout_secs: u64,
    },
    /// The script tag on a customer page of another origin, over an emulated slow network:
    /// how long the site's own number shows on a first visit, and whether a returning
    /// visitor sees it at all.
    Tag {
        /// The round-trip time Chromium emulates for every request.
        #[arg(long, default_value_t = 150)]
        rtt_ms: u32,
        /// Each round is a first and a returning visit.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
    },
    /// `wrk` against the lease endpoint, and against an actix-web hello world as baseline.
    Collector {
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, default_value_t = 64)]
        connections: u32,
        #[arg(long, default_value_t = 2)]
        threads: u32,
        /// Baseline and lease runs, alternated; the ratio reported is the median round's.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
        /// `postgres`: on a private PostgreSQL cluster, with one collector and with two on one
        /// database; `both`: those and SQLite, each round from a fresh database.
        #[arg(long, value_enum, default_value_t = Database::Sqlite)]
        database: Database,
    },
    /// The per-client rate limiter with 100,000 clients against 10: alone, and over HTTP
    /// with `wrk` (refused requests, as a flood's are).
    Limiter {
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, default_value_t = 64)]
        connections: u32,
        #[arg(long, default_value_t = 2)]
        threads: u32,
        /// Runs with 10 and with 100,000 clients, alternated; the ratio reported is the median round's.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
    },
    /// The dashboard's default views (calls list, CSV, calls and pools reports, promo look-up,
    /// call detail) over a year of one large site from `cargo xtask largesite` (made, or
    /// reused while its scale and seed match), against `GET /v1/openapi.json` as baseline.
    Reports {
        #[arg(long, default_value_t = 10_000_000)]
        sessions: u64,
        #[arg(long, default_value_t = 1_000_000)]
        calls: u64,
        #[arg(long, default_value_t = 17)]
        seed: u64,
        /// The large site's database (made there if missing or of another scale).
        #[arg(long, default_value = "target/bench/largesite.sqlite")]
        out: PathBuf,
        /// Timed requests per view, after one that warms the cache.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// Measure this collector binary instead of building this tree's (for before-and-after
        /// figures; it migrates the database to its own schema on start).
        #[arg(long)]
        collector: Option<PathBuf>,
        /// `postgres`: the same site in a private PostgreSQL cluster kept in `<out>.pg/`;
        /// `both`: SQLite and PostgreSQL, asked in turn in the same rounds, side by side.
        #[arg(long, value_enum, default_value_t = Database::Sqlite)]
        database: Database,
    },
}

/// Where `bench collector` keeps its leases, and which backends `bench reports` asks.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Database {
    Sqlite,
    Postgres,
    Both,
}

pub fn bench(root: &Path, choice: ToolchainChoice, what: BenchCmd) -> Result<()> {
    match what {
        BenchCmd::Web { timeout_secs } => {
            let tools = provision(root, choice, Needs { browser: true, sip: false })?;
            bundle(root, &tools, "release", Budget::Warn)?;
            web(root, &tools, Duration::from_secs(timeout_secs))
        }
        BenchCmd::Tag { rtt_ms, rounds } => {
            let tools = provision(root, choice, Needs { browser: true, sip: false })?;
            bundle(root, &tools, "release", Budget::Warn)?;
            crate::bench_tag::bench(root, &tools, rtt_ms, rounds)
        }
        BenchCmd::Collector { duration, connections, threads, rounds, database } => {
            let args = WrkArgs { duration, connections, threads };
            match database {
                Database::Sqlite => collector(root, &args, rounds),
                Database::Postgres => backends(root, &args, rounds, &[Setup::PG_ONE, Setup::PG_TWO]),
                Database::Both => backends(root, &args, rounds, &[Setup::SQLITE, Setup::PG_ONE, Setup::PG_TWO]),
            }
        }
        BenchCmd::Limiter { duration, connections, threads, rounds } => {
            crate::bench_limiter::bench(root, &WrkArgs { duration, connections, threads }, rounds)
        }
        BenchCmd::Reports { sessions, calls, seed, out, runs, collector, database } => {
            let out = if out.is_absolute() { out } else { root.join(out) };
            let backends = match database {
                Database::Sqlite => vec![Backend::Sqlite],
                Database::Postgres => vec![Backend::Postgres],
                Database::Both => vec![Backend::Sqlite, Backend::Postgres],
            };
            crate::bench_reports::bench(
                root,
                &crate::bench_reports::Options { sessions, calls, seed, out, runs, collector, backends },
            )
        }
    }
}

pub(crate) fn build_collector(root: &Path) -> Result<()> {
    run(cargo().current_dir(root).args(["build", "--release", "-p", "ringsource-collector"]))
}

/// The demo config with its own fresh database (the demo's data stays untouched) and the
/// per-IP rate limit lifted: every wrk request comes from 127.0.0.1, and we measure leases,
/// not the limiter's 429s.
fn bench_config(root: &Path) -> Result<PathBuf> {
    bench_config_named(root, "collector", |_| Ok(()))
}

/// [`bench_config`] as `target/bench/<name>.toml` with database `<name>.sqlite`,
/// after `edit` has changed it.
pub(crate) fn bench_config_named(
    root: &Path,
    name: &str,
    edit: impl FnOnce(&mut toml::Table) -> Result<()>,
) -> Result<PathBuf> {
    let dir = root.join("target/bench");
    fs::create_dir_all(&dir)?;
    // The demo configuration reads each visitor's region in it.
    crate::geoip::database(root)?;
    let text = fs::read_to_string(root.join(DEMO_CONFIG)).with_context(|| format!("reading {DEMO_CONFIG}"))?;
    let mut config: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {DEMO_CONFIG}"))?;
    let server = config
        .get_mut("server")
        .and_then(|s| s.as_table_mut())
        .with_context(|| format!("{DEMO_CONFIG} has no [server] table"))?;
    let db = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    server.insert("database".into(), db.to_string_lossy().into_owned().into());
    let mut limit = toml::Table::new();
    limit.insert("burst".into(), 1_000_000_000.into());
    limit.insert("per_minute".into(), 1_000_000_000.into());
    server.insert("rate_limit".into(), limit.into());
    edit(&mut config)?;
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, toml::to_string(&config)?)?;
    Ok(path)
}

/// Starts the release collector with the bench config on a free loopback port.
fn start_collector(root: &Path) -> Result<(Guard, SocketAddr)> {
    let config = bench_config(root)?;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut guard =
        Guard::spawn("collector", collector_command(root, &config, &addr.to_string()).stdout(Stdio::null()))?;
    wait_for_port(addr, &mut guard.child, "collector", Duration::from_secs(60))?;
    Ok((guard, addr))
}

fn web(root: &Path, tools: &Tools, timeout: Duration) -> Result<()> {
    build_collector(root)?;
    let (_collector, addr) = start_collector(root)?;

    let chromium = Chromium::start(tools)?;
    let url = format!("http://{addr}/bench/replace.html");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let client = chromium.connect().await?;
        let outcome = poll_bench(&client, &url, timeout).await;
        // Close the session even if the page failed, or Chromium outlives us.
        let closed = client.close().await;
        let value = outcome?;
        closed.context("closing the browser session")?;
        anyhow::Ok(value)
    })?;

    println!("\nbench web: {url}");
    print_result(&result);
    Ok(())
}

/// chromedriver on a free port, with a fresh Chromium profile for its sessions,
/// so no cache or service worker from an earlier run skews a bench.
pub(crate) struct Chromium {
    _driver: Guard,
    addr: SocketAddr,
    profile: PathBuf,
    binary: PathBuf,
}

/// A desktop Chrome's User-Agent, which the benches' browser sends.
const DESKTOP_CHROME_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

impl Chromium {
    pub(crate) fn start(tools: &Tools) -> Result<Chromium> {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut driver = Guard::spawn(
            "chromedriver",
            Command::new(&tools.chromedriver).arg(format!("--port={}", addr.port())).stdout(Stdio::null()),
        )?;
        wait_for_port(addr, &mut driver.child, "chromedriver", Duration::from_secs(30))?;
        let profile = std::env::temp_dir().join(format!("ringsource-bench-{}", std::process::id()));
        fs::create_dir_all(&profile)?;
        Ok(Chromium { _driver: driver, addr, profile, binary: tools.chromium.clone() })
    }

    /// A headless browser session.
    pub(crate) async fn connect(&self) -> Result<fantoccini::Client> {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.binary,
                // Headless Chromium names itself `HeadlessChrome`, which gets no pool number
                // from the collector: the benches' visitors stand for people.
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         format!("--user-agent={DESKTOP_CHROME_UA}"),
                         format!("--user-data-dir={}", self.profile.display())],
            }
        });
        let Value::Object(caps) = caps else { unreachable!("json! object literal") };
        fantoccini::ClientBuilder::rustls()?
            .capabilities(caps)
            .connect(&format!("http://{}", self.addr))
            .await
            .context("starting Chromium through chromedriver")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.profile);
    }
}

async fn poll_bench(client: &fantoccini::Client, url: &str, timeout: Duration) -> Result<Value> {
    println!("opening {url}");
    client.goto(url).await.with_context(|| format!("loading {url}"))?;
    let start = Instant::now();
    loop {
        let state = client
            .execute(
                "return [window.__benchResult ?? null, window.__benchError == null ? null : String(window.__benchError)];",
                vec![],
            )
            .await
            .context("reading window.__benchResult")?;
        match state {
            Value::Array(v) if v.len() == 2 => {
                if let Some(err) = v[1].as_str() {
                    bail!("the bench page reported window.__benchError: {err}");
                }
                if !v[0].is_null() {
                    return Ok(v[0].clone());
                }
            }
            other => bail!("unexpected answer from the page: {other}"),
        }
        if start.elapsed() > timeout {
            bail!("no window.__benchResult after {timeout:?} on {url}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints the page's fields: scalars and nested objects as `field  value` rows,
/// arrays of objects as their own tables.
fn print_result(value: &Value) {
    let mut rows = Vec::new();
    let mut tables = Vec::new();
    flatten("", value, &mut rows, &mut tables);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &rows {
        println!("  {k:<width$}  {v}");
    }
    for (name, items) in tables {
        let mut columns: Vec<String> = Vec::new();
        for item in items {
            for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
        let cell = |item: &Value, c: &str| item.get(c).map(scalar).unwrap_or_default();
        let widths: Vec<usize> = columns
            .iter()
            .map(|c| items.iter().map(|i| cell(i, c).len()).chain([c.len()]).max().unwrap_or(0))
            .collect();
        println!("\n  {name}:");
        let line = |cells: Vec<String>| {
            let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
            println!("  {}", padded.join("  "));
        };
        line(columns.clone());
        for item in items {
            line(columns.iter().map(|c| cell(item, c)).collect());
        }
    }
}

fn flatten<'a>(
    prefix: &str,
    value: &'a Value,
    rows: &mut Vec<(String, String)>,
    tables: &mut Vec<(String, &'a Vec<Value>)>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, rows, tables);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            tables.push((prefix.to_owned(), items));
        }
        other => rows.push((prefix.to_owned(), scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[derive(Clone)]
pub(crate) struct WrkArgs {
    pub(crate) duration: String,
    pub(crate) connections: u32,
    pub(crate) threads: u32,
}

pub(crate) struct WrkResult {
    pub(crate) requests_per_sec: f64,
    latency_avg: String,
    latency_p99: String,
    pub(crate) non_2xx: u64,
    pub(crate) socket_errors: String,
}

/// One baseline run and the lease run after it.
struct Round {
    baseline: WrkResult,
    lease: WrkResult,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.lease.requests_per_sec / self.baseline.requests_per_sec
    }
}

fn wrk_path() -> Result<&'static Path> {
    let wrk = Path::new("/usr/bin/wrk");
    if !wrk.exists() {
        bail!("wrk is missing; run as root: apt-get install -y wrk");
    }
    Ok(wrk)
}

/// Builds and starts the actix-web hello world; returns it with its URL.
fn start_hello(root: &Path) -> Result<(Guard, String)> {
    // The baseline is an example of this crate (dev-dependency on actix-web), built with
    // the same release profile and actix features as the collector.
    run(cargo().current_dir(root).args(["build", "--release", "-p", "xtask", "--example", "hello_baseline"]))?;
    let hello_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut hello = Guard::spawn(
        "hello_baseline",
        Command::new(root.join("target/release/examples/hello_baseline")).arg(hello_addr.to_string()),
    )?;
    wait_for_port(hello_addr, &mut hello.child, "hello_baseline", Duration::from_secs(30))?;
    Ok((hello, format!("http://{hello_addr}/")))
}

fn collector(root: &Path, args: &WrkArgs, rounds: u32) -> Result<()> {
    let wrk = wrk_path()?;
    build_collector(root)?;
    let (_hello, hello_url) = start_hello(root)?;

    let (_collector, addr) = start_collector(root)?;
    let url = format!("http://{addr}/v1/sites/demo/visits");
    let body = visit_body()?;
    // The same request as wrk's, once before the first run and once after the last:
    // proof that the runs measured lease decisions and not, say, crawler visits that
    // skip the pool.
    let before = probe_visit(&url, &body)?;
    if before.kind != NumberKind::Lease || before.overflow {
        bail!("the bench visit was not leased a pool number on a fresh database: {before:?}");
    }
    let body_path = root.join("target/bench/visit.json");
    fs::write(&body_path, &body)?;
    let script = root.join("xtask/bench/visits.lua");

    // The machine's speed drifts by a third within minutes: runs of the two servers
    // alternate, so each ratio compares neighbours in time, and the median round is
    // reported rather than one lucky or unlucky pair.
    let mut measured = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        let baseline = wrk_run(wrk, args, &hello_url, None)?;
        let lease = wrk_run(wrk, args, &url, Some((&script, &body_path)))?;
        measured.push(Round { baseline, lease });
    }
    let after = probe_visit(&url, &body)?;

    println!("\nbench collector (wrk -t{} -c{} -d{}, {rounds} rounds):", args.threads, args.connections, args.duration);
    println!(
        "  {:<6} {:<34} {:>12} {:>10} {:>10} {:>8} {:>7}",
        "round", "endpoint", "req/s", "avg", "p99", "non-2xx", "ratio"
    );
    for (i, r) in measured.iter().enumerate() {
        for (name, w, ratio) in [
            ("actix-web hello world (baseline)", &r.baseline, String::new()),
            ("POST /v1/sites/demo/visits", &r.lease, format!("{:.3}", r.ratio())),
        ] {
            println!(
                "  {:<6} {name:<34} {:>12.0} {:>10} {:>10} {:>8} {ratio:>7}",
                i + 1,
                w.requests_per_sec,
                w.latency_avg,
                w.latency_p99,
                w.non_2xx
            );
            if !w.socket_errors.is_empty() {
                println!("    socket errors: {}", w.socket_errors);
            }
        }
    }
    let mut ratios: Vec<f64> = measured.iter().map(Round::ratio).collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "  lease / baseline: {:.3} (median of {rounds}; lowest {:.3}, highest {:.3})",
        median(&ratios),
        ratios[0],
        ratios[ratios.len() - 1]
    );
    let worst_p99 = measured
        .iter()
        .max_by(|a, b| parse_duration_ms(&a.lease.latency_p99).total_cmp(&parse_duration_ms(&b.lease.latency_p99)))
        .map(|r| r.lease.latency_p99.clone())
        .unwrap_or_default();
    println!("  lease p99, worst round: {worst_p99}");
    for (when, probe) in [("before", &before), ("after", &after)] {
        println!("  a visit {when} the runs got: {}", describe(probe));
    }
    // Error responses are cheap, so a rate made of them would flatter the collector.
    if measured.iter().any(|r| r.lease.non_2xx > 0 || r.baseline.non_2xx > 0) {
        bail!("some responses were not 2xx/3xx; the figures above are not valid");
    }
    Ok(())
}

/// One way of running the collector that `--database postgres|both` measures.
#[derive(Clone, Copy)]
struct Setup {
    label: &'static str,
    /// Database and config names: `lease_<key>_r<round>`.
    key: &'static str,
    postgres: bool,
    instances: usize,
}

impl Setup {
    const SQLITE: Setup = Setup { label: "SQLite, one instance", key: "sqlite", postgres: false, instances: 1 };
    const PG_ONE: Setup = Setup { label: "PostgreSQL, one instance", key: "pg1", postgres: true, instances: 1 };
    const PG_TWO: Setup = Setup { label: "PostgreSQL, two instances", key: "pg2", postgres: true, instances: 2 };
}

/// A setup's lease run in one round: one wrk report per instance, run at the same time.
struct SetupRun {
    per_instance: Vec<WrkResult>,
    before: VisitResponse,
    after: Vec<VisitResponse>,
}

impl SetupRun {
    fn requests_per_sec(&self) -> f64 {
        self.per_instance.iter().map(|w| w.requests_per_sec).sum()
    }

    fn worst_p99_ms(&self) -> f64 {
        self.per_instance.iter().map(|w| parse_duration_ms(&w.latency_p99)).fold(f64::NAN, f64::max)
    }
}

/// `bench collector --database postgres|both`: per round the baseline, then each setup on a
/// database of its own made for that round, so every run starts from an empty lease book
/// (the sole SQLite bench, above, keeps one database for all rounds).
fn backends(root: &Path, args: &WrkArgs, rounds: u32, setups: &[Setup]) -> Result<()> {
    let wrk = wrk_path()?;
    build_collector(root)?;
    let (_hello, hello_url) = start_hello(root)?;
    let cluster = crate::postgres::Cluster::start()?;
    let settings = cluster.query(
        "postgres",
        "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings \
         WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'max_connections')",
    )?;
    let body = visit_body()?;
    let body_path = root.join("target/bench/visit.json");
    fs::create_dir_all(root.join("target/bench"))?;
    fs::write(&body_path, &body)?;
    let script = root.join("xtask/bench/visits.lua");
    let half = WrkArgs {
        duration: args.duration.clone(),
        connections: (args.connections / 2).max(1),
        threads: (args.threads / 2).max(1),
    };

    let mut measured: Vec<(WrkResult, Vec<SetupRun>)> = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        let baseline = wrk_run(wrk, args, &hello_url, None)?;
        let mut runs = Vec::new();
        for setup in setups {
            let wrk_args = if setup.instances == 1 { args } else { &half };
            runs.push(lease_run(root, &cluster, *setup, round, wrk, wrk_args, &body, (&script, &body_path))?);
        }
        measured.push((baseline, runs));
    }

    println!(
        "\nbench collector --database (wrk -t{} -c{} -d{}, {rounds} rounds; two instances: two wrk -t{} -c{} \
         at once, one per instance, req/s summed):",
        args.threads, args.connections, args.duration, half.threads, half.connections
    );
    println!("  PostgreSQL {} (private cluster): {settings}", cluster.major);
    println!(
        "  {:<6} {:<40} {:>12} {:>10} {:>10} {:>8} {:>7}",
        "round", "endpoint", "req/s", "avg", "p99", "non-2xx", "ratio"
    );
    let row = |round: usize, name: &str, w: &WrkResult, ratio: String| {
        println!(
            "  {:<6} {name:<40} {:>12.0} {:>10} {:>10} {:>8} {ratio:>7}",
            round, w.requests_per_sec, w.latency_avg, w.latency_p99, w.non_2xx
        );
        if !w.socket_errors.is_empty() {
            println!("    socket errors: {}", w.socket_errors);
        }
    };
    for (i, (baseline, runs)) in measured.iter().enumerate() {
        row(i + 1, "actix-web hello world (baseline)", baseline, String::new());
        for (setup, run) in setups.iter().zip(runs) {
            let ratio = format!("{:.3}", run.requests_per_sec() / baseline.requests_per_sec);
            if let [only] = run.per_instance.as_slice() {
                row(i + 1, setup.label, only, ratio);
            } else {
                for (n, w) in run.per_instance.iter().enumerate() {
                    row(i + 1, &format!("{}: instance {}", setup.label, n + 1), w, String::new());
                }
                println!("  {:<6} {:<40} {:>12.0} {:>39} {ratio:>7}", i + 1, setup.label, run.requests_per_sec(), "");
            }
        }
    }
    println!("\n  lease / baseline, median of {rounds} rounds (lowest, highest); worst lease p99:");
    for (s, setup) in setups.iter().enumerate() {
        let mut ratios: Vec<f64> =
            measured.iter().map(|(b, runs)| runs[s].requests_per_sec() / b.requests_per_sec).collect();
        ratios.sort_by(f64::total_cmp);
        let worst = measured.iter().map(|(_, runs)| runs[s].worst_p99_ms()).fold(f64::NAN, f64::max);
        println!(
            "    {:<28} {:.3}  ({:.3}, {:.3})  p99 {worst:.1} ms",
            setup.label,
            median(&ratios),
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    println!("\n  probes (a visit on the fresh database before each run, one to each instance after it):");
    for (i, (_, runs)) in measured.iter().enumerate() {
        for (setup, run) in setups.iter().zip(runs) {
            let after: Vec<String> = run.after.iter().map(describe).collect();
            println!(
                "    round {} {}: before {}; after {}",
                i + 1,
                setup.label,
                describe(&run.before),
                after.join(", ")
            );
        }
    }
    let failed = measured
        .iter()
        .any(|(b, runs)| b.non_2xx > 0 || runs.iter().flat_map(|r| &r.per_instance).any(|w| w.non_2xx > 0));
    // Error responses are cheap, so a rate made of them would flatter the collector.
    if failed {
        bail!("some responses were not 2xx/3xx; the figures above are not valid");
    }
    Ok(())
}

/// Starts `setup`'s collectors on a fresh database, probes, runs wrk against each instance
/// at once, probes again, and stops them.
#[allow(clippy::too_many_arguments)]
fn lease_run(
    root: &Path,
    cluster: &crate::postgres::Cluster,
    setup: Setup,
    round: u32,
    wrk: &Path,
    args: &WrkArgs,
    body: &str,
    script: (&Path, &Path),
) -> Result<SetupRun> {
    let name = format!("lease_{}_r{round}", setup.key);
    let database = if setup.postgres { Some(cluster.fresh_database(&name)?) } else { None };
    let config = bench_config_named(root, &name, |config| {
        if let Some(url) = &database {
            let server = config.get_mut("server").and_then(|s| s.as_table_mut()).context("no [server] table")?;
            server.insert("database".into(), url.clone().into());
        }
        Ok(())
    })?;
    let mut instances = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..setup.instances {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut cmd = collector_command(root, &config, &addr.to_string());
        cmd.stdout(Stdio::null());
        let mut guard = Guard::spawn("collector", &mut cmd)?;
        wait_for_port(addr, &mut guard.child, "collector", Duration::from_secs(60))?;
        instances.push(guard);
        urls.push(format!("http://{addr}/v1/sites/demo/visits"));
    }
    // The same request as wrk's: the first proves a fresh pool leases it a number, the
    // last ones that every instance still answered visits with the pool's numbers (the
    // overflow number once the pool ran out) and not, say, as crawlers'.
    let before = probe_visit(&urls[0], body)?;
    if before.kind != NumberKind::Lease || before.overflow {
        bail!("{}: the bench visit was not leased a pool number on a fresh database: {before:?}", setup.label);
    }
    let per_instance = std::thread::scope(|scope| {
        let runs: Vec<_> = urls.iter().map(|url| scope.spawn(move || wrk_run(wrk, args, url, Some(script)))).collect();
        runs.into_iter().map(|r| r.join().expect("wrk thread panicked")).collect::<Result<Vec<_>>>()
    })?;
    let after = urls.iter().map(|url| probe_visit(url, body)).collect::<Result<Vec<_>>>()?;
    if let Some(bad) = after.iter().find(|a| a.kind != NumberKind::Lease) {
        bail!("{}: after the run the bench visit got no pool decision: {bad:?}", setup.label);
    }
    drop(instances);
    Ok(SetupRun { per_instance, before, after })
}

/// The middle value of `sorted` (the mean of the middle two for an even count).
pub(crate) fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] }
}

/// wrk's latency figures (`812.00us`, `4.61ms`, `1.02s`) in milliseconds; NaN if unreadable.
fn parse_duration_ms(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        _ => return f64::NAN,
    };
    number.parse::<f64>().map_or(f64::NAN, |n| n * scale)
}

/// A desktop Chrome's. Without a browser's User-Agent the collector takes the visitor for
/// a crawler, shows it the original number and never consults the pool.
const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// POSTs one bench visit the way wrk does.
fn probe_visit(url: &str, body: &str) -> Result<VisitResponse> {
    let response = reqwest::blocking::Client::new()
        .post(url)
        .header("Content-Type", "text/plain;charset=UTF-8")
        .header("User-Agent", BROWSER_UA)
        .body(body.to_owned())
        .send()
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text()?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url} answered {text}"))
}

fn describe(r: &VisitResponse) -> String {
    let number = r.number.as_ref().map(|n| n.e164()).unwrap_or_default();
    match (r.kind, r.overflow) {
        (NumberKind::Lease, false) => format!("a pool number ({number})"),
        (NumberKind::Lease, true) => {
            format!("the overflow number ({number}): the pool was exhausted")
        }
        (kind, _) => format!("{kind:?} {number}"),
    }
}

/// A first page view from a Google Ads click, built with core's own parser and wire
/// types so the body cannot drift from what the browser sends. Each request opens a new
/// session: after the pool's first numbers, the collector serves the overflow number.
fn visit_body() -> Result<String> {
    let query = "utm_source=google&utm_medium=cpc&utm_campaign=bench&gclid=bench";
    let page = UrlParts { host: "demo.ringsource.test", path: "/", query };
    let referrer = UrlParts { host: "www.google.com", path: "/", query: "" };
    let visit = Visit::new(page, Some(referrer), "");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let request = VisitRequest {
        session_id: None,
        client_id: None,
        ym_uid: None,
        touch: classify(&visit, u64::try_from(now_ms)?),
        first_touch: None,
        page: Page { url: format!("https://demo.ringsource.test/?{query}"), title: None },
        referrer: None,
        reveal: false,
        consent: true,
    };
    Ok(serde_json::to_string(&request)?)
}

fn wrk_run(wrk: &Path, args: &WrkArgs, url: &str, script: Option<(&Path, &Path)>) -> Result<WrkResult> {
    let mut cmd = Command::new(wrk);
    cmd.args([
        format!("-t{}", args.threads),
        format!("-c{}", args.connections),
        format!("-d{}", args.duration),
        "--latency".to_owned(),
    ]);
    if let Some((script, body)) = script {
        cmd.arg("-s").arg(script).env("RINGSOURCE_BENCH_BODY", body).env("RINGSOURCE_BENCH_UA", BROWSER_UA);
    }
    cmd.arg(url);
    wrk_report(&mut cmd, url)
}

/// Runs a prepared wrk command against `url`, echoing it and its report, and reads the report.
pub(crate) fn wrk_report(cmd: &mut Command, url: &str) -> Result<WrkResult> {
    eprintln!("$ {}", display(cmd));
    let out = capture(cmd)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        bail!("wrk failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("unexpected wrk output for {url}"))
}

pub(crate) fn parse_wrk(text: &str) -> Result<WrkResult> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().collect::<Vec<_>>())
    };
    let requests_per_sec =
        field("Requests/sec:").and_then(|v| v.first()?.parse().ok()).context("no Requests/sec line")?;
    let latency_avg = field("Latency").and_then(|v| v.first().map(|s| (*s).to_owned())).unwrap_or_default();
    let latency_p99 = field("99%").and_then(|v| v.first().map(|s| (*s).to_owned())).unwrap_or_default();
    let non_2xx = field("Non-2xx or 3xx responses:").and_then(|v| v.first()?.parse().ok()).unwrap_or(0);
    let socket_errors = field("Socket errors:").map(|v| v.join(" ")).unwrap_or_default();
    Ok(WrkResult { requests_per_sec, latency_avg, latency_p99, non_2xx, socket_errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   683.21us  1.02ms  20.11ms   90.00%\n    Req/Sec    47.11k     3.20k   55.00k    70.00%\n  Latency Distribution\n     50%  412.00us\n     75%  700.00us\n     90%    1.20ms\n     99%    5.10ms\n  937000 requests in 10.00s, 80.00MB read\n  Non-2xx or 3xx responses: 12\nRequests/sec:  93700.50\nTransfer/sec:      8.00MB\n";
        let r = parse_wrk(text).expect("parses");
        assert!((r.requests_per_sec - 93700.5).abs() < 1e-6);
        assert_eq!(r.latency_avg, "683.21us");
        assert_eq!(r.latency_p99, "5.10ms");
        assert_eq!(r.non_2xx, 12);
    }

    #[test]
    fn reads_wrk_latencies_and_takes_medians() {
        assert_eq!(parse_duration_ms("812.00us"), 0.812);
        assert_eq!(parse_duration_ms("4.61ms"), 4.61);
        assert_eq!(parse_duration_ms("1.02s"), 1020.0);
        assert!(parse_duration_ms("soon").is_nan());
        assert_eq!(median(&[0.2, 0.3, 0.9]), 0.3);
        assert_eq!(median(&[0.2, 0.3, 0.5, 0.9]), 0.4);
    }
}
