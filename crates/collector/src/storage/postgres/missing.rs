//! The stores the PostgreSQL adapter does not have yet (docs/postgres.md
//! lists them). The server refuses to start on PostgreSQL while any is
//! missing, unless `RINGSOURCE_EXPERIMENTAL_POSTGRES=1`; then the routes
//! that need them answer 501 before a handler runs (`http::routes`), and
//! the background loops that need them do not start. [`NotYet`] only fills
//! their place in the application state: each of its methods fails with
//! [`StorageError::NotOnPostgres`], so nothing that reaches one by mistake
//! is told it worked.

use std::collections::HashMap;

use ringsource_core::call::CallEvent;
use ringsource_core::promo::PromoCode;

use crate::clock::Clock;
use crate::config::Site;
use crate::pbx::Delivery;
use crate::storage::StorageError;
use crate::storage::call_notes::{Note, NotesStore, NotesStoreError, TagCount};
use crate::storage::calls::{
    CallDetail, CallFilter, CallStore, CallSummary, CallWorkflow, PromoLookup, RecordError, Recorded, ReportQuery,
    ReportRow,
};
use crate::storage::money::{
    Claimed, CostRow, Finish, MoneyStore, OutboxFilter, OutboxRow, OutboxStore, RetryError, RevenueError, RevenuePost,
    RevenueRecorded,
};
use crate::storage::pools::{PoolActivity, PoolReportStore};
use crate::storage::privacy::{Erased, PrivacyStore, RetentionCutoffs, RetentionReport, Subject, SubjectExport};
use crate::storage::recordings::{CallRecording, RecordingStore};
use crate::storage::users::{FoundSession, Role, Sites, User, UserStore, UserStoreError};

/// What the PostgreSQL adapter does not serve yet, as the start-up refusal
/// and the 501 answers name it.
pub const MISSING: &str = "PBX call events and attribution, the calls list and reports, promo-code look-ups, \
     costs and revenue, the exports outbox, the pools report, retention and erasure, dashboard users, \
     call tags and notes, and recordings";

/// Stands in for the stores above; every method fails.
pub struct NotYet;

fn not_yet(feature: &'static str) -> StorageError {
    StorageError::NotOnPostgres { feature }
}

impl CallStore for NotYet {
    fn record_call_event(
        &self,
        _: &Site,
        _: Option<&Delivery>,
        _: &CallEvent,
        _: &dyn Clock,
        _: &dyn CallWorkflow,
    ) -> Result<Recorded, RecordError> {
        Err(not_yet("recording PBX call events").into())
    }
    fn list_calls(&self, _: &CallFilter) -> Result<(Vec<CallSummary>, u64), StorageError> {
        Err(not_yet("the calls list"))
    }
    fn call_site(&self, _: i64) -> Result<Option<String>, StorageError> {
        Err(not_yet("calls"))
    }
    fn call(&self, _: i64) -> Result<Option<CallDetail>, StorageError> {
        Err(not_yet("calls"))
    }
    fn report(&self, _: &ReportQuery) -> Result<Vec<ReportRow>, StorageError> {
        Err(not_yet("the calls report"))
    }
    fn promo_lookup(&self, _: &str, _: &PromoCode) -> Result<Option<PromoLookup>, StorageError> {
        Err(not_yet("promo-code look-ups"))
    }
    fn attach_promo(
        &self,
        _: &Site,
        _: i64,
        _: &PromoCode,
        _: &dyn Clock,
        _: &dyn CallWorkflow,
    ) -> Result<Option<()>, StorageError> {
        Err(not_yet("promo codes on calls"))
    }
}

impl MoneyStore for NotYet {
    fn upsert_costs(&self, _: &[CostRow], _: bool, _: &dyn Clock) -> Result<usize, StorageError> {
        Err(not_yet("costs"))
    }
    fn record_revenue(&self, _: &RevenuePost, _: bool, _: &dyn Clock) -> Result<RevenueRecorded, RevenueError> {
        Err(not_yet("revenue").into())
    }
    fn has_demo_data(&self, _: &str) -> Result<bool, StorageError> {
        Err(not_yet("demo data"))
    }
}

impl OutboxStore for NotYet {
    fn claim_due(&self, _: u32, _: i64, _: &dyn Clock) -> Result<Vec<Claimed>, StorageError> {
        Err(not_yet("the exports outbox"))
    }
    fn finish(&self, _: i64, _: &Finish, _: &dyn Clock) -> Result<(), StorageError> {
        Err(not_yet("the exports outbox"))
    }
    fn next_due_ms(&self) -> Result<Option<i64>, StorageError> {
        Err(not_yet("the exports outbox"))
    }
    fn list_exports(&self, _: &OutboxFilter) -> Result<(Vec<OutboxRow>, u64), StorageError> {
        Err(not_yet("the exports list"))
    }
    fn retry_export(&self, _: i64, _: &dyn Clock) -> Result<OutboxRow, RetryError> {
        Err(not_yet("export retries").into())
    }
}

impl PoolReportStore for NotYet {
    fn pool_activity(&self, _: &str, _: i64, _: i64, _: i64, _: i64) -> Result<PoolActivity, StorageError> {
        Err(not_yet("the pools report"))
    }
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

impl NotesStore for NotYet {
    fn add_tag(&self, _: i64, _: &str, _: &str, _: i64) -> Result<Vec<String>, NotesStoreError> {
        Err(not_yet("call tags").into())
    }
    fn remove_tag(&self, _: i64, _: &str) -> Result<Vec<String>, NotesStoreError> {
        Err(not_yet("call tags").into())
    }
    fn tags_of_calls(&self, _: &[i64]) -> Result<HashMap<i64, Vec<String>>, StorageError> {
        Err(not_yet("call tags"))
    }
    fn tags_in_use(&self, _: &str) -> Result<Vec<TagCount>, StorageError> {
        Err(not_yet("call tags"))
    }
    fn notes(&self, _: i64) -> Result<Vec<Note>, NotesStoreError> {
        Err(not_yet("call notes").into())
    }
    fn add_note(&self, _: i64, _: &str, _: &str, _: i64) -> Result<Note, NotesStoreError> {
        Err(not_yet("call notes").into())
    }
    fn remove_note(&self, _: i64, _: i64, _: &str, _: bool) -> Result<(), NotesStoreError> {
        Err(not_yet("call notes").into())
    }
}

impl RecordingStore for NotYet {
    fn call(&self, _: i64) -> Result<Option<CallRecording>, StorageError> {
        Err(not_yet("recordings"))
    }
}
