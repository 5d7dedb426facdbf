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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::median;
use crate::demo::collector_command;
use crate::largesite::{self, Made};
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

pub fn bench(root: &Path, options: &Options) -> Result<()> {
    let made = largesite::cached_or_run(
        root,
        &largesite::Options {
            sessions: options.sessions,
            calls: options.calls,
            seed: options.seed,
            out: options.out.clone(),
            keep_indexes: false,
        },
    )?;
    let token = admin_token(&made.config)?;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut command = collector_command(root, &made.config, &addr.to_string());
    match &options.collector {
        Some(binary) => {
            let binary = if binary.is_absolute() { binary.clone() } else { root.join(binary) };
            let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
            command = std::process::Command::new(binary);
            command.current_dir(root).args(args);
        }
        None => crate::bench::build_collector(root)?,
    }
    let started = Instant::now();
    let mut collector = Guard::spawn("collector", command.stdout(Stdio::null()))?;
    // Starting migrates the file to the collector's schema (new indexes are
    // made here) and syncs the site's numbers.
    wait_for_port(addr, &mut collector.child, "collector", Duration::from_secs(1800))?;
    let startup = started.elapsed();
    let base = format!("http://{addr}");
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?;

    let baseline_path = "/v1/openapi.json";
    let views = views(&made)?;
    let load_before = load();
    let mut sizes = vec![0usize; views.len()];
    let mut first = vec![Duration::ZERO; views.len()];
    get(&client, &base, &token, baseline_path)?;
    for (i, v) in views.iter().enumerate() {
        let (took, bytes) = get(&client, &base, &token, &v.path)?;
        first[i] = took;
        sizes[i] = bytes;
    }
    let mut baseline = Vec::new();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); views.len()];
    for round in 1..=options.runs {
        eprintln!("round {round} of {}", options.runs);
        baseline.push(get(&client, &base, &token, baseline_path)?.0.as_secs_f64() * 1e3);
        for (i, v) in views.iter().enumerate() {
            times[i].push(get(&client, &base, &token, &v.path)?.0.as_secs_f64() * 1e3);
        }
    }
    let load_after = load();
    baseline.sort_by(f64::total_cmp);
    let base_median = median(&baseline);

    let bytes = std::fs::metadata(&made.database)?.len();
    println!(
        "\nbench reports: {} sessions, {} calls over {} days ({}, {:.2} GB), {} runs each",
        made.counts.sessions,
        made.counts.calls,
        made.scale.days,
        made.database.display(),
        bytes as f64 / 1e9,
        options.runs
    );
    println!("  collector started (migrations, site sync) in {:.1} s", startup.as_secs_f64());
    println!("  load average before {load_before}, after {load_after}");
    println!(
        "  {:<40} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "view", "first ms", "median ms", "worst ms", "× base", "bytes"
    );
    println!(
        "  {:<40} {:>10} {:>10.2} {:>10.2} {:>10} {:>10}",
        format!("GET {baseline_path} (baseline)"),
        "",
        base_median,
        baseline[baseline.len() - 1],
        "1",
        ""
    );
    let mut slow = Vec::new();
    for (i, v) in views.iter().enumerate() {
        let t = &mut times[i];
        t.sort_by(f64::total_cmp);
        let m = median(t);
        println!(
            "  {:<40} {:>10.1} {:>10.1} {:>10.1} {:>10.0} {:>10}",
            v.name,
            first[i].as_secs_f64() * 1e3,
            m,
            t[t.len() - 1],
            m / base_median,
            sizes[i]
        );
        if m >= 1000.0 {
            slow.push(v.name);
        }
    }
    for v in &views {
        println!("    {}: GET {}", v.name, v.path);
    }
    if slow.is_empty() {
        println!("  every view's median is under 1 s (issue #17's goal)");
    } else {
        println!("  over 1 s at the median: {}", slow.join(", "));
    }
    Ok(())
}
