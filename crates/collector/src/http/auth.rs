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
//! **The guard** ([`crate::http::extract::guard`]) finds the principal of
//! every request to a route in
//! [`crate::services::auth::policy::RULES`] (the admin token, or the
//! cookie), checks the CSRF
//! token, the role's permission and the user's sites, and refuses with
//! 401 or 403 JSON; answers to roles that may not see callers or
//! recordings are scrubbed ([`crate::services::auth::scrub`]).

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{guard_blocking, guard_state, principal_of};
use crate::services::StorageError;
use crate::services::auth::secrets;
use crate::services::auth::throttle::Throttle;
use crate::services::auth::{AuthError, SESSION_MAX_MS};
use crate::services::auth::{Principal, Role, Sites, User, UserError, UserView, Via};

pub use crate::http::extract::COOKIE;
pub use crate::services::auth::CSRF_HEADER;
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Sign-in attempts allowed per client address: a burst, then one per this
/// many ms.
pub fn login_by_address() -> Throttle {
    Throttle::new(20, 3_000)
}

/// Failed sign-ins allowed per user name: a few, then one a minute.
pub fn login_by_name() -> Throttle {
    Throttle::new(5, 60_000)
}

fn set_cookie(token: &str, max_age_secs: i64) -> String {
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict")
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
    let api = guard_state(&req)?;
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
    api.login_by_address.take(&address, now_ms).map_err(AuthError::TooMany)?;
    let body: LoginBody = read_json(body).await?;
    let name = crate::services::auth::user_name(&body.username).unwrap_or_default();
    api.login_by_name.check(&name, now_ms).map_err(AuthError::TooMany)?;
    let store = Arc::clone(&api.users);
    let lookup = name.clone();
    let password = body.password;
    let user: Option<User> = guard_blocking(move || -> Result<Option<User>, StorageError> {
        let found = store.credentials(&lookup)?;
        // An unknown name costs a hash too, so timing does not tell names.
        let hash = found.as_ref().map_or_else(|| secrets::decoy_hash().to_owned(), |(_, h)| h.clone());
        let right = secrets::verify_password(&password, &hash);
        Ok(found.filter(|_| right).map(|(u, _)| u))
    })
    .await?;
    let Some(user) = user else {
        let _ = api.login_by_name.take(&name, now_ms);
        return Err(AuthError::BadCredentials.into());
    };
    let token = secrets::new_token().map_err(UserError::from)?;
    let csrf = secrets::new_token().map_err(UserError::from)?;
    let store = Arc::clone(&api.users);
    let (hash, id, csrf_stored) = (secrets::token_hash(&token), user.id, csrf.clone());
    guard_blocking(move || store.start_session(id, &hash, &csrf_stored, now_ms)).await?;
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
    let api = guard_state(&req)?;
    if let Some(Principal { via: Via::Session { token_hash, .. }, .. }) = principal_of(&req) {
        let store = Arc::clone(&api.users);
        guard_blocking(move || store.end_session(&token_hash)).await?;
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
    let api = guard_state(&req)?;
    let store = Arc::clone(&api.users);
    let users = guard_blocking(move || store.list_users()).await?;
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
    let api = guard_state(&req)?;
    let body: NewUserBody = read_json(body).await?;
    let name = crate::services::auth::user_name(&body.username)?;
    let (role, sites) =
        crate::services::auth::role_and_sites(&body.role, body.sites.as_deref(), &|s| api.sites.contains_key(s))?;
    let store = Arc::clone(&api.users);
    let now_ms = api.clock.now_ms();
    let user = guard_blocking(move || -> Result<User, UserError> {
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
    let api = guard_state(&req)?;
    let id = user_id(&id)?;
    let body: Value = read_json(body).await?;
    let Some(fields) = body.as_object() else {
        return Err(AuthError::BadRequest("the body is not an object".into()).into());
    };
    if let Some(k) = fields.keys().find(|k| !matches!(k.as_str(), "role" | "sites" | "password")) {
        return Err(AuthError::BadRequest(format!("unknown field {k:?}; expected role, sites or password")).into());
    }
    let store = Arc::clone(&api.users);
    let current = guard_blocking({
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
        Some(crate::services::auth::role_and_sites(&role, sites.as_deref(), &|s| api.sites.contains_key(s))?)
    } else {
        None
    };
    let password = match fields.get("password") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(AuthError::BadRequest("password must be a string".into()).into()),
    };
    let now_ms = api.clock.now_ms();
    let user = guard_blocking(move || -> Result<User, UserError> {
        let hash = password.as_deref().map(secrets::hash_password).transpose()?;
        Ok(store.update_user(id, role_and_sites, hash.as_deref(), now_ms)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

pub async fn remove_user(req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let api = guard_state(&req)?;
    let id = user_id(&id)?;
    let store = Arc::clone(&api.users);
    let user = guard_blocking(move || store.remove_user(id)).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}
