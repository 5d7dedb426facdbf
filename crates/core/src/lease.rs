//! Pure lease rules for dynamic number pools.
//!
//! The collector keeps the state in a database; these functions decide. Time
//! is always passed in (milliseconds since the Unix epoch): core has no clock.
//!
//! The life of a pool number: *free* → leased (*live* until `expires_at`,
//! renewed by heartbeats) → released or expired → *cooling down* until
//! `cooldown_until` → free again. Cooldown exists so that a late caller who
//! dialled the number they saw is not attributed to the next visitor.

use std::cmp::Reverse;

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

/// How finely request addresses are grouped, finest first. A person is one
/// IPv4 address or one IPv6 /64 (a home or phone gets a whole /64); a network
/// is an IPv4 /24 or an IPv6 /48 (one site or subscriber); a provider is an
/// IPv4 /16 or an IPv6 /32 (one allocation). Whoever drains a pool from many
/// addresses draws them from a few networks or providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Client = 0,
    Network = 1,
    Provider = 2,
}

impl Level {
    /// Finest first.
    pub const ALL: [Level; 3] = [Level::Client, Level::Network, Level::Provider];

    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Client => "client",
            Level::Network => "network",
            Level::Provider => "provider",
        }
    }
}

/// The groups an address belongs to, one per [`Level`], each as a 128-bit
/// key. IPv4 keys live in the IPv4-mapped range (`::ffff:a.b.c.d`), so an
/// IPv4 group never equals an IPv6 one, and a mapped IPv6 address is its IPv4
/// address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Groups([u128; 3]);

impl Groups {
    pub fn of(ip: std::net::IpAddr) -> Self {
        match ip.to_canonical() {
            std::net::IpAddr::V4(v4) => {
                let key = (0xffff_u128 << 32) | u128::from(u32::from(v4));
                Self([key, key & !0xff, key & !0xffff])
            }
            std::net::IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = |len: u32| bits & !(u128::MAX >> len);
                Self([prefix(64), prefix(48), prefix(32)])
            }
        }
    }

    pub fn key(&self, level: Level) -> u128 {
        self.0[level as usize]
    }
}

/// Shares of a pool, per [`Level`]: a group may keep at most this fraction
/// of the numbers while others want them (at least one number each).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shares {
    pub client: f64,
    pub network: f64,
    pub provider: f64,
}

impl Shares {
    /// Numbers per group at each level for a pool of `pool_size`:
    /// ⌊size × share⌋, at least 1.
    pub fn caps(&self, pool_size: usize) -> [u32; 3] {
        let cap = |share: f64| {
            let n = (pool_size as f64 * share.clamp(0.0, 1.0) + 1e-9).floor();
            (n as u32).max(1)
        };
        [cap(self.client), cap(self.network), cap(self.provider)]
    }
}

/// A count of events that halves every `half_life_ms` (an exponentially
/// decaying count): the value at `now_ms` of `value` last set at `at_ms`.
pub fn decayed(value: f64, at_ms: i64, now_ms: i64, half_life_ms: i64) -> f64 {
    let elapsed = (now_ms - at_ms).max(0) as f64;
    value * (-elapsed / half_life_ms.max(1) as f64).exp2()
}

/// How much more a group must have asked than another to count as the
/// louder of the two (besides flooding).
pub const LOUDER: f64 = 4.0;

/// The fair-share rules of one pool, over its numbers' current holders.
///
/// *Demand* is how many fresh numbers (not renewals) a group asked this pool
/// for lately, as a count that halves every hold time. A group is
/// *flooding* when its demand exceeds twice the pool's size: the sizing
/// formula gives a whole site's traffic fewer new sessions than the pool has
/// numbers per hold time (a number is busy for the hold, the renewed time
/// and the cooldown), so one group at twice that is more than its visitors.
/// It is *louder* than another group when it floods and asked [`LOUDER`]
/// times as much: an attack is louder than the networks of the visitors it
/// crowds out, however many of those share a network.
///
/// - A group may hold more than its share while nobody else wants the
///   numbers (an idle number helps no one), except a flooding client (an
///   address, an IPv6 /64): it gets no free number past its share.
/// - When a newcomer is refused (the pool is exhausted, or it is capped),
///   it may take over a live number from a holder it does not share a client
///   with, if at a level where they differ the holder's group is louder
///   than the newcomer's; or if the holder's group holds more than its share
///   (and asked at least as much as the newcomer's) while the newcomer's
///   groups are within theirs and not louder. Numbers move from loud groups
///   to quiet ones and never back.
/// - A pool's take-over policy takes no number from a group the newcomer is
///   louder than, and a capped newcomer takes over only its own.
///
/// Comparisons use only the levels where the two differ: a newcomer and a
/// holder in one provider are weighed as networks, and as clients.
pub struct Fairness<'a> {
    /// Parallel to the pool's numbers: the groups of each live lease's
    /// holder, `None` when unknown (leases from before a restart), which the
    /// fair-share rules never take over.
    pub holders: &'a [Option<Groups>],
    /// [`Shares::caps`] of this pool.
    pub caps: [u32; 3],
    /// Demand above this is flooding: twice the pool's size.
    pub flood_above: f64,
    /// The demand of a group now.
    pub demand: &'a dyn Fn(Level, u128) -> f64,
    /// The live numbers a group holds now ([`held_by_group`] counts them
    /// from `holders`; a caller that keeps the counts up to date passes its own).
    pub held: &'a dyn Fn(Level, u128) -> u32,
}

