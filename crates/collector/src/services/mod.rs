//! The workflows between the HTTP edge (and the command line) and storage.

pub mod calls;
pub mod exports;
pub mod privacy;
pub mod visits;
