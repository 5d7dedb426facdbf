//! People and rights in the dashboard end to end, on a week of demo data
//! (`ringsource demo-data`: the plumber's calls with recordings, tags,
//! notes, places, devices and one user per role), in Chromium at 1440×900
//! and 390×844: each role signs in and sees only the views it may open,
//! and the API refuses it the rest (403 JSON) when the page asks anyway;
//! marketers see callers masked; a manager plays a recording, tags a call
//! and finds it with the tag filter, and writes a note; an admin adds and
//! removes a user. Every new view is screenshotted, held to the layout
//! rules and scanned with axe (0 serious or critical).

use std::time::Duration;

use fantoccini::Locator;
use ringsource_collector::demo::DEMO_USERS;
use ringsource_tests::{Browser, Site};
use serde_json::{Value, json};

use crate::dashboard::{assert_policy_kept, check_vendor, check_view, click, fetch, hash, js, type_into, watch_policy};
use crate::dashboard_views::{LAPTOP, PHONE, set_viewport};

const ADMIN_TOKEN: &str = "dashboard-roles-admin-token-01";
const WAIT: Duration = Duration::from_secs(40);

fn site_toml() -> String {
    r#"time_zone = "Europe/Moscow"
currency = "RUB"
locale = "ru-RU"
promo = { fallback = true }

[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02", "+7 495 700-00-03", "+7 495 700-00-04"]
rules = [{ channel = "Paid Search" }]
"#
    .to_owned()
}

fn password(role: &str) -> &'static str {
    DEMO_USERS.iter().find(|(name, ..)| *name == role).expect("a demo user per role").2
}

/// Signs in through the form as the demo user of `role`, on site "shop".
async fn sign_in_as(site: &Site, browser: &Browser, role: &str) {
    sign_in_with(site, browser, role, password(role)).await;
}

/// Signs in through the form as `name`, on site "shop".
async fn sign_in_with(site: &Site, browser: &Browser, name: &str, password: &str) {
    browser.client.goto(&site.url("/dashboard/#calls?site=shop")).await.expect("dashboard");
    browser.wait_for("document.body.dataset.ready === '1'", WAIT).await;
    if js(browser, "return document.querySelector('#view-login').hidden").await == json!(true) {
        click(browser, "#logout").await;
        browser.wait_for("!document.querySelector('#view-login').hidden", WAIT).await;
        // Signed out, the last user's calls are gone from the page, not only hidden.
        let left = js(browser, "return [document.querySelectorAll('#calls-table tr, #users-table tr, #sources-table tr').length, document.querySelector('#call-detail').innerText.includes('Call #')]").await;
        assert_eq!(left, json!([0, false]), "what the last user saw stays in the page");
    }
    browser.wait_for("!document.querySelector('#view-login').hidden", WAIT).await;
    watch_policy(browser).await;
    type_into(browser, "#username", name).await;
    type_into(browser, "#password", password).await;
    type_into(browser, "#login-site", "shop").await;
    click(browser, "#login-form button").await;
    browser
        .wait_for(
            &format!(
                "document.querySelector('#view-login').hidden && document.querySelector('#whoami').textContent.startsWith({}) && document.querySelectorAll('#calls-table tbody tr').length > 0",
                json!(format!("{name} · "))
            ),
            WAIT,
        )
        .await;
}

/// The views the nav offers.
async fn nav(browser: &Browser) -> Value {
    js(browser, "return [...document.querySelectorAll('#nav a')].filter(a => !a.hidden).map(a => a.dataset.view)").await
}

