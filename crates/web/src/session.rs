//! The visitor's session with the collector, kept in localStorage so that a
//! returning visitor sees their number at once, before any network call.

use ringsource_core::phone::PhoneNumber;
use wasm_bindgen::JsValue;

use crate::js::{ObjectBuilder, get, get_f64, get_string, numbers};

/// What the page showed last time, and until when it may show it again.
#[derive(Clone, Debug)]
pub struct Session {
    pub session_id: String,
    /// The number shown; `None` when the site's own number stays.
    pub number: Option<PhoneNumber>,
    /// When the lease lapses; `None` for a static or overflow number, which
    /// never lapses on its own.
    pub expires_at_ms: Option<f64>,
    /// The site's own numbers, so the stored number can be swapped in before
    /// the site config arrives.
    pub originals: Vec<PhoneNumber>,
}

fn key(site: &str) -> String {
    let mut key = "ringsource.session.".to_owned();
    key.push_str(site);
    key
}

impl Session {
    /// A number that can be shown right now without asking the collector.
    pub fn showable_at(&self, now_ms: f64) -> Option<&PhoneNumber> {
        let live = self.expires_at_ms.is_none_or(|expiry| expiry > now_ms);
        self.number.as_ref().filter(|_| live)
    }

    pub fn load(site: &str) -> Option<Session> {
        let text = crate::browser::load(&key(site))?;
        let value = js_sys::JSON::parse(&text).ok()?;
        let originals = numbers(&get(&value, "originals"));
        Some(Session {
            session_id: get_string(&value, "session_id")?,
            number: get_string(&value, "number").and_then(|n| PhoneNumber::parse(&n).ok()),
            expires_at_ms: get_f64(&value, "expires_at_ms"),
            originals,
        })
    }

    pub fn save(&self, site: &str) {
        let originals: js_sys::Array = self.originals.iter().map(|o| JsValue::from_str(&o.e164())).collect();
        let value = ObjectBuilder::new()
            .set("session_id", self.session_id.as_str())
            .set_opt("number", self.number.as_ref().map(PhoneNumber::e164))
            .set_opt("expires_at_ms", self.expires_at_ms)
            .set("originals", originals)
            .build();
        if let Ok(text) = js_sys::JSON::stringify(&value) {
            crate::browser::store(&key(site), &text);
        }
    }

    pub fn forget(site: &str) {
        crate::browser::forget(&key(site));
    }
}
