//! Call recordings through the collector over real HTTP: a PBX file server
//! that wants basic auth gets the site's credentials (never the browser),
//! `Range` goes through for seeking, credentials go to no other host, and
//! only roles that may play recordings get them.
//!
//! Every test runs on both backends (`name::sqlite`, `name::postgres`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::*;
use crate::pbx_support::{b64, generic_headers};
use crate::people::*;

const SECRET: &str = "generic-secret-for-recordings-01";
const PW: &str = "long enough password 1";

/// A PBX's file server on 127.0.0.1: `/rec/1.mp3` for user "pbx" with
/// password "file-password" only, with byte ranges. Every request's
/// `Authorization` and `Range` are kept.
struct FileServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A request the file server answered: path, `Authorization`, `Range`.
type Seen = (String, Option<String>, Option<String>);

fn body() -> Vec<u8> {
    (0..10_000u32).map(|i| (i % 251) as u8).collect()
}

fn file_server() -> FileServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let (mut auth, mut range) = (None, None);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    let (name, value) = h.split_once(':').unwrap_or_default();
                    match name.to_ascii_lowercase().as_str() {
                        "authorization" => auth = Some(value.trim().to_owned()),
                        "range" => range = Some(value.trim().to_owned()),
                        _ => {}
                    }
                }
                log.lock().unwrap().push((path.clone(), auth.clone(), range.clone()));
                let mut out = stream;
                let want = format!("Basic {}", b64(b"pbx:file-password"));
                let answer: Vec<u8> = if path != "/rec/1.mp3" {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
                } else if auth.as_deref() != Some(want.as_str()) {
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
                } else {
                    let all = body();
                    let (status, part, extra) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
                        Some(spec) => {
                            let (a, b) = spec.split_once('-').unwrap();
                            let a: usize = a.parse().unwrap();
                            let b: usize = if b.is_empty() { all.len() - 1 } else { b.parse().unwrap() };
                            (
                                "206 Partial Content",
                                all[a..=b].to_vec(),
                                format!("content-range: bytes {a}-{b}/{}\r\n", all.len()),
                            )
                        }
                        None => ("200 OK", all, String::new()),
                    };
                    let mut head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: audio/mpeg\r\naccept-ranges: bytes\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n",
                        part.len()
                    )
                    .into_bytes();
                    head.extend(part);
                    head
                };
                let _ = out.write_all(&answer);
            });
        }
    });
    FileServer { port, seen }
}

/// A finished call through the generic adapter, with its recording URL.
fn call_with_recording(h: &Harness, id: &str, recording: &str) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let body =
        json!({ "call_id": id, "from": "+79161234567", "to": "+74957000013", "started_at": "2026-01-01T10:00:00Z",
        "answered_at": "2026-01-01T10:00:05Z", "ended_at": "2026-01-01T10:01:05Z", "recording_url": recording })
        .to_string();
    let mut req = h
        .client
        .post(h.url("/v1/sites/shop/pbx/generic"))
        .header("content-type", "application/json")
        .body(body.clone());
    for (k, v) in generic_headers(&format!("msg-{id}"), now, &body, SECRET.as_bytes()) {
        req = req.header(k, v);
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    let list = admin_get(h, "/v1/calls?site=shop&limit=100");
    list["calls"].as_array().unwrap().iter().find(|c| c["pbx_call_id"] == id).unwrap()["id"].as_i64().unwrap()
}

crate::on_both_backends! {
    recordings_are_fetched_with_the_site_s_credentials_and_seek =>
        recordings_are_fetched_with_the_site_s_credentials_and_seek_on;
}

