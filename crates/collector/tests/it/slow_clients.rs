//! Clients that send a byte a second: a request head (the first on its
//! connection, or a later one on a kept-alive connection) and a request
//! body each have a deadline, after which the server closes the connection,
//! while it goes on answering everyone else. Over raw TCP, against the real
//! server and its SQLite file.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;
use ringsource_collector::http::edge::{BODY_MIN_BYTES_PER_SEC, BODY_TIMEOUT, HEAD_TIMEOUT};
use serde_json::Value;

/// What a trickling client saw: when the server closed its connection
/// (counted from the first trickled byte), and what it answered first.
struct Closed {
    after: Duration,
    answer: String,
}

/// Sends `start` at once, then `trickle` a byte a second until the server
/// closes the connection (or `give_up` passes).
fn trickle(addr: SocketAddr, start: &[u8], trickle: &[u8], give_up: Duration) -> Closed {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(start).unwrap();
    let begun = Instant::now();
    let mut answer = Vec::new();
    s.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    let mut bytes = trickle.iter().cycle();
    loop {
        assert!(begun.elapsed() < give_up, "the server still holds the connection after {give_up:?}");
        // Read first: a byte written after the server closed draws a reset,
        // which would throw away an answer not yet read.
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if s.write_all(&[*bytes.next().unwrap()]).is_err() {
            break;
        }
    }
    Closed { after: begun.elapsed(), answer: String::from_utf8_lossy(&answer).into_owned() }
}

/// One quick request on its own connection, as other visitors send it.
fn quick_get(h: &Harness) -> Duration {
    let t = Instant::now();
    let resp = h.client.get(h.url("/v1/sites/shop/config")).send().unwrap();
    assert_eq!(resp.status(), 200);
    t.elapsed()
}

const SLOW_HEAD: &[u8] = b"GET /v1/sites/shop/config HTTP/1.1\r\nHost: shop.example\r\nX-Padding: ";

#[test]
fn slow_heads_and_bodies_are_cut_off_while_others_are_served() {
    let h = start("", "", "");
    let addr = h.server.addr;
    let give_up = BODY_TIMEOUT + Duration::from_secs(10);
    let slack = Duration::from_secs(3);
    std::thread::scope(|scope| {
        // The first head of a connection.
        let first_head = scope.spawn(|| trickle(addr, SLOW_HEAD, b"a", give_up));
        // A later head on a kept-alive connection: actix-web's own timer
        // does not cover it.
        let later_head = scope.spawn(|| {
            let quick = b"GET /v1/sites/shop/config HTTP/1.1\r\nHost: shop.example\r\n\r\n";
            let mut start = quick.to_vec();
            start.extend_from_slice(SLOW_HEAD);
            trickle(addr, &start, b"a", give_up)
        });
        // A body that trickles.
        let body = scope.spawn(|| {
            let head =
                b"POST /v1/sites/shop/visits HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\nContent-Length: 2000\r\n\r\n";
            trickle(addr, head, b" ", give_up)
        });
        // Everyone else is answered meanwhile, at once.
        let mut slowest = Duration::ZERO;
        let until = Instant::now() + HEAD_TIMEOUT + Duration::from_secs(2);
        while Instant::now() < until {
            slowest = slowest.max(quick_get(&h));
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(slowest < Duration::from_secs(1), "a quick request took {slowest:?}");

        let first_head = first_head.join().unwrap();
        assert!(first_head.after <= HEAD_TIMEOUT + slack, "first head held {:?}", first_head.after);
        assert!(first_head.answer.starts_with("HTTP/1.1 408"), "{:?}", first_head.answer);

        let later_head = later_head.join().unwrap();
        assert!(later_head.after <= HEAD_TIMEOUT + slack, "later head held {:?}", later_head.after);
        assert!(
            later_head.answer.starts_with("HTTP/1.1 200"),
            "the quick request was answered: {:?}",
            later_head.answer
        );

        let body = body.join().unwrap();
        // 2000 bytes at a byte a second never earn an extra second.
        assert!(body.after >= BODY_TIMEOUT - Duration::from_secs(1), "body cut after {:?}", body.after);
        assert!(body.after <= BODY_TIMEOUT + slack, "body held {:?}", body.after);
        assert!(body.answer.starts_with("HTTP/1.1 408"), "{:?}", body.answer);
        let json = body.answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let err: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {:?}", body.answer));
        assert_eq!(err["error"]["code"], "request_timeout");
        assert!(body.answer.to_ascii_lowercase().contains("connection: close"), "{:?}", body.answer);
    });
}

/// A body that keeps moving is not cut, however long it takes in all:
/// every [`BODY_MIN_BYTES_PER_SEC`] bytes earn another second.
#[test]
fn a_slow_body_that_keeps_moving_gets_through() {
    let h = start("", "", "");
    let visit = visit_body(None, paid()).to_string();
    // Valid JSON padded with spaces to 24 KiB, sent at 2 KiB a second: 12 s,
    // past the bare deadline, never behind the rate.
    let total = 24 * 1024;
    let body = format!("{visit}{}", " ".repeat(total - visit.len()));
    let chunk = (2 * BODY_MIN_BYTES_PER_SEC) as usize;
    let mut s = TcpStream::connect(h.server.addr).unwrap();
    write!(
        s,
        "POST /v1/sites/shop/visits HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let begun = Instant::now();
    for part in body.as_bytes().chunks(chunk) {
        s.write_all(part).unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(begun.elapsed() > BODY_TIMEOUT, "the upload was meant to outlast the bare deadline");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
