//! `ringsource demo-data`: a demo month in a site's database, SQLite or
//! PostgreSQL (it writes through the storage port, as the server does).
//!
//! The story is the demo site's (`www/demo/`): Demo Plumbing Co., a plumber
//! in Moscow, advertised on Google and Yandex, on Instagram and in an email
//! newsletter, with a billboard on the Leningradskoye highway. Its visitors
//! come from Moscow and the towns around it on phones and laptops; those
//! who get no tracking number see a promo code, which some name when they
//! call; answered calls are recorded; the manager tags calls (lead, sale,
//! spam, repeat) and writes notes; and three users show what each role
//! sees ([`DEMO_USERS`]).
//!
//! Visits go through [`crate::services::visits::visit`] (routing, leases, promo codes)
//! and calls through [`CallsService`] (folding, attribution, credits), on a
//! simulated clock that walks the days in order, so the numbers a report
//! shows are the ones the real code computes. Costs and revenue go through
//! the money store.
//!
//! Days are the site's (its time zone): traffic comes in its opening hours,
//! 08:00 to 20:00 on its clock, and costs are dated by its calendar. A
//! visitor who stays on the page keeps their pool number renewed by
//! heartbeats, as the browser does, until they leave.
//!
//! Demo data is marked: sessions carry the user agent [`DEMO_USER_AGENT`],
//! calls the PBX name `demo` (never exported to GA4 or a CRM), cost and
//! revenue rows `demo = 1`; reports answer `demo_data: true` for the site.
//! The same seed makes the same month (session ids, callers, amounts; only
//! promo codes, drawn from the system's randomness, differ).

use std::sync::Arc;

use jiff::civil::Date;
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::routing::Route;
use ringsource_core::touch::{self, Touch};
use ringsource_core::visit::{UrlParts, Visit};
use ringsource_core::wire::{NumberKind, Page, VisitRequest};

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::{Config, Site};
use crate::dates;
use crate::services::calls::{CallsError, CallsService};
use crate::storage::call_notes::NotesStore;
use crate::storage::calls::CallFilter;
use crate::storage::money::DEMO_PBX;
use crate::storage::money::{CostRow, RevenueError, RevenuePost, RevenueTarget};
use crate::storage::stores::Stores;
use crate::storage::users::UserStore;
use crate::storage::{PageViewCommand, Storage, StorageError};

/// The user agent of demo sessions.
pub const DEMO_USER_AGENT: &str = "ringsource demo data";

/// The demo's users, one per role: (name, role, password). The passwords are
/// public (printed by `ringsource demo-data` and in the README): the demo
/// listens on 127.0.0.1, and its data is made up.
pub const DEMO_USERS: [(&str, crate::services::auth::Role, &str); 3] = [
    ("admin", crate::services::auth::Role::Admin, "plumbing-admin"),
    ("marketer", crate::services::auth::Role::Marketer, "plumbing-marketer"),
    ("manager", crate::services::auth::Role::Manager, "plumbing-manager"),
];

/// The demo's pages: (path, title).
const PAGES: [(&str, &str); 3] = [
    ("/services/", "Services and prices — Demo Plumbing Co."),
    ("/emergency/", "Emergency plumber 24/7 — Demo Plumbing Co."),
    ("/contacts/", "Contacts — Demo Plumbing Co."),
];
const HOME_TITLE: &str = "Emergency plumbing in Moscow — Demo Plumbing Co.";
const HOST: &str = "plumbing.example";

/// Where the demo's visitors are (country, region and city as DB-IP
/// writes them), by weight: mostly Moscow and the towns around it.
const PLACES: &[(u64, &str, &str, &str)] = &[
    (46, "RU", "Moscow", "Moscow"),
    (8, "RU", "Moscow Oblast", "Khimki"),
    (7, "RU", "Moscow Oblast", "Balashikha"),
    (6, "RU", "Moscow Oblast", "Podolsk"),
    (6, "RU", "Moscow Oblast", "Mytishchi"),
    (5, "RU", "Moscow Oblast", "Lyubertsy"),
    (5, "RU", "Moscow Oblast", "Krasnogorsk"),
    (4, "RU", "Moscow Oblast", "Zelenograd"),
    (3, "RU", "Tver Oblast", "Tver"),
    (3, "RU", "St.-Petersburg", "St Petersburg"),
    (2, "RU", "Kaluga Oblast", "Obninsk"),
];

