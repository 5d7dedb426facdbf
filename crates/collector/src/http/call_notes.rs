//! The tags and notes API (roles per `auth::policy`):
//!
//! - `POST /v1/calls/{id}/tags` `{ "tag" }` → `{ call_id, tags }`;
//! - `DELETE /v1/calls/{id}/tags/{tag}` → `{ call_id, tags }`;
//! - `GET /v1/calls/{id}/notes` → `{ notes: [{ id, call_id, author, body, at_ms }] }`;
//! - `POST /v1/calls/{id}/notes` `{ "body" }` → 201, the note;
//! - `DELETE /v1/calls/{id}/notes/{note}` → 204 (its author, or an admin);
//! - `GET /v1/tags?site=` → `{ built_in, tags: [{ tag, calls }] }`.
//!
//! The calls API's answers carry each call's `tags` ([`add_tags`]).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::services::StorageError;
use crate::services::auth::{Principal, Role};
use crate::services::call_notes::{BUILT_IN, NoteError};
use crate::services::call_notes::{NotesStore, NotesStoreError};

const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct NotesApi {
    pub store: Arc<dyn NotesStore>,
    pub clock: Arc<dyn Clock>,
    /// Configured site ids, for `GET /v1/tags`.
    pub sites: std::collections::HashSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotesApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error(transparent)]
    Store(#[from] NotesStoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl NotesApiError {
    fn code(&self) -> &'static str {
        match self {
            NotesApiError::BadRequest(_) | NotesApiError::Store(NotesStoreError::Note(_)) => "bad_request",
            NotesApiError::UnknownSite(_) => "unknown_site",
            NotesApiError::Store(NotesStoreError::UnknownCall(_)) => "unknown_call",
            NotesApiError::Store(NotesStoreError::UnknownNote { .. }) => "unknown_note",
            NotesApiError::Store(NotesStoreError::NotAuthor { .. }) => "forbidden",
            NotesApiError::Store(NotesStoreError::Storage(_)) => "storage_error",
            NotesApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for NotesApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            NotesApiError::BadRequest(_) | NotesApiError::Store(NotesStoreError::Note(_)) => StatusCode::BAD_REQUEST,
            NotesApiError::UnknownSite(_)
            | NotesApiError::Store(NotesStoreError::UnknownCall(_) | NotesStoreError::UnknownNote { .. }) => {
                StatusCode::NOT_FOUND
            }
            NotesApiError::Store(NotesStoreError::NotAuthor { .. }) => StatusCode::FORBIDDEN,
            NotesApiError::Store(NotesStoreError::Storage(_)) | NotesApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            crate::outage::server_error(self);
        }
        HttpResponse::build(self.status_code())
            .json(json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}

impl From<StorageError> for NotesApiError {
    fn from(e: StorageError) -> Self {
        NotesApiError::Store(NotesStoreError::Storage(e))
    }
}

impl From<NoteError> for NotesApiError {
    fn from(e: NoteError) -> Self {
        NotesApiError::Store(NotesStoreError::Note(e))
    }
}

async fn blocking<T: Send + 'static, E: Into<NotesApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, NotesApiError> {
    web::block(f)
        .await
        .map_err(|e| NotesApiError::Internal(format!("the blocking pool failed: {e}")))?
        .map_err(Into::into)
}

/// Who is writing: the guard's principal (every route here is behind it).
fn author(req: &HttpRequest) -> Result<Principal, NotesApiError> {
    crate::http::auth::principal_of(req)
        .ok_or_else(|| NotesApiError::Internal("the auth guard did not run for this route".into()))
}

fn id(name: &str, text: &str) -> Result<i64, NotesApiError> {
    text.parse().map_err(|_| NotesApiError::BadRequest(format!("{name} {text:?} is not a number")))
}

