//! The files in `deploy/`, as shipped: the systemd units pass
//! `systemd-analyze verify` and its offline security review, and their stop
//! timeout outlasts the collector's own; the Caddyfile validates, and Caddy
//! running it in front of two collectors forwards the client's address as
//! the collector reads it and takes an instance out on its readiness before
//! that instance closes its listener, and holds requests while a single
//! collector restarts, so none fails. A test whose tool is missing says so
//! and passes (`apt-get install systemd caddy` provides them).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringsource_collector::config::Config;
use serde_json::Value;

use crate::common::{BROWSER_UA, site_toml, touch, visit_body};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The tool on the PATH, or `None` after saying the test is skipped.
fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        eprintln!("SKIPPED {test}: `{name}` is not installed (Debian: apt-get install {name})");
    }
    found
}

const UNITS: [&str; 3] = ["ringsource.service", "ringsource-backup.service", "ringsource-backup.timer"];

/// The units with the binary's path pointed at this build (verify checks
/// that the commands exist); nothing else is changed.
fn units_here(dir: &Path) -> Vec<PathBuf> {
    UNITS
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(deploy_dir().join("systemd").join(name)).unwrap();
            assert!(text.contains("/usr/local/bin/ringsource") || name.ends_with(".timer"), "{name}");
            let path = dir.join(name);
            std::fs::write(&path, text.replace("/usr/local/bin/ringsource", env!("CARGO_BIN_EXE_ringsource"))).unwrap();
            path
        })
        .collect()
}

#[test]
fn the_systemd_units_verify() {
    let Some(analyze) = tool("systemd-analyze", "the_systemd_units_verify") else { return };
    let dir = tempfile::tempdir().unwrap();
    let units = units_here(dir.path());
    let out = Command::new(&analyze).arg("verify").args(&units).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify only warns (exit 0) about an unknown key or a bad value.
    assert!(out.status.success() && stderr.trim().is_empty(), "{:?}\n{stderr}", out.status);

    // systemd's own exposure score, 0 (locked down) to 10 (none): at most 2.
    let out = Command::new(&analyze)
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&units[0])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// What the units rely on: the stop outlasts the drain and the shutdown
/// timeout, the signal is the one the collector drains on, secrets come
/// from an environment file, and the database lives in the state directory.
#[test]
fn the_service_stops_after_the_collector_has() {
    let unit = std::fs::read_to_string(deploy_dir().join("systemd/ringsource.service")).unwrap();
    let settings: HashMap<&str, &str> = unit.lines().filter_map(|l| l.split_once('=')).collect();
    let config = Config::from_toml_str("", Path::new("defaults.toml"), &HashMap::<String, String>::new()).unwrap();
    let stop_secs: u64 = settings["TimeoutStopSec"].parse().unwrap();
    // The drain, the requests in flight, then the writer's queue (bounded by
    // the shutdown timeout again).
    let collector_secs = config.server.drain_secs + 2 * config.server.shutdown_timeout_secs;
    assert!(stop_secs > collector_secs, "TimeoutStopSec={stop_secs} ≤ {collector_secs}");
    assert_eq!(settings["KillSignal"], "SIGTERM");
    assert_eq!(settings["StateDirectory"], "ringsource");
    assert_eq!(settings["WorkingDirectory"], "/var/lib/ringsource");
    assert!(settings["EnvironmentFile"].starts_with("/etc/ringsource/"));
    assert_eq!(settings["ProtectSystem"], "strict");
    assert_eq!(settings["NoNewPrivileges"], "yes");
}

