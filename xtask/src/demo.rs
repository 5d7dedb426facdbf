//! `cargo xtask demo`: the bundle plus the collector serving the demo site.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::bundle::{Budget, bundle};
use crate::provision::{Needs, ToolchainChoice, provision};
use crate::util::{cargo, display};

pub const DEMO_CONFIG: &str = "examples/demo/ringsource.toml";

/// The collector's `serve` command line; `listen` overrides the config's address.
pub fn serve_args(config: &str, listen: Option<&str>) -> Vec<String> {
    let mut args = vec!["serve".to_owned(), "--config".to_owned(), config.to_owned()];
    if let Some(addr) = listen {
        args.extend(["--listen".to_owned(), addr.to_owned()]);
    }
    args
}

pub fn demo(root: &Path, choice: ToolchainChoice, listen: Option<&str>) -> Result<()> {
    let tools = provision(root, choice, Needs { browser: false, sip: false })?;
    bundle(root, &tools, "release", Budget::Warn)?;
    crate::dashboard::vendor(root)?;
    // The demo configuration reads visitors' regions in it.
    crate::geoip::database(root)?;

    let addr = match listen {
        Some(a) => Some(a.to_owned()),
        None => config_listen(&root.join(DEMO_CONFIG)),
    };
    match addr {
        Some(addr) => {
            let base = format!("http://{addr}");
            println!("\nOnce the collector is up, open:");
            for page in pages(&root.join("www")) {
                println!("  {base}/{page}");
            }
            println!("  {base}/ringsource.js        (the script tag)");
            println!("  {base}/v1/openapi.json      (the HTTP API)");
        }
        None => println!("\nThe collector prints its address below."),
    }
    println!();

    // A month of demo calls, costs and revenue for the dashboard, written
    // once: the collector leaves a database that already has calls alone.
    let mut fill = cargo();
    fill.current_dir(root).args(["run", "--release", "-p", "ringsource-collector", "--"]).args([
        "demo-data",
        "--config",
        DEMO_CONFIG,
        "--if-empty",
    ]);
    eprintln!("$ {}", display(&fill));
    let status = fill.status().context("cannot run cargo run for the demo data")?;
    anyhow::ensure!(status.success(), "filling the demo database failed ({status})");

    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["run", "--release", "-p", "ringsource-collector", "--"])
        .args(serve_args(DEMO_CONFIG, listen));
    eprintln!("$ {}", display(&cmd));
    // exec: Ctrl-C and the exit status then belong to the collector, not to us.
    let err = cmd.exec();
    Err(err).context("cannot exec cargo run for the collector")
}

/// The `listen` address from the collector config, top level or one table down.
fn config_listen(path: &Path) -> Option<String> {
    let table: toml::Table = toml::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let find = |t: &toml::Table| t.get("listen").and_then(|v| v.as_str()).map(str::to_owned);
    find(&table).or_else(|| table.values().filter_map(|v| v.as_table()).find_map(find))
}

/// Entry pages under www/ (`index.html` of each folder, and top-level `.html` files),
/// so the printed links follow whatever the demo site actually contains.
fn pages(www: &Path) -> Vec<String> {
    let mut pages = Vec::new();
    let Ok(entries) = std::fs::read_dir(www) else {
        return pages;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() && path.join("index.html").exists() {
            pages.push(format!("{name}/"));
        } else if name.ends_with(".html") {
            pages.push(if name == "index.html" { String::new() } else { name });
        }
    }
    pages.sort();
    pages
}

/// Used by the benches: the release collector with `config`, on a chosen address.
pub fn collector_command(root: &Path, config: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(root.join("target/release/ringsource"));
    cmd.current_dir(root).args(serve_args(&config.to_string_lossy(), Some(listen)));
    cmd
}
