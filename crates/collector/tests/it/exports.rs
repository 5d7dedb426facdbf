//! Exports end to end: calls end through the storage-backed calls service,
//! the server's outbox worker delivers them to a receiver on 127.0.0.1 that
//! checks the Standard Webhooks signature and the GA4 body, answers as each
//! test scripts it (503s, refusals, or not listening at all), and counts
//! deliveries by webhook-id.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use ringsource_collector::clock::{Clock, SystemClock};
use ringsource_collector::config::Config;
use ringsource_collector::pbx::generic::{decode_secret, sign};
use ringsource_collector::services::calls::CallsService;
use ringsource_collector::services::exports::validate_ga4;
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use ringsource_core::phone::PhoneNumber;
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-for-tests-0123";
const SERVER: &str = "admin_token = \"admin-token-for-tests-0123\"";
const CRM_SECRET: &str = "whsec_Y3JtLXdlYmhvb2stc2VjcmV0LWtleS0zMg==";
const INSTAGRAM: &str = "+74957000011";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    target: String,
    headers: HashMap<String, String>,
    body: String,
    /// The status the receiver answered.
    answered: u16,
}

/// An HTTP/1.1 receiver: one request per connection, answers from `script`
/// first, then 200.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    /// The answer once the script is used up.
    then: Arc<Mutex<u16>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn new(script: &[u16], then: u16) -> Self {
        Receiver {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then: Arc::new(Mutex::new(then)),
            got: Arc::default(),
        }
    }

    /// Serves on `listener` on a thread of its own, for the rest of the test.
    fn serve(&self, listener: TcpListener) {
        let me = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((target, headers, body)) = read_request(&mut stream) else { continue };
                let status = me.script.lock().unwrap().pop_front().unwrap_or(*me.then.lock().unwrap());
                me.got.lock().unwrap().push(Received { target, headers, body, answered: status });
                let reason = if status < 300 { "OK" } else { "Nope" };
                let text = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = stream.write_all(text.as_bytes());
            }
        });
    }

    fn start(script: &[u16], then: u16) -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let r = Receiver::new(script, then);
        r.serve(listener);
        (r, addr)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn crm(&self) -> Vec<Received> {
        self.got().into_iter().filter(|r| r.target.starts_with("/crm")).collect()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, HashMap<String, String>, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split(' ').nth(1)?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((target, headers, String::from_utf8(body).ok()?))
}

struct Exports {
    h: Harness,
    sink: CallsService,
}

/// The server with CRM (scenario `lead`) and GA4 exports to `addr`.
fn start_exports(backend: Backend, test: &str, addr: SocketAddr, max_attempts: u32, ga4: bool) -> Option<Exports> {
    let ga4 = if ga4 {
        format!(
            r#", ga4 = {{ measurement_id = "G-TEST123", api_secret = "mp-secret", endpoint = "http://{addr}/mp/collect" }}"#
        )
    } else {
        String::new()
    };
    let site_extra = format!(
        r#"exports = {{ max_attempts = {max_attempts}, backoff_base_ms = 40, timeout_secs = 2, crm = {{ url = "http://{addr}/crm", secret = "{CRM_SECRET}", scenario = "lead" }}{ga4} }}"#
    );
    let h = start_on(backend, test, SERVER, &site_extra, "")?;
    let text = site_toml(&h.db, SERVER, &site_extra, "");
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap();
    let sink = CallsService::new(h.call_store(), &config.sites, Arc::new(SystemClock));
    Some(Exports { h, sink })
}

fn now_ms() -> u64 {
    SystemClock.now_ms() as u64
}

fn event(id: &str, phase: CallPhase, status: CallStatus, to: &str, talk: Option<u32>) -> CallEvent {
    // Now: after the visit that leased the number (the end lies ahead,
    // which attribution does not mind).
    let ring = now_ms();
    CallEvent {
        pbx: "generic".into(),
        pbx_call_id: id.into(),
        phase,
        from: Some("+79161234567".into()),
        to: PhoneNumber::parse(to).unwrap(),
        started_at_ms: Some(ring),
        answered_at_ms: talk.map(|_| ring + 5000),
        ended_at_ms: (phase == CallPhase::End).then(|| ring + 50_000),
        duration_secs: (phase == CallPhase::End).then_some(50),
        talk_secs: talk,
        status,
        recording_url: None,
    }
}

impl Exports {
    fn record(&self, e: CallEvent) -> i64 {
        self.sink.record("shop", &e).unwrap().call_id
    }

