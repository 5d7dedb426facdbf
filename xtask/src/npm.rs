//! `npm ci` for the folders whose JS tools or libraries come from the npm
//! registry, each pinned by its own committed `package-lock.json`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::run;

/// Runs `npm ci` in `dir` when its `node_modules` is missing, older than the
/// lock file, or lacks one of `needed` (paths inside `node_modules`).
/// `what` says in an error what the packages are for.
pub fn ci(dir: &Path, needed: &[&str], what: &str) -> Result<PathBuf> {
    let lock = dir.join("package-lock.json");
    if !lock.exists() {
        bail!("{} is missing; it pins {what}", lock.display());
    }
    let modules = dir.join("node_modules");
    // npm writes node_modules/.package-lock.json on every install: older than
    // the lock file means someone changed the pins since.
    let stale = match (mtime(&modules.join(".package-lock.json")), mtime(&lock)) {
        (Some(installed), Some(pinned)) => installed < pinned,
        _ => true,
    };
    if stale || needed.iter().any(|file| !modules.join(file).exists()) {
        let npm = npm();
        match Command::new(&npm).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => bail!(
                "npm is not installed ({what} comes from the npm registry). Install Node.js and npm \
                 (Debian: `apt-get install nodejs npm`), then run: cd {} && npm ci --no-audit --no-fund",
                dir.display()
            ),
        }
        run(Command::new(&npm).current_dir(dir).args(["ci", "--no-audit", "--no-fund"]))
            .with_context(|| format!("installing {what} with npm in {}", dir.display()))?;
    }
    Ok(modules)
}

/// The npm to run: `$NPM`, or the one on the PATH.
pub fn npm() -> PathBuf {
    std::env::var_os("NPM").map(PathBuf::from).unwrap_or_else(|| "npm".into())
}

fn mtime(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}
