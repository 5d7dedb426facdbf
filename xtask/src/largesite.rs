//! `cargo xtask largesite`: a year of one large site (by default 10 million
//! sessions and 1 million calls) written straight into a collector
//! database, for the report benchmarks of issue #17
//! (`cargo xtask bench reports`, and `docs/reports-at-scale.md`).
//!
//! The collector makes the schema (the release binary migrates a new file);
//! the generator then writes the rows its write paths would have left, in
//! that schema: sessions with the collector's id format, their place and
//! device, touches classified by core from landing URLs and referrers (the
//! full source table, as the collector classifies), page views, promo codes
//! for the visits the demo site's fallback gives one, pool leases that never
//! overlap on a number (with cooldown, and the overflow number when the pool
//! runs out, counted per minute), calls with their PBX events as core
//! serialises them, folded by core's `Call::fold`, matched by core's
//! `match_call` and credited by core's `credit`, manager tags and notes,
//! CRM revenue and daily advertising cost. Going through the collector's API
//! would take days at this size.
//!
//! The site is the demo configuration's with a pool sized for the traffic
//! and a retention that keeps visits for the year; page views, User-Agents
//! and the rest follow the default retention, so the collector's own
//! retention pass finds nothing to remove in the data it is handed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ringsource_core::attribution::{Candidate, Confidence, Dialled, Facts, Model, Tenure, credit, match_call, path};
use ringsource_core::call::{Call, CallEvent, CallPhase, CallStatus};
use ringsource_core::channel::Channel;
use ringsource_core::phone::PhoneNumber;
use ringsource_core::promo::PromoCode;
use ringsource_core::touch::{Touch, classify};
use ringsource_core::visit::{UrlParts, Visit};
use serde::{Deserialize, Serialize};

use crate::bench::bench_config_named;

#[cfg(test)]
mod both_backends;
pub mod postgres_sink;
pub mod sink;

use sink::{Sink, Value};

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
/// The demo site is in Moscow (UTC+3 all year).
const ZONE_OFFSET_MS: i64 = 3 * 3_600_000;
/// Visits are kept this long in the generated site's config (a year and
/// some); the other retention periods are the collector's defaults.
const VISITS_DAYS: i64 = 400;
const PAGE_VIEWS_DAYS: i64 = 31;
const USER_AGENT_DAYS: i64 = 7;
/// The manager who tags calls and writes notes.
const MANAGER: &str = "manager";

/// How much to make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    pub sessions: u64,
    pub calls: u64,
    pub days: u32,
    /// Numbers in the site's pool.
    pub pool_numbers: u32,
    pub seed: u64,
    /// The first UTC midnight after the generated year (ms).
    pub end_ms: i64,
}

impl Scale {
    /// `sessions` and about `calls` over the year that ends today, with a
    /// pool of one number per 20,000 sessions a year (500 for issue #17's
    /// 10 million), enough that the pool runs out at peak hours only.
    pub fn new(sessions: u64, calls: u64, seed: u64) -> Result<Self> {
        let now_ms = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
        Ok(Self {
            sessions,
            calls,
            days: 365,
            pool_numbers: u32::try_from(sessions / 20_000).unwrap_or(u32::MAX).max(5),
            seed,
            end_ms: now_ms.div_euclid(DAY_MS) * DAY_MS,
        })
    }

    fn start_ms(&self) -> i64 {
        self.end_ms - i64::from(self.days) * DAY_MS
    }
}

/// The site the rows belong to, as its config describes it.
pub struct SiteShape {
    pub id: String,
    pub originals: Vec<String>,
    pub overflow: String,
    pub statics: Vec<StaticNumber>,
    pub pool_id: String,
    pub pool: Vec<String>,
    pub hold_secs: i64,
    pub cooldown_secs: i64,
    pub grace_secs: i64,
    pub model: Model,
    pub target_call_secs: u32,
    pub uniqueness_window_days: i64,
    pub promo_length: usize,
    pub promo_hold_days: i64,
}

/// A static number and the source its calls are credited to (the config's
/// rules for `report_as`, see the collector's `config/site.rs`).
pub struct StaticNumber {
    pub number: String,
    pub label: String,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
}

/// The demo config with `scale.pool_numbers` numbers in its pool and visits
/// kept for the year, as `<out>.toml` beside the database `out`; and the
/// site it describes.
///
/// `database` is what the config's `server.database` says: the SQLite file,
/// or a PostgreSQL URL (then the config is `<out stem>-pg.toml`).
pub fn write_config(root: &Path, scale: &Scale, out: &Path, database: &str) -> Result<(PathBuf, SiteShape)> {
    let stem = out.file_stem().and_then(|s| s.to_str()).context("the database file needs a name")?;
    let name = if database.starts_with("postgres") { format!("{stem}-pg") } else { stem.to_owned() };
    let mut shape = None;
    let path = bench_config_named(root, &name, |config| {
        shape = Some(large_site_config(config, scale, database)?);
        Ok(())
    })?;
    Ok((path, shape.context("the config edit did not run")?))
}

/// Edits the demo config into the large site's: `database`, visits kept for
/// the year, `scale.pool_numbers` numbers in the pool. Returns the site.
pub fn large_site_config(config: &mut toml::Table, scale: &Scale, database: &str) -> Result<SiteShape> {
    let pool: Vec<String> = (0..scale.pool_numbers).map(|i| format!("+7495710{i:04}")).collect();
    let server = config.get_mut("server").and_then(|s| s.as_table_mut()).context("no [server]")?;
    server.insert("database".into(), database.into());
    let site = config
        .get_mut("sites")
        .and_then(|s| s.as_array_mut())
        .and_then(|s| s.first_mut())
        .and_then(|s| s.as_table_mut())
        .context("the demo config has no [[sites]]")?;
    let mut retention = toml::Table::new();
    retention.insert("visits_days".into(), VISITS_DAYS.into());
    site.insert("retention".into(), retention.into());
    let pools = site.get_mut("pools").and_then(|p| p.as_array_mut()).context("the demo site has no pool")?;
    let first = pools.first_mut().and_then(|p| p.as_table_mut()).context("the demo site has no pool")?;
    first.insert("numbers".into(), pool.iter().map(|n| toml::Value::from(n.as_str())).collect::<Vec<_>>().into());
    site_shape(site, pool)
}

/// The channel core gives a visit tagged with this source and medium.
fn tagged_channel(source: &str, medium: &str) -> Channel {
    let query = format!("utm_source={source}&utm_medium={medium}");
    Channel::of(&Visit::new(UrlParts { host: "", path: "/", query: &query }, None, ""))
}

fn site_shape(site: &toml::Table, pool: Vec<String>) -> Result<SiteShape> {
    let text = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let int = |t: &toml::Table, k: &str, default: i64| t.get(k).and_then(|v| v.as_integer()).unwrap_or(default);
    let region = text(site, "region").unwrap_or_else(|| "RU".into());
    let region: ringsource_core::phone::Region =
        region.parse().map_err(|e| anyhow::anyhow!("region {region}: {e:?}"))?;
    let e164 = |n: &str| -> Result<String> {
        Ok(PhoneNumber::parse_national(n, region).map_err(|e| anyhow::anyhow!("number {n}: {e}"))?.e164())
    };
    let originals = site
        .get("originals")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .map(e164)
        .collect::<Result<_>>()?;
    let overflow = e164(&text(site, "overflow_number").context("the demo site has no overflow number")?)?;
    let mut statics = Vec::new();
    for s in site.get("static_numbers").and_then(|v| v.as_array()).into_iter().flatten() {
        let s = s.as_table().context("static_numbers entry")?;
        let label = text(s, "label").unwrap_or_default();
        let rule = s.get("rule").and_then(|r| r.as_table());
        let rule_channel = rule.map(|r| text(r, "channel"));
        let (channel, source, medium, campaign) = match text(s, "source").map(|v| v.to_lowercase()) {
            Some(source) => {
                let medium = text(s, "medium").map_or_else(|| "(not set)".to_owned(), |m| m.to_lowercase());
                let channel = match rule_channel {
                    Some(Some(named)) => named,
                    Some(None) => {
                        tagged_channel(&source, if medium == "(not set)" { "" } else { &medium }).as_str().to_owned()
                    }
                    None => "Offline".to_owned(),
                };
                (channel, source, medium, text(s, "campaign"))
            }
            None => {
                let channel = match rule_channel {
                    Some(named) => named.unwrap_or_else(|| "Static number".to_owned()),
                    None => "Offline".to_owned(),
                };
                (channel, label.clone(), "static".to_owned(), None)
            }
        };
        statics.push(StaticNumber {
            number: e164(&text(s, "number").context("static number")?)?,
            label,
            channel,
            source,
            medium,
            campaign,
        });
    }
    let first_pool = site.get("pools").and_then(|p| p.as_array()).and_then(|p| p.first()).and_then(|p| p.as_table());
    let first_pool = first_pool.context("the demo site has no pool")?;
    if text(first_pool, "on_exhaustion").as_deref().unwrap_or("overflow") != "overflow" {
        bail!("the generator knows the overflow policy only; the demo pool has another");
    }
    let promo = site
        .get("promo")
        .and_then(|p| p.as_table())
        .filter(|p| p.get("fallback").and_then(|v| v.as_bool()) == Some(true))
        .context("the generator gives promo codes as the demo site's fallback does; the demo site has none")?;
    let model = text(site, "attribution_model").unwrap_or_else(|| "last-touch".into());
    Ok(SiteShape {
        id: text(site, "id").context("site id")?,
        originals,
        overflow,
        statics,
        pool_id: text(first_pool, "id").context("pool id")?,
        pool,
        hold_secs: int(first_pool, "hold_secs", 900),
        cooldown_secs: int(first_pool, "cooldown_secs", 600),
        grace_secs: int(site, "grace_secs", 120),
        model: model.parse().map_err(|_| anyhow::anyhow!("attribution_model {model}"))?,
        target_call_secs: u32::try_from(int(site, "target_call_secs", 30))?,
        uniqueness_window_days: int(site, "uniqueness_window_days", 30),
        promo_length: usize::try_from(int(promo, "length", ringsource_core::promo::DEFAULT_LENGTH as i64))?,
        promo_hold_days: int(promo, "hold_days", 30),
    })
}

