//! The HTTP API under `/v1/`.
//!
//! Every error is JSON `{ "error": { "code", "message" } }`; bad input is
//! always a 4xx. The browser posts with `Content-Type: text/plain` (no CORS
//! preflight), so bodies are read as bytes and parsed as JSON here whatever
//! the content type says.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use ringsource_core::lease::Groups;
use ringsource_core::wire::{
    ErrorBody, ErrorDetail, HeartbeatRequest, HeartbeatResponse, PageViewRequest, VisitRequest,
};
use serde::de::DeserializeOwned;

use crate::client_addr::{self, LocalAddr};
use crate::clock::Clock;
use crate::config::{ForwardedHeader, Site};
use crate::ratelimit::RateLimiter;
use crate::storage::{PageViewCommand, Renewal, Storage, StorageError};

pub mod fields;
use fields::FieldError;

/// Every route of the API, as registered. `openapi.json` documents each
/// (a test checks both directions).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/sites/{site}/config"),
    ("POST", "/v1/sites/{site}/visits"),
    ("POST", "/v1/sites/{site}/heartbeat"),
    ("POST", "/v1/sites/{site}/pageviews"),
    ("GET", "/v1/calls"),
    ("GET", "/v1/calls.csv"),
    ("GET", "/v1/calls/{id}"),
    ("POST", "/v1/calls/{id}/promo"),
    ("GET", "/v1/calls/{id}/recording"),
    ("POST", "/v1/calls/{id}/tags"),
    ("DELETE", "/v1/calls/{id}/tags/{tag}"),
    ("GET", "/v1/calls/{id}/notes"),
    ("POST", "/v1/calls/{id}/notes"),
    ("DELETE", "/v1/calls/{id}/notes/{note}"),
    ("GET", "/v1/tags"),
    ("GET", "/v1/reports/calls"),
    ("GET", "/v1/reports/pools"),
    ("GET", "/v1/promo/{code}"),
    ("POST", "/v1/costs"),
    ("POST", "/v1/revenue"),
    ("GET", "/v1/exports"),
    ("POST", "/v1/exports/{id}/retry"),
    ("POST", "/v1/privacy/erase"),
    ("POST", "/v1/privacy/export"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/auth/me"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
    ("PATCH", "/v1/users/{id}"),
    ("DELETE", "/v1/users/{id}"),
    ("POST", "/v1/sites/{site}/pbx/{adapter}"),
    ("POST", "/v1/sites/{site}/pbx/mango/events/{event}"),
    ("GET", "/v1/sites/{site}/pbx/zadarma"),
    ("POST", "/v1/sites/{site}/pbx/zadarma"),
];

/// The routes of [`ROUTES`] that also answer a CORS preflight (`OPTIONS`).
pub const PREFLIGHTED: &[&str] =
    &["/v1/sites/{site}/config", "/v1/sites/{site}/visits", "/v1/sites/{site}/heartbeat", "/v1/sites/{site}/pageviews"];

/// The OpenAPI 3 document, maintained by hand beside the routes.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Request bodies larger than this are refused (413): a visit is well under 4 KiB.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// Shared state of the API.
pub struct ApiState {
    pub sites: HashMap<String, Arc<Site>>,
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    /// Per client: visits, and heartbeats with page views.
    pub visit_limiter: RateLimiter,
    pub session_limiter: RateLimiter,
    /// The header a trusted proxy appends the client to; `None` trusts no
    /// forwarded header (see [`crate::client_addr`]).
    pub forwarded: Option<ForwardedHeader>,
}

impl ApiState {
    fn site(&self, id: &str) -> Result<Arc<Site>, ApiError> {
        self.sites.get(id).cloned().ok_or_else(|| ApiError::UnknownSite(id.to_owned()))
    }
}

