//! The privacy admin API (admin token, as the other admin routes):
//!
//! - `POST /v1/privacy/erase` `{ "site", "phone" }` → `{ site, phone
//!   (masked), removed: { calls, call_events, revenue, exports,
//!   pending_exports, sessions, touches, page_views, leases, promo_codes,
//!   other_calls_candidates, sessions_kept } }`;
//! - `POST /v1/privacy/export` `{ "site", "phone" }` → `{ site, phone, calls:
//!   [call + revenue + exports], sessions: [session in full] }`.
//!
//! The number goes in the body, not the URL, so it stays out of proxies'
//! access logs. A number that does not parse is 400 `bad_request` (`phone: …`); an unknown
//! site 404 `unknown_site`.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Admin, blocking, body as read_body};
use crate::http::state::AppState;
use crate::services::privacy::{Erasure, SubjectExport};

const MAX_BODY_BYTES: usize = 4096;

/// One caller of one site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PrivacyRequest)]
struct Request {
    #[schema(min_length = 1)]
    site: String,
    /// As written anywhere: national in the site's region (8 916 123-45-67),
    /// international (+7 916 …), or international digits without '+'.
    #[schema(min_length = 1)]
    phone: String,
}

async fn request(body: web::Payload) -> Result<Request, ApiError> {
    let bytes = read_body(body, MAX_BODY_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body must be {{\"site\": …, \"phone\": …}}: {e}")))
}

#[utoipa::path(
    post,
    path = "/v1/privacy/erase",
    operation_id = "erasePhone",
    tag = "privacy",
    summary = "Erase a caller: their calls, call events, revenue and exports (pending ones too), and the sessions those calls were attributed to (with their touches, page views, leases and promo codes); answers what went",
    security(("adminToken" = [])),
    request_body(description = "At most 4096 bytes (413 beyond).", content((Request = "application/json"))),
    responses(
        (status = 200, description = "What was removed; `phone` masked", body = Erasure),
        (status = 400, description = "Bad body, or a phone number that does not parse in the site's region (message `phone: …`)", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
        (status = 413, description = "Body too large", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn erase(_: Admin, state: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let req = request(body).await?;
    let service = Arc::clone(&state.privacy);
    let erased = blocking(move || service.erase(&req.site, &req.phone)).await?;
    Ok(HttpResponse::Ok().json(erased))
}

#[utoipa::path(
    post,
    path = "/v1/privacy/export",
    operation_id = "exportPhone",
    tag = "privacy",
    summary = "Everything a site holds about a caller (subject access request): what erase would remove",
    security(("adminToken" = [])),
    request_body(description = "At most 4096 bytes (413 beyond).", content((Request = "application/json"))),
    responses(
        (status = 200, description = "The caller's calls (each with revenue and exports) and sessions in full", body = SubjectExport),
        (status = 400, description = "Bad body, or a phone number that does not parse in the site's region (message `phone: …`)", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
        (status = 413, description = "Body too large", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn export(_: Admin, state: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let req = request(body).await?;
    let service = Arc::clone(&state.privacy);
    let data = blocking(move || service.export(&req.site, &req.phone)).await?;
    Ok(HttpResponse::Ok().json(data))
}
