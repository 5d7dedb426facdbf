//! Per-IP token buckets for lease requests. In memory on purpose: limits
//! protect the pool from one client draining it, and a restart forgetting
//! them is harmless.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::RateLimit;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Token buckets keyed by client IP.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Above this many tracked IPs, full buckets are dropped (they carry no
/// information: a new bucket starts full too).
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    fn refill(&self, b: Bucket, now_ms: i64) -> f64 {
        let per_ms = f64::from(self.limit.per_minute) / 60_000.0;
        let elapsed = (now_ms - b.at_ms).max(0) as f64;
        (b.tokens + elapsed * per_ms).min(f64::from(self.limit.burst))
    }

    /// Takes a token for `ip`; `Err(retry_after_secs)` when none is left.
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let burst = f64::from(self.limit.burst);
            buckets.retain(|_, b| self.refill(*b, now_ms) < burst);
        }
        let burst = f64::from(self.limit.burst);
        let bucket = buckets.entry(ip).or_insert(Bucket { tokens: burst, at_ms: now_ms });
        let tokens = self.refill(*bucket, now_ms);
        if tokens >= 1.0 {
            *bucket = Bucket { tokens: tokens - 1.0, at_ms: now_ms };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at_ms: now_ms };
            let per_sec = f64::from(self.limit.per_minute) / 60.0;
            Err(((1.0 - tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(RateLimit { burst: 2, per_minute: 60 });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(rl.check(ip, 0).is_ok());
        assert!(rl.check(ip, 0).is_ok());
        assert_eq!(rl.check(ip, 0), Err(1));
        assert!(rl.check(other, 0).is_ok());
        // One token per second comes back.
        assert!(rl.check(ip, 1000).is_ok());
        assert!(rl.check(ip, 1000).is_err());
    }
}
