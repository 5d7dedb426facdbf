//! Per-site CORS on the browser's routes: an allowed `Origin` is reflected;
//! a disallowed one is refused on the server too (403), so a page on another
//! origin cannot take numbers even with a no-CORS request. Requests without
//! `Origin` (same-origin GETs, servers, curl) pass.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::http::client_addr::{self, LocalAddr};
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match allowed_origin(&req) {
        Err(e) => {
            // The refusal itself is readable by the page, so that the script
            // can tell its site owner which origin to allow, instead of
            // seeing an opaque network error.
            let origin = req.headers().get(header::ORIGIN).cloned();
            let mut resp = req.error_response(e).map_into_boxed_body();
            if let Some(origin) = origin {
                let h = resp.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                h.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            Ok(resp)
        }
        Ok(origin) => {
            let mut resp = next.call(req).await?.map_into_boxed_body();
            if let Some(origin) = origin {
                let h = resp.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                h.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            Ok(resp)
        }
    }
}

fn allowed_origin(req: &ServiceRequest) -> Result<Option<HeaderValue>, ApiError> {
    let state =
        req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("the app state is not registered"))?;
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
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!(
                "origin {text} may not call site {:?}: add \"{text}\" to allowed_origins of this site in the collector's configuration",
                site.id
            ),
        ))
    }
}

/// CORS preflight for clients that post `application/json` (the script tag
/// posts `text/plain` and needs none). The middleware has already checked the origin.
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}
