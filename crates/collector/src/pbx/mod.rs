//! PBX webhooks: each PBX reports calls in its own words and signs them its
//! own way; every adapter here checks that PBX's authentication and turns its
//! report into one [`CallEvent`], which goes to the [`CallSink`].
//!
//! Routes (the site is in the path, not in a query string, because Mango
//! appends `/events/…` to the URL it is given and Zadarma appends `?zd_echo=…`
//! to it; both would break a URL that already has a query):
//!
//! - `POST /v1/sites/{site}/pbx/{adapter}` for `generic`, `twilio`,
//!   `zadarma`, `freeswitch` and `kamailio`;
//! - `POST /v1/sites/{site}/pbx/mango/events/{event}`: Mango is given
//!   `…/pbx/mango` and posts to `…/events/call`, `…/events/summary`, …;
//! - `GET /v1/sites/{site}/pbx/zadarma?zd_echo=X` answers `X`, the check
//!   Zadarma makes when the notification URL is saved.
//!
//! Every answer to a verified report is `200 {"outcome": "recorded" |
//! "duplicate" | "ignored", …}`. "ignored" is for reports that are not about
//! an incoming call to a tracking number (outgoing legs, recordings, leg-level
//! hang-ups); they are authenticated and dropped, and the PBX sees a success
//! so it does not retry. Authentication failures are 401, malformed reports
//! 400, both with `{ "error": { "code", "message" } }`.
//!
//! Numbers: PBXs often write the dialled number as bare digits
//! ("74951234567"). A number is read in the site's `region` first (so the
//! national "84951234567" works in RU), then, if it is all digits, as an
//! international number without its '+'. The caller's number is stored in
//! E.164 when it reads as a number, and as the PBX wrote it otherwise
//! ("anonymous", an extension).
//!
//! Each adapter is a pure function of the request and the site's settings,
//! free of the web server: [`verify`] picks the adapter, and the route
//! (`crate::http::pbx`) hands what it returns to the calls service.

pub mod freeswitch;
pub mod generic;
pub mod kamailio;
pub mod mango;
pub mod recordings;
pub mod settings;
pub mod twilio;
pub mod zadarma;

use std::collections::BTreeMap;

use ringsource_core::call::CallEvent;
use ringsource_core::phone::{PhoneError, PhoneNumber, Region};
use subtle::ConstantTimeEq;

pub use settings::{PbxAuth, RawPbxSettings, Secret};

// -------------------------------------------------------------------- config

/// The adapters, by the name used in the route and in `pbx_secrets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Generic,
    Twilio,
    Zadarma,
    Mango,
    FreeSwitch,
    Kamailio,
}

impl Adapter {
    pub const ALL: [Adapter; 6] =
        [Adapter::Generic, Adapter::Twilio, Adapter::Zadarma, Adapter::Mango, Adapter::FreeSwitch, Adapter::Kamailio];

    pub const fn name(self) -> &'static str {
        match self {
            Adapter::Generic => "generic",
            Adapter::Twilio => "twilio",
            Adapter::Zadarma => "zadarma",
            Adapter::Mango => "mango",
            Adapter::FreeSwitch => "freeswitch",
            Adapter::Kamailio => "kamailio",
        }
    }

    pub fn from_name(name: &str) -> Option<Adapter> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

pub(crate) fn adapter_names() -> String {
    Adapter::ALL.map(Adapter::name).join(", ")
}

// -------------------------------------------------------------------- errors

/// Which way authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// The header or field that carries the credentials is absent.
    Missing,
    /// It is present but does not match.
    Invalid,
    /// Standard Webhooks: signed too long ago, or in the future.
    Stale,
}

/// Errors the PBX routes answer with.
#[derive(Debug, thiserror::Error)]
pub enum PbxError {
    #[error("no PBX adapter {0:?}; expected one of {names}", names = adapter_names())]
    UnknownAdapter(String),
    #[error("site {site:?} has no pbx_secrets.{adapter}, so the {adapter} adapter is off for it")]
    NotConfigured { site: String, adapter: &'static str },
    #[error("{0}")]
    WrongRoute(String),
    #[error("{message}")]
    Unauthorized {
        failure: AuthFailure,
        message: String,
        /// Send `WWW-Authenticate: Basic`, for clients that wait for the
        /// challenge before sending basic credentials.
        basic_challenge: bool,
    },
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl PbxError {
    pub fn missing(message: impl Into<String>) -> Self {
        PbxError::Unauthorized { failure: AuthFailure::Missing, message: message.into(), basic_challenge: false }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        PbxError::Unauthorized { failure: AuthFailure::Invalid, message: message.into(), basic_challenge: false }
    }
    pub fn stale(message: impl Into<String>) -> Self {
        PbxError::Unauthorized { failure: AuthFailure::Stale, message: message.into(), basic_challenge: false }
    }
    pub fn bad(message: impl Into<String>) -> Self {
        PbxError::BadRequest(message.into())
    }
}

// ------------------------------------------------------- adapter interface

/// A request's headers, as the web server holds them.
pub trait Headers {
    /// The value of `name` (ASCII case ignored) as text; `None` when absent
    /// or not visible ASCII.
    fn get(&self, name: &str) -> Option<&str>;
}

/// What every adapter sees of a request.
pub struct Inbound<'a> {
    pub headers: &'a dyn Headers,
    pub body: &'a [u8],
    /// The collector's clock, for timestamp tolerance.
    pub now_ms: i64,
    /// The site's region, for national numbers.
    pub region: Option<Region>,
}

impl Inbound<'_> {
    /// A header as text; a value that is not visible ASCII counts as absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// What a verified report means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Event(CallEvent),
    /// Authentic, but not about an incoming call to a tracking number.
    Ignored(String),
}

