//! Fair shares of a pool: address groups, caps, flooding and which live
//! number a newcomer may take over.

use std::collections::HashMap;
use std::net::IpAddr;

use ringsource_core::lease::*;

const NOW: i64 = 1_000_000;

fn groups(ip: &str) -> Groups {
    Groups::of(ip.parse::<IpAddr>().unwrap())
}

fn live(session: &str, started: i64) -> NumberState {
    NumberState {
        live: Some(LiveLease {
            holder: Holder { session_id: session.into(), client_id: None },
            started_at_ms: started,
            expires_at_ms: NOW + 60_000 + started,
        }),
        last_holder: None,
        cooldown_until_ms: 0,
    }
}

/// A pool of `holders.len()` numbers, each live for the holder at that
/// address (`None`: a lease of unknown origin).
fn pool(holders: &[Option<&str>]) -> (Vec<NumberState>, Vec<Option<Groups>>) {
    let states = (0..holders.len()).map(|i| live(&format!("s{i}"), i as i64)).collect();
    (states, holders.iter().map(|h| h.map(groups)).collect())
}

/// Demand per group, as counts of fresh asks.
#[derive(Default)]
struct Demand(HashMap<(Level, u128), f64>);

impl Demand {
    /// `times` fresh asks from `ip`, counted in all its groups.
    fn ask(mut self, ip: &str, times: u32) -> Self {
        let g = groups(ip);
        for level in Level::ALL {
            *self.0.entry((level, g.key(level))).or_default() += f64::from(times);
        }
        self
    }

    fn of(&self, level: Level, key: u128) -> f64 {
        self.0.get(&(level, key)).copied().unwrap_or(0.0)
    }
}

const SHARES: Shares = Shares { client: 0.2, network: 0.4, provider: 0.6 };

/// The rules over a pool, with the live numbers per group counted from it.
struct Rules<'a> {
    holders: &'a [Option<Groups>],
    demand: &'a dyn Fn(Level, u128) -> f64,
    held: HashMap<(Level, u128), u32>,
}

fn fairness<'a>(
    states: &[NumberState],
    holders: &'a [Option<Groups>],
    demand: &'a dyn Fn(Level, u128) -> f64,
) -> Rules<'a> {
    Rules { holders, demand, held: held_by_group(states, holders, NOW) }
}

impl Rules<'_> {
    fn with<R>(&self, f: impl FnOnce(&Fairness<'_>) -> R) -> R {
        let held = |level, key| self.held.get(&(level, key)).copied().unwrap_or(0);
        let size = self.holders.len();
        f(&Fairness {
            holders: self.holders,
            caps: SHARES.caps(size),
            flood_above: 2.0 * size as f64,
            demand: self.demand,
            held: &held,
        })
    }

    fn preempt(&self, states: &[NumberState], newcomer: &Groups, now_ms: i64) -> Option<usize> {
        self.with(|r| r.preempt(states, newcomer, now_ms))
    }

    fn capped(&self, newcomer: &Groups) -> bool {
        self.with(|r| r.capped(newcomer))
    }

    fn take_over_oldest(&self, states: &[NumberState], newcomer: &Groups, capped: bool, now_ms: i64) -> Option<usize> {
        self.with(|r| r.take_over_oldest(states, newcomer, capped, now_ms))
    }

    fn flooding(&self, groups: &Groups, level: Level) -> bool {
        self.with(|r| r.flooding(groups, level))
    }

    fn louder(&self, a: &Groups, b: &Groups, level: Level) -> bool {
        self.with(|r| r.louder(a, b, level))
    }
}

