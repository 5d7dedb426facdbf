//! What handlers take from a request, shared by every route: proof of the
//! admin token, the site named in the path, bodies and query strings read
//! within limits with JSON 4xx errors, and the hop to a blocking thread.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use jiff::tz::TimeZone;
use serde::de::DeserializeOwned;

use crate::config::Site;
use crate::http::error::ApiError;
use crate::http::state::AppState;

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("the app state is not registered"))
}

/// Compares without an early exit, so response time does not tell how much
/// of a guessed token was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof that the request may reach an admin route: the auth guard let its
/// principal through (a user whose role and sites allow it), or it carries
/// the admin token (`Authorization: Bearer <server.admin_token>`). Every
/// admin handler takes one. Without a configured token or users the admin
/// API is off.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The auth guard has let a signed-in user or the admin token through
        // for this route (see services::auth::policy::RULES).
        if crate::http::auth::principal_of(req).is_some() {
            return ready(Ok(Admin));
        }
        ready(state(req).and_then(|state| {
            let Some(token) = state.admin_token.as_deref() else {
                return Err(ApiError::admin_unauthorized(
                    "the admin API is off: no server.admin_token (or RINGSOURCE_ADMIN_TOKEN) is configured",
                ));
            };
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match given {
                Some(g) if same_secret(g.as_bytes(), token.as_bytes()) => Ok(Admin),
                _ => Err(ApiError::admin_unauthorized(
                    "missing or wrong admin token; send Authorization: Bearer <server.admin_token>",
                )),
            }
        }))
    }
}

/// The configured site named by the path's `{site}` (404 `unknown_site`
/// otherwise).
pub struct SitePath(pub Arc<Site>);

impl FromRequest for SitePath {
    type Error = ApiError;
    type Future = Ready<Result<SitePath, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.match_info().get("site").unwrap_or_default();
        ready(state(req).and_then(|state| state.site(id)).map(SitePath))
    }
}

/// Reads a body of at most `limit` bytes (413 beyond). Handlers call it
/// after their cheaper checks (rate limits, the site), so a refused request
/// is not read.
pub async fn body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?
        .map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))
}

/// A JSON body of at most `limit` bytes, whatever its content type says (the
/// browser posts `text/plain` to avoid a preflight); `shape` says what was
/// expected when it does not parse.
pub async fn json<T: DeserializeOwned>(payload: web::Payload, limit: usize, shape: &str) -> Result<T, ApiError> {
    let bytes = body(payload, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("{shape}: {e}")))
}

/// The query string, with a JSON 400 on unknown or bad keys.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))
}

/// A time bound of a query (`from`, `to`): Unix ms, or a `YYYY-MM-DD` day of
/// `zone` (the site's). As an upper bound a date includes its whole day.
pub fn time_bound(zone: &TimeZone, name: &str, text: &str, upper: bool) -> Result<i64, ApiError> {
    crate::dates::time_bound(zone, text, upper).map_err(|e| ApiError::bad_request(format!("{name}={e}")))
}

/// Runs blocking service work off the executor.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    // The request's span goes along, so what the work logs names the request.
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f))
        .await
        .map_err(|e| ApiError::internal(format!("the blocking pool failed: {e}")))?
        .map_err(Into::into)
}