/// Where a visitor comes from, how often, and which number they are shown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    GoogleAds,
    YandexDirect,
    Organic,
    Direct,
    Referral,
    Instagram,
    Email,
    Display,
}

/// Shares of sessions, roughly those of a Russian retail site with paid
/// search as its main channel.
const KINDS: &[(Kind, u32)] = &[
    (Kind::GoogleAds, 14),
    (Kind::YandexDirect, 20),
    (Kind::Organic, 28),
    (Kind::Direct, 20),
    (Kind::Referral, 6),
    (Kind::Instagram, 5),
    (Kind::Email, 4),
    (Kind::Display, 3),
];

/// Which number a visitor of each kind is shown (the demo config's rules):
/// paid search gets the pool, Instagram and e-mail their static numbers,
/// everyone else a promo code beside the site's own number.
enum Route {
    Pool,
    Static(usize),
    Promo,
}

fn route(kind: Kind, shape: &SiteShape) -> Route {
    let static_for = |source: &str| shape.statics.iter().position(|s| s.source == source);
    match kind {
        Kind::GoogleAds | Kind::YandexDirect => Route::Pool,
        Kind::Instagram => static_for("instagram").map_or(Route::Promo, Route::Static),
        Kind::Email => static_for("newsletter").map_or(Route::Promo, Route::Static),
        _ => Route::Promo,
    }
}

/// Calls per session by what the visitor was shown, before scaling to the
/// requested number of calls. Bots never call.
fn call_rate(route: &Route) -> f64 {
    match route {
        Route::Pool => 0.16,
        Route::Static(_) => 0.10,
        Route::Promo => 0.06,
    }
}

const CAMPAIGNS: &[&str] = &[
    "brand",
    "sofas",
    "sofas-corner",
    "beds",
    "wardrobes",
    "tables",
    "chairs",
    "kitchens",
    "mattresses",
    "sale",
    "retargeting",
    "competitors",
    "moscow-region",
    "delivery",
    "new-collection",
];
const TERMS: &[&str] = &[
    "диван недорого",
    "купить диван",
    "угловой диван",
    "диван кровать",
    "шкаф купе",
    "кровать двуспальная",
    "матрас ортопедический",
    "кухня на заказ",
    "стол обеденный",
    "стулья для кухни",
    "мебель москва",
    "мебельный магазин",
    "диван с доставкой",
    "sofa moscow",
    "диван распродажа",
    "шкаф в прихожую",
    "детская кровать",
    "комод",
    "тумба под тв",
    "кресло",
];
const PAGES: &[(&str, &str)] = &[
    ("/", "Demo shop — мебель с доставкой"),
    ("/catalog/", "Каталог — Demo shop"),
    ("/catalog/sofas/", "Диваны — Demo shop"),
    ("/catalog/sofas/corner/", "Угловые диваны — Demo shop"),
    ("/catalog/beds/", "Кровати — Demo shop"),
    ("/catalog/wardrobes/", "Шкафы — Demo shop"),
    ("/catalog/kitchens/", "Кухни — Demo shop"),
    ("/catalog/mattresses/", "Матрасы — Demo shop"),
    ("/sale/", "Распродажа — Demo shop"),
    ("/delivery/", "Доставка и сборка — Demo shop"),
    ("/contacts/", "Контакты — Demo shop"),
    ("/blog/how-to-choose-a-sofa/", "Как выбрать диван — Demo shop"),
];
const REFERRERS: &[(&str, &str)] = &[
    ("dzen.ru", "/a/mebel-obzor"),
    ("vc.ru", "/life/123456-mebel"),
    ("pikabu.ru", "/story/divan_9876"),
    ("otzovik.com", "/reviews/demo_shop/"),
    ("market.yandex.ru", "/product--divan/1"),
    ("2gis.ru", "/moscow/firm/70000001"),
];

/// A User-Agent and the device the collector reads in it (kind, device,
/// browser, OS, as uap-core names them).
struct Agent {
    ua: &'static str,
    kind: &'static str,
    device: Option<&'static str>,
    browser: &'static str,
    os: &'static str,
}

const AGENTS: &[Agent] = &[
    Agent {
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        kind: "desktop",
        device: None,
        browser: "Chrome 131",
        os: "Windows 10",
    },
    Agent {
        ua: "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        kind: "phone",
        device: Some("Samsung SM-A546B"),
        browser: "Chrome Mobile 131",
        os: "Android 14",
    },
    Agent {
        ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        kind: "phone",
        device: Some("Apple iPhone"),
        browser: "Mobile Safari 18",
        os: "iOS 18.1",
    },
    Agent {
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
        kind: "desktop",
        device: None,
        browser: "Yandex Browser 24",
        os: "Windows 10",
    },
    Agent {
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        kind: "desktop",
        device: Some("Apple Mac"),
        browser: "Safari 18",
        os: "Mac OS X 14.6",
    },
    Agent {
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        kind: "desktop",
        device: None,
        browser: "Firefox 133",
        os: "Windows 10",
    },
];
const BOT_AGENTS: &[Agent] = &[
    Agent {
        ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        kind: "bot",
        device: Some("Spider"),
        browser: "Googlebot 2",
        os: "Other",
    },
    Agent {
        ua: "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        kind: "bot",
        device: Some("Spider"),
        browser: "YandexBot 3",
        os: "Other",
    },
];
/// Where visitors are, as (country, region, city) with weights.
const PLACES: &[(&str, &str, &str, u32)] = &[
    ("RU", "Moscow", "Moscow", 62),
    ("RU", "Moscow Oblast", "Balashikha", 9),
    ("RU", "Moscow Oblast", "Khimki", 6),
    ("RU", "Moscow Oblast", "Podolsk", 5),
    ("RU", "St.-Petersburg", "Saint Petersburg", 8),
    ("RU", "Tverskaya Oblast'", "Tver", 3),
    ("RU", "Tula Oblast", "Tula", 3),
    ("KZ", "Almaty", "Almaty", 2),
    ("BY", "Minsk City", "Minsk", 2),
];
/// Visitors per local hour of the day (Moscow), as weights.
const HOURS: [u32; 24] = [2, 1, 1, 1, 1, 2, 3, 5, 8, 11, 13, 14, 14, 13, 13, 13, 12, 12, 12, 12, 11, 9, 6, 4];

/// What was written, for the summary.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    pub rows: u64,
    pub sessions: u64,
    pub touches: u64,
    pub page_views: u64,
    pub promo_codes: u64,
    pub leases: u64,
    pub refusals: u64,
    pub calls: u64,
    pub revenue: u64,
    pub tags: u64,
}

/// A number's latest lease: (session, started, held until).
type Held = (String, i64, i64);

/// A caller the generator may have call again: their number, last ring,
/// and the session their last high- or medium-confidence call went to.
struct Caller {
    number: String,
    last_ring_ms: Option<i64>,
    /// The session, when its call rang, and its touches.
    session: Option<(String, i64, Vec<Touch>)>,
}

