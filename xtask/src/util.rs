//! Process helpers shared by the subcommands.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root, fixed at compile time: the xtask is always built from the tree it drives.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ has a parent").to_path_buf()
}

/// The cargo that runs us (rustup's proxy on dev machines), for native builds.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub fn display(cmd: &Command) -> String {
    let envs: Vec<String> =
        cmd.get_envs().filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy()))).collect();
    let mut parts = envs;
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        s.into_owned()
    }
}

/// Runs `cmd` with inherited stdio; a non-zero exit is an error that shows the command.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd.status().with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` and captures its output without judging the exit status.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", display(cmd)))
}

/// First line of `program --version`-like output, or None if it cannot run.
pub fn version_line(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    String::from_utf8_lossy(&text).lines().next().map(|l| l.trim().to_owned())
}

pub fn is_root() -> bool {
    // `id -u` avoids libc/unsafe just to ask for the uid.
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A port nobody listens on right now (the OS picks it; tiny race accepted).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `addr` accepts TCP connections, failing early if `child` exits.
pub fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before listening on {addr}: {status}");
        }
        if start.elapsed() > timeout {
            bail!("{what} did not listen on {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process that is killed when dropped, so an early `?` leaves nothing running.
pub struct Guard {
    pub child: Child,
    name: &'static str,
}

impl Guard {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Result<Self> {
        eprintln!("$ {} &", display(cmd));
        let child = cmd.spawn().with_context(|| format!("cannot start {name}: `{}`", display(cmd)))?;
        Ok(Self { child, name })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Err(e) = self.child.kill() {
                eprintln!("warning: could not stop {}: {e}", self.name);
            }
            let _ = self.child.wait();
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    if n < 1024 { format!("{n} B") } else { format!("{:.1} KiB", n as f64 / 1024.0) }
}
