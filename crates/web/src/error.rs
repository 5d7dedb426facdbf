use std::fmt;

use ringsource_core::phone::PhoneError;
use wasm_bindgen::JsValue;

/// Everything the browser layer can refuse. Each message names the argument
/// so the front-end developer calling the API knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    Original { input: String, source: PhoneError },
    Replacement { input: String, source: PhoneError },
    Url { what: &'static str, input: String },
    Option { name: &'static str, reason: &'static str },
    NotAString { what: &'static str },
}

impl WebError {
    /// The message, put together by hand: `Display` through `format_args!`
    /// pulled core::fmt (its padding, integer and `write` machinery) into the
    /// bundle, measured at about 1 KB gzip.
    pub fn message(&self) -> String {
        let mut out = String::from("ringsource: ");
        let number = |out: &mut String, which: &str, input: &str, source: &PhoneError| {
            out.push_str(which);
            out.push_str(" number \"");
            out.push_str(input);
            out.push_str("\" is not a valid E.164 number: ");
            out.push_str(&source.message());
        };
        match self {
            WebError::Original { input, source } => number(&mut out, "original", input, source),
            WebError::Replacement { input, source } => number(&mut out, "replacement", input, source),
            WebError::Url { what, input } => {
                out.push_str(what);
                out.push_str(" \"");
                out.push_str(input);
                out.push_str("\" is not an absolute URL");
            }
            WebError::Option { name, reason } => {
                out.push_str("start() option `");
                out.push_str(name);
                out.push_str("` ");
                out.push_str(reason);
            }
            WebError::NotAString { what } => {
                out.push_str(what);
                out.push_str(" must hold only strings (E.164 numbers such as \"+74951234567\")");
            }
        }
        out
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> Self {
        js_sys::Error::new(&e.message()).into()
    }
}
