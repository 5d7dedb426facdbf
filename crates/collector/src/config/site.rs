//! `[[sites]]`: a site's numbers, pools, promo codes, reports and retention,
//! validated into [`Site`]. The settings of the PBX adapters and of the
//! exports are theirs ([`crate::pbx::settings`], [`crate::services::exports`]); this
//! module only hands them their part of the table.

use std::collections::{BTreeMap, HashMap, HashSet};

use ringsource_core::attribution::Model;
use ringsource_core::lease::{ExhaustionPolicy, Shares};
use ringsource_core::phone::{PhoneNumber, Region};
use ringsource_core::promo::{self, PromoRouting};
use ringsource_core::routing::{RoutingTable, SourceRule};
use ringsource_core::wire::ShowNumber;
use serde::Deserialize;

use super::{Env, Issues};
use crate::exports::{Exports, RawExports};
use crate::pbx::settings::{PbxAuth, RawPbxSettings};

/// `[[sites]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: String,
    /// Origins (`https://shop.example`) whose pages may call the API.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Also allow pages served by the collector itself (the demo).
    #[serde(default)]
    pub allow_same_origin: bool,
    /// Region for numbers written in national form (`8 495 …`); without it
    /// numbers must be international (`+7 495 …`).
    #[serde(default)]
    pub region: Option<String>,
    pub originals: Vec<String>,
    /// Shown when a pool is exhausted under the `overflow` policy.
    #[serde(default)]
    pub overflow_number: Option<String>,
    #[serde(default)]
    pub consent_required: bool,
    #[serde(default)]
    pub show_number: Option<RawShowNumber>,
    /// The IANA time zone the site's reports count days in (`Europe/Moscow`).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The ISO 4217 code the site's cost and revenue are in (`RUB`): the
    /// dashboard shows amounts with its sign.
    #[serde(default)]
    pub currency: Option<String>,
    /// The BCP 47 locale the dashboard formats numbers, money and dates in
    /// (`ru-RU`); without it, the reader's browser's.
    #[serde(default)]
    pub locale: Option<String>,
    /// A caller is "unique" when they have not called within this many days.
    #[serde(default = "default_uniqueness_days")]
    pub uniqueness_window_days: u32,
    /// An answered call at least this long is a target call.
    #[serde(default = "default_target_call_secs")]
    pub target_call_secs: u32,
    /// How a call's credit is split over the visitor's touches.
    #[serde(default)]
    pub attribution_model: Model,
    /// A call this long after the lease ended still goes to its session.
    #[serde(default = "default_grace_secs")]
    pub grace_secs: u32,
    /// Promo codes for the visits that get no tracking number.
    #[serde(default)]
    pub promo: Option<RawPromo>,
    #[serde(default)]
    pub static_numbers: Vec<RawStatic>,
    #[serde(default)]
    pub pools: Vec<RawPool>,
    /// Shared secrets per PBX adapter (`generic`, `twilio`, …).
    /// `RINGSOURCE_SITE_<ID>_PBX_<ADAPTER>_SECRET` overrides each.
    #[serde(default)]
    pub pbx_secrets: BTreeMap<String, String>,
    /// What goes with some adapters' secrets (`twilio_url`, `mango_api_key`, …).
    #[serde(default)]
    pub pbx: RawPbxSettings,
    /// `[sites.exports]`: GA4 and CRM exports of ended calls.
    #[serde(default)]
    pub exports: RawExports,
    /// `[sites.retention]`: how long personal data is kept.
    #[serde(default)]
    pub retention: Retention,
    /// `[sites.recordings.<adapter>]`: credentials for the PBX's recordings.
    #[serde(default)]
    pub recordings: crate::pbx::recordings::RawRecordings,
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}
fn default_uniqueness_days() -> u32 {
    30
}
fn default_target_call_secs() -> u32 {
    30
}
fn default_grace_secs() -> u32 {
    120
}

/// `[sites.promo]`: which visits see a promo code instead of a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPromo {
    /// Visits matching any rule get a code (checked after static numbers and pools).
    #[serde(default)]
    pub rules: Vec<SourceRule>,
    /// Visits that match nothing else get a code instead of the original number.
    #[serde(default)]
    pub fallback: bool,
    #[serde(default = "default_promo_length")]
    pub length: usize,
    /// A code stays reserved for its session this long after the session's
    /// last visit, so a caller who names it days later is still found.
    #[serde(default = "default_promo_hold_days")]
    pub hold_days: u32,
}

