//! A real SIP call, end to end: a Google Ads visitor in headless Chromium
//! gets a pool number, sipp dials that number through Kamailio running the
//! shipped `examples/kamailio/kamailio.cfg`, Kamailio reports the dialog to
//! the collector with `http_client`, and the calls API shows the call
//! attributed to the visit, down to the keyword.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringsource_tests::pbx::{Kamailio, Sipp};
use ringsource_tests::{Browser, Site};
use serde_json::Value;

const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";
const KAMAILIO_TOKEN: &str = "e2e-kamailio-token-0123456789";

const FROM_GOOGLE_ADS: &str =
    "/demo/shop.html?utm_source=google&utm_medium=cpc&utm_campaign=sofas&utm_term=buy+sofa&gclid=e2e";
// Generous: CI shares two cores between Chromium, chromedriver, Kamailio,
// sipp and the collector.
const WAIT: Duration = Duration::from_secs(40);

fn site_toml() -> String {
    format!(
        r#"
target_call_secs = 2
pbx_secrets = {{ kamailio = "{KAMAILIO_TOKEN}" }}

[[sites.pools]]
id = "paid"
numbers = ["+7 495 700-00-01", "+7 495 700-00-02", "+7 495 700-00-03"]
rules = [{{ channel = "Paid Search" }}]
"#
    )
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// `GET path` with the admin token: (status, JSON body).
fn admin_get(site: &Site, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(site.server.addr).expect("connect to the collector");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nAccept: application/json\r\n\r\n",
        site.server.addr
    )
    .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head}"));
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {status} {body}: {e}"));
    (status, json)
}

#[tokio::test(flavor = "current_thread")]
async fn a_sip_call_through_kamailio_is_attributed_to_the_google_ads_visit() {
    let site = Site::start_with(&format!("admin_token = \"{ADMIN_TOKEN}\""), &site_toml(), "");
    // The PBX: the answering side (sipp) behind Kamailio, which reports
    // each dialog to the collector's Kamailio webhook.
    let mut uas = Sipp::uas();
    let kamailio = Kamailio::start(&site.url("/v1/sites/shop/pbx/kamailio"), KAMAILIO_TOKEN, uas.port);

    // The visitor: a Google Ads click with a keyword; the page shows a pool number.
    let browser = Browser::launch().await;
    browser.client.goto(&site.page(FROM_GOOGLE_ADS)).await.expect("page opens");
    let outcome = browser.wait_for("window.ringsource && window.ringsource.outcome", WAIT).await;
    assert_eq!(outcome["kind"], "lease", "{outcome}");
    let session = outcome["session_id"].as_str().expect("a session id").to_owned();
    let header = browser
        .wait_for("document.getElementById('header').textContent.includes('700-00-0') && document.getElementById('header').textContent", WAIT)
        .await;
    let dialled = digits(header.as_str().expect("header text"));
    let leases = site.live_leases();
    assert_eq!(leases, vec![(session.clone(), format!("+{dialled}"))], "the page shows {header}");

    // The caller dials the digits the visitor saw, talks, hangs up.
    // Kamailio reports whole Unix seconds ($TS): a call in the same second
    // as the lease would ring "before" it. A visitor takes longer to dial.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut uac = Sipp::call(&dialled, kamailio.sip_port);
    let logs = |uac: &Sipp, uas: &Sipp| format!("{}\n{}\n{}", uac.report(), uas.report(), kamailio.process.tail(60));
    match uac.process.wait(Duration::from_secs(40)) {
        Some(status) if status.success() => {}
        Some(status) => panic!("the sipp caller failed ({status})\n{}", logs(&uac, &uas)),
        None => panic!("the sipp call did not finish within 40 s\n{}", logs(&uac, &uas)),
    }
    if !uas.process.wait(Duration::from_secs(10)).is_some_and(|s| s.success()) {
        panic!("the sipp answering side did not finish cleanly\n{}", logs(&uac, &uas));
    }

    // The call, once Kamailio's end report is in.
    let deadline = Instant::now() + Duration::from_secs(20);
    let call = loop {
        let (status, list) = admin_get(&site, "/v1/calls?site=shop");
        assert_eq!(status, 200, "{list}");
        if let Some(call) = list["calls"].as_array().and_then(|c| c.first())
            && !call["ended_at_ms"].is_null()
        {
            assert_eq!(list["total"], 1, "one SIP call, one call: {list}");
            break call.clone();
        }
        if Instant::now() >= deadline {
            panic!("no ended call in the API within 20 s: {list}\n{}", logs(&uac, &uas));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all = format!("{call:#}\n{}", logs(&uac, &uas));
    assert_eq!(call["pbx"], "kamailio", "{all}");
    assert_eq!(call["dialled"].as_str(), Some(format!("+{dialled}").as_str()), "{all}");
    assert!(digits(call["caller"].as_str().unwrap_or_default()).ends_with("9161234567"), "{all}");
    assert_eq!(call["number_kind"], "pool", "{all}");
    assert_eq!(call["pool_id"], "paid", "{all}");
    assert_eq!(call["session_id"].as_str(), Some(session.as_str()), "{all}");
    assert_eq!(call["confidence"], "high", "{all}");
    assert_eq!(call["source"], "google", "{all}");
    assert_eq!(call["medium"], "cpc", "{all}");
    assert_eq!(call["channel"], "Paid Search", "{all}");
    assert_eq!(call["campaign"], "sofas", "{all}");
    assert_eq!(call["term"], "buy sofa", "{all}");
    assert_eq!(call["status"], "answered", "{all}");
    assert_eq!(call["missed"], false, "{all}");
    assert_eq!(call["target"], true, "{all}");
    let talk = call["talk_secs"].as_i64().unwrap_or_else(|| panic!("no talk time\n{all}"));
    assert!(talk >= 2, "talk time {talk} s\n{all}");
    let duration = call["duration_secs"].as_i64().unwrap_or_else(|| panic!("no duration\n{all}"));
    assert!(duration >= talk, "duration {duration} s, talk {talk} s\n{all}");

    // The detail: the visitor's path from the landing page, and Kamailio's
    // three reports.
    let id = call["id"].as_i64().expect("call id");
    let (status, detail) = admin_get(&site, &format!("/v1/calls/{id}"));
    assert_eq!(status, 200, "{detail}");
    let all = format!("{detail:#}");
    assert_eq!(detail["attribution"]["chosen_session_id"].as_str(), Some(session.as_str()), "{all}");
    let visitor = &detail["visitor"];
    assert_eq!(visitor["session_id"].as_str(), Some(session.as_str()), "{all}");
    assert_eq!(visitor["keyword"], "buy sofa", "{all}");
    let landing = visitor["landing_page"].as_str().unwrap_or_else(|| panic!("no landing page\n{all}"));
    assert!(landing.contains("/demo/shop.html?"), "{all}");
    for part in ["utm_source=google", "utm_medium=cpc", "utm_campaign=sofas", "utm_term=buy", "gclid=e2e"] {
        assert!(landing.contains(part), "landing page lacks {part}\n{all}");
    }
    let touch = &visitor["touches"][0];
    assert_eq!(touch["term"], "buy sofa", "{all}");
    assert_eq!(touch["click_id"], "e2e", "{all}");
    let events = detail["events"].as_array().unwrap_or_else(|| panic!("no events\n{all}"));
    assert_eq!(events.len(), 3, "start, answer, end\n{all}");

    drop(kamailio);
    browser.close().await;
}