#[test]
fn the_caddyfile_validates() {
    let Some(caddy) = tool("caddy", "the_caddyfile_validates") else { return };
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(caddy)
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(deploy_dir().join("caddy/Caddyfile"))
        .envs(caddy_env(home.path()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Caddy's data and configuration under `home`, not the machine's.
fn caddy_env(home: &Path) -> [(&'static str, PathBuf); 3] {
    [("HOME", home.to_owned()), ("XDG_DATA_HOME", home.join("data")), ("XDG_CONFIG_HOME", home.join("config"))]
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A process killed when the test ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Collector {
    process: Process,
    addr: SocketAddr,
    log: PathBuf,
}

/// A collector as the Caddyfile's comment says to run it, with its
/// requests logged as JSON lines at debug; a visit bucket of one, and
/// pages of its own origin allowed.
fn collector(dir: &Path, name: &str) -> Collector {
    collector_on(dir, name, "127.0.0.1:0", 3)
}

/// [`collector`] on `listen`, with `drain_secs`; the database and the
/// configuration are `dir/name`'s, so a second start is a restart.
fn collector_on(dir: &Path, name: &str, listen: &str, drain_secs: u64) -> Collector {
    collector_with(
        dir,
        name,
        listen,
        &format!("drain_secs = {drain_secs}\n[server.rate_limit]\nburst = 1\nper_minute = 1"),
        None,
    )
}

/// A collector behind Caddy on `listen`, with `server` in its `[server]`
/// table; on the PostgreSQL database `postgres` if given, else on
/// `dir/name`'s SQLite file.
fn collector_with(dir: &Path, name: &str, listen: &str, server: &str, postgres: Option<&str>) -> Collector {
    let db = dir.join(name).join("ringsource.sqlite");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let server = format!("trust_forwarded_for = true\nforwarded_header = \"x-forwarded-for\"\n{server}");
    let config = db.with_file_name("ringsource.toml");
    let mut text = site_toml(&db, &server, "allow_same_origin = true", "");
    if let Some(url) = postgres {
        text = text.replace(&format!("database = \"{}\"", db.display()), &format!("database = \"{url}\""));
    }
    std::fs::write(&config, text).unwrap();
    let log = db.with_file_name("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringsource"))
        .args(["serve", "--listen", listen, "--config"])
        .arg(&config)
        .env("RINGSOURCE_LOG", "info,ringsource_collector::requests=debug")
        .env("RINGSOURCE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).parse().unwrap();
    Collector { process: Process(child), addr, log }
}

/// The collector's JSON log lines.
fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn at(line: &Value) -> jiff::Timestamp {
    line["timestamp"].as_str().unwrap().parse().unwrap()
}

/// Caddy on the shipped Caddyfile, with this machine's address and
/// `upstreams`, and global options that keep it to the test's folder and
/// ports; returned once it serves readiness. Its base URL is second.
fn caddy(dir: &Path, upstreams: &[SocketAddr]) -> (Process, String) {
    let caddy = tool("caddy", "caddy").expect("checked by the test");
    let shipped = std::fs::read_to_string(deploy_dir().join("caddy/Caddyfile")).unwrap();
    let https = free_port();
    let site = format!("127.0.0.1:{https}");
    assert!(shipped.contains("track.example.com {") && shipped.contains("reverse_proxy 127.0.0.1:8080 {"));
    let upstreams: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
    let caddyfile = format!(
        "{{\n\tadmin off\n\tskip_install_trust\n\thttp_port {}\n\thttps_port {https}\n}}\n{}",
        free_port(),
        shipped
            .replace("track.example.com {", &format!("{site} {{"))
            .replace("reverse_proxy 127.0.0.1:8080 {", &format!("reverse_proxy {} {{", upstreams.join(" ")))
    );
    let config = dir.join("Caddyfile");
    std::fs::write(&config, caddyfile).unwrap();
    let caddy_log = dir.join("caddy.log");
    let process = Process(
        Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .envs(caddy_env(dir))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&caddy_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = client_from(1);
    let base = format!("https://{site}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.get(format!("{base}/v1/ready")).send() {
            Ok(r) if r.status() == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "Caddy did not serve readiness: {other:?}\n{}",
                std::fs::read_to_string(&caddy_log).unwrap()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (process, base)
}

/// A client of Caddy's from `127.0.0.<last>` (the loopback net is all
/// local), which takes the certificate of Caddy's own CA.
fn client_from(last: u8) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(std::net::IpAddr::from([127, 0, 0, last]))
        .user_agent(BROWSER_UA)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn caddy_forwards_the_client_and_drains_an_instance_on_its_readiness() {
    let test = "caddy_forwards_the_client_and_drains_an_instance_on_its_readiness";
    if tool("caddy", test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Two collectors on files of their own: what is tested is the proxy, not
    // shared state (two instances share a database on PostgreSQL only).
    let mut a = collector(dir.path(), "a");
    let b = collector(dir.path(), "b");

    let (_caddy, base) = caddy(dir.path(), &[a.addr, b.addr]);
    let visit = |client: &reqwest::blocking::Client, origin: &str| {
        client
            .post(format!("{base}/v1/sites/shop/visits"))
            .header("content-type", "text/plain")
            .header("origin", origin)
            // Believed by no one: Caddy replaces it, the collector reads the rightmost entry.
            .header("x-forwarded-for", "203.0.113.9")
            .body(visit_body(None, touch("Organic Search", "google", "organic")).to_string())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Each collector allows one visit per client. Five clients, one visit
    // each, all pass only if each collector tells them apart by the
    // address Caddy saw: taken as one client (Caddy's own address, or the
    // forged header), at least three of the five would meet on one
    // collector and two of them be refused.
    let five: Vec<u16> = (2..=6).map(|n| visit(&client_from(n), "https://shop.example")).collect();
    assert_eq!(five, [200; 5]);
    // One client's three visits meet on one collector at least twice.
    let again = client_from(7);
    let three: Vec<u16> = (0..3).map(|_| visit(&again, "https://shop.example")).collect();
    assert!(three.contains(&429) && three.iter().all(|s| [200, 429].contains(s)), "{three:?}");
    // A page served through Caddy is the collector's own origin: it is
    // read from the scheme and host Caddy forwards (without them it would
    // be http://<the collector's address>, and refused with 403).
    assert_eq!(visit(&client_from(8), &base), 200);

    // Requests through Caddy while collector A stops.
    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(&base, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill").args(["-TERM", &a.process.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = a.process.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "collector A did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(exit.success(), "{exit:?}");

    // No request through Caddy failed while A stopped.
    let failed: Vec<_> = answers.iter().filter(|(a, _)| !matches!(a, Ok(200))).collect();
    assert!(answers.len() > 50 && failed.is_empty(), "{} of {} failed: {failed:?}", failed.len(), answers.len());

    // A served requests until Caddy's check (every second) saw its 503,
    // and none from then until its listener closed.
    let lines = log_lines(&a.log);
    let find = |prefix: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
            .map(at)
            .unwrap_or_else(|| panic!("no {prefix:?} line"))
    };
    let (draining, closed) = (find("stopping: readiness"), find("stopping: the listener"));
    let served: Vec<f64> = lines
        .iter()
        .filter(|l| l["route"] == "/v1/sites/{site}/config" && l["status"] == 200)
        .map(|l| (at(l) - draining).as_secs_f64())
        .filter(|after| *after >= 0.0)
        .collect();
    let taken_out = served.iter().copied().fold(0.0, f64::max);
    let window = (closed - draining).as_secs_f64();
    assert!(taken_out < 2.5 && window >= 2.9, "A served config requests {served:?} s into a {window} s drain");
    let b_lines = log_lines(&b.log);
    assert!(b_lines.iter().any(|l| l["route"] == "/v1/sites/{site}/config"), "B served nothing");
    eprintln!(
        "{} requests through Caddy, none failed; A's last request {taken_out:.3} s into its {window:.3} s drain",
        answers.len()
    );
}

/// An answer's status (or the error) and how long it took.
type Answer = (Result<u16, String>, Duration);

/// Load through Caddy's shipped file in two threads until `stop`.
fn load(base: &str, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<Answer>>> {
    (0..2)
        .map(|_| {
            let (client, url, stop) = (client_from(1), format!("{base}/v1/sites/shop/config"), Arc::clone(stop));
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = client.get(&url).send().map(|r| r.status().as_u16()).map_err(|e| e.to_string());
                    answers.push((answer, started.elapsed()));
                    std::thread::sleep(Duration::from_millis(20));
                }
                answers
            })
        })
        .collect()
}

/// One collector behind the shipped Caddyfile, restarted with
/// `drain_secs = 0` (nothing to drain to): Caddy holds the requests that
/// find it down (`lb_try_duration`) until it listens again, so none fails;
/// they wait.
#[test]
fn caddy_holds_requests_while_a_single_collector_restarts() {
    if tool("caddy", "caddy_holds_requests_while_a_single_collector_restarts").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut first = collector_on(dir.path(), "one", &listen, 0);
    let (_caddy, base) = caddy(dir.path(), &[first.addr]);
    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(&base, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let restarting = Instant::now();
    let status = Command::new("kill").args(["-TERM", &first.process.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = first.process.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let _second = collector_on(dir.path(), "one", &listen, 0);
    let restarted = restarting.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let failed: Vec<_> = answers.iter().filter(|(a, _)| !matches!(a, Ok(200))).collect();
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    assert!(answers.len() > 50 && failed.is_empty(), "{} of {} failed: {failed:?}", failed.len(), answers.len());
    eprintln!(
        "{} requests through Caddy, none failed; the collector was down {:.3} s (SIGTERM to listening), \
         the slowest request took {:.3} s",
        answers.len(),
        restarted.as_secs_f64(),
        slowest.as_secs_f64()
    );
}

/// Two collectors on one PostgreSQL database behind the shipped Caddyfile,
/// with visitors' visits going through Caddy; one collector is killed with
/// SIGKILL and started again. Visits that find it dead before Caddy's
/// check takes it out are sent on to the other (`lb_try_duration`); only a
/// visit already sent to it when it died can fail, as Caddy does not send a
/// POST twice. The figure is printed; no number is leased twice.
#[test]
fn caddy_keeps_visits_going_when_one_of_two_postgres_collectors_is_killed() {
    let test = "caddy_keeps_visits_going_when_one_of_two_postgres_collectors_is_killed";
    if tool("caddy", test).is_none() {
        return;
    }
    let Some(url) = crate::common::postgres::database(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = "drain_secs = 1\n[server.rate_limit]\nburst = 100000\nper_minute = 100000\nsession_burst = 100000\n\
                  session_per_minute = 100000";
    let (listen_a, listen_b) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let mut a = collector_with(dir.path(), "a", &listen_a, server, Some(&url));
    let b = collector_with(dir.path(), "b", &listen_b, server, Some(&url));
    let (_caddy, base) = caddy(dir.path(), &[a.addr, b.addr]);

    const THREADS: u8 = 6;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|n| {
            let (client, url, stop) = (client_from(10 + n), format!("{base}/v1/sites/shop/visits"), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("content-type", "text/plain")
                        .header("origin", "https://shop.example")
                        .body(visit_body(None, touch("Paid Search", "google", "cpc")).to_string())
                        .send()
                        .map(|r| r.status().as_u16())
                        .map_err(|e| e.to_string());
                    answers.push((answer, started.elapsed()));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let killed = Instant::now();
    a.process.0.kill().unwrap();
    a.process.0.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _a_again = collector_with(dir.path(), "a", &listen_a, server, Some(&url));
    let down = killed.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Answer> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();

    let failed: Vec<&Answer> = answers.iter().filter(|(a, _)| !matches!(a, Ok(200))).collect();
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    eprintln!(
        "{} visits through Caddy to two collectors on PostgreSQL; one was killed (SIGKILL) and down {:.3} s; \
         visits failed: {} ({:?}); the slowest took {:.3} s",
        answers.len(),
        down.as_secs_f64(),
        failed.len(),
        failed.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
        slowest.as_secs_f64()
    );
    if !failed.is_empty() {
        let log = std::fs::read_to_string(dir.path().join("caddy.log")).unwrap();
        for line in log.lines().filter(|l| l.contains("http.log.error")).take(8) {
            eprintln!("caddy: {line}");
        }
    }
    assert!(answers.len() > 100, "{} visits", answers.len());
    assert!(
        failed.len() <= usize::from(THREADS),
        "only a visit in flight to the killed collector may fail: {failed:?}"
    );
    let open_twice = crate::common::postgres::query(
        &url,
        "SELECT COUNT(*) FROM (SELECT number FROM leases WHERE ended_at_ms IS NULL GROUP BY number HAVING COUNT(*) > 1) d",
    )
    .unwrap();
    assert_eq!(open_twice[0][0].as_deref(), Some("0"), "a number has two open leases");
    let b_lines = log_lines(&b.log);
    assert!(b_lines.iter().any(|l| l["route"] == "/v1/sites/{site}/visits"), "B served no visit");
}
