//! Per-client rate limits: a token bucket per client, where a client is an
//! IPv4 address or an IPv6 /64 (one subscriber gets a whole /64, so a bucket
//! per IPv6 address would be a bucket per request for anyone who wants one).
//! In memory on purpose: limits protect the pool from one client draining
//! it, and a restart forgetting them is harmless.
//!
//! Each bucket is one number, the generic cell rate algorithm's theoretical
//! arrival time: a request is allowed when that time is at most a burst
//! ahead of now, and moves it on by one interval. The buckets sit in shards,
//! each behind its own lock and each a [`Recent`] map, which forgets a
//! bucket once it has stood untouched long enough to be full again (a full
//! bucket is what a new client gets anyway). So a request costs one hash,
//! one uncontended lock and one map look-up, whatever the number of clients.
//!
//! A bucket is keyed by a 64-bit keyed hash of its client (SipHash with a
//! key drawn at start): the hash picks the shard and is the map's key and
//! hash at once, so a bucket takes 16 bytes and a check hashes once. Two
//! clients sharing a bucket by a collision is a chance of about n² / 2⁶⁵
//! (3 × 10⁻⁸ for a million clients), and nobody can aim for one without the key.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use ringsource_core::lease::{Groups, Level};

use crate::recent::{KeyIsHash, Recent};

/// A bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Requests allowed in a burst.
    pub burst: u32,
    /// Sustained requests per minute.
    pub per_minute: u32,
}

/// Shards of the bucket map: more than the HTTP workers by far, so two
/// requests rarely wait for the same lock.
const SHARDS: usize = 64;
/// Clients kept per generation, over all shards. Past that the oldest
/// generation goes early: a flood of new addresses (IPv6 offers plenty)
/// cannot grow the map without bound, at worst it resets other clients'
/// buckets to full.
const MAX_CLIENTS: usize = 1 << 18;

/// One shard's buckets: each client's next arrival time (µs), by its hash.
type Buckets = Recent<u64, i64, BuildHasherDefault<KeyIsHash>>;

/// Token buckets keyed by client.
pub struct RateLimiter {
    /// Time between two requests at the sustained rate, in microseconds.
    interval_us: i64,
    /// How far ahead of now a bucket's arrival time may run: a burst less one.
    tolerance_us: i64,
    shards: Box<[Mutex<Buckets>]>,
    hasher: RandomState,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("interval_us", &self.interval_us).finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(limit: Bucket) -> Self {
        let interval_us = (60_000_000 / i64::from(limit.per_minute.max(1))).max(1);
        let tolerance_us = interval_us.saturating_mul(i64::from(limit.burst.max(1)) - 1);
        // A bucket untouched for a whole burst's worth of intervals is full.
        let period_ms = (tolerance_us.saturating_add(interval_us) / 1000).max(1000);
        let shards = (0..SHARDS).map(|_| Mutex::new(Recent::with_hasher(period_ms, MAX_CLIENTS / SHARDS))).collect();
        Self { interval_us, tolerance_us, shards, hasher: RandomState::new() }
    }

    /// The bucket key of `ip`: the address, or its /64 for IPv6.
    pub fn client_key(ip: IpAddr) -> u128 {
        Groups::of(ip).key(Level::Client)
    }

    /// Takes a token for `ip`; `Err(retry_after_secs)` when none is left.
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let key = self.hasher.hash_one(Self::client_key(ip));
        // The shard from the high bits (the map uses the low ones and the top seven).
        let shard = (key >> 50) as usize % SHARDS;
        let mut buckets = self.shards[shard].lock().unwrap_or_else(PoisonError::into_inner);
        let now_us = now_ms.saturating_mul(1000);
        let due = buckets.get_or_insert_with(key, now_ms, || now_us);
        let arrival = (*due).max(now_us);
        if arrival - now_us > self.tolerance_us {
            let wait_us = arrival - self.tolerance_us - now_us;
            // Whole seconds, rounded up (the wait is positive).
            let secs = (wait_us + 999_999) / 1_000_000;
            return Err(u64::try_from(secs).unwrap_or(1).max(1));
        }
        *due = arrival + self.interval_us;
        Ok(())
    }

    /// Clients with a bucket kept.
    pub fn clients(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(Bucket { burst: 2, per_minute: 60 });
        let me = ip("127.0.0.1");
        assert!(rl.check(me, 0).is_ok());
        assert!(rl.check(me, 0).is_ok());
        assert_eq!(rl.check(me, 0), Err(1));
        assert!(rl.check(ip("127.0.0.2"), 0).is_ok());
        // One token per second comes back.
        assert!(rl.check(me, 1000).is_ok());
        assert!(rl.check(me, 1000).is_err());
        // A refused request takes no token: the next one is due at 2000.
        assert_eq!(rl.check(me, 1500), Err(1));
        assert!(rl.check(me, 2000).is_ok());
    }

    #[test]
    fn retry_after_counts_whole_seconds_to_the_next_token() {
        let rl = RateLimiter::new(Bucket { burst: 1, per_minute: 2 });
        let me = ip("192.0.2.1");
        assert!(rl.check(me, 0).is_ok());
        assert_eq!(rl.check(me, 0), Err(30));
        assert_eq!(rl.check(me, 29_500), Err(1));
        assert!(rl.check(me, 30_000).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let rl = RateLimiter::new(Bucket { burst: 2, per_minute: 1 });
        assert!(rl.check(ip("2001:db8:1:2::1"), 0).is_ok());
        assert!(rl.check(ip("2001:db8:1:2:ffff::9"), 0).is_ok());
        assert!(rl.check(ip("2001:db8:1:2:1234:5678:9abc:def0"), 0).is_err());
        // The next /64 is someone else.
        assert!(rl.check(ip("2001:db8:1:3::1"), 0).is_ok());
        // An IPv4-mapped address is the IPv4 client.
        assert!(rl.check(ip("192.0.2.1"), 0).is_ok());
        assert!(rl.check(ip("::ffff:192.0.2.1"), 0).is_ok());
        assert!(rl.check(ip("192.0.2.1"), 0).is_err());
    }

    #[test]
    fn idle_clients_are_forgotten_without_a_scan() {
        // Burst 3 at 60 a minute: a bucket is full again 3 s after its last use.
        let rl = RateLimiter::new(Bucket { burst: 3, per_minute: 60 });
        for i in 0..20_000u32 {
            assert!(rl.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 0).is_ok());
        }
        assert_eq!(rl.clients(), 20_000);
        let me = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(rl.check(me, 0).is_ok());
        }
        // Two periods later the idle buckets have gone as each shard was
        // next used; a client that comes back finds a full bucket, as it
        // would have anyway.
        for t in [3_000, 6_000] {
            for i in 0..SHARDS as u32 * 8 {
                let _ = rl.check(IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + i)), t);
            }
        }
        assert!(rl.clients() < 20_000 / 4, "{}", rl.clients());
        for _ in 0..3 {
            assert!(rl.check(me, 6_000).is_ok());
        }
    }
}