/// Errors the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error(
        "origin {origin} may not call site {site:?}: add \"{origin}\" to allowed_origins of this site in the collector's configuration"
    )]
    OriginNotAllowed { origin: String, site: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("bad request: {0}")]
    Field(#[from] FieldError),
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("too many requests from this address; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("session {0:?} is unknown; start a visit first")]
    UnknownSession(String),
    #[error("the session holds no live lease (it expired or was taken over); start a new visit")]
    LeaseGone,
    #[error("no such route: {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownSite(_) => "unknown_site",
            ApiError::OriginNotAllowed { .. } => "origin_not_allowed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Field(e) => e.code(),
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::UnknownSession(_) => "unknown_session",
            ApiError::LeaseGone => "lease_gone",
            ApiError::NoRoute { .. } => "not_found",
            ApiError::Storage(_) => "storage_error",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::UnknownSite(_) | ApiError::UnknownSession(_) | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::OriginNotAllowed { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::Field(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::LeaseGone => StatusCode::GONE,
            ApiError::Storage(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            // The client gets the code; the operator gets the context.
            crate::outage::server_error(self);
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::RateLimited { retry_after_secs } = self {
            resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        if let ApiError::Field(e) = self {
            // The field's path too, so a client need not parse the message.
            return resp.json(serde_json::json!({
                "error": { "code": self.code(), "message": self.to_string(), "field": e.field() }
            }));
        }
        resp.json(ErrorBody { error: ErrorDetail { code: self.code().to_owned(), message: self.to_string() } })
    }
}

/// Registers the API on an app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/openapi.json", web::get().to(openapi));
    cfg.service(
        web::scope("/v1/sites/{site}")
            .wrap_fn(cors)
            .route("/config", web::get().to(site_config))
            .route("/visits", web::post().to(visit))
            .route("/heartbeat", web::post().to(heartbeat))
            .route("/pageviews", web::post().to(page_view))
            .route("/{tail:.*}", web::method(Method::OPTIONS).to(preflight)),
    );
}

/// Fallback for unmatched requests: a JSON 404, or a 405 with `Allow` when
/// the path is the API's and only the method is wrong.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let (method, path) = (req.method().to_string(), req.path());
    match crate::edge::allowed_methods(path) {
        Some(allow) => crate::edge::method_not_allowed(&method, path, &allow),
        None => ApiError::NoRoute { method, path: path.to_owned() }.error_response(),
    }
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI_JSON)
}

type BoxedResponse = Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>;

/// Per-site CORS: an allowed `Origin` is reflected; a disallowed one is
/// refused on the server too (403), so a page on another origin cannot take
/// numbers even with a no-CORS request. Requests without `Origin` (same-origin
/// GETs, servers, curl) pass.
fn cors<S>(req: ServiceRequest, srv: &S) -> BoxedResponse
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    match allowed_origin(&req) {
        Err(e) => {
            // The refusal itself is readable by the page, so that the script
            // can tell its site owner which origin to allow, instead of
            // seeing an opaque network error.
            let origin = req.headers().get(header::ORIGIN).cloned();
            let mut resp = req.error_response(e);
            if let Some(origin) = origin {
                let h = resp.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                h.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            Box::pin(async move { Ok(resp) })
        }
        Ok(origin) => {
            let fut = srv.call(req);
            Box::pin(async move {
                let mut resp = fut.await?;
                if let Some(origin) = origin {
                    let h = resp.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    h.insert(header::VARY, HeaderValue::from_static("Origin"));
                }
                Ok(resp)
            })
        }
    }
}

fn allowed_origin(req: &ServiceRequest) -> Result<Option<HeaderValue>, ApiError> {
    let state = req
        .app_data::<web::Data<ApiState>>()
        .ok_or_else(|| ApiError::Internal("API state is not registered".to_owned()))?;
    let site_id = req.match_info().get("site").unwrap_or_default();
    let site = state.site(site_id)?;
    let Some(origin) = req.headers().get(header::ORIGIN) else { return Ok(None) };
    let text = origin.to_str().unwrap_or_default();
    let same_origin = || {
        let local = req.conn_data::<LocalAddr>().map(|l| l.0);
        client_addr::is_own_origin(text, req.headers(), local, state.forwarded)
    };
    let allowed = crate::config::normalise_origin(text).is_ok_and(|o| site.allowed_origins.contains(&o))
        || (site.allow_same_origin && same_origin());
    if allowed {
        Ok(Some(origin.clone()))
    } else {
        Err(ApiError::OriginNotAllowed { origin: text.to_owned(), site: site.id.clone() })
    }
}

/// CORS preflight for clients that post `application/json` (the script tag
/// posts `text/plain` and needs none). The middleware has already checked the origin.
async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

async fn site_config(state: web::Data<ApiState>, site: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let site = state.site(&site)?;
    Ok(HttpResponse::Ok().json(crate::domain::public_config(&site)))
}

async fn read_json<T: DeserializeOwned>(body: web::Payload) -> Result<T, ApiError> {
    let bytes = body
        .to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?
        .map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("the body is not the expected JSON: {e}")))
}

