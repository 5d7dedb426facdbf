//! The visitor's first and last touch, kept in localStorage so a visitor who
//! clicked an ad yesterday and comes back directly today is still credited.
//!
//! The touches stay the JS objects they travel as: the one `touch_to_js`
//! made of this page view, the collector's answer, the stored ones. Turning
//! each back into a Rust `Touch` only to record it and write it out again
//! cost the bundle more than the rest of the history (see docs/performance.md,
//! "Bundle size"). What is read from storage is still checked field by
//! field, so that a corrupted or foreign value is dropped rather than sent.
//! The recording rule is core's [`TouchHistory::record`]; a test below
//! holds this copy of it to core's, in Chromium.
//!
//! [`TouchHistory::record`]: ringsource_core::touch::TouchHistory::record

use ringsource_core::channel::Channel;
use ringsource_core::visit::ClickIdKind;
use wasm_bindgen::JsValue;

use crate::js::{ObjectBuilder, get, get_string};

const KEY: &str = "ringsource.touches";

/// A first and a last touch, each a touch object or `null`.
pub struct History {
    pub first: JsValue,
    pub last: JsValue,
    /// Both are this page view's touch, which is then sent once.
    pub first_is_last: bool,
}

impl History {
    pub fn to_js(&self) -> JsValue {
        ObjectBuilder::new().set("first", self.first.clone()).set("last", self.last.clone()).build()
    }
}

/// The stored history with `touch` recorded into it, not stored yet: until
/// the collector says whether the site needs consent, nothing is written.
/// Storage may be missing or full (private mode, quotas, disabled cookies):
/// then the history lives for this page view only, which still attributes it.
///
/// As core records it: the first touch is the first ever; a direct touch
/// does not replace a last touch that is not direct.
pub fn with(touch: JsValue) -> History {
    let (first, last) = load().map_or((JsValue::NULL, JsValue::NULL), |history| (history.first, history.last));
    let first_is_new = !first.is_object();
    let first = if first_is_new { touch.clone() } else { first };
    let keeps_last = last.is_object() && is_direct(&touch) && !is_direct(&last);
    History { first, last: if keeps_last { last } else { touch }, first_is_last: first_is_new && !keeps_last }
}

fn is_direct(touch: &JsValue) -> bool {
    get_string(touch, "channel").as_deref() == Some(Channel::Direct.as_str())
}

/// The stored history; a stored touch that is not one reads as `null`.
pub fn load() -> Option<History> {
    let text = crate::browser::load(KEY)?;
    // A value that no longer parses is dropped rather than breaking the page.
    let value = js_sys::JSON::parse(&text).ok()?;
    let checked = |key| Some(get(&value, key)).filter(is_touch).unwrap_or(JsValue::NULL);
    Some(History { first: checked("first"), last: checked("last"), first_is_last: false })
}

/// Whether `value` is a touch as `touch_to_js` writes it and the collector
/// answers it: the fields the collector requires, each of its type, and the
/// optional ones absent, `null` or strings. The collector refuses a visit
/// whose touches are not, so a stored value that is not one must not be sent.
fn is_touch(value: &JsValue) -> bool {
    let text = |key| get(value, key).is_string();
    let optional = |key: &&str| {
        let field = get(value, key);
        field.is_string() || field.is_null_or_undefined()
    };
    let click_id = get(value, "click_id");
    let click_id_ok = click_id.is_null_or_undefined()
        || (get_string(&click_id, "kind").is_some_and(|kind| ClickIdKind::from_name(&kind).is_some())
            && get(&click_id, "value").is_string());
    value.is_object()
        && get_string(value, "channel").is_some_and(|name| Channel::from_name(&name).is_some())
        && text("source")
        && text("medium")
        && text("landing_path")
        && get(value, "at_ms").as_f64().is_some()
        && ["campaign", "term", "content", "utm_id", "referrer_host"].iter().all(optional)
        && click_id_ok
}

pub fn save(history: &History) {
    if let Ok(text) = js_sys::JSON::stringify(&history.to_js()) {
        crate::browser::store(KEY, &text);
    }
}

pub fn forget() {
    crate::browser::forget(KEY);
}

