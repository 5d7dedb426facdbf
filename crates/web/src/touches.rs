//! The visitor's first and last touch, kept in localStorage so a visitor who
//! clicked an ad yesterday and comes back directly today is still credited.
//!
//! Values go through the browser's own JSON (see `js.rs` for why not serde).

use ringsource_core::touch::{Touch, TouchHistory};

use crate::js::{history_from_js, history_to_js};

const KEY: &str = "ringsource.touches";

/// Records `touch` into the stored history and returns the updated history.
/// Storage may be missing or full (private mode, quotas, disabled cookies):
/// then the history lives for this page view only, which still attributes it.
pub fn record(touch: Touch) -> TouchHistory {
    let mut history = load().unwrap_or_default();
    history.record(touch);
    save(&history);
    history
}

pub fn load() -> Option<TouchHistory> {
    let text = crate::browser::load(KEY)?;
    // A value that no longer parses is dropped rather than breaking the page.
    let value = js_sys::JSON::parse(&text).ok()?;
    Some(history_from_js(&value))
}

fn save(history: &TouchHistory) {
    if let Ok(text) = js_sys::JSON::stringify(&history_to_js(history)) {
        crate::browser::store(KEY, &String::from(text));
    }
}

pub fn forget() {
    crate::browser::forget(KEY);
}
