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
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Admin, blocking, json, principal_of};
use crate::http::state::AppState;
use crate::services::StorageError;
use crate::services::auth::secrets;
use crate::services::auth::throttle::Throttle;
use crate::services::auth::{AuthError, SESSION_MAX_MS, role_schema};
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

/// `POST /v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

/// Who a request is and what they may do.
#[derive(Serialize, ToSchema)]
struct Me<'a> {
    /// `null` for the admin token.
    user: Option<UserView>,
    #[schema(schema_with = role_schema)]
    role: &'static str,
    /// The sites the user may see; `null`: every site.
    sites: Option<Vec<String>>,
    /// What the role may do (`auth::policy`), for the dashboard's menus.
    permissions: Vec<&'static str>,
    /// Whether answers show callers' numbers whole (marketers see them masked).
    sees_callers: bool,
    /// The session's token for `X-CSRF-Token`; `null` for the admin token.
    csrf_token: Option<&'a str>,
}

impl<'a> Me<'a> {
    fn of(p: &Principal, csrf_token: Option<&'a str>) -> Self {
        Me {
            user: p.user.as_ref().map(UserView::from),
            role: p.role.as_str(),
            sites: match &p.sites {
                Sites::All => None,
                Sites::Only(s) => Some(s.iter().cloned().collect()),
            },
            permissions: p.role.permissions().iter().map(|x| x.as_str()).collect(),
            sees_callers: p.role.sees_callers(),
            csrf_token,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/auth/login",
    operation_id = "signIn",
    tag = "users",
    summary = "Sign in: the session cookie, and who signed in",
    description = "JSON only (Content-Type: application/json). 20 attempts per client address at once, then one every 3 s; 5 failures per user name, then one a minute. The cookie ringsource_session is HttpOnly, Secure, SameSite=Strict; a session ends 12 h after its last request, 7 days after sign-in, at sign-out, and when its user is changed or removed.",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = Me, headers(("Set-Cookie" = String, description = "ringsource_session"))),
        (status = 400, description = "Not JSON, or not the expected JSON", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 401, description = "Wrong user name or password", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_credentials"])))),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
        (status = 429, description = "Too many attempts", body = ErrorBody, extensions(("x-error-codes" = json!(["too_many_attempts"]))), headers(("Retry-After" = u64, description = "Seconds"))),
    )
)]
pub async fn login(req: HttpRequest, api: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !json_body {
        return Err(AuthError::BadRequest("sign in with a JSON body and Content-Type: application/json".into()).into());
    }
    let now_ms = api.clock.now_ms();
    let address = crate::http::client_addr::client_ip(req.headers(), req.peer_addr(), api.forwarded)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    api.login_by_address.take(&address, now_ms).map_err(AuthError::TooMany)?;
    let body: LoginBody = json(body, MAX_BODY_BYTES, "expected {\"username\", \"password\"}").await?;
    let name = crate::services::auth::user_name(&body.username).unwrap_or_default();
    api.login_by_name.check(&name, now_ms).map_err(AuthError::TooMany)?;
    let store = Arc::clone(&api.users);
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
        let _ = api.login_by_name.take(&name, now_ms);
        return Err(AuthError::BadCredentials.into());
    };
    let token = secrets::new_token().map_err(UserError::from)?;
    let csrf = secrets::new_token().map_err(UserError::from)?;
    let store = Arc::clone(&api.users);
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
        .json(Me::of(&principal, Some(&csrf))))
}

#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    operation_id = "signOut",
    tag = "users",
    summary = "Sign out: the session ends and the cookie is cleared",
    security(("adminToken" = [])),
    responses(
        (status = 204, description = "Signed out (also without a session)", headers(("Set-Cookie" = String, description = "ringsource_session, expired"))),
    )
)]
pub async fn logout(req: HttpRequest, api: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(Principal { via: Via::Session { token_hash, .. }, .. }) = principal_of(&req) {
        let store = Arc::clone(&api.users);
        blocking(move || store.end_session(&token_hash)).await?;
    }
    Ok(HttpResponse::NoContent().insert_header((header::SET_COOKIE, set_cookie("", 0))).finish())
}

#[utoipa::path(
    get,
    path = "/v1/auth/me",
    operation_id = "whoAmI",
    tag = "users",
    summary = "Who the request is, what they may do, and the session's CSRF token",
    description = "A reloaded dashboard reads its CSRF token here.",
    security(("adminToken" = [])),
    responses((status = 200, description = "The principal", body = Me))
)]
pub async fn me(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p = principal_of(&req).ok_or(AuthError::Unauthenticated)?;
    let csrf = match &p.via {
        Via::Session { csrf, .. } => Some(csrf.as_str()),
        Via::AdminToken => None,
    };
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(Me::of(&p, csrf)))
}

