//! The dashboard's third-party browser code: uPlot from the npm registry,
//! pinned by `www/dashboard/package-lock.json`, and axe-core (a dev
//! dependency in the same lock) for the end-to-end accessibility scan.
//!
//! `npm ci` runs in `www/dashboard` when `node_modules` is missing (or older
//! than the lock file); the files the pages load are then copied into
//! `www/dashboard/vendor/`, which the collector serves at `/dashboard/vendor/`.
//! axe-core stays in `node_modules`: the pages never load it, the end-to-end
//! test injects it (`tests/tests/e2e/dashboard.rs`).
//! Both folders are git-ignored: the lock file is the source of truth.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::util::human_bytes;

/// The dashboard's folder, relative to the workspace root.
pub const DIR: &str = "www/dashboard";

/// `(file inside node_modules, name in vendor/)`.
const VENDOR_FILES: &[(&str, &str)] = &[
    ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ("uplot/LICENSE", "uPlot.LICENSE"),
];

/// What the end-to-end test reads from `node_modules` (not served to users).
pub const AXE: &str = "axe-core/axe.min.js";

/// Installs the dashboard's npm dependencies if needed and copies their
/// browser files into `www/dashboard/vendor/`. Returns that folder.
pub fn vendor(root: &Path) -> Result<PathBuf> {
    let dir = root.join(DIR);
    let mut needed: Vec<&str> = VENDOR_FILES.iter().map(|(from, _)| *from).collect();
    needed.push(AXE);
    let modules = crate::npm::ci(&dir, &needed, "the dashboard's chart library and accessibility checker")?;
    let out = dir.join("vendor");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut total = 0;
    for (from, to) in VENDOR_FILES {
        let src = modules.join(from);
        let len =
            fs::copy(&src, out.join(to)).with_context(|| format!("copying {} to {}", src.display(), out.display()))?;
        total += len;
    }
    println!("dashboard vendor files: {} ({})", out.display(), human_bytes(total));
    Ok(out)
}
