//! Harness for the PBX adapter tests: the real app on port 0, its PBX
//! routes going through a [`RecordingSink`] that hands each event to the
//! real, storage-backed sink and keeps the ones stored as new, so each test
//! sees exactly the events an adapter produced and the database decides what
//! is a duplicate. [`start_on`] runs on either backend; [`start`] on SQLite,
//! for the tests whose requests are refused or ignored before they reach the
//! sink, where the backend has nothing to decide.
#![allow(dead_code, reason = "each adapter's tests use a different part")]

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ringsource_collector::clock::{Clock, ManualClock};
use ringsource_collector::pbx::Delivery;
use ringsource_collector::services::calls::{CallSink, CallsService, RecordOutcome, SinkError};
use ringsource_core::call::CallEvent;
use serde_json::Value;

use crate::common::{Backend, Harness, call_store_of, site_toml, start_with_sink_on};

/// 2024-05-01T07:00:00Z, the harness clock's "now".
pub const NOW_MS: i64 = 1_714_546_800_000;
pub const NOW_SECS: i64 = NOW_MS / 1000;

/// Standard Webhooks secret of site `shop` (base64 of "generic-test-secret-key-32-bytes").
pub const GENERIC_SECRET: &str = "whsec_Z2VuZXJpYy10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM=";
pub const GENERIC_KEY: &[u8] = b"generic-test-secret-key-32-bytes";
pub const TWILIO_TOKEN: &str = "twilio-auth-token";
pub const TWILIO_URL: &str = "https://calls.example.com/v1/sites/shop/pbx/twilio";
pub const ZADARMA_SECRET: &str = "zadarma-api-secret";
pub const MANGO_KEY: &str = "mango-api-key";
pub const MANGO_SALT: &str = "mango-api-salt";
pub const FS_USER: &str = "cdr";
pub const FS_PASSWORD: &str = "freeswitch-password";
pub const KAMAILIO_TOKEN: &str = "kamailio-token-0123456789";

/// Every adapter on for site `shop` (region RU).
pub fn all_adapters() -> String {
    format!(
        r#"pbx_secrets = {{ generic = "{GENERIC_SECRET}", twilio = "{TWILIO_TOKEN}", zadarma = "{ZADARMA_SECRET}", mango = "{MANGO_SALT}", freeswitch = "{FS_PASSWORD}", kamailio = "{KAMAILIO_TOKEN}" }}
pbx = {{ twilio_url = "{TWILIO_URL}", zadarma_utc_offset = "+03:00", mango_api_key = "{MANGO_KEY}", freeswitch_user = "{FS_USER}" }}"#
    )
}

/// Hands every event to the real sink, on the test's database, and keeps
/// those it stored as new: a repeated event, or one of a delivery id stored
/// before, is the database's duplicate and not kept.
pub struct RecordingSink {
    real: CallsService,
    events: Mutex<Vec<(String, CallEvent)>>,
}

impl CallSink for RecordingSink {
    fn record(&self, site: &str, delivery: Option<&Delivery>, event: CallEvent) -> Result<RecordOutcome, SinkError> {
        let outcome = CallSink::record(&self.real, site, delivery, event.clone())?;
        if matches!(outcome, RecordOutcome::New) {
            self.events.lock().unwrap().push((site.to_owned(), event));
        }
        Ok(outcome)
    }
}

pub struct PbxHarness {
    /// The server, its database and the helpers that read it.
    pub app: Harness,
    pub sink: Arc<RecordingSink>,
    pub clock: Arc<ManualClock>,
    pub client: crate::common::http::Client,
}

/// Response status, JSON (or text) body, headers.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

/// The app with `site_extra` on site `shop`, on `backend`; `None` without
/// PostgreSQL (see [`crate::common::start_on`]).
pub fn start_on(backend: Backend, test: &str, site_extra: &str) -> Option<PbxHarness> {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut sink = None;
    let app = start_with_sink_on(
        backend,
        test,
        |db| site_toml(db, "", site_extra, ""),
        Arc::clone(&clock) as Arc<dyn Clock>,
        |config| {
            let real = CallsService::new(call_store_of(config), &config.sites, Arc::clone(&clock) as Arc<dyn Clock>);
            let recording = Arc::new(RecordingSink { real, events: Mutex::default() });
            sink = Some(Arc::clone(&recording));
            Some(recording as Arc<dyn CallSink>)
        },
    )?;
    let sink = sink.expect("the harness made the sink");
    Some(PbxHarness { app, sink, clock, client: crate::common::http::Client::new() })
}

