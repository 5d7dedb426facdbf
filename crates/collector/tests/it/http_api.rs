//! The `/v1/` API over real HTTP against a fresh database (the browser's
//! routes on both backends).

use crate::common::*;
use serde_json::{Value, json};

#[test]
fn site_config_is_public_and_normalised() {
    let h = start(
        "",
        "consent_required = true\nshow_number = { selector = \"#show\", label = \"Show\" }",
        "heartbeat_secs = 20\nhold_secs = 300",
    );
    let resp = h.client.get(h.url("/v1/sites/shop/config")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(
        body,
        json!({
            "site": "shop",
            "originals": [ORIGINAL],
            "consent_required": true,
            "show_number": { "selector": "#show", "label": "Show" },
            "heartbeat_secs": 20,
            "hold_secs": 300
        })
    );
    let (status, err) = {
        let r = h.client.get(h.url("/v1/sites/nope/config")).send().unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "unknown_site");
}

crate::on_both_backends! {
    the_visit_answer_carries_the_site_config => the_visit_answer_carries_the_site_config_on;
    without_consent_a_site_that_requires_it_stores_nothing => without_consent_a_site_that_requires_it_stores_nothing_on;
    paid_search_gets_a_lease_and_keeps_it => paid_search_gets_a_lease_and_keeps_it_on;
    returning_visitor_by_client_id_gets_the_same_number => returning_visitor_by_client_id_gets_the_same_number_on;
    static_and_original_routes => static_and_original_routes_on;
    crawlers_never_take_a_pool_number => crawlers_never_take_a_pool_number_on;
    show_number_button_leases_only_on_reveal => show_number_button_leases_only_on_reveal_on;
    heartbeat_renews_and_reports_a_gone_lease => heartbeat_renews_and_reports_a_gone_lease_on;
    page_views_are_recorded => page_views_are_recorded_on;
}

fn the_visit_answer_carries_the_site_config_on(backend: Backend) {
    let Some(h) = start_on(
        backend,
        "the_visit_answer_carries_the_site_config",
        "",
        "show_number = { selector = \"#show\", label = \"Show\" }",
        "",
    ) else {
        return;
    };
    let config: Value = h.client.get(h.url("/v1/sites/shop/config")).send().unwrap().json().unwrap();
    let answer = h.visit(None, paid());
    // One round trip: the page learns its originals, consent and show-number with its number.
    assert_eq!(answer["site"], config);
    assert_eq!(answer["site"]["originals"], json!([ORIGINAL]));
    // Behind the show-number button no lease is taken until the click.
    assert_eq!(answer["kind"], "original");
    let session = answer["session_id"].as_str().unwrap().to_owned();
    let mut click = visit_body(Some(&session), paid());
    click["reveal"] = json!(true);
    let (status, revealed) = h.post("/v1/sites/shop/visits", &click);
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["kind"], "lease");
    assert_eq!(revealed["session_id"], session.as_str());
}

fn without_consent_a_site_that_requires_it_stores_nothing_on(backend: Backend) {
    let Some(h) =
        start_on(backend, "without_consent_a_site_that_requires_it_stores_nothing", "", "consent_required = true", "")
    else {
        return;
    };
    let answer = h.visit(None, paid());
    assert_eq!(answer["kind"], "original", "{answer}");
    assert!(answer.get("session_id").is_none(), "no session without consent: {answer}");
    assert_eq!(answer["site"]["consent_required"], true);
    for table in ["sessions", "touches", "page_views", "leases"] {
        let n = h.scalar(&format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(n, 0, "{table} must stay empty before consent");
    }

    let mut body = visit_body(None, paid());
    body["consent"] = json!(true);
    let (status, consented) = h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200, "{consented}");
    assert_eq!(consented["kind"], "lease");
    assert!(consented["session_id"].is_string());
}