struct Generator<'a> {
    rng: fastrand::Rng,
    shape: &'a SiteShape,
    scale: &'a Scale,
    sink: &'a mut dyn Sink,
    counts: Counts,
    call_factor: f64,
    /// Pool numbers by the time each is free again (its lease's end plus
    /// cooldown), soonest first.
    free_at: BinaryHeap<Reverse<(i64, usize)>>,
    /// Each pool number's latest lease.
    held: Vec<Option<Held>>,
    /// Live promo codes (reserved until, code), oldest first, and the set
    /// of them: a new code must differ from every live one.
    live_codes: VecDeque<(i64, String)>,
    live_set: HashSet<String>,
    /// Recent analytics client ids and callers, for returning visitors and
    /// repeat callers.
    clients: Vec<String>,
    callers: Vec<Caller>,
    /// The collector's session-id stamp: ms << 16 plus a count.
    last_stamp: u64,
    next_call_id: i64,
    next_deal: u64,
    /// minute → (refusals, first, last); minute → first asks.
    exhaustions: BTreeMap<i64, (u64, i64, i64)>,
    first_asks: BTreeMap<i64, u64>,
    started: Instant,
    last_report: Instant,
}

/// Generates the year into `sink` and reports progress on stderr.
pub fn generate(shape: &SiteShape, scale: &Scale, sink: &mut dyn Sink) -> Result<Counts> {
    let total: f64 = KINDS.iter().map(|(_, w)| f64::from(*w)).sum();
    let expected: f64 = KINDS.iter().map(|(k, w)| f64::from(*w) / total * call_rate(&route(*k, shape))).sum::<f64>()
        * 0.97
        * scale.sessions as f64;
    let mut g = Generator {
        rng: fastrand::Rng::with_seed(scale.seed),
        shape,
        scale,
        sink,
        counts: Counts::default(),
        call_factor: if expected > 0.0 { scale.calls as f64 / expected } else { 0.0 },
        free_at: (0..shape.pool.len()).map(|i| Reverse((0, i))).collect(),
        held: vec![None; shape.pool.len()],
        live_codes: VecDeque::new(),
        live_set: HashSet::new(),
        clients: Vec::new(),
        callers: Vec::new(),
        last_stamp: 0,
        next_call_id: 1,
        next_deal: 1,
        exhaustions: BTreeMap::new(),
        first_asks: BTreeMap::new(),
        started: Instant::now(),
        last_report: Instant::now(),
    };
    g.row("sites", &[("id", Value::Text(&shape.id)), ("updated_at_ms", Value::Int(scale.end_ms))])?;
    g.days()?;
    g.numbers()?;
    g.pool_counts()?;
    g.costs()?;
    g.report(true);
    Ok(g.counts)
}