fn default_promo_length() -> usize {
    promo::DEFAULT_LENGTH
}
fn default_promo_hold_days() -> u32 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShowNumber {
    pub selector: String,
    #[serde(default = "default_show_label")]
    pub label: String,
}

fn default_show_label() -> String {
    "Show number".to_owned()
}

/// `[[sites.static_numbers]]`: one number per source; without `rule` it is
/// offline only (billboard, directory) and never shown on the site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatic {
    pub number: String,
    pub label: String,
    #[serde(default)]
    pub rule: Option<SourceRule>,
    /// The source its calls are reported under: the `source` its cost is
    /// uploaded with, so calls and cost meet in one report row.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub medium: Option<String>,
    #[serde(default)]
    pub campaign: Option<String>,
}

/// `[[sites.pools]]`: a dynamic pool and the sources it serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub id: String,
    pub numbers: Vec<String>,
    pub rules: Vec<SourceRule>,
    #[serde(default = "default_hold_secs")]
    pub hold_secs: u32,
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u32,
    #[serde(default = "default_cooldown_secs")]
    pub cooldown_secs: u32,
    #[serde(default)]
    pub on_exhaustion: ExhaustionPolicy,
    /// Fraction of the numbers one client (IPv4 address, IPv6 /64) keeps
    /// while others want them (at least one number).
    #[serde(default = "default_client_share")]
    pub client_share: f64,
    /// The same for a network (IPv4 /24, IPv6 /48).
    #[serde(default = "default_network_share")]
    pub network_share: f64,
    /// The same for a provider (IPv4 /16, IPv6 /32).
    #[serde(default = "default_provider_share")]
    pub provider_share: f64,
    /// Heartbeats alone renew a lease for at most this long after the
    /// session's last visit or page view.
    #[serde(default = "default_heartbeat_only_secs")]
    pub heartbeat_only_secs: u32,
}

fn default_client_share() -> f64 {
    0.2
}
fn default_network_share() -> f64 {
    0.4
}
fn default_provider_share() -> f64 {
    0.6
}
fn default_heartbeat_only_secs() -> u32 {
    30 * 60
}
fn default_hold_secs() -> u32 {
    15 * 60
}
fn default_heartbeat_secs() -> u32 {
    60
}
fn default_cooldown_secs() -> u32 {
    10 * 60
}

/// `[sites.retention]`: days after which personal data is dropped or
/// reduced (see the collector's README, "Privacy", for why these defaults).
/// Calls and their attribution are kept; only the caller can be masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// A visit (its session, touches, page views, leases and promo codes)
    /// that no call was attributed to goes this long after it was last seen
    /// (and once its lease and promo code are over). Pool events go after it.
    #[serde(default = "default_visits_days")]
    pub visits_days: u32,
    /// Any session's page views (URLs and titles) go after this.
    #[serde(default = "default_page_views_days")]
    pub page_views_days: u32,
    /// A session's User-Agent is emptied this long after the session began.
    #[serde(default = "default_user_agent_days")]
    pub user_agent_days: u32,
    /// A call's caller number is masked (all but its last two digits) this
    /// long after it rang; left out, it is kept.
    #[serde(default)]
    pub caller_days: Option<u32>,
    /// Exports delivered (or skipped) go this long after their last attempt.
    #[serde(default = "default_exports_days")]
    pub exports_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            visits_days: default_visits_days(),
            page_views_days: default_page_views_days(),
            user_agent_days: default_user_agent_days(),
            caller_days: None,
            exports_days: default_exports_days(),
        }
    }
}

/// The longest window the pools report reads (93 days), so the dashboard's
/// pool history is whole.
fn default_visits_days() -> u32 {
    93
}
/// A month and a day: the promo hold and the uniqueness window (30 days by
/// default) with a day to spare, so a call in that time still shows the
/// visitor's pages.
fn default_page_views_days() -> u32 {
    31
}
/// A week to look into a visitor taken for a crawler (or not); the crawler
/// verdict itself is kept with the session.
fn default_user_agent_days() -> u32 {
    7
}
/// A month to see in `GET /v1/exports` what the CRM and GA4 were sent.
fn default_exports_days() -> u32 {
    30
}
/// Longer than this is a typo (a hundred years).
const MAX_RETENTION_DAYS: u32 = 36_500;

