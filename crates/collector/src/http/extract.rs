//! What handlers take from a request, shared by every route: proof of the
//! admin token, the site named in the path, bodies and query strings read
//! within limits with JSON 4xx errors, and the hop to a blocking thread.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use jiff::tz::TimeZone;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Site;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::auth::policy::{self, SiteOf};
use crate::services::auth::scrub::Scrub;
use crate::services::auth::{AuthError, CSRF_HEADER, Permission, Principal, Sites, Via, secrets};

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("the app state is not registered"))
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
        if principal_of(req).is_some() {
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
                Some(g) if secrets::same_secret(g.as_bytes(), token.as_bytes()) => Ok(Admin),
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

/// Runs `f` on the blocking pool; `Err` is the pool's failure, as text.
async fn hop<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    // The request's span goes along, so what the work logs names the request.
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f)).await.map_err(|e| format!("the blocking pool failed: {e}"))
}

/// Runs blocking service work off the executor.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    hop(f).await.map_err(ApiError::internal)?.map_err(Into::into)
}

// ------------------------------------------- who is asking: the auth guard

/// The session cookie's name.
pub const COOKIE: &str = "ringsource_session";

async fn guard_blocking<T: Send + 'static, E: Into<AuthError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, AuthError> {
    hop(f).await.map_err(AuthError::Internal)?.map_err(Into::into)
}

fn guard_state(req: &HttpRequest) -> Result<web::Data<AppState>, AuthError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AuthError::Internal("the app state is not registered".into()))
}

/// The cookie's value, if the request carries it.
pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers().get_all(header::COOKIE).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

/// Who made the request, if anyone: the admin token first, then the cookie.
async fn principal(req: &HttpRequest, api: &web::Data<AppState>) -> Result<Option<Principal>, AuthError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(given) = bearer {
        return match api.admin_token.as_deref() {
            Some(token) if secrets::same_secret(given.as_bytes(), token.as_bytes()) => {
                Ok(Some(Principal::admin_token()))
            }
            _ => Err(AuthError::BadToken),
        };
    }
    let Some(token) = session_cookie(req) else { return Ok(None) };
    let hash = secrets::token_hash(&token);
    let store = Arc::clone(&api.users);
    let now_ms = api.clock.now_ms();
    let lookup = hash.clone();
    let found = guard_blocking(move || store.session(&lookup, now_ms)).await?;
    Ok(found.map(|s| Principal {
        role: s.user.role,
        sites: s.user.sites.clone(),
        user: Some(s.user),
        via: Via::Session { token_hash: hash, csrf: s.csrf },
    }))
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The guard in front of the admin API: see the module's documentation.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Visitors' and PBXs' routes (most requests) are nobody's to check.
    let path = req.path();
    let admin_path = path.starts_with("/v1/") && !path.starts_with("/v1/sites/");
    let Some(rule) = admin_path.then(|| policy::rule_for(req.method().as_str(), path)).flatten() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let api = match guard_state(req.request()) {
        Ok(api) => api,
        // Not registered (an app without users): the handlers' own admin
        // token check stands alone.
        Err(_) => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let refuse = |req: ServiceRequest, e: AuthError| Ok(req.into_response(ApiError::from(e).error_response()));
    let principal = match principal(req.request(), &api).await {
        Ok(Some(p)) => p,
        Ok(None) => return refuse(req, AuthError::Unauthenticated),
        Err(e) => return refuse(req, e),
    };
    if let Via::Session { csrf, .. } = &principal.via
        && changes_state(req.method())
    {
        let given = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !secrets::same_secret(given.as_bytes(), csrf.as_bytes()) {
            return refuse(req, AuthError::Csrf);
        }
    }
    if !principal.may(rule.permission) {
        return refuse(req, AuthError::Forbidden { role: principal.role.as_str(), doing: rule.permission.doing() });
    }
    if principal.sites != Sites::All {
        let site = match site_of(&mut req, rule, &api).await {
            Ok(site) => site,
            Err(e) => return refuse(req, e),
        };
        let user = principal.name();
        match site {
            Needed::Site(site) if !principal.sites.allows(&site) => {
                return refuse(req, AuthError::SiteForbidden { user, site });
            }
            Needed::Missing => return refuse(req, AuthError::SiteRequired { user }),
            Needed::Everything => {
                return refuse(
                    req,
                    AuthError::Forbidden { role: principal.role.as_str(), doing: rule.permission.doing() },
                );
            }
            Needed::Site(_) | Needed::Nothing => {}
        }
    }
    let scrub = Scrub {
        mask_callers: !principal.role.sees_callers(),
        hide_recordings: !principal.may(Permission::PlayRecordings),
    };
    req.extensions_mut().insert(principal);
    let mut res = next.call(req).await?.map_into_boxed_body();
    // What a user was let see is not kept by the browser: the next person
    // signed in at it (a marketer after a manager, say) would otherwise be
    // answered from the cache without the guard, recordings and callers included.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !scrub.needed() {
        return Ok(res);
    }
    scrubbed(res, scrub).await
}

