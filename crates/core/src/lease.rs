//! Pure lease rules for dynamic number pools.
//!
//! The collector keeps the state in a database; these functions decide. Time
//! is always passed in (milliseconds since the Unix epoch): core has no clock.
//!
//! The life of a pool number: *free* → leased (*live* until `expires_at`,
//! renewed by heartbeats) → released or expired → *cooling down* until
//! `cooldown_until` → free again. Cooldown exists so that a late caller who
//! dialled the number they saw is not attributed to the next visitor.

use serde::{Deserialize, Serialize};

/// Who asks for a number: the session, and the analytics client id that
/// survives a new session (the `_ga` cookie's client id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visitor<'a> {
    pub session_id: &'a str,
    pub client_id: Option<&'a str>,
}

/// A holder of a number as the pick rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub session_id: String,
    pub client_id: Option<String>,
}

impl Holder {
    /// Whether this holder is `visitor`: the same session, or the same
    /// analytics client id (a returning visitor whose session was lost).
    pub fn is(&self, visitor: &Visitor<'_>) -> bool {
        self.session_id == visitor.session_id
            || matches!((self.client_id.as_deref(), visitor.client_id), (Some(a), Some(b)) if a == b)
    }
}

/// A live lease on a pool number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveLease {
    pub holder: Holder,
    pub started_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One pool number as the pick rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberState {
    /// The current lease, if it is still live (`expires_at_ms > now`).
    pub live: Option<LiveLease>,
    /// The holder of the most recent ended lease, if any.
    pub last_holder: Option<Holder>,
    /// When the number may be leased to someone new (0 if never leased).
    pub cooldown_until_ms: i64,
}

/// Where a number is in its life at `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Live,
    CoolingDown,
    Free,
}

impl NumberState {
    pub fn phase(&self, now_ms: i64) -> Phase {
        if self.live.as_ref().is_some_and(|l| is_live(l.expires_at_ms, now_ms)) {
            Phase::Live
        } else if self.cooldown_until_ms > now_ms {
            Phase::CoolingDown
        } else {
            Phase::Free
        }
    }
}

/// A lease is live strictly before its expiry instant.
pub fn is_live(expires_at_ms: i64, now_ms: i64) -> bool {
    now_ms < expires_at_ms
}

/// When a lease taken or renewed at `now_ms` expires.
pub fn expiry(now_ms: i64, hold_secs: u32) -> i64 {
    now_ms + i64::from(hold_secs) * 1000
}

/// When a number whose lease ended at `ended_at_ms` may be leased again.
pub fn cooldown_end(ended_at_ms: i64, cooldown_secs: u32) -> i64 {
    ended_at_ms + i64::from(cooldown_secs) * 1000
}

/// The pick for one visitor, by index into the pool's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The visitor holds this number now: renew it.
    Renew(usize),
    /// The visitor held this number last and nobody has had it since (it may
    /// still be cooling down): give it back.
    Return(usize),
    /// A free number whose cooldown ended longest ago.
    Fresh(usize),
    /// Every number is live or cooling down for someone else.
    Exhausted,
}

/// Picks a number for `visitor`. Order of preference:
/// 1. a number the visitor holds live (same session first, then same client id);
/// 2. a number the visitor held last that nobody else has held since;
/// 3. the free number whose cooldown ended longest ago (ties: lowest index,
///    so a pool's configured order breaks them and the result is stable).
pub fn pick(numbers: &[NumberState], visitor: &Visitor<'_>, now_ms: i64) -> Pick {
    let live_of = |i: &usize| numbers[*i].phase(now_ms) == Phase::Live;
    let held = |by_session: bool| {
        (0..numbers.len()).filter(live_of).find(|&i| {
            let h = &numbers[i].live.as_ref().expect("live numbers have a lease").holder;
            if by_session { h.session_id == visitor.session_id } else { h.is(visitor) }
        })
    };
    if let Some(i) = held(true).or_else(|| held(false)) {
        return Pick::Renew(i);
    }
    if let Some(i) = (0..numbers.len())
        .filter(|i| !live_of(i))
        .find(|&i| numbers[i].last_holder.as_ref().is_some_and(|h| h.is(visitor)))
    {
        return Pick::Return(i);
    }
    (0..numbers.len())
        .filter(|&i| numbers[i].phase(now_ms) == Phase::Free)
        .min_by_key(|&i| (numbers[i].cooldown_until_ms, i))
        .map_or(Pick::Exhausted, Pick::Fresh)
}

/// What to do when a pool has no number for a new visitor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExhaustionPolicy {
    /// Show the site's overflow number, marked as overflow (attribution knows
    /// the call came from "some visitor of this pool").
    #[default]
    Overflow,
    /// Keep the site's original number.
    Original,
    /// Take over the live lease that was renewed least recently: the visitor
    /// most likely to have left. Its holder loses the number.
    TakeOverOldest,
}

