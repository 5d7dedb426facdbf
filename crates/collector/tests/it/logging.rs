//! The collector's logs, read from the real binary's stderr: a line per
//! request with its id (also answered in `X-Request-Id`), JSON lines on
//! request, the operator's level, caller numbers masked, and bad settings
//! refused at start.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringsource_collector::http::requests::TARGET;
use serde_json::{Value, json};

use crate::common::site_toml;
use crate::pbx_support::{GENERIC_KEY, all_adapters, generic_headers};

/// The caller of the PBX webhook below, as the PBX writes it, and what a
/// log line may show of it.
const CALLER: &str = "8 (916) 123-45-67";
const CALLER_MASKED: &str = "+*********67";
/// Every way the number could leak: E.164 digits, national digits, the
/// subscriber part as written and as digits.
const CALLER_LEAKS: [&str; 5] = ["79161234567", "89161234567", "9161234567", "123-45-67", "1234567"];

/// `ringsource serve` on a free port with stderr in a file.
struct Collector {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Command {
    let db = dir.path().join("ringsource.sqlite");
    let config = dir.path().join("ringsource.toml");
    std::fs::write(&config, site_toml(&db, "", &all_adapters(), "")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringsource"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&config).args(args);
    // Only what the test sets: not whatever the developer's shell has.
    cmd.env_remove("RINGSOURCE_LOG").env_remove("RINGSOURCE_LOG_FORMAT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn serve(args: &[&str], env: &[(&str, &str)]) -> Collector {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child =
        command(&dir, args, env).stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").map(str::to_owned);
    let base = base.unwrap_or_else(|| panic!("did not start: {line:?} {}", std::fs::read_to_string(&log).unwrap()));
    Collector { child, base, log, _dir: dir }
}

impl Collector {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// The log once a line satisfies `found` (the line is written before
    /// the answer leaves, but the test does not lean on that).
    fn log_with(&self, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.lines().any(&found) {
                return log;
            }
            assert!(Instant::now() < deadline, "no such line in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(&self, path: &str, request_id: Option<&str>) -> reqwest::blocking::Response {
        let mut req = reqwest::blocking::Client::new().get(format!("{}{path}", self.base));
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        req.send().unwrap()
    }

    /// A signed generic PBX event from [`CALLER`] to a pool number.
    fn call_event(&self, request_id: &str, key: &[u8]) -> reqwest::blocking::Response {
        let body = json!({
            "call_id": "log-call-1",
            "from": CALLER,
            "to": "84957000001",
            "started_at": "2024-05-01T06:59:00Z",
            "status": "in-progress",
            "phase": "start"
        })
        .to_string();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}/v1/sites/shop/pbx/generic", self.base))
            .header("content-type", "application/json")
            .header("x-request-id", request_id);
        for (k, v) in generic_headers("msg_log_1", now, &body, key) {
            req = req.header(k, v);
        }
        req.body(body).send().unwrap()
    }
}

fn answered_id(resp: &reqwest::blocking::Response) -> String {
    resp.headers().get("x-request-id").expect("an X-Request-Id answer").to_str().unwrap().to_owned()
}

/// A UUIDv7 as the collector makes them: 8-4-4-4-12 lower-case hex, version 7.
fn is_fresh_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && id.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && groups[2].starts_with('7')
}

fn json_lines(log: &str) -> Vec<Value> {
    log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{log}"))).collect()
}

#[test]
fn json_lines_name_the_request_and_mask_the_caller() {
    let server = serve(&["--log-format", "json", "--log-level", "info,ringsource_collector::requests=debug"], &[]);
    let resp = server.call_event("pbx-delivery-42", GENERIC_KEY);
    assert_eq!(answered_id(&resp), "pbx-delivery-42", "a plain incoming id is kept");
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    let refused = server.call_event("pbx-delivery-43", b"not-the-key-not-the-key-not-the!");
    assert_eq!(refused.status(), 401);
    let log = server.log_with(|l| l.contains("pbx-delivery-43"));
    let lines = json_lines(&log);

    // The request's own line: route pattern, not the path; status; latency.
    let request = |id: &str| {
        let found = lines.iter().find(|l| l["target"] == TARGET && l["request_id"] == id);
        found.unwrap_or_else(|| panic!("no request line for {id}:\n{log}")).clone()
    };
    let ok = request("pbx-delivery-42");
    assert_eq!(ok["level"], "DEBUG", "{ok}");
    assert_eq!(ok["method"], "POST", "{ok}");
    assert_eq!(ok["route"], "/v1/sites/{site}/pbx/{adapter}", "{ok}");
    assert_eq!(ok["status"], 200, "{ok}");
    assert!(ok["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{ok}");
    assert!(ok["timestamp"].is_string(), "{ok}");
    // A refusal is a warning with the error's code.
    let bad = request("pbx-delivery-43");
    assert_eq!((&bad["level"], &bad["status"], &bad["code"]), (&json!("WARN"), &json!(401), &json!("bad_credentials")));

    // The call's line names the caller masked, and the request it came in.
    let call = lines.iter().find(|l| l["message"] == "call event recorded").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(call["caller"], CALLER_MASKED, "{call}");
    assert_eq!(call["pbx_call_id"], "log-call-1", "{call}");
    assert_eq!(call["span"]["request_id"], "pbx-delivery-42", "{call}");
    for leak in CALLER_LEAKS {
        assert!(!log.contains(leak), "{leak} in the log:\n{log}");
    }
}

#[test]
fn text_lines_by_default_with_a_fresh_id_unless_the_clients_is_plain() {
    let server = serve(&[], &[("RINGSOURCE_LOG", "info,ringsource_collector::requests=debug")]);
    let fresh = answered_id(&server.get("/v1/sites/shop/config", None));
    assert!(is_fresh_id(&fresh), "{fresh}");
    // Not taken: too long, or able to forge a field of the line.
    for unsafe_id in ["a".repeat(65), "x route=/admin".to_owned(), "a\"b".to_owned()] {
        let answered = answered_id(&server.get("/v1/sites/shop/config", Some(&unsafe_id)));
        assert!(is_fresh_id(&answered), "{unsafe_id:?} answered as {answered:?}");
        assert_ne!(answered, fresh);
    }
    let missing = server.get("/v1/sites/shop/nothing-here/12345", Some("lb-7"));
    assert_eq!(missing.status(), 404);
    assert_eq!(answered_id(&missing), "lb-7");
    assert_eq!(server.get("/nothing-here/12345", Some("lb-8")).status(), 404);

    let log = server.log_with(|l| l.contains("request_id=lb-8 "));
    let line = log.lines().find(|l| l.contains(&format!("request_id={fresh} "))).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(" DEBUG "), "{line}");
    assert!(line.contains(TARGET), "{line}");
    assert!(line.contains("method=GET route=/v1/sites/{site}/config status=200 latency_ms="), "{line}");
    let missing = log.lines().find(|l| l.contains("request_id=lb-7 ")).unwrap();
    assert!(missing.contains(" WARN ") && missing.contains("status=404"), "{missing}");
    assert!(missing.contains("code=not_found"), "{missing}");
    // The pattern whose path matched (the preflight's, for OPTIONS only),
    // or none: never the raw path, which could carry a number.
    assert!(missing.contains("route=/v1/sites/{site}/{tail:.*} "), "{missing}");
    let unrouted = log.lines().find(|l| l.contains("request_id=lb-8 ")).unwrap();
    assert!(unrouted.contains("route=- "), "{unrouted}");
    assert!(!log.contains("12345") && !log.contains("nothing-here"), "{log}");
    assert!(
        !log.contains("route=/admin")
            && !log.contains("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        "{log}"
    );
    assert!(log.lines().all(|l| serde_json::from_str::<Value>(l).is_err()), "text, not JSON:\n{log}");
}

#[test]
fn at_the_default_level_only_refused_requests_have_a_line() {
    let server = serve(&[], &[]);
    let ok = answered_id(&server.get("/v1/sites/shop/config", None));
    let missing = answered_id(&server.get("/v1/sites/nope/config", None));
    let log = server.log_with(|l| l.contains(&missing));
    assert!(!log.contains(&ok), "{log}");
    let line = log.lines().find(|l| l.contains(&missing)).unwrap();
    assert!(line.contains(" WARN ") && line.contains("status=404") && line.contains("code=unknown_site"), "{line}");
    // The other events of the default level are there: actix's start.
    assert!(log.contains(" INFO actix_server::builder: starting "), "{log}");
}

#[test]
fn the_operators_level_filters_the_lines() {
    // Warnings only, from the environment: a good request writes nothing, a
    // refused one its line.
    let server = serve(&[], &[("RINGSOURCE_LOG", "warn"), ("RINGSOURCE_LOG_FORMAT", "json")]);
    let ok = answered_id(&server.get("/v1/sites/shop/config", None));
    let missing = answered_id(&server.get("/v1/sites/nope/config", None));
    let log = server.log_with(|l| l.contains(&missing));
    assert!(!log.contains(&ok), "{log}");
    let lines = json_lines(&log);
    assert!(lines.iter().all(|l| l["level"] == "WARN" || l["level"] == "ERROR"), "{log}");
    let line = lines.iter().find(|l| l["request_id"] == missing.as_str()).unwrap();
    assert_eq!((&line["status"], &line["code"]), (&json!(404), &json!("unknown_site")), "{line}");
    drop(server);

    // The flag wins over the environment, per target.
    let server = serve(
        &["--log-level", "warn,ringsource_collector::requests=debug", "--log-format", "json"],
        &[("RINGSOURCE_LOG", "off"), ("RINGSOURCE_LOG_FORMAT", "xml")],
    );
    let ok = answered_id(&server.get("/v1/sites/shop/config", None));
    let log = server.log_with(|l| l.contains(&ok));
    // actix's own info lines ("starting N workers") are below the warn set for the rest.
    let lines = json_lines(&log);
    assert!(lines.iter().all(|l| l["level"] == "WARN" || l["level"] == "ERROR" || l["target"] == TARGET), "{log}");
    assert!(lines.iter().any(|l| l["level"] == "DEBUG" && l["request_id"] == ok.as_str()), "{log}");
}

#[test]
fn bad_log_settings_stop_the_start_naming_the_value() {
    for (args, env, named) in [
        (&["--log-level", "verbose"][..], &[][..], "--log-level \"verbose\": \"verbose\" is not a level"),
        (
            &[],
            &[("RINGSOURCE_LOG", "info,ringsource_collector=loud")],
            "$RINGSOURCE_LOG \"info,ringsource_collector=loud\"",
        ),
        (&["--log-format", "yaml"], &[], "--log-format \"yaml\": not a log format (text or json)"),
        (&[], &[("RINGSOURCE_LOG_FORMAT", "xml")], "$RINGSOURCE_LOG_FORMAT \"xml\": not a log format"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = command(&dir, args, env).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} started");
        assert!(out.stdout.is_empty(), "{args:?} {env:?}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.starts_with("ringsource: cannot set up the logs: "), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
}

#[test]
fn help_names_the_log_settings_and_their_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringsource")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for said in ["--log-level", "$RINGSOURCE_LOG, else `info`", "--log-format", "$RINGSOURCE_LOG_FORMAT, else `text`"] {
        assert!(help.contains(said), "{said:?} not in:\n{help}");
    }
}
