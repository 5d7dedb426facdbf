//! The browser's routes under `/v1/sites/{site}/`: the site's public
//! settings, visits, heartbeats and page views. The browser posts with
//! `Content-Type: text/plain` (no CORS preflight), so bodies are parsed as
//! JSON whatever the content type says.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use ringsource_core::lease::Groups;
use ringsource_core::wire::{
    HeartbeatRequest, HeartbeatResponse, PageViewRequest, SiteConfigPublic, VisitRequest, VisitResponse,
};

use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{self, SitePath};
use crate::http::fields;
use crate::http::ratelimit::RateLimiter;
use crate::http::state::AppState;
use crate::services::visits::{self as service, PageViewCommand, Renewal, Sender};

/// Request bodies larger than this are refused (413): a visit is well under 4 KiB.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

const SHAPE: &str = "the body is not the expected JSON";

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

fn client_ip(state: &AppState, req: &HttpRequest) -> Option<IpAddr> {
    crate::http::client_addr::client_ip(req.headers(), req.peer_addr(), state.forwarded)
}

/// Takes a token from `limiter` for the client, if the request has one.
fn limit(limiter: &RateLimiter, client: Option<IpAddr>, now_ms: i64) -> Result<(), ApiError> {
    match client {
        Some(ip) => limiter.check(ip, now_ms).map_err(ApiError::rate_limited),
        None => Ok(()),
    }
}

fn unknown_session(id: &str) -> ApiError {
    ApiError::not_found("unknown_session", format!("session {id:?} is unknown; start a visit first"))
}

#[utoipa::path(
    get,
    path = "/v1/sites/{site}/config",
    operation_id = "siteConfig",
    tag = "browser",
    summary = "Public site configuration for the browser",
    params(("site" = String, Path, description = "Site id from the configuration.")),
    responses(
        (status = 200, description = "Site configuration", body = SiteConfigPublic),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
        (status = 500, description = "The server failed; not caused by the request", body = ErrorBody, extensions(("x-error-codes" = json!(["internal_error"])))),
    )
)]
pub async fn site_config(SitePath(site): SitePath) -> HttpResponse {
    HttpResponse::Ok().json(service::public_config(&site))
}

#[utoipa::path(
    post,
    path = "/v1/sites/{site}/visits",
    operation_id = "visit",
    tag = "browser",
    summary = "Start or continue a visit and get the number to show",
    params(("site" = String, Path, description = "Site id from the configuration.")),
    request_body(description = "JSON. The browser sends it as text/plain to avoid a CORS preflight; application/json is accepted too. At most 32 KiB (413 otherwise).", content((VisitRequest = "text/plain"), (VisitRequest = "application/json"))),
    responses(
        (status = 200, description = "The number to show (or, without the consent the site requires, only its configuration)", body = VisitResponse),
        (status = 400, description = "Bad input (malformed JSON, bad field)", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request", "field_too_long"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
    )
)]
pub async fn visit(
    state: web::Data<AppState>,
    SitePath(site): SitePath,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let now_ms = state.visits.now_ms();
    let client = client_ip(&state, &req);
    limit(&state.visit_limiter, client, now_ms)?;
    let visit: VisitRequest = extract::json(body, MAX_BODY_BYTES, SHAPE).await?;
    fields::visit(&visit)?;
    if site.consent_required && !visit.consent {
        return Ok(HttpResponse::Ok().json(service::without_consent(&site)));
    }
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let user_agent = truncated(user_agent, MAX_USER_AGENT_BYTES).to_owned();
    let new_id = crate::session_id::new(now_ms)
        .map_err(|e| ApiError::internal(format!("no randomness for a session id: {e}")))?;
    let decided = service::reclassify(&visit, u64::try_from(now_ms).unwrap_or(0))?;
    // The place is read from the address here and only the place goes on.
    let facts = state.visitor_facts.of_visit(client, &user_agent);
    let sender = Sender { user_agent, client: client.map(Groups::of), facts };
    let response = state.visits.visit(site, visit, decided, sender, new_id).response().await?;
    Ok(HttpResponse::Ok().json(response))
}

#[utoipa::path(
    post,
    path = "/v1/sites/{site}/heartbeat",
    operation_id = "heartbeat",
    tag = "browser",
    summary = "Renew the session's lease",
    description = "Renews the lease for the pool's hold from now, but heartbeats alone renew it for at most the pool's heartbeat_only_secs (default 1800) after the session's last visit or page view; past that the lease runs out (410) and the next visit asks again. A beat that would move the expiry by less than half the heartbeat interval changes nothing and answers the expiry as it stands.",
    params(("site" = String, Path, description = "Site id from the configuration.")),
    request_body(description = "JSON. The browser sends it as text/plain to avoid a CORS preflight; application/json is accepted too. At most 32 KiB (413 otherwise).", content((HeartbeatRequest = "text/plain"), (HeartbeatRequest = "application/json"))),
    responses(
        (status = 200, description = "Renewed", body = HeartbeatResponse),
        (status = 400, description = "Bad input (malformed JSON, bad field)", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site or session", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site", "unknown_session"])))),
        (status = 410, description = "The lease is gone (expired or taken over); start a new visit", body = ErrorBody, extensions(("x-error-codes" = json!(["lease_gone"])))),
    )
)]
pub async fn heartbeat(
    state: web::Data<AppState>,
    SitePath(site): SitePath,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let client = client_ip(&state, &req);
    limit(&state.session_limiter, client, state.visits.now_ms())?;
    let beat: HeartbeatRequest = extract::json(body, MAX_BODY_BYTES, SHAPE).await?;
    fields::heartbeat(&beat)?;
    match state.visits.heartbeat(site, beat.session_id.clone(), client.map(Groups::of)).await? {
        Renewal::Renewed { number, expires_at_ms } => {
            Ok(HttpResponse::Ok().json(HeartbeatResponse { number, expires_at_ms }))
        }
        Renewal::Gone => Err(ApiError::new(
            StatusCode::GONE,
            "lease_gone",
            "the session holds no live lease (it expired or was taken over); start a new visit",
        )),
        Renewal::UnknownSession => Err(unknown_session(&beat.session_id)),
    }
}

#[utoipa::path(
    post,
    path = "/v1/sites/{site}/pageviews",
    operation_id = "pageView",
    tag = "browser",
    summary = "Record a page view in the session",
    params(("site" = String, Path, description = "Site id from the configuration.")),
    request_body(description = "JSON. The browser sends it as text/plain to avoid a CORS preflight; application/json is accepted too. At most 32 KiB (413 otherwise).", content((PageViewRequest = "text/plain"), (PageViewRequest = "application/json"))),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Bad input (malformed JSON, bad field)", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request", "field_too_long"])))),
        (status = 404, description = "Unknown site or session", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site", "unknown_session"])))),
    )
)]
pub async fn page_view(
    state: web::Data<AppState>,
    SitePath(site): SitePath,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    limit(&state.session_limiter, client_ip(&state, &req), state.visits.now_ms())?;
    let view: PageViewRequest = extract::json(body, MAX_BODY_BYTES, SHAPE).await?;
    fields::page_view(&view)?;
    let session_id = view.session_id.clone();
    let view = PageViewCommand { site, session_id: view.session_id, url: view.url, title: view.title };
    let known = state.visits.page_view(view).await?;
    if known { Ok(HttpResponse::NoContent().finish()) } else { Err(unknown_session(&session_id)) }
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
