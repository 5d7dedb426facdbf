//! Pool health over time, from lease history: how many numbers were live (or
//! live or cooling down) at once in each bucket (an hour, for the
//! dashboard), how many sessions asked a pool for a number for the first
//! time, and how long sessions kept renewing. Sizing itself is
//! [`crate::lease::pool_sizing`]; the warning line is
//! [`crate::lease::UTILISATION_WARNING`].
//!
//! Times are milliseconds since the Unix epoch; buckets are `[start, end)`.

/// Equal buckets covering `[from_ms, to_ms)`; the last one may be shorter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    pub from_ms: i64,
    pub to_ms: i64,
    pub width_ms: i64,
}

impl Buckets {
    /// `width_ms` must be positive; an empty or reversed range has no buckets.
    pub fn new(from_ms: i64, to_ms: i64, width_ms: i64) -> Buckets {
        assert!(width_ms > 0, "bucket width must be positive");
        Buckets { from_ms, to_ms: to_ms.max(from_ms), width_ms }
    }

    pub fn len(&self) -> usize {
        usize::try_from((self.to_ms - self.from_ms + self.width_ms - 1) / self.width_ms).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start of bucket `i`.
    pub fn start(&self, i: usize) -> i64 {
        self.from_ms + self.width_ms * i as i64
    }

    /// The bucket holding `at_ms`, if inside the range.
    pub fn index(&self, at_ms: i64) -> Option<usize> {
        if at_ms < self.from_ms || at_ms >= self.to_ms {
            return None;
        }
        usize::try_from((at_ms - self.from_ms) / self.width_ms).ok()
    }
}

/// The most leases live at the same instant in each bucket. A lease is live
/// on `[start, end)`: one that ends exactly when another starts does not
/// overlap it. Leases outside the range are ignored.
pub fn peak_concurrency(spans: &[(i64, i64)], buckets: Buckets) -> Vec<u32> {
    let n = buckets.len();
    let mut peaks = vec![0u32; n];
    if n == 0 {
        return peaks;
    }
    // Sweep: +1 at each start, -1 at each end, ends before starts at the
    // same instant. Each change is credited to the bucket it happens in,
    // and the level carried into a bucket counts for it too.
    let mut changes: Vec<(i64, i32)> = Vec::with_capacity(spans.len() * 2);
    for &(start, end) in spans {
        let (start, end) = (start.max(buckets.from_ms), end.min(buckets.to_ms));
        if start < end {
            changes.push((start, 1));
            changes.push((end, -1));
        }
    }
    changes.sort_unstable();
    let mut level: i32 = 0;
    let mut next = changes.iter().peekable();
    for (i, peak) in peaks.iter_mut().enumerate() {
        let end = buckets.start(i + 1).min(buckets.to_ms);
        let mut max = level;
        while let Some(&&(at, delta)) = next.peek() {
            if at >= end {
                break;
            }
            level += delta;
            max = max.max(level);
            next.next();
        }
        *peak = u32::try_from(max).unwrap_or(0);
    }
    peaks
}

/// The spans in which a number could not go to a new visitor: each lease
/// from its start to its end plus the cooldown, merged per number (a visitor
/// who gets their number back while it cools down keeps it busy without a
/// break). `leases` are `(number, start, end)`, in any order.
pub fn busy_spans<K: Ord + Copy>(leases: &[(K, i64, i64)], cooldown_ms: i64) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(K, i64, i64)> = leases.to_vec();
    sorted.sort_unstable_by_key(|&(number, start, _)| (number, start));
    let mut spans: Vec<(i64, i64)> = Vec::with_capacity(sorted.len());
    let mut current: Option<(K, i64, i64)> = None;
    for (number, start, end) in sorted {
        let end = end.saturating_add(cooldown_ms.max(0));
        current = match current {
            Some((k, s, e)) if k == number && start <= e => Some((k, s, e.max(end))),
            Some((_, s, e)) => {
                spans.push((s, e));
                Some((number, start, end))
            }
            None => Some((number, start, end)),
        };
    }
    spans.extend(current.map(|(_, s, e)| (s, e)));
    spans
}

/// Mean time the leases were renewed for: each lease's length beyond the
/// hold it starts with (a lease that ended early, taken over or released,
/// counts 0). 0 without leases.
pub fn mean_renewed_ms(spans: &[(i64, i64)], hold_ms: i64) -> f64 {
    if spans.is_empty() {
        return 0.0;
    }
    let total: i64 = spans.iter().map(|&(start, end)| (end - start - hold_ms).max(0)).sum();
    total as f64 / spans.len() as f64
}

/// Events counted per bucket, from `(instant, how many)` pairs: sessions
/// that asked for a number for the first time (their first lease or
/// refusal on the pool), or refusals, both stored as counts per minute.
pub fn counts(events: &[(i64, u32)], buckets: Buckets) -> Vec<u32> {
    let mut counts = vec![0u32; buckets.len()];
    for &(at, n) in events {
        if let Some(i) = buckets.index(at) {
            counts[i] = counts[i].saturating_add(n);
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn buckets_cover_the_range() {
        let b = Buckets::new(0, 2 * H + 1, H);
        assert_eq!(b.len(), 3);
        assert_eq!((b.index(0), b.index(H), b.index(2 * H), b.index(2 * H + 1)), (Some(0), Some(1), Some(2), None));
        assert!(Buckets::new(5, 5, H).is_empty());
        assert!(Buckets::new(5, 1, H).is_empty());
    }

    #[test]
    fn peaks_count_overlaps_within_each_hour() {
        let b = Buckets::new(0, 3 * H, H);
        // Hour 0: two overlap; hour 1: the long one carries in alone, then a
        // back-to-back pair never overlaps; hour 2: nothing starts but the
        // long lease still runs.
        let spans = [(10, 3 * H), (20, 30), (H + 10, H + 20), (H + 20, H + 30)];
        assert_eq!(peak_concurrency(&spans, b), vec![2, 2, 1]);
        assert_eq!(peak_concurrency(&[(10, 20)], b), vec![1, 0, 0]);
        assert_eq!(peak_concurrency(&[(-H, 10), (5 * H, 6 * H)], b), vec![1, 0, 0]);
        assert_eq!(peak_concurrency(&[], b), vec![0, 0, 0]);
    }

    #[test]
    fn busy_spans_add_the_cooldown_and_merge_per_number() {
        // Number 1: a lease, then the same visitor back during its cooldown
        // (one busy span); number 2: two leases far apart.
        let leases = [(1, 0, 100), (2, 50, 60), (1, 120, 200), (2, 500, 600)];
        assert_eq!(busy_spans(&leases, 30), vec![(0, 230), (50, 90), (500, 630)]);
        assert_eq!(busy_spans::<u8>(&[], 30), vec![]);
    }

    #[test]
    fn renewed_time_is_the_length_beyond_the_hold() {
        assert_eq!(mean_renewed_ms(&[(0, 900), (0, 1500), (0, 300)], 900), 200.0);
        assert_eq!(mean_renewed_ms(&[], 900), 0.0);
    }

    #[test]
    fn new_sessions_fall_in_their_hour() {
        let b = Buckets::new(0, 2 * H, H);
        let events: Vec<(i64, u32)> = [0, 5, H - 1, H, 2 * H, -1].into_iter().map(|at| (at, 1)).collect();
        assert_eq!(counts(&events, b), vec![3, 1]);
        assert_eq!(counts(&[(0, 7), (H, 2), (H + 1, u32::MAX)], b), vec![7, u32::MAX]);
    }
}
