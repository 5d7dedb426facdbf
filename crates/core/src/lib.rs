//! Pure call-tracking logic shared by the browser bundle and the collector.
//! Nothing in this crate does I/O, so all of it is tested natively.

pub mod channel;
pub mod sources;
pub mod touch;
pub mod visit;
