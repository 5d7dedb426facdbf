//! One log line per request, and the request id that ties it to the
//! client's view and to everything logged while the request ran.
//!
//! The id is the client's `X-Request-Id` when that is short and plain
//! (a proxy's or a PBX's own id, so both logs can be joined), otherwise a
//! fresh UUIDv7; it is answered in `X-Request-Id` either way.
//!
//! The line names the route's pattern (`/v1/sites/{site}/visits`), never the
//! raw path or query, which can carry ids and phone numbers; nor the
//! client's address, which is personal data. Errors carry their code, not
//! their message, which may repeat what the client sent.
//!
//! Requests that went well are logged at `debug`, not `info`: with a line
//! per lease the collector spent 40.2 µs of CPU per lease against 32.5 µs
//! before logs (+23 %, quiet bench machine, `perf` over `cargo xtask bench
//! collector`'s load), past the 10 % the lease rate may lose; without the
//! line, 34.5 µs (+6 %: the id, the span, this middleware). Refusals (4xx)
//! are warnings and failures (5xx) errors, so the default level shows them;
//! the rest is `RINGSOURCE_LOG=info,ringsource_collector::requests=debug`.
//! A readiness probe's 503 (`not_ready`) is at `debug` too: a balancer asks
//! every second or two, and the change it reports is logged once by
//! [`crate::services::health`].

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use serde::Deserialize;
use tracing::Instrument;

/// The target of the request lines: `RINGSOURCE_LOG=info,ringsource_collector::requests=debug`
/// adds the lines of requests that went well to the default.
pub const TARGET: &str = "ringsource_collector::requests";
/// The request id's header, read and answered.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest incoming id taken as it is; a UUID is 36.
pub const MAX_INCOMING_ID: usize = 64;

/// Wraps the whole app (outside the edge's guard, so its answers are
/// logged too) with the request's id, span and line.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = incoming(req.headers()).unwrap_or_else(fresh_id);
    let id_text = id.to_str().unwrap_or_default();
    // At the error level, so whichever level the operator set, anything
    // logged while the request runs names the request it belongs to.
    let span = tracing::error_span!(target: TARGET, "request", request_id = %id_text);
    let method = req.method().clone();
    let answer = next.call(req).instrument(span).await;
    let mut res = match answer {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            // Only a middleware's error arrives here; actix turns it into the response.
            let status = e.as_response_error().status_code();
            line(id_text, &method, None, status, started, None);
            return Err(e);
        }
    };
    let status = res.status();
    let code = if status.is_client_error() || status.is_server_error() {
        let (taken, code) = error_code(res);
        res = taken;
        code
    } else {
        None
    };
    let route = res.request().match_pattern();
    line(id_text, &method, route.as_deref(), status, started, code.as_deref());
    res.headers_mut().insert(REQUEST_ID, id);
    Ok(res)
}

/// The client's id when it is at most [`MAX_INCOMING_ID`] bytes of letters,
/// digits and `-_.:`: nothing that could forge a log line or a field.
fn incoming(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get(&REQUEST_ID)?;
    let bytes = value.as_bytes();
    let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
    (!bytes.is_empty() && bytes.len() <= MAX_INCOMING_ID && bytes.iter().all(plain)).then(|| value.clone())
}

fn fresh_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

/// The `code` of a JSON error body (`{ "error": { "code", … } }`), whoever
/// answered it: a handler, the edge's guard, the static files. The body is
/// put back as it was. Error bodies are small and already in memory; a
/// streamed one is left alone and logged without a code.
fn error_code(res: ServiceResponse<BoxBody>) -> (ServiceResponse<BoxBody>, Option<String>) {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        code: String,
    }
    let (req, res) = res.into_parts();
    let (res, body) = res.into_parts();
    match body.try_into_bytes() {
        Ok(bytes) => {
            let code = serde_json::from_slice::<Envelope>(&bytes).ok().map(|e| e.error.code);
            (ServiceResponse::new(req, res.set_body(BoxBody::new(bytes))), code)
        }
        Err(body) => (ServiceResponse::new(req, res.set_body(body)), None),
    }
}

/// The request's line: debug when it went well (see the module's docs),
/// warn for a client error, error for a server error.
fn line(id: &str, method: &Method, route: Option<&str>, status: StatusCode, started: Instant, code: Option<&str>) {
    // Whole microseconds: `0.412`, not `0.41200000000000003`.
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let (route, status, code) = (route.unwrap_or("-"), status.as_u16(), code.unwrap_or("-"));
    // Written as they are (`%`), not quoted and escaped: none of them can
    // hold a space or a quote (a method is a token, the id was checked, the
    // route and the code are the collector's own), and a line is written
    // for every request.
    match status {
        _ if code == crate::http::health::NOT_READY => tracing::debug!(
            target: TARGET,
            request_id = %id, method = %method, route = %route, status, latency_ms, code = %code,
            "not ready"
        ),
        500.. => tracing::error!(
            target: TARGET,
            request_id = %id, method = %method, route = %route, status, latency_ms, code = %code,
            "request failed"
        ),
        400..500 => tracing::warn!(
            target: TARGET,
            request_id = %id, method = %method, route = %route, status, latency_ms, code = %code,
            "request refused"
        ),
        _ => tracing::debug!(
            target: TARGET,
            request_id = %id, method = %method, route = %route, status, latency_ms,
            "request"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_plain_incoming_id_is_kept() {
        for id in ["abc", "0190f5d4-7c1e-7a2b-9c3d-1e2f3a4b5c6d", "lb:1.2_x-y", &"a".repeat(MAX_INCOMING_ID)] {
            assert_eq!(incoming(&with(id)).unwrap(), id);
        }
    }

    #[test]
    fn a_long_or_unsafe_incoming_id_is_replaced() {
        assert!(incoming(&HeaderMap::new()).is_none());
        for id in ["", "two words", "a\"b", "x=1", "<script>", "тест", &"a".repeat(MAX_INCOMING_ID + 1)] {
            let Ok(value) = HeaderValue::from_bytes(id.as_bytes()) else { continue };
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, value);
            assert!(incoming(&headers).is_none(), "{id:?}");
        }
    }

    #[test]
    fn fresh_ids_are_uuids_and_differ() {
        let (a, b) = (fresh_id(), fresh_id());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(a.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }
}
