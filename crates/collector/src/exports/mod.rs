//! The GA4 and CRM exports as configured: [`settings`] (`[sites.exports]`)
//! is read by the configuration; the outbox workflow is
//! [`crate::services::exports`], its admin routes [`crate::http::exports`].

pub mod settings;

pub use settings::{ExportKind, Exports, RawExports, RetryPolicy, Scenario};
