//! The dashboard end to end: visits from headless Chromium through the script
//! tag, calls through the Kamailio webhook, then the dashboard in Chromium:
//! sign in, filter the calls, open a call's path, the source report with its
//! chart, pool health and a promo code. Screenshots go to
//! `target/screenshots/dashboard-*.png`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use ringsource_tests::{Browser, Site};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "dashboard-e2e-admin-token-0123";
const KAMAILIO_TOKEN: &str = "dashboard-e2e-kamailio-token-01";
const WAIT: Duration = Duration::from_secs(40);

fn site_toml() -> String {
    format!(
        r#"pbx_secrets = {{ kamailio = "{KAMAILIO_TOKEN}" }}
promo = {{ rules = [{{ utm_source = "newsletter" }}] }}

[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02", "+7 495 700-00-03"]
rules = [{{ channel = "Paid Search" }}]
"#
    )
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Runs `fetch(path, init)` in the page and returns `{ status, body }`.
async fn fetch(browser: &Browser, path: &str, init: Value) -> Value {
    browser
        .client
        .execute_async(
            "const [path, init, done] = arguments;
             fetch(path, init).then(async r => done({ status: r.status, body: await r.text() }),
                                    e => done({ status: 0, body: String(e) }));",
            vec![json!(path), init],
        )
        .await
        .expect("fetch runs")
}

/// A finished call reported the way Kamailio's script reports it.
async fn kamailio_call(browser: &Browser, call_id: &str, from: &str, to: &str, talk_secs: Option<i64>) {
    // Whole seconds: the next one, so the ring is never before the lease began.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 1;
    // It rings now, while the visitor holds the number; the end is reported
    // at once with the times it will have.
    let mut body = json!({ "event": "end", "call_id": call_id, "from": from, "to": to.trim_start_matches('+'),
        "at": now + 5 + talk_secs.unwrap_or(15), "started_at": now });
    match talk_secs {
        Some(_) => {
            body["answered_at"] = json!(now + 5);
            body["sip_code"] = json!(200);
        }
        None => body["sip_code"] = json!(480),
    }
    let init = json!({ "method": "POST", "headers": { "Authorization": format!("Bearer {KAMAILIO_TOKEN}"),
        "Content-Type": "application/json" }, "body": body.to_string() });
    let r = fetch(browser, "/v1/sites/shop/pbx/kamailio", init).await;
    assert_eq!(r["status"], 200, "{r}");
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("dashboard-{name}.png"));
    std::fs::write(&path, &png).expect("write screenshot");
    let len = std::fs::metadata(&path).expect("screenshot written").len();
    assert!(len > 1000 && png.starts_with(b"\x89PNG"), "{} is not a PNG ({len} bytes)", path.display());
}

async fn rows(browser: &Browser, table: &str) -> u64 {
    js(browser, &format!("return document.querySelectorAll('{table} tbody tr').length")).await.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "current_thread")]
