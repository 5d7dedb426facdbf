//! `cargo xtask bench reports`: the dashboard's default views over a year of
//! one large site (issue #17, item 5), over HTTP against the release
//! collector with the admin token.
//!
//! The site comes from `cargo xtask largesite` (reused while its scale and
//! seed match). Each view is asked for once to warm the page cache, then
//! `runs` times in turn with the others, one request at a time; the median
//! and the worst are printed, and the median as a ratio to the baseline
//! measured in the same rounds (`GET /v1/openapi.json`, which reads no
//! database), because on a shared machine a bare figure says little.
//! Windows end on the last day of the generated year, so a database made
//! days ago is measured on the same shape as a new one.
//!
//! With `--database postgres|both` the same site (same scale and seed, so
//! the same rows) is read from a PostgreSQL cluster kept beside the SQLite
//! file, by a collector of its own; with both, each view is asked of one
//! backend and then the other in every round, and each backend's ratios are
//! to its own collector's baseline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::median;
use crate::demo::collector_command;
use crate::largesite::{self, Backend, Made};
use crate::util::{Guard, free_port, wait_for_port};

/// The site's days are Moscow's (UTC+3 all year).
const ZONE: &str = "Europe/Moscow";

pub struct Options {
    pub sessions: u64,
    pub calls: u64,
    pub seed: u64,
    pub out: PathBuf,
    pub runs: u32,
    /// A collector binary to measure instead of building this tree's (an
    /// older build, for before-and-after figures).
    pub collector: Option<PathBuf>,
    /// Each backend's copy of the site, asked in turn in the same rounds.
    pub backends: Vec<Backend>,
}

/// One request the dashboard makes, and what its answer must hold.
struct View {
    name: &'static str,
    path: String,
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn views(made: &Made) -> Result<Vec<View>> {
    let zone = jiff::tz::TimeZone::get(ZONE)?;
    // The last local day the generated year has data for: the generator's
    // days are the site's, the last one starting a day before the year ends.
    let last = jiff::Timestamp::from_millisecond(made.scale.end_ms - 86_400_000)?.to_zoned_datetime(zone).date();
    let days_back = |n: i64| -> Result<String> { Ok(last.checked_sub(jiff::Span::new().days(n))?.to_string()) };
    let site = &made.site;
    let (d30, d7, d365) = (days_back(29)?, days_back(6)?, days_back(364)?);
    let period = format!("site={site}&from={d30}&to={last}");
    Ok(vec![
        View { name: "calls list, no filter", path: "/v1/calls".into() },
        View { name: "calls list, site= (all time, limit 1)", path: format!("/v1/calls?site={site}&limit=1") },
        View { name: "calls list, site=, 30 days (default)", path: format!("/v1/calls?{period}&limit=50&offset=0") },
        View { name: "tags of the site (calls view)", path: format!("/v1/tags?site={site}") },
        View { name: "calls CSV, 30 days (10,000 rows)", path: format!("/v1/calls.csv?{period}") },
        View {
            name: "calls report, 30 days (default)",
            path: format!("/v1/reports/calls?{period}&group_by=channel&interval=day"),
        },
        View {
            name: "calls report, 365 days",
            path: format!("/v1/reports/calls?site={site}&from={d365}&to={last}&group_by=channel&interval=day"),
        },
        View {
            name: "pools report, 7 days (default)",
            path: format!("/v1/reports/pools?site={site}&from={d7}&to={last}"),
        },
        View { name: "promo look-up", path: format!("/v1/promo/{}?site={site}", made.promo_code) },
        View { name: "call detail", path: format!("/v1/calls/{}", made.call_id) },
    ])
}

/// The admin token of the generated config.
fn admin_token(config: &Path) -> Result<String> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let table: toml::Table = toml::from_str(&text)?;
    table
        .get("server")
        .and_then(|s| s.get("admin_token"))
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .context("the large site's config has no server.admin_token")
}

