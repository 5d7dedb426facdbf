//! A private PostgreSQL cluster for the collector's benchmarks: Debian's server
//! binaries, a fresh data directory in a temp dir, a free loopback port, and no
//! system service. Dropping the [`Cluster`] stops the server and deletes its files.
//!
//! The server refuses to run as root, so as root the cluster belongs to the
//! unprivileged `postgres` user that Debian's package creates.

use std::fs;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{capture, display, free_port, is_root};

/// Overrides where the server binaries are, for a build that is not Debian's.
const BIN_VAR: &str = "RINGSOURCE_POSTGRES_BIN";

/// The oldest major version the collector's schema is written for.
const MIN_MAJOR: u32 = 15;

/// Debian's newest `/usr/lib/postgresql/<major>/bin`, or [`BIN_VAR`]'s.
fn binaries() -> Result<(PathBuf, u32)> {
    if let Some(dir) = std::env::var_os(BIN_VAR) {
        let dir = PathBuf::from(dir);
        let major = major_of(&dir).with_context(|| format!("{BIN_VAR}={} has no runnable postgres", dir.display()))?;
        return Ok((dir, major));
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let dir = e.path().join("bin");
            let major = major_of(&dir)?;
            Some((dir, major))
        })
        .filter(|(_, major)| *major >= MIN_MAJOR)
        .max_by_key(|(_, major)| *major);
    newest.with_context(|| {
        format!(
            "PostgreSQL ≥ {MIN_MAJOR} not found under /usr/lib/postgresql; \
             run as root: apt-get install -y postgresql (or set {BIN_VAR})"
        )
    })
}

/// The major version `postgres --version` reports (`postgres (PostgreSQL) 15.14 (Debian …)`).
fn major_of(bin: &Path) -> Option<u32> {
    let line = crate::util::version_line(&bin.join("postgres"), &["--version"])?;
    line.split_whitespace().nth(2)?.split('.').next()?.parse().ok()
}

