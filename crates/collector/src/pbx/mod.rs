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
//! Each adapter is a pure function of the request and the site's settings;
//! the I/O (the sink) happens here.

pub mod freeswitch;
pub mod generic;
pub mod kamailio;
pub mod mango;
pub mod twilio;
pub mod zadarma;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use ringsource_core::call::{CallEvent, CallPhase};
use ringsource_core::phone::{PhoneError, PhoneNumber, Region};
use ringsource_core::wire::{ErrorBody, ErrorDetail};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::api::ApiState;
use crate::config::Site;
use crate::storage::StorageError;

// ------------------------------------------------------------------ hand-off

/// Whether the sink had seen the event before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordOutcome {
    /// The event added something to the call (or started it).
    New,
    /// The same event, or a delivery with the same id, is stored (a PBX
    /// retry); nothing changed.
    Duplicate,
}

/// Why the sink could not take an event.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The collector's own fault: answered 500 so the PBX retries.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The event contradicts what is stored for the same PBX call id (for
    /// example another dialled number): answered 409, a retry cannot help.
    #[error("{0}")]
    Conflict(String),
}

/// Where verified call events go: storage plus attribution. Blocking; the
/// route calls it inside `web::block`. Registered as app data of type
/// `web::Data<Arc<dyn CallSink>>`.
///
/// The PBX is answered with what `record` returns, so an `Ok` must mean the
/// event is stored (and on disk: a PBX does not send it again), and
/// [`RecordOutcome::Duplicate`] must only follow an event that is stored.
/// Delivery ids are remembered where the events are, in the same
/// transaction, never before: a retry racing the first delivery of an event
/// waits for it there, and stores the event itself if the first failed.
pub trait CallSink: Send + Sync + 'static {
    /// Stores the event for `site`, idempotently per `(event.pbx,
    /// event.pbx_call_id)` and the event, and per delivery id when the PBX
    /// names its deliveries.
    fn record(&self, site: &str, delivery: Option<&Delivery>, event: CallEvent) -> Result<RecordOutcome, SinkError>;
}

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

fn adapter_names() -> String {
    Adapter::ALL.map(Adapter::name).join(", ")
}

/// Key material that must not end up in logs: `Debug` prints no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Box<[u8]>>) -> Self {
        Self(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.0.as_ref().ct_eq(given))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// `[sites.pbx]`: the non-secret halves of adapters that need more than one
/// value. The secrets themselves stay in `pbx_secrets` so that the
/// environment can override them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPbxSettings {
    /// The public URL configured in Twilio for the status callback, exactly
    /// as entered there: Twilio signs it, and the collector may sit behind a
    /// proxy that changes scheme, host or port.
    #[serde(default)]
    pub twilio_url: Option<String>,
    /// The time zone of the Zadarma account (`call_start` is local time in
    /// it), as `+03:00`; UTC when absent.
    #[serde(default)]
    pub zadarma_utc_offset: Option<String>,
    /// Mango's `vpbx_api_key` (the "unique code" of the API integration); its
    /// salt is `pbx_secrets.mango`.
    #[serde(default)]
    pub mango_api_key: Option<String>,
    /// The basic-auth user in `mod_json_cdr`'s `cred`; the password is
    /// `pbx_secrets.freeswitch`.
    #[serde(default)]
    pub freeswitch_user: Option<String>,
}

/// A site's validated PBX credentials; an adapter without them is off.
#[derive(Debug, Clone, Default)]
pub struct PbxAuth {
    pub generic: Option<Secret>,
    pub twilio: Option<twilio::TwilioAuth>,
    pub zadarma: Option<zadarma::ZadarmaAuth>,
    pub mango: Option<mango::MangoAuth>,
    pub freeswitch: Option<freeswitch::BasicAuth>,
    pub kamailio: Option<Secret>,
}

/// A problem in a site's PBX settings: field path relative to the site, reason.
pub type SettingIssue = (String, String);

