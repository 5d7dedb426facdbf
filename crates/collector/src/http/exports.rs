//! The exports admin API (admin token):
//!
//! - `GET /v1/exports?site=&status=pending|sent|dead|skipped&kind=ga4|crm&limit=&offset=`
//!   → `{ exports: [row], total, limit, offset }`, newest first;
//! - `POST /v1/exports/{id}/retry` → the dead row, back to `pending` and due
//!   now with its attempts reset (409 `not_dead` for any other status).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::extract::{Admin, blocking, query};
use crate::http::state::AppState;
use crate::services::exports::{ExportKind, ExportStatus, OutboxFilter};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    site: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

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
    Ok(HttpResponse::Ok().json(json!({ "exports": rows, "total": total, "limit": limit, "offset": offset })))
}

pub async fn retry(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("export id {:?} is not a number", *id)))?;
    let exports = state.exports.clone();
    let row = blocking(move || exports.retry(id)).await?;
    Ok(HttpResponse::Ok().json(row))
}
