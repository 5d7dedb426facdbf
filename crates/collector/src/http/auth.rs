//! Sign-in, the users API, and the guard in front of every admin route.
//!
//! - `POST /v1/auth/login` `{ username, password }` (JSON only) → the
//!   session cookie and `{ user, permissions, csrf_token }`;
//! - `POST /v1/auth/logout` → the session ends, the cookie is cleared;
//! - `GET /v1/auth/me` → who the request is, what they may do, and the
//!   session's CSRF token (a reloaded dashboard reads it here);
//! - `GET /v1/users`, `POST /v1/users`, `PATCH /v1/users/{id}`,
//!   `DELETE /v1/users/{id}` (admins).
//!
//! **Sessions.** The cookie `ringsource_session` holds a random token
//! (only its SHA-256 is stored) and is `HttpOnly` (no script reads it),
//! `Secure` (sent over HTTPS only; browsers make an exception for
//! localhost), `SameSite=Strict` (no other site's page sends it) and
//! `Path=/`. A session ends 12 hours after its last request, 7 days after
//! sign-in, at sign-out, and when the user is changed or removed.
//!
//! **CSRF.** Every request that changes something (any method but GET,
//! HEAD, OPTIONS) and is authenticated by the cookie must carry the
//! session's token in `X-CSRF-Token`, which a page of another origin cannot
//! read (synchronizer token; SameSite is the second wall). Sign-in accepts
//! only `Content-Type: application/json`, which no cross-site form can send
//! without a preflight this API does not grant.
//!
//! **Rate limit.** 20 sign-in attempts per client address at once, then
//! one every 3 s; 5 failures per user name, then one every minute. A
//! limited attempt is answered 429 with `Retry-After` before the password
//! is looked at, so a right guess there tells nothing.
//!
//! **The guard** finds the principal of every request to a route in
//! [`policy::RULES`] (the admin token, or the cookie), checks the CSRF
//! token, the role's permission and the user's sites, and refuses with
//! 401 or 403 JSON; answers to roles that may not see callers or
//! recordings are scrubbed ([`crate::services::auth::scrub`]).

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::ForwardedHeader;
use crate::http::error::ApiError;
use crate::services::StorageError;
use crate::services::auth::policy::{self, SiteOf};
use crate::services::auth::scrub::Scrub;
use crate::services::auth::secrets;
use crate::services::auth::throttle::Throttle;
use crate::services::auth::{AuthError, SESSION_MAX_MS, UserStore};
use crate::services::auth::{Permission, Principal, Role, Sites, User, UserError, UserView, Via};

/// The routes this module registers.

pub const COOKIE: &str = "ringsource_session";
pub use crate::services::auth::CSRF_HEADER;
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The state of sign-in and the guard.
pub struct AuthApi {
    pub store: Arc<dyn UserStore>,
    /// `None`: no admin token; users only.
    pub admin_token: Option<String>,
    pub clock: Arc<dyn Clock>,
    /// The configured site ids.
    pub sites: HashSet<String>,
    /// The proxy header believed for the client's address, as for the API's
    /// rate limits (see [`crate::http::client_addr`]).
    pub forwarded: Option<ForwardedHeader>,
    by_address: Throttle,
    by_name: Throttle,
}

impl AuthApi {
    pub fn new(
        store: Arc<dyn UserStore>,
        admin_token: Option<String>,
        clock: Arc<dyn Clock>,
        sites: HashSet<String>,
        forwarded: Option<ForwardedHeader>,
    ) -> Self {
        AuthApi {
            store,
            admin_token,
            clock,
            sites,
            forwarded,
            by_address: Throttle::new(20, 3_000),
            by_name: Throttle::new(5, 60_000),
        }
    }
}

async fn blocking<T: Send + 'static, E: Into<AuthError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, AuthError> {
    // The request's span goes along, so what the work logs names the request.
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f))
        .await
        .map_err(|e| AuthError::Internal(format!("the blocking pool failed: {e}")))?
        .map_err(Into::into)
}