impl PbxAuth {
    /// Validates `pbx_secrets` (after environment overrides) with `[sites.pbx]`.
    /// Every problem is reported, with the field to fix.
    pub fn from_config(secrets: &BTreeMap<String, String>, raw: RawPbxSettings) -> Result<PbxAuth, Vec<SettingIssue>> {
        let mut issues: Vec<SettingIssue> = Vec::new();
        for name in secrets.keys() {
            if Adapter::from_name(name).is_none() {
                issues.push((
                    format!("pbx_secrets.{name}"),
                    format!("unknown PBX adapter; expected one of {}", adapter_names()),
                ));
            }
        }
        let secret = |a: Adapter| secrets.get(a.name()).filter(|s| !s.is_empty());
        let mut auth = PbxAuth::default();

        if let Some(s) = secret(Adapter::Generic) {
            match generic::decode_secret(s) {
                Ok(key) => auth.generic = Some(key),
                Err(reason) => issues.push(("pbx_secrets.generic".to_owned(), reason)),
            }
        }

        match (secret(Adapter::Twilio), raw.twilio_url) {
            (Some(token), Some(url)) => match twilio::check_url(&url) {
                Ok(()) => auth.twilio = Some(twilio::TwilioAuth { auth_token: Secret::new(token.as_bytes()), url }),
                Err(reason) => issues.push(("pbx.twilio_url".to_owned(), reason)),
            },
            (Some(_), None) => issues.push((
                "pbx.twilio_url".to_owned(),
                "needed with pbx_secrets.twilio: the public URL of the status callback as configured in Twilio, which its signature covers".to_owned(),
            )),
            (None, Some(_)) => issues.push(needs_secret("pbx.twilio_url", Adapter::Twilio)),
            (None, None) => {}
        }

        let offset = raw.zadarma_utc_offset.as_deref().map(zadarma::parse_offset);
        match (secret(Adapter::Zadarma), offset) {
            (Some(_), Some(Err(reason))) => issues.push(("pbx.zadarma_utc_offset".to_owned(), reason)),
            (Some(s), offset) => {
                let utc_offset = offset.and_then(Result::ok).unwrap_or(time::UtcOffset::UTC);
                auth.zadarma = Some(zadarma::ZadarmaAuth { secret: Secret::new(s.as_bytes()), utc_offset });
            }
            (None, Some(_)) => issues.push(needs_secret("pbx.zadarma_utc_offset", Adapter::Zadarma)),
            (None, None) => {}
        }

        match (secret(Adapter::Mango), raw.mango_api_key) {
            (Some(salt), Some(key)) if !key.is_empty() => {
                auth.mango = Some(mango::MangoAuth { api_key: key, api_salt: Secret::new(salt.as_bytes()) });
            }
            (Some(_), _) => issues.push((
                "pbx.mango_api_key".to_owned(),
                "needed with pbx_secrets.mango (the API salt): Mango's vpbx_api_key, which its sign covers".to_owned(),
            )),
            (None, Some(_)) => issues.push(needs_secret("pbx.mango_api_key", Adapter::Mango)),
            (None, None) => {}
        }

        match (secret(Adapter::FreeSwitch), raw.freeswitch_user) {
            (Some(password), Some(user)) if !user.is_empty() && !user.contains(':') => {
                auth.freeswitch = Some(freeswitch::BasicAuth { user, password: Secret::new(password.as_bytes()) });
            }
            (Some(_), Some(_)) => {
                issues.push(("pbx.freeswitch_user".to_owned(), "must be non-empty and contain no ':'".to_owned()));
            }
            (Some(_), None) => issues.push((
                "pbx.freeswitch_user".to_owned(),
                "needed with pbx_secrets.freeswitch (the password): the basic-auth user of mod_json_cdr's cred"
                    .to_owned(),
            )),
            (None, Some(_)) => issues.push(needs_secret("pbx.freeswitch_user", Adapter::FreeSwitch)),
            (None, None) => {}
        }

        if let Some(token) = secret(Adapter::Kamailio) {
            // The token travels in every request; a short one can be guessed.
            if token.len() < 16 {
                issues.push(("pbx_secrets.kamailio".to_owned(), "must be at least 16 characters".to_owned()));
            } else {
                auth.kamailio = Some(Secret::new(token.as_bytes()));
            }
        }

        if issues.is_empty() { Ok(auth) } else { Err(issues) }
    }
}

fn needs_secret(field: &str, adapter: Adapter) -> SettingIssue {
    (field.to_owned(), format!("set pbx_secrets.{} too, or remove this", adapter.name()))
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
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
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
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("the call conflicts with what is stored: {0}")]
    Conflict(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
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

    fn code(&self) -> &'static str {
        match self {
            PbxError::UnknownSite(_) => "unknown_site",
            PbxError::UnknownAdapter(_) => "unknown_adapter",
            PbxError::NotConfigured { .. } => "pbx_not_configured",
            PbxError::WrongRoute(_) => "wrong_route",
            PbxError::Unauthorized { failure: AuthFailure::Missing, .. } => "missing_credentials",
            PbxError::Unauthorized { failure: AuthFailure::Invalid, .. } => "bad_credentials",
            PbxError::Unauthorized { failure: AuthFailure::Stale, .. } => "stale_timestamp",
            PbxError::BadRequest(_) => "bad_request",
            PbxError::PayloadTooLarge => "payload_too_large",
            PbxError::Conflict(_) => "conflict",
            PbxError::Storage(_) => "storage_error",
            PbxError::Internal(_) => "internal_error",
        }
    }
}

