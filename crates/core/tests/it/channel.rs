use ringsource_core::channel::{Channel, UnknownChannel};
use ringsource_core::visit::{UrlParts, Visit};

fn channel(query: &str, referrer: Option<(&str, &str)>) -> Channel {
    let page = UrlParts { host: "example.com", path: "/", query };
    let referrer = referrer.map(|(host, query)| UrlParts { host, path: "/", query });
    Channel::of(&Visit::new(page, referrer, ""))
}

#[test]
fn names_round_trip_through_from_str() {
    for c in Channel::ALL {
        assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert_eq!(Channel::OrganicSearch.as_str(), "Organic Search");
    assert_eq!(Channel::PaidSocial.as_str(), "Paid Social");
    assert_eq!(" organic search ".parse::<Channel>(), Ok(Channel::OrganicSearch));
    assert_eq!("OrganicSearch".parse::<Channel>(), Err(UnknownChannel("OrganicSearch".into())));
}

#[test]
fn serde_uses_the_display_names() {
    assert_eq!(serde_json::to_string(&Channel::PaidVideo).unwrap(), r#""Paid Video""#);
    assert_eq!(serde_json::from_str::<Channel>(r#""Organic Social""#).unwrap(), Channel::OrganicSocial);
    let err = serde_json::from_str::<Channel>(r#""Organic_Social""#).unwrap_err();
    assert!(err.to_string().contains("unknown channel"), "{err}");
}

#[test]
fn nothing_at_all_is_direct() {
    assert_eq!(channel("", None), Channel::Direct);
    assert_eq!(channel("page=2&ysclid=abc", None), Channel::Direct);
    assert_eq!(channel("utm_source=(direct)&utm_medium=(none)", None), Channel::Direct);
}

#[test]
fn paid_search() {
    assert_eq!(channel("gclid=EAIaIQ", None), Channel::PaidSearch);
    assert_eq!(channel("gbraid=0AAAA", None), Channel::PaidSearch);
    assert_eq!(channel("wbraid=CkAB", None), Channel::PaidSearch);
    assert_eq!(channel("msclkid=5f1e", Some(("www.bing.com", ""))), Channel::PaidSearch);
    assert_eq!(channel("yclid=6574839201&utm_source=yandex&utm_medium=cpc", None), Channel::PaidSearch);
    assert_eq!(channel("utm_source=google&utm_medium=ppc", None), Channel::PaidSearch);
    assert_eq!(channel("utm_source=bing&utm_medium=paidsearch", None), Channel::PaidSearch);
    // A cpc link from a source nobody listed is still most likely a search ad.
    assert_eq!(channel("utm_source=adnetwork&utm_medium=cpc", None), Channel::PaidSearch);
    // Auto-tagging beats the referrer: the ad was clicked on Google.
    assert_eq!(channel("gclid=EAIaIQ", Some(("www.google.com", ""))), Channel::PaidSearch);
}

#[test]
fn paid_social() {
    assert_eq!(channel("utm_source=instagram&utm_medium=paid_social", None), Channel::PaidSocial);
    assert_eq!(channel("utm_source=instagram&utm_medium=cpc", None), Channel::PaidSocial);
    assert_eq!(channel("utm_source=vk&utm_medium=cpm", None), Channel::PaidSocial);
    assert_eq!(channel("utm_source=fb&utm_medium=paid&fbclid=IwAR0", None), Channel::PaidSocial);
    assert_eq!(channel("utm_source=meta_ads&utm_medium=paid-social", None), Channel::PaidSocial);
    assert_eq!(channel("ttclid=E.C.P.abc", None), Channel::PaidSocial);
    assert_eq!(channel("utm_source=tiktok&utm_medium=retargeting", None), Channel::PaidSocial);
}

#[test]
fn paid_video() {
    assert_eq!(channel("utm_source=youtube&utm_medium=cpv", None), Channel::PaidVideo);
    assert_eq!(channel("utm_source=google&utm_medium=paid_video", None), Channel::PaidVideo);
}

#[test]
fn fbclid_alone_is_organic_social() {
    assert_eq!(channel("fbclid=IwAR0", None), Channel::OrganicSocial);
    assert_eq!(channel("fbclid=IwAR0", Some(("l.facebook.com", ""))), Channel::OrganicSocial);
}

#[test]
fn email_in_any_spelling() {
    for query in [
        "utm_source=newsletter&utm_medium=email",
        "utm_source=newsletter&utm_medium=E-Mail",
        "utm_source=newsletter&utm_medium=e_mail",
        "utm_source=newsletter&utm_medium=e+mail",
        "utm_source=email&utm_campaign=spring",
        "utm_source=google&utm_medium=email",
    ] {
        assert_eq!(channel(query, None), Channel::Email, "{query}");
    }
    assert_eq!(channel("", Some(("mail.google.com", ""))), Channel::Email);
    assert_eq!(channel("", Some(("e.mail.ru", ""))), Channel::Email);
    assert_eq!(channel("", Some(("mail.yandex.ru", ""))), Channel::Email);
    assert_eq!(channel("", Some(("outlook.live.com", ""))), Channel::Email);
    assert_eq!(channel("", Some(("com.google.android.gm", ""))), Channel::Email);
}

#[test]
fn affiliates_display_and_referral_media() {
    assert_eq!(channel("utm_source=admitad&utm_medium=affiliate", None), Channel::Affiliates);
    assert_eq!(channel("utm_source=rtb&utm_medium=banner", None), Channel::Display);
    assert_eq!(channel("utm_source=google&utm_medium=display&gclid=x", None), Channel::Display);
    assert_eq!(channel("utm_source=adnetwork&utm_medium=cpm", None), Channel::Display);
    assert_eq!(channel("utm_source=partner&utm_medium=referral", None), Channel::Referral);
}

#[test]
fn organic_media() {
    assert_eq!(channel("utm_source=blogger&utm_medium=social-network", None), Channel::OrganicSocial);
    assert_eq!(channel("utm_source=club&utm_medium=SM", None), Channel::OrganicSocial);
    assert_eq!(channel("utm_source=yandex&utm_medium=organic", None), Channel::OrganicSearch);
    assert_eq!(channel("utm_source=blogger&utm_medium=video", None), Channel::OrganicVideo);
}

#[test]
fn search_referrers_are_organic_search() {
    for host in [
        "www.google.com",
        "www.google.ru",
        "www.google.co.uk",
        "www.google.com.br",
        "yandex.ru",
        "ya.ru",
        "yandex.com.tr",
        "www.bing.com",
        "duckduckgo.com",
        "go.mail.ru",
        "nova.rambler.ru",
        "www.baidu.com",
        "search.yahoo.com",
        "www.ecosia.org",
        "com.google.android.googlequicksearchbox",
    ] {
        assert_eq!(channel("", Some((host, ""))), Channel::OrganicSearch, "{host}");
    }
}

#[test]
fn social_and_video_referrers() {
    for host in [
        "vk.com",
        "m.vk.com",
        "vk.ru",
        "ok.ru",
        "t.me",
        "web.telegram.org",
        "l.facebook.com",
        "m.facebook.com",
        "l.instagram.com",
        "www.tiktok.com",
        "t.co",
        "x.com",
        "lnkd.in",
        "dzen.ru",
        "zen.yandex.ru",
        "www.pinterest.co.uk",
        "out.reddit.com",
        "wa.me",
    ] {
        assert_eq!(channel("", Some((host, ""))), Channel::OrganicSocial, "{host}");
    }
    for host in ["www.youtube.com", "m.youtube.com", "youtu.be", "rutube.ru"] {
        assert_eq!(channel("", Some((host, ""))), Channel::OrganicVideo, "{host}");
    }
}

#[test]
fn tagged_known_sources_without_medium_follow_the_source() {
    assert_eq!(channel("utm_source=google", None), Channel::OrganicSearch);
    assert_eq!(channel("utm_source=ig", None), Channel::OrganicSocial);
    assert_eq!(channel("utm_source=m.facebook.com", None), Channel::OrganicSocial);
    assert_eq!(channel("utm_source=YouTube", None), Channel::OrganicVideo);
}

#[test]
fn unknown_referrer_is_referral() {
    assert_eq!(channel("", Some(("forum.example.net", ""))), Channel::Referral);
    // A lookalike of a search brand under someone else's domain.
    assert_eq!(channel("", Some(("google.example.net", "q=x"))), Channel::Referral);
}

#[test]
fn tags_that_fit_no_rule_are_unassigned() {
    assert_eq!(channel("utm_source=partner", None), Channel::Unassigned);
    assert_eq!(channel("utm_campaign=spring", None), Channel::Unassigned);
    // utm_source overrides the referrer, as in analytics tools.
    assert_eq!(channel("utm_source=partner", Some(("partner.example.net", ""))), Channel::Unassigned);
}

#[test]
fn same_site_referrer_is_direct() {
    assert_eq!(channel("", Some(("www.example.com", ""))), Channel::Direct);
}

#[test]
fn sms_push_and_audio_have_channels_of_their_own() {
    assert_eq!(channel("utm_source=sms_gateway&utm_medium=sms", None), Channel::Sms);
    assert_eq!(channel("utm_source=SMS&utm_campaign=sale", None), Channel::Sms);
    for medium in ["push", "web-push", "WebPush", "mobile_notification", "notification"] {
        assert_eq!(
            channel(&format!("utm_source=onesignal&utm_medium={medium}"), None),
            Channel::MobilePush,
            "{medium}"
        );
    }
    assert_eq!(channel("utm_source=firebase", None), Channel::MobilePush);
    assert_eq!(channel("utm_source=spotify&utm_medium=audio", None), Channel::Audio);
    assert_eq!(channel("utm_source=radio&utm_medium=podcast", None), Channel::Audio);
    // A paid medium that mentions `mobile` is still paid.
    assert_eq!(channel("utm_source=google&utm_medium=cpc_mobile", None), Channel::PaidSearch);
}

#[test]
fn newsletters_and_affiliates_in_any_spelling() {
    assert_eq!(channel("utm_source=digest&utm_medium=newsletter", None), Channel::Email);
    assert_eq!(channel("utm_source=Newsletter", None), Channel::Email);
    assert_eq!(channel("utm_source=admitad&utm_medium=affiliates", None), Channel::Affiliates);
}

#[test]
fn ai_assistants_are_a_channel_of_their_own() {
    for host in ["chatgpt.com", "chat.openai.com", "www.perplexity.ai", "gemini.google.com", "claude.ai"] {
        assert_eq!(channel("", Some((host, ""))), Channel::AiAssistants, "{host}");
    }
    // ChatGPT tags the links in its answers with utm_source=chatgpt.com.
    assert_eq!(channel("utm_source=chatgpt.com", None), Channel::AiAssistants);
    // A medium the marketer wrote still decides.
    assert_eq!(channel("utm_source=chatgpt.com&utm_medium=referral", None), Channel::Referral);
}

#[test]
fn ad_and_affiliate_networks_and_listings() {
    assert_eq!(channel("", Some(("googleads.g.doubleclick.net", ""))), Channel::Display);
    assert_eq!(channel("", Some(("tpc.googlesyndication.com", ""))), Channel::Display);
    assert_eq!(channel("", Some(("www.googleadservices.com", "q=sofa"))), Channel::PaidSearch);
    assert_eq!(channel("", Some(("avito.ru", ""))), Channel::Referral);
    assert_eq!(channel("", Some(("kaspi.kz", ""))), Channel::Referral);
}

#[test]
fn from_name_reads_exactly_the_display_names() {
    for channel in Channel::ALL {
        assert_eq!(Channel::from_name(channel.as_str()), Some(channel));
    }
    // Hand-written configuration is forgiven by `parse`, not by `from_name`,
    // which reads what this crate wrote.
    assert_eq!(Channel::from_name("organic search"), None);
    assert_eq!(Channel::from_name(" Direct"), None);
    assert_eq!("organic search".parse::<Channel>().ok(), Some(Channel::OrganicSearch));
}
