//! Classification never panics, whatever the referrer and page URL say.

use proptest::prelude::*;
use ringsource_core::touch::classify;
use ringsource_core::visit::{UrlParts, Visit};

/// Hosts, paths and queries near the ones the tables know, and noise.
fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.\\-=*:\\[\\]]{0,40}",
        "(www\\.|m\\.|mail\\.|maps\\.)?(google|yandex|vk|t|mail|chatgpt)\\.(com|ru|kz|co\\.uk|\\*)?(:[0-9]{1,5})?",
        "(/maps|/i/grok|/aclk|/search|/)?[^?#]{0,20}",
        "((q|text|_openstat|utm_source|utm_medium|gclid|yclid)=[^&]{0,30}&?){0,4}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?|android-app|about|data)://[^ ]{0,60}",
        ("(https?)://", part(), part(), part()).prop_map(|(s, h, p, q)| format!("{s}{h}/{p}?{q}")),
    ]
}

fn split(url: &str) -> Option<(String, String, String)> {
    let url = url::Url::parse(url).ok()?;
    Some((
        url.host_str().unwrap_or_default().to_owned(),
        url.path().to_owned(),
        url.query().unwrap_or_default().to_owned(),
    ))
}

proptest! {
    /// Raw parts, as a platform's parser might hand them over.
    #[test]
    fn classifying_any_parts_never_panics(
        page in (part(), part(), part()),
        referrer in proptest::option::of((part(), part(), part())),
        cookies in any::<String>(),
    ) {
        let page_parts = UrlParts { host: &page.0, path: &page.1, query: &page.2 };
        let referrer_parts = referrer.as_ref().map(|(h, p, q)| UrlParts { host: h, path: p, query: q });
        let touch = classify(&Visit::new(page_parts, referrer_parts, &cookies), 0);
        prop_assert!(!touch.source.is_empty());
    }

    /// Whole strings: what is not a URL is no referrer, as the browser and the
    /// collector read it.
    #[test]
    fn classifying_any_urls_never_panics(page in url(), referrer in url()) {
        let Some(page) = split(&page) else { return Ok(()) };
        let referrer = split(&referrer);
        let page_parts = UrlParts { host: &page.0, path: &page.1, query: &page.2 };
        let referrer_parts = referrer.as_ref().map(|(h, p, q)| UrlParts { host: h, path: p, query: q });
        let touch = classify(&Visit::new(page_parts, referrer_parts, ""), 0);
        prop_assert!(!touch.source.is_empty());
    }
}