/// What the demo's visitors browse on, by weight: real User-Agents (see
/// tests/it/data/user_agents.tsv for their sources), read by the same
/// parser as real visits.
const DEVICES: &[(u64, &str)] = &[
    (
        22,
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.6533.103 Mobile Safari/537.36",
    ),
    (
        18,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/127.0.6533.107 Mobile/15E148 Safari/604.1",
    ),
    (
        12,
        "Mozilla/5.0 (Linux; arm_64; Android 11; RMX3263) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.233 YaBrowser/24.6.0.233.00 SA/3 Mobile Safari/537.36",
    ),
    (
        8,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 YaBrowser/24.10.3.675.10 YaApp_iOS/2410.3 YaApp_iOS_Browser/2410.3 Safari/604.1 SA/3",
    ),
    (
        14,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36",
    ),
    (
        10,
        "Mozilla/5.0 (Windows 10; Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.234 YaBrowser/24.7.3.1250 Safari/537.36",
    ),
    (
        6,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36",
    ),
    (4, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:129.0) Gecko/20100101 Firefox/129.0"),
    (
        4,
        "Mozilla/5.0 (iPad; CPU OS 15_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/100.0.4896.85 Mobile/15E148 Safari/604.1",
    ),
    (2, "Mozilla/5.0 (Android 14; Mobile; rv:129.0) Gecko/129.0 Firefox/129.0"),
];

/// What the manager writes on calls.
const NOTES: &[&str] = &[
    "Leaking pipe under the kitchen sink. Master sent for 15:00, quoted 3 500 ₽.",
    "Blocked drain in the bathroom, wants someone tonight. Booked for 19:30.",
    "Asked for a price to replace a mixer tap; will call back after talking to the landlord.",
    "Boiler service every year: sent the contract by email.",
    "Caller named the promo code from the site; checked it against the visit.",
    "Wrong number: was looking for the water utility.",
    "Returning customer, second job this month: radiator valve.",
    "Wants the whole bathroom re-plumbed; site visit on Saturday for an estimate.",
];
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
/// What a billboard or another offline source costs a day, for the static
/// numbers without a rule whose source is configured.
const OFFLINE_DAILY_COST: f64 = 1500.0;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The site to fill; the configuration's first when `None`.
    pub site: Option<String>,
    /// Days before today (in the site's time zone) to fill.
    pub days: u32,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    pub site: String,
    pub sessions: u32,
    pub calls: u32,
    pub cost_rows: u32,
    pub deals: u32,
    /// Calls with a recording.
    pub recordings: u32,
    /// Calls the manager tagged.
    pub tagged: u32,
    /// Promo codes callers named, for the promo look-up (a few).
    pub promo_codes: Vec<String>,
}

