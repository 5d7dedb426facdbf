//! The tags and notes API (roles per `auth::policy`):
//!
//! - `POST /v1/calls/{id}/tags` `{ "tag" }` → `{ call_id, tags }`;
//! - `DELETE /v1/calls/{id}/tags/{tag}` → `{ call_id, tags }`;
//! - `GET /v1/calls/{id}/notes` → `{ notes: [{ id, call_id, author, body, at_ms }] }`;
//! - `POST /v1/calls/{id}/notes` `{ "body" }` → 201, the note;
//! - `DELETE /v1/calls/{id}/notes/{note}` → 204 (its author, or an admin);
//! - `GET /v1/tags?site=` → `{ built_in, tags: [{ tag, calls }] }`.
//!
//! The calls API's answers carry each call's `tags` ([`crate::http::calls`]).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Admin, blocking, json, principal_of, query};
use crate::http::state::AppState;
use crate::services::auth::{Principal, Role};
use crate::services::call_notes::{BUILT_IN, Note, NotesError, TagCount};

const MAX_BODY_BYTES: usize = 16 * 1024;

/// Who is writing: the guard's principal (every route here is behind it).
fn author(req: &HttpRequest) -> Result<Principal, NotesError> {
    principal_of(req).ok_or_else(|| NotesError::Internal("the auth guard did not run for this route".into()))
}

fn id(name: &str, text: &str) -> Result<i64, NotesError> {
    text.parse().map_err(|_| NotesError::BadRequest(format!("{name} {text:?} is not a number")))
}

/// `POST /v1/calls/{id}/tags`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TagBody {
    /// Up to 32 characters; case and runs of spaces are folded.
    tag: String,
}

/// A call's tags after a change.
#[derive(Serialize, ToSchema)]
struct CallTags {
    call_id: i64,
    /// Sorted.
    tags: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/v1/calls/{id}/tags",
    operation_id = "tagCall",
    tag = "notes",
    summary = "Tag a call (a tag it has already is kept once)",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id.")),
    request_body = TagBody,
    responses(
        (status = 200, description = "The call's tags", body = CallTags),
        (status = 400, description = "Bad id or tag, or too many tags", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call"])))),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn add_tag(
    _: Admin,
    req: HttpRequest,
    api: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = author(&req)?.name();
    let call_id = id("call id", &path)?;
    let body: TagBody = json(body, MAX_BODY_BYTES, "expected {\"tag\": \"…\"}").await?;
    let tag = crate::services::call_notes::tag(&body.tag)?;
    let (store, now_ms) = (Arc::clone(&api.notes), api.clock.now_ms());
    let tags = blocking(move || store.add_tag(call_id, &tag, &who, now_ms)).await?;
    Ok(HttpResponse::Ok().json(CallTags { call_id, tags }))
}

#[utoipa::path(
    delete,
    path = "/v1/calls/{id}/tags/{tag}",
    operation_id = "untagCall",
    tag = "notes",
    summary = "Take a tag off a call",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id."), ("tag" = String, Path, description = "The tag (folded as stored).")),
    responses(
        (status = 200, description = "The call's tags", body = CallTags),
        (status = 400, description = "Bad id or tag", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call"])))),
    )
)]
pub async fn remove_tag(
    _: Admin,
    api: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (call, tag) = path.into_inner();
    let call_id = id("call id", &call)?;
    let tag = crate::services::call_notes::tag(&tag)?;
    let store = Arc::clone(&api.notes);
    let tags = blocking(move || store.remove_tag(call_id, &tag)).await?;
    Ok(HttpResponse::Ok().json(CallTags { call_id, tags }))
}

/// `GET /v1/calls/{id}/notes`.
#[derive(Serialize, ToSchema)]
struct NoteList {
    /// Oldest first.
    notes: Vec<Note>,
}

#[utoipa::path(
    get,
    path = "/v1/calls/{id}/notes",
    operation_id = "listNotes",
    tag = "notes",
    summary = "A call's notes",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id.")),
    responses(
        (status = 200, description = "The notes", body = NoteList),
        (status = 400, description = "Bad id", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call"])))),
    )
)]
pub async fn list_notes(_: Admin, api: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let call_id = id("call id", &path)?;
    let store = Arc::clone(&api.notes);
    let notes = blocking(move || store.notes(call_id)).await?;
    Ok(HttpResponse::Ok().json(NoteList { notes }))
}

/// `POST /v1/calls/{id}/notes`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    /// Up to 2000 characters, not blank.
    body: String,
}

#[utoipa::path(
    post,
    path = "/v1/calls/{id}/notes",
    operation_id = "addNote",
    tag = "notes",
    summary = "Write a note on a call",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id.")),
    request_body = NoteBody,
    responses(
        (status = 201, description = "The note", body = Note),
        (status = 400, description = "Bad id or note", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call"])))),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn add_note(
    _: Admin,
    req: HttpRequest,
    api: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = author(&req)?.name();
    let call_id = id("call id", &path)?;
    let body: NoteBody = json(body, MAX_BODY_BYTES, "expected {\"body\": \"…\"}").await?;
    let text = crate::services::call_notes::note(&body.body)?;
    let (store, now_ms) = (Arc::clone(&api.notes), api.clock.now_ms());
    let note = blocking(move || store.add_note(call_id, &who, &text, now_ms)).await?;
    Ok(HttpResponse::Created().json(note))
}

#[utoipa::path(
    delete,
    path = "/v1/calls/{id}/notes/{note}",
    operation_id = "removeNote",
    tag = "notes",
    summary = "Remove a note (its author, or an admin)",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id."), ("note" = i64, Path, description = "Note id.")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Bad id", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 403, description = "Someone else's note", body = ErrorBody, extensions(("x-error-codes" = json!(["forbidden", "csrf_token", "site_forbidden", "site_required"])))),
        (status = 404, description = "Unknown call or note", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call", "unknown_note"])))),
    )
)]
pub async fn remove_note(
    _: Admin,
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TagsQuery {
    /// Site id (required).
    #[param(required = true, min_length = 1)]
    site: Option<String>,
}

/// `GET /v1/tags`.
#[derive(Serialize, ToSchema)]
struct TagsInUse {
    /// The tags the dashboard always offers.
    built_in: [&'static str; 3],
    /// Most used first.
    tags: Vec<TagCount>,
}

#[utoipa::path(
    get,
    path = "/v1/tags",
    operation_id = "tagsInUse",
    tag = "notes",
    summary = "A site's tags and how many calls carry each",
    security(("adminToken" = [])),
    params(TagsQuery),
    responses(
        (status = 200, description = "The tags", body = TagsInUse),
        (status = 400, description = "No site", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
    )
)]
pub async fn tags_in_use(_: Admin, req: HttpRequest, api: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let q: TagsQuery = query(&req)?;
    let site = q.site.filter(|s| !s.is_empty()).ok_or_else(|| NotesError::BadRequest("site is required".into()))?;
    if !api.sites.contains_key(&site) {
        return Err(NotesError::UnknownSite(site).into());
    }
    let store = Arc::clone(&api.notes);
    let tags = blocking(move || store.tags_in_use(&site)).await?;
    Ok(HttpResponse::Ok().json(TagsInUse { built_in: BUILT_IN, tags }))
}