impl Generator<'_> {
    fn row(&mut self, table: &'static str, values: &[(&'static str, Value<'_>)]) -> Result<()> {
        self.counts.rows += 1;
        self.sink.row(table, values)
    }

    /// The site's numbers, each pool number cooling down after its last lease.
    fn numbers(&mut self) -> Result<()> {
        let shape = self.shape;
        // (number, kind, pool, label, cooldown until)
        type NumberRow<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, i64);
        let mut rows: Vec<NumberRow<'_>> = Vec::new();
        rows.extend(shape.originals.iter().map(|n| (n.as_str(), "original", None, None, 0)));
        rows.push((&shape.overflow, "overflow", None, None, 0));
        rows.extend(shape.statics.iter().map(|s| (s.number.as_str(), "static", None, Some(s.label.as_str()), 0)));
        for (n, held) in shape.pool.iter().zip(&self.held) {
            let cooldown = held.as_ref().map_or(0, |h| h.2 + shape.cooldown_secs * 1000);
            rows.push((n, "pool", Some(&shape.pool_id), None, cooldown));
        }
        for (number, kind, pool, label, cooldown) in rows {
            self.row(
                "numbers",
                &[
                    ("number", Value::Text(number)),
                    ("site_id", Value::Text(&shape.id)),
                    ("kind", Value::Text(kind)),
                    ("pool_id", Value::opt(pool)),
                    ("label", Value::opt(label)),
                    ("active", Value::Bool(true)),
                    ("cooldown_until_ms", Value::Int(cooldown)),
                ],
            )?;
        }
        Ok(())
    }

    /// Sessions per day grow by half over the year, with quieter weekends.
    fn days(&mut self) -> Result<()> {
        let days = i64::from(self.scale.days);
        let weight = |d: i64| {
            let weekday = (d + 3).rem_euclid(7); // 1970-01-01 was a Thursday: 0 = Monday
            let weekend = if weekday >= 5 { 0.75 } else { 1.0 };
            (1.0 + 0.5 * d as f64 / days as f64) * weekend
        };
        let start_day = self.scale.start_ms().div_euclid(DAY_MS);
        let total: f64 = (0..days).map(|d| weight(start_day + d)).sum();
        let mut made = 0u64;
        let mut carry = 0.0;
        for d in 0..days {
            let exact = self.scale.sessions as f64 * weight(start_day + d) / total + carry;
            let mut count = exact.floor() as u64;
            carry = exact - count as f64;
            if d == days - 1 {
                count = self.scale.sessions - made;
            }
            made += count;
            let day_ms = self.scale.start_ms() + d * DAY_MS;
            let mut times: Vec<i64> = (0..count).map(|_| self.time_in_day(day_ms)).collect();
            times.sort_unstable();
            for t in times {
                self.session(t)?;
            }
        }
        Ok(())
    }

    fn time_in_day(&mut self, day_ms: i64) -> i64 {
        let total: u32 = HOURS.iter().sum();
        let mut pick = self.rng.u32(0..total);
        let mut hour = 0;
        while pick >= HOURS[hour] {
            pick -= HOURS[hour];
            hour += 1;
        }
        // The site's day: local midnight is UTC 21:00 of the day before.
        day_ms - ZONE_OFFSET_MS + hour as i64 * 3_600_000 + self.rng.i64(0..3_600_000)
    }

    fn weighted<T: Copy>(&mut self, items: &[T], weight: impl Fn(&T) -> u32) -> T {
        let total: u32 = items.iter().map(&weight).sum();
        let mut pick = self.rng.u32(0..total);
        for item in items {
            let w = weight(item);
            if pick < w {
                return *item;
            }
            pick -= w;
        }
        items[items.len() - 1]
    }

    /// The collector's format: 16 hex digits of stamp (the millisecond and
    /// a count), then 22 URL-safe base64 characters of randomness.
    fn session_id(&mut self, at_ms: i64) -> String {
        let floor = (at_ms as u64) << 16;
        self.last_stamp = floor.max(self.last_stamp + 1);
        let mut id = format!("{:016x}", self.last_stamp);
        const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for _ in 0..22 {
            id.push(URL_SAFE[self.rng.usize(0..64)] as char);
        }
        id
    }

    /// The visit's landing page and referrer, as the browser would send them.
    fn landing(&mut self, kind: Kind) -> (String, String, Option<(String, String)>) {
        let (path, _) = PAGES[self.rng.usize(0..PAGES.len())];
        let campaign = CAMPAIGNS[self.rng.usize(0..CAMPAIGNS.len())];
        let term = TERMS[self.rng.usize(0..TERMS.len())];
        let enc = |s: &str| s.replace(' ', "+");
        let r = |host: &str, path: &str| Some((host.to_owned(), path.to_owned()));
        match kind {
            Kind::GoogleAds => (
                path.into(),
                format!(
                    "utm_source=google&utm_medium=cpc&utm_campaign={campaign}&utm_term={}&gclid=Cj0KCQiA{:016x}",
                    enc(term),
                    self.rng.u64(..)
                ),
                r("www.google.com", "/"),
            ),
            Kind::YandexDirect => (
                path.into(),
                format!(
                    "utm_source=yandex&utm_medium=cpc&utm_campaign={campaign}&utm_term={}&yclid={}",
                    enc(term),
                    self.rng.u64(1_000_000_000_000..9_999_999_999_999)
                ),
                r("yandex.ru", "/"),
            ),
            Kind::Organic => {
                let host = ["www.google.com", "yandex.ru", "www.bing.com"][self.rng.usize(0..3)];
                (path.into(), String::new(), r(host, "/"))
            }
            Kind::Direct => (path.into(), String::new(), None),
            Kind::Referral => {
                let (host, path) = REFERRERS[self.rng.usize(0..REFERRERS.len())];
                ("/".into(), String::new(), r(host, path))
            }
            Kind::Instagram => (
                path.into(),
                "utm_source=instagram&utm_medium=social&utm_campaign=stories".into(),
                r("l.instagram.com", "/"),
            ),
            Kind::Email => {
                (path.into(), format!("utm_source=newsletter&utm_medium=email&utm_campaign={campaign}"), None)
            }
            Kind::Display => {
                let source = ["yandex", "vk"][self.rng.usize(0..2)];
                (path.into(), format!("utm_source={source}&utm_medium=cpm&utm_campaign={campaign}"), None)
            }
        }
    }

    fn touch(&mut self, kind: Kind, at_ms: i64) -> (Touch, String) {
        let (path, query, referrer) = self.landing(kind);
        let page = UrlParts { host: "demo.example", path: &path, query: &query };
        let referrer = referrer.as_ref().map(|(host, path)| UrlParts { host, path, query: "" });
        let visit = Visit::new(page, referrer, "");
        let url = if query.is_empty() {
            format!("https://demo.example{path}")
        } else {
            format!("https://demo.example{path}?{query}")
        };
        (classify(&visit, at_ms as u64), url)
    }

    fn write_touch(&mut self, session_id: &str, role: &str, t: &Touch, recorded_at_ms: i64) -> Result<()> {
        self.counts.touches += 1;
        self.row(
            "touches",
            &[
                ("session_id", Value::Text(session_id)),
                ("role", Value::Text(role)),
                ("at_ms", Value::Int(t.at_ms as i64)),
                ("recorded_at_ms", Value::Int(recorded_at_ms)),
                ("channel", Value::Text(t.channel.as_str())),
                ("source", Value::Text(&t.source)),
                ("medium", Value::Text(&t.medium)),
                ("campaign", Value::opt(t.campaign.as_deref())),
                ("term", Value::opt(t.term.as_deref())),
                ("content", Value::opt(t.content.as_deref())),
                ("utm_id", Value::opt(t.utm_id.as_deref())),
                ("click_id_kind", Value::opt(t.click_id.as_ref().map(|c| c.kind.param()))),
                ("click_id", Value::opt(t.click_id.as_ref().map(|c| c.value.as_str()))),
                ("landing_path", Value::Text(&t.landing_path)),
                ("referrer_host", Value::opt(t.referrer_host.as_deref())),
            ],
        )
    }

    /// A visit's page views: its landing page, then pages a reader opens.
    fn plan_page_views(&mut self, landing_url: String, mut at_ms: i64, into: &mut Vec<(String, i64)>) {
        into.push((landing_url, at_ms));
        while self.rng.f64() >= 0.45 {
            at_ms += self.rng.i64(15_000..180_000);
            into.push((format!("https://demo.example{}", PAGES[self.rng.usize(0..PAGES.len())].0), at_ms));
        }
    }

    fn write_page_view(&mut self, session_id: &str, url: &str, at_ms: i64) -> Result<()> {
        let path = url.trim_start_matches("https://demo.example");
        let path = path.split('?').next().unwrap_or("/");
        let title = PAGES.iter().find(|(p, _)| *p == path).map_or(PAGES[0].1, |(_, t)| *t);
        self.counts.page_views += 1;
        self.row(
            "page_views",
            &[
                ("session_id", Value::Text(session_id)),
                ("at_ms", Value::Int(at_ms)),
                ("url", Value::Text(url)),
                ("title", Value::Text(title)),
            ],
        )
    }

    fn session(&mut self, created_ms: i64) -> Result<()> {
        let shape = self.shape;
        let end_ms = self.scale.end_ms;
        let kind = self.weighted(KINDS, |(_, w)| *w).0;
        let agent = if self.rng.f64() < 0.03 {
            &BOT_AGENTS[self.rng.usize(0..BOT_AGENTS.len())]
        } else {
            &AGENTS[self.rng.usize(0..AGENTS.len())]
        };
        // As the collector decides it, from the User-Agent.
        let is_bot = ringsource_core::bots::is_bot(agent.ua);
        let id = self.session_id(created_ms);
        let client_id = if is_bot || self.rng.f64() < 0.15 {
            None
        } else if !self.clients.is_empty() && self.rng.f64() < 0.2 {
            Some(self.clients[self.rng.usize(0..self.clients.len())].clone())
        } else {
            let fresh = format!("{}.{}", self.rng.u32(100_000_000..999_999_999), created_ms / 1000);
            if self.clients.len() < 50_000 {
                self.clients.push(fresh.clone());
            } else {
                let i = self.rng.usize(0..self.clients.len());
                self.clients[i] = fresh.clone();
            }
            Some(fresh)
        };
        let ym_uid = (!is_bot && self.rng.f64() < 0.5)
            .then(|| format!("{}{}", created_ms / 1000, self.rng.u64(100_000_000..999_999_999)));

        // Touches and page views first, to know when the session was last seen.
        let (first, url) = self.touch(kind, created_ms);
        let mut touches = vec![("first", first, created_ms)];
        let mut views = Vec::new();
        self.plan_page_views(url, created_ms, &mut views);
        let extra = if self.rng.f64() < 0.75 { 0 } else { self.rng.usize(1..3) };
        for _ in 0..extra {
            let at = views.last().map_or(created_ms, |v| v.1) + self.rng.i64(60_000..1_800_000);
            let again = if self.rng.f64() < 0.7 { Kind::Direct } else { kind };
            let (t, url) = self.touch(again, at);
            touches.push(("last", t, at));
            self.plan_page_views(url, at, &mut views);
        }
        let last_visit_ms = touches.last().map_or(created_ms, |t| t.2);
        // Heartbeats keep the session seen while its page is open.
        let last_seen = views.last().map_or(created_ms, |v| v.1) + self.rng.i64(0..600_000);
        if last_seen >= end_ms {
            // The year ends at midnight: a visit that would run past it is
            // left for the next day.
            return Ok(());
        }
        let routed = if is_bot { Route::Promo } else { route(kind, shape) };
        let asked = matches!(routed, Route::Pool).then(|| shape.pool_id.clone());
        let (country, region, city, _) = self.weighted(PLACES, |p| p.3);
        self.counts.sessions += 1;
        // Retention empties a User-Agent a week after the session began.
        let user_agent = if created_ms < end_ms - USER_AGENT_DAYS * DAY_MS { "" } else { agent.ua };
        self.row(
            "sessions",
            &[
                ("id", Value::Text(&id)),
                ("site_id", Value::Text(&shape.id)),
                ("client_id", Value::opt(client_id.as_deref())),
                ("ym_uid", Value::opt(ym_uid.as_deref())),
                ("user_agent", Value::Text(user_agent)),
                ("is_bot", Value::Bool(is_bot)),
                ("created_at_ms", Value::Int(created_ms)),
                ("last_seen_ms", Value::Int(last_seen)),
                ("asked_pools", Value::opt(asked.as_deref())),
                ("country", Value::Text(country)),
                ("region", Value::Text(region)),
                ("city", Value::Text(city)),
                ("device_type", Value::Text(agent.kind)),
                ("device", Value::opt(agent.device)),
                ("browser", Value::Text(agent.browser)),
                ("os", Value::Text(agent.os)),
            ],
        )?;
        for (role, t, recorded) in &touches {
            self.write_touch(&id, role, t, *recorded)?;
        }
        // Page views go a month after they were made.
        for (url, at) in &views {
            if *at >= end_ms - PAGE_VIEWS_DAYS * DAY_MS {
                self.write_page_view(&id, url, *at)?;
            }
        }

        // The number the visitor was shown, and a call perhaps.
        let shown = match routed {
            Route::Pool => self.lease(&id, created_ms, last_seen)?,
            Route::Static(i) => Shown::Static(i),
            Route::Promo if is_bot => Shown::Original(None),
            Route::Promo => Shown::Original(Some(self.promo_code(&id, created_ms, last_visit_ms)?)),
        };
        if !is_bot && self.rng.f64() < call_rate(&routed) * self.call_factor {
            let path: Vec<Touch> = touches.iter().map(|(_, t, _)| t.clone()).collect();
            self.call(&id, &path, &shown, created_ms, last_seen)?;
        }
        self.report(false);
        Ok(())
    }

    /// The session's promo code, unique among the site's live codes when it
    /// was issued, reserved for `hold_days` after the session's last visit.
    fn promo_code(&mut self, session_id: &str, created_ms: i64, last_visit_ms: i64) -> Result<String> {
        while self.live_codes.front().is_some_and(|(until, _)| *until <= created_ms) {
            if let Some((_, code)) = self.live_codes.pop_front() {
                self.live_set.remove(&code);
            }
        }
        let code = loop {
            let code = PromoCode::generate(self.rng.u64(..), self.shape.promo_length)?.as_str().to_owned();
            if !self.live_set.contains(&code) {
                break code;
            }
        };
        let reserved_until = last_visit_ms + self.shape.promo_hold_days * DAY_MS;
        // Codes are reserved for about the same time, so the queue stays
        // nearly in order; one that lapses a little late is dropped late.
        self.live_codes.push_back((reserved_until, code.clone()));
        self.live_set.insert(code.clone());
        self.counts.promo_codes += 1;
        self.row(
            "promo_codes",
            &[
                ("site_id", Value::Text(&self.shape.id)),
                ("code", Value::Text(&code)),
                ("session_id", Value::Text(session_id)),
                ("issued_at_ms", Value::Int(created_ms)),
                ("reserved_until_ms", Value::Int(reserved_until)),
                // Lapsed reservations are retired when the next code is issued.
                ("retired", Value::Bool(reserved_until <= self.scale.end_ms)),
            ],
        )?;
        Ok(code)
    }

    fn lease(&mut self, session_id: &str, start_ms: i64, last_seen_ms: i64) -> Result<Shown> {
        let shape = self.shape;
        let minute = start_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        *self.first_asks.entry(minute).or_default() += 1;
        let Reverse((free_at, n)) = self.free_at.pop().context("the pool has numbers")?;
        if free_at > start_ms {
            self.free_at.push(Reverse((free_at, n)));
            self.counts.refusals += 1;
            let entry = self.exhaustions.entry(minute).or_insert((0, start_ms, start_ms));
            entry.0 += 1;
            entry.2 = start_ms;
            return Ok(Shown::Overflow);
        }
        let expires = last_seen_ms + shape.hold_secs * 1000;
        self.free_at.push(Reverse((expires + shape.cooldown_secs * 1000, n)));
        let previous = self.held[n].replace((session_id.to_owned(), start_ms, expires));
        self.counts.leases += 1;
        // Expired leases are closed by the next lease transaction; one that
        // is still held when the year ends stays open.
        let closed = expires <= self.scale.end_ms;
        self.row(
            "leases",
            &[
                ("site_id", Value::Text(&shape.id)),
                ("pool_id", Value::Text(&shape.pool_id)),
                ("number", Value::Text(&shape.pool[n])),
                ("session_id", Value::Text(session_id)),
                ("started_at_ms", Value::Int(start_ms)),
                ("expires_at_ms", Value::Int(expires)),
                ("hold_secs", Value::Int(shape.hold_secs)),
                ("ended_at_ms", Value::opt_int(closed.then_some(expires))),
                ("end_reason", Value::opt(closed.then_some("expired"))),
            ],
        )?;
        Ok(Shown::Pool { n, start_ms, expires_ms: expires, previous })
    }

    /// A caller: anonymous now and then, sometimes one who called before.
    fn caller(&mut self) -> (Option<String>, Option<usize>) {
        if self.rng.f64() < 0.02 {
            return (None, None);
        }
        if !self.callers.is_empty() && self.rng.f64() < 0.18 {
            let i = self.rng.usize(0..self.callers.len());
            return (Some(self.callers[i].number.clone()), Some(i));
        }
        let number = format!("+79{:09}", self.rng.u64(0..1_000_000_000));
        let fresh = Caller { number: number.clone(), last_ring_ms: None, session: None };
        let i = if self.callers.len() < 20_000 {
            self.callers.push(fresh);
            self.callers.len() - 1
        } else {
            let i = self.rng.usize(0..self.callers.len());
            self.callers[i] = fresh;
            i
        };
        (Some(number), Some(i))
    }

    fn call(
        &mut self,
        session_id: &str,
        touches: &[Touch],
        shown: &Shown,
        created_ms: i64,
        last_seen_ms: i64,
    ) -> Result<()> {
        let shape = self.shape;
        let ring = match shown {
            Shown::Pool { start_ms, expires_ms, .. } => {
                let held_until = *expires_ms;
                match self.rng.u32(0..100) {
                    // While the number is held (most calls), within the grace
                    // window after, or later but before the cooldown ends (the
                    // number cannot have gone to someone else by then).
                    0..90 => self.rng.i64(*start_ms + 20_000..held_until.max(start_ms + 20_001)),
                    90..96 => self.rng.i64(held_until..held_until + shape.grace_secs * 1000),
                    _ => self.rng.i64(held_until + shape.grace_secs * 1000..held_until + shape.cooldown_secs * 1000),
                }
            }
            _ => self.rng.i64(created_ms + 20_000..last_seen_ms + 3_600_000),
        };
        if ring + 600_000 >= self.scale.end_ms {
            return Ok(());
        }
        let id = self.next_call_id;
        self.next_call_id += 1;
        self.counts.calls += 1;
        let (caller, caller_i) = self.caller();
        let status = match self.rng.u32(0..100) {
            0..78 => CallStatus::Answered,
            78..90 => CallStatus::NoAnswer,
            90..94 => CallStatus::Busy,
            94..99 => CallStatus::Canceled,
            _ => CallStatus::Failed,
        };
        let answered = (status == CallStatus::Answered).then(|| ring + self.rng.i64(3_000..20_000));
        let talk = answered.map(|_| (-(1.0 - self.rng.f64()).ln() * 140.0) as i64 + 5);
        let ended = match (answered, talk) {
            (Some(a), Some(t)) => a + t * 1000,
            _ => ring + self.rng.i64(5_000..45_000),
        };
        let pbx_call_id = format!("gen-{id}-{:08x}", self.rng.u32(..));
        let recording = answered.map(|_| format!("https://pbx.example/recordings/{pbx_call_id}.mp3"));
        let (dialled, number_kind, pool_id, static_label) = match shown {
            Shown::Pool { n, .. } => (shape.pool[*n].as_str(), "pool", Some(shape.pool_id.as_str()), None),
            Shown::Static(i) => {
                (shape.statics[*i].number.as_str(), "static", None, Some(shape.statics[*i].label.as_str()))
            }
            Shown::Overflow => (shape.overflow.as_str(), "overflow", None, None),
            Shown::Original(_) => (shape.originals.first().map_or("", String::as_str), "original", None, None),
        };
        let to = PhoneNumber::parse(dialled).map_err(|e| anyhow::anyhow!("number {dialled}: {e}"))?;

        // The PBX's reports (generic adapter): the ring, the answer, the end.
        let event = |phase, status, answered_at: Option<i64>, ended_at: Option<i64>| CallEvent {
            pbx: "generic".into(),
            pbx_call_id: pbx_call_id.clone(),
            phase,
            from: caller.clone(),
            to: to.clone(),
            started_at_ms: Some(ring as u64),
            answered_at_ms: answered_at.map(|t| t as u64),
            ended_at_ms: ended_at.map(|t| t as u64),
            duration_secs: ended_at.map(|e| ((e - ring) / 1000) as u32),
            talk_secs: ended_at.and(talk).map(|t| t as u32),
            status,
            recording_url: ended_at.and(recording.clone()),
        };
        let mut events = vec![(ring + 300, event(CallPhase::Start, CallStatus::InProgress, None, None))];
        if let Some(a) = answered {
            events.push((a + 300, event(CallPhase::Answer, CallStatus::InProgress, Some(a), None)));
        }
        events.push((ended + 800, event(CallPhase::End, status, answered, Some(ended))));
        let folded: Vec<CallEvent> = events.iter().map(|(_, e)| e.clone()).collect();
        let call = Call::fold(&folded)?;

        // Attribution as the collector's workflow runs it: core's matcher on
        // the number's leases up to ring time (the previous holder's and this
        // session's), the promo code a manager named for a fifth of the calls
        // to the site's own number, and the caller's earlier call.
        let window_ms = shape.uniqueness_window_days * DAY_MS;
        let prior_call = caller_i.map(|i| &self.callers[i]);
        let caller_kind = match (&caller, prior_call) {
            (None, _) => "anonymous",
            (Some(_), Some(c)) if c.last_ring_ms.is_some_and(|t| t <= ring && ring - t <= window_ms) => "repeat",
            _ => "first-time",
        };
        let prior = prior_call
            .and_then(|c| c.session.as_ref())
            .filter(|(_, at, _)| *at < ring && ring - at <= window_ms)
            .map(|(s, _, touches)| (s.clone(), touches.clone()));
        let caller_prior = prior.as_ref().map(|(s, _)| s.clone());
        let mut tenures = Vec::new();
        if let Shown::Pool { start_ms, expires_ms, previous, .. } = shown {
            if let Some((s, from, until)) = previous {
                tenures.push(Tenure { session_id: s.clone(), started_at_ms: *from, held_until_ms: *until });
            }
            tenures.push(Tenure {
                session_id: session_id.to_owned(),
                started_at_ms: *start_ms,
                held_until_ms: *expires_ms,
            });
        }
        let promo = match shown {
            Shown::Original(Some(code)) if self.rng.f64() < 0.2 => Some(code.clone()),
            _ => None,
        };
        let dialled_role = match shown {
            Shown::Pool { .. } => Dialled::Pool { pool_id: &shape.pool_id, tenures: &tenures },
            Shown::Static(i) => Dialled::Static { label: &shape.statics[*i].label },
            Shown::Overflow => Dialled::Overflow,
            Shown::Original(_) => Dialled::Original,
        };
        let m = match_call(&Facts {
            ring_at_ms: ring,
            dialled: dialled_role,
            grace_ms: shape.grace_secs * 1000,
            promo: promo.as_deref().map(|c| (c, session_id)),
            caller_prior: caller_prior.as_deref(),
        });
        let chosen = m.session_id().map(str::to_owned);
        // Credits: the chosen session's touches up to ring time, by the
        // site's model (the collector also reads the other sessions of the
        // same client id; the generator credits the chosen session's own).
        let one = |c: CreditRow| (vec![c.clone()], c);
        let (credits, headline): (Vec<CreditRow>, CreditRow) = match (&chosen, shown) {
            (Some(s), _) => {
                let own = if s == session_id { touches } else { prior.as_ref().map_or(&[][..], |p| &p.1[..]) };
                let path = path(own.iter().filter(|t| t.at_ms as i64 <= ring).cloned().collect());
                if path.is_empty() {
                    return Err(anyhow::anyhow!("call {id}: session {s} has no touches before ring time"));
                }
                let headline_model = if shape.model == Model::Linear { Model::LastTouch } else { shape.model };
                let headline = credit(headline_model, &path)[0].touch;
                (
                    credit(shape.model, &path).iter().map(|c| CreditRow::of_touch(&path[c.touch], c.share)).collect(),
                    CreditRow::of_touch(&path[headline], 1.0),
                )
            }
            (None, Shown::Static(i)) => {
                let s = &shape.statics[*i];
                one(CreditRow::whole(&s.channel, &s.source, &s.medium, s.campaign.clone()))
            }
            (None, _) => one(CreditRow::whole("(unattributed)", "(unattributed)", "(none)", None)),
        };
        if let (Some(s), Some(i), Confidence::High | Confidence::Medium) = (&chosen, caller_i, m.confidence) {
            let own = if s == session_id { touches.to_vec() } else { prior.map(|p| p.1).unwrap_or_default() };
            self.callers[i].session = Some((s.clone(), ring, own));
        }
        if let Some(i) = caller_i {
            let last = &mut self.callers[i].last_ring_ms;
            *last = Some(last.map_or(ring, |t| t.max(ring)));
        }
        let to_i64 = |v: Option<u64>| v.map(|v| v as i64);
        self.row(
            "calls",
            &[
                ("id", Value::Int(id)),
                ("site_id", Value::Text(&shape.id)),
                ("pbx", Value::Text(&call.pbx)),
                ("pbx_call_id", Value::Text(&call.pbx_call_id)),
                ("caller", Value::opt(call.from.as_deref())),
                ("caller_key", Value::opt(caller.as_deref())),
                ("dialled", Value::Text(dialled)),
                ("number_kind", Value::Text(number_kind)),
                ("pool_id", Value::opt(pool_id)),
                ("static_label", Value::opt(static_label)),
                ("ring_at_ms", Value::Int(ring)),
                ("answered_at_ms", Value::opt_int(to_i64(call.answered_at_ms))),
                ("ended_at_ms", Value::opt_int(to_i64(call.ended_at_ms))),
                ("duration_secs", Value::opt_int(call.duration_secs.map(i64::from))),
                ("talk_secs", Value::opt_int(call.talk_secs.map(i64::from))),
                ("status", Value::Text(call.status.as_str())),
                ("is_target", Value::Bool(call.is_target(shape.target_call_secs))),
                ("is_missed", Value::Bool(call.is_missed())),
                ("caller_kind", Value::Text(caller_kind)),
                ("recording_url", Value::opt(call.recording_url.as_deref())),
                ("session_id", Value::opt(chosen.as_deref())),
                ("confidence", Value::Text(m.confidence.as_str())),
                ("reason", Value::Text(&m.reason)),
                ("model", Value::Text(shape.model.as_str())),
                ("promo_code", Value::opt(promo.as_deref())),
                ("promo_session_id", Value::opt(promo.as_ref().map(|_| session_id))),
                ("channel", Value::Text(&headline.channel)),
                ("source", Value::Text(&headline.source)),
                ("medium", Value::Text(&headline.medium)),
                ("campaign", Value::opt(headline.campaign.as_deref())),
                ("term", Value::opt(headline.term.as_deref())),
                ("first_heard_at_ms", Value::Int(ring + 300)),
                ("updated_at_ms", Value::Int(ended + 800)),
            ],
        )?;
        for (received, event) in &events {
            let json = serde_json::to_string(event)?;
            self.row(
                "call_events",
                &[
                    ("call_id", Value::Int(id)),
                    ("event_json", Value::Text(&json)),
                    ("received_at_ms", Value::Int(*received)),
                ],
            )?;
        }
        for c in &m.candidates {
            self.candidate(id, c, chosen.as_deref())?;
        }
        for (seq, c) in (0i64..).zip(&credits) {
            self.row(
                "call_credits",
                &[
                    ("call_id", Value::Int(id)),
                    ("seq", Value::Int(seq)),
                    ("share", Value::Float(c.share)),
                    ("at_ms", Value::opt_int(c.at_ms)),
                    ("channel", Value::Text(&c.channel)),
                    ("source", Value::Text(&c.source)),
                    ("medium", Value::Text(&c.medium)),
                    ("campaign", Value::opt(c.campaign.as_deref())),
                    ("term", Value::opt(c.term.as_deref())),
                    ("content", Value::opt(c.content.as_deref())),
                ],
            )?;
        }
        let is_target = call.is_target(shape.target_call_secs);
        self.manager_marks(id, is_target, call.is_missed(), ended)?;
        if is_target && self.rng.f64() < 0.12 {
            let deal = self.next_deal;
            self.next_deal += 1;
            let amount = (self.rng.f64() * 2.0 + 9.0).exp().round();
            let at = (ended + self.rng.i64(3_600_000..7 * DAY_MS)).min(self.scale.end_ms - 1);
            self.counts.revenue += 1;
            self.row(
                "revenue",
                &[
                    ("site_id", Value::Text(&shape.id)),
                    ("call_id", Value::Int(id)),
                    ("amount", Value::Float(amount)),
                    ("currency", Value::Text("RUB")),
                    ("deal_id", Value::Text(&format!("deal-{deal}"))),
                    ("at_ms", Value::Int(at)),
                    ("demo", Value::Bool(false)),
                    ("received_at_ms", Value::Int(at)),
                ],
            )?;
        }
        Ok(())
    }

    fn candidate(&mut self, call_id: i64, c: &Candidate, chosen: Option<&str>) -> Result<()> {
        self.row(
            "call_candidates",
            &[
                ("call_id", Value::Int(call_id)),
                ("session_id", Value::Text(&c.session_id)),
                ("relation", Value::Text(c.relation.as_str())),
                ("held_from_ms", Value::opt_int(c.held_from_ms)),
                ("held_until_ms", Value::opt_int(c.held_until_ms)),
                ("chosen", Value::Bool(chosen == Some(c.session_id.as_str()))),
            ],
        )
    }

    /// Tags a manager puts on some calls, and a note now and then.
    fn manager_marks(&mut self, call_id: i64, is_target: bool, is_missed: bool, ended_ms: i64) -> Result<()> {
        let tag = match self.rng.u32(0..100) {
            0..15 if is_target => Some("lead"),
            15..19 if is_target => Some("sale"),
            0..3 if !is_missed => Some("spam"),
            _ => None,
        };
        let at = ended_ms + self.rng.i64(60_000..3 * 3_600_000);
        if let Some(tag) = tag {
            self.counts.tags += 1;
            self.row(
                "call_tags",
                &[
                    ("call_id", Value::Int(call_id)),
                    ("tag", Value::Text(tag)),
                    ("tagged_by", Value::Text(MANAGER)),
                    ("at_ms", Value::Int(at)),
                ],
            )?;
        }
        if is_target && self.rng.f64() < 0.03 {
            self.row(
                "call_notes",
                &[
                    ("call_id", Value::Int(call_id)),
                    ("author", Value::Text(MANAGER)),
                    ("body", Value::Text("Перезвонить после 18:00, интересует угловой диван")),
                    ("at_ms", Value::Int(at)),
                ],
            )?;
        }
        Ok(())
    }

    /// The pool's refusals and first asks, per minute.
    fn pool_counts(&mut self) -> Result<()> {
        let shape = self.shape;
        for (minute, (events, first, last)) in std::mem::take(&mut self.exhaustions) {
            self.row(
                "pool_exhaustions",
                &[
                    ("site_id", Value::Text(&shape.id)),
                    ("pool_id", Value::Text(&shape.pool_id)),
                    ("minute_ms", Value::Int(minute)),
                    ("reason", Value::Text("exhausted")),
                    ("policy", Value::Text("overflow")),
                    ("outcome", Value::Text("overflow")),
                    ("number", Value::Text(&shape.overflow)),
                    ("events", Value::Int(events as i64)),
                    ("first_at_ms", Value::Int(first)),
                    ("last_at_ms", Value::Int(last)),
                ],
            )?;
        }
        for (minute, sessions) in std::mem::take(&mut self.first_asks) {
            self.row(
                "pool_first_asks",
                &[
                    ("site_id", Value::Text(&shape.id)),
                    ("pool_id", Value::Text(&shape.pool_id)),
                    ("minute_ms", Value::Int(minute)),
                    ("sessions", Value::Int(sessions as i64)),
                ],
            )?;
        }
        Ok(())
    }

    /// Daily advertising cost per paid source and campaign, in roubles, on
    /// the site's calendar; and the static numbers' monthly rent.
    fn costs(&mut self) -> Result<()> {
        let shape = self.shape;
        let scale = (self.scale.sessions as f64 / 10_000_000.0).max(0.001);
        let mut day = String::new();
        for d in 0..i64::from(self.scale.days) {
            let at = self.scale.start_ms() + d * DAY_MS;
            let date = jiff::Timestamp::from_millisecond(at)?.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
            day.clear();
            write!(day, "{date}")?;
            let mut rows: Vec<(&str, &str, &str, f64)> = Vec::new();
            for (source, medium) in [("google", "cpc"), ("yandex", "cpc"), ("yandex", "cpm"), ("vk", "cpm")] {
                for campaign in CAMPAIGNS {
                    rows.push((source, medium, campaign, self.rng.f64() * 4_000.0 + 500.0));
                }
            }
            if date.day() == 1 {
                for s in &shape.statics {
                    rows.push((&s.source, &s.medium, s.campaign.as_deref().unwrap_or(""), 30_000.0));
                }
            }
            for (source, medium, campaign, cost) in rows {
                let medium = if medium == "(not set)" { "" } else { medium };
                self.row(
                    "costs",
                    &[
                        ("site_id", Value::Text(&shape.id)),
                        ("day", Value::Text(&day)),
                        ("source", Value::Text(source)),
                        ("medium", Value::Text(medium)),
                        ("campaign", Value::Text(campaign)),
                        ("cost", Value::Float((cost * scale).round())),
                        ("currency", Value::Text("RUB")),
                        ("demo", Value::Bool(false)),
                        ("updated_at_ms", Value::Int(self.scale.end_ms)),
                    ],
                )?;
            }
        }
        Ok(())
    }

    fn report(&mut self, last: bool) {
        if !last && self.last_report.elapsed().as_secs() < 10 {
            return;
        }
        self.last_report = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let c = &self.counts;
        eprintln!(
            "  {:>5.1}% sessions {}/{}, calls {}, {} rows in {secs:.0} s ({:.0} rows/s)",
            c.sessions as f64 * 100.0 / self.scale.sessions as f64,
            c.sessions,
            self.scale.sessions,
            c.calls,
            c.rows,
            c.rows as f64 / secs
        );
    }
}