/// A validated site.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    /// ASCII-serialised origins (`scheme://host[:port]`).
    pub allowed_origins: HashSet<String>,
    pub allow_same_origin: bool,
    pub originals: Vec<PhoneNumber>,
    pub overflow_number: Option<PhoneNumber>,
    pub consent_required: bool,
    pub show_number: Option<ShowNumber>,
    /// Report days, date filters and displayed times are in this zone.
    pub time_zone: jiff::tz::TimeZone,
    /// ISO 4217, upper case; for display only (amounts are stored as posted).
    pub currency: Option<String>,
    /// A well-formed BCP 47 tag; for display only.
    pub locale: Option<String>,
    pub uniqueness_window_days: u32,
    pub target_call_secs: u32,
    pub attribution_model: Model,
    pub grace_secs: u32,
    pub promo: Option<PromoConfig>,
    pub static_numbers: Vec<StaticNumber>,
    pub pools: Vec<Pool>,
    pub pbx_secrets: BTreeMap<String, String>,
    /// The PBX adapters' validated credentials; an adapter without them is off.
    pub pbx: PbxAuth,
    /// Where ended calls are exported (GA4, CRM), and how retries go.
    pub exports: Exports,
    /// How long personal data is kept.
    pub retention: Retention,
    /// Credentials the collector fetches the PBXs' recordings with.
    pub recordings: crate::pbx::recordings::Recordings,
    /// Where national numbers from a PBX are read ("8 495 …", "74951234567").
    pub region: Option<Region>,
    /// Built from the static numbers' and pools' rules, same indices.
    pub routing: RoutingTable,
}

/// A validated `[sites.promo]`.
#[derive(Debug, Clone)]
pub struct PromoConfig {
    pub routing: PromoRouting,
    pub length: usize,
    pub hold_days: u32,
}

#[derive(Debug, Clone)]
pub struct StaticNumber {
    pub number: PhoneNumber,
    pub label: String,
    pub rule: Option<SourceRule>,
    /// What its calls are credited to in reports.
    pub report_as: StaticSource,
}

/// The channel, source, medium and campaign a static number's calls are
/// credited to.
///
/// With `source` configured they are the cost rows' own words: source and
/// medium in lower case as costs are stored, campaign as written, a missing
/// medium `(not set)` as a cost row without one; the channel is the rule's
/// when it names one, `Offline` for a number without a rule, else what
/// core's channel rules make of a visit tagged with that source and medium
/// (what a cost row of that source and medium is classified as too).
/// Without `source` the label is the source and the medium `static`, as
/// before sources could be configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSource {
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    /// `source` (and `medium`) came from the configuration: cost rows with
    /// this source and medium take this channel.
    pub configured: bool,
}

/// The channel of a static number's calls that have no source configured,
/// and of a number without a rule.
const STATIC_CHANNEL: &str = "Static number";
const OFFLINE_CHANNEL: &str = "Offline";
/// What a report shows for a medium or campaign that is not set.
pub const NOT_SET: &str = "(not set)";
/// Longest source, medium or campaign (as for uploaded cost rows).
const MAX_SOURCE_TEXT: usize = 200;

#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub numbers: Vec<PhoneNumber>,
    pub rules: Vec<SourceRule>,
    pub hold_secs: u32,
    pub heartbeat_secs: u32,
    pub cooldown_secs: u32,
    pub on_exhaustion: ExhaustionPolicy,
    /// What one client, network or provider keeps of the pool while others
    /// want numbers (`core::lease::Fairness`).
    pub shares: Shares,
    pub heartbeat_only_secs: u32,
}