fn state(req: &HttpRequest) -> Result<web::Data<AuthApi>, AuthError> {
    req.app_data::<web::Data<AuthApi>>().cloned().ok_or_else(|| AuthError::Internal("auth state missing".into()))
}

/// The cookie's value, if the request carries it.
fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers().get_all(header::COOKIE).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

fn set_cookie(token: &str, max_age_secs: i64) -> String {
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict")
}

/// Who made the request, if anyone: the admin token first, then the cookie.
async fn principal(req: &HttpRequest, api: &web::Data<AuthApi>) -> Result<Option<Principal>, AuthError> {
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
    let store = Arc::clone(&api.store);
    let now_ms = api.clock.now_ms();
    let lookup = hash.clone();
    let found = blocking(move || store.session(&lookup, now_ms)).await?;
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
    let api = match state(req.request()) {
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

async fn site_of(req: &mut ServiceRequest, rule: &policy::Rule, api: &web::Data<AuthApi>) -> Result<Needed, AuthError> {
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
            let store = Arc::clone(&api.store);
            let is_call = rule.site == SiteOf::Call;
            let site = blocking(move || if is_call { store.call_site(id) } else { store.export_site(id) }).await?;
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

// ------------------------------------------------------------- handlers

async fn read_json<T: serde::de::DeserializeOwned>(body: web::Payload) -> Result<T, AuthError> {
    let bytes = body
        .to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| AuthError::BadRequest(format!("the body is larger than {MAX_BODY_BYTES} bytes")))?
        .map_err(|e| AuthError::BadRequest(format!("cannot read the body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::BadRequest(format!("the body is not the expected JSON: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

fn whoami(p: &Principal, csrf: Option<&str>) -> Value {
    json!({
        "user": p.user.as_ref().map(UserView::from),
        "role": p.role.as_str(),
        "sites": match &p.sites { Sites::All => None, Sites::Only(s) => Some(s.iter().cloned().collect::<Vec<_>>()) },
        "permissions": p.role.permissions().iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        "sees_callers": p.role.sees_callers(),
        "csrf_token": csrf,
    })
}

pub async fn login(req: HttpRequest, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let api = state(&req)?;
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return Err(AuthError::BadRequest("sign in with a JSON body and Content-Type: application/json".into()).into());
    }
    let now_ms = api.clock.now_ms();
    let address = crate::http::client_addr::client_ip(req.headers(), req.peer_addr(), api.forwarded)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    api.by_address.take(&address, now_ms).map_err(AuthError::TooMany)?;
    let body: LoginBody = read_json(body).await?;
    let name = crate::services::auth::user_name(&body.username).unwrap_or_default();
    api.by_name.check(&name, now_ms).map_err(AuthError::TooMany)?;
    let store = Arc::clone(&api.store);
    let lookup = name.clone();
    let password = body.password;
    let user: Option<User> = blocking(move || -> Result<Option<User>, StorageError> {
        let found = store.credentials(&lookup)?;
        // An unknown name costs a hash too, so timing does not tell names.
        let hash = found.as_ref().map_or_else(|| secrets::decoy_hash().to_owned(), |(_, h)| h.clone());
        let right = secrets::verify_password(&password, &hash);
        Ok(found.filter(|_| right).map(|(u, _)| u))
    })
    .await?;
    let Some(user) = user else {
        let _ = api.by_name.take(&name, now_ms);
        return Err(AuthError::BadCredentials.into());
    };
    let token = secrets::new_token().map_err(UserError::from)?;
    let csrf = secrets::new_token().map_err(UserError::from)?;
    let store = Arc::clone(&api.store);
    let (hash, id, csrf_stored) = (secrets::token_hash(&token), user.id, csrf.clone());
    blocking(move || store.start_session(id, &hash, &csrf_stored, now_ms)).await?;
    let principal = Principal {
        role: user.role,
        sites: user.sites.clone(),
        user: Some(user),
        via: Via::Session { token_hash: String::new(), csrf: csrf.clone() },
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, set_cookie(&token, SESSION_MAX_MS / 1000)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(whoami(&principal, Some(&csrf))))
}

pub async fn logout(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let api = state(&req)?;
    if let Some(Principal { via: Via::Session { token_hash, .. }, .. }) = principal_of(&req) {
        let store = Arc::clone(&api.store);
        blocking(move || store.end_session(&token_hash)).await?;
    }
    Ok(HttpResponse::NoContent().insert_header((header::SET_COOKIE, set_cookie("", 0))).finish())
}

pub async fn me(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p = principal_of(&req).ok_or(AuthError::Unauthenticated)?;
    let csrf = match &p.via {
        Via::Session { csrf, .. } => Some(csrf.as_str()),
        Via::AdminToken => None,
    };
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(whoami(&p, csrf)))
}

pub async fn list_users(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let api = state(&req)?;
    let store = Arc::clone(&api.store);
    let users = blocking(move || store.list_users()).await?;
    Ok(HttpResponse::Ok().json(json!({ "users": users.iter().map(UserView::from).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    role: String,
    #[serde(default)]
    sites: Option<Vec<String>>,
    password: String,
}

pub async fn add_user(req: HttpRequest, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let api = state(&req)?;
    let body: NewUserBody = read_json(body).await?;
    let name = crate::services::auth::user_name(&body.username)?;
    let (role, sites) =
        crate::services::auth::role_and_sites(&body.role, body.sites.as_deref(), &|s| api.sites.contains(s))?;
    let store = Arc::clone(&api.store);
    let now_ms = api.clock.now_ms();
    let user = blocking(move || -> Result<User, UserError> {
        let hash = secrets::hash_password(&body.password)?;
        Ok(store.add_user(&name, role, &sites, &hash, false, now_ms)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

fn user_id(text: &str) -> Result<i64, AuthError> {
    text.parse().map_err(|_| AuthError::BadRequest(format!("user id {text:?} is not a number")))
}

/// `{ role?, sites?: [..] | null, password? }`: `sites` left out keeps
/// them, `null` is every site.
pub async fn update_user(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let api = state(&req)?;
    let id = user_id(&id)?;
    let body: Value = read_json(body).await?;
    let Some(fields) = body.as_object() else {
        return Err(AuthError::BadRequest("the body is not an object".into()).into());
    };
    if let Some(k) = fields.keys().find(|k| !matches!(k.as_str(), "role" | "sites" | "password")) {
        return Err(AuthError::BadRequest(format!("unknown field {k:?}; expected role, sites or password")).into());
    }
    let store = Arc::clone(&api.store);
    let current = blocking({
        let store = Arc::clone(&store);
        move || store.user(id)
    })
    .await?
    .ok_or_else(|| UserError::Unknown(format!("#{id}")))?;
    let role_and_sites = if fields.contains_key("role") || fields.contains_key("sites") {
        let role = match fields.get("role") {
            Some(Value::String(r)) => r.clone(),
            Some(_) => return Err(AuthError::BadRequest("role must be a string".into()).into()),
            None => current.role.as_str().to_owned(),
        };
        let sites: Option<Vec<String>> = match fields.get("sites") {
            None => match &current.sites {
                Sites::All => None,
                Sites::Only(s) => Some(s.iter().cloned().collect()),
            },
            Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|_| AuthError::BadRequest("sites must be a list of site ids, or null".into()))?,
            ),
        };
        // An admin made a manager keeps no sites unless told.
        let sites = if current.role == Role::Admin && !fields.contains_key("sites") { None } else { sites };
        Some(crate::services::auth::role_and_sites(&role, sites.as_deref(), &|s| api.sites.contains(s))?)
    } else {
        None
    };
    let password = match fields.get("password") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(AuthError::BadRequest("password must be a string".into()).into()),
    };
    let now_ms = api.clock.now_ms();
    let user = blocking(move || -> Result<User, UserError> {
        let hash = password.as_deref().map(secrets::hash_password).transpose()?;
        Ok(store.update_user(id, role_and_sites, hash.as_deref(), now_ms)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

pub async fn remove_user(req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let api = state(&req)?;
    let id = user_id(&id)?;
    let store = Arc::clone(&api.store);
    let user = blocking(move || store.remove_user(id)).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}
