//! The workflows, between the HTTP edge (and the command line) and the
//! storage port: [`visits`] (routing a visit to a number), [`calls`] (PBX
//! events stored, folded and attributed; the calls admin API's reads),
//! [`money`], [`exports`] (GA4 and CRM exports of ended calls through the
//! outbox), [`pools`] (pool health), [`privacy`] (retention, erasure,
//! export of a caller's data), [`auth`] (dashboard users, roles, sessions and
//! what each role may see), [`call_notes`] (managers' tags and notes),
//! [`recordings`] (call recordings streamed from the PBX), and the facts of
//! a visitor ([`visitor_facts`], from [`geo`] and [`device`]). They take and give the port's types, which
//! they re-export for the layers above.

pub mod auth;
pub mod call_notes;
pub mod calls;
pub mod device;
pub mod exports;
pub mod geo;
pub mod money;
pub mod pools;
pub mod privacy;
pub mod recordings;
pub mod visitor_facts;
pub mod visits;

pub use crate::storage::StorageError;
pub use visits::PageUrlError;
