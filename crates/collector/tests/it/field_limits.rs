//! Every string the browser routes accept has a limit, declared in
//! the OpenAPI document as `maxLength`: one byte more is a 400 that names the field,
//! and the limit itself is accepted. The limits are read from the served
//! document, so the document and the server cannot drift apart. On both
//! backends: the visits at the limit are stored, and nothing of the refused
//! ones is.
//!
//! A NUL (U+0000) in a field is no reason to refuse a visit, a call, a cost
//! or a deal: SQLite stores it as sent, PostgreSQL, whose `text` cannot hold
//! it, with U+FFFD in its place (`storage::postgres::without_nul`).

use crate::common::*;
use crate::pbx_support::{GENERIC_KEY, GENERIC_SECRET, generic_headers};
use serde_json::{Value, json};

/// The schema `$ref` points at, within `doc` (also as the branch of a
/// `oneOf` with `null`, which is how OpenAPI 3.1 writes a nullable reference).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(branches) = schema["oneOf"].as_array() {
        let not_null: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
        if let [only] = not_null.as_slice() {
            return resolve(doc, only);
        }
    }
    match schema["$ref"].as_str() {
        Some(r) => {
            let path = r.strip_prefix("#/").unwrap();
            path.split('/').fold(doc, |node, key| &node[key])
        }
        None => schema,
    }
}

/// A string property's declared bound.
#[derive(Debug)]
enum Bound {
    MaxLength(usize),
    OneOf(Vec<String>),
}

/// (field path, bound) of every string property under `schema`.
fn limits(doc: &Value, schema: &Value, prefix: &str, out: &mut Vec<(String, Bound)>) {
    let schema = resolve(doc, schema);
    let Some(props) = schema["properties"].as_object() else { return };
    for (name, prop) in props {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let prop = resolve(doc, prop);
        // `"string"`, or `["string", "null"]` for an optional one.
        let kind = match &prop["type"] {
            Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).find(|k| *k != "null"),
            kind => kind.as_str(),
        };
        match kind {
            Some("string") => {
                let bound = match (prop["maxLength"].as_u64(), prop["enum"].as_array()) {
                    (Some(max), None) => Bound::MaxLength(max as usize),
                    (None, Some(names)) => Bound::OneOf(names.iter().map(|n| n.as_str().unwrap().to_owned()).collect()),
                    _ => panic!("{path} declares neither a maxLength nor an enum"),
                };
                out.push((path, bound));
            }
            Some("object") => limits(doc, prop, &path, out),
            _ => {}
        }
    }
}

fn set(body: &mut Value, path: &str, value: Value) {
    let mut node = body;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if node[*part].is_null() {
            node[*part] = json!({});
        }
        node = &mut node[*part];
    }
    node[parts[parts.len() - 1]] = value;
}

/// A value of exactly `len` bytes that is valid where the field wants a form.
fn filler(path: &str, len: usize) -> String {
    if path.ends_with("session_id") {
        return "s".repeat(len);
    }
    // Two-byte characters too: the limit counts bytes, not characters.
    let mut text = "é".repeat(len / 2);
    if len % 2 == 1 {
        text.push('a');
    }
    text
}

crate::on_both_backends! {
    every_browser_field_has_a_declared_limit_that_the_server_keeps
        => every_browser_field_has_a_declared_limit_that_the_server_keeps_on;
    a_nul_in_a_field_fails_no_visit_call_cost_or_deal => a_nul_in_a_field_fails_no_visit_call_cost_or_deal_on;
}

