//! What the tests of users, tags, notes, visitor facts and recordings share:
//! a collector with two sites ("shop" and "other"), the admin token, calls
//! made through the Kamailio webhook, and dashboard users signed in over
//! real HTTP with their cookie and CSRF token. Every helper goes through
//! HTTP, so the modules that use it run on either backend.

use serde_json::{Value, json};

use crate::common::*;

pub const TOKEN: &str = "admin-token-for-people-0123";
pub const KAMAILIO: &str = "kamailio-token-for-people-01";
pub const CALLER: &str = "+79161234567";

/// A second site after the first's pool table.
const OTHER_SITE: &str = r#"
[[sites]]
id = "other"
originals = ["+7 812 555-00-00"]
pbx_secrets = { kamailio = "kamailio-token-for-people-01" }
"#;

/// The collector of these tests on `backend`; `None` without PostgreSQL
/// (see [`start_on`]).
pub fn start_people_on(backend: Backend, test: &str, server_extra: &str, site_extra: &str) -> Option<Harness> {
    start_on(
        backend,
        test,
        &format!("admin_token = \"{TOKEN}\"\n{server_extra}"),
        &format!("pbx_secrets = {{ kamailio = \"{KAMAILIO}\" }}\n{site_extra}"),
        OTHER_SITE,
    )
}

/// [`start_people_on`] on a clock that moves only when the test moves it:
/// the login throttle refills with time, and a machine slow enough to take
/// seconds over twenty Argon2 hashes would otherwise refill it mid-test.
pub fn start_people_clocked_on(
    backend: Backend,
    test: &str,
    server_extra: &str,
    clock: std::sync::Arc<ringsource_collector::clock::ManualClock>,
) -> Option<Harness> {
    start_with_clock_on(
        backend,
        test,
        &format!("admin_token = \"{TOKEN}\"\n{server_extra}"),
        &format!("pbx_secrets = {{ kamailio = \"{KAMAILIO}\" }}"),
        OTHER_SITE,
        clock,
    )
}

/// A finished call to `to` on `site`, as Kamailio's script reports it; its id.
pub fn kamailio_call(h: &Harness, site: &str, pbx_call_id: &str, to: &str, extra: Value) -> i64 {
    // It rings in the next whole second, so never before a lease just taken;
    // the end is reported at once with the times it will have.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 1;
    let mut body = json!({ "event": "end", "call_id": pbx_call_id, "from": CALLER.trim_start_matches('+'),
        "to": to.trim_start_matches('+'), "started_at": now, "answered_at": now + 5, "at": now + 65, "sip_code": 200 });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let resp = h
        .client
        .post(h.url(&format!("/v1/sites/{site}/pbx/kamailio")))
        .bearer_auth(KAMAILIO)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    let list = admin_get(h, &format!("/v1/calls?site={site}"));
    list["calls"].as_array().unwrap().iter().find(|c| c["pbx_call_id"] == pbx_call_id).expect("the call")["id"]
        .as_i64()
        .unwrap()
}

pub fn admin_get(h: &Harness, path: &str) -> Value {
    let resp = h.client.get(h.url(path)).bearer_auth(TOKEN).send().unwrap();
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Adds a user with the admin token.
pub fn add_user(h: &Harness, name: &str, role: &str, sites: Option<&[&str]>, password: &str) -> Value {
    let resp = h
        .client
        .post(h.url("/v1/users"))
        .bearer_auth(TOKEN)
        .json(&json!({ "username": name, "role": role, "sites": sites, "password": password }))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// A signed-in browser: its cookie and the session's CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub set_cookie: String,
    pub me: Value,
}

pub fn try_login(h: &Harness, name: &str, password: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp =
        h.client.post(h.url("/v1/auth/login")).json(&json!({ "username": name, "password": password })).send().unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub fn login(h: &Harness, name: &str, password: &str) -> Session {
    let (status, headers, me) = try_login(h, name, password);
    assert_eq!(status, 200, "{name}: {me}");
    let set_cookie = headers.get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = me["csrf_token"].as_str().expect("a CSRF token").to_owned();
    Session { cookie, csrf, set_cookie, me }
}

impl Session {
    /// A request as the dashboard makes it: the cookie, and the CSRF token
    /// on anything but a read.
    pub fn send(&self, h: &Harness, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let reading = method == reqwest::Method::GET;
        let mut req = h.client.request(method, h.url(path)).header("cookie", &self.cookie);
        if !reading {
            req = req.header("x-csrf-token", &self.csrf);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub fn get(&self, h: &Harness, path: &str) -> (u16, Value) {
        self.send(h, "GET", path, None)
    }
}
