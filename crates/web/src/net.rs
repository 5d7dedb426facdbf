//! Talking to the collector. Requests are "simple" CORS requests (POST with a
//! text/plain body) so no preflight round trip delays the swap, and every
//! request has a deadline: a slow collector must not keep a page waiting.

use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, RequestInit, Response};

use crate::js::{ObjectBuilder, get, get_f64};

#[wasm_bindgen]
extern "C" {
    /// `AbortSignal.timeout()`: the deadline without an AbortController, a
    /// timer and a Rust closure for it to call (measured: -365 B gzip). Browsers
    /// older than Chrome 103, Firefox 100 and Safari 16 lack it and throw;
    /// their requests then run without a deadline, and the page keeps its
    /// own number until the answer comes.
    #[wasm_bindgen(catch, js_namespace = AbortSignal, js_name = timeout)]
    fn abort_after(milliseconds: u32) -> Result<AbortSignal, JsValue>;
}

/// Why a collector request gave no usable answer. The page then keeps (or
/// goes back to) the site's own number.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    Unreachable(String),
    /// `code` is the collector's error code (`origin_not_allowed`, …).
    Status {
        status: u16,
        code: String,
        message: String,
    },
    Malformed,
}

impl NetError {
    /// Put together by hand for the same reason as [`crate::WebError::message`].
    pub fn message(&self) -> String {
        let mut out = String::new();
        match self {
            NetError::Unreachable(why) => {
                out.push_str("the collector did not answer: ");
                out.push_str(why);
            }
            NetError::Status { status, message, .. } => {
                out.push_str("the collector answered ");
                // Always three digits: fetch() reports HTTP statuses 200..=599.
                for digit in [status / 100 % 10, status / 10 % 10, status % 10] {
                    out.push(char::from(b'0' + digit as u8));
                }
                out.push_str(": ");
                out.push_str(message);
            }
            NetError::Malformed => out.push_str("the collector's answer is not the expected JSON"),
        }
        out
    }
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// What a rejected fetch says: an Error's `message`, or the value itself
/// when it is a string. Read through `Reflect` rather than an `instanceof
/// Error` check, which would be one more import for the same answer.
fn js_message(value: &JsValue) -> String {
    crate::js::get_string(value, "message").or_else(|| value.as_string()).unwrap_or_else(|| "network error".to_owned())
}

/// What a collector request's continuation gets, and returns: the page's
/// outcome, or the promise of one (a `then` callback's result is adopted).
pub type Reply = Box<dyn FnOnce(Result<JsValue, NetError>) -> JsValue>;

#[wasm_bindgen]
extern "C" {
    /// A promise, seen through the one method this module calls on it.
    type Settling;

    /// `Promise.allSettled`: one promise that fulfils whether the given ones
    /// fulfil or reject, so a single callback sees both outcomes.
    #[wasm_bindgen(js_namespace = Promise, js_name = allSettled)]
    fn all_settled(promises: &js_sys::Array) -> Settling;

    #[wasm_bindgen(method)]
    fn then(this: &Settling, on_fulfilled: &JsValue) -> JsValue;
}

/// Runs `step` once `promise` settles, with its value or its rejection
/// reason, and returns the promise of what `step` returns.
///
/// The flow is written as continuations on the browser's own promises rather
/// than as `async` Rust: an async export and `JsFuture` bring js-sys's
/// executor (task queue, wakers, a promise per future and the closures
/// between them) into the bundle: measured 2.8 KB gzip.
pub fn after(promise: &JsValue, step: Box<dyn FnOnce(Result<JsValue, JsValue>) -> JsValue>) -> JsValue {
    let on_settled = Closure::once_into_js(move |settled: JsValue| {
        let outcome = crate::js::get(&settled, "0");
        if crate::js::get_string(&outcome, "status").as_deref() == Some("fulfilled") {
            step(Ok(crate::js::get(&outcome, "value")))
        } else {
            step(Err(crate::js::get(&outcome, "reason")))
        }
    });
    all_settled(&js_sys::Array::of1(promise)).then(&on_settled)
}

pub struct Collector {
    pub base: String,
    pub site: String,
    pub timeout_ms: u32,
}

impl Collector {
    fn url(&self, path: &str) -> String {
        let mut url = self.base.trim_end_matches('/').to_owned();
        url.push_str("/v1/sites/");
        url.push_str(&js_sys::encode_uri_component(&self.site).as_string().unwrap_or_default());
        url.push_str(path);
        url
    }

    /// POSTs `body` as JSON to the site's `path`; every request the page
    /// makes is one of these, and its answer comes in the same round trip.
    pub fn post(&self, path: &str, body: &JsValue, reply: Reply) -> JsValue {
        let Ok(body) = js_sys::JSON::stringify(body) else { return reply(Err(NetError::Malformed)) };
        let Some(window) = crate::browser::window() else {
            return reply(Err(NetError::Unreachable("no window".into())));
        };
        // A plain object (RequestInit is one) filled through Reflect, like
        // the JSON bodies: no setter import per field. keepalive lets a
        // heartbeat or page view finish while the page unloads. A string body
        // is sent as `text/plain;charset=UTF-8` by fetch itself, which keeps
        // the request simple: no header to set, so no preflight.
        let init = ObjectBuilder::new()
            .set_opt("signal", abort_after(self.timeout_ms).ok())
            .set("method", "POST")
            .set("keepalive", true)
            .set("body", body);
        let fetched = window.fetch_with_str_and_init(&self.url(path), init.build().unchecked_ref::<RequestInit>());
        after(
            &fetched,
            Box::new(move |response| {
                let response: Response = match response {
                    Ok(response) => response.unchecked_into(),
                    Err(e) => return reply(Err(NetError::Unreachable(js_message(&e)))),
                };
                let status = get_f64(&response, "status").unwrap_or_default() as u16;
                if status == 204 {
                    return reply(Ok(JsValue::NULL));
                }
                let ok = get(&response, "ok").as_bool() == Some(true);
                let Ok(json) = response.json() else { return reply(Err(NetError::Malformed)) };
                after(
                    &json,
                    Box::new(move |json| match json {
                        Ok(json) if ok => reply(Ok(json)),
                        Ok(json) => {
                            let error = crate::js::get(&json, "error");
                            let code = crate::js::get_string(&error, "code").unwrap_or_default();
                            let message = crate::js::get_string(&error, "message").unwrap_or_default();
                            reply(Err(NetError::Status { status, code, message }))
                        }
                        Err(_) => reply(Err(NetError::Malformed)),
                    }),
                )
            }),
        )
    }
}
