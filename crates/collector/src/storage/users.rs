//! Dashboard users, their sites and their signed-in sessions: the port's
//! types and [`UserStore`]. What a role may do is the services'
//! ([`crate::services::auth::policy`]); the SQL is
//! [`crate::storage::sqlite::users`].

use std::collections::BTreeSet;

use crate::storage::StorageError;

/// A dashboard user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Marketer,
    Manager,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Marketer, Role::Manager];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketer => "marketer",
            Role::Manager => "manager",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// The sites a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sites {
    All,
    Only(BTreeSet<String>),
}

impl Sites {
    pub fn allows(&self, site: &str) -> bool {
        match self {
            Sites::All => true,
            Sites::Only(s) => s.contains(site),
        }
    }
}

/// A user as stored (never with their password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub sites: Sites,
    pub demo: bool,
    pub created_at_ms: i64,
}

/// A signed-in session as found.
#[derive(Debug, Clone)]
pub struct FoundSession {
    pub user: User,
    pub csrf: String,
}

/// A session lives this long after its last request…
pub const SESSION_IDLE_MS: i64 = 12 * 3600 * 1000;
/// …and never longer than this after sign-in.
pub const SESSION_MAX_MS: i64 = 7 * 24 * 3600 * 1000;

/// Why the store refused a change to a user.
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    #[error("a user named {0:?} exists already")]
    Taken(String),
    #[error("no user {0}")]
    Unknown(String),
    #[error("the last admin cannot be removed or made another role: add another admin first")]
    LastAdmin,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Users, their sessions, and the look-ups the guard needs to hold a user to
/// their sites (the site of a call and of an export).
pub trait UserStore: Send + Sync {
    fn add_user(
        &self,
        username: &str,
        role: Role,
        sites: &Sites,
        password_hash: &str,
        demo: bool,
        now_ms: i64,
    ) -> Result<User, UserStoreError>;

    fn list_users(&self) -> Result<Vec<User>, StorageError>;

    fn user(&self, id: i64) -> Result<Option<User>, StorageError>;

    /// The user and their password hash, by name.
    fn credentials(&self, username: &str) -> Result<Option<(User, String)>, StorageError>;

    fn user_by_name(&self, username: &str) -> Result<Option<User>, StorageError>;

    /// Changes a user's role and sites, and their password when given. Any
    /// change signs them out everywhere: their sessions were granted under
    /// the old terms.
    fn update_user(
        &self,
        id: i64,
        role_and_sites: Option<(Role, Sites)>,
        password_hash: Option<&str>,
        now_ms: i64,
    ) -> Result<User, UserStoreError>;

    /// Removes a user and signs them out; what they tagged and wrote keeps
    /// their name.
    fn remove_user(&self, id: i64) -> Result<User, UserStoreError>;

    fn start_session(&self, user_id: i64, token_hash: &str, csrf: &str, now_ms: i64) -> Result<(), StorageError>;

    /// The live session of a token hash, its idle time renewed.
    fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<FoundSession>, StorageError>;

    fn end_session(&self, token_hash: &str) -> Result<(), StorageError>;

    fn call_site(&self, id: i64) -> Result<Option<String>, StorageError>;

    fn export_site(&self, id: i64) -> Result<Option<String>, StorageError>;
}
