//! The npm package as a front-end developer uses it: packed with `npm pack`,
//! installed from that tarball into `examples/vite-app` (Vite + TypeScript,
//! pinned by its own lock file), type-checked with `tsc --noEmit` and built
//! with `vite build`. The end-to-end test `tests/tests/e2e/vite_app.rs`
//! serves the build from another origin than the collector and runs it in
//! Chromium.
//!
//! A tarball, not the folder: `npm i <folder>` links the folder, which hides
//! what `files` and `exports` in package.json leave out, and which `vite dev`
//! refuses to serve.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::npm::npm;
use crate::util::{capture, run};

/// The example app's folder, relative to the workspace root.
pub const DIR: &str = "examples/vite-app";

/// Packs `pkg`, installs it into the example app, type-checks and builds the
/// app; returns the built app's folder.
pub fn build(root: &Path, pkg: &Path) -> Result<PathBuf> {
    let dts = pkg.join("ringsource.d.ts");
    no_any(&fs::read_to_string(&dts).with_context(|| format!("reading {}", dts.display()))?)
        .with_context(|| format!("{} must type every export", dts.display()))?;
    let tarball = pack(root, pkg)?;
    let app = root.join(DIR);
    crate::npm::ci(&app, &["vite/package.json", "typescript/package.json"], "the example app's Vite and TypeScript")?;
    // --no-save: the app's package.json and lock file pin Vite and TypeScript;
    // the package under test is whatever this build packed.
    run(Command::new(npm()).current_dir(&app).args(["install", "--no-save", "--no-audit", "--no-fund"]).arg(&tarball))
        .context("installing the packed npm package into the example app")?;
    let bin = app.join("node_modules/.bin");
    run(Command::new(bin.join("tsc")).current_dir(&app).arg("--noEmit"))
        .context("the example app does not type-check against the package's .d.ts")?;
    let dist = app.join("dist");
    run(Command::new(bin.join("vite")).current_dir(&app).args(["build", "--emptyOutDir", "--outDir"]).arg(&dist))
        .context("vite build of the example app")?;
    Ok(dist)
}

/// Fails on an `any` in the declarations: `tsc` accepts one silently, and it
/// turns off checking in every app that calls the package.
fn no_any(dts: &str) -> Result<()> {
    for (n, line) in dts.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let trimmed = code.trim_start();
        if trimmed.starts_with('*') || trimmed.starts_with("/*") {
            continue;
        }
        let words = code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'));
        if words.into_iter().any(|w| w == "any") {
            bail!("line {}: `{}` uses `any`", n + 1, line.trim());
        }
    }
    Ok(())
}

/// `npm pack` of the package folder into `target/npm/`; returns the tarball.
fn pack(root: &Path, pkg: &Path) -> Result<PathBuf> {
    let out = root.join("target/npm");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut cmd = Command::new(npm());
    cmd.arg("pack").arg(pkg).arg("--pack-destination").arg(&out);
    let output = capture(&mut cmd)?;
    if !output.status.success() {
        bail!("npm pack {} failed: {}", pkg.display(), String::from_utf8_lossy(&output.stderr));
    }
    // npm prints the tarball's file name as the last line of its output.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = stdout.lines().rev().find(|l| l.ends_with(".tgz")).context("npm pack printed no .tgz name")?;
    let tarball = out.join(name.trim());
    println!("npm package: {}", tarball.display());
    Ok(tarball)
}

#[cfg(test)]
mod tests {
    use super::no_any;

    #[test]
    fn an_any_in_a_declaration_is_refused_and_one_in_a_comment_is_not() {
        assert!(no_any("export function start(options?: StartOptions): Promise<Outcome>;").is_ok());
        assert!(no_any("/**\n * Works with any page.\n */\nexport function stop(): void; // any time").is_ok());
        let err = no_any("export function classify(url: string): Touch;\nexport function pageView(x: any): void;")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(no_any("export function f(): Array<any>;").is_err());
    }
}