/// [`start_on`] SQLite, for the tests whose requests never reach the sink.
pub fn start(site_extra: &str) -> PbxHarness {
    start_on(Backend::Sqlite, "pbx", site_extra).expect("SQLite is always there")
}

/// The stored events are exactly those the sink kept: nothing refused or
/// ignored reached the database, and nothing it called new was lost.
impl Drop for PbxHarness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let kept = self.sink.events.lock().unwrap().len();
        let stored = self.app.scalar("SELECT COUNT(*) FROM call_events");
        assert_eq!(stored, i64::try_from(kept).unwrap(), "stored call events against those the sink kept");
    }
}

impl PbxHarness {
    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    pub fn post(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.client.post(self.url(path)).header("content-type", content_type).body(body.into());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send().unwrap())
    }

    pub fn get(&self, path: &str) -> Reply {
        reply(self.client.get(self.url(path)).send().unwrap())
    }

    /// The events the sink has, in arrival order.
    pub fn events(&self) -> Vec<CallEvent> {
        self.sink.events.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }
}

fn reply(resp: crate::common::http::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body, headers }
}

/// A form body from pairs, encoded as PBXs send it.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------- PBX signing
//
// Each PBX's scheme, written here from its documentation and SDKs rather
// than taken from the adapters, so a test fails when an adapter drifts.

/// Twilio's `X-Twilio-Signature` as twilio-python's `RequestValidator`
/// computes it: the URL, then each name in sorted order followed by each of
/// its distinct values in sorted order, HMAC-SHA1 with the auth token, base64.
pub fn twilio_signature(token: &str, url: &str, pairs: &[(&str, &str)]) -> String {
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    names.sort_unstable();
    names.dedup();
    let mut data = url.to_owned();
    for name in names {
        let mut values: Vec<&str> = pairs.iter().filter(|(k, _)| *k == name).map(|(_, v)| *v).collect();
        values.sort_unstable();
        values.dedup();
        for value in values {
            data.push_str(name);
            data.push_str(value);
        }
    }
    b64(&hmac_sha1(token.as_bytes(), data.as_bytes()))
}

/// Zadarma's `Signature`: PHP's `base64_encode(hash_hmac('sha1', $signed,
/// $secret))`, where `hash_hmac` returns the digest in hex.
pub fn zadarma_signature(secret: &str, signed: &str) -> String {
    b64(hex(&hmac_sha1(secret.as_bytes(), signed.as_bytes())).as_bytes())
}

/// The fields Zadarma's PHP SDK concatenates for an event's signature
/// (`getSignatureString` of `lib/Webhook/Notify*.php`).
pub fn zadarma_signed_fields(event: &str) -> &'static [&'static str] {
    match event {
        "NOTIFY_START" | "NOTIFY_END" | "NOTIFY_INTERNAL" => &["caller_id", "called_did", "call_start"],
        "NOTIFY_ANSWER" => &["caller_id", "destination", "call_start"],
        "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => &["internal", "destination", "call_start"],
        "NOTIFY_RECORD" => &["pbx_call_id", "call_id_with_rec"],
        _ => &[],
    }
}

/// The Signature header of a Zadarma form body.
pub fn zadarma_sign_form(secret: &str, pairs: &[(String, String)]) -> String {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    let signed: String = zadarma_signed_fields(get("event")).iter().map(|f| get(f)).collect();
    zadarma_signature(secret, &signed)
}

/// Mango's `sign`: hex SHA-256 of `vpbx_api_key + json + salt`.
pub fn mango_sign(key: &str, json: &str, salt: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(format!("{key}{json}{salt}").as_bytes()))
}

/// The three Standard Webhooks headers for a generic delivery.
pub fn generic_headers(id: &str, ts: i64, body: &str, key: &[u8]) -> Vec<(String, String)> {
    let sig = b64(&hmac_sha256(key, format!("{id}.{ts}.{body}").as_bytes()));
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), ts.to_string()),
        ("webhook-signature".to_owned(), format!("v1,{sig}")),
    ]
}

