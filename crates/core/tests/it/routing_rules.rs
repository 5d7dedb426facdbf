//! Source rules → static number / pool / original.

use ringsource_core::channel::Channel;
use ringsource_core::routing::{Route, RoutingTable, RuleError, SourceRule};
use ringsource_core::touch::Touch;
use ringsource_core::visit::{ClickId, ClickIdKind};

fn touch(channel: Channel, source: &str, medium: &str) -> Touch {
    Touch {
        channel,
        source: source.into(),
        medium: medium.into(),
        campaign: None,
        term: None,
        content: None,
        utm_id: None,
        click_id: None,
        landing_path: "/".into(),
        referrer_host: None,
        at_ms: 0,
    }
}

fn rule(toml_like: &str) -> SourceRule {
    serde_json::from_str(toml_like).unwrap()
}

fn table() -> RoutingTable {
    RoutingTable {
        statics: vec![
            vec![rule(r#"{"utm_source":"instagram"}"#)],
            vec![rule(r#"{"channel":"Email"}"#)],
            // Offline-only number (billboard): no web rule.
            vec![],
        ],
        pools: vec![
            vec![rule(r#"{"channel":"Paid Search","utm_source":"yandex"}"#)],
            vec![rule(r#"{"channel":"Paid Search"}"#), rule(r#"{"click_id":"gclid"}"#)],
        ],
    }
}

#[test]
fn statics_win_over_pools_and_first_match_wins() {
    let t = table();
    assert_eq!(t.route(&touch(Channel::OrganicSocial, "Instagram", "social")), Route::Static(0));
    assert_eq!(t.route(&touch(Channel::Email, "newsletter", "email")), Route::Static(1));
    assert_eq!(t.route(&touch(Channel::PaidSearch, "yandex", "cpc")), Route::Pool(0));
    assert_eq!(t.route(&touch(Channel::PaidSearch, "google", "cpc")), Route::Pool(1));
}

#[test]
fn any_rule_of_a_pool_is_enough() {
    let mut t = touch(Channel::Referral, "example.com", "referral");
    t.click_id = Some(ClickId { kind: ClickIdKind::Gclid, value: "x".into() });
    assert_eq!(table().route(&t), Route::Pool(1));
}

#[test]
fn nothing_matching_keeps_the_original() {
    assert_eq!(table().route(&touch(Channel::Direct, "(direct)", "(none)")), Route::Original);
    assert_eq!(table().route(&touch(Channel::OrganicSearch, "google", "organic")), Route::Original);
}

#[test]
fn all_conditions_must_hold() {
    let r = rule(r#"{"utm_source":"google","utm_campaign":"spring"}"#);
    let mut t = touch(Channel::PaidSearch, "google", "cpc");
    assert!(!r.matches(&t));
    t.campaign = Some("SPRING".into());
    assert!(r.matches(&t));
}

#[test]
fn rule_validation() {
    assert_eq!(SourceRule::default().validate(), Err(RuleError::Empty));
    assert_eq!(rule(r#"{"utm_source":" "}"#).validate(), Err(RuleError::EmptyValue { field: "utm_source" }));
    assert!(rule(r#"{"channel":"organic search"}"#).validate().is_ok());
    assert!(serde_json::from_str::<SourceRule>(r#"{"utm_sorce":"x"}"#).is_err());
}

#[cfg(feature = "bots")]
#[test]
fn known_crawlers_are_recognised_and_browsers_are_not() {
    use ringsource_core::bots::is_bot;
    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1",
        "Some-Crawler/1.0",
        "",
        // Headless browsers and HTTP clients, as their default User-Agents read.
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Go-http-client/2.0",
        "Wget/1.21.4",
    ] {
        assert!(is_bot(ua), "{ua:?} should be a bot");
    }
    for ua in [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
    ] {
        assert!(!is_bot(ua), "{ua:?} is a browser");
    }
}
