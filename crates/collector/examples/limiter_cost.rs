//! The rate limiter alone, for `cargo xtask bench limiter`: the time one
//! `RateLimiter::check` takes with 100,000 clients kept against 10, measured
//! in the same run, rounds alternating. Every client is refused after its
//! first request (a burst of one a minute), as a flood's are.
//!
//! Prints one line per round and the median ratio; `--json` prints the
//! rounds as JSON for the xtask instead.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ringsource_collector::ratelimit::{Bucket, RateLimiter};

const CHECKS: usize = 2_000_000;
const ROUNDS: usize = 5;

/// Nanoseconds per check over `clients` addresses of 10.0.0.0/8, in turn,
/// on a limiter that has seen each of them once already.
fn ns_per_check(clients: u32) -> f64 {
    let limiter = RateLimiter::new(Bucket { burst: 1, per_minute: 1 });
    let address = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
    let now_ms = 1_800_000_000_000;
    for i in 0..clients {
        let _ = limiter.check(address(i), now_ms);
    }
    assert_eq!(limiter.clients(), clients as usize);
    let addresses: Vec<IpAddr> = (0..clients).map(address).collect();
    let start = Instant::now();
    let mut refused = 0usize;
    for n in 0..CHECKS {
        // A millisecond passes every thousand checks, as under load.
        let at = now_ms + (n / 1000) as i64;
        refused += usize::from(limiter.check(black_box(addresses[n % addresses.len()]), at).is_err());
    }
    let elapsed = start.elapsed();
    assert_eq!(refused, CHECKS, "every check past the first is refused");
    elapsed.as_nanos() as f64 / CHECKS as f64
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        let few = ns_per_check(10);
        let many = ns_per_check(100_000);
        if !json {
            println!(
                "round {round}: 10 clients {few:.1} ns/check, 100,000 clients {many:.1} ns/check, ratio {:.2}",
                many / few
            );
        }
        rounds.push((few, many));
    }
    let mut ratios: Vec<f64> = rounds.iter().map(|(few, many)| many / few).collect();
    ratios.sort_by(f64::total_cmp);
    if json {
        let rows: Vec<String> =
            rounds.iter().map(|(few, many)| format!("{{\"few_ns\":{few:.2},\"many_ns\":{many:.2}}}")).collect();
        println!("{{\"checks\":{CHECKS},\"rounds\":[{}]}}", rows.join(","));
    } else {
        println!("median ratio (100,000 / 10 clients): {:.2}", ratios[ratios.len() / 2]);
    }
}