/// The id a PBX gave a delivery (Standard Webhooks' `webhook-id`), which it
/// repeats when it retries: the sink stores it with the event, and answers
/// a delivery whose id it has stored "duplicate".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    /// After this, a replay fails the timestamp check anyway, so the id
    /// need not be kept longer.
    pub keep_until_ms: i64,
}

/// An authenticated, mapped report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub delivery: Option<Delivery>,
    pub mapped: Mapped,
}

impl Verified {
    fn event(event: CallEvent) -> Self {
        Verified { delivery: None, mapped: Mapped::Event(event) }
    }
    fn ignored(reason: impl Into<String>) -> Self {
        Verified { delivery: None, mapped: Mapped::Ignored(reason.into()) }
    }
}

// ------------------------------------------------------------ shared helpers

/// Reads the dialled number (see the module docs for the rules).
pub fn parse_number(field: &str, text: &str, region: Option<Region>) -> Result<PhoneNumber, PbxError> {
    let text = text.trim();
    let first = match region {
        Some(r) => PhoneNumber::parse_national(text, r),
        None => PhoneNumber::parse(text),
    };
    first
        .or_else(|e: PhoneError| {
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                PhoneNumber::parse(&format!("+{text}")).map_err(|_| e)
            } else {
                Err(e)
            }
        })
        .map_err(|e| PbxError::bad(format!("{field}: {e}")))
}

/// The caller: E.164 when it reads as a number, else as written; `None` when empty.
pub fn caller(text: Option<&str>, region: Option<Region>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    Some(parse_number("from", text, region).map_or_else(|_| text.chars().take(64).collect(), |n| n.e164()))
}

/// Form fields, first value of each name winning. Twilio needs all pairs, and
/// takes them from [`form_pairs`].
pub fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Compares a computed credential with the one given, in time independent
/// of where they first differ.
pub fn same_text(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A required, bounded id.
pub fn call_id(field: &str, value: Option<&str>) -> Result<String, PbxError> {
    let id =
        value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| PbxError::bad(format!("{field} is missing")))?;
    if id.len() > 256 {
        return Err(PbxError::bad(format!("{field} is longer than 256 bytes")));
    }
    Ok(id.to_owned())
}

/// Unix seconds to milliseconds; 0 and negative mean "never" to most PBXs.
pub fn secs_to_ms(secs: i64) -> Option<u64> {
    u64::try_from(secs).ok().filter(|&s| s > 0).map(|s| s * 1000)
}

/// Whole seconds between two instants in ms, when both are known and in
/// order: the same rule the fold uses for lengths no report gave.
pub fn secs_between(from_ms: Option<u64>, to_ms: Option<u64>) -> Option<u32> {
    ringsource_core::call::whole_secs_between(from_ms, to_ms)
}

/// A recording URL must be http(s); anything else is dropped rather than
/// stored and later shown as a link.
pub fn recording_url(value: Option<&str>) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty() && v.len() <= 2048)?;
    let url = url::Url::parse(v).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| v.to_owned())
}

// ----------------------------------------------------------------- dispatch

/// Authenticates and maps a report to `adapter`'s route with the site's
/// credentials; `event` is Mango's last path segment (`call`, `summary`).
pub fn verify(
    auth: &PbxAuth,
    site_id: &str,
    adapter: Adapter,
    event: Option<&str>,
    inbound: &Inbound<'_>,
) -> Result<Verified, PbxError> {
    let off = || PbxError::NotConfigured { site: site_id.to_owned(), adapter: adapter.name() };
    match (adapter, event) {
        (Adapter::Mango, Some(event)) => mango::verify(auth.mango.as_ref().ok_or_else(off)?, event, inbound),
        (Adapter::Mango, None) => Err(mango_route(site_id)),
        (Adapter::Generic, _) => generic::verify(auth.generic.as_ref().ok_or_else(off)?, inbound),
        (Adapter::Twilio, _) => twilio::verify(auth.twilio.as_ref().ok_or_else(off)?, inbound),
        (Adapter::Zadarma, _) => zadarma::verify(auth.zadarma.as_ref().ok_or_else(off)?, inbound),
        (Adapter::FreeSwitch, _) => freeswitch::verify(auth.freeswitch.as_ref().ok_or_else(off)?, inbound),
        (Adapter::Kamailio, _) => kamailio::verify(auth.kamailio.as_ref().ok_or_else(off)?, inbound),
    }
}

/// Mango's reports were posted to the adapters' route, not Mango's own.
pub fn mango_route(site_id: &str) -> PbxError {
    PbxError::WrongRoute(format!(
        "Mango posts to /v1/sites/{site_id}/pbx/mango/events/{{call|summary}}: give Mango /v1/sites/{site_id}/pbx/mango as the address and it appends the rest"
    ))
}
