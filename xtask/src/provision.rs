//! Finds, and where possible installs, every tool the other subcommands need.
//!
//! Two ways to build for wasm32 are supported, because the machines differ:
//! - rustup with the `wasm32-unknown-unknown` target (ordinary developer machines);
//! - Debian's `rustc-web` (1.96) plus `rust-web-src`, building std from source with
//!   `-Zbuild-std` (machines where rustup cannot download the wasm std).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::config::{Profile, locked_version};
use crate::util::{self, is_root, run, version_line};

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The Debian packages behind the Debian wasm toolchain. `lld-22` is listed because
/// `rust-web-llvm` ships `/usr/bin/rust-lld` only as a link to it without depending on it.
const DEBIAN_RUST: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "rust-web-llvm", "lld-22"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ToolchainChoice {
    /// rustup if it has (or can add) the wasm32 target, else Debian's rustc-web.
    Auto,
    Rustup,
    Debian,
}

#[derive(Clone, Debug)]
pub enum WasmToolchain {
    /// rustup stable with the prebuilt wasm32 std: no `-Z` flags, so no immediate-abort.
    Rustup,
    /// Debian's compiler, std rebuilt from `rust-web-src` (needs RUSTC_BOOTSTRAP for `-Z`).
    Debian { cargo: PathBuf, rustc: PathBuf, rustdoc: PathBuf },
}

impl WasmToolchain {
    /// A `cargo <subcommand>` for wasm32 with the profile's flags, in its own target dir
    /// (`target/wasm`) so native and wasm builds never invalidate each other's fingerprints.
    pub fn cargo(&self, root: &Path, subcommand: &str, profile: &Profile) -> Command {
        let mut rustflags = profile.rustflags.clone();
        let mut cmd = match self {
            Self::Rustup => util::cargo(),
            Self::Debian { cargo, rustc, rustdoc } => {
                let mut cmd = Command::new(cargo);
                cmd.env("RUSTC", rustc)
                    .env("RUSTDOC", rustdoc)
                    // Debian ships a stable compiler; build-std and -Z flags need this.
                    .env("RUSTC_BOOTSTRAP", "1")
                    // Keep rustup's toolchain pin from leaking into Debian's cargo.
                    .env_remove("RUSTUP_TOOLCHAIN");
                rustflags.extend(profile.build_std_rustflags.iter().cloned());
                cmd
            }
        };
        cmd.current_dir(root)
            .arg(subcommand)
            .args(["--target", WASM_TARGET, "--profile", &profile.cargo_profile])
            .env("CARGO_TARGET_DIR", root.join("target/wasm"))
            // Incremental builds of the wasm measured 39 B off a clean one:
            // the bundle and its budget must not depend on the caller's shell.
            .env("CARGO_INCREMENTAL", "0")
            .env("RUSTFLAGS", rustflags.join(" "));
        if matches!(self, Self::Debian { .. }) && !profile.build_std.is_empty() {
            cmd.arg(format!("-Zbuild-std={}", profile.build_std.join(",")));
        }
        cmd
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::Rustup => "rustup + prebuilt wasm32 std (no build-std, no immediate-abort)",
            Self::Debian { .. } => "Debian rustc-web, std built from source (-Zbuild-std)",
        }
    }
}

/// What a subcommand needs; browser tools are not required just to bundle.
#[derive(Clone, Copy)]
pub struct Needs {
    pub browser: bool,
    /// Kamailio and SIPp, for the end-to-end call through a real SIP proxy.
    pub sip: bool,
}

pub struct Tools {
    pub wasm: WasmToolchain,
    pub wasm_bindgen: PathBuf,
    pub wasm_bindgen_test_runner: PathBuf,
    pub wasm_opt: PathBuf,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    /// `(kamailio, sipp)` when `Needs::sip` asked for them.
    pub sip: Option<(PathBuf, PathBuf)>,
}

