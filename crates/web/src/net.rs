//! Talking to the collector. Requests are "simple" CORS requests (POST with a
//! text/plain body) so no preflight round trip delays the swap, and every
//! request has a deadline: a slow collector must not keep a page waiting.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, RequestInit, Response};

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
    Status { status: u16, message: String },
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
            NetError::Status { status, message } => {
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
    crate::js::get_string(value, "message")
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "network error".to_owned())
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

    pub async fn get(&self, path: &str) -> Result<JsValue, NetError> {
        self.send(path, None).await
    }

    pub async fn post(&self, path: &str, body: &JsValue) -> Result<JsValue, NetError> {
        let text = js_sys::JSON::stringify(body).map_err(|_| NetError::Malformed)?;
        self.send(path, Some(String::from(text))).await
    }

    async fn send(&self, path: &str, body: Option<String>) -> Result<JsValue, NetError> {
        let window = crate::browser::window().ok_or_else(|| NetError::Unreachable("no window".into()))?;
        let init = RequestInit::new();
        if let Ok(deadline) = abort_after(self.timeout_ms) {
            init.set_signal(Some(&deadline));
        }
        if let Some(body) = body {
            init.set_method("POST");
            // keepalive lets a heartbeat or page view finish while the page unloads.
            // (web-sys has `keepalive` only behind its unstable-API flag.)
            let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE);
            // A string body is sent as `text/plain;charset=UTF-8` by fetch
            // itself, which keeps the request simple: no header to set.
            init.set_body(&JsValue::from_str(&body));
        }
        let url = self.url(path);
        let response: Response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
            .await
            .map_err(|e| NetError::Unreachable(js_message(&e)))?
            .unchecked_into();
        let status = response.status();
        if status == 204 {
            return Ok(JsValue::NULL);
        }
        let json = match response.json() {
            Ok(p) => JsFuture::from(p).await.map_err(|_| NetError::Malformed)?,
            Err(_) => return Err(NetError::Malformed),
        };
        if response.ok() {
            Ok(json)
        } else {
            let message = crate::js::get_string(&crate::js::get(&json, "error"), "message")
                .unwrap_or_default();
            Err(NetError::Status { status, message })
        }
    }
}
