//! A visit that sends its raw referrer is classified again by the collector
//! with the full source table: the touch it decides is routed, stored and
//! answered, on both backends.

use serde_json::{Value, json};

use crate::common::{self, Backend, Harness, POOL, start_on, touch};

fn body(touch: Value, page_url: &str, referrer: Option<&str>) -> Value {
    let mut body = json!({ "touch": touch, "page": { "url": page_url, "title": "Shop" } });
    if let Some(referrer) = referrer {
        body["referrer"] = json!(referrer);
    }
    body
}

/// A stored touch: channel, source, medium, campaign, term.
type StoredTouch = (String, String, String, Option<String>, Option<String>);

fn stored_touches(h: &Harness, session_id: &str) -> Vec<StoredTouch> {
    // Session ids are the collector's own ([A-Za-z0-9_-]), safe to quote.
    assert!(session_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{session_id}");
    h.rows(&format!(
        "SELECT channel, source, medium, campaign, term FROM touches WHERE session_id = '{session_id}' ORDER BY id"
    ))
    .into_iter()
    .map(|r| {
        let text = |i: usize| r[i].clone().unwrap_or_else(|| panic!("touches column {i} is NULL: {r:?}"));
        (text(0), text(1), text(2), r[3].clone(), r[4].clone())
    })
    .collect()
}

crate::on_both_backends! {
    the_collector_decides_the_touch_from_the_raw_referrer => the_collector_decides_the_touch_from_the_raw_referrer_on;
    a_reclassified_paid_visit_is_routed_to_the_pool => a_reclassified_paid_visit_is_routed_to_the_pool_on;
    a_direct_page_view_keeps_the_remembered_campaign => a_direct_page_view_keeps_the_remembered_campaign_on;
    a_referrer_that_is_not_a_url_is_none_and_a_bad_page_url_is_refused
        => a_referrer_that_is_not_a_url_is_none_and_a_bad_page_url_is_refused_on;
    without_a_referrer_field_the_browser_touch_stands => without_a_referrer_field_the_browser_touch_stands_on;
}

fn the_collector_decides_the_touch_from_the_raw_referrer_on(backend: Backend) {
    let Some(h) = start_on(backend, "the_collector_decides_the_touch_from_the_raw_referrer", "", "", "") else {
        return;
    };
    // The browser's compact table did not know the AI assistant: it sent a referral.
    let browser = touch("Referral", "chat.mistral.ai", "referral");
    let (status, answer) = h.post(
        "/v1/sites/shop/visits",
        &body(browser, "https://shop.example/sofas/", Some("https://chat.mistral.ai/chat/1")),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["touch"]["channel"], "AI Assistants", "{answer}");
    assert_eq!(answer["touch"]["source"], "le-chat");
    assert_eq!(answer["touch"]["landing_path"], "/sofas/");
    let session = answer["session_id"].as_str().unwrap();
    let stored = stored_touches(&h, session);
    assert_eq!(stored.last().map(|t| (t.0.as_str(), t.1.as_str())), Some(("AI Assistants", "le-chat")), "{stored:?}");
}

fn a_reclassified_paid_visit_is_routed_to_the_pool_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_reclassified_paid_visit_is_routed_to_the_pool", "", "", "") else { return };
    // `_openstat` is read only by the collector's full classification.
    let page = "https://shop.example/?_openstat=ZGlyZWN0LnlhbmRleC5ydTsxMjM0OzU2Nzg5O3lhbmRleC5ydTpwcmVtaXVt";
    let browser = touch("Organic Search", "yandex", "organic");
    let (status, answer) = h.post("/v1/sites/shop/visits", &body(browser, page, Some("https://yandex.ru/")));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["touch"]["channel"], "Paid Search");
    assert_eq!(answer["touch"]["source"], "yandex");
    assert_eq!(answer["touch"]["campaign"], "1234");
    assert_eq!(answer["touch"]["content"], "56789");
    assert_eq!(answer["kind"], "lease", "the site's pool takes Paid Search: {answer}");
    assert!(POOL.contains(&answer["number"].as_str().unwrap()), "{answer}");
    let stored = stored_touches(&h, answer["session_id"].as_str().unwrap());
    assert_eq!(stored.last().map(|t| t.3.as_deref()), Some(Some("1234")), "{stored:?}");
}

fn a_direct_page_view_keeps_the_remembered_campaign_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_direct_page_view_keeps_the_remembered_campaign", "", "", "") else { return };
    let (status, answer) = h.post("/v1/sites/shop/visits", &body(common::paid(), "https://shop.example/", Some("")));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["touch"]["channel"], "Paid Search");
    assert_eq!(answer["touch"]["source"], "google");
}

fn a_referrer_that_is_not_a_url_is_none_and_a_bad_page_url_is_refused_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_referrer_that_is_not_a_url_is_none_and_a_bad_page_url_is_refused", "", "", "")
    else {
        return;
    };
    let direct = touch("Direct", "(direct)", "(none)");
    let (status, answer) =
        h.post("/v1/sites/shop/visits", &body(direct.clone(), "https://shop.example/", Some("not a url at all")));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["touch"]["channel"], "Direct");

    let (status, answer) = h.post("/v1/sites/shop/visits", &body(direct, "shop.example/no-scheme", Some("")));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "bad_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains("page.url"), "{answer}");
}

fn without_a_referrer_field_the_browser_touch_stands_on(backend: Backend) {
    let Some(h) = start_on(backend, "without_a_referrer_field_the_browser_touch_stands", "", "", "") else { return };
    let answer = h.visit(None, touch("Referral", "chat.mistral.ai", "referral"));
    assert!(answer.get("touch").is_none(), "{answer}");
    let stored = stored_touches(&h, answer["session_id"].as_str().unwrap());
    assert_eq!(stored.last().map(|t| t.0.as_str()), Some("Referral"));
}
