//! Pure call-tracking logic shared by the browser bundle and the collector.
//! Nothing in this crate does I/O, so all of it is tested natively.

pub mod attribution;
#[cfg(feature = "bots")]
pub mod bots;
pub mod call;
pub mod channel;
pub mod lease;
pub mod matcher;
pub mod phone;
pub mod pool_usage;
pub mod promo;
pub mod routing;
pub mod sources;
pub mod touch;
pub mod visit;
pub mod wire;
