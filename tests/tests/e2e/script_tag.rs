//! The site owner's one script tag, end to end: collector + SQLite + bundle +
//! headless Chromium.

use std::time::Duration;

use ringsource_tests::{Browser, CustomerSite, Site, shop_page};
use serde_json::Value;

const POOL: &str = r#"
[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02", "+7 495 700-00-03"]
rules = [{ channel = "Paid Search" }]
"#;

const FROM_GOOGLE_ADS: &str =
    "/demo/shop.html?utm_source=google&utm_medium=cpc&utm_campaign=sofas&utm_term=buy+sofa&gclid=e2e";
// Generous: CI shares two cores between Chromium, chromedriver and the collector.
const WAIT: Duration = Duration::from_secs(40);

async fn text(browser: &Browser, id: &str) -> String {
    let v = browser
        .client
        .execute(&format!("return document.getElementById('{id}').textContent"), vec![])
        .await
        .expect("read text");
    v.as_str().unwrap_or_default().to_owned()
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.expect("script runs")
}

/// Opens `path` and waits until start() has settled.
async fn open(browser: &Browser, site: &Site, path: &str) -> Value {
    browser.client.goto(&site.page(path)).await.expect("page opens");
    browser.wait_for("window.ringsource && window.ringsource.outcome", WAIT).await
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn utm_visit_shows_the_leased_number_and_keeps_it_on_reload() {
    let site = Site::start(POOL, "");
    let browser = Browser::launch().await;
    let outcome = open(&browser, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(outcome["kind"], "lease", "{outcome}");

    let leases = site.live_leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let (session, number) = &leases[0];
    assert_eq!(outcome["session_id"].as_str(), Some(session.as_str()));
    let header = text(&browser, "header").await;
    assert_eq!(format!("+{}", digits(&header)), *number, "header shows {header:?}");
    // Format kept: "+7 (495) 700-00-0N".
    assert!(header.starts_with("Call us: +7 (495) 700-00-0"), "{header:?}");
    let tel = js(&browser, "return document.getElementById('tel').getAttribute('href')").await;
    assert_eq!(tel.as_str(), Some(format!("tel:{number}").as_str()));
    assert!(text(&browser, "footer").await.contains("74951234567890"), "distractor untouched");

    // Reload: the same number straight from storage, and no second lease.
    let again = open(&browser, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(again["number"].as_str(), Some(number.as_str()), "{again}");
    assert_eq!(site.lease_count(), 1);
    assert_eq!(format!("+{}", digits(&text(&browser, "header").await)), *number);

    // A second visitor (another browser profile) gets another number.
    let other = Browser::launch().await;
    let theirs = open(&other, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(theirs["kind"], "lease");
    assert_ne!(theirs["number"], outcome["number"], "two live visitors, one number");
    assert_eq!(site.live_leases().len(), 2);
    other.close().await;
    browser.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_exhausted_pool_follows_the_overflow_policy() {
    let one_number = r#"
[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01"]
rules = [{ channel = "Paid Search" }]
on_exhaustion = "overflow"
"#;
    let site = Site::start(one_number, "");
    let first = Browser::launch().await;
    let got = open(&first, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(got["number"], "+74957000001");
    let second = Browser::launch().await;
    let overflow = open(&second, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(overflow["number"], "+74957000099", "{overflow}");
    assert_eq!(overflow["overflow"], true, "the answer says it is the overflow number: {overflow}");
    assert!(got.get("overflow").is_none(), "a pool number is not: {got}");
    assert_eq!(digits(&text(&second, "header").await), "74957000099");
    let events = site.pool_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "overflow");
    assert_eq!(events[0].1, "overflow");
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn consent_required_keeps_the_original_until_granted() {
    let site = Site::start(&format!("consent_required = true\n{POOL}"), "");
    let browser = Browser::launch().await;
    let outcome = open(&browser, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(outcome["kind"], "original", "{outcome}");
    assert_eq!(text(&browser, "header").await, "Call us: +7 (495) 123-45-67");
    assert_eq!(site.lease_count(), 0);
    let stored = js(&browser, "return Object.keys(localStorage).filter(k => k.startsWith('ringsource')).length").await;
    assert_eq!(stored, 0, "nothing stored before consent");

    js(&browser, "window.ringsource.grantConsent(); return true").await;
    browser.wait_for("document.getElementById('header').textContent.includes('700-00-0')", WAIT).await;
    assert_eq!(site.live_leases().len(), 1);
    browser.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_dead_collector_leaves_the_page_as_it_is() {
    // The bundle loads from the live collector; the API points at a closed port.
    let site = Site::start(POOL, r#"data-collector="http://127.0.0.1:9""#);
    let browser = Browser::launch().await;
    let outcome = open(&browser, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(outcome["kind"], "original", "{outcome}");
    assert_eq!(text(&browser, "header").await, "Call us: +7 (495) 123-45-67");
    assert_eq!(text(&browser, "footer").await, "Order 74951234567890 · 8 495 123 45 67");
    browser.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn static_number_by_source_needs_no_pool() {
    let statics = r#"
[[sites.static_numbers]]
number = "+7 495 700-00-11"
label = "Instagram"
rule = { utm_source = "instagram" }
"#;
    let site = Site::start(statics, "");
    let browser = Browser::launch().await;
    let outcome = open(&browser, &site, "/demo/shop.html?utm_source=instagram&utm_medium=social").await;
    assert_eq!(outcome["kind"], "static", "{outcome}");
    assert_eq!(text(&browser, "header").await, "Call us: +7 (495) 700-00-11");
    assert_eq!(site.lease_count(), 0);
    browser.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn show_number_button_leases_only_on_click() {
    let site =
        Site::start(&format!("show_number = {{ selector = \"#show .phone\", label = \"Show number\" }}\n{POOL}"), "");
    let browser = Browser::launch().await;
    let outcome = open(&browser, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(outcome["kind"], "original", "{outcome}");
    assert_eq!(site.lease_count(), 0, "no lease before the click");
    js(&browser, "document.querySelector('button.ringsource-show-number').click(); return true").await;
    browser.wait_for("document.querySelector('#show .phone').textContent.includes('700 00 0')", WAIT).await;
    assert_eq!(site.live_leases().len(), 1);
    browser.close().await;
}

/// Records the page's console warnings before any other script runs.
const RECORD_WARNINGS: &str = "<script>window.__warnings = []; var w = console.warn; \
console.warn = function () { window.__warnings.push([].slice.call(arguments).join(' ')); w.apply(console, arguments); };</script>";

#[tokio::test(flavor = "current_thread")]
async fn an_origin_missing_from_allowed_origins_keeps_the_number_and_says_what_to_change() {
    let site = Site::start(POOL, "");
    // A second site of the same owner, not (yet) in allowed_origins.
    let other = CustomerSite::start();
    let page = shop_page(&site.url(""), "").replace("<head>", &format!("<head>{RECORD_WARNINGS}"));
    other.put("/demo/shop.html", &page);
    let browser = Browser::launch().await;
    browser.client.goto(&other.url(FROM_GOOGLE_ADS)).await.expect("page opens");
    let outcome = browser.wait_for("window.ringsource && window.ringsource.outcome", WAIT).await;
    assert_eq!(outcome["kind"], "original", "{outcome}");
    assert_eq!(outcome["reason"], "origin not allowed", "not 'collector unavailable': {outcome}");
    assert_eq!(text(&browser, "header").await, "Call us: +7 (495) 123-45-67");
    let warnings = js(&browser, "return window.__warnings").await;
    let about_origin: Vec<&str> = warnings
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .filter(|w| w.contains("allowed_origins"))
        .collect();
    assert_eq!(about_origin.len(), 1, "one console line: {warnings}");
    assert!(about_origin[0].contains(&other.origin()), "it names the origin: {}", about_origin[0]);
    assert_eq!(site.lease_count(), 0);
    browser.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_crawler_sees_the_sites_own_number_and_takes_no_number() {
    let site = Site::start(POOL, "");
    let googlebot = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; \
                     +http://www.google.com/bot.html) Chrome/131.0.6778.204 Safari/537.36";
    let browser = Browser::launch_as(Some(googlebot)).await;
    let outcome = open(&browser, &site, FROM_GOOGLE_ADS).await;
    assert_eq!(outcome["kind"], "original", "{outcome}");
    assert_eq!(text(&browser, "header").await, "Call us: +7 (495) 123-45-67");
    assert_eq!(site.lease_count(), 0, "a crawler holds no pool number");
    browser.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_pop_up_added_later_shows_the_visitors_number() {
    let site = Site::start(POOL, "");
    let browser = Browser::launch().await;
    let outcome = open(&browser, &site, FROM_GOOGLE_ADS).await;
    let number = outcome["number"].as_str().expect("a lease").to_owned();
    // A call-back pop-up, inserted by the site's own script after the swap.
    js(
        &browser,
        "const d = document.createElement('div'); d.id = 'popup'; \
         d.innerHTML = '<p>Call now: <a href=\"tel:84951234567\">8 (495) 123-45-67</a></p>'; \
         document.body.appendChild(d); return true",
    )
    .await;
    let tail = &number[number.len() - 7..];
    let want = format!("8 (495) {}-{}-{}", &tail[..3], &tail[3..5], &tail[5..]);
    browser.wait_for(&format!("document.getElementById('popup').textContent.includes('{want}')"), WAIT).await;
    let href = js(&browser, "return document.querySelector('#popup a').getAttribute('href')").await;
    assert_eq!(digits(href.as_str().unwrap_or_default()), format!("8{}", &number[2..]), "tel: link swapped: {href}");
    browser.close().await;
}