/// Why demo data could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the configuration has no site {0:?}")]
    UnknownSite(String),
    #[error("the configuration has no sites")]
    NoSites,
    #[error("site {site:?} already has {calls} calls in {db}; demo data goes into a database without calls")]
    NotEmpty { site: String, calls: u64, db: String },
    #[error("--days must be between 1 and 366")]
    BadDays,
    #[error("the demo's days: {0}")]
    Dates(#[from] dates::DateError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Calls(#[from] CallsError),
    #[error(transparent)]
    Revenue(#[from] RevenueError),
    #[error("the demo's tags and notes: {0}")]
    Notes(#[from] crate::storage::call_notes::NotesStoreError),
    #[error("the demo's users: {0}")]
    Users(#[from] crate::services::auth::UserError),
}

/// What a demo visit was shown.
#[derive(Debug, Clone)]
struct Shown {
    session: String,
    number: Option<PhoneNumber>,
    kind: NumberKind,
    promo_code: Option<String>,
}

/// One of `items` by weight.
fn weighted<'a, T>(rng: &mut Rng, items: &'a [(u64, T)]) -> &'a T {
    let total: u64 = items.iter().map(|(w, _)| w).sum();
    let mut pick = rng.below(total.max(1));
    for (w, item) in items {
        if pick < *w {
            return item;
        }
        pick -= w;
    }
    &items[items.len() - 1].1
}

/// Where a demo visitor is and what they browse on.
fn demo_facts(rng: &mut Rng) -> crate::services::visitor_facts::Facts {
    let places: Vec<(u64, (&str, &str, &str))> = PLACES.iter().map(|(w, c, r, city)| (*w, (*c, *r, *city))).collect();
    let (country, region, city) = *weighted(rng, &places);
    let place = crate::services::geo::Place {
        country: Some(country.into()),
        region: Some(region.into()),
        city: Some(city.into()),
    };
    let ua = *weighted(rng, DEVICES);
    let device = crate::services::device::DeviceParser::shared().and_then(|p| p.device(ua));
    crate::services::visitor_facts::facts(Some(place), device)
}

/// SplitMix64: small, seedable, and good enough for fake traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes).map(|_| format!("{:02x}", self.below(256))).collect()
    }
}

/// A kind of visitor: where they come from and how likely they call.
struct Traffic {
    weight: u64,
    query: &'static str,
    referrer: Option<&'static str>,
    terms: &'static [&'static str],
    call_percent: u64,
}

/// Mostly paid search (the pool's business), with the channels a real site
/// also sees; the static-number sources of the demo config are among them.
/// The campaigns are the demo site's own links (`www/demo/index.html`).
const TRAFFIC: &[Traffic] = &[
    Traffic {
        weight: 30,
        query: "utm_source=google&utm_medium=cpc&utm_campaign=plumbing",
        referrer: Some("www.google.com"),
        terms: &["emergency plumber", "plumber near me", "burst pipe repair"],
        call_percent: 30,
    },
    Traffic {
        weight: 20,
        query: "utm_source=google&utm_medium=cpc&utm_campaign=brand",
        referrer: Some("www.google.com"),
        terms: &["demo plumbing", "demo plumbing moscow", "demo plumbing reviews"],
        call_percent: 22,
    },
    Traffic {
        weight: 15,
        query: "utm_source=yandex&utm_medium=cpc&utm_campaign=moscow-plumbing",
        referrer: Some("yandex.ru"),
        terms: &["сантехник на дом", "вызов сантехника"],
        call_percent: 25,
    },
    Traffic { weight: 15, query: "", referrer: Some("www.google.com"), terms: &[], call_percent: 12 },
    Traffic {
        weight: 8,
        query: "utm_source=instagram&utm_medium=social&utm_campaign=spring-stories",
        referrer: Some("l.instagram.com"),
        terms: &[],
        call_percent: 15,
    },
    Traffic {
        weight: 5,
        query: "utm_source=newsletter&utm_medium=email&utm_campaign=april-offer",
        referrer: None,
        terms: &[],
        call_percent: 20,
    },
    Traffic { weight: 7, query: "", referrer: None, terms: &[], call_percent: 10 },
];

/// Daily spend per paid source (min, spread), in the site's currency.
const SPEND: &[(&str, &str, &str, u64, u64)] = &[
    ("google", "cpc", "plumbing", 4000, 3000),
    ("google", "cpc", "brand", 1500, 1000),
    ("yandex", "cpc", "moscow-plumbing", 2500, 2000),
    ("instagram", "social", "spring-stories", 800, 700),
];

