//! The npm package in a real app: `cargo xtask test` packs it, installs the
//! tarball into examples/vite-app (Vite + TypeScript), type-checks and builds
//! it; here the built app runs in Chromium from the customer's origin against
//! a collector on another one.

use std::path::PathBuf;
use std::time::Duration;

use ringsource_tests::{Browser, Site};
use serde_json::json;

const POOL: &str = r#"
[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02"]
rules = [{ channel = "Paid Search" }]
"#;
const WAIT: Duration = Duration::from_secs(40);

fn dist() -> PathBuf {
    let dir = std::env::var_os("RINGSOURCE_VITE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/vite-app/dist"));
    assert!(
        dir.join("index.html").exists(),
        "no built app in {}: run these tests through `cargo xtask test`",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "current_thread")]
async fn the_package_swaps_numbers_in_a_vite_app_and_records_its_route_changes() {
    let site = Site::start(POOL, "");
    site.customer.serve_dir(&dist());
    site.customer.put("/config.json", &json!({ "site": "shop", "collector": site.url("") }).to_string());
    let browser = Browser::launch().await;
    browser.client.goto(&site.page("/?utm_source=google&utm_medium=cpc&gclid=vite")).await.expect("app opens");
    let outcome = browser.wait_for("window.__outcome", WAIT).await;
    assert_eq!(outcome["kind"], "lease", "{outcome}");
    let number = outcome["number"].as_str().expect("a number").to_owned();
    let shown = browser.wait_for("document.getElementById('call').textContent", WAIT).await;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    assert_eq!(format!("+{}", digits(shown.as_str().unwrap_or_default())), number, "header: {shown}");
    assert!(shown.as_str().unwrap_or_default().starts_with("+7 (495) 700-00-0"), "format kept: {shown}");

    // A route renders the number later, in another format: the observer swaps it.
    browser
        .client
        .execute("document.querySelector('a[href=\"/contacts\"]').click(); return true", vec![])
        .await
        .expect("click");
    let contacts = browser.wait_for("(document.getElementById('contacts-phone') || {}).textContent || ''", WAIT).await;
    let tail = &number[number.len() - 7..];
    let want = format!("8 495 {} {} {}", &tail[..3], &tail[3..5], &tail[5..]);
    browser.wait_for(&format!("document.getElementById('contacts-phone').textContent.includes('{want}')"), WAIT).await;
    assert!(!contacts.as_str().unwrap_or_default().is_empty());

    // pageView() recorded the route change on the visitor's session.
    browser.wait_for("window.__pageViews.length === 1", WAIT).await;
    assert_eq!(browser.wait_for("String(window.__pageViews[0])", WAIT).await, "true");
    let db = rusqlite::Connection::open(&site.db).expect("db");
    let (url, title): (String, Option<String>) = db
        .query_row(
            "SELECT url, title FROM page_views WHERE session_id = ?1 ORDER BY rowid DESC LIMIT 1",
            [outcome["session_id"].as_str().expect("session")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the route change is a page view");
    assert_eq!(url, site.page("/contacts"));
    assert_eq!(title.as_deref(), Some("Pipe & Drain: contacts"));
    browser.close().await;
}
