//! The security headers of the API, the dashboard and the public bundle, and
//! the 405 that a known path answers for a method it does not take.

use crate::common::*;
use ringsource_collector::http::edge::{API_CSP, DASHBOARD_CSP};
use serde_json::Value;

fn header(resp: &crate::common::http::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// The folders the static routes serve, with a dashboard page and a bundle.
fn with_static_files(h: &Harness) {
    let dir = h.db.parent().unwrap();
    std::fs::create_dir_all(dir.join("www/dashboard")).unwrap();
    std::fs::write(dir.join("www/dashboard/index.html"), "<!doctype html><title>d</title>").unwrap();
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("pkg/tag.js"), "import('ringsource.js'); fetch('ringsource_bg.wasm');").unwrap();
    std::fs::write(dir.join("pkg/ringsource.js"), "export default 1;").unwrap();
    std::fs::write(dir.join("pkg/ringsource_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
}

#[test]
fn the_api_and_the_dashboard_forbid_framing_sniffing_and_referrers() {
    let h = start("", "", "");
    with_static_files(&h);
    let (status, _) = h.post("/v1/sites/shop/visits", &visit_body(None, paid()));
    assert_eq!(status, 200);
    for (method, path, status) in [
        ("GET", "/v1/sites/shop/config", 200),
        ("POST", "/v1/sites/shop/visits", 200),
        ("GET", "/v1/openapi.json", 200),
        ("GET", "/v1/calls", 401),
        ("GET", "/v1/nothing", 404),
        ("DELETE", "/v1/calls", 405),
    ] {
        let resp = h
            .client
            .request(method.parse().unwrap(), h.url(path))
            .body(visit_body(None, paid()).to_string())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        assert_eq!(header(&resp, "content-security-policy").as_deref(), Some(API_CSP), "{method} {path}");
        assert!(API_CSP.contains("frame-ancestors 'none'"));
        assert_eq!(header(&resp, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header(&resp, "referrer-policy").as_deref(), Some("no-referrer"), "{path}");
    }

    let resp = h.client.get(h.url("/dashboard/")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let csp = header(&resp, "content-security-policy").unwrap();
    assert_eq!(csp, DASHBOARD_CSP);
    for directive in ["frame-ancestors 'none'", "script-src 'self'", "default-src 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(header(&resp, "x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header(&resp, "referrer-policy").as_deref(), Some("no-referrer"));

    // The loader and the bundle stay loadable from any page: no policy of
    // their own, readable and embeddable cross-origin.
    for path in ["/ringsource.js", "/pkg/ringsource_bg.wasm"] {
        let resp = h.client.get(h.url(path)).header("origin", "https://customer.example").send().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "access-control-allow-origin").as_deref(), Some("*"), "{path}");
        assert_eq!(header(&resp, "cross-origin-resource-policy").as_deref(), Some("cross-origin"), "{path}");
        assert_eq!(header(&resp, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header(&resp, "content-security-policy"), None, "{path}");
    }
}

#[test]
fn a_known_path_with_another_method_is_405_with_allow() {
    let h = start("", "", "");
    with_static_files(&h);
    for (method, path, allow) in [
        ("GET", "/v1/sites/shop/visits", "POST, OPTIONS"),
        ("PUT", "/v1/sites/shop/config", "GET, OPTIONS"),
        ("DELETE", "/v1/sites/shop/heartbeat", "POST, OPTIONS"),
        ("GET", "/v1/sites/shop/pageviews", "POST, OPTIONS"),
        ("DELETE", "/v1/calls", "GET"),
        ("POST", "/v1/calls/12", "GET"),
        ("GET", "/v1/calls/12/promo", "POST"),
        ("PATCH", "/v1/costs", "POST"),
        ("GET", "/v1/revenue", "POST"),
        ("POST", "/v1/openapi.json", "GET"),
        ("GET", "/v1/exports/3/retry", "POST"),
        ("PUT", "/v1/sites/shop/pbx/generic", "POST"),
        ("DELETE", "/v1/sites/shop/pbx/zadarma", "POST, GET"),
        ("GET", "/v1/sites/shop/pbx/mango/events/call", "POST"),
        ("POST", "/demo/index.html", "GET, HEAD"),
    ] {
        let resp = h.client.request(method.parse().unwrap(), h.url(path)).send().unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(header(&resp, "allow").as_deref(), Some(allow), "{method} {path}");
        assert_eq!(header(&resp, "content-type").as_deref(), Some("application/json"), "{method} {path}");
        let err: Value = resp.json().unwrap();
        assert_eq!(err["error"]["code"], "method_not_allowed", "{method} {path}");
        assert!(err["error"]["message"].as_str().unwrap().contains(path), "{err}");
    }
    // A path the API does not have is still 404.
    let resp = h.client.post(h.url("/v1/sites/shop/nothing-here")).send().unwrap();
    assert_eq!(resp.status(), 404);
    // Browsers' preflights still work where they are declared.
    let resp = h
        .client
        .request(reqwest::Method::OPTIONS, h.url("/v1/sites/shop/visits"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
}