fn recordings_are_fetched_with_the_site_s_credentials_and_seek_on(backend: Backend) {
    let files = file_server();
    let extra = format!(
        "pbx_secrets = {{ generic = \"{SECRET}\", kamailio = \"{KAMAILIO}\" }}\n\
         recordings = {{ generic = {{ user = \"pbx\", password = \"file-password\", hosts = [\"127.0.0.1\"] }} }}"
    );
    let test = "recordings_are_fetched_with_the_site_s_credentials_and_seek";
    let Some(h) = start_on(backend, test, &format!("admin_token = \"{TOKEN}\""), &extra, "") else { return };
    let good = call_with_recording(&h, "rec-1", &format!("http://127.0.0.1:{}/rec/1.mp3", files.port));
    // Another host (as a recording URL could name): no credentials go there.
    let elsewhere = call_with_recording(&h, "rec-2", &format!("http://localhost:{}/rec/1.mp3", files.port));
    let missing = call_with_recording(&h, "rec-3", &format!("http://127.0.0.1:{}/rec/gone.mp3", files.port));
    add_user(&h, "maria", "manager", None, PW);
    add_user(&h, "mark", "marketer", None, PW);
    let maria = login(&h, "maria", PW);
    let get = |path: &str, range: Option<&str>, cookie: &str| {
        let mut req = h.client.get(h.url(path)).header("cookie", cookie);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send().unwrap()
    };

    // Whole, then a part as an audio element asks when it seeks.
    let resp = get(&format!("/v1/calls/{good}/recording"), None, &maria.cookie);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/mpeg");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    // Kept by no cache: the next user of this browser may not play it.
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.bytes().unwrap().to_vec(), body());
    let resp = get(&format!("/v1/calls/{good}/recording"), Some("bytes=5000-5999"), &maria.cookie);
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], "bytes 5000-5999/10000");
    assert_eq!(resp.bytes().unwrap().to_vec(), body()[5000..6000].to_vec());
    let seen = files.seen.lock().unwrap().clone();
    let basic = format!("Basic {}", b64(b"pbx:file-password"));
    assert_eq!(seen[0], ("/rec/1.mp3".to_owned(), Some(basic.clone()), None));
    assert_eq!(seen[1].2.as_deref(), Some("bytes=5000-5999"));

    // The browser never sees the PBX's credentials.
    let detail = maria.get(&h, &format!("/v1/calls/{good}")).1;
    assert!(!detail.to_string().contains("file-password"), "{detail}");

    // Not to another host: that PBX answers 401, which is a 502 here.
    let resp = get(&format!("/v1/calls/{elsewhere}/recording"), None, &maria.cookie);
    assert_eq!(resp.status(), 502);
    let answer: Value = resp.json().unwrap();
    assert_eq!(answer["error"]["code"], "recording_unavailable");
    assert!(answer["error"]["message"].as_str().unwrap().contains("401"), "{answer}");
    assert_eq!(files.seen.lock().unwrap().last().unwrap().1, None, "credentials went to another host");
    let resp = get(&format!("/v1/calls/{missing}/recording"), None, &maria.cookie);
    assert_eq!(resp.status(), 502);

    // A call without a recording, an unknown call.
    let plain = kamailio_call(&h, "shop", "no-rec@test", "+74957000012", json!({}));
    assert_eq!(maria.get(&h, &format!("/v1/calls/{plain}/recording")).1["error"]["code"], "no_recording");
    assert_eq!(maria.get(&h, "/v1/calls/987654/recording").0, 404);

    // Marketers play no recordings, and their answers carry no recording URL.
    let mark = login(&h, "mark", PW);
    let (status, body) = mark.get(&h, &format!("/v1/calls/{good}/recording"));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert_eq!(mark.get(&h, &format!("/v1/calls/{good}")).1["recording_url"], Value::Null);
    // Nobody signed in gets nothing.
    assert_eq!(h.client.get(h.url(&format!("/v1/calls/{good}/recording"))).send().unwrap().status(), 401);
}

crate::on_both_backends! {
    the_demo_s_recordings_are_made_by_the_collector => the_demo_s_recordings_are_made_by_the_collector_on;
}

fn the_demo_s_recordings_are_made_by_the_collector_on(backend: Backend) {
    let Some(db) = TestDatabase::on(backend, "the_demo_s_recordings_are_made_by_the_collector") else { return };
    let config =
        db.config(&site_toml(&db.file, &format!("admin_token = \"{TOKEN}\""), "time_zone = \"Europe/Moscow\"", ""));
    ringsource_collector::demo::fill(
        &config,
        &ringsource_collector::demo::DemoOptions { site: None, days: 3, seed: 1 },
    )
    .unwrap();
    let server = ringsource_collector::server::spawn(
        config,
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(ringsource_collector::clock::SystemClock),
    )
    .unwrap();
    let client = reqwest::blocking::Client::new();
    let list: Value =
        client.get(server.url("/v1/calls?site=shop&limit=200")).bearer_auth(TOKEN).send().unwrap().json().unwrap();
    let with: Vec<i64> = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["recording_url"].as_str().is_some())
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert!(!with.is_empty(), "no demo call has a recording");
    let resp = client.get(server.url(&format!("/v1/calls/{}/recording", with[0]))).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let wav = resp.bytes().unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    let resp = client
        .get(server.url(&format!("/v1/calls/{}/recording", with[0])))
        .bearer_auth(TOKEN)
        .header("range", "bytes=44-")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes 44-{}/{}", wav.len() - 1, wav.len()));
    let mut rest = Vec::new();
    resp.bytes().unwrap().as_ref().read_to_end(&mut rest).unwrap();
    assert_eq!(rest, wav[44..].to_vec());
    let resp = client
        .get(server.url(&format!("/v1/calls/{}/recording", with[0])))
        .bearer_auth(TOKEN)
        .header("range", format!("bytes={}-", wav.len()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 416);
}