impl From<SinkError> for PbxError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Storage(e) => PbxError::Storage(e),
            SinkError::Conflict(m) => PbxError::Conflict(m),
        }
    }
}

impl ResponseError for PbxError {
    fn status_code(&self) -> StatusCode {
        match self {
            PbxError::UnknownSite(_)
            | PbxError::UnknownAdapter(_)
            | PbxError::NotConfigured { .. }
            | PbxError::WrongRoute(_) => StatusCode::NOT_FOUND,
            PbxError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            PbxError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PbxError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PbxError::Conflict(_) => StatusCode::CONFLICT,
            PbxError::Storage(_) | PbxError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            crate::outage::server_error(&format_args!("pbx: {self}"));
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let PbxError::Unauthorized { basic_challenge: true, .. } = self {
            resp.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"ringsource\", charset=\"UTF-8\""));
        }
        resp.json(ErrorBody { error: ErrorDetail { code: self.code().to_owned(), message: self.to_string() } })
    }
}

// ------------------------------------------------------- adapter interface

/// What every adapter sees of a request.
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The collector's clock, for timestamp tolerance.
    pub now_ms: i64,
    /// The site's region, for national numbers.
    pub region: Option<Region>,
}

impl Inbound<'_> {
    /// A header as text; a value that is not visible ASCII counts as absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
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

// -------------------------------------------------------------------- routes

/// Bodies above this are refused: a FreeSWITCH CDR with a long app log is the
/// largest report, and stays well under it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The PBX routes with their state. Built once per server (not per worker),
/// so every worker shares one sink.
#[derive(Clone)]
pub struct Routes {
    sink: Option<web::Data<Arc<dyn CallSink>>>,
}

impl Routes {
    /// `sink` receives the verified events; without one, reports are verified
    /// and then refused with 500 (nothing could store them).
    pub fn new(sink: Option<Arc<dyn CallSink>>) -> Self {
        Routes { sink: sink.map(web::Data::new) }
    }

    /// Registers the routes. Must come before the `/v1/sites/{site}` API
    /// scope, whose per-site CORS and browser rules do not apply to PBXs.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let mut scope = web::scope("/v1/sites/{site}/pbx");
        if let Some(sink) = &self.sink {
            scope = scope.app_data(sink.clone());
        }
        cfg.service(
            scope
                .service(
                    web::resource("/zadarma")
                        .route(web::get().to(zadarma_echo))
                        .route(web::post().to(post_zadarma))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/mango/events/{event}")
                        .route(web::post().to(post_mango))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{adapter}")
                        .route(web::post().to(post_event))
                        .default_service(web::to(method_not_allowed)),
                ),
        );
    }
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed().json(ErrorBody {
        error: ErrorDetail {
            code: "method_not_allowed".to_owned(),
            message: format!("{} is not allowed on {}", req.method(), req.path()),
        },
    })
}

/// The answer to a verified report.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    outcome: &'static str,
    pbx: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pbx_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<CallPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn site_of(state: &ApiState, id: &str) -> Result<Arc<Site>, PbxError> {
    state.sites.get(id).cloned().ok_or_else(|| PbxError::UnknownSite(id.to_owned()))
}

fn not_configured(site: &Site, adapter: Adapter) -> PbxError {
    PbxError::NotConfigured { site: site.id.clone(), adapter: adapter.name() }
}

async fn read_body(body: web::Payload) -> Result<web::Bytes, PbxError> {
    body.to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| PbxError::PayloadTooLarge)?
        .map_err(|e| PbxError::bad(format!("cannot read the body: {e}")))
}