fn every_browser_field_has_a_declared_limit_that_the_server_keeps_on(backend: Backend) {
    // Some hundred visits from one address: no rate limit in the way.
    let server = "[server.rate_limit]\nburst = 10000\nper_minute = 10000";
    let test = "every_browser_field_has_a_declared_limit_that_the_server_keeps";
    let Some(h) = start_on(backend, test, server, "", "") else { return };
    let doc: Value = h.client.get(h.url("/v1/openapi.json")).send().unwrap().json().unwrap();
    let session = h.visit(None, paid())["session_id"].as_str().unwrap().to_owned();
    let mut first = visit_body(None, paid());
    first["first_touch"] = touch("Organic Search", "google", "organic");
    first["touch"]["click_id"] = json!({ "kind": "gclid", "value": "x" });
    first["first_touch"]["click_id"] = json!({ "kind": "yclid", "value": "1" });
    let routes = [
        ("/v1/sites/shop/visits", "VisitRequest", first),
        ("/v1/sites/shop/heartbeat", "HeartbeatRequest", json!({ "session_id": session })),
        (
            "/v1/sites/shop/pageviews",
            "PageViewRequest",
            json!({ "session_id": session, "url": "https://shop.example/a" }),
        ),
    ];
    let mut checked = Vec::new();
    for (route, schema, valid) in routes {
        let mut fields = Vec::new();
        limits(&doc, &doc["components"]["schemas"][schema], "", &mut fields);
        assert!(!fields.is_empty(), "{schema}");
        for (path, bound) in fields {
            let max = match bound {
                Bound::MaxLength(max) => max,
                Bound::OneOf(names) => {
                    let mut other = valid.clone();
                    set(&mut other, &path, json!("Carrier Pigeon"));
                    assert!(!names.iter().any(|n| n == "Carrier Pigeon"));
                    let (status, err) = h.post(route, &other);
                    assert_eq!((status, &err["error"]["code"]), (400, &json!("bad_request")), "{route} {path}: {err}");
                    checked.push(format!("{schema}.{path}"));
                    continue;
                }
            };
            let mut over = valid.clone();
            set(&mut over, &path, json!(filler(&path, max + 1)));
            let (status, err) = h.post(route, &over);
            assert_eq!(status, 400, "{route} {path} at {} bytes: {err}", max + 1);
            assert_eq!(err["error"]["field"], path, "{route}: {err}");
            let code = if path.ends_with("session_id") { "bad_request" } else { "field_too_long" };
            assert_eq!(err["error"]["code"], code, "{route} {path}: {err}");
            assert!(err["error"]["message"].as_str().unwrap().contains(&path), "{err}");

            let mut at_limit = valid.clone();
            set(&mut at_limit, &path, json!(filler(&path, max)));
            let (status, body) = h.post(route, &at_limit);
            // A session id at the limit is well formed, and unknown or without a lease.
            assert!([200, 204, 404, 410].contains(&status), "{route} {path} at {max} bytes: {status} {body}");
            assert_ne!(body["error"]["field"], path, "{route}: {body}");
            checked.push(format!("{schema}.{path}"));
        }
    }
    // The fields the issue named, and the touch's, are among them.
    for f in ["VisitRequest.touch.source", "VisitRequest.first_touch.term", "VisitRequest.touch.click_id.value"] {
        assert!(checked.iter().any(|c| c == f), "{f} not checked: {checked:?}");
    }
    // Nothing of the refused requests was stored: only the visits at the
    // limit. Lengths are counted here, in bytes, the same on both backends.
    let touches = h.rows("SELECT source, term FROM touches");
    let lengths: Vec<usize> = touches.iter().flatten().flatten().map(String::len).collect();
    assert!(lengths.contains(&1024), "a touch at the limit is stored whole: {lengths:?}");
    assert!(lengths.iter().all(|&n| n <= 1024), "touch fields stored over 1024 bytes: {lengths:?}");
}

const TOKEN: &str = "admin-token-for-tests-0123";

