//! Who a request comes from, over HTTP: the rate limits per client (an IPv4
//! address or an IPv6 /64), the address a trusted proxy appended (the
//! rightmost entry, never one the client wrote), the limit on heartbeats and
//! page views, and the same-origin check with and without trusted headers.

use crate::common::*;
use serde_json::json;

fn direct() -> serde_json::Value {
    visit_body(None, touch("Direct", "(direct)", "(none)"))
}

fn visit_from(h: &Harness, headers: &[(&str, &str)]) -> u16 {
    h.post_with("/v1/sites/shop/visits", &direct(), headers).0
}

#[test]
fn ipv6_clients_are_limited_per_slash_64() {
    let h = start("trust_forwarded_for = true\n[server.rate_limit]\nburst = 2\nper_minute = 1", "", "");
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "2001:db8:1:2::1")]), 200);
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "2001:db8:1:2:ffff:ffff:ffff:fffe")]), 200);
    // A third address of the same /64 shares its bucket.
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "2001:db8:1:2:abcd::3")]), 429);
    // The next /64 is another client; so is an IPv4 address.
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "2001:db8:1:3::1")]), 200);
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "198.51.100.7")]), 200);
}

#[test]
fn the_client_is_the_entry_the_trusted_proxy_appended() {
    let h = start("trust_forwarded_for = true\n[server.rate_limit]\nburst = 1\nper_minute = 1", "", "");
    // The loopback peer is the trusted proxy; 198.51.100.7 is what it appended.
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]), 200);
    // A new client-written entry on the left does not make a new client.
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "7.7.7.7, 198.51.100.7")]), 429);
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "198.51.100.7")]), 429);
    // The client naming 198.51.100.7 on the left is still itself.
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "198.51.100.7, 198.51.100.8")]), 200);
    // A Forwarded header is not what this proxy writes: the peer is the client.
    assert_eq!(visit_from(&h, &[("forwarded", "for=203.0.113.1")]), 200);
    assert_eq!(visit_from(&h, &[("forwarded", "for=203.0.113.2")]), 429);
}

#[test]
fn forwarded_for_is_read_when_the_proxy_writes_it() {
    let h = start(
        "trust_forwarded_for = true\nforwarded_header = \"forwarded\"\n[server.rate_limit]\nburst = 1\nper_minute = 1",
        "",
        "",
    );
    assert_eq!(visit_from(&h, &[("forwarded", "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https")]), 200);
    assert_eq!(visit_from(&h, &[("forwarded", "for=2001:db8::8, for=\"[2001:db8::9]\"")]), 429, "same /64");
    assert_eq!(visit_from(&h, &[("forwarded", "for=198.51.100.7")]), 200);
    // X-Forwarded-For is not what this proxy writes.
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "203.0.113.1")]), 200);
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "203.0.113.2")]), 429);
}

#[test]
fn without_trust_forwarded_headers_change_nothing() {
    let h = start("[server.rate_limit]\nburst = 1\nper_minute = 1", "", "");
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "198.51.100.7")]), 200);
    assert_eq!(visit_from(&h, &[("x-forwarded-for", "198.51.100.8")]), 429);
    assert_eq!(visit_from(&h, &[("forwarded", "for=198.51.100.9")]), 429);
}

#[test]
fn heartbeats_and_page_views_share_a_bucket_of_their_own() {
    let h = start("[server.rate_limit]\nsession_burst = 3\nsession_per_minute = 1", "", "");
    let v = h.visit(None, paid());
    let session = v["session_id"].as_str().unwrap();
    let beat = json!({ "session_id": session });
    let view = json!({ "session_id": session, "url": "https://shop.example/contacts" });
    assert_eq!(h.post("/v1/sites/shop/heartbeat", &beat).0, 200);
    assert_eq!(h.post("/v1/sites/shop/pageviews", &view).0, 204);
    assert_eq!(h.post("/v1/sites/shop/heartbeat", &beat).0, 200);
    let (status, err) = h.post("/v1/sites/shop/heartbeat", &beat);
    assert_eq!((status, &err["error"]["code"]), (429, &json!("rate_limited")), "{err}");
    assert_eq!(h.post("/v1/sites/shop/pageviews", &view).0, 429);
    // Visits have their own bucket.
    assert_eq!(h.visit(Some(session), paid())["number"], v["number"]);
    // Nothing refused was written: one page view for the visit, one for
    // the view, one for the second visit.
    let views: i64 =
        h.db().query_row("SELECT COUNT(*) FROM page_views WHERE session_id = ?1", [session], |r| r.get(0)).unwrap();
    assert_eq!(views, 3);
}