pub fn provision(root: &Path, choice: ToolchainChoice, needs: Needs) -> Result<Tools> {
    let wasm = wasm_toolchain(choice)?;
    let (wasm_bindgen, wasm_bindgen_test_runner) = wasm_bindgen_cli(root)?;
    let wasm_opt = debian_tool("wasm-opt", "WASM_OPT", "/usr/bin/wasm-opt", "binaryen", &["--version"])?;
    let (chromium, chromedriver) = if needs.browser {
        browser()?
    } else {
        (PathBuf::from("/usr/bin/chromium"), PathBuf::from("/usr/bin/chromedriver"))
    };
    let sip = if needs.sip { Some(sip_tools()?) } else { None };
    if needs.sip {
        deploy_tools()?;
        postgres_server()?;
    }
    Ok(Tools { wasm, wasm_bindgen, wasm_bindgen_test_runner, wasm_opt, chromium, chromedriver, sip })
}

fn report(tool: &str, how: &str, path: &Path, version: &str) {
    // "ChromeDriver 156.0.1 (730482a…-refs/…)" and "Chromium 156.0.1 built on Debian…"
    // carry build details nobody needs on a one-line report.
    let short = version.split(" (").next().unwrap_or(version);
    let short = short.split(" built on").next().unwrap_or(short);
    println!("{tool:<14} {how:<9} {} ({short})", path.display());
}

fn wasm_toolchain(choice: ToolchainChoice) -> Result<WasmToolchain> {
    // The Debian toolchain wins under `auto`, installed or installable: rebuilding
    // std with panic=immediate-abort ships a bundle about 9 KB gzip smaller, paid
    // on every page view, and only that bundle fits the budget. rustup's prebuilt
    // std cannot drop panics, so it is the fallback where apt cannot be used.
    if choice == ToolchainChoice::Auto {
        if debian_toolchain_problem(Path::new("/usr/bin/rustc")).is_none() || can_apt_install() {
            return debian_toolchain();
        }
        println!(
            "note: the budgeted bundle needs Debian's rustc-web; without root this build \
             uses rustup's wasm32 std (about 9 KB gzip larger). As root: \
             apt-get install -y {}",
            DEBIAN_RUST.join(" ")
        );
    }
    if choice != ToolchainChoice::Debian {
        match rustup_wasm()? {
            Some(how) => {
                let rustc = version_line(Path::new("rustc"), &["--version"]).unwrap_or_default();
                report("wasm32 std", how, Path::new("rustup"), &rustc);
                return Ok(WasmToolchain::Rustup);
            }
            None if choice == ToolchainChoice::Rustup => {
                bail!(
                    "rustup cannot provide {WASM_TARGET}; run `rustup target add {WASM_TARGET}` or use --wasm-toolchain debian"
                )
            }
            None => {}
        }
    }
    debian_toolchain()
}

/// `Some(found|installed)` when rustup has the wasm32 std, `None` when it cannot get it.
fn rustup_wasm() -> Result<Option<&'static str>> {
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(None); // no rustup at all
    };
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(Some("found"));
    }
    // Offline machines fail this within seconds; the deadline guards against a hung proxy.
    let mut child = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting rustup")?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success().then_some("installed"));
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn debian_toolchain() -> Result<WasmToolchain> {
    let cargo = PathBuf::from("/usr/bin/cargo");
    let rustc = PathBuf::from("/usr/bin/rustc");
    let rustdoc = PathBuf::from("/usr/bin/rustdoc");
    let how = match debian_toolchain_problem(&rustc) {
        None => "found",
        Some(problem) => {
            println!("Debian wasm toolchain: {problem}");
            apt_install(DEBIAN_RUST)?;
            if let Some(problem) = debian_toolchain_problem(&rustc) {
                bail!("Debian wasm toolchain still unusable after installing {}: {problem}", DEBIAN_RUST.join(" "));
            }
            "installed"
        }
    };
    let version = version_line(&rustc, &["--version"]).unwrap_or_default();
    report("wasm32 std", how, &rustc, &format!("{}, std from source", version.split(" (").next().unwrap_or_default()));
    Ok(WasmToolchain::Debian { cargo, rustc, rustdoc })
}