fn a_nul_in_a_field_fails_no_visit_call_cost_or_deal_on(backend: Backend) {
    let server = format!("admin_token = \"{TOKEN}\"");
    let site = format!("pbx_secrets.generic = \"{GENERIC_SECRET}\"");
    let Some(h) = start_on(backend, "a_nul_in_a_field_fails_no_visit_call_cost_or_deal", &server, &site, "") else {
        return;
    };
    // What the database gives back for a NUL that was sent.
    let nul = match backend {
        Backend::Sqlite => "\0",
        Backend::Postgres => "\u{FFFD}",
    };
    // A landing link anyone can craft: the collector decodes `%00`.
    let mut body = visit_body(None, paid());
    body["page"]["url"] = json!("https://shop.example/?utm_source=news&utm_campaign=a%00b");
    body["page"]["title"] = json!("Sofas\0");
    body["referrer"] = json!("");
    let (status, visit) = h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200, "{visit}");
    assert_eq!(visit["touch"]["campaign"], "a\0b", "the answer is the collector's, not the database's");
    let session = visit["session_id"].as_str().unwrap().to_owned();
    let (status, view) = h.post(
        "/v1/sites/shop/pageviews",
        &json!({ "session_id": session, "url": "https://shop.example/b", "title": "B\0" }),
    );
    assert_eq!(status, 204, "{view}");
    assert_eq!(
        h.rows(&format!("SELECT campaign FROM touches WHERE session_id = '{session}'")),
        [[Some(format!("a{nul}b"))]]
    );
    assert_eq!(
        h.rows(&format!("SELECT title FROM page_views WHERE session_id = '{session}' ORDER BY id")),
        [[Some(format!("Sofas{nul}"))], [Some(format!("B{nul}"))]]
    );

    // A PBX's call id and caller id with a NUL: the call is stored, and its
    // next event finds it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let at = |secs: u64| {
        let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
        t.format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    for (n, phase, status) in [(1, "start", "in-progress"), (2, "end", "no-answer")] {
        let body = json!({
            "call_id": "pbx\0call", "from": "caller\0id", "to": "+74957000013",
            "started_at": at(now), "ended_at": at(now + 20), "status": status, "phase": phase
        })
        .to_string();
        let mut req = h.client.post(h.url("/v1/sites/shop/pbx/generic")).header("content-type", "application/json");
        for (k, v) in generic_headers(&format!("msg_nul_{n}"), now as i64, &body, GENERIC_KEY) {
            req = req.header(k, v);
        }
        let resp = req.body(body).send().unwrap();
        assert_eq!(resp.status(), 200, "{phase}: {}", resp.text().unwrap());
    }
    let calls: Value = h.client.get(h.url("/v1/calls?site=shop")).bearer_auth(TOKEN).send().unwrap().json().unwrap();
    assert_eq!(calls["total"], 1, "{calls}");
    let call = &calls["calls"][0];
    assert_eq!((&call["pbx_call_id"], &call["status"]), (&json!(format!("pbx{nul}call")), &json!("no-answer")));
    assert_eq!(h.scalar("SELECT COUNT(*) FROM call_events"), 2);
    let csv = h.client.get(h.url("/v1/calls.csv?site=shop")).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(csv.status(), 200);

    // A CRM's deal id, posted twice: one deal.
    for _ in 0..2 {
        let deal = json!({ "site": "shop", "call_id": call["id"], "amount": 10, "deal_id": "deal\0" });
        let resp = h.client.post(h.url("/v1/revenue")).bearer_auth(TOKEN).json(&deal).send().unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    }
    assert_eq!(h.rows("SELECT deal_id FROM revenue"), [[Some(format!("deal{nul}"))]]);

    // Cost rows and the calls list's filters (a tag is refused for its
    // shape, before any store, on both).
    let cost = json!([{ "site": "shop", "date": "2027-01-15", "source": "news\0", "medium": "email", "cost": 1.5 }]);
    let resp = h.client.post(h.url("/v1/costs")).bearer_auth(TOKEN).json(&cost).send().unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    assert_eq!(h.rows("SELECT source FROM costs"), [[Some(format!("news{nul}"))]]);
    for filter in ["source", "campaign", "channel"] {
        let resp =
            h.client.get(h.url(&format!("/v1/calls?site=shop&{filter}=a%00b"))).bearer_auth(TOKEN).send().unwrap();
        assert_eq!(resp.status(), 200, "{filter}");
        assert_eq!(resp.json::<Value>().unwrap()["total"], 0, "{filter}");
    }
}
