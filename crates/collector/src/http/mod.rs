//! The web edge: everything HTTP, once.

pub mod calls;
pub mod client_addr;
pub mod edge;
pub mod error;
pub mod exports;
pub mod fields;
pub mod money;
pub mod openapi;
pub mod pools;
pub mod privacy;
pub mod ratelimit;
pub mod static_files;
pub mod visits;