enum Action {
    Visit {
        visit: usize,
    },
    /// The visitor is still on the page: the browser renews their number.
    Heartbeat {
        visit: usize,
    },
    PageView {
        visit: usize,
        path: &'static str,
    },
    Call {
        visit: usize,
        caller: String,
        talk: Option<u32>,
        status: CallStatus,
        deal: Option<u64>,
    },
    /// A call to an offline static number (billboard): no visit behind it.
    Offline {
        number: PhoneNumber,
        caller: String,
        talk: u32,
        deal: Option<u64>,
    },
}

struct PlannedVisit {
    at_ms: i64,
    traffic: usize,
    term: Option<&'static str>,
    client_id: String,
    session_id: String,
    /// When the browser last renews the visitor's number, after `at_ms`
    /// (0: the visitor leaves before the first heartbeat).
    renewed_ms: i64,
}

/// A demo visit that asks a pool for a number: when, and for how long after
/// that the browser keeps renewing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDemand {
    /// Index into the site's pools.
    pub pool: usize,
    pub at_ms: i64,
    pub renewed_ms: i64,
}

/// Fills the site's database with `options.days` days of demo traffic
/// ending at the site's midnight today.
pub fn fill(config: &Config, options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    fill_until(config, options, SystemClock.now_ms())
}

fn chosen_site<'c>(config: &'c Config, options: &DemoOptions) -> Result<&'c Site, DemoError> {
    if !(1..=366).contains(&options.days) {
        return Err(DemoError::BadDays);
    }
    match &options.site {
        Some(id) => config.sites.iter().find(|s| &s.id == id).ok_or_else(|| DemoError::UnknownSite(id.clone())),
        None => config.sites.first().ok_or(DemoError::NoSites),
    }
}

/// The site's days before its local day of `now_ms`, oldest first.
fn demo_days(site: &Site, days: u32, now_ms: i64) -> Result<Vec<Date>, DemoError> {
    let today = dates::local_date(&site.time_zone, now_ms)?;
    let mut day = today;
    let mut out = Vec::with_capacity(days as usize);
    for _ in 0..days {
        day = day.yesterday().map_err(|_| dates::DateError::OutOfRange(day.to_string()))?;
        out.push(day);
    }
    out.reverse();
    Ok(out)
}

/// The visits of the month [`fill_until`] writes with the same options that
/// a pool serves, in time order: the traffic the pool sizing is checked
/// against.
pub fn pool_demand(config: &Config, options: &DemoOptions, now_ms: i64) -> Result<Vec<PoolDemand>, DemoError> {
    let site = chosen_site(config, options)?;
    let days = demo_days(site, options.days, now_ms)?;
    let (visits, _) = plan(site, &days, &mut Rng(options.seed))?;
    let mut demand: Vec<PoolDemand> = visits
        .iter()
        .filter_map(|v| match site.routing.route(&classified(v).0) {
            Route::Pool(pool) => Some(PoolDemand { pool, at_ms: v.at_ms, renewed_ms: v.renewed_ms }),
            _ => None,
        })
        .collect();
    demand.sort_by_key(|d| d.at_ms);
    Ok(demand)
}

