//! The visitor's first and last touch, kept in localStorage so a visitor who
//! clicked an ad yesterday and comes back directly today is still credited.
//!
//! Values go through the browser's own JSON (see `js.rs` for why not serde).

use ringsource_core::touch::{Touch, TouchHistory};

use crate::js::{history_from_js, history_to_js};

const KEY: &str = "ringsource.touches";

/// The stored history with `touch` recorded into it, not stored yet: until
/// the collector says whether the site needs consent, nothing is written.
/// Storage may be missing or full (private mode, quotas, disabled cookies):
/// then the history lives for this page view only, which still attributes it.
pub fn with(touch: Touch) -> TouchHistory {
    let mut history = load().unwrap_or_default();
    history.record(touch);
    history
}

pub fn load() -> Option<TouchHistory> {
    let text = crate::browser::load(KEY)?;
    // A value that no longer parses is dropped rather than breaking the page.
    let value = js_sys::JSON::parse(&text).ok()?;
    Some(history_from_js(&value))
}

pub fn save(history: &TouchHistory) {
    if let Ok(text) = js_sys::JSON::stringify(&history_to_js(history)) {
        crate::browser::store(KEY, &text);
    }
}

pub fn forget() {
    crate::browser::forget(KEY);
}
