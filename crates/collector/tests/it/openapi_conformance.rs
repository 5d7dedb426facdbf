//! The served OpenAPI document against the server's real answers to bad
//! input: every answer's status is one the operation declares, its error
//! code is one the document lists for that status, and a method the
//! document does not list for a path is 405 with exactly the listed ones
//! in `Allow`. No bad input gets a 5xx. On both backends: unknown calls,
//! sessions, promo codes, exports and callers are found missing by the
//! store.

use std::collections::BTreeSet;

use crate::common::*;
use crate::pbx_support::all_adapters;
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-for-tests-0123";

struct Doc(Value);

impl Doc {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => r.trim_start_matches("#/").split('/').fold(&self.0, |node, key| &node[key]),
            None => schema,
        }
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.0["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not in the document");
        op
    }

    fn methods(&self, template: &str) -> BTreeSet<String> {
        self.0["paths"][template].as_object().unwrap().keys().map(|m| m.to_uppercase()).collect()
    }

    /// The error codes the document allows for this status, from the
    /// response schema (`allOf` of `Error` and an `enum` of codes).
    fn codes(&self, response: &Value) -> BTreeSet<String> {
        let schema = self.resolve(&response["content"]["application/json"]["schema"]);
        let parts: Vec<&Value> = match schema["allOf"].as_array() {
            Some(all) => all.iter().map(|s| self.resolve(s)).collect(),
            None => vec![schema],
        };
        let mut narrowest: Option<BTreeSet<String>> = None;
        for part in parts {
            if let Some(names) = part["properties"]["error"]["properties"]["code"]["enum"].as_array() {
                let names: BTreeSet<String> = names.iter().map(|n| n.as_str().unwrap().to_owned()).collect();
                narrowest = Some(match narrowest {
                    Some(n) => n.intersection(&names).cloned().collect(),
                    None => names,
                });
            }
        }
        narrowest.unwrap_or_default()
    }

    /// Panics unless the answer is one the document declares.
    fn check(&self, case: &str, method: &str, template: &str, status: u16, body: &Value) {
        assert!(status < 500, "{case}: bad input got {status}: {body}");
        let op = self.operation(method, template);
        let response = &op["responses"][status.to_string()];
        assert!(response.is_object(), "{case}: {status} is not declared for {method} {template}: {body}");
        if status >= 400 {
            let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("{case}: no error code in {body}"));
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {body}");
            let codes = self.codes(response);
            assert!(codes.contains(code), "{case}: {method} {template} {status} {code:?} is not among {codes:?}");
        }
    }
}