/// One share of a call's credit, as `call_credits` stores it.
#[derive(Clone)]
struct CreditRow {
    share: f64,
    at_ms: Option<i64>,
    channel: String,
    source: String,
    medium: String,
    campaign: Option<String>,
    term: Option<String>,
    content: Option<String>,
}

impl CreditRow {
    fn of_touch(t: &Touch, share: f64) -> Self {
        Self {
            share,
            at_ms: Some(t.at_ms as i64),
            channel: t.channel.as_str().to_owned(),
            source: t.source.clone(),
            medium: t.medium.clone(),
            campaign: t.campaign.clone(),
            term: t.term.clone(),
            content: t.content.clone(),
        }
    }

    fn whole(channel: &str, source: &str, medium: &str, campaign: Option<String>) -> Self {
        Self {
            share: 1.0,
            at_ms: None,
            channel: channel.to_owned(),
            source: source.to_owned(),
            medium: medium.to_owned(),
            campaign,
            term: None,
            content: None,
        }
    }
}

/// What the visitor was shown.
enum Shown {
    Pool {
        n: usize,
        start_ms: i64,
        expires_ms: i64,
        previous: Option<Held>,
    },
    Static(usize),
    Overflow,
    /// The site's own number, with the session's promo code (bots get none).
    Original(Option<String>),
}