/// The site a request is about, for a user of some sites.
enum Needed {
    Site(String),
    /// A listing across sites without `site=`.
    Missing,
    /// A route of no one site (privacy, users).
    Everything,
    /// Nothing to check (their own session; an unknown call, which the
    /// handler refuses with its 404).
    Nothing,
}

async fn site_of(
    req: &mut ServiceRequest,
    rule: &policy::Rule,
    api: &web::Data<AppState>,
) -> Result<Needed, AuthError> {
    let by_id = |id: Option<&str>| id.and_then(|t| t.parse::<i64>().ok());
    Ok(match rule.site {
        SiteOf::Own => Needed::Nothing,
        SiteOf::Global => Needed::Everything,
        SiteOf::Query => {
            let site = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.0.into_iter().find(|(k, v)| k == "site" && !v.is_empty()).map(|(_, v)| v));
            site.map_or(Needed::Missing, Needed::Site)
        }
        SiteOf::Call | SiteOf::Export => {
            let Some(id) = by_id(policy::first_param(rule.pattern, req.path())) else { return Ok(Needed::Nothing) };
            let store = Arc::clone(&api.users);
            let is_call = rule.site == SiteOf::Call;
            let site =
                guard_blocking(move || if is_call { store.call_site(id) } else { store.export_site(id) }).await?;
            site.map_or(Needed::Nothing, Needed::Site)
        }
        SiteOf::Body => {
            let (http, payload) = req.parts_mut();
            let body = web::Bytes::from_request(http, payload)
                .await
                .map_err(|e| AuthError::BadRequest(format!("cannot read the body: {e}")))?;
            let site = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("site").and_then(Value::as_str).map(str::to_owned));
            req.set_payload(bytes_payload(body));
            site.map_or(Needed::Nothing, Needed::Site)
        }
    })
}

/// A body read by the guard, handed on to the handler.
fn bytes_payload(body: web::Bytes) -> Payload {
    let (_, mut inner) = actix_http::h1::Payload::create(true);
    inner.unread_data(body);
    Payload::from(inner)
}

/// `res` with callers masked or recordings left out of its JSON or CSV body.
async fn scrubbed(res: ServiceResponse<BoxBody>, scrub: Scrub) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let kind = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let json = kind.starts_with("application/json");
    let csv = kind.starts_with("text/csv");
    if !json && !csv {
        return Ok(res);
    }
    let (req, resp) = res.into_parts();
    let (resp, body) = resp.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(format!("reading an answer to scrub: {e}")))?;
    let cleaned = if json { scrub.json_bytes(&bytes) } else { scrub.csv_bytes(&bytes) };
    // An answer that cannot be read is not handed on unscrubbed.
    let Some(cleaned) = cleaned else {
        let e = AuthError::Internal("an answer could not be scrubbed for this role".into());
        return Ok(ServiceResponse::new(req, ApiError::from(e).error_response()));
    };
    let mut resp = resp.set_body(BoxBody::new(cleaned));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(ServiceResponse::new(req, resp))
}

/// The request's principal, set by the guard.
pub fn principal_of(req: &HttpRequest) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}
