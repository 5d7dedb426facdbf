//! The stores the PostgreSQL adapter does not have yet (docs/postgres.md
//! lists them): privacy, and dashboard users. The server
//! refuses to start on PostgreSQL while any is missing, unless
//! `RINGSOURCE_EXPERIMENTAL_POSTGRES=1`; then the routes that need them
//! answer 501 before a handler runs (`http::routes::not_on_postgres`), and
//! the retention loop does not start. [`NotYet`] only fills
//! their place in the application state: each of its methods fails with
//! [`StorageError::NotOnPostgres`], so nothing that reaches one by mistake
//! is told it worked.

use crate::clock::Clock;
use crate::storage::StorageError;
use crate::storage::privacy::{Erased, PrivacyStore, RetentionCutoffs, RetentionReport, Subject, SubjectExport};
use crate::storage::users::{FoundSession, Role, Sites, User, UserStore, UserStoreError};

/// What the PostgreSQL adapter does not serve yet, as the start-up refusal
/// and the 501 answers name it.
pub const MISSING: &str = "retention, erasure and subject export, and dashboard users and sign-in";

/// The routes that need what is missing ([`MISSING`]), as `http::routes`
/// lists them.
pub const MISSING_ROUTES: &[&str] = &[
    "/v1/privacy/erase",
    "/v1/privacy/export",
    "/v1/auth/login",
    "/v1/auth/logout",
    "/v1/auth/me",
    "/v1/users",
    "/v1/users/{id}",
];

/// Stands in for the stores above; every method fails.
pub struct NotYet;

fn not_yet(feature: &'static str) -> StorageError {
    StorageError::NotOnPostgres { feature }
}

impl PrivacyStore for NotYet {
    fn apply_retention(&self, _: &RetentionCutoffs, _: &dyn Clock) -> Result<RetentionReport, StorageError> {
        Err(not_yet("retention"))
    }
    fn erase(&self, _: &Subject) -> Result<Erased, StorageError> {
        Err(not_yet("erasure"))
    }
    fn export(&self, _: &Subject) -> Result<SubjectExport, StorageError> {
        Err(not_yet("subject export"))
    }
}

impl UserStore for NotYet {
    fn add_user(&self, _: &str, _: Role, _: &Sites, _: &str, _: bool, _: i64) -> Result<User, UserStoreError> {
        Err(not_yet("dashboard users").into())
    }
    fn list_users(&self) -> Result<Vec<User>, StorageError> {
        Err(not_yet("dashboard users"))
    }
    fn user(&self, _: i64) -> Result<Option<User>, StorageError> {
        Err(not_yet("dashboard users"))
    }
    fn credentials(&self, _: &str) -> Result<Option<(User, String)>, StorageError> {
        Err(not_yet("dashboard users"))
    }
    fn user_by_name(&self, _: &str) -> Result<Option<User>, StorageError> {
        Err(not_yet("dashboard users"))
    }
    fn update_user(&self, _: i64, _: Option<(Role, Sites)>, _: Option<&str>, _: i64) -> Result<User, UserStoreError> {
        Err(not_yet("dashboard users").into())
    }
    fn remove_user(&self, _: i64) -> Result<User, UserStoreError> {
        Err(not_yet("dashboard users").into())
    }
    fn start_session(&self, _: i64, _: &str, _: &str, _: i64) -> Result<(), StorageError> {
        Err(not_yet("dashboard sign-in"))
    }
    fn session(&self, _: &str, _: i64) -> Result<Option<FoundSession>, StorageError> {
        Err(not_yet("dashboard sign-in"))
    }
    fn end_session(&self, _: &str) -> Result<(), StorageError> {
        Err(not_yet("dashboard sign-in"))
    }
    fn call_site(&self, _: i64) -> Result<Option<String>, StorageError> {
        Err(not_yet("calls"))
    }
    fn export_site(&self, _: i64) -> Result<Option<String>, StorageError> {
        Err(not_yet("the exports list"))
    }
}
