//! Exports of ended calls: a GA4 Measurement Protocol event and a CRM
//! webhook signed per Standard Webhooks, through the outbox.
//!
//! The calls store writes the rows ([`payloads`] builds their bodies) in the
//! transaction that ends a call; [`worker`] delivers due rows with
//! exponential backoff until `max_attempts`, after which a row is `dead` (the
//! dead letter, listed by `GET /v1/exports?status=dead` and requeued by
//! `POST /v1/exports/{id}/retry`). Every row keeps one `webhook-id` for all
//! its attempts, so a receiver drops a retry of a delivery it already took.
//!
//! `[sites.exports]`:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `ga4.measurement_id`, `ga4.api_secret` | — | the GA4 data stream's ids; `RINGSOURCE_SITE_<ID>_GA4_API_SECRET` overrides the secret |
//! | `ga4.endpoint` | `https://www.google-analytics.com/mp/collect` | e.g. the EU endpoint, or `/debug/mp/collect` |
//! | `crm.url` | — | the webhook receiver (http or https) |
//! | `crm.secret` | — | `whsec_<base64>` or a raw string (≥ 16 bytes), as for the generic PBX; `RINGSOURCE_SITE_<ID>_CRM_SECRET` overrides it |
//! | `crm.scenario` | `contact-deal` | `contact-deal` or `lead`: what the receiver should create |
//! | `max_attempts` | 8 | attempts before a row is dead |
//! | `backoff_base_ms` | 30000 | the wait after the first failure; doubled after each, at most one hour |
//! | `timeout_secs` | 10 | per attempt |

pub mod api;
pub mod worker;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::Site;
use crate::pbx::Secret;
use crate::storage::calls::CallDetail;
use crate::storage::money::ExportKind;

/// GA4's own collection endpoint.
pub const GA4_DEFAULT_ENDPOINT: &str = "https://www.google-analytics.com/mp/collect";
/// The event name sent to GA4.
pub const GA4_EVENT: &str = "phone_call";