/// The uid and gid the server runs as: Debian's `postgres` when we are root.
fn server_account() -> Result<Option<(u32, u32)>> {
    if !is_root() {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32> {
        let out = capture(Command::new("id").args([flag, "postgres"]))?;
        if !out.status.success() {
            bail!(
                "PostgreSQL refuses to run as root and there is no `postgres` user to run it as \
                 (Debian's postgresql package creates one; or run the xtask as an ordinary user)"
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().context("reading `id` output")
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// Whether this machine has PostgreSQL server binaries the clusters can use
/// (a test that needs them skips without).
#[cfg(test)]
pub(crate) fn server_binaries_found() -> Result<(), String> {
    binaries().map(drop).map_err(|e| format!("{e:#}"))
}

/// A running cluster with durable commits (`fsync = on`, the server's defaults),
/// as a production server keeps them.
pub(crate) struct Cluster {
    postmaster: Child,
    top: PathBuf,
    port: u16,
    bin: PathBuf,
    pub(crate) major: u32,
    account: Option<(u32, u32)>,
    /// Kept on disk after the server stops (the large site's cluster, which
    /// takes minutes to fill); else deleted.
    keep: bool,
}

impl Cluster {
    /// A new cluster in a temp dir, deleted when dropped.
    pub(crate) fn start() -> Result<Self> {
        let top = std::env::temp_dir().join(format!("ringsource-bench-pg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        Self::start_in(top, false, &[])
    }

    /// The cluster kept in `top`: started on its data if `top` holds one
    /// (`top/data`), else made there first. It stays on disk after the drop.
    /// `settings` are extra `-c` server settings for this start.
    pub(crate) fn start_kept(top: &Path, settings: &[&str]) -> Result<Self> {
        Self::start_in(top.to_path_buf(), true, settings)
    }

    /// Where the cluster keeps its files.
    pub(crate) fn dir(&self) -> &Path {
        &self.top
    }

    fn start_in(top: PathBuf, keep: bool, settings: &[&str]) -> Result<Self> {
        let (bin, major) = binaries()?;
        let account = server_account()?;
        fs::create_dir_all(&top).with_context(|| format!("creating {}", top.display()))?;
        if let Some((uid, gid)) = account {
            chown(&top, Some(uid), Some(gid)).with_context(|| format!("giving {} to postgres", top.display()))?;
        }
        let started = Instant::now();
        if !top.join("data/PG_VERSION").exists() {
            initdb(&bin, account, &top)?;
        }
        let port = free_port()?;
        let log = fs::File::create(top.join("server.log")).context("creating the server log")?;
        if let Some((uid, gid)) = account {
            chown(top.join("server.log"), Some(uid), Some(gid))?;
        }
        let mut cmd = as_account(bin.join("postgres"), account);
        cmd.arg("-D").arg(top.join("data")).arg("-p").arg(port.to_string()).arg("-k").arg(&top);
        // Two collectors open up to 16 connections each; fsync stays on.
        for setting in ["listen_addresses=127.0.0.1", "max_connections=100", "fsync=on"].iter().chain(settings) {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        eprintln!("$ {} &", display(&cmd));
        let postmaster = cmd.spawn().with_context(|| format!("cannot start `{}`", display(&cmd)))?;
        let mut cluster = Cluster { postmaster, top, port, bin, major, account, keep };
        cluster.wait_ready(Duration::from_secs(300))?;
        eprintln!("PostgreSQL {major} up in {:.1} s on port {port}", started.elapsed().as_secs_f64());
        Ok(cluster)
    }
}

fn initdb(bin: &Path, account: Option<(u32, u32)>, top: &Path) -> Result<()> {
    let mut initdb = as_account(bin.join("initdb"), account);
    // C collation: SQLite's byte order, and no locale the machine may lack.
    initdb
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-instructions", "-D"])
        .arg(top.join("data"));
    let out = capture(&mut initdb)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            display(&initdb),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Cluster {
    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let status = Command::new(self.bin.join("pg_isready"))
                .args(["--quiet", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-d", "postgres", "-U", "postgres"])
                .stdin(Stdio::null())
                .status()
                .context("running pg_isready")?;
            if status.success() {
                return Ok(());
            }
            if let Some(status) = self.postmaster.try_wait()? {
                bail!("postgres exited before accepting connections ({status}):\n{}", self.log_tail());
            }
            if start.elapsed() > timeout {
                bail!("postgres did not accept connections within {timeout:?}:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.top.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The superuser's URL for `database`, over TCP on loopback.
    pub(crate) fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` on `database` with psql and returns its unaligned output.
    pub(crate) fn query(&self, database: &str, sql: &str) -> Result<String> {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["--no-psqlrc", "--quiet", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_for(database))
            .args(["-c", sql]);
        let out = capture(&mut cmd)?;
        if !out.status.success() {
            bail!("psql on {database}: {sql}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// An empty database of that name (an older one of the name is dropped first).
    pub(crate) fn fresh_database(&self, name: &str) -> Result<String> {
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            bail!("database name {name:?}: use lowercase letters, digits and _");
        }
        // FORCE: a killed collector's backends may still be on their way out.
        self.query("postgres", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        self.query("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url_for(name))
    }
}

fn as_account(program: PathBuf, account: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = account {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(None) = self.postmaster.try_wait() {
            let stopped = as_account(self.bin.join("pg_ctl"), self.account)
                .args(["stop", "--mode=fast", "--wait", "--timeout=30", "--silent", "-D"])
                .arg(self.top.join("data"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !stopped {
                eprintln!("warning: pg_ctl stop failed; killing postgres");
                let _ = self.postmaster.kill();
            }
            let _ = self.postmaster.wait();
        }
        if self.keep {
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.top) {
            eprintln!("warning: deleting {}: {e}", self.top.display());
        }
    }
}