#[cfg(test)]
mod tests {
    use ringsource_core::touch::{Touch, TouchHistory, classify};
    use ringsource_core::visit::{UrlParts, Visit};
    use wasm_bindgen::JsValue;
    use wasm_bindgen_test::*;

    use super::{History, KEY, load, with};
    use crate::js::{get_string, touch_to_js};

    wasm_bindgen_test_configure!(run_in_browser);

    fn touch(query: &str, at_ms: u64) -> Touch {
        let page = UrlParts { host: "shop.example", path: "/", query };
        classify(&Visit::new(page, None, ""), at_ms)
    }

    fn sources(first: &JsValue, last: &JsValue) -> (Option<String>, Option<String>) {
        (get_string(first, "source"), get_string(last, "source"))
    }

    /// Every stored history a visitor can have, and a direct or a campaign
    /// touch after it: recorded here as core records it.
    #[wasm_bindgen_test]
    fn the_js_history_records_as_core_does() {
        let direct = || touch("", 3);
        let campaign = |n: u64| touch(&format!("utm_source=c{n}&utm_medium=cpc"), n);
        let stored = [
            None,
            Some(TouchHistory { first: Some(direct()), last: Some(direct()) }),
            Some(TouchHistory { first: Some(campaign(1)), last: Some(campaign(1)) }),
            Some(TouchHistory { first: Some(campaign(1)), last: Some(campaign(2)) }),
            Some(TouchHistory { first: Some(direct()), last: Some(campaign(2)) }),
        ];
        for before in stored {
            for new in [direct(), campaign(4)] {
                match &before {
                    Some(h) => {
                        let js = |t: &Option<Touch>| t.as_ref().map_or(JsValue::NULL, touch_to_js);
                        super::save(&History { first: js(&h.first), last: js(&h.last), first_is_last: false });
                    }
                    None => super::forget(),
                }
                let mut expected = before.clone().unwrap_or_default();
                expected.record(new.clone());
                let got = with(touch_to_js(&new));
                let name = |t: &Option<Touch>| t.as_ref().map(|t| t.source.clone());
                assert_eq!(
                    sources(&got.first, &got.last),
                    (name(&expected.first), name(&expected.last)),
                    "{before:?} then {}",
                    new.source
                );
                // Only a first visit's touch is both: then it is sent once.
                assert_eq!(got.first_is_last, before.is_none());
            }
        }
        super::forget();
    }

    #[wasm_bindgen_test]
    fn what_is_not_a_touch_is_not_loaded() {
        let good = touch_to_js(&touch("utm_source=a&utm_medium=cpc&gclid=x", 1));
        let good = js_sys::JSON::stringify(&good).unwrap().as_string().unwrap();
        for bad in [
            r#""text""#,
            r#"{"channel":"organic search","source":"a","medium":"b","landing_path":"/","at_ms":1}"#,
            r#"{"channel":"Direct","source":"a","medium":"b","landing_path":"/","at_ms":"1"}"#,
            r#"{"channel":"Direct","source":"a","medium":"b","at_ms":1}"#,
            r#"{"channel":"Direct","source":"a","medium":"b","landing_path":"/","at_ms":1,"term":5}"#,
            r#"{"channel":"Direct","source":"a","medium":"b","landing_path":"/","at_ms":1,"click_id":{"kind":"x","value":"y"}}"#,
        ] {
            crate::browser::store(KEY, &JsValue::from_str(&format!(r#"{{"first":{good},"last":{bad}}}"#)));
            let history = load().expect("stored");
            assert_eq!(get_string(&history.first, "source").as_deref(), Some("a"), "{bad}");
            assert!(history.last.is_null(), "{bad}");
        }
        // The collector's nulls for absent fields are a touch.
        let nulls = r#"{"channel":"Direct","source":"(direct)","medium":"(none)","landing_path":"/","at_ms":1,"term":null,"click_id":null}"#;
        crate::browser::store(KEY, &JsValue::from_str(&format!(r#"{{"first":{nulls},"last":null}}"#)));
        assert!(!load().expect("stored").first.is_null());
        super::forget();
    }
}
