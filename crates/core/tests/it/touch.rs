use ringsource_core::channel::Channel;
use ringsource_core::touch::{Touch, classify};
use ringsource_core::visit::{ClickId, ClickIdKind, UrlParts, Visit};

const AT: u64 = 1_700_000_000_000;

fn touch(path_and_query: &str, referrer: &str) -> Touch {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let page = UrlParts { host: "www.divan-shop.ru", path, query };
    let referrer = split(referrer);
    classify(&Visit::new(page, referrer, ""), AT)
}

/// Splits "host/path?query" the way the platform's URL parser would.
fn split(url: &str) -> Option<UrlParts<'_>> {
    if url.is_empty() {
        return None;
    }
    let (rest, query) = url.split_once('?').unwrap_or((url, ""));
    let (host, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    Some(UrlParts { host, path, query })
}

#[test]
fn google_ads_with_gclid_and_keyword() {
    let t = touch("/sofas/?gclid=EAIaIQobChMI8&utm_term=corner+sofa", "www.google.com/");
    assert_eq!(t.channel, Channel::PaidSearch);
    assert_eq!(t.source, "google");
    assert_eq!(t.medium, "cpc");
    assert_eq!(t.term.as_deref(), Some("corner sofa"));
    assert_eq!(t.click_id, Some(ClickId { kind: ClickIdKind::Gclid, value: "EAIaIQobChMI8".into() }));
    assert_eq!(t.landing_path, "/sofas/");
    assert_eq!(t.referrer_host.as_deref(), Some("google.com"));
    assert_eq!(t.at_ms, AT);
}

#[test]
fn google_ads_click_without_referrer() {
    let t = touch("/?gclid=EAIaIQ", "");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::PaidSearch, "google", "cpc"));
}

#[test]
fn yandex_direct() {
    let t = touch(
        "/sofas/?utm_source=yandex&utm_medium=cpc&utm_campaign=112233445&utm_content=16789012345\
         &utm_term=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C+%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD&yclid=5823765478263549951",
        "yandex.ru/",
    );
    assert_eq!(t.channel, Channel::PaidSearch);
    assert_eq!(t.source, "yandex");
    assert_eq!(t.medium, "cpc");
    assert_eq!(t.campaign.as_deref(), Some("112233445"));
    assert_eq!(t.content.as_deref(), Some("16789012345"));
    assert_eq!(t.term.as_deref(), Some("купить диван"));
    assert_eq!(t.click_id.map(|c| c.kind), Some(ClickIdKind::Yclid));
}

#[test]
fn yandex_direct_search_query_fills_the_term_when_untagged() {
    let t = touch("/?yclid=582376", "yandex.ru/search/?text=%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD&lr=213");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::PaidSearch, "yandex", "cpc"));
    assert_eq!(t.term.as_deref(), Some("диван"));
}

#[test]
fn organic_google_without_query() {
    let t = touch("/", "www.google.com/");
    assert_eq!(t.channel, Channel::OrganicSearch);
    assert_eq!(t.source, "google");
    assert_eq!(t.medium, "organic");
    assert_eq!(t.term, None);
    assert_eq!(t.campaign, None);
    assert_eq!(t.click_id, None);
}

#[test]
fn organic_yandex_with_search_text() {
    let t = touch(
        "/",
        "yandex.ru/search/?text=%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD+%D0%BA%D1%80%D0%BE%D0%B2%D0%B0%D1%82%D1%8C&lr=2",
    );
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::OrganicSearch, "yandex", "organic"));
    assert_eq!(t.term.as_deref(), Some("диван кровать"));
}

#[test]
fn organic_bing_with_q() {
    let t = touch("/", "www.bing.com/search?q=sofa+bed+moscow&form=QBLH");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::OrganicSearch, "bing", "organic"));
    assert_eq!(t.term.as_deref(), Some("sofa bed moscow"));
}

#[test]
fn instagram_link_referrer_is_organic_social() {
    let t = touch("/", "l.instagram.com/");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::OrganicSocial, "instagram", "referral"));
    assert_eq!(t.referrer_host.as_deref(), Some("l.instagram.com"));
}

#[test]
fn instagram_ads_are_paid_social() {
    for medium in ["paid_social", "cpc"] {
        let t = touch(&format!("/?utm_source=instagram&utm_medium={medium}&utm_campaign=spring"), "l.instagram.com/");
        assert_eq!(t.channel, Channel::PaidSocial, "{medium}");
        assert_eq!(t.source, "instagram");
        assert_eq!(t.medium, medium);
        assert_eq!(t.campaign.as_deref(), Some("spring"));
    }
}

#[test]
fn email_campaign() {
    let t = touch("/sale?utm_source=newsletter&utm_medium=email&utm_campaign=black_friday", "e.mail.ru/");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::Email, "newsletter", "email"));
    assert_eq!(t.campaign.as_deref(), Some("black_friday"));
}

#[test]
fn webmail_referrer_without_tags() {
    let t = touch("/", "mail.google.com/");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::Email, "gmail", "referral"));
}

#[test]
fn t_co_link_from_x() {
    let t = touch("/", "t.co/AbC123");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::OrganicSocial, "twitter", "referral"));
    assert_eq!(t.referrer_host.as_deref(), Some("t.co"));
}

#[test]
fn youtube_referrer_is_organic_video() {
    let t = touch("/", "www.youtube.com/");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::OrganicVideo, "youtube", "referral"));
}

#[test]
fn same_site_referrer_is_direct() {
    let t = touch("/contacts", "divan-shop.ru/catalog");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::Direct, "(direct)", "(none)"));
    assert_eq!(t.referrer_host, None);
}

#[test]
fn no_referrer_no_tags_is_direct() {
    let t = touch("/", "");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::Direct, "(direct)", "(none)"));
}

#[test]
fn unknown_referrer_is_referral_with_its_host_as_source() {
    let t = touch("/", "www.mebel-forum.ru/threads/123?page=2");
    assert_eq!(t.channel, Channel::Referral);
    assert_eq!(t.source, "mebel-forum.ru");
    assert_eq!(t.medium, "referral");
    assert_eq!(t.term, None);
}

#[test]
fn fbclid_without_referrer_credits_facebook() {
    let t = touch("/?fbclid=IwAR2x", "");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::OrganicSocial, "facebook", "referral"));
}

#[test]
fn tags_without_source_or_medium_are_not_set() {
    let t = touch("/?utm_campaign=spring", "");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::Unassigned, "(not set)", "(not set)"));

    let t = touch("/?utm_source=Partner", "");
    assert_eq!((t.channel, t.source.as_str(), t.medium.as_str()), (Channel::Unassigned, "partner", "(not set)"));
}

#[test]
fn source_and_medium_are_lowercased_but_campaign_keeps_its_case() {
    let t = touch("/?utm_source=Google&utm_medium=CPC&utm_campaign=Brand_RU&utm_id=Cmp-7", "");
    assert_eq!((t.source.as_str(), t.medium.as_str()), ("google", "cpc"));
    assert_eq!(t.campaign.as_deref(), Some("Brand_RU"));
    assert_eq!(t.utm_id.as_deref(), Some("Cmp-7"));
}

#[test]
fn touch_serializes_for_the_browser_and_back() {
    let t = touch("/?utm_source=vk&utm_medium=cpc", "vk.com/");
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["channel"], "Paid Social");
    assert_eq!(json["source"], "vk");
    assert_eq!(json["at_ms"], AT);
    assert_eq!(serde_json::from_value::<Touch>(json).unwrap(), t);
}
