//! The page's `window`, `document` and `localStorage`, reached directly.
//!
//! `web_sys::window()` looks for the global object four ways (globalThis,
//! self, window, global) and checks it with `instanceof Window`, and
//! gloo-storage's `LocalStorage::raw()` throws when storage is blocked
//! (private modes, disabled cookies) instead of letting the page go on
//! without it. One static import and an `Option` do the job in less.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Storage, Window};

#[wasm_bindgen]
extern "C" {
    // An `Option` static: the glue reads `typeof window === 'undefined' ? undefined : window`.
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<Window>;

    /// localStorage seen through `getItem` answering a JS value: web-sys's
    /// `Option<String>` version has the glue copy the string into wasm
    /// memory with code of its own, which `JsValue::as_string` already has.
    type Items;

    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item(items: &Items, key: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item(items: &Items, key: &str, value: &JsValue) -> Result<(), JsValue>;
}

pub fn window() -> Option<Window> {
    WINDOW.with(Clone::clone)
}

pub fn document() -> Option<Document> {
    window()?.document()
}

/// localStorage, when the page may use it. Reading the property throws where
/// storage is blocked; then nothing is stored, and the flow still runs for
/// this page view.
fn storage() -> Option<Storage> {
    window()?.local_storage().ok().flatten()
}

pub fn load(key: &str) -> Option<String> {
    storage()?.unchecked_ref::<Items>().get_item(key).ok()?.as_string()
}

/// A full or blocked storage drops the value: see [`storage`]. The value is
/// a JS string (JSON.stringify's answer, mostly), which goes back to the
/// browser as it came rather than through a Rust `String`.
pub fn store(key: &str, value: &JsValue) {
    if let Some(storage) = storage() {
        let _ = storage.unchecked_ref::<Items>().set_item(key, value);
    }
}

pub fn forget(key: &str) {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(key);
    }
}
