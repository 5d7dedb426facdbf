//! `GET /v1/calls/{id}/recording`: the call's recording, fetched from the PBX
//! with the site's credentials for it (or made, for a demo call) and
//! streamed on with `Range` support. Roles per `auth::policy`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Admin, blocking};
use crate::http::state::AppState;
use crate::services::recordings::{ByteRange, Credentials, DEMO_SCHEME, RecordingError, byte_range, demo_wav};

/// A PBX that has not started sending the file by then is not coming.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// The client recordings are fetched from the PBXs with.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // Credentials are for one host: a redirect elsewhere would take
        // them along (reqwest drops Authorization across hosts, but a
        // recording has no reason to move).
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap_or_default()
}

/// The type a file's name suggests, for a PBX that sends none.
fn content_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("ogg" | "opus" | "oga") => "audio/ogg",
        Some("m4a" | "mp4") => "audio/mp4",
        Some("webm") => "audio/webm",
        _ => "application/octet-stream",
    }
}

#[utoipa::path(
    get,
    path = "/v1/calls/{id}/recording",
    operation_id = "callRecording",
    tag = "calls",
    summary = "The call's recording, streamed from its PBX",
    description = "Fetched with the site's [sites.recordings] credentials for that PBX, from the hosts configured there only. Range requests are passed on (the demo's recordings are served here, with ranges).",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id."), ("Range" = Option<String>, Header, description = "bytes=first-last")),
    responses(
        (status = 200, description = "The whole recording", content_type = "audio/*", body = Vec<u8>),
        (status = 206, description = "The part asked for", content_type = "audio/*", body = Vec<u8>, headers(("Content-Range" = String))),
        (status = 400, description = "Bad id", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call, or a call without a recording", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call", "no_recording"])))),
        (status = 416, description = "The range is not in the file", headers(("Content-Range" = String))),
        (status = 502, description = "The PBX did not give the recording", body = ErrorBody, extensions(("x-error-codes" = json!(["recording_unavailable"])))),
    )
)]
pub async fn recording(
    _: Admin,
    api: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = id.parse().map_err(|_| RecordingError::BadRequest(format!("call id {:?} is not a number", *id)))?;
    let store = Arc::clone(&api.recordings);
    let call = blocking(move || store.call(id)).await?.ok_or(RecordingError::UnknownCall(id))?;
    let url = call.url.filter(|u| !u.is_empty()).ok_or(RecordingError::NoRecording(id))?;
    let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok());
    if let Some(seed) = url.strip_prefix(DEMO_SCHEME).filter(|_| call.pbx == crate::services::recordings::DEMO_PBX) {
        let seed = seed.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211));
        return Ok(serve_bytes(demo_wav(seed), "audio/wav", range));
    }
    let parsed = url::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| RecordingError::Unavailable { id, reason: "its URL is not an http(s) address".into() })?;
    let mut request = api.recordings_client.get(parsed.clone());
    match api.sites.get(&call.site).and_then(|s| s.recordings.credentials_for(&call.pbx, &parsed)) {
        Some(Credentials::Basic { user, password }) => request = request.basic_auth(user, Some(password)),
        Some(Credentials::Bearer(token)) => request = request.bearer_auth(token),
        None => {}
    }
    if let Some(r) = range {
        request = request.header(header::RANGE.as_str(), r);
    }
    let unavailable = |reason: String| RecordingError::Unavailable { id, reason };
    let upstream = tokio::time::timeout(FIRST_BYTE_TIMEOUT, request.send())
        .await
        .map_err(|_| unavailable(format!("no answer in {} s", FIRST_BYTE_TIMEOUT.as_secs())))?
        .map_err(|e| unavailable(e.without_url().to_string()))?;
    let status = upstream.status();
    if status.as_u16() == 416 {
        let mut resp = HttpResponse::RangeNotSatisfiable();
        if let Some(v) = upstream.headers().get("content-range").and_then(|v| v.to_str().ok()) {
            resp.insert_header((header::CONTENT_RANGE, v.to_owned()));
        }
        return Ok(resp.finish());
    }
    if !(status.as_u16() == 200 || status.as_u16() == 206) {
        let hint = if matches!(status.as_u16(), 401 | 403) {
            format!("; check [sites.recordings.{}] of site {:?}", call.pbx, call.site)
        } else {
            String::new()
        };
        return Err(unavailable(format!("the PBX answered {status}{hint}")).into());
    }
    let mut resp = HttpResponse::build(StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK));
    let passed = |name: &str| upstream.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    resp.insert_header((header::CONTENT_TYPE, passed("content-type").unwrap_or_else(|| content_type(&url).to_owned())));
    if let Some(len) = passed("content-length") {
        resp.insert_header((header::CONTENT_LENGTH, len));
    }
    if let Some(r) = passed("content-range") {
        resp.insert_header((header::CONTENT_RANGE, r));
    }
    resp.insert_header((header::ACCEPT_RANGES, passed("accept-ranges").unwrap_or_else(|| "bytes".to_owned())));
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    Ok(resp.streaming(upstream.bytes_stream()))
}

/// A body held in memory, whole or the part `range` asks for.
fn serve_bytes(body: Vec<u8>, kind: &'static str, range: Option<&str>) -> HttpResponse {
    let len = body.len() as u64;
    let mut resp = match byte_range(range, len) {
        ByteRange::Whole => {
            let mut r = HttpResponse::Ok();
            r.content_type(kind);
            return r
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body);
        }
        ByteRange::Unsatisfiable => {
            return HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{len}")))
                .finish();
        }
        ByteRange::Part { first, last } => {
            let mut r = HttpResponse::PartialContent();
            r.insert_header((header::CONTENT_RANGE, format!("bytes {first}-{last}/{len}")));
            (r, first as usize, last as usize)
        }
    };
    let (first, last) = (resp.1, resp.2);
    resp.0
        .content_type(kind)
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body[first..=last].to_vec())
}
