//! The harness checks every answer against the generated OpenAPI document
//! (`common::openapi`). These tests show the check can fail: real answers
//! pass it, and the same answers broken one way at a time do not.
//!
//! Only the nested answer, a visit, is the work of a store: it runs on both
//! backends. The others check the site's configuration, the served document
//! and the coverage file, which no store writes or reads, so they run on
//! SQLite alone.

use serde_json::{Value, json};

use crate::common::openapi::{check, coverage_path, document};
use crate::common::*;

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

const JSON: Option<&str> = Some("application/json");

#[test]
fn a_real_answer_passes_and_each_broken_copy_fails() {
    let h = start("", "", "");
    let config: Value = h.client.get(h.url("/v1/sites/shop/config")).send().unwrap().json().unwrap();
    let path = "/v1/sites/shop/config";
    assert_eq!(check("GET", path, 200, JSON, &body(&config)), Ok(()));

    // A required field missing.
    let mut missing = config.clone();
    missing.as_object_mut().unwrap().remove("originals");
    let e = check("GET", path, 200, JSON, &body(&missing)).unwrap_err();
    assert!(e.contains("originals"), "{e}");

    // A field of the wrong type, and a number that is not E.164.
    let mut wrong = config.clone();
    wrong["heartbeat_secs"] = json!("30");
    assert!(check("GET", path, 200, JSON, &body(&wrong)).unwrap_err().contains("heartbeat_secs"));
    let mut not_e164 = config.clone();
    not_e164["originals"] = json!(["8 (495) 123-45-67"]);
    assert!(check("GET", path, 200, JSON, &body(&not_e164)).unwrap_err().contains("originals"));

    // A status the operation does not list, and a body where none is documented.
    assert!(check("GET", path, 418, JSON, &body(&config)).unwrap_err().contains("not documented"));
    let view = "/v1/sites/shop/pageviews";
    assert_eq!(check("POST", view, 204, None, b""), Ok(()));
    assert!(check("POST", view, 204, JSON, b"{}").is_err());

    // An error with a code its status does not carry on this operation, or
    // without its message.
    let unknown_site = json!({ "error": { "code": "unknown_site", "message": "no site" } });
    assert_eq!(check("GET", path, 404, JSON, &body(&unknown_site)), Ok(()));
    let lease_gone = json!({ "error": { "code": "lease_gone", "message": "gone" } });
    assert!(check("GET", path, 404, JSON, &body(&lease_gone)).unwrap_err().contains("lease_gone"));
    let no_message = json!({ "error": { "code": "unknown_site" } });
    assert!(check("GET", path, 404, JSON, &body(&no_message)).unwrap_err().contains("message"));

    // A media type the operation does not list.
    assert!(check("GET", path, 200, Some("text/html"), b"<p>").unwrap_err().contains("text/html"));

    // Outside the operations, answers are still the API's error object.
    let not_found = json!({ "error": { "code": "not_found", "message": "no such route" } });
    assert_eq!(check("GET", "/v1/nothing", 404, JSON, &body(&not_found)), Ok(()));
    assert!(check("GET", "/v1/nothing", 404, JSON, b"{\"error\": 1}").is_err());
}

crate::on_both_backends! {
    a_nested_answer_is_checked_to_its_leaves => a_nested_answer_is_checked_to_its_leaves_on;
}

fn a_nested_answer_is_checked_to_its_leaves_on(backend: Backend) {
    let Some(h) = start_on(backend, "a_nested_answer_is_checked_to_its_leaves", "", "", "") else { return };
    let visit = h.visit(None, paid());
    let path = "/v1/sites/shop/visits";
    assert_eq!(check("POST", path, 200, JSON, &body(&visit)), Ok(()));
    let mut bad_kind = visit.clone();
    bad_kind["kind"] = json!("borrowed");
    assert!(check("POST", path, 200, JSON, &body(&bad_kind)).unwrap_err().contains("borrowed"));
    let mut bad_site = visit.clone();
    bad_site["site"].as_object_mut().unwrap().remove("hold_secs");
    assert!(check("POST", path, 200, JSON, &body(&bad_site)).unwrap_err().contains("hold_secs"));
}

/// Each checked answer is counted in the coverage file, which lists every
/// documented operation.
#[test]
fn the_coverage_of_the_run_is_written() {
    let h = start("", "", "");
    h.client.get(h.url("/v1/openapi.json")).send().unwrap();
    let report = std::fs::read_to_string(coverage_path()).unwrap();
    let seen = report.lines().find(|l| l.ends_with("  GET /v1/openapi.json 200")).unwrap_or_else(|| panic!("{report}"));
    assert!(seen.trim_start().split(' ').next().unwrap().parse::<u64>().unwrap() >= 1, "{seen}");
    let operations: usize =
        document()["paths"].as_object().unwrap().values().map(|i| i.as_object().unwrap().len()).sum();
    assert!(report.contains(&format!(" of {operations} operations")), "{report}");
}

/// `ringsource openapi` prints the document the server serves.
#[test]
fn the_command_line_prints_the_served_document() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringsource")).arg("openapi").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = start("", "", "");
    let served: Value = h.client.get(h.url("/v1/openapi.json")).send().unwrap().json().unwrap();
    assert_eq!(printed, served);
    assert_eq!(printed["openapi"], "3.1.0");
}