async fn read_json<T: serde::de::DeserializeOwned>(body: web::Payload, shape: &str) -> Result<T, NotesApiError> {
    let bytes = body
        .to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| NotesApiError::BadRequest(format!("the body is larger than {MAX_BODY_BYTES} bytes")))?
        .map_err(|e| NotesApiError::BadRequest(format!("cannot read the body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| NotesApiError::BadRequest(format!("the body is not {shape}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    tag: String,
}

pub async fn add_tag(
    req: HttpRequest,
    api: web::Data<NotesApi>,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, NotesApiError> {
    let who = author(&req)?.name();
    let call_id = id("call id", &path)?;
    let body: TagBody = read_json(body, "{\"tag\": \"…\"}").await?;
    let tag = crate::services::call_notes::tag(&body.tag)?;
    let (store, now_ms) = (Arc::clone(&api.store), api.clock.now_ms());
    let tags = blocking(move || store.add_tag(call_id, &tag, &who, now_ms)).await?;
    Ok(HttpResponse::Ok().json(json!({ "call_id": call_id, "tags": tags })))
}

pub async fn remove_tag(
    api: web::Data<NotesApi>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, NotesApiError> {
    let (call, tag) = path.into_inner();
    let call_id = id("call id", &call)?;
    let tag = crate::services::call_notes::tag(&tag)?;
    let store = Arc::clone(&api.store);
    let tags = blocking(move || store.remove_tag(call_id, &tag)).await?;
    Ok(HttpResponse::Ok().json(json!({ "call_id": call_id, "tags": tags })))
}

pub async fn list_notes(api: web::Data<NotesApi>, path: web::Path<String>) -> Result<HttpResponse, NotesApiError> {
    let call_id = id("call id", &path)?;
    let store = Arc::clone(&api.store);
    let notes = blocking(move || store.notes(call_id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "notes": notes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    body: String,
}

pub async fn add_note(
    req: HttpRequest,
    api: web::Data<NotesApi>,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, NotesApiError> {
    let who = author(&req)?.name();
    let call_id = id("call id", &path)?;
    let body: NoteBody = read_json(body, "{\"body\": \"…\"}").await?;
    let text = crate::services::call_notes::note(&body.body)?;
    let (store, now_ms) = (Arc::clone(&api.store), api.clock.now_ms());
    let note = blocking(move || store.add_note(call_id, &who, &text, now_ms)).await?;
    Ok(HttpResponse::Created().json(note))
}

pub async fn remove_note(
    req: HttpRequest,
    api: web::Data<NotesApi>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, NotesApiError> {
    let principal = author(&req)?;
    let (call, note) = path.into_inner();
    let (call_id, note_id) = (id("call id", &call)?, id("note id", &note)?);
    let (who, any_author) = (principal.name(), principal.role == Role::Admin);
    let store = Arc::clone(&api.store);
    blocking(move || store.remove_note(call_id, note_id, &who, any_author)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsQuery {
    site: Option<String>,
}

pub async fn tags_in_use(req: HttpRequest, api: web::Data<NotesApi>) -> Result<HttpResponse, NotesApiError> {
    let q = web::Query::<TagsQuery>::from_query(req.query_string())
        .map_err(|e| NotesApiError::BadRequest(format!("query string: {e}")))?;
    let site = q
        .into_inner()
        .site
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NotesApiError::BadRequest("site is required".into()))?;
    if !api.sites.contains(&site) {
        return Err(NotesApiError::UnknownSite(site));
    }
    let store = Arc::clone(&api.store);
    let tags = blocking(move || store.tags_in_use(&site)).await?;
    Ok(HttpResponse::Ok().json(json!({ "built_in": BUILT_IN, "tags": tags })))
}

/// Adds `tags` to each call of a calls API answer: `{ calls: [...] }` or a
/// call detail. Without the notes store (an app built without it) the
/// answer stays as it is.
pub async fn add_tags(req: &HttpRequest, body: &mut Value) -> Result<(), NotesApiError> {
    let Some(api) = req.app_data::<web::Data<NotesApi>>() else { return Ok(()) };
    let ids: Vec<i64> = match body.get("calls").and_then(Value::as_array) {
        Some(calls) => calls.iter().filter_map(|c| c["id"].as_i64()).collect(),
        None => body.get("id").and_then(Value::as_i64).into_iter().collect(),
    };
    let store = Arc::clone(&api.store);
    let tags = blocking(move || store.tags_of_calls(&ids)).await?;
    let put = |call: &mut Value| {
        let id = call["id"].as_i64().unwrap_or_default();
        call["tags"] = json!(tags.get(&id).cloned().unwrap_or_default());
    };
    match body.get_mut("calls").and_then(Value::as_array_mut) {
        Some(calls) => calls.iter_mut().for_each(put),
        None => put(body),
    }
    Ok(())
}
