//! The browser layer: only marshalling between the DOM and `ringsource-core`.
//! Errors are typed inside and become JS exceptions only at this edge.

mod browser;
mod error;
mod js;
mod net;
mod session;
mod start;
mod swap;
mod touches;
mod types;
mod visit;
mod watch;

use std::rc::Rc;

use ringsource_core::phone::PhoneNumber;
use wasm_bindgen::prelude::*;
use web_sys::Node;

pub use error::WebError;
pub use types::TYPES;

// Declared here, beside the exports that use these types: a custom section
// in a codegen unit that no export reaches can be dropped by the linker.
#[wasm_bindgen(typescript_custom_section)]
const _: &str = TYPES;

// talc instead of std's dlmalloc: same job, measured 1.6 KB gzip smaller.
// Its smallest configuration: new memory becomes a new heap instead of
// extending the last one, and free chunks are binned by powers of two.
// Measured -149 B gzip against `new_wasm_dynamic_allocator()`, and no slower
// in `cargo xtask bench web` (0.754 of the JS reference, 0.756 before).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::cell::TalcSyncCell<talc::wasm::WasmGrowAndClaim, PowerOfTwoBins> =
    talc::cell::TalcSyncCell::new_wasm(talc::wasm::WasmGrowAndClaim);

/// Free chunks of `CHUNK_UNIT << n` up to twice that size share bin `n`;
/// smaller sizes are below every bin (`u32::MAX`), as talc requires.
// Native builds other than the tests have no global allocator to give it to.
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
struct PowerOfTwoBins;

impl talc::base::binning::Binning for PowerOfTwoBins {
    type AvailabilityBitField = u32;

    fn size_to_bin(size: usize) -> u32 {
        (size / talc::base::CHUNK_UNIT).checked_ilog2().unwrap_or(u32::MAX)
    }
}

use swap::Swap;

/// `originals` arrives as JS values: wasm-bindgen's `Vec<String>` conversion
/// (a checked, fallible collect) cost more wasm than reading each value here.
fn parse_swap(originals: &[JsValue], replacement: &str) -> Result<Swap, WebError> {
    let mut parsed = Vec::with_capacity(originals.len());
    for original in originals {
        let input = original.as_string().ok_or(WebError::NotAString { what: "originals" })?;
        match PhoneNumber::parse(&input) {
            Ok(number) => parsed.push(number),
            Err(source) => return Err(WebError::Original { input, source }),
        }
    }
    let replacement = PhoneNumber::parse(replacement)
        .map_err(|source| WebError::Replacement { input: replacement.to_owned(), source })?;
    Ok(Swap::new(&parsed, replacement))
}

/// Rewrites every occurrence of `originals` under `root` to `replacement`,
/// keeping each occurrence's format, and returns how many were replaced.
#[wasm_bindgen(js_name = replaceNumbers)]
pub fn replace_numbers(
    root: &Node,
    #[wasm_bindgen(unchecked_param_type = "string[]")] originals: Vec<JsValue>,
    replacement: &str,
) -> Result<u32, JsValue> {
    let swap = parse_swap(&originals, replacement)?;
    Ok(swap.apply(root) as u32)
}

/// Classifies a visit from its page URL and referrer into a touch
/// (channel, source, medium, campaign, term, content, click id).
///
/// @throws {Error} when `pageUrl` is not an absolute URL.
#[wasm_bindgen(unchecked_return_type = "Touch")]
pub fn classify(page_url: &str, referrer: &str) -> Result<JsValue, JsValue> {
    let visit = visit::read(page_url, referrer, "")?;
    let touch = ringsource_core::touch::classify(&visit, js_sys::Date::now() as u64);
    Ok(js::touch_to_js(&touch))
}

/// Swaps `root` now and keeps swapping content added under it later;
/// returns the function that stops it.
// A function rather than a handle object: the watching must not depend on
// the caller keeping the handle (wasm-bindgen frees a class instance that JS
// garbage-collects, which would end the watching at a random moment), and a
// class with its finalizer cost the bundle 599 B gzip.
#[wasm_bindgen(js_name = watchNumbers, unchecked_return_type = "() => void")]
pub fn watch_numbers(
    root: &Node,
    #[wasm_bindgen(unchecked_param_type = "string[]")] originals: Vec<JsValue>,
    replacement: &str,
) -> Result<js_sys::Function, JsValue> {
    let swap = Rc::new(parse_swap(&originals, replacement)?);
    swap.apply(root);
    let observer = watch::observe(root, swap)?;
    Ok(js::get(&observer, "disconnect").unchecked_into::<js_sys::Function>().bind0(&observer))
}