impl ExhaustionPolicy {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExhaustionPolicy::Overflow => "overflow",
            ExhaustionPolicy::Original => "original",
            ExhaustionPolicy::TakeOverOldest => "take-over-oldest",
        }
    }
}

/// The outcome of applying an exhaustion policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhaustion {
    Overflow,
    Original,
    /// Take over the lease on the number at this index.
    TakeOver(usize),
}

/// Applies `policy`. "Oldest" means the lease renewed least recently
/// (earliest expiry; ties by earliest start, then index): a lease whose page
/// is still open keeps being renewed, so the earliest expiry is the visitor
/// most likely gone. When nothing is live (everything is cooling down) there
/// is nothing to take over, and the visitor keeps the original number.
pub fn on_exhaustion(policy: ExhaustionPolicy, numbers: &[NumberState], now_ms: i64) -> Exhaustion {
    match policy {
        ExhaustionPolicy::Overflow => Exhaustion::Overflow,
        ExhaustionPolicy::Original => Exhaustion::Original,
        ExhaustionPolicy::TakeOverOldest => numbers
            .iter()
            .enumerate()
            .filter(|(_, n)| n.phase(now_ms) == Phase::Live)
            .min_by_key(|(i, n)| {
                let l = n.live.as_ref().expect("live numbers have a lease");
                (l.expires_at_ms, l.started_at_ms, *i)
            })
            .map_or(Exhaustion::Original, |(i, _)| Exhaustion::TakeOver(i)),
    }
}

/// Headroom over the numbers busy on average in the peak hour (DESIGN.md's
/// 1.3).
pub const SIZING_MARGIN: f64 = 1.3;

/// What a pool's size is computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizingInputs {
    /// Sessions that asked the pool for a number for the first time, in the
    /// busiest hour.
    pub peak_new_sessions_per_hour: u32,
    /// How long a lease lasts after it is taken or last renewed.
    pub hold_secs: u32,
    /// How long a number whose lease ended waits before someone else gets it.
    pub cooldown_secs: u32,
    /// Mean time a session keeps renewing its number, from the lease to the
    /// last heartbeat (0 when visitors leave at once, or nothing beats).
    pub mean_renewed_secs: f64,
    /// Share of the sessions that take a number, 0..=1: 1.0, or the click
    /// rate behind a show-number button.
    pub reveal_share: f64,
}

/// A pool size and how it was reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizing {
    /// How long one session keeps a number from everybody else: renewed
    /// time + hold + cooldown.
    pub occupancy_secs: f64,
    /// Numbers taken on average at the peak: sessions per hour × share ×
    /// occupancy hours (Little's law).
    pub busy_at_peak: f64,
    /// `busy_at_peak` × [`SIZING_MARGIN`], rounded up.
    pub recommended: u32,
}

/// Pool size for a traffic peak: peak new sessions per hour × (mean renewed
/// time + hold + cooldown) in minutes ÷ 60 × 1.3, rounded up.
///
/// DESIGN.md's rule of thumb counts the hold alone. A session keeps its
/// number for the hold after its *last* renewal, so a visitor who stays
/// holds it that much longer; and the number then cools down before anyone
/// else may have it. Both take the number from the next visitor as surely
/// as the hold does. A returning visitor who gets their own number back
/// during its cooldown costs nothing extra, which the formula ignores (it
/// errs towards a larger pool). The margin covers the spread of arrivals
/// within the hour; the peak of a longer window is itself a high draw.
pub fn pool_sizing(inputs: &SizingInputs) -> Sizing {
    let share = inputs.reveal_share.clamp(0.0, 1.0);
    let renewed = if inputs.mean_renewed_secs.is_finite() { inputs.mean_renewed_secs.max(0.0) } else { 0.0 };
    let occupancy_secs = renewed + f64::from(inputs.hold_secs) + f64::from(inputs.cooldown_secs);
    let busy_at_peak = f64::from(inputs.peak_new_sessions_per_hour) * share * occupancy_secs / 3600.0;
    let n = busy_at_peak * SIZING_MARGIN;
    // Float noise must not turn an exact 13.0 into 14.
    let rounded = (n * 1e9).round() / 1e9;
    Sizing { occupancy_secs, busy_at_peak, recommended: rounded.ceil() as u32 }
}

/// Share of pool numbers live now, 0..=1 (0 for an empty pool).
pub fn utilisation(live: usize, pool_size: usize) -> f64 {
    if pool_size == 0 { 0.0 } else { live as f64 / pool_size as f64 }
}

/// The dashboard warns from this utilisation on.
pub const UTILISATION_WARNING: f64 = 0.75;
