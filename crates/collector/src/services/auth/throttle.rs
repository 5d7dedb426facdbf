//! The login rate limit: token buckets keyed by text (a client address, a
//! user name), in memory. A restart forgets them, which costs an attacker a
//! restart per burst: fine against guessing.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// `burst` tries at once, then one every `refill_ms`.
#[derive(Debug)]
pub struct Throttle {
    burst: f64,
    refill_ms: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past this many keys, full buckets are dropped (a new bucket is full too).
const PRUNE_ABOVE: usize = 10_000;

impl Throttle {
    pub fn new(burst: u32, refill_ms: u32) -> Self {
        Self { burst: f64::from(burst), refill_ms: f64::from(refill_ms.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    fn level(&self, b: Bucket, now_ms: i64) -> f64 {
        (b.tokens + (now_ms - b.at_ms).max(0) as f64 / self.refill_ms).min(self.burst)
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(retry_after_secs)` when `key` has no try left; takes nothing.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let buckets = self.buckets();
        match buckets.get(key) {
            Some(b) if self.level(*b, now_ms) < 1.0 => Err(self.wait_secs(self.level(*b, now_ms))),
            _ => Ok(()),
        }
    }

    /// Takes a try from `key`; `Err(retry_after_secs)` when none is left.
    pub fn take(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets();
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| self.level(*b, now_ms) < self.burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, at_ms: now_ms });
        let level = self.level(*bucket, now_ms);
        if level >= 1.0 {
            *bucket = Bucket { tokens: level - 1.0, at_ms: now_ms };
            Ok(())
        } else {
            *bucket = Bucket { tokens: level, at_ms: now_ms };
            Err(self.wait_secs(level))
        }
    }

    fn wait_secs(&self, level: f64) -> u64 {
        ((1.0 - level) * self.refill_ms / 1000.0).ceil().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let t = Throttle::new(3, 60_000);
        assert!(t.check("anna", 0).is_ok());
        for _ in 0..3 {
            assert!(t.take("anna", 0).is_ok());
        }
        assert_eq!(t.check("anna", 0), Err(60));
        assert_eq!(t.take("anna", 0), Err(60));
        assert!(t.take("boris", 0).is_ok());
        assert_eq!(t.check("anna", 30_000), Err(30));
        assert!(t.take("anna", 60_000).is_ok());
        assert!(t.take("anna", 60_000).is_err());
    }
}
