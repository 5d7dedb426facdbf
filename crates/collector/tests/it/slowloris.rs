//! A slowloris against the `ringsource` binary with 256 file descriptors:
//! 300 connections that each send a partial request head (or a whole head
//! and then its body) a byte a second, reconnecting as soon as the server
//! drops one. The server cuts them, never runs out of descriptors, and
//! answers a visitor's requests throughout.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::site_toml;
use ringsource_collector::http::edge::{BODY_TIMEOUT, HEAD_TIMEOUT};

const FD_LIMIT: u32 = 256;
const ATTACKERS: usize = 300;
const ATTACK: Duration = Duration::from_secs(12);

/// The binary under `ulimit -n`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_with_fd_limit(limit: u32) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsource.sqlite");
    let config = dir.path().join("ringsource.toml");
    // The attack is on connections, not the per-address bucket of visits
    // (which would refuse the attacking bodies, and the visitor after them).
    let no_bucket = "[server.rate_limit]\nburst = 100000\nper_minute = 100000";
    std::fs::write(&config, site_toml(&db, no_bucket, "", "")).unwrap();
    let script = format!("ulimit -n {limit} && exec \"$0\" serve --config \"$1\"");
    let mut child = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_ringsource")])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).parse().unwrap();
    Server { child, addr, _dir: dir }
}

/// What an attacking connection trickles.
#[derive(Clone, Copy)]
enum Trickle {
    /// Its request head.
    Head,
    /// A visit's body, after a whole head.
    Body,
}

/// One attacking connection: its socket and when it was opened.
struct Loris {
    socket: TcpStream,
    opened: Instant,
}

impl Loris {
    fn open(addr: SocketAddr, trickle: Trickle) -> Loris {
        let mut socket = TcpStream::connect(addr).unwrap();
        let start: &[u8] = match trickle {
            Trickle::Head => b"GET /v1/sites/shop/config HTTP/1.1\r\nHost: shop.example\r\nX-Padding: ",
            Trickle::Body => {
                b"POST /v1/sites/shop/visits HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\nContent-Length: 20000\r\n\r\n"
            }
        };
        socket.write_all(start).unwrap();
        socket.set_nonblocking(true).unwrap();
        Loris { socket, opened: Instant::now() }
    }

    /// One more byte; false once the server has closed the connection.
    fn tick(&mut self) -> bool {
        let mut buf = [0u8; 512];
        match self.socket.read(&mut buf) {
            Ok(_) => return false,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        self.socket.write_all(b"a").is_ok()
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn a_slowloris_of_300_connections_on_256_descriptors_does_not_stop_the_server() {
    attack(Trickle::Head, HEAD_TIMEOUT);
}

#[test]
fn a_slow_body_attack_of_300_connections_does_not_stop_the_server_either() {
    attack(Trickle::Body, BODY_TIMEOUT);
}

/// Runs the attack; `deadline` is the longest the server may hold one of
/// its connections when it is not under pressure.
fn attack(trickle: Trickle, deadline: Duration) {
    let server = serve_with_fd_limit(FD_LIMIT);
    let addr = server.addr;
    let pid = server.child.id();
    let visitor = crate::common::http::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let config = format!("http://{addr}/v1/sites/shop/config");
    assert_eq!(visitor.get(&config).send().unwrap().status(), 200);

    let (held, oldest_open, attack_opened, most_fds) = std::thread::scope(|scope| {
        let attack = scope.spawn(|| {
            let mut lorises: Vec<Loris> = (0..ATTACKERS).map(|_| Loris::open(addr, trickle)).collect();
            let mut opened = ATTACKERS;
            let mut held = Vec::new();
            let mut most_fds = 0;
            let end = Instant::now() + ATTACK;
            while Instant::now() < end {
                for loris in &mut lorises {
                    if !loris.tick() {
                        held.push(loris.opened.elapsed());
                        *loris = Loris::open(addr, trickle);
                        opened += 1;
                    }
                }
                most_fds = most_fds.max(open_fds(pid));
                std::thread::sleep(Duration::from_secs(1));
            }
            // The ones the server has not cut yet, by how long they have been open.
            let oldest_open = lorises.iter().map(|l| l.opened.elapsed()).max().unwrap_or_default();
            held.sort();
            (held, oldest_open, opened, most_fds)
        });
        // A visitor meanwhile: a fresh connection for each request.
        let mut waits = Vec::new();
        let end = Instant::now() + ATTACK;
        while Instant::now() < end {
            let t = Instant::now();
            let resp = visitor.get(&config).send().unwrap_or_else(|e| panic!("under attack: {e}"));
            assert_eq!(resp.status(), 200);
            waits.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(250));
        }
        let (held, oldest_open, opened, most_fds) = attack.join().unwrap();
        waits.sort();
        let kind = match trickle {
            Trickle::Head => "heads",
            Trickle::Body => "bodies",
        };
        eprintln!(
            "slowloris ({kind}): {opened} connections opened, {} cut by the server (held p50 {:?}, max {:?}, \
             oldest still open {oldest_open:?}); \
             visitor: {} requests, all 200, wait p50 {:?}, max {:?}; server fds at most {most_fds} of {FD_LIMIT}",
            held.len(),
            held.get(held.len() / 2).copied().unwrap_or_default(),
            held.iter().max().copied().unwrap_or_default(),
            waits.len(),
            waits[waits.len() / 2],
            waits[waits.len() - 1],
        );
        // The visitor never waited out a whole head deadline.
        assert!(waits[waits.len() - 1] < HEAD_TIMEOUT, "a visitor waited {:?}", waits[waits.len() - 1]);
        (held, oldest_open, opened, most_fds)
    });
    // Every attacking connection was cut, or is young enough to be cut yet,
    // each within its deadline of the server's clock (timed here from the
    // connect, so also the wait in the backlog, and on a busy machine).
    assert!(held.len() >= ATTACKERS, "only {} of {attack_opened} connections were cut", held.len());
    let slack = Duration::from_secs(5);
    let longest = *held.last().unwrap();
    assert!(longest <= deadline + slack, "a trickle held its connection {longest:?}");
    assert!(oldest_open <= deadline + slack, "a trickle has held its connection {oldest_open:?}");
    assert!(most_fds < FD_LIMIT as usize, "{most_fds} descriptors open");
    // And afterwards the server is as it was.
    assert_eq!(visitor.get(&config).send().unwrap().status(), 200);
    let resp = visitor
        .post(format!("http://{addr}/v1/sites/shop/visits"))
        .body(crate::common::visit_body(None, crate::common::paid()).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log = std::fs::read_to_string(server._dir.path().join("stderr.log")).unwrap();
    assert!(!log.contains("Too many open files"), "{log}");
}