/// `[sites.exports]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExports {
    #[serde(default)]
    pub ga4: Option<RawGa4>,
    #[serde(default)]
    pub crm: Option<RawCrm>,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for RawExports {
    fn default() -> Self {
        RawExports {
            ga4: None,
            crm: None,
            max_attempts: default_max_attempts(),
            backoff_base_ms: default_backoff_base_ms(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_base_ms() -> u64 {
    30_000
}
fn default_timeout_secs() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGa4 {
    pub measurement_id: String,
    /// May come from the environment instead ([`secret_env_var`]).
    #[serde(default)]
    pub api_secret: String,
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCrm {
    pub url: String,
    /// May come from the environment instead ([`secret_env_var`]).
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub scenario: Scenario,
}

/// What the CRM receiver is asked to make of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Find or create the contact by the caller's number, then a deal.
    #[default]
    ContactDeal,
    /// Create a lead to qualify.
    Lead,
}

/// The GA4 target: the collection URL with the stream's ids in the query.
#[derive(Debug, Clone)]
pub struct Ga4Target {
    pub url: url::Url,
}

#[derive(Debug, Clone)]
pub struct CrmTarget {
    pub url: url::Url,
    pub key: Secret,
    pub scenario: Scenario,
}

/// Retries of a site's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub timeout_secs: u64,
}

/// A site's validated exports.
#[derive(Debug, Clone)]
pub struct Exports {
    pub ga4: Option<Ga4Target>,
    pub crm: Option<CrmTarget>,
    pub retry: RetryPolicy,
}

impl Default for Exports {
    fn default() -> Self {
        let raw = RawExports::default();
        Exports {
            ga4: None,
            crm: None,
            retry: RetryPolicy {
                max_attempts: raw.max_attempts,
                backoff_base_ms: raw.backoff_base_ms,
                timeout_secs: raw.timeout_secs,
            },
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;

impl RetryPolicy {
    /// The wait after failed attempt number `attempts` (1-based):
    /// base, 2×base, 4×base, … capped at one hour.
    pub fn backoff_ms(&self, attempts: u32) -> i64 {
        let factor = 1u64 << attempts.saturating_sub(1).min(30);
        i64::try_from(self.backoff_base_ms.saturating_mul(factor).min(MAX_BACKOFF_MS)).unwrap_or(i64::MAX)
    }
}

/// The environment variable that overrides a site's export secret:
/// `RINGSOURCE_SITE_<ID>_GA4_API_SECRET` or `RINGSOURCE_SITE_<ID>_CRM_SECRET`,
/// the site id upper-cased with anything but A–Z and 0–9 turned into `_`
/// (as for PBX secrets), so secrets can stay out of the file.
pub fn secret_env_var(site_id: &str, export: ExportKind) -> String {
    let id: String =
        site_id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    match export {
        ExportKind::Ga4 => format!("RINGSOURCE_SITE_{id}_GA4_API_SECRET"),
        ExportKind::Crm => format!("RINGSOURCE_SITE_{id}_CRM_SECRET"),
    }
}

impl RawExports {
    /// Replaces the secrets the environment provides.
    pub fn with_env_secrets(mut self, site_id: &str, env: &dyn crate::config::Env) -> Self {
        if let Some(g) = self.ga4.as_mut()
            && let Some(v) = env.var(&secret_env_var(site_id, ExportKind::Ga4))
        {
            g.api_secret = v;
        }
        if let Some(c) = self.crm.as_mut()
            && let Some(v) = env.var(&secret_env_var(site_id, ExportKind::Crm))
        {
            c.secret = v;
        }
        self
    }
}

fn http_url(field: &str, text: &str) -> Result<url::Url, (String, String)> {
    let url = url::Url::parse(text).map_err(|e| (field.to_owned(), format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err((field.to_owned(), format!("{text:?} must be an http:// or https:// URL")));
    }
    Ok(url)
}

/// A GA4 measurement id: `G-` and letters/digits.
fn valid_measurement_id(id: &str) -> bool {
    id.strip_prefix("G-").is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Exports {
    /// Validates `[sites.exports]`; every problem with its field path
    /// relative to the site.
    pub fn from_raw(raw: RawExports) -> Result<Exports, Vec<(String, String)>> {
        let mut issues = Vec::new();
        if raw.max_attempts == 0 || raw.max_attempts > 100 {
            issues.push(("exports.max_attempts".to_owned(), "must be between 1 and 100".to_owned()));
        }
        if raw.backoff_base_ms == 0 || raw.backoff_base_ms > MAX_BACKOFF_MS {
            issues.push(("exports.backoff_base_ms".to_owned(), format!("must be between 1 and {MAX_BACKOFF_MS}")));
        }
        if raw.timeout_secs == 0 || raw.timeout_secs > 300 {
            issues.push(("exports.timeout_secs".to_owned(), "must be between 1 and 300".to_owned()));
        }
        let ga4 = raw.ga4.and_then(|g| {
            if !valid_measurement_id(&g.measurement_id) {
                issues.push((
                    "exports.ga4.measurement_id".to_owned(),
                    format!("{:?} is not a GA4 measurement id (G-XXXXXXX)", g.measurement_id),
                ));
            }
            if g.api_secret.trim().is_empty() {
                issues.push((
                    "exports.ga4.api_secret".to_owned(),
                    "must not be empty (or set RINGSOURCE_SITE_<ID>_GA4_API_SECRET)".to_owned(),
                ));
            }
            let endpoint = g.endpoint.as_deref().unwrap_or(GA4_DEFAULT_ENDPOINT);
            match http_url("exports.ga4.endpoint", endpoint) {
                Ok(mut url) => {
                    url.query_pairs_mut()
                        .append_pair("measurement_id", &g.measurement_id)
                        .append_pair("api_secret", &g.api_secret);
                    Some(Ga4Target { url })
                }
                Err(issue) => {
                    issues.push(issue);
                    None
                }
            }
        });
        let crm = raw.crm.and_then(|c| {
            let url = http_url("exports.crm.url", &c.url).map_err(|i| issues.push(i)).ok();
            let key = match crate::pbx::generic::decode_secret(&c.secret) {
                Ok(_) if c.secret.is_empty() => {
                    issues.push((
                        "exports.crm.secret".to_owned(),
                        "must not be empty (or set RINGSOURCE_SITE_<ID>_CRM_SECRET)".to_owned(),
                    ));
                    None
                }
                // The receiver verifies with this key; a short one can be guessed.
                Ok(k) if k.expose().len() >= 16 => Some(k),
                Ok(_) => {
                    issues.push(("exports.crm.secret".to_owned(), "must be at least 16 bytes".to_owned()));
                    None
                }
                Err(reason) => {
                    issues.push(("exports.crm.secret".to_owned(), reason));
                    None
                }
            };
            Some(CrmTarget { url: url?, key: key?, scenario: c.scenario })
        });
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Exports {
            ga4,
            crm,
            retry: RetryPolicy {
                max_attempts: raw.max_attempts,
                backoff_base_ms: raw.backoff_base_ms,
                timeout_secs: raw.timeout_secs,
            },
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ga4.is_none() && self.crm.is_none()
    }
}

// ------------------------------------------------------------ GA4 payload

/// The Measurement Protocol's documented limits
/// (<https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations>).
pub const GA4_MAX_PARAMS: usize = 25;
pub const GA4_MAX_NAME: usize = 40;
pub const GA4_MAX_STRING_VALUE: usize = 100;
/// Prefixes GA4 reserves for itself, in event and parameter names.
const GA4_RESERVED_PREFIXES: [&str; 3] = ["google_", "ga_", "firebase_"];

/// Why a body breaks the Measurement Protocol's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ga4Error {
    #[error("client_id is required")]
    NoClientId,
    #[error(
        "{what} {name:?} must be 1-40 characters of a-z, A-Z, 0-9, '_', start with a letter and not use a reserved prefix"
    )]
    BadName { what: &'static str, name: String },
    #[error("event {event:?} has {count} params; at most {GA4_MAX_PARAMS} are allowed")]
    TooManyParams { event: String, count: usize },
    #[error("param {name:?} is a string of {len} characters; at most {GA4_MAX_STRING_VALUE} are allowed")]
    LongValue { name: String, len: usize },
    #[error("the body is not {{client_id, events: [{{name, params}}]}}: {0}")]
    Shape(String),
}

fn valid_ga4_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= GA4_MAX_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !GA4_RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Checks a Measurement Protocol body against the documented limits.
pub fn validate_ga4(body: &Value) -> Result<(), Ga4Error> {
    let client_id = body.get("client_id").and_then(Value::as_str).unwrap_or_default();
    if client_id.trim().is_empty() {
        return Err(Ga4Error::NoClientId);
    }
    let events =
        body.get("events").and_then(Value::as_array).ok_or_else(|| Ga4Error::Shape("no events array".into()))?;
    if events.is_empty() || events.len() > 25 {
        return Err(Ga4Error::Shape(format!("{} events; 1 to 25 are allowed", events.len())));
    }
    for event in events {
        let name = event.get("name").and_then(Value::as_str).unwrap_or_default();
        if !valid_ga4_name(name) {
            return Err(Ga4Error::BadName { what: "event name", name: name.to_owned() });
        }
        let params = match event.get("params") {
            None => continue,
            Some(Value::Object(p)) => p,
            Some(_) => return Err(Ga4Error::Shape(format!("params of {name:?} is not an object"))),
        };
        if params.len() > GA4_MAX_PARAMS {
            return Err(Ga4Error::TooManyParams { event: name.to_owned(), count: params.len() });
        }
        for (k, v) in params {
            if !valid_ga4_name(k) {
                return Err(Ga4Error::BadName { what: "param name", name: k.clone() });
            }
            if let Value::String(s) = v
                && s.chars().count() > GA4_MAX_STRING_VALUE
            {
                return Err(Ga4Error::LongValue { name: k.clone(), len: s.chars().count() });
            }
        }
    }
    Ok(())
}

/// GA4 cuts longer strings anyway; cutting here keeps the body valid.
fn ga4_string(s: &str) -> Value {
    Value::String(s.chars().take(GA4_MAX_STRING_VALUE).collect())
}

/// The `phone_call` event of an ended call. `Err` is why the call cannot be
/// sent to GA4 (recorded as the row's reason).
pub fn ga4_body(detail: &CallDetail) -> Result<Value, String> {
    let c = &detail.call;
    let client_id = detail.visitor.as_ref().and_then(|v| v.client_id.clone()).filter(|id| !id.trim().is_empty());
    let Some(client_id) = client_id else {
        return Err(format!(
            "call {} has no GA client id (no _ga cookie on the visit, or not attributed to a visit): GA4 needs one",
            c.id
        ));
    };
    let mut params = Map::new();
    // GA4's own `session_id` must be GA's session number (from the
    // _ga_<stream> cookie), which the collector does not see; the
    // collector's session goes under a name of its own.
    let mut put = |k: &str, v: Value| {
        params.insert(k.to_owned(), v);
    };
    put("call_id", ga4_string(&c.id.to_string()));
    if let Some(s) = &c.session_id {
        put("ringsource_session", ga4_string(s));
    }
    put("channel", ga4_string(&c.channel));
    put("source", ga4_string(&c.source));
    put("medium", ga4_string(&c.medium));
    if let Some(v) = &c.campaign {
        put("campaign", ga4_string(v));
    }
    if let Some(v) = &c.term {
        put("term", ga4_string(v));
    }
    put("duration", json!(c.duration_secs.unwrap_or(0)));
    put("talk_time", json!(c.talk_secs.unwrap_or(0)));
    put("target", json!(u8::from(c.target)));
    put("missed", json!(u8::from(c.missed)));
    put("status", ga4_string(&c.status));
    put("caller_kind", ga4_string(&c.caller_kind));
    put("confidence", ga4_string(&c.confidence));
    put("number_kind", ga4_string(&c.number_kind));
    let at_ms = c.ended_at_ms.unwrap_or(c.ring_at_ms);
    let body = json!({
        "client_id": client_id,
        // When the call ended, so GA4 puts the event on the right day (it
        // accepts events up to 72 hours back).
        "timestamp_micros": at_ms.saturating_mul(1000),
        "events": [{ "name": GA4_EVENT, "params": params }],
    });
    validate_ga4(&body).map_err(|e| format!("the GA4 event breaks the Measurement Protocol limits: {e}"))?;
    Ok(body)
}

// ------------------------------------------------------------ CRM payload

/// The CRM webhook body: `{type, timestamp, scenario, data: {call,
/// attribution, visitor}}` (the envelope Standard Webhooks recommends).
pub fn crm_body(detail: &CallDetail, scenario: Scenario, now_ms: i64) -> Value {
    json!({
        "type": "call.ended",
        "timestamp": crate::calls::dates::format_ms(now_ms),
        "scenario": scenario,
        "data": {
            "call": detail.call,
            "attribution": detail.attribution,
            "visitor": detail.visitor,
        },
    })
}

/// The bodies of the site's configured exports of an ended call.
pub fn payloads(site: &Site, detail: &CallDetail, now_ms: i64) -> Vec<(ExportKind, Result<Value, String>)> {
    let mut out = Vec::new();
    if site.exports.ga4.is_some() {
        out.push((ExportKind::Ga4, ga4_body(detail)));
    }
    if let Some(crm) = &site.exports.crm {
        out.push((ExportKind::Crm, Ok(crm_body(detail, crm.scenario, now_ms))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy { max_attempts: 8, backoff_base_ms: 1000, timeout_secs: 10 };
        assert_eq!([1, 2, 3, 4].map(|a| p.backoff_ms(a)), [1000, 2000, 4000, 8000]);
        assert_eq!(p.backoff_ms(40), MAX_BACKOFF_MS as i64);
    }

    #[test]
    fn ga4_limits_are_enforced() {
        let ok = json!({"client_id": "1.2", "events": [{"name": "phone_call", "params": {"a": "x"}}]});
        assert_eq!(validate_ga4(&ok), Ok(()));
        let no_client = json!({"events": [{"name": "phone_call"}]});
        assert_eq!(validate_ga4(&no_client), Err(Ga4Error::NoClientId));
        for bad in ["1call", "phone-call", "ga_call", &"x".repeat(41)] {
            let body = json!({"client_id": "1.2", "events": [{"name": bad}]});
            assert!(matches!(validate_ga4(&body), Err(Ga4Error::BadName { .. })), "{bad}");
        }
        let many: Map<String, Value> = (0..26).map(|i| (format!("p{i}"), json!(i))).collect();
        let body = json!({"client_id": "1.2", "events": [{"name": "e", "params": many}]});
        assert!(matches!(validate_ga4(&body), Err(Ga4Error::TooManyParams { count: 26, .. })));
        let long = json!({"client_id": "1.2", "events": [{"name": "e", "params": {"v": "x".repeat(101)}}]});
        assert!(matches!(validate_ga4(&long), Err(Ga4Error::LongValue { len: 101, .. })));
    }

    #[test]
    fn config_errors_name_the_field() {
        let raw: RawExports = toml::from_str(
            "max_attempts = 0\nga4 = { measurement_id = \"UA-1\", api_secret = \"\" }\ncrm = { url = \"ftp://x\", secret = \"short\" }",
        )
        .unwrap();
        let fields: Vec<String> = Exports::from_raw(raw).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "exports.max_attempts",
                "exports.ga4.measurement_id",
                "exports.ga4.api_secret",
                "exports.crm.url",
                "exports.crm.secret"
            ]
        );
        let raw: RawExports =
            toml::from_str("ga4 = { measurement_id = \"G-ABC123\", api_secret = \"s3cr3t\" }").unwrap();
        let url = Exports::from_raw(raw).unwrap().ga4.unwrap().url;
        assert_eq!(
            url.as_str(),
            "https://www.google-analytics.com/mp/collect?measurement_id=G-ABC123&api_secret=s3cr3t"
        );
    }

    #[test]
    fn secrets_can_come_from_the_environment() {
        let raw: RawExports =
            toml::from_str("ga4 = { measurement_id = \"G-ABC123\" }\ncrm = { url = \"https://crm.example/hook\" }")
                .unwrap();
        assert_eq!(Exports::from_raw(raw.clone()).unwrap_err().len(), 2, "both secrets missing");
        let env: std::collections::HashMap<String, String> = [
            ("RINGSOURCE_SITE_MY_SHOP_GA4_API_SECRET", "from-env"),
            ("RINGSOURCE_SITE_MY_SHOP_CRM_SECRET", "a-crm-secret-from-the-env"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let exports = Exports::from_raw(raw.with_env_secrets("my-shop", &env)).unwrap();
        assert!(exports.ga4.unwrap().url.as_str().ends_with("api_secret=from-env"));
        assert_eq!(exports.crm.unwrap().key.expose(), b"a-crm-secret-from-the-env");
    }
}