fn paid_search_gets_a_lease_and_keeps_it_on(backend: Backend) {
    let Some(h) = start_on(backend, "paid_search_gets_a_lease_and_keeps_it", "", "", "") else { return };
    let first = h.visit(None, paid());
    assert_eq!(first["kind"], "lease");
    assert_eq!(first["overflow"], false);
    assert_eq!(first["heartbeat_secs"], 60);
    let number = first["number"].as_str().unwrap().to_owned();
    assert!(POOL.contains(&number.as_str()));
    assert!(first["expires_at_ms"].as_i64().unwrap() > 0);
    let session = first["session_id"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 38, "16 hex digits of stamp, then 22 base64 characters of randomness");

    // The same session comes back (next page): same number.
    let again = h.visit(Some(&session), paid());
    assert_eq!(again["session_id"], session.as_str());
    assert_eq!(again["number"], number.as_str());

    // Other visitors get other numbers.
    let other = h.visit(None, paid());
    let third = h.visit(None, paid());
    let mut numbers =
        vec![number.clone(), other["number"].as_str().unwrap().into(), third["number"].as_str().unwrap().into()];
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "three visitors, three numbers");

    // The DB recorded sessions, touches and the landing page views.
    assert_eq!(h.scalar("SELECT COUNT(*) FROM sessions"), 3);
    assert_eq!(h.scalar("SELECT COUNT(*) FROM touches WHERE role = 'first'"), 3);
    assert_eq!(h.scalar("SELECT COUNT(*) FROM page_views"), 4);
    h.assert_no_number_leased_twice();
}

fn returning_visitor_by_client_id_gets_the_same_number_on(backend: Backend) {
    let Some(h) = start_on(backend, "returning_visitor_by_client_id_gets_the_same_number", "", "", "") else { return };
    let mut body = visit_body(None, paid());
    body["client_id"] = json!("GA1.1.123.456");
    let (_, first) = h.post("/v1/sites/shop/visits", &body);
    // New session (cookie storage lost), same GA client id.
    let (_, second) = h.post("/v1/sites/shop/visits", &body);
    assert_ne!(first["session_id"], second["session_id"]);
    assert_eq!(first["number"], second["number"]);
    let reasons = h.rows("SELECT end_reason FROM leases WHERE ended_at_ms IS NOT NULL");
    assert_eq!(reasons, [[Some("handed-over".to_owned())]]);
    h.assert_no_number_leased_twice();
}

fn static_and_original_routes_on(backend: Backend) {
    let Some(h) = start_on(backend, "static_and_original_routes", "", "", "") else { return };
    let insta = h.visit(None, touch("Organic Social", "instagram", "social"));
    assert_eq!(insta["kind"], "static");
    assert_eq!(insta["number"], "+74957000011");
    assert!(insta.get("expires_at_ms").is_none());
    let email = h.visit(None, touch("Email", "newsletter", "email"));
    assert_eq!(email["number"], "+74957000012");
    let direct = h.visit(None, touch("Direct", "(direct)", "(none)"));
    assert_eq!(direct["kind"], "original");
    assert!(direct.get("number").is_none());
    let leases = h.scalar("SELECT COUNT(*) FROM leases");
    assert_eq!(leases, 0, "static and original visits take no pool number");
}

fn crawlers_never_take_a_pool_number_on(backend: Backend) {
    let Some(h) = start_on(backend, "crawlers_never_take_a_pool_number", "", "", "") else { return };
    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; YandexBot/3.0)",
    ] {
        let (status, body) = h.post_with("/v1/sites/shop/visits", &visit_body(None, paid()), &[("user-agent", ua)]);
        assert_eq!(status, 200);
        assert_eq!(body["kind"], "original");
    }
    // A crawler on an Instagram link still sees the static number (no scarce resource).
    let (_, body) = h.post_with(
        "/v1/sites/shop/visits",
        &visit_body(None, touch("Organic Social", "instagram", "social")),
        &[("user-agent", "Googlebot")],
    );
    assert_eq!(body["kind"], "static");
    assert_eq!(h.scalar("SELECT COUNT(*) FROM leases"), 0);
    // A flag is 0/1 in SQLite and a boolean in PostgreSQL; both cast to 1.
    assert_eq!(h.scalar("SELECT COUNT(*) FROM sessions WHERE CAST(is_bot AS INTEGER) = 1"), 3);
}