impl Site {
    /// Heartbeat interval the browser is told up front: the shortest of the
    /// pools' (60 s without pools), so no lease can lapse between beats.
    pub fn heartbeat_secs(&self) -> u32 {
        self.pools.iter().map(|p| p.heartbeat_secs).min().unwrap_or_else(default_heartbeat_secs)
    }
    /// Hold time the browser is told up front: the longest of the pools'.
    pub fn hold_secs(&self) -> u32 {
        self.pools.iter().map(|p| p.hold_secs).max().unwrap_or_else(default_hold_secs)
    }
    /// The IANA name of the site's time zone (`UTC` by default).
    pub fn time_zone_name(&self) -> &str {
        self.time_zone.iana_name().unwrap_or("UTC")
    }
    /// The channel a cost row of `source` and `medium` (as stored: lower
    /// case, `""` for no medium) is reported in: the channel of a static
    /// number configured with that source and medium, so its calls and its
    /// cost meet; otherwise core's channel rules
    /// ([`cost_channel`]).
    pub fn cost_channel(&self, source: &str, medium: &str) -> String {
        let medium = if medium.is_empty() { NOT_SET } else { medium };
        self.static_numbers
            .iter()
            .map(|s| &s.report_as)
            .find(|r| r.configured && r.source == source && r.medium == medium)
            .map_or_else(|| cost_channel(source, medium_for_rules(medium)).to_owned(), |r| r.channel.clone())
    }
}

/// A medium as core's channel rules take it: none when it is not set.
fn medium_for_rules(medium: &str) -> &str {
    if medium == NOT_SET { "" } else { medium }
}

/// The environment variable that overrides a site's PBX secret:
/// `RINGSOURCE_SITE_<ID>_PBX_<ADAPTER>_SECRET`, upper-cased, with every
/// character other than A–Z and 0–9 turned into `_`.
pub fn pbx_secret_env_var(site_id: &str, adapter: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
    };
    format!("RINGSOURCE_SITE_{}_PBX_{}_SECRET", clean(site_id), clean(adapter))
}