/// Which backend the large site is written to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A SQLite file at `--out`.
    #[default]
    Sqlite,
    /// Database `largesite` of a private PostgreSQL cluster kept beside
    /// `--out` (`<out>.pg/`, [`pg_cluster_dir`]).
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// `cargo xtask largesite`.
pub struct Options {
    pub sessions: u64,
    pub calls: u64,
    pub seed: u64,
    /// The SQLite database to write; its config goes beside it (`.toml`).
    /// For PostgreSQL, the cluster, config and summary are named after it.
    pub out: PathBuf,
    /// Load with the secondary indexes in place instead of making them after.
    pub keep_indexes: bool,
    pub backend: Backend,
}

/// What `largesite` made, written beside the database as `<out>.json`
/// (`<out>.pg.json` for PostgreSQL): the bench reuses a database whose scale
/// matches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Made {
    pub scale: Scale,
    pub counts: Counts,
    /// The SQLite file, or the PostgreSQL cluster's directory.
    pub database: PathBuf,
    pub config: PathBuf,
    pub site: String,
    /// A promo code issued near the end of the year, and a call that has a
    /// session, for the bench's look-ups.
    pub promo_code: String,
    pub call_id: i64,
    pub load_secs: f64,
    pub bytes: u64,
    #[serde(default)]
    pub backend: Backend,
}