fn show_number_button_leases_only_on_reveal_on(backend: Backend) {
    let Some(h) = start_on(
        backend,
        "show_number_button_leases_only_on_reveal",
        "",
        "show_number = { selector = \"#show\", label = \"Show number\" }",
        "",
    ) else {
        return;
    };
    let hidden = h.visit(None, paid());
    assert_eq!(hidden["kind"], "original");
    let session = hidden["session_id"].as_str().unwrap();
    let mut body = visit_body(Some(session), paid());
    body["reveal"] = json!(true);
    let (status, shown) = h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200);
    assert_eq!(shown["kind"], "lease");
    assert_eq!(shown["session_id"], session);
}

fn heartbeat_renews_and_reports_a_gone_lease_on(backend: Backend) {
    let Some(h) = start_on(backend, "heartbeat_renews_and_reports_a_gone_lease", "", "", "") else { return };
    let v = h.visit(None, paid());
    let session = v["session_id"].as_str().unwrap();
    let (status, beat) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": session }));
    assert_eq!(status, 200, "{beat}");
    assert_eq!(beat["number"], v["number"]);
    assert!(beat["expires_at_ms"].as_i64().unwrap() >= v["expires_at_ms"].as_i64().unwrap());

    // A session without a lease (direct visit): 410 lease_gone.
    let direct = h.visit(None, touch("Direct", "(direct)", "(none)"));
    let (status, err) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": direct["session_id"] }));
    assert_eq!(status, 410);
    assert_eq!(err["error"]["code"], "lease_gone");

    let (status, err) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": "never-seen-1234" }));
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "unknown_session");
}