/// One GET; its time and body size. Anything but 200 stops the bench: an
/// error answer is fast and would flatter the figures.
fn get(client: &reqwest::blocking::Client, base: &str, token: &str, path: &str) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let response =
        client.get(format!("{base}{path}")).bearer_auth(token).send().with_context(|| format!("GET {path}"))?;
    let status = response.status();
    let body = response.bytes().with_context(|| format!("reading GET {path}"))?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
    }
    Ok((took, body.len()))
}

/// One backend being measured: its site, its collector and its figures.
struct Target {
    backend: Backend,
    made: Made,
    base: String,
    token: String,
    views: Vec<View>,
    startup: Duration,
    /// What the database takes on disk, and the server's settings that
    /// matter for reads (PostgreSQL).
    size: String,
    settings: Option<String>,
    first: Vec<Duration>,
    sizes: Vec<usize>,
    baseline: Vec<f64>,
    times: Vec<Vec<f64>>,
    // Dropped in this order: the collector before the cluster it uses.
    _collector: Guard,
    _cluster: Option<crate::postgres::Cluster>,
}

/// Starts the collector on `backend`'s large site (made first if missing).
fn start(root: &Path, options: &Options, backend: Backend) -> Result<Target> {
    let made = largesite::cached_or_run(
        root,
        &largesite::Options {
            sessions: options.sessions,
            calls: options.calls,
            seed: options.seed,
            out: options.out.clone(),
            keep_indexes: false,
            backend,
        },
    )?;
    let (cluster, size, settings) = match backend {
        Backend::Sqlite => {
            let bytes = std::fs::metadata(&made.database)?.len();
            (None, format!("{:.2} GB", bytes as f64 / 1e9), None)
        }
        Backend::Postgres => {
            let cluster = crate::postgres::Cluster::start_kept(&made.database, largesite::PG_SETTINGS)?;
            largesite::point_config_at(&made.config, &cluster.url_for(largesite::PG_DATABASE))?;
            let bytes: u64 = cluster
                .query(largesite::PG_DATABASE, &format!("SELECT pg_database_size('{}')", largesite::PG_DATABASE))?
                .parse()?;
            let settings = cluster.query(
                "postgres",
                "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings \
                 WHERE name IN ('shared_buffers', 'effective_cache_size', 'work_mem', 'random_page_cost', \
                 'jit', 'max_parallel_workers_per_gather', 'fsync')",
            )?;
            let settings =
                format!("PostgreSQL {} (kept cluster {}): {settings}", cluster.major, cluster.dir().display());
            (Some(cluster), format!("{:.2} GB", bytes as f64 / 1e9), Some(settings))
        }
    };
    let token = admin_token(&made.config)?;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut command = collector_command(root, &made.config, &addr.to_string());
    if let Some(binary) = &options.collector {
        let binary = if binary.is_absolute() { binary.clone() } else { root.join(binary) };
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        command = std::process::Command::new(binary);
        command.current_dir(root).args(args);
    }
    let started = Instant::now();
    let mut collector = Guard::spawn("collector", command.stdout(Stdio::null()))?;
    // Starting migrates the database to the collector's schema (new indexes
    // are made here) and syncs the site's numbers.
    wait_for_port(addr, &mut collector.child, "collector", Duration::from_secs(1800))?;
    let startup = started.elapsed();
    let views = views(&made)?;
    let n = views.len();
    Ok(Target {
        backend,
        made,
        base: format!("http://{addr}"),
        token,
        views,
        startup,
        size,
        settings,
        first: vec![Duration::ZERO; n],
        sizes: vec![0; n],
        baseline: Vec::new(),
        times: vec![Vec::new(); n],
        _collector: collector,
        _cluster: cluster,
    })
}

const BASELINE_PATH: &str = "/v1/openapi.json";