/// Longer User-Agents are cut to this many bytes before they are stored.
const MAX_USER_AGENT_BYTES: usize = 512;

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn client_ip(state: &ApiState, req: &HttpRequest) -> Option<IpAddr> {
    client_addr::client_ip(req.headers(), req.peer_addr(), state.forwarded)
}

/// Takes a token from `limiter` for the client, if the request has one.
fn limit(limiter: &RateLimiter, client: Option<IpAddr>, now_ms: i64) -> Result<(), ApiError> {
    match client {
        Some(ip) => limiter.check(ip, now_ms).map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs }),
        None => Ok(()),
    }
}

async fn visit(
    state: web::Data<ApiState>,
    site: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let site = state.site(&site)?;
    let now_ms = state.clock.now_ms();
    let client = client_ip(&state, &req);
    limit(&state.visit_limiter, client, now_ms)?;
    let visit: VisitRequest = read_json(body).await?;
    fields::visit(&visit)?;
    if site.consent_required && !visit.consent {
        return Ok(HttpResponse::Ok().json(crate::domain::without_consent(&site)));
    }
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let user_agent = truncated(user_agent, MAX_USER_AGENT_BYTES).to_owned();
    let new_id = crate::session_id::new(now_ms)
        .map_err(|e| ApiError::Internal(format!("no randomness for a session id: {e}")))?;
    let decided = crate::domain::reclassify(&visit, u64::try_from(now_ms).unwrap_or(0))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // The place is read from the address here and only the place goes on.
    let facts = req
        .app_data::<web::Data<Arc<crate::visitor_facts::VisitorFacts>>>()
        .map(|f| f.of_visit(client, &user_agent))
        .unwrap_or_default();
    let clock = Arc::clone(&state.clock);
    let storage = state.storage.as_ref();
    let sender = crate::domain::Sender { user_agent, client: client.map(Groups::of), facts };
    let response = crate::domain::visit(storage, site, visit, decided, sender, new_id, clock).response().await?;
    Ok(HttpResponse::Ok().json(response))
}

async fn heartbeat(
    state: web::Data<ApiState>,
    site: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let site = state.site(&site)?;
    let client = client_ip(&state, &req);
    limit(&state.session_limiter, client, state.clock.now_ms())?;
    let beat: HeartbeatRequest = read_json(body).await?;
    fields::heartbeat(&beat)?;
    let clock = Arc::clone(&state.clock);
    match state.storage.heartbeat(site, beat.session_id.clone(), client.map(Groups::of), clock).await? {
        Renewal::Renewed { number, expires_at_ms } => {
            Ok(HttpResponse::Ok().json(HeartbeatResponse { number, expires_at_ms }))
        }
        Renewal::Gone => Err(ApiError::LeaseGone),
        Renewal::UnknownSession => Err(ApiError::UnknownSession(beat.session_id)),
    }
}

async fn page_view(
    state: web::Data<ApiState>,
    site: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let site = state.site(&site)?;
    limit(&state.session_limiter, client_ip(&state, &req), state.clock.now_ms())?;
    let view: PageViewRequest = read_json(body).await?;
    fields::page_view(&view)?;
    let clock = Arc::clone(&state.clock);
    let session_id = view.session_id.clone();
    let view = PageViewCommand { site, session_id: view.session_id, url: view.url, title: view.title };
    let known = state.storage.page_view(view, clock).await?;
    if known { Ok(HttpResponse::NoContent().finish()) } else { Err(ApiError::UnknownSession(session_id)) }
}

#[cfg(test)]
mod tests {
    use super::truncated;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncated("Mozilla/5.0", 512), "Mozilla/5.0");
        assert_eq!(truncated("Mozilla/5.0", 7), "Mozilla");
        // 'é' is two bytes: a cut through it keeps neither.
        assert_eq!(truncated("abé", 3), "ab");
        assert_eq!(truncated("abé", 4), "abé");
    }
}