/// Why the Debian toolchain cannot build wasm yet, or None if it can.
fn debian_toolchain_problem(rustc: &Path) -> Option<String> {
    let Some(version) = version_line(rustc, &["--version"]) else {
        return Some(format!("{} is missing", rustc.display()));
    };
    // rustc-web is the only Debian rustc new enough for edition 2024 / rust-version 1.95.
    let minor: Option<u32> =
        version.split_whitespace().nth(1).and_then(|v| v.split('.').nth(1)).and_then(|m| m.parse().ok());
    if minor.is_none_or(|m| m < 95) {
        return Some(format!("{} is `{version}`, need rustc-web ≥ 1.95", rustc.display()));
    }
    if !Path::new("/usr/bin/cargo").exists() {
        return Some("/usr/bin/cargo is missing".into());
    }
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let std_src = sysroot.join("lib/rustlib/src/rust/library/std/Cargo.toml");
    if !std_src.exists() {
        return Some(format!("std sources missing ({})", std_src.display()));
    }
    // exists() follows the link, so a dangling rust-lld → lld-22 link counts as missing.
    if !Path::new("/usr/bin/rust-lld").exists() {
        return Some("/usr/bin/rust-lld does not resolve (lld-22 missing)".into());
    }
    None
}

/// wasm-bindgen-cli pinned to Cargo.lock, installed under target/tools/wasm-bindgen-<v>.
fn wasm_bindgen_cli(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let version = locked_version(root, "wasm-bindgen")?;
    let dir = root.join(format!("target/tools/wasm-bindgen-{version}"));
    let bin = dir.join("bin/wasm-bindgen");
    let runner = dir.join("bin/wasm-bindgen-test-runner");
    let expected = format!("wasm-bindgen {version}");
    let mut how = "found";
    if version_line(&bin, &["--version"]).as_deref() != Some(&expected) || !runner.exists() {
        println!("installing wasm-bindgen-cli {version} into {} (about 4 minutes, once)", dir.display());
        // No --locked: the CLI's own lock file names a crate version this registry lacks.
        run(util::cargo().args(["install", "wasm-bindgen-cli", "--version", &version, "--root"]).arg(&dir))?;
        how = "installed";
    }
    let got = version_line(&bin, &["--version"]).unwrap_or_default();
    if got != expected {
        bail!("{} reports `{got}`, expected `{expected}` (Cargo.lock)", bin.display());
    }
    report("wasm-bindgen", how, &bin, &got);
    Ok((bin, runner))
}

/// A tool that comes from a Debian package; `env` can point somewhere else.
fn debian_tool(name: &str, env: &str, default: &str, package: &str, version_args: &[&str]) -> Result<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    let mut how = "found";
    if version_line(&path, version_args).is_none() {
        if std::env::var_os(env).is_some() {
            bail!("{env}={} does not run", path.display());
        }
        apt_install(&[package])?;
        how = "installed";
    }
    let version = version_line(&path, version_args)
        .with_context(|| format!("{} does not run after installing {package}", path.display()))?;
    report(name, how, &path, &version);
    Ok(path)
}

fn browser() -> Result<(PathBuf, PathBuf)> {
    let chromium = debian_tool("chromium", "CHROMIUM", "/usr/bin/chromium", "chromium", &["--version"])?;
    let chromedriver =
        debian_tool("chromedriver", "CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver", &["--version"])?;
    let major = |p: &Path| {
        version_line(p, &["--version"])
            .and_then(|v| v.split_whitespace().nth(1).and_then(|v| v.split('.').next()).map(str::to_owned))
    };
    let (browser, driver) = (major(&chromium), major(&chromedriver));
    if browser.is_none() || browser != driver {
        bail!(
            "chromium major {browser:?} != chromedriver major {driver:?}; upgrade both: apt-get install chromium chromium-driver"
        );
    }
    Ok((chromium, chromedriver))
}

/// Kamailio with the `http_client` module (which posts calls to the collector) and SIPp.
fn sip_tools() -> Result<(PathBuf, PathBuf)> {
    const PACKAGES: &[&str] = &["kamailio", "kamailio-utils-modules", "sip-tester"];
    let kamailio = PathBuf::from("/usr/sbin/kamailio");
    let sipp = PathBuf::from("/usr/bin/sipp");
    // The module ships in its own package; kamailio alone starts and then fails on
    // `loadmodule "http_client.so"` in the example config.
    let module = Path::new("/usr/lib/x86_64-linux-gnu/kamailio/modules/http_client.so");
    // `sipp -v` exits 99 after printing its version, so sipp is checked by its file.
    let present = || version_line(&kamailio, &["-v"]).is_some() && sipp.exists() && module.exists();
    let mut how = "found";
    if !present() {
        apt_install(PACKAGES)?;
        how = "installed";
    }
    if !present() {
        bail!(
            "kamailio, its http_client module or sipp is still missing after `apt-get install -y {}`",
            PACKAGES.join(" ")
        );
    }
    report("kamailio", how, &kamailio, &version_line(&kamailio, &["-v"]).unwrap_or_default());
    let sipp_version = Command::new(&sipp).arg("-v").stdin(Stdio::null()).output().ok().and_then(|out| {
        String::from_utf8_lossy(&out.stdout).lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
    });
    report("sipp", how, &sipp, &sipp_version.unwrap_or_default());
    Ok((kamailio, sipp))
}

