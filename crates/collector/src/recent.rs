//! A map that forgets what was not touched for a while, at O(1) per access
//! whatever its size: the rate limiter's buckets and the lease writer's
//! demand counts, both keyed by addresses that an attacker chooses.
//!
//! Two generations: every access moves its entry into the current one, and
//! once a period has passed (or the current one is full) the previous
//! generation is dropped whole and the current one takes its place. An entry
//! is dropped only after a full period without an access, which is how the
//! owner says when an entry carries no more information (a token bucket
//! that has refilled, a count that has decayed). Scanning the map for such
//! entries instead cost every request time in proportion to the clients.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

pub struct Recent<K, V, S = RandomState> {
    current: HashMap<K, V, S>,
    previous: HashMap<K, V, S>,
    rotated_at_ms: i64,
    period_ms: i64,
    max_len: usize,
}

impl<K: Hash + Eq + Copy, V> Recent<K, V> {
    /// Entries untouched for `period_ms` are forgotten, and at most
    /// `max_len` are kept per generation: past that the older generation is
    /// dropped early, so memory stays bounded when a flood brings new keys
    /// faster than a period lets go of them.
    pub fn new(period_ms: i64, max_len: usize) -> Self {
        Self::with_hasher(period_ms, max_len)
    }
}

impl<K: Hash + Eq + Copy, V, S: BuildHasher + Default> Recent<K, V, S> {
    /// [`Recent::new`] with keys hashed by `S`.
    pub fn with_hasher(period_ms: i64, max_len: usize) -> Self {
        Self {
            current: HashMap::default(),
            previous: HashMap::default(),
            rotated_at_ms: i64::MIN,
            period_ms: period_ms.max(1),
            max_len: max_len.max(1),
        }
    }

    fn rotate_if_due(&mut self, now_ms: i64) {
        if self.rotated_at_ms == i64::MIN {
            self.rotated_at_ms = now_ms;
            return;
        }
        let elapsed = now_ms.saturating_sub(self.rotated_at_ms);
        if elapsed >= self.period_ms.saturating_mul(2) {
            // Both generations are older than a period.
            self.current.clear();
            self.previous.clear();
            self.rotated_at_ms = now_ms;
        } else if elapsed >= self.period_ms || self.current.len() >= self.max_len {
            std::mem::swap(&mut self.current, &mut self.previous);
            // The dropped entries' values are plain data: clearing writes
            // the table's control bytes, once per period.
            self.current.clear();
            self.rotated_at_ms = now_ms;
        }
    }

    /// The entry for `key`, made by `new` if it was not kept.
    pub fn get_or_insert_with(&mut self, key: K, now_ms: i64, new: impl FnOnce() -> V) -> &mut V {
        self.rotate_if_due(now_ms);
        if !self.current.contains_key(&key) {
            let value = self.previous.remove(&key).unwrap_or_else(new);
            self.current.insert(key, value);
        }
        self.current.get_mut(&key).expect("inserted above")
    }

    /// The entry for `key`, without moving it or forgetting anything.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// Entries kept, in both generations.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// For keys that already are a keyed hash of what they stand for (uniform
/// and secret): the key is its own hash, with no second pass over it.
#[derive(Default)]
pub struct KeyIsHash(u64);

impl std::hash::Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are meant; anything else is folded in, not dropped.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_last_one_to_two_periods_after_their_last_access() {
        let mut map: Recent<u32, u32> = Recent::new(1000, 100);
        *map.get_or_insert_with(1, 0, || 0) += 1;
        *map.get_or_insert_with(2, 0, || 0) += 1;
        // Touched at 900: kept past the rotation at 1000.
        *map.get_or_insert_with(1, 900, || 0) += 1;
        *map.get_or_insert_with(3, 1500, || 0) += 1;
        assert_eq!(map.get(&1), Some(&2));
        assert_eq!(map.get(&2), Some(&1));
        // At 2500 the generation from before 1500 is dropped: 2 (untouched
        // since 0) and 1 (since 900), both more than a period ago.
        *map.get_or_insert_with(3, 2500, || 0) += 1;
        assert_eq!(map.get(&2), None);
        assert_eq!(map.get(&1), None);
        assert_eq!(map.get(&3), Some(&2));
        // Two idle periods forget everything.
        map.get_or_insert_with(4, 10_000, || 7);
        assert_eq!((map.get(&3), map.get(&4), map.len()), (None, Some(&7), 1));
    }

    #[test]
    fn a_flood_of_new_keys_keeps_at_most_two_generations() {
        let mut map: Recent<u32, ()> = Recent::new(i64::MAX / 4, 1000);
        for key in 0..100_000 {
            map.get_or_insert_with(key, 0, || ());
        }
        assert!(map.len() <= 2000, "{}", map.len());
        // The latest keys are kept.
        assert!(map.get(&99_999).is_some());
    }
}