/// The PostgreSQL database the large site goes into, in its cluster.
pub const PG_DATABASE: &str = "largesite";

/// Server settings for the large site's cluster beyond the defaults: a load
/// of gigabytes would otherwise checkpoint every gigabyte of WAL. They change
/// no query plan.
pub const PG_SETTINGS: &[&str] = &["max_wal_size=8GB", "checkpoint_timeout=30min"];

pub fn manifest_path(out: &Path, backend: Backend) -> PathBuf {
    match backend {
        Backend::Sqlite => out.with_extension("json"),
        Backend::Postgres => out.with_extension("pg.json"),
    }
}

/// Where the PostgreSQL cluster of a large site written "at" `out` lives.
pub fn pg_cluster_dir(out: &Path) -> PathBuf {
    out.with_extension("pg")
}

/// Points the large site's config at `url` (the kept cluster listens on a
/// new port each time it starts).
pub fn point_config_at(config: &Path, url: &str) -> Result<()> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let mut table: toml::Table = toml::from_str(&text)?;
    let server = table.get_mut("server").and_then(|s| s.as_table_mut()).context("the config has no [server]")?;
    server.insert("database".into(), url.into());
    std::fs::write(config, toml::to_string(&table)?)?;
    Ok(())
}

/// The row counts of a load, printed.
fn print_counts(counts: &Counts) {
    println!(
        "\nlarge site loaded: {} rows ({} sessions, {} touches, {} page views, {} promo codes, {} leases, \
         {} pool refusals, {} calls, {} revenue, {} tags)",
        counts.rows,
        counts.sessions,
        counts.touches,
        counts.page_views,
        counts.promo_codes,
        counts.leases,
        counts.refusals,
        counts.calls,
        counts.revenue,
        counts.tags
    );
}

/// Generates the site into `sink` and lets it finish (indexes, keys): the
/// counts, then the seconds since `started` when the rows were written and
/// when the database was ready.
fn load(shape: &SiteShape, scale: &Scale, mut sink: Box<dyn Sink>, started: Instant) -> Result<(Counts, f64, f64)> {
    let counts = generate(shape, scale, sink.as_mut())?;
    let generated = started.elapsed().as_secs_f64();
    sink.finish()?;
    Ok((counts, generated, started.elapsed().as_secs_f64()))
}

/// The release collector's `retention` on `config`: any command that opens
/// the database migrates it, so the collector makes its own schema, and on
/// an empty database retention removes nothing.
fn migrate_with_collector(root: &Path, config: &Path) -> Result<()> {
    crate::bench::build_collector(root)?;
    let mut cmd = std::process::Command::new(root.join("target/release/ringsource"));
    cmd.current_dir(root).arg("retention").arg("--config").arg(config);
    crate::util::run(&mut cmd)
}

/// The promo code and the call the bench looks up, by SQL that reads the
/// same on both backends.
const PROMO_SQL: &str =
    "SELECT code FROM promo_codes WHERE site_id = 'SITE' AND NOT retired ORDER BY issued_at_ms DESC, id DESC LIMIT 1";
const CALL_SQL: &str =
    "SELECT max(id) FROM calls WHERE site_id = 'SITE' AND session_id IS NOT NULL AND number_kind = 'pool'";