/// [`fill`] for the site's days before its local day of `now_ms`.
pub fn fill_until(config: &Config, options: &DemoOptions, now_ms: i64) -> Result<DemoSummary, DemoError> {
    let site = chosen_site(config, options)?;
    let days = demo_days(site, options.days, now_ms)?;
    let stores = Stores::open(config)?;
    let storage = stores.storage.clone();
    let (_, calls) =
        stores.calls.list_calls(&CallFilter { site: Some(site.id.clone()), limit: 1, ..CallFilter::default() })?;
    if calls > 0 {
        let db = match &config.server.postgres {
            Some(pg) => pg.shown.clone(),
            None => config.server.database.display().to_string(),
        };
        return Err(DemoError::NotEmpty { site: site.id.clone(), calls, db });
    }
    let start_ms = dates::day_start_ms(&site.time_zone, days[0])?;
    let clock = Arc::new(ManualClock::new(start_ms));
    storage.sync_sites(&config.sites, clock.as_ref())?;
    let service = CallsService::new(stores.calls.clone(), &config.sites, clock.clone());
    let mut rng = Rng(options.seed);

    let shared_site = Arc::new(site.clone());
    let (visits, mut schedule) = plan(site, &days, &mut rng)?;
    // Stable: a visit's page views and call come after it at equal times.
    schedule.sort_by_key(|(at, _)| *at);

    let mut numbers: Vec<Option<Shown>> = vec![None; visits.len()];
    let mut summary = DemoSummary {
        site: site.id.clone(),
        sessions: 0,
        calls: 0,
        cost_rows: 0,
        deals: 0,
        recordings: 0,
        tagged: 0,
        promo_codes: Vec::new(),
    };
    let mut deals: Vec<(i64, u64, i64)> = Vec::new();
    // Places, devices, promo codes named, tags and notes draw from their
    // own sequence, so the month's traffic is the one `pool_demand` plans.
    let mut story = Rng(options.seed ^ 0x5E_ED0F_F0C7);
    let mut made: Vec<MadeCall> = Vec::new();
    for (at_ms, action) in schedule {
        clock.set_ms(at_ms);
        match action {
            Action::Visit { visit } => {
                let facts = demo_facts(&mut story);
                numbers[visit] = Some(run_visit(storage.as_ref(), &shared_site, &visits[visit], facts, clock.clone())?);
                summary.sessions += 1;
            }
            Action::Heartbeat { visit } => {
                if let Some(Shown { session, kind: NumberKind::Lease, .. }) = &numbers[visit] {
                    storage.heartbeat(Arc::clone(&shared_site), session.clone(), None, clock.clone()).wait()?;
                }
            }
            Action::PageView { visit, path } => {
                if let Some(Shown { session, .. }) = &numbers[visit] {
                    let url = format!("https://{HOST}{path}");
                    let title = PAGES.iter().find(|(p, _)| *p == path).map_or(HOME_TITLE, |(_, t)| t);
                    let view = PageViewCommand {
                        site: Arc::clone(&shared_site),
                        session_id: session.clone(),
                        url,
                        title: Some(title.to_owned()),
                    };
                    storage.page_view(view, clock.clone()).wait()?;
                }
            }
            Action::Call { visit, caller, talk, status, deal } => {
                let Some(shown) = &numbers[visit] else { continue };
                // A visitor left on the original number calls it: the call
                // is stored unattributed, as a real one would be.
                let dialled = match (&shown.kind, &shown.number) {
                    (NumberKind::Lease | NumberKind::Static, Some(n)) => n.clone(),
                    _ => site.originals[0].clone(),
                };
                let id = record_call(&service, site, &dialled, &caller, at_ms, talk, status)?;
                summary.calls += 1;
                summary.recordings += u32::from(talk.is_some());
                // Most callers who saw a code name it, and the manager
                // attaches it to the call.
                if let Some(code) = shown.promo_code.as_deref().filter(|_| story.chance(70))
                    && let Ok(code) = ringsource_core::promo::PromoCode::parse(code)
                {
                    service.attach_promo(id, &code)?;
                    if summary.promo_codes.len() < 5 {
                        summary.promo_codes.push(code.to_string());
                    }
                }
                made.push(MadeCall { id, talk, deal: deal.is_some(), caller: caller.clone() });
                if let Some(amount) = deal {
                    deals.push((id, amount, at_ms));
                }
            }
            Action::Offline { number, caller, talk, deal } => {
                let id = record_call(&service, site, &number, &caller, at_ms, Some(talk), CallStatus::Answered)?;
                summary.calls += 1;
                summary.recordings += 1;
                made.push(MadeCall { id, talk: Some(talk), deal: deal.is_some(), caller: caller.clone() });
                if let Some(amount) = deal {
                    deals.push((id, amount, at_ms));
                }
            }
        }
    }
    summary.tagged = tag_calls(stores.notes.as_ref(), &made, &mut story, clock.now_ms())?;
    add_users(stores.users.as_ref(), clock.now_ms())?;

    // Deals close a few days after the call; the CRM posts them back.
    for (n, (call_id, amount, at_ms)) in deals.into_iter().enumerate() {
        let post = RevenuePost {
            site: site.id.clone(),
            target: RevenueTarget::Call(call_id),
            amount: amount as f64,
            currency: None,
            deal_id: Some(format!("demo-deal-{}", n + 1)),
            at_ms: Some(at_ms + 3 * DAY_MS),
        };
        stores.money.record_revenue(&post, true, clock.as_ref())?;
        summary.deals += 1;
    }

    let mut costs = Vec::new();
    // Offline numbers whose source is configured are paid for by the day
    // (a billboard's rent), under the source their calls are reported with.
    let offline_spend: Vec<&crate::config::StaticSource> = site
        .static_numbers
        .iter()
        .filter(|s| s.rule.is_none() && s.report_as.configured)
        .map(|s| &s.report_as)
        .collect();
    for date in &days {
        let date = date.to_string();
        for (source, medium, campaign, min, spread) in SPEND {
            costs.push(CostRow {
                site: site.id.clone(),
                day: date.clone(),
                source: (*source).to_owned(),
                medium: (*medium).to_owned(),
                campaign: (*campaign).to_owned(),
                cost: (min + rng.below(*spread)) as f64,
                currency: None,
            });
        }
        for s in &offline_spend {
            costs.push(CostRow {
                site: site.id.clone(),
                day: date.clone(),
                source: s.source.clone(),
                medium: if s.medium == crate::config::NOT_SET { String::new() } else { s.medium.clone() },
                campaign: s.campaign.clone().unwrap_or_default(),
                cost: OFFLINE_DAILY_COST,
                currency: None,
            });
        }
    }
    summary.cost_rows = u32::try_from(stores.money.upsert_costs(&costs, true, clock.as_ref())?).unwrap_or(u32::MAX);
    Ok(summary)
}