/// The stored `{ first, last }` touch history, or `null` when none is stored.
#[wasm_bindgen(js_name = storedTouches, unchecked_return_type = "TouchHistory | null")]
pub fn stored_touches() -> JsValue {
    touches::load().map_or(JsValue::NULL, |history| history.to_js())
}

/// The full flow against a collector: `start({ site, collector, consent?, timeoutMs? })`.
/// Resolves to what the page shows (`{ kind, number?, session_id?, reason?, overflow? }`);
/// it rejects only for bad options, never because the collector is down.
#[wasm_bindgen(unchecked_return_type = "Promise<Outcome>")]
pub fn start(#[wasm_bindgen(unchecked_param_type = "StartOptions")] options: JsValue) -> js_sys::Promise {
    match start::start(options) {
        Ok(outcome) => settled(&outcome),
        Err(error) => rejected(&error),
    }
}

#[wasm_bindgen]
extern "C" {
    // `Promise.resolve` adopts a promise and wraps any other value, so
    // start() always returns a promise, as the `async fn` it was did.
    #[wasm_bindgen(js_namespace = Promise, js_name = resolve)]
    fn settled(value: &JsValue) -> js_sys::Promise;

    #[wasm_bindgen(js_namespace = Promise, js_name = reject)]
    fn rejected(reason: &JsValue) -> js_sys::Promise;
}

/// Consent given (e.g. from the site's cookie banner): continues a `start()`
/// that was waiting for it.
#[wasm_bindgen(js_name = grantConsent)]
pub fn grant_consent() {
    start::grant_consent();
}

/// A page view of a single-page app, after a route change: records `url`
/// (pass `location.href`) and `title` on the visitor's session. Resolves to
/// `true` once the collector recorded it, and to `false` before start() has
/// a session (or without consent) or when the collector did not record it.
/// Never rejects.
#[wasm_bindgen(js_name = pageView, unchecked_return_type = "Promise<boolean>")]
pub fn page_view(
    #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string | undefined")] title: JsValue,
) -> js_sys::Promise {
    settled(&start::page_view(url, title))
}

/// Consent withdrawn: forgets stored touches and session, restores the site's number.
#[wasm_bindgen(js_name = revokeConsent)]
pub fn revoke_consent() {
    start::revoke_consent();
}

#[cfg(test)]
mod tests {
    use talc::base::CHUNK_UNIT;
    use talc::base::binning::Binning;
    use wasm_bindgen_test::*;

    use super::PowerOfTwoBins;

    wasm_bindgen_test_configure!(run_in_browser);

    /// talc's contract for a binning: no bin below one chunk, bins never
    /// shrink as sizes grow, and a ceiling bin whose chunks all fit.
    #[wasm_bindgen_test]
    fn power_of_two_bins_keep_talcs_contract() {
        assert_eq!(PowerOfTwoBins::size_to_bin(CHUNK_UNIT - 1), u32::MAX);
        assert_eq!(PowerOfTwoBins::size_to_bin(CHUNK_UNIT), 0);
        assert_eq!(PowerOfTwoBins::size_to_bin(2 * CHUNK_UNIT - 1), 0);
        assert_eq!(PowerOfTwoBins::size_to_bin(2 * CHUNK_UNIT), 1);
        let mut previous = 0;
        for size in (CHUNK_UNIT..1 << 20).step_by(CHUNK_UNIT) {
            let bin = PowerOfTwoBins::size_to_bin(size);
            assert!(bin >= previous && bin < u32::BITS, "size {size}: bin {bin} after {previous}");
            previous = bin;
            // Every chunk in the ceiling bin is at least `size` long.
            let ceil = PowerOfTwoBins::size_to_bin_ceil(size);
            assert!(CHUNK_UNIT << ceil >= size, "size {size}: ceiling bin {ceil}");
        }
    }
}