async fn a_manager_signs_in_filters_calls_reads_reports_and_pool_health() {
    let dashboard = ringsource_tests::dashboard_dir();
    assert!(
        dashboard.join("vendor/uPlot.iife.min.js").exists(),
        "{} has no vendor/uPlot.iife.min.js: run these tests through `cargo xtask test` (it runs npm ci and copies uPlot)",
        dashboard.display()
    );
    let site = Site::start_with(&format!("admin_token = \"{ADMIN_TOKEN}\""), &site_toml(), "");
    let browser = Browser::launch().await;
    browser.client.set_window_size(1280, 800).await.expect("window size");

    // Two paid-search visitors: one through the script tag, one posted by hand.
    browser
        .client
        .goto(
            &site.page(
                "/demo/shop.html?utm_source=google&utm_medium=cpc&utm_campaign=sofas&utm_term=buy+sofa&gclid=e2e",
            ),
        )
        .await
        .expect("shop page");
    let outcome = browser.wait_for("window.ringsource && window.ringsource.outcome", WAIT).await;
    assert_eq!(outcome["kind"], "lease", "{outcome}");
    let sofas = outcome["number"].as_str().expect("leased number").to_owned();
    // The calls below are made from the collector's own origin, as its dashboard makes them.
    browser.client.goto(&site.url("/dashboard/")).await.expect("dashboard");
    let visit = json!({ "touch": { "channel": "Paid Search", "source": "yandex", "medium": "cpc", "campaign": "beds",
        "term": "cheap bed", "content": null, "utm_id": null, "click_id": null, "landing_path": "/beds",
        "referrer_host": null, "at_ms": 1_700_000_000_000u64 }, "page": { "url": "https://shop.example/beds", "title": "Beds" } });
    let r = fetch(&browser, "/v1/sites/shop/visits", json!({ "method": "POST", "body": visit.to_string() })).await;
    let beds: Value = serde_json::from_str(r["body"].as_str().unwrap()).expect("visit answer");
    let beds = beds["number"].as_str().expect("second lease").to_owned();
    assert_ne!(sofas, beds);
    // A newsletter visitor gets a promo code instead of a number.
    let visit = json!({ "touch": { "channel": "Email", "source": "newsletter", "medium": "email", "campaign": "spring",
        "term": null, "content": null, "utm_id": null, "click_id": null, "landing_path": "/sale",
        "referrer_host": null, "at_ms": 1_700_000_000_000u64 }, "page": { "url": "https://shop.example/sale", "title": "Sale" } });
    let r = fetch(&browser, "/v1/sites/shop/visits", json!({ "method": "POST", "body": visit.to_string() })).await;
    let promo: Value = serde_json::from_str(r["body"].as_str().unwrap()).expect("visit answer");
    let code = promo["promo_code"].as_str().unwrap_or_else(|| panic!("no promo code: {promo}")).to_owned();

    kamailio_call(&browser, "sofa-call@e2e", "79161234567", &sofas, Some(75)).await;
    kamailio_call(&browser, "bed-call@e2e", "79161234567", &beds, None).await;
    // A call to the original number: unattributed until the manager names the code.
    kamailio_call(&browser, "promo-call@e2e", "79035550000", "+74951234567", Some(40)).await;

    // Today's advertising cost of the sofas campaign.
    let today = js(&browser, "return new Date().toISOString().slice(0, 10)").await;
    let costs = json!([{ "date": today, "source": "google", "medium": "cpc", "campaign": "sofas", "cost": 150 }]);
    let r = fetch(
        &browser,
        "/v1/costs?site=shop",
        json!({ "method": "POST", "body": costs.to_string(),
        "headers": { "Authorization": format!("Bearer {ADMIN_TOKEN}"), "Content-Type": "application/json" } }),
    )
    .await;
    assert!(r["status"].as_u64().is_some_and(|s| (200..300).contains(&s)), "{r}");

    // Sign in: a wrong token is refused with a message, the right one opens the calls.
    browser.client.goto(&site.url("/dashboard")).await.expect("dashboard");
    browser
        .wait_for("document.body.dataset.ready === '1' && !document.querySelector('#view-login').hidden", WAIT)
        .await;
    // The dashboard runs under its content security policy: its scripts ran
    // and its style sheets applied, and anything the policy blocks from here
    // on (the charts are drawn after sign-in) is collected: there must be nothing.
    assert!(
        js(
            &browser,
            "try { return typeof uPlot === 'function' && [...document.querySelectorAll('link[rel=stylesheet]')].every(l => l.sheet.cssRules.length > 0) } catch (e) { return String(e) }"
        )
        .await
            == json!(true),
        "the dashboard's scripts and style sheets loaded under its policy"
    );
    js(
        &browser,
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)); return true",
    )
    .await;
    let token = browser.client.find(Locator::Css("#token")).await.expect("token field");
    token.send_keys("not-the-admin-token-at-all").await.expect("type");
    let site_field = browser.client.find(Locator::Css("#login-site")).await.expect("site field");
    site_field.clear().await.expect("clear");
    site_field.send_keys("shop").await.expect("type");
    browser.client.find(Locator::Css("#login-form button")).await.expect("button").click().await.expect("click");
    browser.wait_for("document.querySelector('#login-error').textContent.includes('refused')", WAIT).await;
    token.clear().await.expect("clear");
    token.send_keys(ADMIN_TOKEN).await.expect("type");
    browser.client.find(Locator::Css("#login-form button")).await.expect("button").click().await.expect("click");
    browser.wait_for("document.querySelectorAll('#calls-table tbody tr').length === 3", WAIT).await;
    assert_eq!(js(&browser, "return sessionStorage.getItem('ringsource.dashboard.token')").await, ADMIN_TOKEN);

    let all = js(&browser, "return document.querySelector('#calls-table').innerText").await;
    assert!(all.as_str().unwrap().contains("sofas"), "{all}");

    // Filter: the sofas campaign only.
    let campaign = browser.client.find(Locator::Css("#calls-filter [name=campaign]")).await.expect("campaign");
    campaign.send_keys("sofas").await.expect("type");
    browser
        .client
        .find(Locator::Css("#calls-filter button[type=submit]"))
        .await
        .expect("apply")
        .click()
        .await
        .expect("click");
    browser.wait_for("document.querySelectorAll('#calls-table tbody tr').length === 1", WAIT).await;
    let row = js(&browser, "return document.querySelector('#calls-table tbody tr').textContent").await;
    assert!(row.as_str().unwrap().contains("sofas") && row.as_str().unwrap().contains("buy sofa"), "{row}");

    // The call's path: touches, pages, keyword, landing page, and why.
    browser.client.find(Locator::Css("#calls-table tbody tr")).await.expect("row").click().await.expect("click");
    browser.wait_for("document.querySelector('#call-detail .visitor-path')", WAIT).await;
    let detail = js(&browser, "return document.querySelector('#call-detail').innerText").await;
    let detail = detail.as_str().unwrap();
    for want in ["buy sofa", "/demo/shop.html", "Paid Search / google / cpc", "high", "Why this attribution", "live"] {
        assert!(detail.contains(want), "call detail lacks {want:?}:\n{detail}");
    }
    screenshot(&browser, "calls").await;

    // CSV export (fetched with the token, handed to the browser as a download).
    assert_eq!(rows(&browser, "#calls-table").await, 1);
    let csv = fetch(
        &browser,
        "/v1/calls.csv?site=shop&campaign=sofas",
        json!({ "headers": { "Authorization": format!("Bearer {ADMIN_TOKEN}") } }),
    )
    .await;
    assert!(csv["body"].as_str().unwrap().lines().count() == 2, "{csv}");

    // Source report: a table beside a drawn chart.
    browser.client.goto(&site.url("/dashboard/#sources")).await.expect("sources");
    browser.wait_for("document.querySelectorAll('#sources-table tbody tr').length >= 2", WAIT).await;
    let size = browser
        .wait_for("(() => { const c = document.querySelector('#sources-chart canvas'); return c && c.width > 0 && c.height > 0 && [c.width, c.height]; })()", WAIT)
        .await;
    assert!(size[0].as_u64().unwrap() > 100, "{size}");
    let table = js(&browser, "return document.querySelector('#sources-table').innerText").await;
    assert!(table.as_str().unwrap().contains("Paid Search"), "{table}");
    // By campaign: the sofas call is a target call, the beds call is missed.
    js(&browser, "document.querySelector('#sources-filter [name=group_by]').value = 'campaign'; document.querySelector('#sources-filter').requestSubmit(); return true").await;
    browser.wait_for("document.querySelector('#sources-table').innerText.includes('sofas')", WAIT).await;
    let by_campaign = js(&browser, "return [...document.querySelectorAll('#sources-table tbody tr')].map(r => [...r.cells].map(c => c.textContent))").await;
    let find = |name: &str| -> Vec<String> {
        let row = by_campaign.as_array().unwrap().iter().find(|r| r[0] == name);
        let row = row.unwrap_or_else(|| panic!("{name}: {by_campaign}"));
        row.as_array().unwrap().iter().map(|c| c.as_str().unwrap_or_default().to_owned()).collect()
    };
    // Calls, target, missed, first-time.
    assert_eq!(find("sofas")[1..5], ["1", "1", "0", "1"]);
    assert_eq!(find("beds")[1..4], ["1", "0", "1"]);
    // Cost, revenue, cost per target call, ROI.
    assert_eq!(find("sofas")[5..9], ["150.00", "0.00", "150.00", "-100%"]);
    // Cost can be charted per day too.
    js(&browser, "document.querySelector('#sources-filter [name=metric]').value = 'cost'; document.querySelector('#sources-filter').requestSubmit(); return true").await;
    browser.wait_for("document.querySelector('#sources-chart-title').textContent === 'cost per day' && document.querySelector('#sources-chart canvas')", WAIT).await;
    screenshot(&browser, "sources").await;

    // Pool health: two of three numbers live at once.
    browser.client.goto(&site.url("/dashboard/#pools")).await.expect("pools");
    browser.wait_for("document.querySelector('.pool[data-pool=paid] .recommended')", WAIT).await;
    let pool = js(&browser, "return document.querySelector('.pool[data-pool=paid]').innerText").await;
    let pool = pool.as_str().unwrap();
    assert!(pool.contains("Size 3") && pool.contains("Peak live 2 (67%)"), "{pool}");
    browser.wait_for("document.querySelector('.pool[data-pool=paid] canvas')", WAIT).await;
    screenshot(&browser, "pools").await;

    // Promo code: the manager looks it up and attaches it to the call.
    browser.client.goto(&site.url("/dashboard/#promo")).await.expect("promo");
    browser.wait_for("!document.querySelector('#view-promo').hidden", WAIT).await;
    browser
        .client
        .find(Locator::Css("#promo-code"))
        .await
        .expect("code")
        .send_keys(&code.to_lowercase())
        .await
        .expect("type");
    browser.client.find(Locator::Css("#promo-form button")).await.expect("button").click().await.expect("click");
    browser.wait_for("document.querySelector('#promo-result .promo-source')", WAIT).await;
    let source = js(&browser, "return document.querySelector('#promo-result').innerText").await;
    assert!(source.as_str().unwrap().contains("Email / newsletter / email / spring"), "{source}");
    let list = fetch(
        &browser,
        "/v1/calls?site=shop&status=answered",
        json!({ "headers": { "Authorization": format!("Bearer {ADMIN_TOKEN}") } }),
    )
    .await;
    let list: Value = serde_json::from_str(list["body"].as_str().unwrap()).unwrap();
    let id = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pbx_call_id"] == "promo-call@e2e")
        .expect("promo call")["id"]
        .clone();
    browser
        .client
        .find(Locator::Css("#promo-call"))
        .await
        .expect("call id")
        .send_keys(&id.to_string())
        .await
        .expect("type");
    browser.client.find(Locator::Css("#promo-attach button")).await.expect("button").click().await.expect("click");
    browser.wait_for("document.querySelector('#promo-attach-result').textContent.includes('newsletter')", WAIT).await;
    screenshot(&browser, "promo").await;
    let blocked = js(&browser, "return window.cspViolations").await;
    assert_eq!(blocked, json!([]), "the content security policy blocked something");

    // A token that stops working sends the manager back to sign in.
    js(&browser, "sessionStorage.setItem('ringsource.dashboard.token', 'revoked-token-0123456789'); location.hash = '#calls'; return true").await;
    browser.wait_for("!document.querySelector('#view-login').hidden && document.querySelector('#login-error').textContent.includes('Sign in again')", WAIT).await;
    browser.close().await;
}
