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

pub mod worker;

pub use crate::exports::{ExportKind, Exports, RawExports, RetryPolicy, Scenario};

use serde_json::{Map, Value, json};

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Site;
use crate::storage::StorageError;
use crate::storage::calls::CallDetail;
use crate::storage::money::OutboxStore;
pub use crate::storage::money::{ExportStatus, OutboxFilter, OutboxRow, RetryError};

/// The outbox as the admin API sees it.
#[derive(Clone)]
pub struct ExportsService {
    store: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
}

impl ExportsService {
    pub fn new(store: Arc<dyn OutboxStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Rows matching the filter, newest first, and how many match. Blocking.
    pub fn list(&self, filter: &OutboxFilter) -> Result<(Vec<OutboxRow>, u64), StorageError> {
        self.store.list_exports(filter)
    }

    /// A dead row back to pending, due now, with its attempts reset. Blocking.
    pub fn retry(&self, id: i64) -> Result<OutboxRow, RetryError> {
        self.store.retry_export(id, self.clock.as_ref())
    }
}

/// GA4's own collection endpoint.
pub const GA4_DEFAULT_ENDPOINT: &str = "https://www.google-analytics.com/mp/collect";
/// The event name sent to GA4.
pub const GA4_EVENT: &str = "phone_call";

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
    put("status", ga4_string(c.status.as_str()));
    put("caller_kind", ga4_string(c.caller_kind.as_str()));
    put("confidence", ga4_string(c.confidence.as_str()));
    put("number_kind", ga4_string(c.number_kind.as_str()));
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
        "timestamp": crate::dates::format_ms(now_ms),
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
}