    fn get(&self, path: &str) -> Value {
        let resp = self.h.client.get(self.h.url(path)).bearer_auth(TOKEN).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.json().unwrap()
    }

    fn post(&self, path: &str) -> (u16, Value) {
        let resp = self.h.client.post(self.h.url(path)).bearer_auth(TOKEN).send().unwrap();
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }

    fn exports(&self) -> Vec<Value> {
        self.get("/v1/exports?site=shop")["exports"].as_array().unwrap().clone()
    }

    /// Polls the outbox until `done` holds (10 s at most).
    fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.exports();
            if done(&rows) {
                return rows;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {rows:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn of_kind<'a>(rows: &'a [Value], kind: &str) -> &'a Value {
    rows.iter().find(|r| r["kind"] == kind).unwrap_or_else(|| panic!("no {kind} row in {rows:#?}"))
}

/// The receiver's side of Standard Webhooks: the signature over
/// `id.timestamp.body` with the shared key.
fn assert_signed(r: &Received) {
    let key = decode_secret(CRM_SECRET).unwrap();
    let id = &r.headers["webhook-id"];
    let ts: i64 = r.headers["webhook-timestamp"].parse().unwrap();
    assert!((ts - SystemClock.now_ms() / 1000).abs() < 60, "timestamp is now");
    assert_eq!(r.headers["webhook-signature"], sign(key.expose(), id, ts, r.body.as_bytes()), "signature of {id}");
}

crate::on_both_backends! {
    an_ended_call_goes_to_ga4_and_the_crm_once_each => an_ended_call_goes_to_ga4_and_the_crm_once_each_on;
    a_call_without_client_id_skips_ga4_with_the_reason => a_call_without_client_id_skips_ga4_with_the_reason_on;
    a_receiver_that_was_down_gets_each_export_once_it_is_up => a_receiver_that_was_down_gets_each_export_once_it_is_up_on;
    exports_that_keep_failing_go_to_the_dead_letter_and_can_be_retried => exports_that_keep_failing_go_to_the_dead_letter_and_can_be_retried_on;
    a_receiver_that_refuses_the_body_dead_letters_it_at_once => a_receiver_that_refuses_the_body_dead_letters_it_at_once_on;
}

fn an_ended_call_goes_to_ga4_and_the_crm_once_each_on(backend: Backend) {
    let (receiver, addr) = Receiver::start(&[], 200);
    let Some(x) = start_exports(backend, "an_ended_call_goes_to_ga4_and_the_crm_once_each", addr, 5, true) else {
        return;
    };
    let mut body = visit_body(None, paid());
    body["client_id"] = json!("555.666");
    let (status, v) = x.h.post("/v1/sites/shop/visits", &body);
    assert_eq!(status, 200, "{v}");
    let number = v["number"].as_str().unwrap();

    // The start of a call exports nothing; its end does, once, whatever repeats.
    let id = x.record(event("c1", CallPhase::Start, CallStatus::InProgress, number, None));
    assert_eq!(x.exports(), Vec::<Value>::new());
    x.record(event("c1", CallPhase::End, CallStatus::Answered, number, Some(45)));
    x.record(event("c1", CallPhase::End, CallStatus::Answered, number, Some(45)));
    let mut late = event("c1", CallPhase::End, CallStatus::Answered, number, Some(45));
    late.recording_url = Some("https://pbx.example/rec/c1.mp3".into());
    x.record(late);

    let rows = x.wait_for("both sent", |rows| rows.len() == 2 && rows.iter().all(|r| r["status"] == "sent"));
    assert!(rows.iter().all(|r| r["call_id"] == id && r["attempts"] == 1), "{rows:#?}");

    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:#?}");
    let crm = &receiver.crm()[0];
    assert_signed(crm);
    assert_eq!(crm.headers["webhook-id"], of_kind(&rows, "crm")["webhook_id"].as_str().unwrap());
    let body: Value = serde_json::from_str(&crm.body).unwrap();
    assert_eq!((&body["type"], &body["scenario"]), (&json!("call.ended"), &json!("lead")));
    assert_eq!(body["data"]["call"]["id"], id);
    assert_eq!(body["data"]["call"]["target"], true);
    assert_eq!(body["data"]["attribution"]["confidence"], "high");
    assert_eq!(body["data"]["visitor"]["client_id"], "555.666");
    assert_eq!(body["data"]["visitor"]["touches"][0]["channel"], "Paid Search");

    let ga = got.iter().find(|r| r.target.starts_with("/mp/collect")).unwrap();
    assert_eq!(ga.target, "/mp/collect?measurement_id=G-TEST123&api_secret=mp-secret");
    let body: Value = serde_json::from_str(&ga.body).unwrap();
    validate_ga4(&body).unwrap();
    assert_eq!(body["client_id"], "555.666");
    let event = &body["events"][0];
    assert_eq!(event["name"], "phone_call");
    let params = &event["params"];
    assert_eq!(
        (&params["source"], &params["medium"], &params["target"], &params["missed"]),
        (&json!("google"), &json!("cpc"), &json!(1), &json!(0))
    );
    assert_eq!(
        (&params["talk_time"], &params["duration"], &params["status"]),
        (&json!(45), &json!(50), &json!("answered"))
    );
    assert_eq!(params["call_id"], id.to_string());
    assert!(body["timestamp_micros"].as_i64().unwrap() > 1_700_000_000_000_000);
}

fn a_call_without_client_id_skips_ga4_with_the_reason_on(backend: Backend) {
    let (receiver, addr) = Receiver::start(&[], 200);
    let Some(x) = start_exports(backend, "a_call_without_client_id_skips_ga4_with_the_reason", addr, 5, true) else {
        return;
    };
    // A static number's call: no visit, so no client id.
    x.record(event("s1", CallPhase::End, CallStatus::NoAnswer, INSTAGRAM, None));
    let rows = x.wait_for("crm sent", |rows| rows.iter().any(|r| r["kind"] == "crm" && r["status"] == "sent"));
    let ga4 = of_kind(&rows, "ga4");
    assert_eq!(ga4["status"], "skipped");
    assert!(ga4["last_error"].as_str().unwrap().contains("no GA client id"), "{ga4}");
    assert_eq!(x.get("/v1/exports?site=shop&status=skipped&kind=ga4")["total"], 1);
    assert!(receiver.got().iter().all(|r| r.target.starts_with("/crm")), "GA4 got nothing");
    let crm: Value = serde_json::from_str(&receiver.crm()[0].body).unwrap();
    assert_eq!((&crm["data"]["call"]["missed"], &crm["data"]["visitor"]), (&json!(true), &Value::Null));
}

fn a_receiver_that_was_down_gets_each_export_once_it_is_up_on(backend: Backend) {
    // 503 twice, then OK: three deliveries of one webhook-id, one accepted.
    let (receiver, addr) = Receiver::start(&[503, 503], 200);
    let Some(x) = start_exports(backend, "a_receiver_that_was_down_gets_each_export_once_it_is_up", addr, 5, false)
    else {
        return;
    };
    let ids: Vec<i64> = (0..3)
        .map(|i| x.record(event(&format!("d{i}"), CallPhase::End, CallStatus::Answered, INSTAGRAM, Some(40))))
        .collect();
    let rows = x.wait_for("all sent", |rows| rows.len() == 3 && rows.iter().all(|r| r["status"] == "sent"));
    let got = receiver.crm();
    assert_eq!(got.len(), 5, "two refused deliveries, then one per export: {got:#?}");
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    for r in &got {
        assert_signed(r);
        if r.answered == 200 {
            *accepted.entry(r.headers["webhook-id"].as_str()).or_default() += 1;
        }
    }
    let exported: Vec<&str> = rows.iter().map(|r| r["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(accepted.len(), 3, "nothing lost: {accepted:?}");
    assert!(exported.iter().all(|id| accepted.get(id) == Some(&1)), "nothing twice: {accepted:?}");
    let mut call_ids: Vec<i64> = rows.iter().map(|r| r["call_id"].as_i64().unwrap()).collect();
    call_ids.sort_unstable();
    assert_eq!(call_ids, ids);
    // Five attempts in all; a retried row keeps the error of its failed
    // attempt for the record.
    assert_eq!(rows.iter().map(|r| r["attempts"].as_u64().unwrap()).sum::<u64>(), 5, "{rows:#?}");
    for r in rows.iter().filter(|r| r["attempts"].as_u64() > Some(1)) {
        assert!(r["last_error"].as_str().unwrap().contains("503"), "{r}");
    }

    // Not listening at all: the attempts fail until the receiver appears.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let late = Receiver::new(&[], 200);
    let Some(y) = start_exports(backend, "a_receiver_that_was_down_gets_each_export_once_it_is_up", port, 30, false)
    else {
        return;
    };
    y.record(event("e1", CallPhase::End, CallStatus::Answered, INSTAGRAM, Some(40)));
    let rows =
        y.wait_for("two failed attempts", |rows| rows.first().is_some_and(|r| r["attempts"].as_u64() >= Some(2)));
    assert_eq!(rows[0]["status"], "pending");
    assert!(rows[0]["last_error"].as_str().unwrap().contains("cannot deliver"), "{rows:#?}");
    late.serve(TcpListener::bind(port).unwrap());
    y.wait_for("sent once up", |rows| rows[0]["status"] == "sent");
    let got = late.crm();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].headers["webhook-id"], rows[0]["webhook_id"].as_str().unwrap());
}

fn exports_that_keep_failing_go_to_the_dead_letter_and_can_be_retried_on(backend: Backend) {
    let (receiver, addr) = Receiver::start(&[], 503);
    let Some(x) =
        start_exports(backend, "exports_that_keep_failing_go_to_the_dead_letter_and_can_be_retried", addr, 3, false)
    else {
        return;
    };
    x.record(event("f1", CallPhase::End, CallStatus::Answered, INSTAGRAM, Some(40)));
    let rows = x.wait_for("dead", |rows| rows.first().is_some_and(|r| r["status"] == "dead"));
    let dead = &rows[0];
    assert_eq!(dead["attempts"], 3);
    assert!(dead["last_error"].as_str().unwrap().contains("gave up after 3 attempts"), "{dead}");
    assert_eq!(receiver.crm().len(), 3);
    let listed = x.get("/v1/exports?status=dead");
    assert_eq!((listed["total"].as_u64(), &listed["exports"][0]["id"]), (Some(1), &dead["id"]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.crm().len(), 3, "a dead row is not sent again by itself");

    // The receiver is fixed; the operator requeues the dead letter.
    *receiver.then.lock().unwrap() = 200;
    let (status, row) = x.post(&format!("/v1/exports/{}/retry", dead["id"]));
    assert_eq!((status, &row["status"], &row["attempts"]), (200, &json!("pending"), &json!(0)), "{row}");
    x.wait_for("sent after retry", |rows| rows[0]["status"] == "sent");
    let got = receiver.crm();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.headers["webhook-id"] == dead["webhook_id"].as_str().unwrap()), "one id throughout");