/// Visits, page views, heartbeats and calls of every day, in no particular
/// order.
/// The month's visits, and what happens when.
type Plan = (Vec<PlannedVisit>, Vec<(i64, Action)>);

fn plan(site: &Site, days: &[Date], rng: &mut Rng) -> Result<Plan, DemoError> {
    let total_weight: u64 = TRAFFIC.iter().map(|t| t.weight).sum();
    let offline: Vec<&PhoneNumber> =
        site.static_numbers.iter().filter(|s| s.rule.is_none()).map(|s| &s.number).collect();
    let beat_ms = i64::from(site.heartbeat_secs()) * 1000;
    // A few people call more than once: repeat callers are part of the story.
    let regulars: Vec<String> = (0..12).map(|i| format!("+7916555{:04}", 1000 + i)).collect();
    let mut visits = Vec::new();
    let mut schedule = Vec::new();
    for &day in days {
        // Opening hours, 08:00 to 20:00 on the site's clock.
        let opens_ms = dates::local_time_ms(&site.time_zone, day, 8)?;
        let late_opens_ms = dates::local_time_ms(&site.time_zone, day, 9)?;
        for _ in 0..(30 + rng.below(20)) {
            let at_ms = opens_ms + i64::try_from(rng.below(12 * 60)).unwrap_or(0) * MINUTE_MS;
            let mut pick = rng.below(total_weight);
            let traffic = TRAFFIC.iter().position(|t| {
                let hit = pick < t.weight;
                pick = pick.saturating_sub(t.weight);
                hit
            });
            let traffic = traffic.unwrap_or(0);
            let t = &TRAFFIC[traffic];
            let term = (!t.terms.is_empty()).then(|| t.terms[rng.below(t.terms.len() as u64) as usize]);
            let index = visits.len();
            let client_id = format!("{}.{}", 100_000_000 + rng.below(900_000_000), at_ms / 1000);
            let session_id = rng.hex(16);
            schedule.push((at_ms, Action::Visit { visit: index }));
            let mut last_page_ms = 0;
            for (k, (path, _)) in PAGES.into_iter().enumerate() {
                if rng.chance(60) {
                    let offset = (i64::try_from(k).unwrap_or(0) + 1) * MINUTE_MS;
                    last_page_ms = offset;
                    schedule.push((at_ms + offset, Action::PageView { visit: index, path }));
                }
            }
            // The visitor reads the last page for up to four minutes; the
            // page beats while it is open.
            let stay_ms = last_page_ms + i64::try_from(rng.below(5)).unwrap_or(0) * MINUTE_MS;
            let renewed_ms = if beat_ms > 0 { stay_ms / beat_ms * beat_ms } else { 0 };
            let mut beat = beat_ms;
            while beat > 0 && beat <= renewed_ms {
                schedule.push((at_ms + beat, Action::Heartbeat { visit: index }));
                beat += beat_ms;
            }
            visits.push(PlannedVisit { at_ms, traffic, term, client_id, session_id, renewed_ms });
            if rng.chance(t.call_percent) {
                let caller = if rng.chance(15) {
                    regulars[rng.below(regulars.len() as u64) as usize].clone()
                } else {
                    format!("+7916{:07}", rng.below(10_000_000))
                };
                // Within the 15 minutes a pool number is held.
                let ring = at_ms + (2 + i64::try_from(rng.below(10)).unwrap_or(0)) * MINUTE_MS;
                let (status, talk) = match rng.below(100) {
                    0..=74 => (CallStatus::Answered, Some(10 + rng.below(400) as u32)),
                    75..=91 => (CallStatus::NoAnswer, None),
                    _ => (CallStatus::Busy, None),
                };
                let deal = (talk.is_some_and(|t| t >= 60) && rng.chance(35)).then(|| 5_000 + rng.below(55_000));
                schedule.push((ring, Action::Call { visit: index, caller, talk, status, deal }));
            }
        }
        for number in &offline {
            for _ in 0..rng.below(3) {
                let at_ms = late_opens_ms + i64::try_from(rng.below(10 * 60)).unwrap_or(0) * MINUTE_MS;
                let caller = format!("+7903{:07}", rng.below(10_000_000));
                let talk = 20 + rng.below(300) as u32;
                let deal = (talk >= 60 && rng.chance(35)).then(|| 5_000 + rng.below(55_000));
                schedule.push((at_ms, Action::Offline { number: (*number).clone(), caller, talk, deal }));
            }
        }
    }
    Ok((visits, schedule))
}

