//! A throwaway PostgreSQL cluster for the tests that run on both backends:
//! started once per test binary from Debian's server binaries, in a temp
//! dir, on a free loopback port, as an unprivileged user (the server refuses
//! root), with fsync off; each test gets a database of its own.
//!
//! `RINGSOURCE_TEST_POSTGRES_URL` (a `postgres://` URL whose user may create
//! databases) uses that server instead. Without either, the PostgreSQL
//! variants of the tests print a loud SKIPPED line and pass; the binaries
//! come with `apt-get install postgresql-15` (or `postgresql`).
//!
//! The postmaster runs under a shell that holds a pipe from this process:
//! when the test binary exits, however it exits, the pipe closes and the
//! shell stops the server (fast shutdown) and deletes its directory.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const URL_VAR: &str = "RINGSOURCE_TEST_POSTGRES_URL";
const BIN_VAR: &str = "RINGSOURCE_POSTGRES_BIN";

/// The server the tests use: its base URL (no database) and the child that
/// keeps it alive.
struct Server {
    /// `postgres://user@127.0.0.1:port` (or the variable's URL)
    base: String,
    /// The CA of the server's certificate, on the cluster started here,
    /// which also accepts TLS (tests ask for it with `sslmode=require`).
    ca: Option<PathBuf>,
    /// The shell that owns the postmaster; its stdin is the lifeline.
    _keeper: Option<Mutex<Child>>,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// Where Debian's newest server binaries are, if installed.
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_VAR) {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The account the server runs as when we are root: Debian's `postgres`
/// user, else `nobody`.
fn server_account() -> &'static str {
    if Command::new("id").arg("postgres").output().is_ok_and(|o| o.status.success()) { "postgres" } else { "nobody" }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_cluster(bin: &Path) -> Server {
    let dir = tempfile::Builder::new().prefix("ringsource-pg-").tempdir().unwrap().keep();
    let data = dir.join("data");
    let root = is_root();
    let account = server_account();
    // Runs a server program as the unprivileged account (or as ourselves).
    let as_account = |program: &str| -> Vec<String> {
        let program = bin.join(program).display().to_string();
        if root {
            vec![
                "setpriv".into(),
                format!("--reuid={account}"),
                format!("--regid={account}"),
                "--init-groups".into(),
                program,
            ]
        } else {
            vec![program]
        }
    };
    let ca = make_certificates(&dir);
    if root {
        let status = Command::new("chown").args(["-R", &format!("{account}:"), &dir.display().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "cannot give {} to {account}", dir.display());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let mut initdb = as_account("initdb");
    initdb.extend(
        [
            "-D",
            &data.display().to_string(),
            "-U",
            "ringsource",
            "--auth=trust",
            "--locale=C",
            "-E",
            "UTF8",
            "--no-sync",
        ]
        .map(str::to_owned),
    );
    let out = Command::new(&initdb[0]).args(&initdb[1..]).output().expect("running initdb");
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    let mut postgres = as_account("postgres");
    postgres.extend(
        [
            "-D",
            &data.display().to_string(),
            "-p",
            &port.to_string(),
            "-k",
            &dir.display().to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=400",
            "-c",
            "shared_buffers=64MB",
            "-c",
            "ssl=on",
            "-c",
            &format!("ssl_cert_file={}", dir.join("server.pem").display()),
            "-c",
            &format!("ssl_key_file={}", dir.join("server.key").display()),
        ]
        .map(str::to_owned),
    );
    let quoted: Vec<String> = postgres.iter().map(|a| format!("'{a}'")).collect();
    // The keeper: starts the server, waits for its stdin to close (this
    // process ended), then stops the server and removes its files.
    let script = format!(
        "{} >'{dir}/log' 2>&1 & pid=$!; echo started; cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        quoted.join(" "),
        dir = dir.display()
    );
    let mut keeper = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the PostgreSQL keeper");
    let mut line = String::new();
    BufReader::new(keeper.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = format!("postgres://ringsource@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while query(&format!("{base}/postgres"), "SELECT 1").is_err() {
        assert!(
            Instant::now() < deadline,
            "the private PostgreSQL did not come up: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { base, ca: Some(ca), _keeper: Some(Mutex::new(keeper)) }
}

/// A CA and a server certificate it signed for 127.0.0.1 and localhost, in
/// `dir` (the server's key readable by its owner only, as PostgreSQL
/// demands); the CA's file.
fn make_certificates(dir: &Path) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("running openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ringsource test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    dir.join("ca.pem")
}

fn server() -> Option<&'static Server> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var(URL_VAR) {
                return Some(Server { base: url, ca: None, _keeper: None });
            }
            binaries().map(|bin| start_cluster(&bin))
        })
        .as_ref()
}

/// A fresh database on the tests' server, as a `postgres://` URL; `None`
/// (after a loud line on stderr) when there is no PostgreSQL to run on.
pub fn database(test: &str) -> Option<String> {
    let Some(server) = server() else {
        eprintln!(
            "SKIPPED {test} on PostgreSQL: no server binaries under /usr/lib/postgresql and no {URL_VAR} \
             (apt-get install postgresql-15)"
        );
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("t_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    // The server's URL names a database to connect to while making others.
    let mut url = url::Url::parse(&server.base).expect("a postgres:// URL");
    if url.path().len() <= 1 {
        url.set_path("/postgres");
    }
    query(url.as_str(), &format!("CREATE DATABASE {name}")).unwrap();
    url.set_path(&format!("/{name}"));
    // Plain connections, as to a server without TLS (see [`tls_database`]).
    if url.query().is_none() {
        url.set_query(Some("sslmode=disable"));
    }
    Some(url.to_string())
}

/// A fresh database that the cluster started here serves over TLS, as a URL
/// that requires it, and the CA file to verify the server with; `None` on a
/// server from [`URL_VAR`], whose certificates these tests do not know.
pub fn tls_database(test: &str) -> Option<(String, PathBuf)> {
    let url = database(test)?;
    let Some(ca) = server()?.ca.clone() else {
        eprintln!("SKIPPED {test}: TLS is tested on the cluster the tests start, not on {URL_VAR}");
        return None;
    };
    Some((url.replace("sslmode=disable", "sslmode=require"), ca))
}

/// Runs `sql` on `url` and gives every row as text (NULL as `None`).
pub fn query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        let messages = client.simple_query(sql).await;
        drop(client);
        let _ = driver.await;
        Ok(messages?
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect())
    })
}
