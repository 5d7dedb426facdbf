//! The exports admin API (admin token):
//!
//! - `GET /v1/exports?site=&status=pending|sent|dead|skipped&kind=ga4|crm&limit=&offset=`
//!   → `{ exports: [row], total, limit, offset }`, newest first;
//! - `POST /v1/exports/{id}/retry` → the dead row, back to `pending` and due
//!   now with its attempts reset (409 `not_dead` for any other status).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::clock::Clock;
use crate::http::calls::Admin;
use crate::http::error::{AdminError, blocking, query};
use crate::storage::money::{ExportKind, ExportStatus, OutboxFilter, OutboxStore, RetryError};

/// The routes this module registers.
pub const ROUTES: &[(&str, &str)] = &[("GET", "/v1/exports"), ("POST", "/v1/exports/{id}/retry")];

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

pub struct ExportsApi {
    pub store: Arc<dyn OutboxStore>,
    pub clock: Arc<dyn Clock>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/exports", web::get().to(list)).route("/v1/exports/{id}/retry", web::post().to(retry));
}

impl From<RetryError> for AdminError {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::Unknown(_) => AdminError::NotFound { code: "unknown_export", message: e.to_string() },
            RetryError::NotDead { .. } => AdminError::Conflict { code: "not_dead", message: e.to_string() },
            RetryError::Storage(s) => AdminError::Storage(s),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    site: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list(_: Admin, state: web::Data<ExportsApi>, req: HttpRequest) -> Result<HttpResponse, AdminError> {
    let q: ListQuery = query(&req)?;
    let status =
        match q.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(ExportStatus::from_name(s).ok_or_else(|| {
                AdminError::BadRequest(format!("status={s:?}: expected pending, sent, dead or skipped"))
            })?),
        };
    let kind = match q.kind.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(k) => Some(
            ExportKind::from_name(k)
                .ok_or_else(|| AdminError::BadRequest(format!("kind={k:?}: expected ga4 or crm")))?,
        ),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AdminError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = OutboxFilter { site: q.site.filter(|s| !s.is_empty()), status, kind, limit, offset };
    let store = Arc::clone(&state.store);
    let (rows, total) = blocking(move || store.list_exports(&filter)).await?;
    Ok(HttpResponse::Ok().json(json!({ "exports": rows, "total": total, "limit": limit, "offset": offset })))
}

async fn retry(_: Admin, state: web::Data<ExportsApi>, id: web::Path<String>) -> Result<HttpResponse, AdminError> {
    let id: i64 = id.parse().map_err(|_| AdminError::BadRequest(format!("export id {:?} is not a number", *id)))?;
    let store = Arc::clone(&state.store);
    let clock = Arc::clone(&state.clock);
    let row = blocking(move || store.retry_export(id, clock.as_ref())).await?;
    Ok(HttpResponse::Ok().json(row))
}