fn valid_site_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(super) fn validate_site(
    raw: RawSite,
    path: &str,
    env: &dyn Env,
    seen: &mut HashMap<PhoneNumber, String>,
    issues: &mut Issues<'_>,
) -> Option<Site> {
    let before = issues.list.len();
    if !valid_site_id(&raw.id) {
        issues.push(format!("{path}.id"), format!("{:?} must be 1-64 characters of a-z, 0-9, '-' or '_'", raw.id));
    }
    let region = match raw.region.as_deref().map(str::parse::<Region>) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            issues.push(format!("{path}.region"), e.to_string());
            None
        }
    };
    let mut number = |text: &str, field: String, issues: &mut Issues<'_>| -> Option<PhoneNumber> {
        let parsed = match region {
            Some(r) => PhoneNumber::parse_national(text, r),
            None => PhoneNumber::parse(text),
        };
        match parsed {
            Ok(n) => {
                if let Some(other) = seen.get(&n) {
                    issues.push(field, format!("{} is already used at {other}", n.e164()));
                } else {
                    seen.insert(n.clone(), field);
                }
                Some(n)
            }
            Err(e) => {
                issues.push(field, e.to_string());
                None
            }
        }
    };

    let mut allowed_origins = HashSet::new();
    for (i, o) in raw.allowed_origins.iter().enumerate() {
        match normalise_origin(o) {
            Ok(origin) => {
                allowed_origins.insert(origin);
            }
            Err(reason) => issues.push(format!("{path}.allowed_origins[{i}]"), reason),
        }
    }

    if raw.originals.is_empty() {
        issues.push(format!("{path}.originals"), "list at least one of the site's own numbers");
    }
    let originals: Vec<PhoneNumber> = raw
        .originals
        .iter()
        .enumerate()
        .filter_map(|(i, t)| number(t, format!("{path}.originals[{i}]"), issues))
        .collect();
    let overflow_number =
        raw.overflow_number.as_deref().and_then(|t| number(t, format!("{path}.overflow_number"), issues));

    let show_number = raw.show_number.map(|s| {
        if s.selector.trim().is_empty() {
            issues.push(format!("{path}.show_number.selector"), "must be a CSS selector");
        }
        if s.label.trim().is_empty() {
            issues.push(format!("{path}.show_number.label"), "must not be empty");
        }
        ShowNumber { selector: s.selector, label: s.label }
    });
    if raw.target_call_secs == 0 {
        issues.push(format!("{path}.target_call_secs"), "must be at least 1");
    }
    if raw.grace_secs > 86_400 {
        issues.push(format!("{path}.grace_secs"), "must be at most 86400 (one day)");
    }
    let promo = raw.promo.map(|p| {
        let pp = format!("{path}.promo");
        if !(promo::MIN_LENGTH..=promo::MAX_LENGTH).contains(&p.length) {
            issues.push(
                format!("{pp}.length"),
                format!("must be between {} and {}", promo::MIN_LENGTH, promo::MAX_LENGTH),
            );
        }
        if p.rules.is_empty() && !p.fallback {
            issues.push(pp.clone(), "set rules, fallback = true, or both; otherwise no visit ever gets a code");
        }
        for (j, r) in p.rules.iter().enumerate() {
            if let Err(e) = r.validate() {
                issues.push(format!("{pp}.rules[{j}]"), e.to_string());
            }
        }
        if p.hold_days == 0 {
            issues.push(format!("{pp}.hold_days"), "must be at least 1");
        }
        PromoConfig {
            routing: PromoRouting { rules: p.rules, fallback: p.fallback },
            length: p.length,
            hold_days: p.hold_days,
        }
    });

    let time_zone = match jiff::tz::TimeZone::get(raw.time_zone.trim()) {
        Ok(zone) => zone,
        Err(e) => {
            issues.push(
                format!("{path}.time_zone"),
                format!(
                    "{:?} is not an IANA time zone name such as \"Europe/Moscow\" or \"America/New_York\" ({e})",
                    raw.time_zone
                ),
            );
            jiff::tz::TimeZone::UTC
        }
    };

    let currency = raw.currency.as_deref().map(str::trim).and_then(|c| {
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
            Some(c.to_owned())
        } else {
            issues
                .push(format!("{path}.currency"), format!("{c:?} is not an ISO 4217 code such as \"EUR\" or \"RUB\""));
            None
        }
    });
    let locale = raw.locale.as_deref().map(str::trim).and_then(|l| match language_tags::LanguageTag::parse(l) {
        Ok(tag) => Some(tag.to_string()),
        Err(e) => {
            issues.push(
                format!("{path}.locale"),
                format!("{l:?} is not a BCP 47 locale such as \"en-US\" or \"ru-RU\" ({e})"),
            );
            None
        }
    });

    let mut static_numbers: Vec<StaticNumber> = Vec::new();
    for (i, s) in raw.static_numbers.into_iter().enumerate() {
        let p = format!("{path}.static_numbers[{i}]");
        if s.label.trim().is_empty() {
            issues.push(format!("{p}.label"), "must not be empty");
        }
        if let Some(rule) = &s.rule
            && let Err(e) = rule.validate()
        {
            issues.push(format!("{p}.rule"), e.to_string());
        }
        let report_as = static_source(&s, &p, issues);
        if report_as.configured
            && let Some((j, other)) = static_numbers.iter().enumerate().find(|(_, o)| {
                o.report_as.configured
                    && o.report_as.source == report_as.source
                    && o.report_as.medium == report_as.medium
                    && o.report_as.channel != report_as.channel
            })
        {
            issues.push(
                format!("{p}.source"),
                format!(
                    "{path}.static_numbers[{j}] has the same source and medium in channel {:?}, this one in {:?}; \
                     their cost rows can go to only one channel (give both the same rule channel, or another medium)",
                    other.report_as.channel, report_as.channel
                ),
            );
        }
        if let Some(n) = number(&s.number, format!("{p}.number"), issues) {
            static_numbers.push(StaticNumber { number: n, label: s.label, rule: s.rule, report_as });
        }
    }

    let mut pools = Vec::new();
    let mut pool_ids = HashSet::new();
    for (i, p) in raw.pools.into_iter().enumerate() {
        let pp = format!("{path}.pools[{i}]");
        if !valid_site_id(&p.id) {
            issues.push(format!("{pp}.id"), format!("{:?} must be 1-64 characters of a-z, 0-9, '-' or '_'", p.id));
        }
        if !pool_ids.insert(p.id.clone()) {
            issues.push(format!("{pp}.id"), format!("duplicate pool id {:?}", p.id));
        }
        if p.numbers.is_empty() {
            issues.push(format!("{pp}.numbers"), "a pool needs at least one number");
        }
        let numbers: Vec<PhoneNumber> =
            p.numbers.iter().enumerate().filter_map(|(j, t)| number(t, format!("{pp}.numbers[{j}]"), issues)).collect();
        if p.rules.is_empty() {
            issues.push(format!("{pp}.rules"), "a pool needs at least one source rule");
        }
        for (j, r) in p.rules.iter().enumerate() {
            if let Err(e) = r.validate() {
                issues.push(format!("{pp}.rules[{j}]"), e.to_string());
            }
        }
        if p.hold_secs < 60 {
            issues.push(format!("{pp}.hold_secs"), "must be at least 60");
        }
        if p.heartbeat_secs == 0 || p.heartbeat_secs >= p.hold_secs {
            issues.push(
                format!("{pp}.heartbeat_secs"),
                format!(
                    "must be between 1 and hold_secs - 1 ({}), or the lease lapses between beats",
                    p.hold_secs.saturating_sub(1)
                ),
            );
        }
        for (key, share) in
            [("client_share", p.client_share), ("network_share", p.network_share), ("provider_share", p.provider_share)]
        {
            if !(share > 0.0 && share <= 1.0) {
                issues.push(
                    format!("{pp}.{key}"),
                    format!("{share} must be a fraction of the pool above 0 and at most 1"),
                );
            }
        }
        if p.heartbeat_only_secs < p.hold_secs {
            issues.push(
                format!("{pp}.heartbeat_only_secs"),
                format!("must be at least hold_secs ({}): a new lease already lasts that long", p.hold_secs),
            );
        }
        if p.on_exhaustion == ExhaustionPolicy::Overflow && raw.overflow_number.is_none() {
            issues.push(
                format!("{pp}.on_exhaustion"),
                "\"overflow\" (the default) needs the site's overflow_number; set it or choose \"original\" or \"take-over-oldest\"",
            );
        }
        pools.push(Pool {
            id: p.id,
            numbers,
            rules: p.rules,
            hold_secs: p.hold_secs,
            heartbeat_secs: p.heartbeat_secs,
            cooldown_secs: p.cooldown_secs,
            on_exhaustion: p.on_exhaustion,
            shares: Shares { client: p.client_share, network: p.network_share, provider: p.provider_share },
            heartbeat_only_secs: p.heartbeat_only_secs,
        });
    }

    let mut pbx_secrets = raw.pbx_secrets;
    for (adapter, secret) in pbx_secrets.iter_mut() {
        if let Some(v) = env.var(&pbx_secret_env_var(&raw.id, adapter)) {
            *secret = v;
        }
        if secret.is_empty() {
            issues.push(format!("{path}.pbx_secrets.{adapter}"), "must not be empty");
        }
    }
    let pbx = PbxAuth::from_config(&pbx_secrets, raw.pbx).unwrap_or_else(|found| {
        for (field, reason) in found {
            issues.push(format!("{path}.{field}"), reason);
        }
        PbxAuth::default()
    });

    let exports = Exports::from_raw(raw.exports.with_env_secrets(&raw.id, env)).unwrap_or_else(|found| {
        for (field, reason) in found {
            issues.push(format!("{path}.{field}"), reason);
        }
        Exports::default()
    });

    validate_retention(&raw.retention, raw.uniqueness_window_days, &format!("{path}.retention"), issues);
    let recordings = crate::pbx::recordings::Recordings::from_raw(&raw.id, raw.recordings, &|name| env.var(name))
        .unwrap_or_else(|found| {
            for (field, reason) in found {
                issues.push(format!("{path}.{field}"), reason);
            }
            crate::pbx::recordings::Recordings::default()
        });

    if issues.list.len() != before {
        return None;
    }
    let routing = RoutingTable {
        statics: static_numbers.iter().map(|s| s.rule.iter().cloned().collect()).collect(),
        pools: pools.iter().map(|p| p.rules.clone()).collect(),
    };
    Some(Site {
        id: raw.id,
        allowed_origins,
        allow_same_origin: raw.allow_same_origin,
        originals,
        overflow_number,
        consent_required: raw.consent_required,
        show_number,
        time_zone,
        currency,
        locale,
        uniqueness_window_days: raw.uniqueness_window_days,
        target_call_secs: raw.target_call_secs,
        attribution_model: raw.attribution_model,
        grace_secs: raw.grace_secs,
        promo,
        static_numbers,
        pools,
        pbx_secrets,
        pbx,
        exports,
        retention: raw.retention,
        recordings,
        region,
        routing,
    })
}

