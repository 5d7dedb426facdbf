//! Marshalling core types to and from plain JS objects.
//!
//! Written by hand rather than through serde: every serde path measured here
//! pulled a deserializer, float formatting and error machinery into the
//! bundle (serde_json about 45 KB raw, serde-wasm-bindgen about 30 KB), and
//! this bundle is downloaded on every page view. The field names are the
//! same as the collector's serde names, so the JSON on the wire is the one
//! `ringsource_core::wire` documents; the collector's tests parse it with serde.

use js_sys::{Object, Reflect};
use ringsource_core::phone::PhoneNumber;
use ringsource_core::touch::Touch;
use wasm_bindgen::JsValue;

/// Builds a JS object; `None` values are left out, as serde's
/// `skip_serializing_if` does on the collector side.
#[derive(Default)]
pub struct ObjectBuilder {
    object: Object,
}

impl ObjectBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(self, key: &str, value: impl Into<JsValue>) -> Self {
        let _ = Reflect::set(&self.object, &JsValue::from_str(key), &value.into());
        self
    }

    pub fn set_opt(self, key: &str, value: Option<impl Into<JsValue>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    pub fn build(self) -> JsValue {
        self.object.into()
    }
}

pub fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn get_string(object: &JsValue, key: &str) -> Option<String> {
    get(object, key).as_string()
}

pub fn get_f64(object: &JsValue, key: &str) -> Option<f64> {
    get(object, key).as_f64()
}

/// The phone numbers of a JS array that parse; anything else in it, or a
/// value that is not an array, is left out. One function for the site
/// config's and the stored session's lists: two closures made two copies.
pub fn numbers(list: &JsValue) -> Vec<PhoneNumber> {
    js_sys::Array::from(list).iter().filter_map(|o| o.as_string().and_then(|o| PhoneNumber::parse(&o).ok())).collect()
}

pub fn touch_to_js(touch: &Touch) -> JsValue {
    let click_id = touch
        .click_id
        .as_ref()
        .map(|c| ObjectBuilder::new().set("kind", c.kind.param()).set("value", c.value.as_str()).build());
    ObjectBuilder::new()
        .set("channel", touch.channel.as_str())
        .set("source", touch.source.as_str())
        .set("medium", touch.medium.as_str())
        .set_opt("campaign", touch.campaign.as_deref())
        .set_opt("term", touch.term.as_deref())
        .set_opt("content", touch.content.as_deref())
        .set_opt("utm_id", touch.utm_id.as_deref())
        .set_opt("click_id", click_id)
        .set("landing_path", touch.landing_path.as_str())
        .set_opt("referrer_host", touch.referrer_host.as_deref())
        .set("at_ms", touch.at_ms as f64)
        .build()
}
