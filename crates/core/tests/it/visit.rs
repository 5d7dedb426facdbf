use proptest::prelude::*;
use ringsource_core::visit::{ClickId, ClickIdKind, UrlParts, Visit, ga_client_id, ym_uid};

fn page(query: &'static str) -> UrlParts<'static> {
    UrlParts { host: "shop.example.com", path: "/sofas/", query }
}

fn from(host: &'static str, path: &'static str, query: &'static str) -> Option<UrlParts<'static>> {
    Some(UrlParts { host, path, query })
}

#[test]
fn reads_all_utm_tags_trimmed() {
    let visit = Visit::new(
        page("utm_source=+yandex+&utm_medium=cpc&utm_campaign=sofas_msk&utm_term=%20sofa&utm_content=ad1&utm_id=42"),
        None,
        "",
    );
    let utm = &visit.utm;
    assert_eq!(utm.source.as_deref(), Some("yandex"));
    assert_eq!(utm.medium.as_deref(), Some("cpc"));
    assert_eq!(utm.campaign.as_deref(), Some("sofas_msk"));
    assert_eq!(utm.term.as_deref(), Some("sofa"));
    assert_eq!(utm.content.as_deref(), Some("ad1"));
    assert_eq!(utm.id.as_deref(), Some("42"));
    assert_eq!(visit.landing_path, "/sofas/");
    assert!(visit.is_tagged());
}

#[test]
fn empty_and_blank_tags_are_absent() {
    let visit = Visit::new(page("utm_source=&utm_medium=%20%20&utm_campaign"), None, "");
    assert_eq!(visit.utm.source, None);
    assert_eq!(visit.utm.medium, None);
    assert_eq!(visit.utm.campaign, None);
    assert!(!visit.is_tagged());
}

#[test]
fn first_non_empty_occurrence_of_a_tag_wins() {
    let visit = Visit::new(page("utm_source=&utm_source=vk&utm_source=ok"), None, "");
    assert_eq!(visit.utm.source.as_deref(), Some("vk"));
}

#[test]
fn tag_names_are_case_insensitive() {
    let visit = Visit::new(page("UTM_Source=Google&utm_MEDIUM=CPC&GCLID=abc"), None, "");
    assert_eq!(visit.utm.source.as_deref(), Some("Google"));
    assert_eq!(visit.utm.medium.as_deref(), Some("CPC"));
    assert_eq!(visit.click_id, Some(ClickId { kind: ClickIdKind::Gclid, value: "abc".into() }));
}

#[test]
fn percent_and_plus_encoded_cyrillic_term_is_decoded() {
    let visit =
        Visit::new(page("utm_term=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C+%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD"), None, "");
    assert_eq!(visit.utm.term.as_deref(), Some("купить диван"));

    let visit =
        Visit::new(page("utm_term=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C%20%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD"), None, "");
    assert_eq!(visit.utm.term.as_deref(), Some("купить диван"));
}

#[test]
fn every_click_id_is_read() {
    for kind in ClickIdKind::PRIORITY {
        let query = format!("{}=Cj0KCQ-x_1", kind.param());
        let visit = Visit::new(UrlParts { host: "example.com", path: "/", query: &query }, None, "");
        assert_eq!(visit.click_id, Some(ClickId { kind, value: "Cj0KCQ-x_1".into() }), "{query}");
    }
}

#[test]
fn ad_network_click_id_outranks_fbclid_whatever_the_order() {
    let visit = Visit::new(page("fbclid=IwAR0abc&gclid=EAIaIQ"), None, "");
    assert_eq!(visit.click_id, Some(ClickId { kind: ClickIdKind::Gclid, value: "EAIaIQ".into() }));

    let visit = Visit::new(page("msclkid=m1&yclid=123"), None, "");
    assert_eq!(visit.click_id.map(|c| c.kind), Some(ClickIdKind::Yclid));
}

#[test]
fn empty_click_id_is_ignored() {
    let visit = Visit::new(page("gclid=&fbclid=IwAR0"), None, "");
    assert_eq!(visit.click_id, Some(ClickId { kind: ClickIdKind::Fbclid, value: "IwAR0".into() }));
}

#[test]
fn yandex_ysclid_is_not_a_click_id() {
    // Yandex adds ysclid to organic result links too; it says nothing about ads.
    let visit = Visit::new(page("ysclid=lq8x2"), None, "");
    assert_eq!(visit.click_id, None);
}

#[test]
fn referrer_host_is_normalised() {
    let visit = Visit::new(page(""), from("WWW.Partner-Blog.org:8443", "/review", ""), "");
    let referrer = visit.referrer.expect("external referrer");
    assert_eq!(referrer.host, "partner-blog.org");
    assert_eq!(referrer.path, "/review");
    assert_eq!(referrer.search_term, None);
}

#[test]
fn www_alone_is_kept_as_the_name() {
    let visit = Visit::new(page(""), from("www.com", "/", ""), "");
    assert_eq!(visit.referrer.map(|r| r.host).as_deref(), Some("www.com"));
}

#[test]
fn search_terms_come_from_each_engines_own_parameter() {
    let cases = [
        (
            "yandex.ru",
            "text=%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD+%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C&lr=213",
            "диван купить",
        ),
        ("www.bing.com", "q=corner+sofa&form=QBLH", "corner sofa"),
        ("duckduckgo.com", "q=sofa+bed&ia=web", "sofa bed"),
        ("go.mail.ru", "q=%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD", "диван"),
        ("nova.rambler.ru", "query=sofa&utm_source=head", "sofa"),
        ("www.baidu.com", "wd=%E6%B2%99%E5%8F%91", "沙发"),
        ("m.baidu.com", "word=sofa", "sofa"),
        ("search.yahoo.com", "p=sofa", "sofa"),
        ("www.ecosia.org", "q=sofa", "sofa"),
        ("www.google.co.uk", "q=sofa", "sofa"),
    ];
    for (host, query, term) in cases {
        let visit = Visit::new(page(""), from(host, "/search", query), "");
        let referrer = visit.referrer.expect(host);
        assert_eq!(referrer.search_term.as_deref(), Some(term), "{host}");
    }
}

#[test]
fn unknown_referrers_carry_no_search_term() {
    let visit = Visit::new(page(""), from("forum.example.net", "/t/1", "q=sofa"), "");
    assert_eq!(visit.referrer.and_then(|r| r.search_term), None);
}

#[test]
fn same_site_referrers_are_not_sources() {
    for (page_host, referrer_host) in [
        ("shop.example.com", "shop.example.com"),
        ("example.com", "www.example.com"),
        ("www.example.com", "example.com"),
        ("example.com", "blog.example.com"),
        ("shop.example.com", "example.com"),
        ("example.com:8080", "EXAMPLE.COM"),
    ] {
        let visit = Visit::new(
            UrlParts { host: page_host, path: "/", query: "" },
            Some(UrlParts { host: referrer_host, path: "/cart", query: "" }),
            "",
        );
        assert_eq!(visit.referrer, None, "{referrer_host} -> {page_host}");
    }
}

#[test]
fn lookalike_and_sibling_hosts_are_other_sites() {
    for referrer_host in ["notexample.com", "example.com.evil.net", "b.github.io"] {
        let visit = Visit::new(
            UrlParts { host: "a.github.io", path: "/", query: "" },
            Some(UrlParts { host: referrer_host, path: "/", query: "" }),
            "",
        );
        assert!(visit.referrer.is_some(), "{referrer_host}");
    }
    let visit = Visit::new(page(""), from("notexample.com", "/", ""), "");
    assert!(visit.referrer.is_some());
}

#[test]
fn empty_referrer_host_is_no_referrer() {
    let visit = Visit::new(page(""), from("", "", ""), "");
    assert_eq!(visit.referrer, None);
}

#[test]
fn ga_client_id_drops_version_and_depth() {
    assert_eq!(ga_client_id("GA1.2.1234567890.1700000000").as_deref(), Some("1234567890.1700000000"));
    assert_eq!(ga_client_id("GA1.1.987654321.1712345678").as_deref(), Some("987654321.1712345678"));
    assert_eq!(ga_client_id("GA1.3.5.6").as_deref(), Some("5.6"));
}

#[test]
fn malformed_ga_cookies_are_ignored() {
    for value in [
        "",
        "GA1.2.1234567890",
        "GA1.2.1234567890.1700000000.7",
        "GA1.2.amp-1a2b3c.1700000000",
        "GS1.1.1700000000.1.0.1700000000.0",
        "UA1.2.1234567890.1700000000",
        "GA1..1234567890.1700000000",
        "GA.2.1234567890.1700000000",
        "GA1.2.1234567890.",
    ] {
        assert_eq!(ga_client_id(value), None, "{value:?}");
    }
}

#[test]
fn ym_uid_must_be_digits() {
    assert_eq!(ym_uid("1700000000123456789").as_deref(), Some("1700000000123456789"));
    assert_eq!(ym_uid(""), None);
    assert_eq!(ym_uid("17000x"), None);
}

#[test]
fn cookies_are_read_from_document_cookie() {
    let cookies = "_ym_d=1700000000; _ga=GA1.2.1234567890.1700000000;_ym_uid=1700000000987654321 ; \
                   _ga_ABC123=GS1.1.1700000000.1.0.1700000000.0.0.0; other_ga=GA1.2.1.2";
    let visit = Visit::new(page(""), None, cookies);
    assert_eq!(visit.ga_client_id.as_deref(), Some("1234567890.1700000000"));
    assert_eq!(visit.ym_uid.as_deref(), Some("1700000000987654321"));
}

#[test]
fn missing_or_broken_cookies_leave_ids_absent() {
    let visit = Visit::new(page(""), None, "_ga=GA1.2.broken; session; =x; _ym_uid=");
    assert_eq!(visit.ga_client_id, None);
    assert_eq!(visit.ym_uid, None);
}

#[test]
fn visit_round_trips_through_json() {
    let visit =
        Visit::new(page("utm_source=vk&utm_medium=cpc&fbclid=IwAR0"), from("vk.com", "/feed", ""), "_ga=GA1.2.1.2");
    let json = serde_json::to_string(&visit).unwrap();
    assert!(json.contains(r#""kind":"fbclid""#), "{json}");
    assert_eq!(serde_json::from_str::<Visit>(&json).unwrap(), visit);
}

proptest! {
    #[test]
    fn any_query_gives_trimmed_non_empty_tags(query in "[a-z_=&%+ 0-9A-F]{0,80}", host in "[a-zA-Z.:0-9]{0,20}") {
        let visit = Visit::new(
            UrlParts { host: "example.com", path: "/", query: &query },
            Some(UrlParts { host: &host, path: "/", query: &query }),
            &query,
        );
        let utm = &visit.utm;
        for tag in [&utm.source, &utm.medium, &utm.campaign, &utm.term, &utm.content, &utm.id].into_iter().flatten() {
            prop_assert!(!tag.is_empty() && tag.trim() == tag.as_str());
        }
        if let Some(referrer) = &visit.referrer {
            prop_assert!(!referrer.host.is_empty());
            prop_assert_eq!(referrer.host.to_ascii_lowercase(), referrer.host.clone());
        }
    }
}
