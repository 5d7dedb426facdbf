//! New session ids: a stamp that only grows, then 128 bits of the OS's
//! randomness.
//!
//! The stamp is for SQLite: `sessions` and the indexes of the tables that
//! name a session are keyed by session id, so ids made in order land at the
//! right edge of those b-trees. The millisecond alone (the earlier format)
//! left the visitors of one millisecond in random order; a count below it
//! makes the order exact. That made no difference the bench could see in the
//! bytes written per visit, but it costs nothing, and the id is 38 characters
//! instead of 44.
//!
//! The randomness is what makes an id a credential (it holds a lease). It is
//! read from the OS a block at a time: one `getrandom` call per visit was a
//! sixth of the collector's system calls per visit.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes per id.
const RANDOM_BYTES: usize = 16;

/// Ids' worth of randomness fetched per system call.
const IDS_PER_FETCH: usize = 128;

/// The last stamp handed out in this process.
static LAST_STAMP: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RANDOM: RefCell<RandomBlock> = const {
        RefCell::new(RandomBlock { bytes: [0; RANDOM_BYTES * IDS_PER_FETCH], used: RANDOM_BYTES * IDS_PER_FETCH })
    };
}

/// Randomness fetched from the OS, handed out an id's worth at a time.
struct RandomBlock {
    bytes: [u8; RANDOM_BYTES * IDS_PER_FETCH],
    used: usize,
}

impl RandomBlock {
    fn take(&mut self) -> Result<[u8; RANDOM_BYTES], getrandom::Error> {
        if self.used == self.bytes.len() {
            getrandom::fill(&mut self.bytes)?;
            self.used = 0;
        }
        let mut out = [0; RANDOM_BYTES];
        out.copy_from_slice(&self.bytes[self.used..self.used + RANDOM_BYTES]);
        // Handed-out bytes do not stay behind in memory.
        self.bytes[self.used..self.used + RANDOM_BYTES].fill(0);
        self.used += RANDOM_BYTES;
        Ok(out)
    }
}

/// The millisecond in the top 48 bits and a count in the low 16, and greater
/// than every stamp before it in this process, even if the clock steps back.
fn next_stamp(now_ms: i64) -> u64 {
    let floor = (now_ms.clamp(0, 0xffff_ffff_ffff) as u64) << 16;
    let previous = LAST_STAMP
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(floor.max(last.saturating_add(1))))
        .unwrap_or_else(|last| last);
    floor.max(previous.saturating_add(1))
}

/// A new session id: 16 hex digits of stamp (12 of them the creation
/// millisecond), then 22 URL-safe base64 characters of randomness. 38
/// characters in all, within what the API accepts back (8 to 64 of
/// `A-Za-z0-9-_`).
pub fn new(now_ms: i64) -> Result<String, getrandom::Error> {
    let random = RANDOM.with(|block| block.borrow_mut().take())?;
    let mut id = format!("{:016x}", next_stamp(now_ms));
    URL_SAFE_NO_PAD.encode_string(random, &mut id);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::new;

    #[test]
    fn ids_grow_in_the_order_they_are_made_even_when_the_clock_steps_back() {
        let times = [1_764_000_000_000, 1_764_000_000_000, 1_764_000_000_000, 1_763_999_999_000, 1_764_000_000_001];
        let ids: Vec<String> = times.iter().map(|&t| new(t).unwrap()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        // The creation millisecond leads the id.
        assert!(ids[0].starts_with(&format!("{:012x}", 1_764_000_000_000_i64)), "{}", ids[0]);
        assert!(ids[4].starts_with(&format!("{:012x}", 1_764_000_000_001_i64)), "{}", ids[4]);
    }

    #[test]
    fn ids_are_38_characters_the_api_takes_back_and_never_repeat() {
        // More than one fetch of randomness, on two threads.
        let made: Vec<String> = std::thread::scope(|s| {
            let a = s.spawn(|| (0..300).map(|_| new(1_764_000_000_000).unwrap()).collect::<Vec<_>>());
            let b = s.spawn(|| (0..300).map(|_| new(1_764_000_000_000).unwrap()).collect::<Vec<_>>());
            a.join().unwrap().into_iter().chain(b.join().unwrap()).collect()
        });
        for id in &made {
            assert_eq!(id.len(), 38, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
        }
        let random_parts: HashSet<&str> = made.iter().map(|id| &id[16..]).collect();
        assert_eq!(random_parts.len(), made.len(), "the random part repeated");
    }
}
