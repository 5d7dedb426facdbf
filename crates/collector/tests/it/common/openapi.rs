//! Every response the tests receive from the API, checked against the
//! collector's generated OpenAPI document: the operation must list the
//! status, and a JSON body must match that status's schema (JSON Schema
//! 2020-12, which OpenAPI 3.1's schemas are). A body of another media type
//! must be one the operation lists; a status without content must come
//! without a body. Answers outside the document's operations (a 404 for a
//! path the API does not have, a 405 for a method a path does not list)
//! must still be the API's error object.
//!
//! Each check is counted per operation and status; the counts are written
//! to `openapi-coverage.txt` in Cargo's test scratch directory
//! (`target/tmp`) as the run goes, with the statuses no test received.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Value, json};

/// The document as the collector serves it.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(|| {
        serde_json::from_str(ringsource_collector::http::routes::openapi_json())
            .expect("the generated document is JSON")
    });
    &DOC
}

/// What the answer was checked as: `GET /v1/calls/{id}`, or `(no operation)`.
fn operation_key(method: &str, template: Option<&str>) -> String {
    match template {
        Some(t) => format!("{method} {t}"),
        None => "(no operation)".to_owned(),
    }
}

/// The document's path template that `path` is an instance of, preferring
/// the one with the most literal segments (`/pbx/zadarma` over `/pbx/{adapter}`).
fn template_of(path: &str, method: &str) -> Option<&'static str> {
    let paths = document()["paths"].as_object()?;
    let method = method.to_ascii_lowercase();
    paths
        .iter()
        .filter(|(_, item)| item.get(&method).is_some())
        .filter_map(|(template, _)| literal_segments(template, path).map(|n| (n, template.as_str())))
        .max_by_key(|(n, _)| *n)
        .map(|(_, t)| t)
}

/// How many literal segments of `template` `path` matches, if it matches it.
fn literal_segments(template: &str, path: &str) -> Option<usize> {
    let (want, got): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if want.len() != got.len() {
        return None;
    }
    let mut literal = 0;
    for (w, g) in want.iter().zip(&got) {
        if w.starts_with('{') && w.ends_with('}') {
            if g.is_empty() {
                return None;
            }
        } else if w == g {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// A validator for `schema`, whose `$ref`s point into the document.
fn validator(schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}\n{schema:#}"))
}

fn cached_validator(key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    Arc::clone(cache.entry(key.to_owned()).or_insert_with(|| Arc::new(validator(schema))))
}

fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase()).filter(|m| !m.is_empty())
}

fn schema_errors(key: &str, schema: &Value, body: &[u8]) -> Result<(), String> {
    let instance: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e}): {}", excerpt(body)))?;
    let validator = cached_validator(key, schema);
    let errors: Vec<String> =
        validator.iter_errors(&instance).map(|e| format!("at {:?}: {e}", e.instance_path().as_str())).collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("{}\nbody: {}", errors.join("\n"), excerpt(body))) }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() > 2000 { format!("{}…", &text[..text.floor_char_boundary(2000)]) } else { text.into_owned() }
}

/// Checks one answer of the API; `Err` says what does not match. Paths
/// outside `/v1/` (the script tag, the bundle, the dashboard) are not the
/// API's and pass unchecked.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
    if !path.starts_with("/v1/") {
        return Ok(());
    }
    let template = template_of(path, method);
    let key = format!("{} {status}", operation_key(method, template));
    record(&key);
    let Some(template) = template else {
        // Not an operation: a CORS preflight (204, no body), or the API's
        // routing errors.
        if body.is_empty() {
            return Ok(());
        }
        let error = json!({ "$ref": "#/components/schemas/Error" });
        return schema_errors("(no operation)", &error, body);
    };
    let operation = &document()["paths"][template][method.to_ascii_lowercase()];
    let Some(answer) = operation["responses"].get(status.to_string()) else {
        let listed: Vec<&String> = operation["responses"].as_object().map(|r| r.keys().collect()).unwrap_or_default();
        return Err(format!("status {status} is not documented (documented: {listed:?}); body: {}", excerpt(body)));
    };
    let Some(content) = answer.get("content").and_then(Value::as_object) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!("status {status} is documented without a body, but one came: {}", excerpt(body)))
        };
    };
    let media = media_type(content_type).unwrap_or_default();
    // A key may be a media range (`audio/*`): the exact type first, then
    // its range, then anything.
    let range = media.split_once('/').map(|(kind, _)| format!("{kind}/*")).unwrap_or_default();
    let Some(listed) = content.get(&media).or_else(|| content.get(&range)).or_else(|| content.get("*/*")) else {
        let listed: Vec<&String> = content.keys().collect();
        return Err(format!(
            "content type {content_type:?} is not documented for status {status} (documented: {listed:?})"
        ));
    };
    if media == "application/json" { schema_errors(&key, &listed["schema"], body) } else { Ok(()) }
}

/// Panics with what does not match: the test that received the answer fails.
pub fn assert_documented(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    if let Err(e) = check(method, path, status, content_type, body) {
        panic!("{method} {path} answered {status}, which the OpenAPI document does not allow: {e}");
    }
}

static COVERAGE: LazyLock<Mutex<BTreeMap<String, u64>>> = LazyLock::new(Default::default);

fn record(key: &str) {
    let mut coverage = COVERAGE.lock().unwrap_or_else(|e| e.into_inner());
    *coverage.entry(key.to_owned()).or_default() += 1;
    // Rewritten after each answer, so the file holds the whole run when it
    // ends; written aside and renamed (under the lock), so a reader never
    // sees half of it.
    let path = coverage_path();
    let aside = path.with_extension(format!("txt.{}", std::process::id()));
    if std::fs::write(&aside, coverage_report(&coverage)).is_ok() {
        let _ = std::fs::rename(&aside, &path);
    }
}

/// Where the coverage of this run is written.
pub fn coverage_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-coverage.txt")
}

/// Every documented operation and status with the number of answers
/// checked against it, then the answers outside the operations.
fn coverage_report(seen: &BTreeMap<String, u64>) -> String {
    let mut out = String::from("# Answers checked against the OpenAPI document, per operation and status\n");
    let mut documented = Vec::new();
    if let Some(paths) = document()["paths"].as_object() {
        for (template, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                for status in operation["responses"].as_object().into_iter().flatten().map(|(s, _)| s) {
                    documented.push(format!("{} {template} {status}", method.to_uppercase()));
                }
            }
        }
    }
    let (mut operations, mut exercised) = (BTreeMap::<String, bool>::new(), 0);
    for key in &documented {
        let n = seen.get(key).copied().unwrap_or(0);
        let _ = writeln!(out, "{n:>6}  {key}");
        let operation = key.rsplit_once(' ').map_or(key.as_str(), |(op, _)| op).to_owned();
        *operations.entry(operation).or_default() |= n > 0;
        exercised += usize::from(n > 0);
    }
    for (key, n) in seen.iter().filter(|(k, _)| k.starts_with("(no operation)")) {
        let _ = writeln!(out, "{n:>6}  {key}");
    }
    let untested: Vec<&String> = operations.iter().filter(|(_, hit)| !**hit).map(|(op, _)| op).collect();
    let _ = writeln!(
        out,
        "# {exercised} of {} documented statuses seen; {} of {} operations; never exercised: {untested:?}",
        documented.len(),
        operations.len() - untested.len(),
        operations.len()
    );
    out
}
