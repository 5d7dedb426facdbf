//! Draining a pool over HTTP, behind a trusted proxy (the loopback peer) that
//! appends each client's address to `X-Forwarded-For`: an attacker from one
//! address or from thousands, sending a browser's, a headless browser's or
//! a command-line client's User-Agent and holding its numbers with
//! heartbeats, while real visitors from other addresses keep arriving. The
//! attacker keeps no more than its share once others want numbers, and the
//! real visitors get numbers while the attack goes on.
//!
//! Every test runs on both backends (on PostgreSQL: one instance, whose
//! memory holds the fair shares' demand as the SQLite writer's does).
//!
//! Run with `--nocapture` to see each attack's figures.

use std::collections::HashSet;
use std::sync::Arc;

use crate::common::*;
use ringsource_collector::clock::{Clock, ManualClock};
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000_000;
const POOL_SIZE: usize = 5;
/// The default client share (0.2) of 5 numbers.
const CLIENT_SHARE: usize = 1;
/// The default network share (0.4) of 5 numbers.
const NETWORK_SHARE: usize = 2;

const HEADLESS_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
const CLI_UA: &str = "curl/8.5.0";

/// A 5-number pool with the default hold (15 min), heartbeat (1 min),
/// cooldown, shares and rate limits, behind a trusted proxy.
fn start_pool(backend: Backend, test: &str, clock: Arc<ManualClock>) -> Option<Harness> {
    start_with_toml_on(
        backend,
        test,
        |db| {
            format!(
                r#"
[server]
listen = "127.0.0.1:0"
database = "{db}"
bundle_dir = "{dir}/pkg"
www_dir = "{dir}/www"
wal_preallocate_mib = 1
trust_forwarded_for = true

[[sites]]
id = "shop"
allowed_origins = ["https://shop.example"]
region = "RU"
originals = ["8 (495) 123-45-67"]
overflow_number = "+7 495 700-00-99"

[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-02-01", "+7 495 700-02-02", "+7 495 700-02-03", "+7 495 700-02-04", "+7 495 700-02-05"]
rules = [{{ channel = "Paid Search" }}]
"#,
                db = db.display(),
                dir = db.parent().unwrap().display(),
            )
        },
        clock,
    )
}

/// Whoever drains the pool: its User-Agent, and the address of its n-th visit.
struct Attack {
    name: &'static str,
    user_agent: &'static str,
    address: fn(usize) -> String,
    /// Visits before the first real visitor comes, and between two of them.
    opening: usize,
    per_round: usize,
}

/// What an attack left.
#[derive(Debug)]
struct Figures {
    /// Real visitors' leases that something took over (the attack must not).
    real_taken_over: usize,
    /// Pool numbers the attacker held when the last real visitor had come.
    attacker_held: usize,
    /// The most the attacker held right after a real visitor was answered.
    attacker_held_most: usize,
    real_served: usize,
    real_visitors: usize,
    attack_visits: usize,
    rate_limited: usize,
}

struct Drain {
    h: Harness,
    clock: Arc<ManualClock>,
    attacker: Vec<(String, String)>,
    attack_visits: usize,
    rate_limited: usize,
}

impl Drain {
    fn new(backend: Backend, test: &str) -> Option<Drain> {
        let clock = Arc::new(ManualClock::new(T0));
        let h = start_pool(backend, test, clock.clone())?;
        Some(Drain { h, clock, attacker: Vec::new(), attack_visits: 0, rate_limited: 0 })
    }

    fn visit(&self, address: &str, user_agent: &str, session: Option<&str>) -> (u16, Value) {
        let headers = [("x-forwarded-for", address), ("user-agent", user_agent)];
        self.h.post_with("/v1/sites/shop/visits", &visit_body(session, paid()), &headers)
    }

    /// The attacker's visits, then a heartbeat for each session it holds
    /// a number with; a session whose number was taken visits again.
    fn attack(&mut self, attack: &Attack, visits: usize) {
        for _ in 0..visits {
            let address = (attack.address)(self.attack_visits);
            self.attack_visits += 1;
            let (status, body) = self.visit(&address, attack.user_agent, None);
            if status == 429 {
                self.rate_limited += 1;
                continue;
            }
            assert_eq!(status, 200, "{body}");
            if body["kind"] == "lease" && body["overflow"] == false {
                self.attacker.push((body["session_id"].as_str().unwrap().to_owned(), address));
            }
        }
        let holding = std::mem::take(&mut self.attacker);
        for (session, address) in holding {
            let beat = json!({ "session_id": session });
            let headers = [("x-forwarded-for", address.as_str()), ("user-agent", attack.user_agent)];
            match self.h.post_with("/v1/sites/shop/heartbeat", &beat, &headers).0 {
                200 => self.attacker.push((session, address)),
                410 => {
                    // As the browser does: ask again.
                    let (status, body) = self.visit(&address, attack.user_agent, Some(&session));
                    if status == 200 && body["kind"] == "lease" && body["overflow"] == false {
                        self.attacker.push((session, address));
                    }
                }
                _ => self.rate_limited += 1,
            }
        }
    }

    /// Pool numbers live now for these sessions, by the database.
    fn held_by(&self, sessions: &HashSet<String>) -> usize {
        let now = self.clock.now_ms();
        let live =
            self.h.rows(&format!("SELECT session_id FROM leases WHERE ended_at_ms IS NULL AND expires_at_ms > {now}"));
        live.iter().filter(|r| sessions.contains(r[0].as_deref().unwrap())).count()
    }

    fn tick(&self, secs: i64) {
        self.clock.set_ms(self.clock.now_ms() + secs * 1000);
    }
}

/// The attack's opening, then `real.len()` rounds of: the attack, one real
/// visitor from `real[i]`, a few seconds.
fn drain(backend: Backend, attack: &Attack, real: &[String]) -> Option<(Figures, Drain)> {
    let mut d = Drain::new(backend, attack.name)?;
    d.attack(attack, attack.opening);
    let mut attacker_sessions: HashSet<String> = d.attacker.iter().map(|(s, _)| s.clone()).collect();
    let (mut served, mut most) = (0, 0);
    let mut real_sessions = Vec::new();
    for address in real {
        d.tick(2);
        d.attack(attack, attack.per_round);
        attacker_sessions.extend(d.attacker.iter().map(|(s, _)| s.clone()));
        let (status, body) = d.visit(address, BROWSER_UA, None);
        assert_eq!(status, 200, "{body}");
        if body["kind"] == "lease" && body["overflow"] == false {
            served += 1;
        }
        real_sessions.push(body["session_id"].as_str().unwrap().to_owned());
        most = most.max(d.held_by(&attacker_sessions));
    }
    let taken: Vec<String> =
        d.h.rows("SELECT session_id FROM leases WHERE end_reason = 'taken-over'")
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
    let figures = Figures {
        real_taken_over: taken.iter().filter(|s| real_sessions.contains(s)).count(),
        attacker_held: d.held_by(&attacker_sessions),
        attacker_held_most: most,
        real_served: served,
        real_visitors: real.len(),
        attack_visits: d.attack_visits,
        rate_limited: d.rate_limited,
    };
    println!(
        "drain {:<34} {backend:?}: attacker holds {} of {POOL_SIZE} at the end (at most {} after a real visit); real visitors served {}/{}; {} attack visits, {} rate limited",
        attack.name,
        figures.attacker_held,
        figures.attacker_held_most,
        figures.real_served,
        figures.real_visitors,
        figures.attack_visits,
        figures.rate_limited
    );
    Some((figures, d))
}

/// Ten real visitors, each from its own address of one network (the
/// busiest case for them: they share that network's share of the pool).
fn real_visitors_of_one_network() -> Vec<String> {
    (1..=10).map(|i| format!("203.0.113.{i}")).collect()
}

/// Ten real visitors from ten providers, half of them on IPv6.
fn real_visitors_far_apart() -> Vec<String> {
    (1..=10).map(|i| if i % 2 == 0 { format!("2a02:6b8:{i}::1") } else { format!("{}.10.20.30", 80 + i) }).collect()
}

fn one_address(_: usize) -> String {
    "198.51.100.66".to_owned()
}

/// Addresses 198.18.0.1, 198.18.0.2, …: 250 to a /24, in 198.18.0.0/15.
fn benchmark_range(n: usize) -> String {
    format!("198.{}.{}.{}", 18 + n / 62_500, (n / 250) % 250, n % 250 + 1)
}

/// A /64 of its own for each visit, all in one /48.
fn one_ipv6_network(n: usize) -> String {
    format!("2001:db8:77:{:x}::1", n % 65_536)
}

/// Every real visitor got a number while the attack went on, up to the
/// pool's size less what the attacker may keep (numbers are held for 15
/// minutes; the visitors come within seconds), none lost it to the attack,
/// and the attacker kept at most `share`.
fn assert_fair(figures: &Figures, share: usize) {
    assert_eq!(figures.real_served, figures.real_visitors.min(POOL_SIZE - share), "{figures:?}");
    assert_eq!(figures.real_taken_over, 0, "{figures:?}");
    assert!(figures.attacker_held <= share, "{figures:?}");
}

crate::on_both_backends! {
    one_address_with_a_browser_user_agent => one_address_with_a_browser_user_agent_on;
    one_address_that_stays_just_under_a_flood => one_address_that_stays_just_under_a_flood_on;
    a_few_addresses_of_one_network_keep_its_share => a_few_addresses_of_one_network_keep_its_share_on;
    thousands_of_addresses_of_one_range => thousands_of_addresses_of_one_range_on;
    thousands_of_ipv6_addresses_of_one_network => thousands_of_ipv6_addresses_of_one_network_on;
    headless_browsers_and_command_line_clients_get_no_number => headless_browsers_and_command_line_clients_get_no_number_on;
    real_visitors_keep_their_numbers_from_the_attack => real_visitors_keep_their_numbers_from_the_attack_on;
    heartbeats_alone_let_a_number_go_after_half_an_hour => heartbeats_alone_let_a_number_go_after_half_an_hour_on;
}

fn one_address_with_a_browser_user_agent_on(backend: Backend) {
    let attack = Attack {
        name: "one address, browser",
        user_agent: BROWSER_UA,
        address: one_address,
        opening: 40,
        per_round: 5,
    };
    let Some((figures, mut d)) = drain(backend, &attack, &real_visitors_of_one_network()) else { return };
    // A flood keeps nothing once real visitors want the numbers.
    assert_fair(&figures, 0);
    // The opening met the rate limit (30 at once), and the pool's refusals
    // are counted per minute, not written per visit.
    assert!(figures.rate_limited > 0, "{figures:?}");
    let rows = d.h.scalar("SELECT COUNT(*) FROM pool_exhaustions");
    assert!(rows <= 6, "{rows} rows");

    // 26 minutes on, every lease has expired and cooled down: the pool is
    // free. The flooding address gets its share of it, and no more.
    d.tick(26 * 60);
    d.attacker.clear();
    d.attack(&attack, 30);
    let sessions: HashSet<String> = d.attacker.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(d.held_by(&sessions), CLIENT_SHARE, "{:?}", d.attacker);
    let refused = d.h.scalar("SELECT SUM(events) FROM pool_exhaustions WHERE reason = 'over-share'");
    assert!(refused >= 20, "{refused} refused past the share while numbers were free");
    d.h.assert_no_number_leased_twice();
}

fn one_address_that_stays_just_under_a_flood_on(backend: Backend) {
    // Five visits take the whole pool; five asks of a 5-number pool are no
    // flood, but five numbers are over one client's share.
    let attack = Attack {
        name: "one address, five visits",
        user_agent: BROWSER_UA,
        address: one_address,
        opening: 5,
        per_round: 0,
    };
    let Some((figures, d)) = drain(backend, &attack, &real_visitors_far_apart()) else { return };
    // A client within its share keeps it, as a household would.
    assert_fair(&figures, CLIENT_SHARE);
    assert_eq!(figures.attacker_held, CLIENT_SHARE);
    d.h.assert_no_number_leased_twice();
}

/// One address of 198.51.100.0/24 per visit.
fn one_network(n: usize) -> String {
    format!("198.51.100.{}", n % 250 + 1)
}

fn a_few_addresses_of_one_network_keep_its_share_on(backend: Backend) {
    // Five addresses of one /24 take the pool with a visit each and hold it
    // with heartbeats: no flood, but the network is over its share (2 of 5).
    let attack = Attack {
        name: "five addresses of one /24",
        user_agent: BROWSER_UA,
        address: one_network,
        opening: 5,
        per_round: 0,
    };
    let Some((figures, d)) = drain(backend, &attack, &real_visitors_far_apart()) else { return };
    assert_fair(&figures, NETWORK_SHARE);
    assert_eq!(figures.attacker_held, NETWORK_SHARE);
    d.h.assert_no_number_leased_twice();
}

fn thousands_of_addresses_of_one_range_on(backend: Backend) {
    let attack = Attack {
        name: "3,000 addresses in 198.18.0.0/15",
        user_agent: BROWSER_UA,
        address: benchmark_range,
        opening: 1_000,
        per_round: 200,
    };
    let Some((figures, d)) = drain(backend, &attack, &real_visitors_of_one_network()) else { return };
    assert_fair(&figures, 0);
    assert_eq!(figures.rate_limited, 0, "one visit per address is never rate limited");
    // The attacker's addresses had the whole pool before anyone else came.
    assert_eq!(figures.attacker_held_most, POOL_SIZE - 1, "{figures:?}");
    d.h.assert_no_number_leased_twice();
}

fn thousands_of_ipv6_addresses_of_one_network_on(backend: Backend) {
    let attack = Attack {
        name: "3,000 /64s in one IPv6 /48",
        user_agent: BROWSER_UA,
        address: one_ipv6_network,
        opening: 1_000,
        per_round: 200,
    };
    let Some((figures, d)) = drain(backend, &attack, &real_visitors_far_apart()) else { return };
    assert_fair(&figures, 0);
    d.h.assert_no_number_leased_twice();
}

fn headless_browsers_and_command_line_clients_get_no_number_on(backend: Backend) {
    for (name, user_agent, address) in [
        ("one address, HeadlessChrome", HEADLESS_UA, one_address as fn(usize) -> String),
        ("one address, curl", CLI_UA, one_address),
        ("600 addresses, HeadlessChrome", HEADLESS_UA, benchmark_range),
        ("600 addresses, python-requests", "python-requests/2.32.3", benchmark_range),
        ("600 IPv6 /64s, Go-http-client", "Go-http-client/2.0", one_ipv6_network),
    ] {
        let attack = Attack { name, user_agent, address, opening: 300, per_round: 30 };
        let Some((figures, d)) = drain(backend, &attack, &real_visitors_of_one_network()) else { return };
        assert_eq!(figures.attacker_held_most, 0, "{figures:?}");
        assert_fair(&figures, 0);
        // The pool refused only the real visitors it had no number left for.
        let refusals = d.h.scalar("SELECT COALESCE(SUM(events), 0) FROM pool_exhaustions");
        assert_eq!(refusals as usize, figures.real_visitors - figures.real_served, "{name}");
    }
}

fn real_visitors_keep_their_numbers_from_the_attack_on(backend: Backend) {
    // The pool is full of real visitors' numbers; an attack then starts.
    let Some(d) = Drain::new(backend, "real_visitors_keep_their_numbers_from_the_attack") else { return };
    let mut real = Vec::new();
    for address in real_visitors_far_apart().iter().take(POOL_SIZE) {
        let (_, body) = d.visit(address, BROWSER_UA, None);
        assert_eq!(body["kind"], "lease", "{body}");
        real.push(body["session_id"].as_str().unwrap().to_owned());
    }
    let mut d = d;
    for attack in [
        Attack { name: "", user_agent: BROWSER_UA, address: one_address, opening: 0, per_round: 0 },
        Attack { name: "", user_agent: BROWSER_UA, address: benchmark_range, opening: 0, per_round: 0 },
    ] {
        d.tick(1);
        d.attack(&attack, 500);
    }
    let real: HashSet<String> = real.into_iter().collect();
    assert_eq!(d.held_by(&real), POOL_SIZE, "every real visitor still holds its number");
    assert!(d.attacker.is_empty(), "the attack got none");
}

fn heartbeats_alone_let_a_number_go_after_half_an_hour_on(backend: Backend) {
    let Some(d) = Drain::new(backend, "heartbeats_alone_let_a_number_go_after_half_an_hour") else { return };
    let (_, v) = d.visit("192.0.2.10", BROWSER_UA, None);
    let session = v["session_id"].as_str().unwrap().to_owned();
    let beat = json!({ "session_id": session });
    let headers = [("x-forwarded-for", "192.0.2.10")];
    // Every minute, as a visible tab does, but no page view.
    let mut last = None;
    for minute in 1..=40 {
        d.tick(60);
        let (status, body) = d.h.post_with("/v1/sites/shop/heartbeat", &beat, &headers);
        if status != 200 {
            assert_eq!((status, minute), (410, 30), "{body}");
            break;
        }
        last = Some(body["expires_at_ms"].as_i64().unwrap());
    }
    // Renewed up to 30 minutes after the visit, not past it.
    assert_eq!(last, Some(T0 + 30 * 60_000));
    // The next visit brings the number back (nobody took it meanwhile)…
    let (_, again) = d.visit("192.0.2.10", BROWSER_UA, Some(&session));
    assert_eq!(again["number"], v["number"]);
    // …and heartbeats renew it for 30 minutes more, or longer after a page
    // view: one at minute 45 lets it run to minute 75 and beyond 60.
    for minute in 31..=70 {
        d.tick(60);
        if minute == 45 {
            let view = json!({ "session_id": session, "url": "https://shop.example/contacts" });
            assert_eq!(d.h.post_with("/v1/sites/shop/pageviews", &view, &headers).0, 204);
        }
        let (status, body) = d.h.post_with("/v1/sites/shop/heartbeat", &beat, &headers);
        assert_eq!(status, 200, "minute {minute}: {body}");
        last = Some(body["expires_at_ms"].as_i64().unwrap());
    }
    assert_eq!(last, Some(T0 + 75 * 60_000));
    // A beat sooner than half the interval changes nothing.
    d.tick(60);
    let (_, renewed) = d.h.post_with("/v1/sites/shop/heartbeat", &beat, &headers);
    assert_eq!(renewed["expires_at_ms"], T0 + 75 * 60_000, "at the page view's limit");
    let (_, view) = (d.tick(0), json!({ "session_id": session, "url": "https://shop.example/" }));
    assert_eq!(d.h.post_with("/v1/sites/shop/pageviews", &view, &headers).0, 204);
    let (_, renewed) = d.h.post_with("/v1/sites/shop/heartbeat", &beat, &headers);
    let renewed = renewed["expires_at_ms"].as_i64().unwrap();
    assert_eq!(renewed, d.clock.now_ms() + 15 * 60_000);
    d.tick(10);
    let (_, soon) = d.h.post_with("/v1/sites/shop/heartbeat", &beat, &headers);
    assert_eq!(soon["expires_at_ms"], renewed);
    let stored =
        d.h.scalar(&format!("SELECT expires_at_ms FROM leases WHERE session_id = '{session}' AND ended_at_ms IS NULL"));
    assert_eq!(stored, renewed, "the beat too soon wrote nothing");
}
