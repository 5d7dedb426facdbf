//! Health, readiness and the graceful stop of the real `ringsource` binary:
//! on SIGTERM readiness turns 503 for the drain while liveness and the API
//! still answer, then new connections are refused, the requests in flight
//! (a slow upload among them) finish, and the process exits 0 with every
//! visit it acknowledged in the database. A second signal ends it at once.
//! Readiness also fails, and recovers, when the database does not answer:
//! on SQLite while another process holds the write lock, on PostgreSQL
//! while the network to the server passes nothing.
//!
//! Every test runs on both backends (`name::sqlite`, `name::postgres`).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::http::Client;
use crate::common::{BROWSER_UA, Backend, TestDatabase, ringsource_command, site_toml, touch, visit_body};

/// `ringsource serve` with its stderr in a file, killed if the test ends first.
struct Collector {
    child: Child,
    addr: SocketAddr,
    db: TestDatabase,
    log: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The collector on `db` (on PostgreSQL, on the URL `db.pg` names).
fn serve(db: TestDatabase, server_extra: &str) -> Collector {
    // The load comes from one address.
    let server = format!("{server_extra}\n[server.rate_limit]\nburst = 1000000\nper_minute = 1000000");
    let config = db.config_file("ringsource.toml", &site_toml(&db.file, &server, "", ""));
    let log = db.dir.path().join("stderr.log");
    let mut child = ringsource_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RINGSOURCE_LOG", "info")
        .env_remove("RINGSOURCE_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).parse().unwrap();
    Collector { child, addr, db, log }
}

impl Collector {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status, if the process ends within `within`.
    fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// The log once it holds `text` (lines are written out every 100 ms).
    fn log_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(text) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A probe's status and error code (the answers are checked against the
/// document by the client).
fn probe(client: &Client, url: &str) -> Option<(u16, Value)> {
    let resp = client.get(url).send().ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().unwrap_or(Value::Null)))
}

fn visit(client: &Client, base: &str, page: &str) -> Option<(u16, Value)> {
    let mut body = visit_body(None, touch("Organic Search", "google", "organic"));
    body["page"]["url"] = page.into();
    let resp = client
        .post(format!("{base}/v1/sites/shop/visits"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().unwrap_or(Value::Null)))
}

const DRAIN: Duration = Duration::from_secs(2);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
const LOADERS: usize = 8;
const SLOW_PAGE: &str = "https://shop.example/slow-upload";

/// What a probe saw, and when after the signal.
#[derive(Debug, Clone)]
struct Seen {
    after: Duration,
    ready: Option<u16>,
    ready_code: Option<String>,
    ready_message: Option<String>,
    live: Option<u16>,
}

crate::on_both_backends! {
    sigterm_drains_then_finishes_what_is_in_flight_and_exits_0 =>
        sigterm_drains_then_finishes_what_is_in_flight_and_exits_0_on;
    a_second_signal_stops_at_once => a_second_signal_stops_at_once_on;
    a_signal_right_after_the_listening_line_stops_gracefully =>
        a_signal_right_after_the_listening_line_stops_gracefully_on;
    readiness_fails_while_the_database_does_not_answer_and_recovers =>
        readiness_fails_while_the_database_does_not_answer_and_recovers_on;
}

fn sigterm_drains_then_finishes_what_is_in_flight_and_exits_0_on(backend: Backend) {
    let Some(db) = TestDatabase::on(backend, "sigterm_drains_then_finishes_what_is_in_flight_and_exits_0") else {
        return;
    };
    let mut c =
        serve(db, &format!("drain_secs = {}\nshutdown_timeout_secs = {}", DRAIN.as_secs(), SHUTDOWN_TIMEOUT.as_secs()));
    let base = format!("http://{}", c.addr);
    let client = Client::builder().user_agent(BROWSER_UA).timeout(Duration::from_secs(30)).build().unwrap();
    assert_eq!(probe(&client, &c.url("/v1/health")).unwrap().0, 200);
    let (status, ready) = probe(&client, &c.url("/v1/ready")).unwrap();
    assert_eq!((status, &ready["status"]), (200, &Value::from("ready")), "{ready}");

    // A visit whose body is half sent: in flight across the whole stop.
    let mut slow_body = visit_body(None, touch("Organic Search", "google", "organic"));
    slow_body["page"]["url"] = SLOW_PAGE.into();
    let slow_body = slow_body.to_string();
    let mut slow = TcpStream::connect(c.addr).unwrap();
    write!(
        slow,
        "POST /v1/sites/shop/visits HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nUser-Agent: {BROWSER_UA}\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        c.addr,
        slow_body.len()
    )
    .unwrap();
    let (first_half, second_half) = slow_body.split_at(slow_body.len() / 2);
    slow.write_all(first_half.as_bytes()).unwrap();

    // Visitors, each on its keep-alive connection, until the server is gone.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(Mutex::new(0usize));
    let loaders: Vec<_> = (0..LOADERS)
        .map(|n| {
            let (base, stop, acknowledged, failed) =
                (base.clone(), Arc::clone(&stop), Arc::clone(&acknowledged), Arc::clone(&failed));
            std::thread::spawn(move || {
                let client = Client::builder().user_agent(BROWSER_UA).timeout(Duration::from_secs(30)).build().unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    match visit(&client, &base, &format!("https://shop.example/load/{n}/{i}")) {
                        Some((200, body)) => {
                            acknowledged.lock().unwrap().push(body["session_id"].as_str().unwrap().to_owned());
                        }
                        Some((status, body)) => panic!("a visit got {status}: {body}"),
                        // The listener is closed and this connection too.
                        None => {
                            *failed.lock().unwrap() += 1;
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    // The signal comes once visits are being answered: half a second, or
    // longer on a machine too loaded to answer one by then.
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    while acknowledged.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before_signal = acknowledged.lock().unwrap().len();
    assert!(before_signal > 0, "no visit was answered before the signal");
    // A fresh connection for each probe, as a balancer's: a keep-alive one
    // would outlive the listener. Made before the signal, so that the drain
    // is spent probing.
    let probe_client = Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(5)).build().unwrap();

    // Probes of readiness and liveness every 50 ms from the signal on.
    c.signal("TERM");
    let signalled = Instant::now();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let prober = {
        let (ready_url, live_url, stop, seen) =
            (c.url("/v1/ready"), c.url("/v1/health"), Arc::clone(&stop), Arc::clone(&seen));
        let client = probe_client;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ready = probe(&client, &ready_url);
                let live = probe(&client, &live_url);
                seen.lock().unwrap().push(Seen {
                    after: signalled.elapsed(),
                    ready: ready.as_ref().map(|r| r.0),
                    ready_code: ready.as_ref().and_then(|r| r.1["error"]["code"].as_str().map(str::to_owned)),
                    ready_message: ready.as_ref().and_then(|r| r.1["error"]["message"].as_str().map(str::to_owned)),
                    live: live.map(|l| l.0),
                });
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // After the drain: the listener is closed while the slow visit is
    // still in flight, so the server is still running.
    std::thread::sleep(DRAIN + Duration::from_millis(500));
    let refused = TcpStream::connect_timeout(&c.addr, Duration::from_secs(1));
    assert!(
        matches!(&refused, Err(e) if e.kind() == ErrorKind::ConnectionRefused),
        "a new connection {:.1} s after SIGTERM: {refused:?}",
        signalled.elapsed().as_secs_f64()
    );
    assert!(c.child.try_wait().unwrap().is_none(), "exited before the slow visit was answered");

    // The slow visit finishes its body and is answered.
    slow.write_all(second_half.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the slow visit: {answer}");
    let slow_session: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let slow_session = slow_session["session_id"].as_str().unwrap().to_owned();

    let status = c.exit_within(SHUTDOWN_TIMEOUT).expect("still running after the shutdown timeout");
    let exited = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().unwrap();
    }
    prober.join().unwrap();
    let log = c.log();
    assert!(status.success(), "{status:?}\n{log}");

    // Readiness was 503 (shutting down) during the drain while liveness
    // answered 200, and the API served the visitors meanwhile.
    let seen = seen.lock().unwrap().clone();
    let during_drain: Vec<&Seen> = seen.iter().filter(|s| s.after < DRAIN - Duration::from_millis(200)).collect();
    assert!(during_drain.len() >= 5, "too few probes during the drain: {seen:?}");
    for s in &during_drain {
        assert_eq!((s.ready, s.ready_code.as_deref(), s.live), (Some(503), Some("not_ready"), Some(200)), "{s:?}");
        assert_eq!(s.ready_message.as_deref(), Some("the collector is shutting down"));
    }
    let first_refused = seen.iter().find(|s| s.ready.is_none()).map(|s| s.after);
    let acknowledged = acknowledged.lock().unwrap().clone();
    let after_signal = acknowledged.len() - before_signal;
    assert!(after_signal > 0, "no visit was answered during the drain");

    // Every visit answered 200, the slow one too, is in the database (the
    // id is the sessions' primary key: one row each).
    let stored: std::collections::HashSet<String> =
        c.db.rows("SELECT id FROM sessions").into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
    let missing: Vec<&String> = acknowledged.iter().chain([&slow_session]).filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "{} acknowledged visits are not in the database: {missing:?}", missing.len());
    let slow_views = c.db.scalar(&format!("SELECT COUNT(*) FROM page_views WHERE url = '{SLOW_PAGE}'"));
    assert_eq!(slow_views, 1);
    assert!(c.db.orphans().is_empty());
    assert!(log.contains("stopped"), "{log}");
    eprintln!(
        "visits acknowledged: {} ({before_signal} before SIGTERM, {after_signal} after); visitors whose connection closed: {}; \
         probes refused from {:?}; exited {:.3} s after SIGTERM (drain {} s)\n{}",
        acknowledged.len(),
        failed.lock().unwrap(),
        first_refused,
        exited.as_secs_f64(),
        DRAIN.as_secs(),
        log.lines().filter(|l| l.contains("stopp")).collect::<Vec<_>>().join("\n")
    );
}

fn a_second_signal_stops_at_once_on(backend: Backend) {
    let Some(db) = TestDatabase::on(backend, "a_second_signal_stops_at_once") else { return };
    let mut c = serve(db, "drain_secs = 60");
    let client = Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert_eq!(probe(&client, &c.url("/v1/ready")).unwrap().0, 200);
    c.signal("TERM");
    // Readiness turns while the drain has long to go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while probe(&client, &c.url("/v1/ready")).unwrap().0 != 503 {
        assert!(Instant::now() < deadline, "readiness did not turn 503");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = Instant::now();
    c.signal("INT");
    let status = c.exit_within(Duration::from_secs(5)).expect("still running 5 s after a second signal");
    let took = second.elapsed();
    assert!(!status.success(), "{status:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let log = c.log_with("a second SIGINT");
    assert!(log.contains("a second SIGINT: stopped at once"), "{log}");
    eprintln!("exited {} ms after the second signal", took.as_millis());
}

/// The signals are listened for before the server says where it listens: a
/// supervisor that stops it the moment it has started gets the graceful
/// stop (exit 0), not the default action of SIGTERM.
fn a_signal_right_after_the_listening_line_stops_gracefully_on(backend: Backend) {
    for _ in 0..3 {
        let Some(db) = TestDatabase::on(backend, "a_signal_right_after_the_listening_line_stops_gracefully") else {
            return;
        };
        let mut c = serve(db, "drain_secs = 0");
        c.signal("TERM");
        let status = c.exit_within(Duration::from_secs(10)).expect("still running 10 s after SIGTERM");
        assert!(status.success(), "{status:?}\n{}", c.log());
    }
}

/// Readiness asks the database (on SQLite through the writer): while it
/// does not answer, it is 503 with the reason; liveness answers regardless;
/// once the database answers again, readiness is 200 again. SQLite does not
/// answer while another process holds the write lock; PostgreSQL while the
/// network between it and the collector passes nothing (a [`Relay`]).
fn readiness_fails_while_the_database_does_not_answer_and_recovers_on(backend: Backend) {
    let Some(mut db) = TestDatabase::on(backend, "readiness_fails_while_the_database_does_not_answer_and_recovers")
    else {
        return;
    };
    let relay = db.pg.as_mut().map(|url| {
        let mut parsed = url::Url::parse(url).unwrap();
        let relay = Relay::to(&format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap()));
        parsed.set_port(Some(relay.port)).unwrap();
        *url = parsed.to_string();
        relay
    });
    let c = serve(db, "");
    let client = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    assert_eq!(probe(&client, &c.url("/v1/ready")).unwrap().0, 200);
    let hold = match &relay {
        None => Unanswering::Locked(lock_for_writes(&c.db.file)),
        Some(relay) => relay.hold(),
    };
    let started = Instant::now();
    let (status, body) = probe(&client, &c.url("/v1/ready")).unwrap();
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["message"], "the database did not answer within 1000 ms");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let started = Instant::now();
    assert_eq!(probe(&client, &c.url("/v1/health")).unwrap().0, 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    drop(hold);
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe(&client, &c.url("/v1/ready")).unwrap().0 != 200 {
        assert!(Instant::now() < deadline, "readiness did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = c.log_with("ready again");
    assert_eq!(log.matches("not ready").count(), 1, "the change is logged once:\n{log}");
    assert!(log.contains("ready again"), "{log}");
}

/// A write transaction on the collector's file, held until dropped.
fn lock_for_writes(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

/// Keeps the database from answering the collector until dropped.
enum Unanswering {
    /// SQLite's write lock, held by another connection.
    Locked(#[allow(dead_code, reason = "held for its lock, never read")] rusqlite::Connection),
    /// A [`Relay`]'s flag: set, nothing passes.
    Held(Arc<AtomicBool>),
}

impl Drop for Unanswering {
    fn drop(&mut self) {
        if let Unanswering::Held(held) = self {
            held.store(false, Ordering::SeqCst);
        }
    }
}

/// A TCP relay on 127.0.0.1 to PostgreSQL, standing in for the network
/// between it and the collector: while held it passes no byte either way
/// (what it has read waits, the rest stays in the sockets), as a network
/// that stops answering without closing anything.
struct Relay {
    port: u16,
    held: Arc<AtomicBool>,
}

impl Relay {
    fn to(server: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(AtomicBool::new(false));
        let (server, flag) = (server.to_owned(), Arc::clone(&held));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(&server) else { continue };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (f1, f2) = (Arc::clone(&flag), Arc::clone(&flag));
                std::thread::spawn(move || pump(client, upstream, f1));
                std::thread::spawn(move || pump(u2, c2, f2));
            }
        });
        Relay { port, held }
    }

    fn hold(&self) -> Unanswering {
        self.held.store(true, Ordering::SeqCst);
        Unanswering::Held(Arc::clone(&self.held))
    }
}

/// Copies `from` to `to` until either closes, waiting while `held`.
fn pump(mut from: TcpStream, mut to: TcpStream, held: Arc<AtomicBool>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