/// Generates the site into `options.out` (replacing what was there), or
/// into the PostgreSQL database [`PG_DATABASE`] of the cluster kept at
/// [`pg_cluster_dir`] (made if missing; the database is made anew).
pub fn run(root: &Path, options: &Options) -> Result<Made> {
    let scale = Scale::new(options.sessions, options.calls, options.seed)?;
    eprintln!(
        "large site ({}): {} sessions, about {} calls, {} days to {}, a pool of {} numbers, seed {}",
        options.backend.label(),
        scale.sessions,
        scale.calls,
        scale.days,
        jiff::Timestamp::from_millisecond(scale.end_ms)?,
        scale.pool_numbers,
        scale.seed
    );
    let db = &options.out;
    let _ = std::fs::remove_file(manifest_path(db, options.backend));
    let made = match options.backend {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            let (config, shape) = write_config(root, &scale, db, &db.to_string_lossy())?;
            migrate_with_collector(root, &config)?;
            let started = Instant::now();
            let sink = sink::SqliteSink::open(db, !options.keep_indexes)?;
            let (counts, generated, load_secs) = load(&shape, &scale, Box::new(sink), started)?;
            let bytes = std::fs::metadata(db)?.len();
            let conn = rusqlite::Connection::open(db)?;
            let promo_code: String = conn.query_row(&PROMO_SQL.replace("SITE", &shape.id), [], |r| r.get(0))?;
            let call_id: i64 = conn.query_row(&CALL_SQL.replace("SITE", &shape.id), [], |r| r.get(0))?;
            print_counts(&counts);
            println!(
                "  rows generated and written in {:.1} s; ready (indexes made, keys checked) after {load_secs:.1} s; \
                 {:.2} GB",
                generated,
                bytes as f64 / 1e9
            );
            println!("  database: {}\n  config:   {}", db.display(), config.display());
            let site = shape.id.clone();
            Made {
                scale,
                counts,
                database: db.clone(),
                config,
                site,
                promo_code,
                call_id,
                load_secs,
                bytes,
                backend: Backend::Sqlite,
            }
        }
        Backend::Postgres => {
            let dir = pg_cluster_dir(db);
            let cluster = crate::postgres::Cluster::start_kept(&dir, PG_SETTINGS)?;
            let url = cluster.fresh_database(PG_DATABASE)?;
            let (config, shape) = write_config(root, &scale, db, &url)?;
            migrate_with_collector(root, &config)?;
            let started = Instant::now();
            let sink = postgres_sink::PostgresSink::open(&url, !options.keep_indexes)?;
            let (counts, generated, load_secs) = load(&shape, &scale, Box::new(sink), started)?;
            let bytes: u64 =
                cluster.query(PG_DATABASE, &format!("SELECT pg_database_size('{PG_DATABASE}')"))?.parse()?;
            let promo_code = cluster.query(PG_DATABASE, &PROMO_SQL.replace("SITE", &shape.id))?;
            let call_id: i64 = cluster.query(PG_DATABASE, &CALL_SQL.replace("SITE", &shape.id))?.parse()?;
            print_counts(&counts);
            println!(
                "  rows generated and streamed in {:.1} s; ready (indexes made, keys added, VACUUM ANALYZE) after \
                 {load_secs:.1} s; {:.2} GB",
                generated,
                bytes as f64 / 1e9
            );
            println!("  cluster:  {} (database {PG_DATABASE})\n  config:   {}", dir.display(), config.display());
            let site = shape.id.clone();
            Made {
                scale,
                counts,
                database: dir,
                config,
                site,
                promo_code,
                call_id,
                load_secs,
                bytes,
                backend: Backend::Postgres,
            }
        }
    };
    std::fs::write(manifest_path(db, options.backend), serde_json::to_string_pretty(&made)?)?;
    Ok(made)
}

/// The database `run` made with these options, if it is there and whole;
/// else makes it.
pub fn cached_or_run(root: &Path, options: &Options) -> Result<Made> {
    let manifest = manifest_path(&options.out, options.backend);
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        let made: Made = serde_json::from_str(&text).with_context(|| format!("reading {}", manifest.display()))?;
        let s = &made.scale;
        if s.sessions == options.sessions
            && s.calls == options.calls
            && s.seed == options.seed
            && made.backend == options.backend
            && made.database.exists()
        {
            eprintln!(
                "reusing {} ({} sessions, {} calls, made for the year to {})",
                made.database.display(),
                made.counts.sessions,
                made.counts.calls,
                jiff::Timestamp::from_millisecond(s.end_ms)?
            );
            return Ok(made);
        }
    }
    run(root, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty database in the collector's schema: its migration files
    /// applied in order, as `rusqlite_migration` applies them.
    fn collector_schema(path: &Path) -> rusqlite::Connection {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/collector/src/storage/sqlite/schema");
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|p| {
                let n = p.file_stem()?.to_str()?.strip_prefix('v')?.parse().ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        assert!(files.len() >= 11, "the collector's migrations: {files:?}");
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        for (n, file) in files {
            conn.execute_batch(&std::fs::read_to_string(&file).unwrap()).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {n}")).unwrap();
        }
        conn
    }

    fn demo_shape(pool_numbers: u32) -> SiteShape {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/ringsource.toml"))
                .unwrap();
        let config: toml::Table = toml::from_str(&text).unwrap();
        let site = config["sites"].as_array().unwrap()[0].as_table().unwrap();
        let pool = (0..pool_numbers).map(|i| format!("+7495710{i:04}")).collect();
        site_shape(site, pool).unwrap()
    }

    #[test]
    fn a_small_site_loads_into_the_collector_schema_as_the_collector_would_store_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("small.sqlite");
        drop(collector_schema(&db));
        // A month, and a pool of one number: busy enough to run out at times.
        let scale =
            Scale { sessions: 4_000, calls: 400, days: 30, pool_numbers: 1, seed: 3, end_ms: 1_796_601_600_000 };
        let shape = demo_shape(scale.pool_numbers);
        let mut sink: Box<dyn Sink> = Box::new(sink::SqliteSink::open(&db, true).unwrap());
        let counts = generate(&shape, &scale, sink.as_mut()).unwrap();
        // Keys checked, the dropped indexes made again as the migrations made them.
        sink.finish().unwrap();

        let conn = rusqlite::Connection::open(&db).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM sessions"), counts.sessions as i64);
        assert_eq!(count("SELECT count(*) FROM calls"), counts.calls as i64);
        assert!((250..=550).contains(&counts.calls), "about 400 calls: {}", counts.calls);
        assert!(counts.leases > 0 && counts.promo_codes > 0 && counts.refusals > 0, "{counts:?}");

        // Each call is what core folds from its stored events.
        let mut st = conn.prepare("SELECT id, status, talk_secs, is_target FROM calls").unwrap();
        let calls: Vec<(i64, String, Option<i64>, bool)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (id, status, talk, target) in calls {
            let events: Vec<CallEvent> = conn
                .prepare("SELECT event_json FROM call_events WHERE call_id = ?1 ORDER BY id")
                .unwrap()
                .query_map([id], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|j| serde_json::from_str(&j.unwrap()).unwrap())
                .collect();
            let call = Call::fold(&events).unwrap();
            assert_eq!(call.status.as_str(), status, "call {id}");
            assert_eq!(call.talk_secs.map(i64::from), talk, "call {id}");
            assert_eq!(call.is_target(shape.target_call_secs), target, "call {id}");
        }
        // Shares of one call add up to one call.
        assert_eq!(
            count(
                "SELECT count(*) FROM (SELECT call_id FROM call_credits GROUP BY call_id HAVING abs(sum(share) - 1) > 1e-9)"
            ),
            0
        );
        assert_eq!(count("SELECT count(DISTINCT call_id) FROM call_credits"), counts.calls as i64);
        // A chosen session is the chosen candidate.
        assert_eq!(
            count(
                "SELECT count(*) FROM calls c WHERE session_id IS NOT NULL AND promo_code IS NULL AND NOT EXISTS
                   (SELECT 1 FROM call_candidates k WHERE k.call_id = c.id AND k.session_id = c.session_id AND k.chosen)"
            ),
            0
        );
        // A number goes to its next visitor only after its cooldown.
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM leases a JOIN leases b ON b.number = a.number AND b.started_at_ms > a.started_at_ms
                 WHERE b.started_at_ms < a.expires_at_ms + {}",
                shape.cooldown_secs * 1000
            )),
            0
        );
        // High-confidence pool calls rang while their session held the number.
        assert_eq!(
            count(
                "SELECT count(*) FROM calls c WHERE number_kind = 'pool' AND confidence = 'high' AND NOT EXISTS
                   (SELECT 1 FROM leases l WHERE l.session_id = c.session_id AND l.number = c.dialled
                      AND l.started_at_ms <= c.ring_at_ms AND c.ring_at_ms < l.expires_at_ms)"
            ),
            0
        );
        // Retention's defaults hold: no page view older than a month, no
        // User-Agent older than a week.
        let end = scale.end_ms;
        assert_eq!(count(&format!("SELECT count(*) FROM page_views WHERE at_ms < {end} - 31 * 86400000")), 0);
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM sessions WHERE user_agent <> '' AND created_at_ms < {end} - 7 * 86400000"
            )),
            0
        );
        assert!(count("SELECT count(*) FROM promo_codes WHERE retired = 0") > 0);
    }
}