#[test]
fn addresses_group_by_client_network_and_provider() {
    let a = groups("198.51.100.7");
    assert_eq!(a.key(Level::Client), groups("198.51.100.7").key(Level::Client));
    assert_ne!(a.key(Level::Client), groups("198.51.100.8").key(Level::Client));
    assert_eq!(a.key(Level::Network), groups("198.51.100.200").key(Level::Network));
    assert_ne!(a.key(Level::Network), groups("198.51.101.7").key(Level::Network));
    assert_eq!(a.key(Level::Provider), groups("198.51.255.1").key(Level::Provider));
    assert_ne!(a.key(Level::Provider), groups("198.52.100.7").key(Level::Provider));
    // An IPv4-mapped IPv6 address is its IPv4 address.
    assert_eq!(groups("::ffff:198.51.100.7"), a);
    // IPv6: a client is a /64, a network a /48, a provider a /32.
    let b = groups("2001:db8:1:2:aaaa::1");
    assert_eq!(b.key(Level::Client), groups("2001:db8:1:2:ffff:ffff:ffff:ffff").key(Level::Client));
    assert_ne!(b.key(Level::Client), groups("2001:db8:1:3::1").key(Level::Client));
    assert_eq!(b.key(Level::Network), groups("2001:db8:1:ffff::1").key(Level::Network));
    assert_ne!(b.key(Level::Network), groups("2001:db8:2::1").key(Level::Network));
    assert_eq!(b.key(Level::Provider), groups("2001:db8:ffff::1").key(Level::Provider));
    assert_ne!(b.key(Level::Provider), groups("2001:db9::1").key(Level::Provider));
    // No IPv6 group is an IPv4 one, at any level.
    for level in Level::ALL {
        assert_ne!(groups("::").key(level), groups("0.0.0.0").key(level), "{level:?}");
        assert_ne!(groups("::c633:6407").key(level), a.key(level), "{level:?}");
    }
}

#[test]
fn caps_are_a_share_of_the_pool_and_at_least_one() {
    assert_eq!(SHARES.caps(5), [1, 2, 3]);
    assert_eq!(SHARES.caps(3), [1, 1, 1]);
    assert_eq!(SHARES.caps(1), [1, 1, 1]);
    assert_eq!(SHARES.caps(20), [4, 8, 12]);
    // 10 × 0.3 is 2.9999999999999996 in floating point: still 3.
    assert_eq!(Shares { client: 0.3, network: 0.3, provider: 0.3 }.caps(10), [3, 3, 3]);
}

#[test]
fn demand_halves_every_half_life() {
    assert_eq!(decayed(8.0, 0, 0, 1000), 8.0);
    assert!((decayed(8.0, 0, 1000, 1000) - 4.0).abs() < 1e-9);
    assert!((decayed(8.0, 0, 3000, 1000) - 1.0).abs() < 1e-9);
    // A clock that steps back does not grow it.
    assert_eq!(decayed(8.0, 1000, 0, 1000), 8.0);
}

#[test]
fn one_address_holding_the_pool_gives_back_all_but_its_share() {
    let attacker = "203.0.113.9";
    let (mut states, mut holders) = pool(&[Some(attacker); 5]);
    // Five asks are not a flood of a 5-number pool, but five numbers are
    // over a client's share of one.
    let demand = Demand::default().ask(attacker, 5);
    let d = |l, k| demand.of(l, k);
    let mut taken = 0;
    for visitor in ["192.0.2.1", "192.0.2.2", "198.51.100.3", "2001:db8::1", "2001:db8:5::1"] {
        let rules = fairness(&states, &holders, &d);
        let Some(i) = rules.preempt(&states, &groups(visitor), NOW) else { break };
        assert_eq!(holders[i], Some(groups(attacker)));
        states[i] = live(visitor, NOW);
        holders[i] = Some(groups(visitor));
        taken += 1;
    }
    // 192.0.2.1 and .2 share a network: the second is still within its
    // network's share of two, so it takes one too.
    assert_eq!(taken, 4, "{holders:?}");
    assert_eq!(holders.iter().filter(|h| **h == Some(groups(attacker))).count(), 1);
}

#[test]
fn the_oldest_lease_of_the_group_furthest_over_its_share_goes_first() {
    let (states, holders) =
        pool(&[Some("203.0.113.9"), Some("198.51.100.1"), Some("203.0.113.9"), Some("203.0.113.9")]);
    let demand = Demand::default();
    let d = |l, k| demand.of(l, k);
    // Number 0 started first, so it was renewed least recently.
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("192.0.2.1"), NOW), Some(0));
}

#[test]
fn a_flooding_group_loses_even_its_last_number_and_takes_none() {
    let (states, holders) =
        pool(&[Some("203.0.113.9"), Some("192.0.2.1"), Some("192.0.2.2"), Some("198.51.100.1"), Some("2001:db8::1")]);
    let demand = Demand::default().ask("203.0.113.9", 40);
    let d = |l, k| demand.of(l, k);
    let rules = fairness(&states, &holders, &d);
    // A quiet newcomer takes the flooding client's only number.
    assert_eq!(rules.preempt(&states, &groups("100.64.0.1"), NOW), Some(0));
    // The flooder takes nothing, though the 192.0.2.0/24 network is at its
    // share of two.
    assert_eq!(rules.preempt(&states, &groups("203.0.113.9"), NOW), None);
    // A quiet client of the flooder's network is weighed against the flooder
    // as a client, and takes its number.
    assert_eq!(rules.preempt(&states, &groups("203.0.113.10"), NOW), Some(0));
    // Once the flooder's number is gone, that client is weighed against the
    // other holders as a network (and a provider), which floods: it takes
    // nothing.
    let (mut states, mut holders) = (states, holders);
    states[0] = live("s-new", NOW);
    holders[0] = Some(groups("100.64.0.1"));
    let rules = fairness(&states, &holders, &d);
    assert_eq!(rules.preempt(&states, &groups("203.0.113.10"), NOW), None);
}

