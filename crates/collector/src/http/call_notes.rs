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

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::auth::{Principal, Role};
use crate::services::call_notes::{BUILT_IN, NotesError};

const MAX_BODY_BYTES: usize = 16 * 1024;

async fn blocking<T: Send + 'static, E: Into<NotesError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, NotesError> {
    // The request's span goes along, so what the work logs names the request.
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f))
        .await
        .map_err(|e| NotesError::Internal(format!("the blocking pool failed: {e}")))?
        .map_err(Into::into)
}

/// Who is writing: the guard's principal (every route here is behind it).
fn author(req: &HttpRequest) -> Result<Principal, NotesError> {
    crate::http::extract::principal_of(req)
        .ok_or_else(|| NotesError::Internal("the auth guard did not run for this route".into()))
}

fn id(name: &str, text: &str) -> Result<i64, NotesError> {
    text.parse().map_err(|_| NotesError::BadRequest(format!("{name} {text:?} is not a number")))
}

async fn read_json<T: serde::de::DeserializeOwned>(body: web::Payload, shape: &str) -> Result<T, NotesError> {
    let bytes = body
        .to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| NotesError::BadRequest(format!("the body is larger than {MAX_BODY_BYTES} bytes")))?
        .map_err(|e| NotesError::BadRequest(format!("cannot read the body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| NotesError::BadRequest(format!("the body is not {shape}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    tag: String,
}

pub async fn add_tag(
    req: HttpRequest,
    api: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = author(&req)?.name();
    let call_id = id("call id", &path)?;
    let body: TagBody = read_json(body, "{\"tag\": \"…\"}").await?;
    let tag = crate::services::call_notes::tag(&body.tag)?;
    let (store, now_ms) = (Arc::clone(&api.notes), api.clock.now_ms());
    let tags = blocking(move || store.add_tag(call_id, &tag, &who, now_ms)).await?;
    Ok(HttpResponse::Ok().json(json!({ "call_id": call_id, "tags": tags })))
}

pub async fn remove_tag(api: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (call, tag) = path.into_inner();
    let call_id = id("call id", &call)?;
    let tag = crate::services::call_notes::tag(&tag)?;
    let store = Arc::clone(&api.notes);
    let tags = blocking(move || store.remove_tag(call_id, &tag)).await?;
    Ok(HttpResponse::Ok().json(json!({ "call_id": call_id, "tags": tags })))
}

pub async fn list_notes(api: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let call_id = id("call id", &path)?;
    let store = Arc::clone(&api.notes);
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
    api: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = author(&req)?.name();
    let call_id = id("call id", &path)?;
    let body: NoteBody = read_json(body, "{\"body\": \"…\"}").await?;
    let text = crate::services::call_notes::note(&body.body)?;
    let (store, now_ms) = (Arc::clone(&api.notes), api.clock.now_ms());
    let note = blocking(move || store.add_note(call_id, &who, &text, now_ms)).await?;
    Ok(HttpResponse::Created().json(note))
}

pub async fn remove_note(
    req: HttpRequest,
    api: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let principal = author(&req)?;
    let (call, note) = path.into_inner();
    let (call_id, note_id) = (id("call id", &call)?, id("note id", &note)?);
    let (who, any_author) = (principal.name(), principal.role == Role::Admin);
    let store = Arc::clone(&api.notes);
    blocking(move || store.remove_note(call_id, note_id, &who, any_author)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsQuery {
    site: Option<String>,
}

pub async fn tags_in_use(req: HttpRequest, api: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let q = web::Query::<TagsQuery>::from_query(req.query_string())
        .map_err(|e| NotesError::BadRequest(format!("query string: {e}")))?;
    let site = q
        .into_inner()
        .site
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NotesError::BadRequest("site is required".into()))?;
    if !api.sites.contains_key(&site) {
        return Err(NotesError::UnknownSite(site).into());
    }
    let store = Arc::clone(&api.notes);
    let tags = blocking(move || store.tags_in_use(&site)).await?;
    Ok(HttpResponse::Ok().json(json!({ "built_in": BUILT_IN, "tags": tags })))
}

/// Adds `tags` to each call of a calls API answer: `{ calls: [...] }` or a
/// call detail. Without the notes store (an app built without it) the
/// answer stays as it is.
pub async fn add_tags(req: &HttpRequest, body: &mut Value) -> Result<(), NotesError> {
    let Some(api) = req.app_data::<web::Data<AppState>>() else { return Ok(()) };
    let ids: Vec<i64> = match body.get("calls").and_then(Value::as_array) {
        Some(calls) => calls.iter().filter_map(|c| c["id"].as_i64()).collect(),
        None => body.get("id").and_then(Value::as_i64).into_iter().collect(),
    };
    let store = Arc::clone(&api.notes);
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