/// The touch the browser makes of a planned visit, and the landing page's
/// query string.
fn classified(v: &PlannedVisit) -> (Touch, String) {
    let t = &TRAFFIC[v.traffic];
    let query = match v.term {
        Some(term) if !t.query.is_empty() => {
            format!("{}&utm_term={}", t.query, form_urlencoded::byte_serialize(term.as_bytes()).collect::<String>())
        }
        _ => t.query.to_owned(),
    };
    let referrer = t.referrer.map(|host| UrlParts { host, path: "/", query: "" });
    let visit = Visit::new(UrlParts { host: HOST, path: "/", query: &query }, referrer, "");
    (touch::classify(&visit, u64::try_from(v.at_ms).unwrap_or(0)), query)
}

fn run_visit(
    storage: &dyn Storage,
    site: &Arc<Site>,
    v: &PlannedVisit,
    facts: crate::services::visitor_facts::Facts,
    clock: Arc<dyn Clock>,
) -> Result<Shown, StorageError> {
    let (touch, query) = classified(v);
    let url = if query.is_empty() { format!("https://{HOST}/") } else { format!("https://{HOST}/?{query}") };
    let request = VisitRequest {
        session_id: None,
        client_id: Some(v.client_id.clone()),
        ym_uid: None,
        touch,
        first_touch: None,
        page: Page { url, title: Some(HOME_TITLE.to_owned()) },
        referrer: None,
        reveal: true,
        consent: true,
    };
    let answer = crate::services::visits::visit(
        storage,
        Arc::clone(site),
        request,
        None,
        crate::services::visits::Sender { user_agent: DEMO_USER_AGENT.to_owned(), client: None, facts },
        v.session_id.clone(),
        clock,
    )
    .wait()?;
    Ok(Shown {
        session: answer.session_id.unwrap_or_else(|| v.session_id.clone()),
        number: answer.number,
        kind: answer.kind,
        promo_code: answer.promo_code,
    })
}

