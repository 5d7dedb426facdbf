//! `GET /v1/health` (liveness) and `GET /v1/ready` (readiness) for a load
//! balancer or a supervisor: public, not rate limited, and logged only at
//! debug (a probe a second would otherwise fill the log). Readiness is
//! [`crate::services::health`]'s verdict.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::{ErrorBody, ErrorObject};
use crate::http::state::AppState;

/// The code of a readiness refusal. [`crate::http::requests`] logs its
/// lines at debug: the change itself is logged once, by the health service.
pub const NOT_READY: &str = "not_ready";

/// The answer of both probes when they pass.
#[derive(Debug, Serialize, ToSchema)]
struct Status {
    /// `ok` (liveness) or `ready` (readiness).
    #[schema(pattern = "^(ok|ready)$")]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/v1/health",
    operation_id = "health",
    tag = "meta",
    summary = "Liveness: the process answers HTTP",
    description = "Touches nothing else (not the database): a load balancer or supervisor that restarted \
instances on a database outage would turn one fault into many. Public, not rate limited.",
    responses((status = 200, description = "The process is alive", body = Status))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/v1/ready",
    operation_id = "ready",
    tag = "meta",
    summary = "Readiness: send this instance traffic",
    description = "200 while the database answers a trivial query through the writer within 1 s and the \
instance is not shutting down. From the first stop signal (SIGTERM, SIGINT) it answers 503 for \
server.drain_secs before the listener closes, so a load balancer probing it stops sending first. \
Public, not rate limited.",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Not ready: shutting down, the database writer stopped, or the database \
did not answer in time; the message says which", body = ErrorBody, extensions(("x-error-codes" = json!(["not_ready"])))),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.health.ready().await {
        Ok(()) => HttpResponse::Ok().json(Status { status: "ready" }),
        // Built here rather than as an ApiError: a 503 of readiness is the
        // state the probe asks about, not a server error for the outage log.
        Err(e) => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(ErrorBody {
            error: ErrorObject { code: NOT_READY.to_owned(), message: e.to_string(), field: None, rows: None },
        }),
    }
}
