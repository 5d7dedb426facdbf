use ringsource_core::phone::PhoneError;
use wasm_bindgen::JsValue;

/// Everything the browser layer can refuse. Each message names the argument
/// so the front-end developer calling the API knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("ringsource: original number \"{input}\" is not a valid E.164 number: {source}")]
    Original { input: String, source: PhoneError },
    #[error("ringsource: replacement number \"{input}\" is not a valid E.164 number: {source}")]
    Replacement { input: String, source: PhoneError },
    #[error("ringsource: {what} \"{input}\" is not an absolute URL")]
    Url { what: &'static str, input: String },
    #[error("ringsource: start() option `{name}` {reason}")]
    Option { name: &'static str, reason: &'static str },
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> Self {
        js_sys::Error::new(&e.to_string()).into()
    }
}