/// One bad request: what it is, the documented operation, and how to send it.
struct Case {
    name: &'static str,
    method: &'static str,
    template: &'static str,
    path: String,
    admin: bool,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

fn case(name: &'static str, method: &'static str, template: &'static str, path: &str) -> Case {
    Case { name, method, template, path: path.to_owned(), admin: true, headers: Vec::new(), body: None }
}

impl Case {
    fn anonymous(mut self) -> Self {
        self.admin = false;
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

crate::on_both_backends! {
    answers_to_bad_input_are_what_the_document_declares => answers_to_bad_input_are_what_the_document_declares_on;
}

fn answers_to_bad_input_are_what_the_document_declares_on(backend: Backend) {
    let server = format!("admin_token = \"{TOKEN}\"\n[server.rate_limit]\nburst = 10000\nper_minute = 10000");
    let test = "answers_to_bad_input_are_what_the_document_declares";
    let Some(h) = start_on(backend, test, &server, &all_adapters(), "") else { return };
    let doc = Doc(h.client.get(h.url("/v1/openapi.json")).send().unwrap().json().unwrap());
    let session = h.visit(None, paid())["session_id"].as_str().unwrap().to_owned();
    let visit = visit_body(None, paid()).to_string();
    let mut long_field = visit_body(None, paid());
    long_field["touch"]["campaign"] = json!(long(2000));

    const VISITS: &str = "/v1/sites/{site}/visits";
    const BEAT: &str = "/v1/sites/{site}/heartbeat";
    const VIEWS: &str = "/v1/sites/{site}/pageviews";
    const CONFIG: &str = "/v1/sites/{site}/config";
    const PBX: &str = "/v1/sites/{site}/pbx/{adapter}";
    const MANGO: &str = "/v1/sites/{site}/pbx/mango/events/{event}";
    const ZADARMA: &str = "/v1/sites/{site}/pbx/zadarma";
    let cases = vec![
        case("unknown site", "GET", CONFIG, "/v1/sites/nope/config"),
        case("foreign origin", "GET", CONFIG, "/v1/sites/shop/config").header("origin", "https://evil.example"),
        case("broken JSON", "POST", VISITS, "/v1/sites/shop/visits").body("{"),
        case("JSON of another shape", "POST", VISITS, "/v1/sites/shop/visits").body("[1,2]"),
        case("unknown field", "POST", VISITS, "/v1/sites/shop/visits").body(r#"{"touch":1,"page":{"url":"x"},"x":1}"#),
        case("field too long", "POST", VISITS, "/v1/sites/shop/visits").body(long_field.to_string()),
        case("body too large", "POST", VISITS, "/v1/sites/shop/visits").body(long(64 * 1024)),
        case("unknown site", "POST", VISITS, "/v1/sites/nope/visits").body(visit.clone()),
        case("foreign origin", "POST", VISITS, "/v1/sites/shop/visits")
            .body(visit.clone())
            .header("origin", "https://evil.example"),
        case("bad session id", "POST", BEAT, "/v1/sites/shop/heartbeat").body(r#"{"session_id":"no!"}"#),
        case("unknown session", "POST", BEAT, "/v1/sites/shop/heartbeat").body(r#"{"session_id":"abcdefgh12"}"#),
        case("broken JSON", "POST", BEAT, "/v1/sites/shop/heartbeat").body("nope"),
        case("body too large", "POST", BEAT, "/v1/sites/shop/heartbeat").body(long(64 * 1024)),
        case("unknown session", "POST", VIEWS, "/v1/sites/shop/pageviews")
            .body(r#"{"session_id":"abcdefgh12","url":"https://shop.example/"}"#),
        case("url too long", "POST", VIEWS, "/v1/sites/shop/pageviews")
            .body(json!({ "session_id": session, "url": long(5000) }).to_string()),
        case("missing url", "POST", VIEWS, "/v1/sites/shop/pageviews")
            .body(json!({ "session_id": session }).to_string()),
        // PBX webhooks.
        case("unknown adapter", "POST", PBX, "/v1/sites/shop/pbx/nope").body("{}"),
        case("unknown site", "POST", PBX, "/v1/sites/nope/pbx/generic").body("{}"),
        case("unsigned", "POST", PBX, "/v1/sites/shop/pbx/generic").body("{}").anonymous(),
        case("bad signature", "POST", PBX, "/v1/sites/shop/pbx/generic")
            .body("{}")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", &now_secs().to_string())
            .header("webhook-signature", "v1,AAAA"),
        case("stale", "POST", PBX, "/v1/sites/shop/pbx/generic")
            .body("{}")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", "1000")
            .header("webhook-signature", "v1,AAAA"),
        case("body too large", "POST", PBX, "/v1/sites/shop/pbx/generic").body(long(300 * 1024)),
        case("kamailio without token", "POST", PBX, "/v1/sites/shop/pbx/kamailio").body("{}").anonymous(),
        case("mango unsigned", "POST", MANGO, "/v1/sites/shop/pbx/mango/events/call").body("json=%7B%7D"),
        case("mango unknown site", "POST", MANGO, "/v1/sites/nope/pbx/mango/events/call").body("json=%7B%7D"),
        case("zadarma without echo", "GET", ZADARMA, "/v1/sites/shop/pbx/zadarma"),
        case("zadarma long echo", "GET", ZADARMA, &format!("/v1/sites/shop/pbx/zadarma?zd_echo={}", long(300))),
        case("zadarma unknown site", "GET", ZADARMA, "/v1/sites/nope/pbx/zadarma?zd_echo=1"),
        // The admin API.
        case("no token", "GET", "/v1/calls", "/v1/calls").anonymous(),
        case("unknown parameter", "GET", "/v1/calls", "/v1/calls?colour=red"),
        case("limit 0", "GET", "/v1/calls", "/v1/calls?limit=0"),
        case("limit past the maximum", "GET", "/v1/calls", "/v1/calls?limit=1001"),
        case("limit not a number", "GET", "/v1/calls", "/v1/calls?limit=ten"),
        case("offset negative", "GET", "/v1/calls", "/v1/calls?offset=-1"),
        case("bad date", "GET", "/v1/calls", "/v1/calls?from=2027-02-30"),
        case("bad status", "GET", "/v1/calls", "/v1/calls?status=lost"),
        case("bad target", "GET", "/v1/calls", "/v1/calls?target=maybe"),
        case("unknown site", "GET", "/v1/calls", "/v1/calls?site=nope"),
        case("no token", "GET", "/v1/calls.csv", "/v1/calls.csv").anonymous(),
        case("limit past the maximum", "GET", "/v1/calls.csv", "/v1/calls.csv?limit=100001"),
        case("unknown site", "GET", "/v1/calls.csv", "/v1/calls.csv?site=nope"),
        case("no token", "GET", "/v1/calls/{id}", "/v1/calls/1").anonymous(),
        case("id not a number", "GET", "/v1/calls/{id}", "/v1/calls/abc"),
        case("unknown call", "GET", "/v1/calls/{id}", "/v1/calls/999999"),
        case("no token", "POST", "/v1/calls/{id}/promo", "/v1/calls/1/promo").anonymous().body("{}"),
        case("broken JSON", "POST", "/v1/calls/{id}/promo", "/v1/calls/1/promo").body("{"),
        case("bad code", "POST", "/v1/calls/{id}/promo", "/v1/calls/1/promo").body(r#"{"code":"!!"}"#),
        case("unknown call", "POST", "/v1/calls/{id}/promo", "/v1/calls/999999/promo").body(r#"{"code":"ACDE"}"#),
        case("body too large", "POST", "/v1/calls/{id}/promo", "/v1/calls/1/promo").body(long(8 * 1024)),
        case("no token", "GET", "/v1/reports/calls", "/v1/reports/calls?site=shop").anonymous(),
        case("no site", "GET", "/v1/reports/calls", "/v1/reports/calls"),
        case("unknown site", "GET", "/v1/reports/calls", "/v1/reports/calls?site=nope"),
        case("bad group", "GET", "/v1/reports/calls", "/v1/reports/calls?site=shop&group_by=weather"),
        case("bad interval", "GET", "/v1/reports/calls", "/v1/reports/calls?site=shop&interval=week"),
        case(
            "window too long",
            "GET",
            "/v1/reports/calls",
            "/v1/reports/calls?site=shop&from=2000-01-01&to=2030-01-01",
        ),
        case("from after to", "GET", "/v1/reports/calls", "/v1/reports/calls?site=shop&from=2027-02-01&to=2027-01-01"),
        case("no token", "GET", "/v1/reports/pools", "/v1/reports/pools?site=shop").anonymous(),
        case("unknown site", "GET", "/v1/reports/pools", "/v1/reports/pools?site=nope"),
        case(
            "window too long",
            "GET",
            "/v1/reports/pools",
            "/v1/reports/pools?site=shop&from=2026-01-01&to=2026-12-01",
        ),
        case("bad date", "GET", "/v1/reports/pools", "/v1/reports/pools?site=shop&from=yesterday"),
        case("no token", "GET", "/v1/promo/{code}", "/v1/promo/ACDE?site=shop").anonymous(),
        case("no site", "GET", "/v1/promo/{code}", "/v1/promo/ACDE"),
        case("bad code", "GET", "/v1/promo/{code}", "/v1/promo/B0B?site=shop"),
        case("unknown code", "GET", "/v1/promo/{code}", "/v1/promo/ACDE?site=shop"),
        case("unknown site", "GET", "/v1/promo/{code}", "/v1/promo/ACDE?site=nope"),
        case("no token", "POST", "/v1/costs", "/v1/costs").anonymous().body("[]"),
        case("broken JSON", "POST", "/v1/costs", "/v1/costs").body("{"),
        case("no rows", "POST", "/v1/costs", "/v1/costs").body("[]"),
        case("bad rows", "POST", "/v1/costs", "/v1/costs")
            .body(r#"[{"site":"shop","date":"2027-13-01","source":"","cost":1e300}]"#),
        case("CSV without site", "POST", "/v1/costs", "/v1/costs")
            .header("content-type", "text/csv")
            .body("date,source,cost\n2027-01-01,google,1\n"),
        case("CSV bad header", "POST", "/v1/costs", "/v1/costs?site=shop")
            .header("content-type", "text/csv")
            .body("a,b\n1,2\n"),
        case("body too large", "POST", "/v1/costs", "/v1/costs").body(long(8 * 1024 * 1024 + 1)),
        case("no token", "POST", "/v1/revenue", "/v1/revenue").anonymous().body("{}"),
        case("broken JSON", "POST", "/v1/revenue", "/v1/revenue").body("{"),
        case("amount too large", "POST", "/v1/revenue", "/v1/revenue")
            .body(r#"{"site":"shop","call_id":1,"amount":1.5e308}"#),
        case("unknown site", "POST", "/v1/revenue", "/v1/revenue").body(r#"{"site":"nope","call_id":1,"amount":1}"#),
        case("unknown call", "POST", "/v1/revenue", "/v1/revenue")
            .body(r#"{"site":"shop","call_id":999999,"amount":1}"#),
        case("no call from caller", "POST", "/v1/revenue", "/v1/revenue")
            .body(r#"{"site":"shop","caller":"+79161234567","amount":1}"#),
        case("body too large", "POST", "/v1/revenue", "/v1/revenue").body(long(8 * 1024)),
        case("no token", "GET", "/v1/exports", "/v1/exports").anonymous(),
        case("bad status", "GET", "/v1/exports", "/v1/exports?status=lost"),
        case("limit past the maximum", "GET", "/v1/exports", "/v1/exports?limit=5000"),
        case("no token", "POST", "/v1/exports/{id}/retry", "/v1/exports/1/retry").anonymous(),
        case("id not a number", "POST", "/v1/exports/{id}/retry", "/v1/exports/x/retry"),
        case("unknown export", "POST", "/v1/exports/{id}/retry", "/v1/exports/999999/retry"),
    ];
    let mut cases = cases;
    for (template, path) in [("/v1/privacy/erase", "/v1/privacy/erase"), ("/v1/privacy/export", "/v1/privacy/export")] {
        cases.extend([
            case("no token", "POST", template, path).anonymous().body(r#"{"site":"shop","phone":"+79161234567"}"#),
            case("broken JSON", "POST", template, path).body("{"),
            case("unknown field", "POST", template, path).body(r#"{"site":"shop","phone":"+79161234567","x":1}"#),
            case("unknown site", "POST", template, path).body(r#"{"site":"nope","phone":"+79161234567"}"#),
            case("not a phone", "POST", template, path).body(r#"{"site":"shop","phone":"call me"}"#),
            case("body too large", "POST", template, path).body(long(8 * 1024)),
        ]);
    }
    let mut seen = BTreeSet::new();
    for c in &cases {
        let mut req = h.client.request(c.method.parse().unwrap(), h.url(&c.path));
        if c.admin {
            req = req.bearer_auth(TOKEN);
        }
        if !c.headers.iter().any(|(k, _)| *k == "content-type") {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        if let Some(body) = &c.body {
            req = req.body(body.clone());
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{} {}: {e}", c.name, c.path));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        doc.check(&format!("{} ({} {})", c.name, c.method, c.path), c.method, c.template, status, &body);
        assert!(status >= 400, "{}: {status} {body}", c.name);
        seen.insert((c.template, status, body["error"]["code"].as_str().unwrap_or_default().to_owned()));
    }

    // Every path, asked with each method the document does not list for it.
    let paths = doc.0["paths"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for template in &paths {
        let concrete = template
            .replace("{site}", "shop")
            .replace("{adapter}", "generic")
            .replace("{event}", "call")
            .replace("{id}", "1")
            .replace("{code}", "ACDE");
        // Templates overlap (`…/pbx/{adapter}` is also `…/pbx/zadarma`): a
        // concrete path takes the methods of every template it fits.
        let listed: BTreeSet<String> =
            paths.iter().filter(|t| fits(t, &concrete)).flat_map(|t| doc.methods(t)).collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if listed.contains(method) {
                continue;
            }
            let resp = h.client.request(method.parse().unwrap(), h.url(&concrete)).bearer_auth(TOKEN).send().unwrap();
            assert_eq!(resp.status(), 405, "{method} {concrete}");
            let allow: BTreeSet<String> = resp.headers()["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| m != "OPTIONS")
                .collect();
            assert_eq!(allow, listed, "Allow of {concrete}");
            let err: Value = resp.json().unwrap();
            assert_eq!(err["error"]["code"], "method_not_allowed");
        }
    }
    eprintln!(
        "openapi conformance: {} bad requests, {} (route, status, code) answers, all declared",
        cases.len(),
        seen.len()
    );
}

/// Whether `path` is one that `template` names, `{…}` standing for a segment.
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