/// HTTP basic credentials, as mod_json_cdr's `cred` sends them.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))
}

// ---------------------------------------------------------- sample webhooks

/// A sample request body from `examples/webhooks/<path>`, as the PBX posts
/// it (the trailing newline of the file is not part of it).
pub fn sample(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/webhooks").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.trim_end_matches(['\r', '\n']).to_owned()
}

/// The name/value pairs of a form body, in order.
pub fn form_pairs(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A form body with `name` set to `value` (added when absent), the other
/// pairs kept in order.
pub fn with_field(body: &str, name: &str, value: &str) -> String {
    let mut pairs = form_pairs(body);
    match pairs.iter_mut().find(|(k, _)| k == name) {
        Some(pair) => pair.1 = value.to_owned(),
        None => pairs.push((name.to_owned(), value.to_owned())),
    }
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A form body without `name`.
pub fn without_field(body: &str, name: &str) -> String {
    let pairs = form_pairs(body).into_iter().filter(|(k, _)| k != name);
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

pub fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

// ------------------------------------------------- signed posts, any server

/// Posts `body` to `url` with `headers`.
pub fn post_to(
    client: &crate::common::http::Client,
    url: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
    headers: &[(String, String)],
) -> Reply {
    let mut req = client.post(url).header("content-type", content_type).body(body.into());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    reply(req.send().unwrap())
}

/// Signed posts of site `shop`'s PBX reports (the [`all_adapters`]
/// credentials) to the server at `origin`.
pub struct Pbx<'a> {
    pub client: &'a crate::common::http::Client,
    /// `http://127.0.0.1:<port>`
    pub origin: String,
}

const FORM: &str = "application/x-www-form-urlencoded";

impl Pbx<'_> {
    fn url(&self, adapter: &str) -> String {
        format!("{}/v1/sites/shop/pbx/{adapter}", self.origin)
    }

    /// A Twilio form body, signed over the configured status-callback URL.
    pub fn twilio(&self, body: &str) -> Reply {
        let pairs = form_pairs(body);
        let sig = twilio_signature(TWILIO_TOKEN, TWILIO_URL, &borrowed(&pairs));
        post_to(self.client, &self.url("twilio"), FORM, body.to_owned(), &[("X-Twilio-Signature".to_owned(), sig)])
    }

    pub fn zadarma(&self, body: &str) -> Reply {
        let sig = zadarma_sign_form(ZADARMA_SECRET, &form_pairs(body));
        post_to(self.client, &self.url("zadarma"), FORM, body.to_owned(), &[("Signature".to_owned(), sig)])
    }

    /// A Mango event's `json`, posted as Mango does: a form of
    /// `vpbx_api_key`, `sign` and `json` to `…/mango/events/{event}`.
    pub fn mango(&self, event: &str, json: &str) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("vpbx_api_key", MANGO_KEY)
            .append_pair("sign", &mango_sign(MANGO_KEY, json, MANGO_SALT))
            .append_pair("json", json)
            .finish();
        post_to(self.client, &format!("{}/events/{event}", self.url("mango")), FORM, body, &[])
    }

    pub fn freeswitch(&self, cdr: &str) -> Reply {
        let auth = basic_auth(FS_USER, FS_PASSWORD);
        post_to(
            self.client,
            &self.url("freeswitch"),
            "application/json",
            cdr.to_owned(),
            &[("Authorization".to_owned(), auth)],
        )
    }

    pub fn kamailio(&self, body: &str) -> Reply {
        let auth = format!("Bearer {KAMAILIO_TOKEN}");
        post_to(
            self.client,
            &self.url("kamailio"),
            "application/json",
            body.to_owned(),
            &[("Authorization".to_owned(), auth)],
        )
    }

    /// A generic event, signed at `ts` (Unix seconds) as delivery `id`.
    pub fn generic(&self, id: &str, ts: i64, body: &str) -> Reply {
        let headers = generic_headers(id, ts, body, GENERIC_KEY);
        post_to(self.client, &self.url("generic"), "application/json", body.to_owned(), &headers)
    }
}