async fn post_event(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, PbxError> {
    let (site_id, name) = path.into_inner();
    let site = site_of(&state, &site_id)?;
    let adapter = Adapter::from_name(&name).ok_or(PbxError::UnknownAdapter(name))?;
    if adapter == Adapter::Mango {
        return Err(PbxError::WrongRoute(format!(
            "Mango posts to /v1/sites/{site_id}/pbx/mango/events/{{call|summary}}: give Mango /v1/sites/{site_id}/pbx/mango as the address and it appends the rest"
        )));
    }
    let body = read_body(body).await?;
    let inbound = Inbound { headers: req.headers(), body: &body, now_ms: state.clock.now_ms(), region: site.region };
    let verified = match adapter {
        Adapter::Generic => {
            generic::verify(site.pbx.generic.as_ref().ok_or_else(|| not_configured(&site, adapter))?, &inbound)?
        }
        Adapter::Twilio => {
            twilio::verify(site.pbx.twilio.as_ref().ok_or_else(|| not_configured(&site, adapter))?, &inbound)?
        }
        Adapter::Zadarma => {
            zadarma::verify(site.pbx.zadarma.as_ref().ok_or_else(|| not_configured(&site, adapter))?, &inbound)?
        }
        Adapter::FreeSwitch => {
            freeswitch::verify(site.pbx.freeswitch.as_ref().ok_or_else(|| not_configured(&site, adapter))?, &inbound)?
        }
        Adapter::Kamailio => {
            kamailio::verify(site.pbx.kamailio.as_ref().ok_or_else(|| not_configured(&site, adapter))?, &inbound)?
        }
        Adapter::Mango => unreachable!("answered above"),
    };
    deliver(&req, &site, adapter, verified).await
}

async fn post_zadarma(
    state: web::Data<ApiState>,
    site: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, PbxError> {
    let site = site_of(&state, &site)?;
    let auth = site.pbx.zadarma.as_ref().ok_or_else(|| not_configured(&site, Adapter::Zadarma))?;
    let body = read_body(body).await?;
    let inbound = Inbound { headers: req.headers(), body: &body, now_ms: state.clock.now_ms(), region: site.region };
    let verified = zadarma::verify(auth, &inbound)?;
    deliver(&req, &site, Adapter::Zadarma, verified).await
}

#[derive(Deserialize)]
struct EchoQuery {
    zd_echo: Option<String>,
}

/// Zadarma checks a notification URL by GETting it with `?zd_echo=X` and
/// expecting `X` back. Unsigned by Zadarma's design; it reveals nothing but
/// that the adapter is on for the site.
async fn zadarma_echo(
    state: web::Data<ApiState>,
    site: web::Path<String>,
    query: web::Query<EchoQuery>,
) -> Result<HttpResponse, PbxError> {
    let site = site_of(&state, &site)?;
    site.pbx.zadarma.as_ref().ok_or_else(|| not_configured(&site, Adapter::Zadarma))?;
    let echo = query.into_inner().zd_echo.ok_or_else(|| PbxError::bad("zd_echo is missing from the query"))?;
    if echo.len() > 256 {
        return Err(PbxError::bad("zd_echo is longer than 256 bytes"));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(echo))
}

async fn post_mango(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, PbxError> {
    let (site_id, event) = path.into_inner();
    let site = site_of(&state, &site_id)?;
    let auth = site.pbx.mango.as_ref().ok_or_else(|| not_configured(&site, Adapter::Mango))?;
    let body = read_body(body).await?;
    let inbound = Inbound { headers: req.headers(), body: &body, now_ms: state.clock.now_ms(), region: site.region };
    let verified = mango::verify(auth, &event, &inbound)?;
    deliver(&req, &site, Adapter::Mango, verified).await
}

/// Hands the event to the sink and answers with what it did. A delivery's
/// id goes with the event: the sink decides whether it is a duplicate, in the
/// transaction that stores the event.
async fn deliver(
    req: &HttpRequest,
    site: &Site,
    adapter: Adapter,
    verified: Verified,
) -> Result<HttpResponse, PbxError> {
    let pbx = adapter.name();
    let event = match verified.mapped {
        Mapped::Ignored(reason) => {
            return Ok(HttpResponse::Ok().json(Answer {
                outcome: "ignored",
                pbx,
                pbx_call_id: None,
                phase: None,
                status: None,
                reason: Some(&reason),
            }));
        }
        Mapped::Event(event) => event,
    };
    let sink = req
        .app_data::<web::Data<Arc<dyn CallSink>>>()
        .map(|d| Arc::clone(d.get_ref()))
        .ok_or_else(|| PbxError::Internal("no call sink is registered; calls cannot be stored".to_owned()))?;
    let (pbx_call_id, phase, status) = (event.pbx_call_id.clone(), event.phase, event.status);
    let site_id = site.id.clone();
    let delivery = verified.delivery;
    let outcome = blocking(move || sink.record(&site_id, delivery.as_ref(), event)).await??;
    Ok(HttpResponse::Ok().json(Answer {
        outcome: match outcome {
            RecordOutcome::New => "recorded",
            RecordOutcome::Duplicate => "duplicate",
        },
        pbx,
        pbx_call_id: Some(&pbx_call_id),
        phase: Some(phase),
        status: Some(status.as_str()),
        reason: None,
    }))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PbxError> {
    // The request's span goes along, so the call's log line names the request.
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f)).await.map_err(|e| PbxError::Internal(format!("the blocking pool failed: {e}")))
}
