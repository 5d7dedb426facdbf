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

use super::{PrivacyError, PrivacyService};
use crate::admin::{AdminError, blocking, read_body};
use crate::calls::api::Admin;

/// The routes this module registers, for `api::ROUTES` and `openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[("POST", "/v1/privacy/erase"), ("POST", "/v1/privacy/export")];

const MAX_BODY_BYTES: usize = 4096;

pub struct PrivacyApi {
    pub service: Arc<PrivacyService>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/privacy/erase", web::post().to(erase)).route("/v1/privacy/export", web::post().to(export));
}

impl From<PrivacyError> for AdminError {
    fn from(e: PrivacyError) -> Self {
        match e {
            PrivacyError::UnknownSite(_) => AdminError::NotFound { code: "unknown_site", message: e.to_string() },
            PrivacyError::BadPhone { .. } => AdminError::BadRequest(e.to_string()),
            PrivacyError::Storage(s) => AdminError::Storage(s),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    site: String,
    phone: String,
}

async fn request(body: web::Payload) -> Result<Request, AdminError> {
    let bytes = read_body(body, MAX_BODY_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AdminError::BadRequest(format!("the body must be {{\"site\": …, \"phone\": …}}: {e}")))
}

async fn erase(_: Admin, state: web::Data<PrivacyApi>, body: web::Payload) -> Result<HttpResponse, AdminError> {
    let req = request(body).await?;
    let service = Arc::clone(&state.service);
    let erased = blocking(move || service.erase(&req.site, &req.phone)).await?;
    Ok(HttpResponse::Ok().json(erased))
}

async fn export(_: Admin, state: web::Data<PrivacyApi>, body: web::Payload) -> Result<HttpResponse, AdminError> {
    let req = request(body).await?;
    let service = Arc::clone(&state.service);
    let data = blocking(move || service.export(&req.site, &req.phone)).await?;
    Ok(HttpResponse::Ok().json(data))
}