#[test]
fn quiet_holders_within_their_share_keep_their_numbers() {
    let (states, holders) =
        pool(&[Some("192.0.2.1"), Some("198.51.100.1"), Some("203.0.113.1"), Some("100.64.0.1"), Some("2001:db8::1")]);
    let demand = Demand::default().ask("192.0.2.1", 1).ask("198.51.100.1", 1);
    let d = |l, k| demand.of(l, k);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("192.0.2.77"), NOW), None);
    // The same visitor never takes over its own address's number.
    let (states, holders) = pool(&[Some("192.0.2.1"); 3]);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("192.0.2.1"), NOW), None);
}

#[test]
fn leases_of_unknown_origin_are_never_taken_over() {
    let (states, holders) = pool(&[None, None, None]);
    let demand = Demand::default();
    let d = |l, k| demand.of(l, k);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("192.0.2.1"), NOW), None);
}

#[test]
fn a_newcomer_at_its_own_share_takes_over_only_from_a_flood() {
    // Pool of 5: network share 2. 192.0.2.0/24 holds two already.
    let (states, holders) =
        pool(&[Some("192.0.2.1"), Some("192.0.2.2"), Some("203.0.113.9"), Some("203.0.113.9"), Some("203.0.113.9")]);
    let quiet = Demand::default().ask("203.0.113.9", 3);
    let d = |l, k| quiet.of(l, k);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("192.0.2.3"), NOW), None);
    let flood = Demand::default().ask("203.0.113.9", 30);
    let d = |l, k| flood.of(l, k);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("192.0.2.3"), NOW), Some(2));
}

#[test]
fn a_flooding_group_gets_no_free_number_past_its_share() {
    let mut states = vec![NumberState { live: None, last_holder: None, cooldown_until_ms: 0 }; 5];
    let mut holders = vec![None; 5];
    let flooder = groups("203.0.113.9");
    // Eleven fresh asks of a 5-number pool: more than twice its size.
    let demand = Demand::default().ask("203.0.113.9", 11);
    let d = |l, k| demand.of(l, k);
    assert!(!fairness(&states, &holders, &d).capped(&flooder), "below its share of one");
    states[0] = live("s0", 0);
    holders[0] = Some(flooder);
    assert!(fairness(&states, &holders, &d).capped(&flooder));
    // Another address of its network: the network's share is two.
    assert!(!fairness(&states, &holders, &d).capped(&groups("203.0.113.10")));
    // Not flooding: free numbers are anybody's.
    let demand = Demand::default().ask("203.0.113.9", 10);
    let d = |l, k| demand.of(l, k);
    assert!(!fairness(&states, &holders, &d).capped(&flooder));
}

#[test]
fn the_take_over_policy_spares_the_groups_a_flood_is_louder_than() {
    let (states, holders) =
        pool(&[Some("192.0.2.1"), Some("203.0.113.9"), Some("203.0.113.9"), Some("203.0.113.10"), None]);
    let demand = Demand::default().ask("203.0.113.9", 40);
    let d = |l, k| demand.of(l, k);
    let rules = fairness(&states, &holders, &d);
    let flooder = groups("203.0.113.9");
    assert!(rules.flooding(&flooder, Level::Client));
    // Its network floods with it: 203.0.113.10 is quiet as a client only.
    assert!(rules.flooding(&groups("203.0.113.10"), Level::Network));
    assert!(!rules.flooding(&groups("203.0.113.10"), Level::Client));
    assert!(rules.louder(&flooder, &groups("192.0.2.1"), Level::Provider));
    assert!(!rules.louder(&groups("192.0.2.1"), &flooder, Level::Provider));
    // The flooder may take its own numbers and the unknown holder's, not
    // 192.0.2.1's nor its quiet neighbour 203.0.113.10's: number 1 started
    // before number 2 and number 4.
    assert_eq!(rules.take_over_oldest(&states, &flooder, false, NOW), Some(1));
    let (only_others, others) = pool(&[Some("192.0.2.1"), Some("203.0.113.10")]);
    assert_eq!(fairness(&only_others, &others, &d).take_over_oldest(&only_others, &flooder, false, NOW), None);
    // Capped, it takes only its own.
    assert_eq!(rules.take_over_oldest(&states, &flooder, true, NOW), Some(1));
    assert_eq!(rules.take_over_oldest(&states, &groups("198.51.100.1"), true, NOW), None);
    // A quiet visitor takes the oldest of all, as the policy always did.
    assert_eq!(rules.take_over_oldest(&states, &groups("198.51.100.1"), false, NOW), Some(0));
}