fn page_views_are_recorded_on(backend: Backend) {
    let Some(h) = start_on(backend, "page_views_are_recorded", "", "", "") else { return };
    let v = h.visit(None, paid());
    let session = v["session_id"].as_str().unwrap();
    let (status, body) = h.post(
        "/v1/sites/shop/pageviews",
        &json!({ "session_id": session, "url": "https://shop.example/contacts", "title": "Contacts" }),
    );
    assert_eq!(status, 204, "{body}");
    assert!(session.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{session}");
    let latest =
        h.rows(&format!("SELECT url, title FROM page_views WHERE session_id = '{session}' ORDER BY id DESC LIMIT 1"));
    assert_eq!(latest, [[Some("https://shop.example/contacts".to_owned()), Some("Contacts".to_owned())]]);
    let (status, _) =
        h.post("/v1/sites/shop/pageviews", &json!({ "session_id": "unknown-session", "url": "https://x/" }));
    assert_eq!(status, 404);
}

#[test]
fn cors_allows_listed_origins_and_refuses_others() {
    let h = start("", "", "");
    let (status, _) =
        h.post_with("/v1/sites/shop/visits", &visit_body(None, paid()), &[("origin", "https://shop.example")]);
    assert_eq!(status, 200);
    let resp = h
        .client
        .post(h.url("/v1/sites/shop/visits"))
        .header("origin", "http://localhost:3000")
        .header("content-type", "text/plain")
        .body(visit_body(None, paid()).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "http://localhost:3000");
    assert_eq!(resp.headers()["vary"], "Origin");

    let (status, err) =
        h.post_with("/v1/sites/shop/visits", &visit_body(None, paid()), &[("origin", "https://evil.example")]);
    assert_eq!(status, 403);
    assert_eq!(err["error"]["code"], "origin_not_allowed");
    assert!(err["error"]["message"].as_str().unwrap().contains("\"https://evil.example\" to allowed_origins"), "{err}");
    // The page itself can read the refusal, to tell its owner what to change.
    let refused = h
        .client
        .post(h.url("/v1/sites/shop/visits"))
        .header("origin", "https://evil.example")
        .body(visit_body(None, paid()).to_string())
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["access-control-allow-origin"], "https://evil.example");
    // Refused before anything was stored.
    let sessions: i64 = h.db().query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(sessions, 2);

    // Same origin as the collector is not allowed unless the site says so.
    let own = format!("http://{}", h.server.addr);
    let (status, _) = h.post_with("/v1/sites/shop/visits", &visit_body(None, paid()), &[("origin", &own)]);
    assert_eq!(status, 403);

    // Preflight for application/json clients.
    let resp = h
        .client
        .request(reqwest::Method::OPTIONS, h.url("/v1/sites/shop/visits"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://shop.example");
    assert!(resp.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
}

#[test]
fn same_origin_pages_work_when_the_site_allows_it() {
    let h = start("", "allow_same_origin = true", "");
    let own = format!("http://{}", h.server.addr);
    let (status, body) = h.post_with("/v1/sites/shop/visits", &visit_body(None, paid()), &[("origin", &own)]);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn lease_requests_are_rate_limited_per_ip() {
    let h = start("[server.rate_limit]\nburst = 3\nper_minute = 1", "", "");
    for _ in 0..3 {
        let (status, _) = h.post("/v1/sites/shop/visits", &visit_body(None, touch("Direct", "(direct)", "(none)")));
        assert_eq!(status, 200);
    }
    let resp = h
        .client
        .post(h.url("/v1/sites/shop/visits"))
        .header("content-type", "text/plain")
        .body(visit_body(None, paid()).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let err: serde_json::Value = resp.json().unwrap();
    assert_eq!(err["error"]["code"], "rate_limited");
    // The config is not a lease request and is not limited (heartbeats have
    // a bucket of their own: client_limits.rs).
    assert_eq!(h.client.get(h.url("/v1/sites/shop/config")).send().unwrap().status(), 200);
}

#[test]
fn bad_input_is_a_json_4xx() {
    let h = start("", "", "");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/sites/shop/visits", "{".into(), 400, "bad_request"),
        ("/v1/sites/shop/visits", "[]".into(), 400, "bad_request"),
        ("/v1/sites/shop/visits", json!({ "page": { "url": "x" } }).to_string(), 400, "bad_request"),
        (
            "/v1/sites/shop/visits",
            {
                let mut b = visit_body(None, paid());
                b["extra"] = json!(1);
                b.to_string()
            },
            400,
            "bad_request",
        ),
        ("/v1/sites/shop/visits", visit_body(Some("bad id!"), paid()).to_string(), 400, "bad_request"),
        (
            "/v1/sites/shop/visits",
            {
                let mut b = visit_body(None, paid());
                b["touch"]["channel"] = json!("Carrier Pigeon");
                b.to_string()
            },
            400,
            "bad_request",
        ),
        ("/v1/sites/shop/visits", "x".repeat(64 * 1024), 413, "payload_too_large"),
        ("/v1/sites/nope/visits", visit_body(None, paid()).to_string(), 404, "unknown_site"),
        ("/v1/sites/shop/heartbeat", json!({}).to_string(), 400, "bad_request"),
        ("/v1/sites/shop/pageviews", json!({ "session_id": "abcdefgh" }).to_string(), 400, "bad_request"),
        ("/v1/sites/shop/nothing-here", "{}".into(), 404, "not_found"),
    ];
    for (path, body, want_status, want_code) in cases {
        let resp = h.client.post(h.url(path)).header("content-type", "text/plain").body(body.clone()).send().unwrap();
        let status = resp.status().as_u16();
        assert_eq!(resp.headers()["content-type"], "application/json", "{path} {body:.60}");
        let err: Value = resp.json().unwrap();
        assert_eq!(status, want_status, "{path} {body:.60}: {err}");
        assert_eq!(err["error"]["code"], want_code, "{path} {body:.60}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Wrong method on a known path is not a 5xx either.
    let resp = h.client.get(h.url("/v1/sites/shop/visits")).send().unwrap();
    assert!(resp.status().is_client_error());
}

#[test]
fn openapi_documents_every_route() {
    let h = start("", "", "");
    let resp = h.client.get(h.url("/v1/openapi.json")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in ringsource_collector::http::routes::ROUTES {
        let (method, path) = (&route.method, &route.path);
        let op = &paths.get(*path).unwrap_or_else(|| panic!("{path} missing from openapi.json"))[method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} missing from openapi.json");
        // And the route really is registered: it does not fall through to the 404 fallback.
        let url = h.url(&path.replace("{site}", "shop"));
        let resp = h
            .client
            .request(method.parse().unwrap(), url)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .unwrap();
        let body: Value = resp.json().unwrap_or(Value::Null);
        assert_ne!(body["error"]["code"], "not_found", "{method} {path} is not registered");
    }
    // Nothing documented that is not registered.
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                ringsource_collector::http::routes::ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not in http::routes::ROUTES"
            );
        }
    }
}

/// SQLite does not enforce foreign keys on the collector's connection
/// (storage/sqlite.rs); the harness checks every test's database instead,
/// and this is what that check finds: a page view naming no session.
#[test]
fn the_harness_finds_rows_that_name_a_missing_parent() {
    let h = start("", "", "");
    h.visit(None, paid());
    assert_eq!(h.orphans(), []);
    let conn = h.db();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO page_views (session_id, at_ms, url) VALUES ('nobody', 1, 'https://shop.example/');",
    )
    .unwrap();
    let orphans = h.orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!((orphans[0].0.as_str(), orphans[0].2.as_str()), ("page_views", "sessions"));
    conn.execute("DELETE FROM page_views WHERE session_id = 'nobody'", []).unwrap();
}

crate::on_both_backends! {
    promo_codes_are_unique_among_live_codes_under_load => promo_codes_under_load;
}

/// Promo-code visits from 8 threads at once on a site with 4-digit codes:
/// draws collide often, and each collision is drawn again, so every session
/// gets a code no other live session has; a session keeps its code.
fn promo_codes_under_load(backend: Backend) {
    let Some(h) = start_on(
        backend,
        "promo_codes_under_load",
        "[server.rate_limit]\nburst = 100000\nper_minute = 100000",
        "promo = { fallback = true, length = 4 }",
        "",
    ) else {
        return;
    };
    let h = std::sync::Arc::new(h);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let h = std::sync::Arc::clone(&h);
            std::thread::spawn(move || {
                (0..25).map(|_| h.visit(None, touch("Referral", "blog.example", "referral"))).collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<Value> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let h = std::sync::Arc::try_unwrap(h).unwrap_or_else(|_| panic!("threads still hold the harness"));
    assert!(answers.iter().all(|a| a["kind"] == "promo"), "every visitor got a code");
    let mut codes: Vec<&str> = answers.iter().map(|a| a["promo_code"].as_str().unwrap()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 200, "no code went to two sessions");
    let twice = h.scalar(
        "SELECT COUNT(*) FROM (SELECT site_id, code FROM promo_codes WHERE CAST(retired AS INTEGER) = 0
         GROUP BY site_id, code HAVING COUNT(*) > 1) AS d",
    );
    assert_eq!(twice, 0, "no two live codes are equal");
    let first = &answers[0];
    let again = h.visit(first["session_id"].as_str(), touch("Referral", "blog.example", "referral"));
    assert_eq!(again["promo_code"], first["promo_code"], "a session keeps its code");
}