/// Live numbers per group, counted from a pool's holders.
pub fn held_by_group(
    numbers: &[NumberState],
    holders: &[Option<Groups>],
    now_ms: i64,
) -> std::collections::HashMap<(Level, u128), u32> {
    let mut held = std::collections::HashMap::new();
    for (state, holder) in numbers.iter().zip(holders) {
        if let (Phase::Live, Some(groups)) = (state.phase(now_ms), holder) {
            for level in Level::ALL {
                *held.entry((level, groups.key(level))).or_insert(0) += 1;
            }
        }
    }
    held
}

impl Fairness<'_> {
    fn count(&self, level: Level, groups: &Groups) -> u32 {
        (self.held)(level, groups.key(level))
    }

    fn demand_of(&self, groups: &Groups, level: Level) -> f64 {
        (self.demand)(level, groups.key(level))
    }

    /// Whether `groups`' group at `level` is flooding the pool.
    pub fn flooding(&self, groups: &Groups, level: Level) -> bool {
        self.demand_of(groups, level) > self.flood_above
    }

    /// Whether `a`'s group at `level` is louder than `b`'s.
    pub fn louder(&self, a: &Groups, b: &Groups, level: Level) -> bool {
        let da = self.demand_of(a, level);
        da > self.flood_above && da > LOUDER * self.demand_of(b, level).max(1.0)
    }

    /// The levels at which `a` and `b` are in different groups (groups
    /// nest, so these are the finest ones).
    fn differ(a: &Groups, b: &Groups) -> impl Iterator<Item = Level> {
        let (a, b) = (*a, *b);
        Level::ALL.into_iter().filter(move |&level| a.key(level) != b.key(level))
    }

    /// Whether `newcomer` is refused a free number: its client floods the
    /// pool and holds its share.
    pub fn capped(&self, newcomer: &Groups) -> bool {
        let level = Level::Client;
        self.flooding(newcomer, level) && self.count(level, newcomer) >= self.caps[level as usize]
    }

    /// The live number `newcomer` may take over, if any: from the holder
    /// that is louder at the most levels first, then from the group furthest
    /// over its share; among those, the lease renewed least recently (as
    /// [`ExhaustionPolicy::TakeOverOldest`] picks).
    pub fn preempt(&self, numbers: &[NumberState], newcomer: &Groups, now_ms: i64) -> Option<usize> {
        let count = |level: Level, groups: &Groups| self.count(level, groups);
        let cap = |level: Level| self.caps[level as usize];
        let candidates = numbers.iter().zip(self.holders).enumerate().filter_map(|(i, (state, holder))| {
            let (Some(lease), Some(holder)) = (state.live.as_ref(), holder) else { return None };
            let differ: Vec<Level> = Self::differ(holder, newcomer).collect();
            if state.phase(now_ms) != Phase::Live || differ.is_empty() {
                return None;
            }
            let louder = differ.iter().filter(|&&level| self.louder(holder, newcomer, level)).count();
            // Over its share, at a level where it asked at least as much as
            // the newcomer's group: numbers do not move back and forth
            // between two groups of real visitors.
            let excess = differ
                .iter()
                .filter(|&&level| self.demand_of(holder, level) >= self.demand_of(newcomer, level))
                .map(|&level| i64::from(count(level, holder)) - i64::from(cap(level)))
                .max()
                .unwrap_or(0);
            let entitled = differ
                .iter()
                .all(|&level| count(level, newcomer) < cap(level) && !self.louder(newcomer, holder, level));
            let eligible = louder > 0 || (excess > 0 && entitled);
            // Ties: the configured order of the pool.
            let oldest = Reverse((lease.expires_at_ms, lease.started_at_ms, i));
            eligible.then_some(((louder, excess, oldest), i))
        });
        candidates.max_by_key(|(rank, _)| *rank).map(|(_, i)| i)
    }

    /// The number [`ExhaustionPolicy::TakeOverOldest`] takes for
    /// `newcomer`: the live lease renewed least recently among those it may
    /// take (its own client's only, when `capped`; otherwise any but those
    /// of groups it is louder than).
    pub fn take_over_oldest(
        &self,
        numbers: &[NumberState],
        newcomer: &Groups,
        capped: bool,
        now_ms: i64,
    ) -> Option<usize> {
        numbers
            .iter()
            .zip(self.holders)
            .enumerate()
            .filter(|(_, (state, holder))| {
                state.phase(now_ms) == Phase::Live
                    && match holder {
                        Some(h) if capped => h.key(Level::Client) == newcomer.key(Level::Client),
                        Some(h) => Self::differ(h, newcomer).all(|level| !self.louder(newcomer, h, level)),
                        None => !capped,
                    }
            })
            .filter_map(|(i, (state, _))| state.live.as_ref().map(|l| ((l.expires_at_ms, l.started_at_ms, i), i)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, i)| i)
    }
}

/// When a lease renewed at `now_ms` by a heartbeat alone expires: a hold
/// from now, but never later than `heartbeat_only_secs` after the session's
/// last visit or page view (`active_ms`). The browser beats only while its
/// page is visible, but the collector cannot see that; a session that sends
/// heartbeats and nothing else for that long lets its number go, and gets it
/// back on its next visit if nobody took it meanwhile.
pub fn heartbeat_expiry(now_ms: i64, hold_secs: u32, active_ms: i64, heartbeat_only_secs: u32) -> i64 {
    expiry(now_ms, hold_secs).min(active_ms + i64::from(heartbeat_only_secs) * 1000)
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