/// `GET /v1/users`.
#[derive(Serialize, ToSchema)]
struct UserList {
    users: Vec<UserView>,
}

#[utoipa::path(
    get,
    path = "/v1/users",
    operation_id = "listUsers",
    tag = "users",
    summary = "The dashboard's users",
    security(("adminToken" = [])),
    responses((status = 200, description = "Users", body = UserList))
)]
pub async fn list_users(_: Admin, api: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = Arc::clone(&api.users);
    let users = blocking(move || store.list_users()).await?;
    Ok(HttpResponse::Ok().json(UserList { users: users.iter().map(UserView::from).collect() }))
}

/// `POST /v1/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    /// 1 to 64 characters, stored lower case.
    username: String,
    #[schema(schema_with = role_schema)]
    role: String,
    /// The sites a marketer or manager may see; absent or `null`: every
    /// site (admins always see every site).
    #[serde(default)]
    sites: Option<Vec<String>>,
    password: String,
}

#[utoipa::path(
    post,
    path = "/v1/users",
    operation_id = "addUser",
    tag = "users",
    summary = "Add a dashboard user",
    security(("adminToken" = [])),
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Added", body = UserView),
        (status = 400, description = "Bad name, role, site or password", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 409, description = "The name is taken", body = ErrorBody, extensions(("x-error-codes" = json!(["user_exists"])))),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn add_user(_: Admin, api: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let body: NewUserBody =
        json(body, MAX_BODY_BYTES, "expected {\"username\", \"role\", \"sites\", \"password\"}").await?;
    let name = crate::services::auth::user_name(&body.username)?;
    let (role, sites) =
        crate::services::auth::role_and_sites(&body.role, body.sites.as_deref(), &|s| api.sites.contains_key(s))?;
    let store = Arc::clone(&api.users);
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

/// `PATCH /v1/users/{id}`: what is left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserChanges {
    #[serde(default)]
    #[schema(schema_with = role_schema)]
    role: Option<String>,
    /// `null`: every site; left out: the sites stay (an admin made a
    /// marketer or manager gets every site unless told).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    sites: Option<Option<Vec<String>>>,
    #[serde(default)]
    password: Option<String>,
}

/// A field that is there, `null` or not: `Some(None)` for `null`, where a
/// field left out stays `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(Some)
}

#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    operation_id = "updateUser",
    tag = "users",
    summary = "Change a user's role, sites or password (their sessions end)",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "User id.")),
    request_body = UserChanges,
    responses(
        (status = 200, description = "Changed", body = UserView),
        (status = 400, description = "Bad id, role, site or password", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown user", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_user"])))),
        (status = 409, description = "It would leave no admin", body = ErrorBody, extensions(("x-error-codes" = json!(["last_admin"])))),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn update_user(
    _: Admin,
    api: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&id)?;
    let changes: UserChanges = json(body, MAX_BODY_BYTES, "expected {\"role\", \"sites\", \"password\"}").await?;
    let store = Arc::clone(&api.users);
    let current = blocking({
        let store = Arc::clone(&store);
        move || store.user(id)
    })
    .await?
    .ok_or_else(|| UserError::Unknown(format!("#{id}")))?;
    let role_and_sites = if changes.role.is_some() || changes.sites.is_some() {
        let role = changes.role.unwrap_or_else(|| current.role.as_str().to_owned());
        let sites = match changes.sites {
            Some(sites) => sites,
            // An admin made a manager keeps no sites unless told.
            None if current.role == Role::Admin => None,
            None => match &current.sites {
                Sites::All => None,
                Sites::Only(s) => Some(s.iter().cloned().collect()),
            },
        };
        Some(crate::services::auth::role_and_sites(&role, sites.as_deref(), &|s| api.sites.contains_key(s))?)
    } else {
        None
    };
    let (password, now_ms) = (changes.password, api.clock.now_ms());
    let user = blocking(move || -> Result<User, UserError> {
        let hash = password.as_deref().map(secrets::hash_password).transpose()?;
        Ok(store.update_user(id, role_and_sites, hash.as_deref(), now_ms)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    operation_id = "removeUser",
    tag = "users",
    summary = "Remove a user (their sessions end)",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "User id.")),
    responses(
        (status = 200, description = "The removed user", body = UserView),
        (status = 400, description = "Bad id", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown user", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_user"])))),
        (status = 409, description = "It would leave no admin", body = ErrorBody, extensions(("x-error-codes" = json!(["last_admin"])))),
    )
)]
pub async fn remove_user(_: Admin, api: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = user_id(&id)?;
    let store = Arc::clone(&api.users);
    let user = blocking(move || store.remove_user(id)).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}
