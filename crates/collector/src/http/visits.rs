//! The browser's routes under `/v1/sites/{site}/`: the site's public
//! settings, visits, heartbeats and page views. The browser posts with
//! `Content-Type: text/plain` (no CORS preflight), so bodies are parsed as
//! JSON whatever the content type says.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use ringsource_core::lease::Groups;
use ringsource_core::wire::{HeartbeatRequest, HeartbeatResponse, PageViewRequest, VisitRequest};

use crate::http::error::ApiError;
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

pub async fn site_config(SitePath(site): SitePath) -> HttpResponse {
    HttpResponse::Ok().json(service::public_config(&site))
}

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