/// A demo call, for the manager's tags and notes.
struct MadeCall {
    id: i64,
    talk: Option<u32>,
    deal: bool,
    caller: String,
}

/// The manager's tags and notes on the month's calls: sales and leads,
/// short calls taken for spam, callers who rang before; a note on some.
/// Returns how many calls were tagged.
fn tag_calls(notes: &dyn NotesStore, calls: &[MadeCall], rng: &mut Rng, now_ms: i64) -> Result<u32, DemoError> {
    let mut callers = std::collections::HashSet::new();
    let mut tagged = 0;
    for c in calls {
        let mut tags = Vec::new();
        if c.deal {
            tags.extend(["sale", "lead"]);
        } else if c.talk.is_some_and(|t| t >= 60) && rng.chance(40) {
            tags.push("lead");
        } else if c.talk.is_some_and(|t| t < 30) && rng.chance(35) {
            tags.push("spam");
        }
        if !callers.insert(c.caller.clone()) {
            tags.push("repeat");
        }
        for tag in &tags {
            notes.add_tag(c.id, tag, "manager", now_ms)?;
        }
        tagged += u32::from(!tags.is_empty());
        if !tags.is_empty() && rng.chance(30) {
            let note = NOTES[rng.below(NOTES.len() as u64) as usize];
            notes.add_note(c.id, "manager", note, now_ms)?;
        }
    }
    Ok(tagged)
}

/// The demo's users ([`DEMO_USERS`]), unless there are users of those names.
fn add_users(store: &dyn UserStore, now_ms: i64) -> Result<(), DemoError> {
    for (name, role, password) in DEMO_USERS {
        if store.user_by_name(name)?.is_none() {
            let hash = crate::services::auth::secrets::hash_password(password)
                .map_err(crate::services::auth::UserError::from)?;
            store
                .add_user(name, role, &crate::services::auth::Sites::All, &hash, true, now_ms)
                .map_err(crate::services::auth::UserError::from)?;
        }
    }
    Ok(())
}

/// One finished call, as the PBX's end report. Returns the call id.
fn record_call(
    service: &CallsService,
    site: &Site,
    dialled: &PhoneNumber,
    caller: &str,
    ring_ms: i64,
    talk: Option<u32>,
    status: CallStatus,
) -> Result<i64, CallsError> {
    let ring = u64::try_from(ring_ms).unwrap_or(0);
    let answer_after = 8_000u64;
    let talk_ms = u64::from(talk.unwrap_or(0)) * 1000;
    let ended = ring + if talk.is_some() { answer_after + talk_ms } else { 25_000 };
    let event = CallEvent {
        pbx: DEMO_PBX.to_owned(),
        pbx_call_id: format!("demo-{ring_ms}-{}", caller.trim_start_matches('+')),
        phase: CallPhase::End,
        from: Some(caller.to_owned()),
        to: dialled.clone(),
        started_at_ms: Some(ring),
        answered_at_ms: talk.map(|_| ring + answer_after),
        ended_at_ms: Some(ended),
        duration_secs: Some(u32::try_from((ended - ring) / 1000).unwrap_or(u32::MAX)),
        talk_secs: talk,
        status,
        // Answered calls are recorded; the collector makes the audio.
        recording_url: talk.map(|_| {
            format!("{}{ring_ms}-{}", crate::services::recordings::DEMO_SCHEME, caller.trim_start_matches('+'))
        }),
    };
    Ok(service.record(&site.id, &event)?.call_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_seeded() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        assert_eq!(xs, (0..5).map(|_| b.next()).collect::<Vec<_>>());
        assert_ne!(Rng(8).next(), xs[0]);
    }
}