/// Caddy and `systemd-analyze`, which the collector's `deploy` tests run the
/// shipped Caddyfile and systemd units with. Without root those tests skip
/// with a line that says so, rather than stopping the whole run.
fn deploy_tools() -> Result<()> {
    const TOOLS: [(&str, &str, &str); 2] =
        [("caddy", "/usr/bin/caddy", "version"), ("systemd-analyze", "/usr/bin/systemd-analyze", "--version")];
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(_, path, _)| !Path::new(path).exists())
        .map(|(tool, _, _)| if *tool == "caddy" { "caddy" } else { "systemd" })
        .collect();
    let mut how = "found";
    if !missing.is_empty() {
        if !can_apt_install() {
            println!(
                "note: the deploy tests will skip without {}; as root: apt-get install -y {}",
                missing.join(" and "),
                missing.join(" ")
            );
            return Ok(());
        }
        // Peripheral tools: a failed install skips their tests, it does not
        // stop the run.
        if let Err(e) = apt_install(&missing) {
            println!("note: the deploy tests will skip: {e:#}");
            return Ok(());
        }
        how = "installed";
    }
    for (tool, path, flag) in TOOLS {
        let path = Path::new(path);
        if !path.exists() {
            println!(
                "note: the deploy tests will skip: {tool} is still missing after `apt-get install -y {}`",
                missing.join(" ")
            );
            return Ok(());
        }
        report(tool, how, path, &version_line(path, &[flag]).unwrap_or_default());
    }
    Ok(())
}

/// PostgreSQL's server binaries, with which the collector's tests start a
/// private cluster of their own (no system service is used). Without root
/// the PostgreSQL variants of the tests skip with a line that says so.
fn postgres_server() -> Result<()> {
    const PACKAGE: &str = "postgresql-15";
    let initdb = Path::new("/usr/lib/postgresql/15/bin/initdb");
    let mut how = "found";
    if !initdb.exists() {
        if !can_apt_install() {
            println!("note: the PostgreSQL tests will skip without its server; as root: apt-get install -y {PACKAGE}");
            return Ok(());
        }
        // The PostgreSQL variants skip loudly without it; a failed install
        // says so here rather than stopping every other test.
        if let Err(e) = apt_install(&[PACKAGE]) {
            println!("note: the PostgreSQL tests will skip: {e:#}");
            return Ok(());
        }
        how = "installed";
    }
    if !initdb.exists() {
        println!(
            "note: the PostgreSQL tests will skip: {} is still missing after `apt-get install -y {PACKAGE}`",
            initdb.display()
        );
        return Ok(());
    }
    report("postgresql", how, initdb, &version_line(initdb, &["--version"]).unwrap_or_default());
    Ok(())
}

/// Whether `apt_install` can work here: root on a machine with apt-get.
fn can_apt_install() -> bool {
    is_root() && Path::new("/usr/bin/apt-get").exists()
}

/// Installs Debian packages as root; otherwise stops with the command to run.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let command = format!("apt-get install -y {}", packages.join(" "));
    if !is_root() {
        bail!("missing Debian packages; run as root:\n    sudo apt-get update && sudo {command}");
    }
    // Refresh the package lists only if apt does not know a package yet.
    let known = packages.iter().all(|p| {
        Command::new("apt-cache")
            .args(["show", p])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !known {
        run(Command::new("apt-get").arg("update"))?;
    }
    run(Command::new("apt-get").args(["install", "-y"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive"))
        .with_context(|| format!("`{command}` failed (is another apt running? `pgrep -a apt`)"))
}
