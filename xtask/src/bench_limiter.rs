//! `cargo xtask bench limiter`: what the per-client rate limiter costs with 100,000
//! clients against 10, measured in the same run.
//!
//! Two measures, each as a ratio of neighbouring runs: the limiter alone
//! (`crates/collector/examples/limiter_cost.rs`, ns per check), and the collector over
//! HTTP answering a flood's refused requests (wrk, requests per second), which is where
//! the old limiter's scan of every bucket showed: 20k req/s of 429s at a few IPs, 5k at
//! 63,000.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench::{WrkArgs, WrkResult, bench_config_named, build_collector, median, wrk_report};
use crate::demo::collector_command;
use crate::util::{Guard, capture, cargo, free_port, run, wait_for_port};

/// The two client counts compared.
const FEW: u32 = 10;
const MANY: u32 = 100_000;

pub(crate) fn bench(root: &Path, args: &WrkArgs, rounds: u32) -> Result<()> {
    let wrk = Path::new("/usr/bin/wrk");
    if !wrk.exists() {
        bail!("wrk is missing; run as root: apt-get install -y wrk");
    }
    build_collector(root)?;
    run(cargo().current_dir(root).args([
        "build",
        "--release",
        "-p",
        "ringsource-collector",
        "--example",
        "limiter_cost",
    ]))?;

    eprintln!("the limiter alone");
    let out = capture(Command::new(root.join("target/release/examples/limiter_cost")).arg("--json"))?;
    if !out.status.success() {
        bail!("limiter_cost failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let alone: Value = serde_json::from_slice(&out.stdout).context("reading limiter_cost's JSON")?;

    // A collector per client count, so each limiter holds only its own clients.
    let few = Server::start(root, "limiter-few")?;
    let many = Server::start(root, "limiter-many")?;
    let script = root.join("xtask/bench/limiter.lua");
    // Every client once, so the runs measure a limiter that already holds them all.
    for (server, clients) in [(&few, FEW), (&many, MANY)] {
        let warm = WrkArgs { duration: "6s".to_owned(), ..args.clone() };
        let result = wrk_run(wrk, &warm, &server.url, &script, clients)?;
        let seen = (result.requests_per_sec * 6.0) as u64;
        if seen < u64::from(clients) {
            bail!("the warm-up sent {seen} requests, fewer than the {clients} clients");
        }
    }
    let mut measured = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        let a = wrk_run(wrk, args, &few.url, &script, FEW)?;
        let b = wrk_run(wrk, args, &many.url, &script, MANY)?;
        measured.push((a, b));
    }

    println!("\nbench limiter");
    println!("  the limiter alone (ns per check, every check refused):");
    println!("  {:<6} {:>12} {:>16} {:>7}", "round", "10 clients", "100,000 clients", "ratio");
    let mut alone_ratios = Vec::new();
    for (i, r) in alone["rounds"].as_array().context("no rounds in limiter_cost's JSON")?.iter().enumerate() {
        let (a, b) = (r["few_ns"].as_f64().unwrap_or(f64::NAN), r["many_ns"].as_f64().unwrap_or(f64::NAN));
        println!("  {:<6} {a:>12.1} {b:>16.1} {:>7.2}", i + 1, b / a);
        alone_ratios.push(b / a);
    }
    alone_ratios.sort_by(f64::total_cmp);
    println!("  100,000 / 10 clients: {:.2} (median of {})", median(&alone_ratios), alone_ratios.len());

    println!(
        "\n  the collector over HTTP (wrk -t{} -c{} -d{}; 429s, and 400 for a client's one token a minute):",
        args.threads, args.connections, args.duration
    );
    println!("  {:<6} {:>12} {:>16} {:>7}", "round", "10 clients", "100,000 clients", "ratio");
    let mut ratios = Vec::new();
    for (i, (a, b)) in measured.iter().enumerate() {
        let ratio = b.requests_per_sec / a.requests_per_sec;
        println!("  {:<6} {:>12.0} {:>16.0} {ratio:>7.3}", i + 1, a.requests_per_sec, b.requests_per_sec);
        for w in [a, b] {
            if !w.socket_errors.is_empty() {
                println!("    socket errors: {}", w.socket_errors);
            }
        }
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  req/s, 100,000 / 10 clients: {:.3} (median of {rounds}; lowest {:.3}, highest {:.3})",
        median(&ratios),
        ratios[0],
        ratios[ratios.len() - 1]
    );
    // Every answer is a refusal or a bad request; a 2xx would mean a visit was written.
    if measured.iter().any(|(a, b)| a.non_2xx == 0 || b.non_2xx == 0) {
        bail!("wrk counted no refused requests; the runs did not measure the limiter");
    }
    Ok(())
}

/// A release collector trusting `X-Forwarded-For`, with a bucket of one request a
/// minute per client.
struct Server {
    _guard: Guard,
    url: String,
}

impl Server {
    fn start(root: &Path, name: &str) -> Result<Server> {
        let config = bench_config_named(root, name, |config| {
            let server = config.get_mut("server").and_then(|s| s.as_table_mut()).context("no [server] table")?;
            server.insert("trust_forwarded_for".into(), true.into());
            let mut limit = toml::Table::new();
            limit.insert("burst".into(), 1.into());
            limit.insert("per_minute".into(), 1.into());
            server.insert("rate_limit".into(), limit.into());
            Ok(())
        })?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut guard =
            Guard::spawn("collector", collector_command(root, &config, &addr.to_string()).stdout(Stdio::null()))?;
        wait_for_port(addr, &mut guard.child, "collector", Duration::from_secs(60))?;
        Ok(Server { _guard: guard, url: format!("http://{addr}/v1/sites/demo/visits") })
    }
}

fn wrk_run(wrk: &Path, args: &WrkArgs, url: &str, script: &Path, clients: u32) -> Result<WrkResult> {
    let mut cmd = Command::new(wrk);
    cmd.args([format!("-t{}", args.threads), format!("-c{}", args.connections), format!("-d{}", args.duration)])
        .arg("-s")
        .arg(script)
        .env("RINGSOURCE_BENCH_CLIENTS", clients.to_string())
        .arg(url);
    // The command's echo names RINGSOURCE_BENCH_CLIENTS among its environment.
    wrk_report(&mut cmd, url)
}
