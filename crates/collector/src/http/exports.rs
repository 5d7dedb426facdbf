//! The exports admin API (admin token):
//!
//! - `GET /v1/exports?site=&status=pending|sent|dead|skipped&kind=ga4|crm&limit=&offset=`
//!   → `{ exports: [row], total, limit, offset }`, newest first;
//! - `POST /v1/exports/{id}/retry` → the dead row, back to `pending` and due
//!   now with its attempts reset (409 `not_dead` for any other status).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Admin, blocking, query};
use crate::http::state::AppState;
use crate::services::exports::{ExportKind, ExportStatus, OutboxFilter, OutboxRow};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Site id.
    site: Option<String>,
    /// Empty means any.
    #[param(schema_with = status_or_any)]
    status: Option<String>,
    /// Empty means any.
    #[param(schema_with = kind_or_any)]
    kind: Option<String>,
    /// 1-1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Rows to skip.
    offset: Option<u32>,
}

/// An export status, or empty for any.
fn status_or_any() -> Schema {
    let statuses = [ExportStatus::Pending, ExportStatus::Sent, ExportStatus::Dead, ExportStatus::Skipped];
    let names = statuses.map(ExportStatus::as_str).into_iter().chain([""]);
    ObjectBuilder::new().schema_type(Type::String).description(Some("Empty means any.")).enum_values(Some(names)).into()
}

/// An export kind, or empty for any.
fn kind_or_any() -> Schema {
    let names = [ExportKind::Ga4, ExportKind::Crm].map(ExportKind::as_str).into_iter().chain([""]);
    ObjectBuilder::new().schema_type(Type::String).description(Some("Empty means any.")).enum_values(Some(names)).into()
}

/// `GET /v1/exports`: one page of the outbox.
#[derive(Debug, Serialize, ToSchema)]
struct ExportList {
    exports: Vec<OutboxRow>,
    total: u64,
    limit: u32,
    offset: u32,
}

#[utoipa::path(
    get,
    path = "/v1/exports",
    operation_id = "listExports",
    tag = "exports",
    summary = "The exports outbox (GA4 and CRM), newest first; status=dead is the dead letter",
    security(("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The rows", body = ExportList),
        (status = 400, description = "Bad parameter", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
    )
)]
pub async fn list(_: Admin, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    let status =
        match q.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(ExportStatus::from_name(s).ok_or_else(|| {
                ApiError::bad_request(format!("status={s:?}: expected pending, sent, dead or skipped"))
            })?),
        };
    let kind = match q.kind.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(k) => Some(
            ExportKind::from_name(k)
                .ok_or_else(|| ApiError::bad_request(format!("kind={k:?}: expected ga4 or crm")))?,
        ),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = OutboxFilter { site: q.site.filter(|s| !s.is_empty()), status, kind, limit, offset };
    let exports = state.exports.clone();
    let (rows, total) = blocking(move || exports.list(&filter)).await?;
    Ok(HttpResponse::Ok().json(ExportList { exports: rows, total, limit, offset }))
}

#[utoipa::path(
    post,
    path = "/v1/exports/{id}/retry",
    operation_id = "retryExport",
    tag = "exports",
    summary = "Requeue a dead export: pending, due now, attempts reset",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Export id.")),
    responses(
        (status = 200, description = "The requeued row", body = OutboxRow),
        (status = 400, description = "Bad id", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "No such export", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_export"])))),
        (status = 409, description = "Only a dead export can be retried", body = ErrorBody, extensions(("x-error-codes" = json!(["not_dead"])))),
    )
)]
pub async fn retry(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("export id {:?} is not a number", *id)))?;
    let exports = state.exports.clone();
    let row = blocking(move || exports.retry(id)).await?;
    Ok(HttpResponse::Ok().json(row))
}