/// `fetch` from the page as the dashboard would make it: the cookie, and the
/// session's CSRF token on a change.
async fn as_page(browser: &Browser, method: &str, path: &str, body: Option<Value>) -> (u64, Value) {
    let csrf = js(browser, "return fetch('/v1/auth/me').then(r => r.json()).then(b => b.csrf_token)").await;
    let mut init = json!({ "method": method, "headers": { "X-CSRF-Token": csrf, "Content-Type": "application/json" } });
    if let Some(b) = body {
        init["body"] = json!(b.to_string());
    }
    let r = fetch(browser, path, init).await;
    let body = serde_json::from_str(r["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    (r["status"].as_u64().unwrap_or(0), body)
}

/// What each role may ask of the API, asked from the page with its cookie
/// and CSRF token as the dashboard asks: a request a role may not make is a
/// 403 `forbidden`, one it may gets the handler's own answer. A change
/// without the session's CSRF token is refused whoever asks. Returns what
/// differs, in words.
async fn api_reach(browser: &Browser, role: &str, call: i64) -> Vec<String> {
    const ALL: &[&str] = &["admin", "marketer", "manager"];
    const MONEY: &[&str] = &["admin", "marketer"];
    const CALLS: &[&str] = &["admin", "manager"];
    let today =
        js(browser, "return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Moscow' }).format(new Date())").await;
    let cost = json!([{ "date": today, "source": "e2e", "medium": "cpc", "campaign": "role-check", "cost": 1 }]);
    // Method, path, body, the roles that may, and what they are answered.
    type Ask<'a> = (&'a str, String, Option<Value>, &'a [&'a str], u64);
    let asks: Vec<Ask<'_>> = vec![
        ("GET", "/v1/auth/me".into(), None, ALL, 200),
        ("GET", "/v1/calls?site=shop".into(), None, ALL, 200),
        ("GET", format!("/v1/calls/{call}"), None, ALL, 200),
        ("GET", "/v1/tags?site=shop".into(), None, ALL, 200),
        ("GET", "/v1/calls.csv?site=shop".into(), None, MONEY, 200),
        ("GET", "/v1/reports/calls?site=shop".into(), None, MONEY, 200),
        ("GET", "/v1/reports/pools?site=shop".into(), None, MONEY, 200),
        ("GET", "/v1/exports?site=shop".into(), None, MONEY, 200),
        ("POST", "/v1/costs?site=shop".into(), Some(cost), MONEY, 200),
        ("GET", format!("/v1/calls/{call}/recording"), None, CALLS, 200),
        ("GET", format!("/v1/calls/{call}/notes"), None, CALLS, 200),
        ("POST", format!("/v1/calls/{call}/tags"), Some(json!({ "tag": "api-check" })), CALLS, 200),
        ("DELETE", format!("/v1/calls/{call}/tags/api-check"), None, CALLS, 200),
        ("GET", "/v1/promo/ACDEF?site=shop".into(), None, CALLS, 404),
        ("GET", "/v1/users".into(), None, &["admin"], 200),
        (
            "POST",
            "/v1/privacy/export".into(),
            Some(json!({ "site": "shop", "phone": "+79161234567" })),
            &["admin"],
            200,
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, who, ok) in asks {
        let (status, answer) = as_page(browser, method, &path, body).await;
        let want = if who.contains(&role) { ok } else { 403 };
        let forbidden = answer["error"]["code"] == "forbidden";
        if status != want || (want == 403) != forbidden {
            wrong.push(format!("{role} {method} {path}: {status} (want {want}) {answer}"));
        }
    }
    // The session's cookie alone changes nothing.
    let r = fetch(
        browser,
        &format!("/v1/calls/{call}/notes"),
        json!({ "method": "POST", "headers": { "Content-Type": "application/json" }, "body": json!({ "body": "x" }).to_string() }),
    )
    .await;
    let answer: Value = serde_json::from_str(r["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    if (&r["status"], &answer["error"]["code"]) != (&json!(403), &json!("csrf_token")) {
        wrong.push(format!("{role} POST notes without the CSRF token: {r}"));
    }
    wrong
}

/// A demo call with a recording, tags and a credited visit, by the admin token.
async fn recorded_call(browser: &Browser) -> i64 {
    let r = fetch(
        browser,
        "/v1/calls?site=shop&limit=200",
        json!({ "headers": { "Authorization": format!("Bearer {ADMIN_TOKEN}") } }),
    )
    .await;
    let list: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["recording_url"].is_string() && c["place"].is_object() && c["session_id"].is_string())
        .expect("a recorded demo call with a visit")["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn each_role_reaches_what_it_may_tags_notes_and_recordings() {
    check_vendor();
    let site = Site::start_demo(&format!("admin_token = \"{ADMIN_TOKEN}\""), &site_toml(), 7);
    let browser = Browser::launch().await;
    let mut problems = Vec::new();
    set_viewport(&browser, LAPTOP).await;
    browser.client.goto(&site.url("/dashboard/")).await.expect("dashboard");
    let call = recorded_call(&browser).await;

    for size in [LAPTOP, PHONE] {
        set_viewport(&browser, size).await;
        let w = size.width;

        // ---- marketer: reports, money, exports; callers masked.
        sign_in_as(&site, &browser, "marketer").await;
        assert_eq!(nav(&browser).await, json!(["calls", "sources", "pools", "money", "exports"]), "at {w}");
        assert_eq!(js(&browser, "return document.querySelector('#demo-banner').hidden").await, json!(false));
        let callers = js(&browser, "return [...document.querySelectorAll('#calls-table td.col-caller .v')].map(td => td.firstChild.textContent)").await;
        assert!(
            callers.as_array().unwrap().iter().all(|c| c.as_str().unwrap().contains('*') || c == "—"),
            "a marketer sees a caller: {callers}"
        );
        check_view(&browser, size, "calls-marketer", &mut problems).await;
        // The call's detail: no recording, no notes, no tag editing.
        hash(&browser, &format!("#call/{call}?site=shop")).await;
        browser.wait_for("document.querySelector('#call-detail .visitor-path')", WAIT).await;
        let parts = js(&browser, "return ['.recording', '.notes-box', '.add-tag', '.tag-editor', '.device'].map(s => Boolean(document.querySelector('#call-detail ' + s)))").await;
        assert_eq!(parts, json!([false, false, false, true, true]), "marketer's call detail at {w}");
        check_view(&browser, size, "call-marketer", &mut problems).await;
        // Asked anyway, the API refuses.
        let (status, body) =
            as_page(&browser, "POST", &format!("/v1/calls/{call}/tags"), Some(json!({ "tag": "sale" }))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
        problems.extend(api_reach(&browser, "marketer", call).await);

        // A preset and a filter, then a reload: the same period, filter and rows.
        // The view is aria-busy until its figures for the URL are in.
        hash(&browser, "#calls?site=shop&status=answered").await;
        browser
            .wait_for("!document.querySelector('#view-calls').hasAttribute('aria-busy') && document.querySelector('#calls-filter [name=status]').value === 'answered'", WAIT)
            .await;
        browser
            .client
            .find(Locator::Css("#period [name=period]"))
            .await
            .expect("the period menu")
            .select_by_value("yesterday")
            .await
            .expect("yesterday");
        browser
            .wait_for(
                "location.hash.includes('period=yesterday') && document.querySelector('#period-label').textContent.startsWith('Yesterday: ') && !document.querySelector('#view-calls').hasAttribute('aria-busy')",
                WAIT,
            )
            .await;
        const SEEN: &str = "return [location.hash, document.querySelector('#period [name=period]').value, document.querySelector('#calls-filter [name=status]').value, document.querySelector('#period-label').textContent, document.querySelector('#calls-summary').textContent, [...document.querySelectorAll('#calls-table tbody tr')].map(r => r.dataset.id)]";
        let before = js(&browser, SEEN).await;
        assert_eq!((&before[1], &before[2]), (&json!("yesterday"), &json!("answered")), "{before}");
        assert!(!before[5].as_array().unwrap().is_empty(), "yesterday's demo calls: {before}");
        // They are yesterday's answered calls on the site's calendar, as the API has them.
        let yesterday = js(&browser, "return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Moscow' }).format(new Date(Date.now() - 86400000))").await;
        let (_, listed) = as_page(
            &browser,
            "GET",
            &format!("/v1/calls?site=shop&status=answered&from={0}&to={0}", yesterday.as_str().unwrap()),
            None,
        )
        .await;
        let ids: Vec<Value> = listed["calls"].as_array().unwrap().iter().map(|c| json!(c["id"].to_string())).collect();
        assert_eq!(before[5], json!(ids), "{listed}");
        assert_policy_kept(&browser).await;
        browser.client.refresh().await.expect("reload");
        watch_policy(&browser).await;
        browser
            .wait_for("document.body.dataset.ready === '1' && !document.querySelector('#view-calls').hasAttribute('aria-busy')", WAIT)
            .await;
        let after = js(&browser, SEEN).await;
        let fetched = js(
            &browser,
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/v1/'))",
        )
        .await;
        assert_eq!(after, before, "the view after a reload at {w}; it fetched {fetched}");

        // A cost CSV with a bad row: the row is named and nothing is stored.
        hash(&browser, "#money?site=shop").await;
        browser.wait_for("!document.querySelector('#view-money').hidden", WAIT).await;
        type_into(
            &browser,
            "#cost-csv",
            "date,source,medium,campaign,cost\n2027-01-15,yandex,cpc,boilers,120.50\n2027-01-16,yandex,cpc,boilers,12O\n",
        )
        .await;
        click(&browser, "#cost-form button[type=submit]").await;
        browser.wait_for("document.querySelector('#cost-result table')", WAIT).await;
        let issues = js(
            &browser,
            "return [...document.querySelectorAll('#cost-result tbody tr')].map(r => [...r.cells].map(c => c.textContent))",
        )
        .await;
        assert_eq!(
            issues,
            json!([[
                "3",
                "cost",
                "\"12O\" is not a number (use '.' for decimals)",
                "2027-01-16,yandex,cpc,boilers,12O"
            ]]),
            "at {w}"
        );
        let said = js(&browser, "return document.querySelector('#cost-result').innerText").await;
        assert!(said.as_str().unwrap().contains("Nothing was stored: 1 problem"), "{said}");
        check_view(&browser, size, "money-marketer", &mut problems).await;
        // A link to a view the role does not open lands on one it does.
        hash(&browser, "#users?site=shop").await;
        browser.wait_for("document.querySelector('#status').textContent.includes('does not open Users')", WAIT).await;
        assert_eq!(js(&browser, "return document.body.dataset.view").await, "calls");
        hash(&browser, "#sources?site=shop").await;
        browser.wait_for("document.querySelector('#sources-chart canvas')", WAIT).await;
        assert_policy_kept(&browser).await;

        // ---- manager: calls with callers, recordings, tags, notes, promo.
        sign_in_as(&site, &browser, "manager").await;
        assert_eq!(nav(&browser).await, json!(["calls", "promo"]), "at {w}");
        let first =
            js(&browser, "return document.querySelector('#calls-table td.col-caller .v').firstChild.textContent").await;
        assert!(first.as_str().unwrap().starts_with("+7") && !first.as_str().unwrap().contains('*'), "{first}");
        check_view(&browser, size, "calls-manager", &mut problems).await;
        for path in ["/v1/reports/calls?site=shop", "/v1/exports?site=shop", "/v1/calls.csv?site=shop"] {
            let (status, body) = as_page(&browser, "GET", path, None).await;
            assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{path}: {body}");
        }
        problems.extend(api_reach(&browser, "manager", call).await);
        let (status, body) = as_page(&browser, "GET", "/v1/calls?site=elsewhere", None).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(js(&browser, "return document.querySelector('#csv-export').hidden").await, json!(true));

        // The recording plays from the collector.
        hash(&browser, &format!("#call/{call}?site=shop")).await;
        browser.wait_for("document.querySelector('#call-detail .recording audio') && document.querySelector('#call-detail .notes')", WAIT).await;
        // Muted, as a page may start it without a click; it plays until it
        // is a second in or ends.
        js(&browser, "const a = document.querySelector('#call-detail .recording audio'); window.played = { ended: false, failed: null }; a.addEventListener('ended', () => { window.played.ended = true; }); a.muted = true; a.play().catch(e => { window.played.failed = String(e); }); return true").await;
        browser
            .wait_for("(a => window.played.failed || a.error || a.currentTime > 1 || window.played.ended)(document.querySelector('#call-detail .recording audio'))", WAIT)
            .await;
        let audio = js(&browser, "const a = document.querySelector('#call-detail .recording audio'); return [a.currentTime, window.played.ended, a.duration, a.error && a.error.code, window.played.failed]").await;
        assert!(
            (audio[0].as_f64() > Some(1.0) || audio[1] == json!(true))
                && audio[2].as_f64() > Some(3.0)
                && audio[3].is_null()
                && audio[4].is_null(),
            "the recording did not play at {w}: [currentTime, ended, duration, error, play()] = {audio}"
        );
        js(&browser, "document.querySelector('#call-detail .recording audio').pause(); return true").await;
        // Where the visitor was and on what.
        let detail = js(&browser, "return document.querySelector('#call-detail').innerText").await;
        let detail = detail.as_str().unwrap();
        assert!(detail.contains("IP geolocation by DB-IP") && detail.contains("Device"), "{detail}");

        // Tag the call with a word of the team's own, then find it by it.
        let tag = format!("boiler {w}");
        type_into(&browser, "#call-detail .add-tag input", &tag).await;
        click(&browser, "#call-detail .add-tag button").await;
        browser
            .wait_for(
                &format!("document.querySelector('#call-detail .tag-editor').innerText.includes({})", json!(tag)),
                WAIT,
            )
            .await;
        // A note, and the chip in the table beside it.
        type_into(
            &browser,
            "#call-detail .add-note textarea",
            "Boiler pressure drops overnight; master booked for 10:00.",
        )
        .await;
        click(&browser, "#call-detail .add-note button").await;
        browser
            .wait_for(
                "document.querySelector('#call-detail .notes').innerText.includes('master booked for 10:00')",
                WAIT,
            )
            .await;
        check_view(&browser, size, "call-manager", &mut problems).await;
        hash(&browser, &format!("#calls?site=shop&tag={}", tag.replace(' ', "+"))).await;
        browser.wait_for("document.querySelectorAll('#calls-table tbody tr').length === 1", WAIT).await;
        let row = js(&browser, "return [document.querySelector('#calls-table tbody tr').dataset.id, document.querySelector('#calls-filter [name=tag]').value]").await;
        assert_eq!(row, json!([call.to_string(), tag]), "the tag filter at {w}");
        // Through the tag filter's own menu too.
        browser.client.refresh().await.expect("reload");
        browser.wait_for("document.querySelectorAll('#calls-table tbody tr').length === 1", WAIT).await;
        let chosen = js(&browser, "return document.querySelector('#calls-filter [name=tag]').value").await;
        assert_eq!(chosen, json!(tag));
        hash(&browser, "#promo?site=shop").await;
        browser.wait_for("!document.querySelector('#view-promo').hidden", WAIT).await;
        check_view(&browser, size, "promo-manager", &mut problems).await;

        // ---- admin: everything, the users view, the tag in the report.
        sign_in_as(&site, &browser, "admin").await;
        assert_eq!(
            nav(&browser).await,
            json!(["calls", "sources", "pools", "promo", "money", "exports", "users"]),
            "at {w}"
        );
        problems.extend(api_reach(&browser, "admin", call).await);
        hash(&browser, &format!("#sources?site=shop&tag={}", tag.replace(' ', "+"))).await;
        browser
            .wait_for("document.querySelector('#sources-note').textContent.includes('Only calls tagged')", WAIT)
            .await;
        let total =
            js(&browser, "return document.querySelector('#sources-table tfoot td.col-calls').textContent").await;
        assert_eq!(total, "1", "one call carries the tag");
        hash(&browser, "#users?site=shop").await;
        browser.wait_for("document.querySelectorAll('#users-table tbody tr').length === 3", WAIT).await;
        let name = format!("ivan{w}");
        type_into(&browser, "#user-form [name=username]", &name).await;
        type_into(&browser, "#user-form [name=sites]", "shop").await;
        type_into(&browser, "#user-form [name=password]", "ivan's password 123").await;
        click(&browser, "#user-form button[type=submit]").await;
        browser
            .wait_for(&format!("document.querySelector('#user-result').textContent.includes('Added {name}')"), WAIT)
            .await;
        browser.wait_for("document.querySelectorAll('#users-table tbody tr').length === 4", WAIT).await;
        check_view(&browser, size, "users", &mut problems).await;
        // The new user signs in as the manager of shop the form made them.
        sign_in_with(&site, &browser, &name, "ivan's password 123").await;
        assert_eq!(nav(&browser).await, json!(["calls", "promo"]), "{name} at {w}");
        let me = js(&browser, "return fetch('/v1/auth/me').then(r => r.json()).then(b => [b.role, b.sites])").await;
        assert_eq!(me, json!(["manager", ["shop"]]));
        sign_in_as(&site, &browser, "admin").await;
        hash(&browser, "#users?site=shop").await;
        browser.wait_for("document.querySelectorAll('#users-table tbody tr').length === 4", WAIT).await;
        click(&browser, &format!("#users-table button.remove-user[data-user={name}]")).await;
        browser.wait_for("document.querySelectorAll('#users-table tbody tr').length === 3", WAIT).await;
        assert_policy_kept(&browser).await;
        // Removed, they sign in no more.
        let login = json!({ "username": name, "password": "ivan's password 123" }).to_string();
        let r = fetch(
            &browser,
            "/v1/auth/login",
            json!({ "method": "POST", "headers": { "Content-Type": "application/json" }, "body": login }),
        )
        .await;
        assert_eq!(r["status"], 401, "{r}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    browser.close().await;
}

/// The admin sees the same pages as the others at both sizes: every view
/// that shows demo data carries the banner.
#[tokio::test(flavor = "current_thread")]
async fn the_demo_banner_is_on_every_view() {
    check_vendor();
    let site = Site::start_demo(&format!("admin_token = \"{ADMIN_TOKEN}\""), &site_toml(), 3);
    let browser = Browser::launch().await;
    for size in [LAPTOP, PHONE] {
        set_viewport(&browser, size).await;
        sign_in_as(&site, &browser, "admin").await;
        for view in ["calls", "sources", "pools", "promo", "money", "exports", "users"] {
            hash(&browser, &format!("#{view}?site=shop")).await;
            browser.wait_for(&format!("document.body.dataset.view === '{view}'"), WAIT).await;
            let banner = js(&browser, "const b = document.querySelector('#demo-banner'); return !b.hidden && b.getBoundingClientRect().height > 0 && b.textContent").await;
            assert!(banner.as_str().is_some_and(|t| t.contains("Demo data")), "{view} at {}: {banner}", size.width);
        }
    }
    browser.close().await;
}
