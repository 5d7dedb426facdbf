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

use crate::http::error::ApiError;
use crate::http::extract::{Admin, blocking, body as read_body};
use crate::http::state::AppState;

const MAX_BODY_BYTES: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    site: String,
    phone: String,
}

async fn request(body: web::Payload) -> Result<Request, ApiError> {
    let bytes = read_body(body, MAX_BODY_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body must be {{\"site\": …, \"phone\": …}}: {e}")))
}

pub async fn erase(_: Admin, state: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let req = request(body).await?;
    let service = Arc::clone(&state.privacy);
    let erased = blocking(move || service.erase(&req.site, &req.phone)).await?;
    Ok(HttpResponse::Ok().json(erased))
}

pub async fn export(_: Admin, state: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let req = request(body).await?;
    let service = Arc::clone(&state.privacy);
    let data = blocking(move || service.export(&req.site, &req.phone)).await?;
    Ok(HttpResponse::Ok().json(data))
}
