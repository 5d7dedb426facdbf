//! Harness for the PBX adapter tests: the real app on port 0 with a
//! recording [`CallSink`], so each test sees exactly the events an adapter
//! produced, independent of how calls are stored.
#![allow(dead_code, reason = "each adapter's tests use a different part")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ringsource_collector::clock::{Clock, ManualClock};
use ringsource_collector::config::Config;
use ringsource_collector::pbx::{CallSink, RecordOutcome, SinkError};
use ringsource_collector::server::{self, Spawned};
use ringsource_core::call::CallEvent;
use serde_json::Value;

use crate::common::site_toml;

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

/// Keeps every distinct event; a repeated one is a duplicate, as the real
/// sink treats a retried delivery.
#[derive(Default)]
pub struct RecordingSink {
    events: Mutex<Vec<(String, CallEvent)>>,
}

impl CallSink for RecordingSink {
    fn record(&self, site: &str, event: CallEvent) -> Result<RecordOutcome, SinkError> {
        let mut events = self.events.lock().unwrap();
        if events.iter().any(|(s, e)| s == site && *e == event) {
            return Ok(RecordOutcome::Duplicate);
        }
        events.push((site.to_owned(), event));
        Ok(RecordOutcome::New)
    }
}

pub struct PbxHarness {
    pub server: Spawned,
    pub sink: Arc<RecordingSink>,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
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

pub fn start(site_extra: &str) -> PbxHarness {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsource.sqlite");
    let text = site_toml(&db, "", site_extra, "");
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let sink = Arc::new(RecordingSink::default());
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let server = server::spawn_with(
        config,
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        Some(Arc::clone(&sink) as Arc<dyn CallSink>),
    )
    .unwrap();
    PbxHarness { server, sink, clock, client: reqwest::blocking::Client::new(), _dir: dir }
}

impl PbxHarness {
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
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

fn reply(resp: reqwest::blocking::Response) -> Reply {
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