#[test]
fn same_origin_without_trust_is_the_address_the_collector_was_reached_at() {
    let h = start("", "allow_same_origin = true", "");
    let own = format!("http://{}", h.server.addr);
    assert_eq!(visit_from(&h, &[("origin", &own)]), 200);
    let localhost = format!("http://localhost:{}", h.server.addr.port());
    assert_eq!(visit_from(&h, &[("origin", &localhost)]), 200);
    // A page whose name resolves to the collector (DNS rebinding) sends its
    // own name as Host; neither Host nor forwarded hosts are believed.
    let host = format!("rebound.example:{}", h.server.addr.port());
    let rebound = format!("http://{host}");
    assert_eq!(visit_from(&h, &[("origin", &rebound), ("host", &host)]), 403);
    assert_eq!(
        visit_from(
            &h,
            &[
                ("origin", "https://calls.example"),
                ("x-forwarded-host", "calls.example"),
                ("x-forwarded-proto", "https")
            ]
        ),
        403
    );
    assert_eq!(
        visit_from(&h, &[("origin", "https://calls.example"), ("forwarded", "host=calls.example;proto=https")]),
        403
    );
}

/// On a listener bound to every address, the own origin is the address
/// each connection arrived at, not the listener's `0.0.0.0`.
#[test]
fn same_origin_on_a_wildcard_listener_is_the_address_connected_to() {
    let dir = tempfile::tempdir().unwrap();
    let text = site_toml(&dir.path().join("ringsource.sqlite"), "", "allow_same_origin = true", "");
    let config = ringsource_collector::config::Config::from_toml_str(
        &text,
        std::path::Path::new("test.toml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap();
    let clock = std::sync::Arc::new(ringsource_collector::clock::SystemClock);
    let server = ringsource_collector::server::spawn(config, "0.0.0.0:0".parse().unwrap(), clock).unwrap();
    assert!(server.addr.ip().is_unspecified(), "{}", server.addr);
    let port = server.addr.port();
    let client = reqwest::blocking::Client::builder().user_agent(BROWSER_UA).build().unwrap();
    let visit = |origin: &str| {
        client
            .post(format!("http://127.0.0.1:{port}/v1/sites/shop/visits"))
            .header("content-type", "text/plain")
            .header("origin", origin)
            .body(direct().to_string())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(visit(&format!("http://127.0.0.1:{port}")), 200);
    assert_eq!(visit(&format!("http://localhost:{port}")), 200);
    assert_eq!(visit(&format!("http://0.0.0.0:{port}")), 403);
}

#[test]
fn same_origin_behind_a_trusted_proxy_is_the_forwarded_host() {
    let h = start("trust_forwarded_for = true", "allow_same_origin = true", "");
    let forwarded = [("x-forwarded-host", "calls.example"), ("x-forwarded-proto", "https")];
    let with = |origin: &str| {
        let mut headers = vec![("origin", origin)];
        headers.extend_from_slice(&forwarded);
        visit_from(&h, &headers)
    };
    assert_eq!(with("https://calls.example"), 200);
    assert_eq!(with("http://calls.example"), 403);
    assert_eq!(with("https://evil.example"), 403);
    // Without forwarded host, the Host the proxy passed on, over http.
    let own = format!("http://{}", h.server.addr);
    assert_eq!(visit_from(&h, &[("origin", &own)]), 200);
    assert_eq!(visit_from(&h, &[("origin", "http://calls.example"), ("host", "calls.example")]), 200);
    // Without allow_same_origin, the forwarded host is nobody's origin.
    let strict = start("trust_forwarded_for = true", "", "");
    let mut headers = vec![("origin", "https://calls.example")];
    headers.extend_from_slice(&forwarded);
    assert_eq!(visit_from(&strict, &headers), 403);
}

fn config(server_extra: &str, pool: &str) -> Result<ringsource_collector::config::Config, Vec<(String, String)>> {
    let text = site_toml(std::path::Path::new("/tmp/x/ringsource.sqlite"), server_extra, "", pool);
    ringsource_collector::config::Config::from_toml_str(
        &text,
        std::path::Path::new("limits.toml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .map_err(|e| e.issues.iter().map(|i| (i.path.clone(), i.reason.clone())).collect())
}

#[test]
fn limits_and_shares_are_checked_with_their_paths() {
    let ok = config("", "").unwrap();
    let pool = &ok.sites[0].pools[0];
    assert_eq!((pool.shares.client, pool.shares.network, pool.shares.provider), (0.2, 0.4, 0.6));
    assert_eq!(pool.heartbeat_only_secs, 1800);
    assert_eq!((ok.server.rate_limit.session_burst, ok.server.rate_limit.session_per_minute), (120, 240));
    assert_eq!(ok.server.forwarded_header, ringsource_collector::config::ForwardedHeader::XForwardedFor);

    let err = config("", "client_share = 0\nprovider_share = 1.5\nheartbeat_only_secs = 600").unwrap_err();
    let paths: Vec<&str> = err.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["sites[0].pools[0].client_share", "sites[0].pools[0].provider_share", "sites[0].pools[0].heartbeat_only_secs"],
        "{err:?}"
    );
    assert!(err[2].1.contains("at least hold_secs (900)"), "{err:?}");

    let err = config("[server.rate_limit]\nsession_burst = 0", "").unwrap_err();
    assert_eq!(err[0].0, "server.rate_limit", "{err:?}");
    let err = config("forwarded_header = \"x-real-ip\"", "").unwrap_err();
    assert!(err[0].1.contains("unknown variant"), "{err:?}");
}
