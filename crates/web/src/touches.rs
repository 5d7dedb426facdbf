//! The visitor's first and last touch, kept in localStorage so a visitor who
//! clicked an ad yesterday and comes back directly today is still credited.

use gloo_storage::{LocalStorage, Storage};
use ringsource_core::touch::{Touch, TouchHistory};

const KEY: &str = "ringsource.touches";

/// Records `touch` into the stored history and returns the updated history.
/// Storage may be missing or full (private mode, quotas, disabled cookies):
/// then the history lives for this page view only, which still attributes it.
pub fn record(touch: Touch) -> TouchHistory {
    let mut history: TouchHistory = LocalStorage::get(KEY).unwrap_or_default();
    history.record(touch);
    let _ = LocalStorage::set(KEY, &history);
    history
}

pub fn load() -> Option<TouchHistory> {
    LocalStorage::get(KEY).ok()
}

pub fn forget() {
    LocalStorage::delete(KEY);
}