    let (status, body) = x.post(&format!("/v1/exports/{}/retry", dead["id"]));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("not_dead")));
    assert_eq!(x.post("/v1/exports/999/retry").0, 404);
    assert_eq!(x.post("/v1/exports/abc/retry").0, 400);
    let resp = x.h.client.get(x.h.url("/v1/exports?status=gone")).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(x.h.client.get(x.h.url("/v1/exports")).send().unwrap().status().as_u16(), 401);
}

fn a_receiver_that_refuses_the_body_dead_letters_it_at_once_on(backend: Backend) {
    let (receiver, addr) = Receiver::start(&[], 400);
    let Some(x) = start_exports(backend, "a_receiver_that_refuses_the_body_dead_letters_it_at_once", addr, 5, false)
    else {
        return;
    };
    x.record(event("r1", CallPhase::End, CallStatus::Answered, INSTAGRAM, Some(40)));
    let rows = x.wait_for("dead", |rows| rows.first().is_some_and(|r| r["status"] == "dead"));
    assert_eq!(rows[0]["attempts"], 1, "resending the same bytes cannot help");
    assert!(rows[0]["last_error"].as_str().unwrap().contains("400"), "{rows:#?}");
    assert_eq!(receiver.crm().len(), 1);
}

#[test]
fn export_settings_are_checked_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"exports = { backoff_base_ms = 0, ga4 = { measurement_id = "UA-1", api_secret = "s" }, crm = { url = "crm.example", secret = "whsec_%%%" } }"#;
    let text = site_toml(&dir.path().join("db.sqlite"), SERVER, extra, "");
    let err = Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap_err();
    let paths: Vec<&str> = err.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sites[0].exports.backoff_base_ms",
            "sites[0].exports.ga4.measurement_id",
            "sites[0].exports.crm.url",
            "sites[0].exports.crm.secret"
        ],
        "{err}"
    );
    // The CRM secret from the environment instead of the file.
    let extra = r#"exports = { crm = { url = "https://crm.example/hook" } }"#;
    let text = site_toml(&dir.path().join("db.sqlite"), SERVER, extra, "");
    assert!(Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).is_err());
    let env: HashMap<String, String> =
        [("RINGSOURCE_SITE_SHOP_CRM_SECRET".to_owned(), "a-crm-secret-from-the-env".to_owned())].into();
    let config = Config::from_toml_str(&text, Path::new("test.toml"), &env).unwrap();
    assert_eq!(config.sites[0].exports.crm.as_ref().unwrap().key.expose(), b"a-crm-secret-from-the-env");
}
