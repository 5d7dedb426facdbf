//! Dashboard users: roles, sites, passwords and signed-in sessions.
//!
//! - [`policy`]: the roles and what each route needs (pure);
//! - [`secrets`]: Argon2id password hashes, session and CSRF tokens;
//! - [`throttle`]: the login rate limit;
//! - [`scrub`]: callers masked and recordings left out of the answers of
//!   roles that may not see them;
//! - their SQL: [`crate::storage::sqlite::users`] ([`UserStore`] is the port);
//! - the HTTP side: [`crate::http::auth`] (sign-in, sign-out, the users API
//!   and the guard in front of every admin route);
//! - the command line: [`crate::cli::users`] (`ringsource user add|list|remove|passwd`).
//!
//! A request is made by a [`Principal`]: the admin token (scripts and
//! automation; an admin of every site) or a signed-in user.

pub mod policy;
pub mod scrub;
pub mod secrets;
pub mod throttle;

use serde::Serialize;

pub use crate::storage::users::{FoundSession, SESSION_IDLE_MS, SESSION_MAX_MS, User, UserStore, UserStoreError};
pub use policy::{Permission, Role, Sites};

use crate::storage::StorageError;

/// A user as the API writes it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    /// `null`: every site.
    pub sites: Option<Vec<String>>,
    pub demo: bool,
    pub created_at_ms: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            username: u.username.clone(),
            role: u.role.as_str(),
            sites: match &u.sites {
                Sites::All => None,
                Sites::Only(s) => Some(s.iter().cloned().collect()),
            },
            demo: u.demo,
            created_at_ms: u.created_at_ms,
        }
    }
}

/// A role's name, as the users API reads and writes it.
pub fn role_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let about = "admin: everything; marketer: reports, calls with callers masked, costs, revenue and exports; manager: calls with their tags, notes, recordings and promo codes.";
    let names = Role::ALL.map(Role::as_str);
    ObjectBuilder::new().schema_type(Type::String).description(Some(about)).enum_values(Some(names)).into()
}

/// How a request proved who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer <server.admin_token>`.
    AdminToken,
    /// The session cookie; state-changing requests must echo `csrf`.
    Session { token_hash: String, csrf: String },
}

/// Who made a request, as the guard found them.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `None` for the admin token.
    pub user: Option<User>,
    pub role: Role,
    pub sites: Sites,
    pub via: Via,
}

impl Principal {
    pub fn admin_token() -> Self {
        Principal { user: None, role: Role::Admin, sites: Sites::All, via: Via::AdminToken }
    }

    /// The name written beside what they do (tags, notes).
    pub fn name(&self) -> String {
        self.user.as_ref().map_or_else(|| "admin token".to_owned(), |u| u.username.clone())
    }

    pub fn may(&self, p: Permission) -> bool {
        self.role.may(p)
    }
}

/// Why a user could not be added or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user name {0:?} must be 1-64 characters of a-z, 0-9, '.', '_', '-' or '@'")]
    BadName(String),
    #[error("role {0:?} is not one of admin, marketer, manager")]
    BadRole(String),
    #[error("an admin sees every site: leave the sites out")]
    ScopedAdmin,
    #[error("a {0} needs at least one site, or every site")]
    NoSites(&'static str),
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error("a user named {0:?} exists already")]
    Taken(String),
    #[error("no user {0}")]
    Unknown(String),
    #[error("the last admin cannot be removed or made another role: add another admin first")]
    LastAdmin,
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<UserStoreError> for UserError {
    fn from(e: UserStoreError) -> Self {
        match e {
            UserStoreError::Taken(name) => UserError::Taken(name),
            UserStoreError::Unknown(who) => UserError::Unknown(who),
            UserStoreError::LastAdmin => UserError::LastAdmin,
            UserStoreError::Storage(e) => UserError::Storage(e),
        }
    }
}

/// A user name as stored: trimmed and in lower case, so `Anna` and `anna`
/// are one user.
pub fn user_name(text: &str) -> Result<String, UserError> {
    let name = text.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@'));
    if ok { Ok(name) } else { Err(UserError::BadName(text.to_owned())) }
}

/// A role and its sites, checked together against the configured sites.
pub fn role_and_sites(
    role: &str,
    sites: Option<&[String]>,
    configured: &dyn Fn(&str) -> bool,
) -> Result<(Role, Sites), UserError> {
    let role = Role::from_name(role.trim()).ok_or_else(|| UserError::BadRole(role.to_owned()))?;
    let sites = match sites {
        None => Sites::All,
        Some(list) => {
            if role == Role::Admin {
                return Err(UserError::ScopedAdmin);
            }
            let mut set = std::collections::BTreeSet::new();
            for s in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
                if !configured(s) {
                    return Err(UserError::UnknownSite(s.to_owned()));
                }
                set.insert(s.to_owned());
            }
            if set.is_empty() {
                return Err(UserError::NoSites(role.as_str()));
            }
            Sites::Only(set)
        }
    };
    Ok((role, sites))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scopes() {
        assert_eq!(user_name(" Anna.K@shop ").unwrap(), "anna.k@shop");
        assert!(user_name("").is_err() && user_name("a b").is_err() && user_name("анна").is_err());
        let known = |s: &str| s == "demo" || s == "shop";
        assert_eq!(role_and_sites("marketer", None, &known).unwrap(), (Role::Marketer, Sites::All));
        let (_, sites) = role_and_sites("manager", Some(&["shop".into(), " ".into()]), &known).unwrap();
        assert!(sites.allows("shop") && !sites.allows("demo"));
        assert!(matches!(role_and_sites("admin", Some(&["shop".into()]), &known), Err(UserError::ScopedAdmin)));
        assert!(matches!(role_and_sites("manager", Some(&[]), &known), Err(UserError::NoSites(_))));
        assert!(matches!(role_and_sites("manager", Some(&["x".into()]), &known), Err(UserError::UnknownSite(_))));
        assert!(matches!(role_and_sites("owner", None, &known), Err(UserError::BadRole(_))));
    }
}

/// Why a request was refused by the guard or the sign-in and users routes;
/// its status and code are decided with every other refusal's in
/// `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("sign in first (POST /v1/auth/login), or send Authorization: Bearer <server.admin_token>")]
    Unauthenticated,
    #[error("wrong admin token; send Authorization: Bearer <server.admin_token>")]
    BadToken,
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many sign-in attempts; retry in {0} s")]
    TooMany(u64),
    #[error("the {CSRF_HEADER} header is missing or is not this session's token (GET /v1/auth/me has it)")]
    Csrf,
    #[error("a {role} may not {doing}")]
    Forbidden { role: &'static str, doing: &'static str },
    #[error("{user} may not see site {site:?}")]
    SiteForbidden { user: String, site: String },
    #[error("{user} sees only some sites: name one with site=")]
    SiteRequired { user: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The header a signed-in session echoes its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl From<secrets::SecretError> for AuthError {
    fn from(e: secrets::SecretError) -> Self {
        AuthError::User(UserError::Secret(e))
    }
}

impl From<UserStoreError> for AuthError {
    fn from(e: UserStoreError) -> Self {
        AuthError::User(e.into())
    }
}