#[test]
fn many_visitors_of_one_network_are_not_louder_than_an_attack() {
    // Twelve visitors of 192.0.2.0/24 asked (more than twice the pool), the
    // attack from 198.51.100.0/24 two hundred times.
    let (states, holders) =
        pool(&[Some("192.0.2.1"), Some("192.0.2.2"), Some("198.51.100.1"), Some("198.51.100.2"), Some("198.51.100.3")]);
    let mut demand = Demand::default().ask("198.51.100.1", 70).ask("198.51.100.2", 70).ask("198.51.100.3", 60);
    for i in 1..=12 {
        demand = demand.ask(&format!("192.0.2.{i}"), 1);
    }
    let d = |l, k| demand.of(l, k);
    let rules = fairness(&states, &holders, &d);
    let visitor = groups("192.0.2.13");
    assert!(rules.flooding(&visitor, Level::Network), "the visitors' network is busy");
    // Still they take the attack's numbers, oldest first…
    assert_eq!(rules.preempt(&states, &visitor, NOW), Some(2));
    // …and the attack takes none of theirs, by either rule: a new address of
    // the attack may only take from the louder addresses of its own network.
    assert_eq!(rules.preempt(&states, &groups("198.51.100.4"), NOW), Some(2));
    assert_eq!(rules.take_over_oldest(&states, &groups("198.51.100.4"), false, NOW), Some(2));
    let (theirs, their_holders) = pool(&[Some("192.0.2.1"), Some("192.0.2.2"), Some("192.0.2.3")]);
    let rules = fairness(&theirs, &their_holders, &d);
    assert_eq!(rules.preempt(&theirs, &groups("198.51.100.4"), NOW), None, "over its share, but quieter");
    assert_eq!(rules.take_over_oldest(&theirs, &groups("198.51.100.4"), false, NOW), None);
}

#[test]
fn heartbeats_alone_renew_up_to_a_limit_after_the_last_page() {
    // Hold 900 s, limit 1800 s after the last visit or page view at 0.
    assert_eq!(heartbeat_expiry(60_000, 900, 0, 1800), 960_000);
    assert_eq!(heartbeat_expiry(1_200_000, 900, 0, 1800), 1_800_000);
    assert_eq!(heartbeat_expiry(1_900_000, 900, 0, 1800), 1_800_000);
    // A page view moves the limit.
    assert_eq!(heartbeat_expiry(1_900_000, 900, 1_500_000, 1800), 2_800_000);
}

#[test]
fn a_group_over_its_share_keeps_it_from_a_group_that_asked_more() {
    // 192.0.2.0/24 holds three numbers of five, one over its share of two.
    let (states, holders) =
        pool(&[Some("192.0.2.1"), Some("192.0.2.2"), Some("192.0.2.3"), Some("198.51.100.1"), Some("100.64.0.1")]);
    let quieter = Demand::default().ask("192.0.2.1", 1).ask("192.0.2.2", 1).ask("192.0.2.3", 1).ask("203.0.113.9", 1);
    let d = |l, k| quieter.of(l, k);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("203.0.113.9"), NOW), Some(0));
    // A newcomer whose own network and provider asked more than 192.0.2.0/24
    // did takes nothing from it.
    let busier = Demand::default()
        .ask("192.0.2.1", 1)
        .ask("192.0.2.2", 1)
        .ask("192.0.2.3", 1)
        .ask("203.0.113.9", 1)
        .ask("203.0.113.10", 1)
        .ask("203.0.113.11", 1)
        .ask("203.0.113.12", 1);
    let d = |l, k| busier.of(l, k);
    assert_eq!(fairness(&states, &holders, &d).preempt(&states, &groups("203.0.113.9"), NOW), None);
}