pub fn bench(root: &Path, options: &Options) -> Result<()> {
    if options.collector.is_none() {
        crate::bench::build_collector(root)?;
    }
    let mut targets = Vec::new();
    for backend in &options.backends {
        targets.push(start(root, options, *backend)?);
    }
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let load_before = load();
    for t in &mut targets {
        get(&client, &t.base, &t.token, BASELINE_PATH)?;
        for (i, v) in t.views.iter().enumerate() {
            let (took, bytes) = get(&client, &t.base, &t.token, &v.path)?;
            t.first[i] = took;
            t.sizes[i] = bytes;
        }
    }
    let views = targets[0].views.len();
    for round in 1..=options.runs {
        eprintln!("round {round} of {}", options.runs);
        for t in &mut targets {
            t.baseline.push(get(&client, &t.base, &t.token, BASELINE_PATH)?.0.as_secs_f64() * 1e3);
        }
        // Each view is asked of every backend in turn, so they see the
        // machine in the same state.
        for i in 0..views {
            for t in &mut targets {
                let took = get(&client, &t.base, &t.token, &t.views[i].path)?.0;
                t.times[i].push(took.as_secs_f64() * 1e3);
            }
        }
    }
    let load_after = load();

    let mut slow = Vec::new();
    for t in &mut targets {
        t.baseline.sort_by(f64::total_cmp);
        for times in &mut t.times {
            times.sort_by(f64::total_cmp);
        }
        let base_median = median(&t.baseline);
        println!(
            "\nbench reports, {}: {} sessions, {} calls over {} days ({}, {}), {} runs each",
            t.backend.label(),
            t.made.counts.sessions,
            t.made.counts.calls,
            t.made.scale.days,
            t.made.database.display(),
            t.size,
            options.runs
        );
        if let Some(settings) = &t.settings {
            println!("  {settings}");
        }
        println!("  collector started (migrations, site sync) in {:.1} s", t.startup.as_secs_f64());
        println!("  load average before {load_before}, after {load_after}");
        println!(
            "  {:<40} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "view", "first ms", "median ms", "worst ms", "× base", "bytes"
        );
        println!(
            "  {:<40} {:>10} {:>10.2} {:>10.2} {:>10} {:>10}",
            format!("GET {BASELINE_PATH} (baseline)"),
            "",
            base_median,
            t.baseline[t.baseline.len() - 1],
            "1",
            ""
        );
        for (i, v) in t.views.iter().enumerate() {
            let times = &t.times[i];
            let m = median(times);
            println!(
                "  {:<40} {:>10.1} {:>10.1} {:>10.1} {:>10.0} {:>10}",
                v.name,
                t.first[i].as_secs_f64() * 1e3,
                m,
                times[times.len() - 1],
                m / base_median,
                t.sizes[i]
            );
            if m >= 1000.0 {
                slow.push(format!("{} on {}", v.name, t.backend.label()));
            }
        }
        for v in &t.views {
            println!("    {}: GET {}", v.name, v.path);
        }
    }
    if targets.len() > 1 {
        println!("\n  side by side: median ms (× the backend's own baseline), worst ms");
        let mut header = format!("  {:<40}", "view");
        for t in &targets {
            header.push_str(&format!(" {:>30}", t.backend.label()));
        }
        println!("{header}");
        let mut line = format!("  {:<40}", format!("GET {BASELINE_PATH} (baseline)"));
        for t in &targets {
            let cell = format!("{:.2} (1), {:.1}", median(&t.baseline), t.baseline[t.baseline.len() - 1]);
            line.push_str(&format!(" {cell:>30}"));
        }
        println!("{line}");
        for i in 0..views {
            let mut line = format!("  {:<40}", targets[0].views[i].name);
            for t in &targets {
                let times = &t.times[i];
                let m = median(times);
                let cell = format!("{m:.1} ({:.0}), {:.1}", m / median(&t.baseline), times[times.len() - 1]);
                line.push_str(&format!(" {cell:>30}"));
            }
            println!("{line}");
        }
    }
    if slow.is_empty() {
        println!("  every view's median is under 1 s (issue #17's goal)");
    } else {
        println!("  over 1 s at the median: {}", slow.join(", "));
    }
    Ok(())
}
