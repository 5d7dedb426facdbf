//! The dashboard's third-party browser code: uPlot from the npm registry,
//! pinned by `www/dashboard/package-lock.json`.
//!
//! `npm ci` runs in `www/dashboard` when `node_modules` is missing (or older
//! than the lock file); the files the pages load are then copied into
//! `www/dashboard/vendor/`, which the collector serves at `/dashboard/vendor/`.
//! Both folders are git-ignored: the lock file is the source of truth.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{human_bytes, run};

/// The dashboard's folder, relative to the workspace root.
pub const DIR: &str = "www/dashboard";

/// `(file inside node_modules, name in vendor/)`.
const VENDOR_FILES: &[(&str, &str)] = &[
    ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ("uplot/LICENSE", "uPlot.LICENSE"),
];

/// Installs the dashboard's npm dependencies if needed and copies their
/// browser files into `www/dashboard/vendor/`. Returns that folder.
pub fn vendor(root: &Path) -> Result<PathBuf> {
    let dir = root.join(DIR);
    let lock = dir.join("package-lock.json");
    if !lock.exists() {
        bail!("{} is missing; it pins the dashboard's chart library", lock.display());
    }
    let modules = dir.join("node_modules");
    // npm writes node_modules/.package-lock.json on every install: older than
    // the lock file means someone changed the pins since.
    let stale = match (mtime(&modules.join(".package-lock.json")), mtime(&lock)) {
        (Some(installed), Some(pinned)) => installed < pinned,
        _ => true,
    };
    if stale || VENDOR_FILES.iter().any(|(from, _)| !modules.join(from).exists()) {
        let npm = std::env::var_os("NPM").map(PathBuf::from).unwrap_or_else(|| "npm".into());
        let mut cmd = Command::new(&npm);
        cmd.current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]);
        match Command::new(&npm).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => bail!(
                "npm is not installed (the dashboard's chart library comes from the npm registry). Install Node.js \
                 and npm (Debian: `apt-get install nodejs npm`), then run: cd {} && npm ci --no-audit --no-fund",
                dir.display()
            ),
        }
        run(&mut cmd).with_context(|| format!("installing the dashboard's npm packages in {}", dir.display()))?;
    }
    let out = dir.join("vendor");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut total = 0;
    for (from, to) in VENDOR_FILES {
        let src = modules.join(from);
        let len = fs::copy(&src, out.join(to))
            .with_context(|| format!("copying {} to {}", src.display(), out.display()))?;
        total += len;
    }
    println!("dashboard vendor files: {} ({})", out.display(), human_bytes(total));
    Ok(out)
}

fn mtime(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}