fn validate_retention(r: &Retention, uniqueness_window_days: u32, path: &str, issues: &mut Issues<'_>) {
    let days = [
        ("visits_days", r.visits_days),
        ("page_views_days", r.page_views_days),
        ("user_agent_days", r.user_agent_days),
        ("exports_days", r.exports_days),
    ];
    for (field, value) in days.into_iter().chain(r.caller_days.map(|d| ("caller_days", d))) {
        if !(1..=MAX_RETENTION_DAYS).contains(&value) {
            issues.push(format!("{path}.{field}"), format!("must be 1 to {MAX_RETENTION_DAYS} days"));
        }
    }
    // Repeat callers are found by their number within the window: a number
    // masked sooner would make a repeat caller look new.
    if let Some(days) = r.caller_days.filter(|d| (1..uniqueness_window_days).contains(d)) {
        issues.push(
            format!("{path}.caller_days"),
            format!(
                "{days} is shorter than uniqueness_window_days ({uniqueness_window_days}): a repeat caller would be \
                 taken for a new one; mask later, or shorten the window"
            ),
        );
    }
}

/// What a static number's calls are credited to (see [`StaticSource`]),
/// with an issue for each bad field.
fn static_source(s: &RawStatic, path: &str, issues: &mut Issues<'_>) -> StaticSource {
    let mut text = |field: &str, value: &Option<String>| -> Option<String> {
        let v = value.as_deref()?.trim();
        if v.is_empty() {
            issues.push(format!("{path}.{field}"), "must not be empty (leave it out instead)");
            None
        } else if v.chars().count() > MAX_SOURCE_TEXT {
            issues.push(format!("{path}.{field}"), format!("is longer than {MAX_SOURCE_TEXT} characters"));
            None
        } else {
            Some(v.to_owned())
        }
    };
    let source = text("source", &s.source).map(|v| v.to_lowercase());
    let medium = text("medium", &s.medium).map(|v| v.to_lowercase());
    let campaign = text("campaign", &s.campaign);
    let rule_channel = s.rule.as_ref().map(|r| r.channel.map(|c| c.as_str()));
    let Some(source) = source else {
        for (field, given) in [("medium", medium.is_some()), ("campaign", campaign.is_some())] {
            if given && s.source.is_none() {
                issues.push(
                    format!("{path}.{field}"),
                    "needs `source`: calls meet their cost by source first, then medium and campaign",
                );
            }
        }
        return StaticSource {
            channel: rule_channel.map_or(OFFLINE_CHANNEL, |c| c.unwrap_or(STATIC_CHANNEL)).to_owned(),
            source: s.label.clone(),
            medium: "static".to_owned(),
            campaign: None,
            configured: false,
        };
    };
    let medium = medium.unwrap_or_else(|| NOT_SET.to_owned());
    let channel = match rule_channel {
        Some(Some(named)) => named.to_owned(),
        Some(None) => cost_channel(&source, medium_for_rules(&medium)).to_owned(),
        None => OFFLINE_CHANNEL.to_owned(),
    };
    StaticSource { channel, source, medium, campaign, configured: true }
}

/// `https://Shop.Example:443/` → `https://shop.example`; rejects anything
/// that is not a bare http(s) origin.
pub fn normalise_origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must start with http:// or https://"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{text:?} must be an origin only (scheme://host[:port]), without a path"));
    }
    Ok(url.origin().ascii_serialization())
}

/// The channel of a cost row: what core's channel rules make of a visit
/// tagged `utm_source=<source>&utm_medium=<medium>`, so cost meets the calls
/// of the same channel in `group_by=channel` reports.
pub fn cost_channel(source: &str, medium: &str) -> &'static str {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("utm_source", source);
    if !medium.is_empty() {
        query.append_pair("utm_medium", medium);
    }
    let query = query.finish();
    let page = ringsource_core::visit::UrlParts { host: "", path: "/", query: &query };
    ringsource_core::channel::Channel::of(&ringsource_core::visit::Visit::new(page, None, "")).as_str()
}
