//! The one error type of the HTTP edge: every route answers
//! `{ "error": { "code", "message", …details } }` with a status from here.
//! The services' errors become an [`ApiError`] in the `From` impls below,
//! so the code and status of each failure are decided in one place.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::fields::FieldError;
use crate::pbx::{AuthFailure, PbxError};
use crate::services::auth::AuthError;
use crate::services::auth::secrets::SecretError;
use crate::services::auth::{UserError, UserStoreError};
use crate::services::call_notes::NotesError;
use crate::services::call_notes::{NoteError, NotesStoreError};
use crate::services::calls::{CallsError, RecordError, SinkError};
use crate::services::exports::RetryError;
use crate::services::money::RevenueError;
use crate::services::privacy::PrivacyError;
use crate::services::recordings::RecordingError;
use crate::services::{PageUrlError, StorageError};

/// One bad field of one uploaded row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowIssue {
    /// The line in a CSV upload (the header is line 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The index in a JSON array (from 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RowIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.index) {
            (Some(l), _) => write!(f, "line {l}, {}: {}", self.field, self.message),
            (None, Some(i)) => write!(f, "[{i}].{}: {}", self.field, self.message),
            (None, None) => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

// The schema of `ApiError`'s answers, which write their details beside code
// and message: the tests below and the integration tests' check of every
// answer hold them to this shape (no other key).
/// Every error answer: `{ "error": { "code", "message", … } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong: a stable code for programs, a message for people, and
/// the details that name what to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorObject {
    /// Stable and machine-readable; each operation lists the codes of each
    /// of its statuses.
    pub code: String,
    pub message: String,
    /// With `bad_request` and `field_too_long` from the browser routes: the
    /// path of the field in the body (`page.url`, `touch.source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `invalid_rows`: every bad field, by CSV line (the header is
    /// line 1) or JSON index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowIssue>>,
}

/// A header some refusals carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    RetryAfter(u64),
    /// `WWW-Authenticate: Bearer` (the admin API).
    Bearer,
    /// `WWW-Authenticate: Basic …`, for clients that wait for the challenge
    /// before they send basic credentials (FreeSWITCH).
    Basic,
}

/// An answer other than success: status, a stable code for programs, a
/// message for people, and details that name what to fix (a field, rows).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Put beside `code` and `message` in the error object.
    pub details: Map<String, Value>,
    hint: Option<Hint>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Map::new(), hint: None }
    }

    pub fn with_detail(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    pub fn bad_request(message: impl fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", format!("bad request: {message}"))
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unknown_site(id: &str) -> Self {
        Self::not_found("unknown_site", format!("no site {id:?} is configured"))
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this address; retry in {retry_after_secs} s"),
        );
        e.hint = Some(Hint::RetryAfter(retry_after_secs));
        e
    }

    /// A refused admin request (no token configured, or the wrong one).
    pub fn admin_unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.hint = Some(Hint::Bearer);
        e
    }

    /// Uploaded rows that failed validation: nothing was stored. Every bad
    /// field at once, so a spreadsheet can be fixed in one go.
    pub fn invalid_rows(rows: Vec<RowIssue>) -> Self {
        let message = format!(
            "{} invalid row field(s), nothing stored; first: {}",
            rows.len(),
            rows.first().map(ToString::to_string).unwrap_or_default()
        );
        Self::new(StatusCode::BAD_REQUEST, "invalid_rows", message).with_detail("rows", json!(rows))
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", format!("internal error: {message}"))
    }

    pub fn storage(e: &StorageError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", format!("storage failed: {e}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            // The client gets the code; the operator gets the context.
            crate::outage::server_error(self);
        }
        let mut resp = HttpResponse::build(self.status);
        match self.hint {
            Some(Hint::RetryAfter(secs)) => {
                resp.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            Some(Hint::Bearer) => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Some(Hint::Basic) => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"ringsource\", charset=\"UTF-8\""));
            }
            None => {}
        }
        let mut error = Map::new();
        error.insert("code".to_owned(), Value::from(self.code));
        error.insert("message".to_owned(), Value::from(self.message.as_str()));
        error.extend(self.details.clone());
        resp.json(json!({ "error": error }))
    }
}

// ------------------------------------------------- the services' errors

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        Self::storage(&e)
    }
}

impl From<FieldError> for ApiError {
    /// The field's path too, so a client need not parse the message.
    fn from(e: FieldError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.code(), format!("bad request: {e}"))
            .with_detail("field", Value::from(e.field()))
    }
}

impl From<PageUrlError> for ApiError {
    fn from(e: PageUrlError) -> Self {
        Self::bad_request(e)
    }
}

impl From<CallsError> for ApiError {
    fn from(e: CallsError) -> Self {
        let message = e.to_string();
        match e {
            CallsError::UnknownSite(_) => Self::not_found("unknown_site", message),
            CallsError::UnknownCall(_) => Self::not_found("unknown_call", message),
            CallsError::UnknownPromoCode { .. } => Self::not_found("unknown_promo_code", message),
            CallsError::Record(RecordError::OtherSite { .. }) => Self::conflict("conflict", message),
            CallsError::Storage(_) | CallsError::Record(RecordError::Storage(_)) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", message)
            }
        }
    }
}

impl From<RevenueError> for ApiError {
    fn from(e: RevenueError) -> Self {
        match e {
            RevenueError::UnknownCall(_) => Self::not_found("unknown_call", e.to_string()),
            RevenueError::NoCallFromCaller { .. } => Self::not_found("no_matching_call", e.to_string()),
            RevenueError::Storage(s) => Self::storage(&s),
        }
    }
}

impl From<RetryError> for ApiError {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::Unknown(_) => Self::not_found("unknown_export", e.to_string()),
            RetryError::NotDead { .. } => Self::conflict("not_dead", e.to_string()),
            RetryError::Storage(s) => Self::storage(&s),
        }
    }
}

impl From<PrivacyError> for ApiError {
    fn from(e: PrivacyError) -> Self {
        match e {
            PrivacyError::UnknownSite(_) => Self::not_found("unknown_site", e.to_string()),
            PrivacyError::BadPhone { .. } => Self::bad_request(e),
            PrivacyError::Storage(s) => Self::storage(&s),
        }
    }
}

impl From<PbxError> for ApiError {
    fn from(e: PbxError) -> Self {
        let message = e.to_string();
        match e {
            PbxError::UnknownAdapter(_) => Self::not_found("unknown_adapter", message),
            PbxError::NotConfigured { .. } => Self::not_found("pbx_not_configured", message),
            PbxError::WrongRoute(_) => Self::not_found("wrong_route", message),
            PbxError::Unauthorized { failure, basic_challenge, .. } => {
                let code = match failure {
                    AuthFailure::Missing => "missing_credentials",
                    AuthFailure::Invalid => "bad_credentials",
                    AuthFailure::Stale => "stale_timestamp",
                };
                let mut e = Self::new(StatusCode::UNAUTHORIZED, code, message);
                e.hint = basic_challenge.then_some(Hint::Basic);
                e
            }
            PbxError::BadRequest(_) => Self::new(StatusCode::BAD_REQUEST, "bad_request", message),
        }
    }
}

impl From<SinkError> for ApiError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Storage(s) => Self::storage(&s),
            SinkError::Conflict(m) => {
                Self::conflict("conflict", format!("the call conflicts with what is stored: {m}"))
            }
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        let message = e.to_string();
        match e {
            UserError::Unknown(_) => Self::not_found("unknown_user", message),
            UserError::Taken(_) => Self::conflict("user_exists", message),
            UserError::LastAdmin => Self::conflict("last_admin", message),
            UserError::Storage(s) => Self::storage(&s),
            UserError::Secret(SecretError::NoRandomness(_) | SecretError::Hash(_)) => Self::internal(message),
            _ => Self::new(StatusCode::BAD_REQUEST, "bad_request", message),
        }
    }
}

impl From<UserStoreError> for ApiError {
    fn from(e: UserStoreError) -> Self {
        UserError::from(e).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        let forbidden = |code| Self::new(StatusCode::FORBIDDEN, code, message.clone());
        match e {
            AuthError::Unauthenticated | AuthError::BadToken => {
                let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
                e.hint = Some(Hint::Bearer);
                e
            }
            AuthError::BadCredentials => Self::new(StatusCode::UNAUTHORIZED, "bad_credentials", message),
            AuthError::TooMany(secs) => {
                let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message);
                e.hint = Some(Hint::RetryAfter(secs));
                e
            }
            AuthError::Csrf => forbidden("csrf_token"),
            AuthError::Forbidden { .. } => forbidden("forbidden"),
            AuthError::SiteForbidden { .. } => forbidden("site_forbidden"),
            AuthError::SiteRequired { .. } => forbidden("site_required"),
            AuthError::BadRequest(_) => Self::new(StatusCode::BAD_REQUEST, "bad_request", message),
            AuthError::User(u) => u.into(),
            AuthError::Storage(s) => Self::storage(&s),
            AuthError::Internal(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message),
        }
    }
}

impl From<NoteError> for ApiError {
    fn from(e: NoteError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
    }
}

impl From<NotesStoreError> for ApiError {
    fn from(e: NotesStoreError) -> Self {
        let message = e.to_string();
        match e {
            NotesStoreError::Note(n) => n.into(),
            NotesStoreError::UnknownCall(_) => Self::not_found("unknown_call", message),
            NotesStoreError::UnknownNote { .. } => Self::not_found("unknown_note", message),
            NotesStoreError::NotAuthor { .. } => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            NotesStoreError::Storage(s) => Self::storage(&s),
        }
    }
}

impl From<NotesError> for ApiError {
    fn from(e: NotesError) -> Self {
        let message = e.to_string();
        match e {
            NotesError::BadRequest(_) => Self::new(StatusCode::BAD_REQUEST, "bad_request", message),
            NotesError::UnknownSite(_) => Self::not_found("unknown_site", message),
            NotesError::Store(s) => s.into(),
            NotesError::Internal(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message),
        }
    }
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> Self {
        let message = e.to_string();
        match e {
            RecordingError::BadRequest(_) => Self::new(StatusCode::BAD_REQUEST, "bad_request", message),
            RecordingError::UnknownCall(_) => Self::not_found("unknown_call", message),
            RecordingError::NoRecording(_) => Self::not_found("no_recording", message),
            RecordingError::Unavailable { .. } => Self::new(StatusCode::BAD_GATEWAY, "recording_unavailable", message),
            RecordingError::Storage(s) => Self::storage(&s),
            RecordingError::Internal(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer's body, read back as the documented shape: an undocumented
    /// detail key would not deserialise.
    fn documented(e: &ApiError) -> ErrorBody {
        let body = actix_web::body::to_bytes(e.error_response().into_body());
        let bytes = futures_executor(body).unwrap_or_else(|_| panic!("{e}: the body does not read"));
        serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("{e}: {err}: {}", String::from_utf8_lossy(&bytes)))
    }

    /// Polls a future that never waits (an in-memory body).
    fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("an in-memory body waited"),
        }
    }

    #[test]
    fn every_detail_is_in_the_documented_error_object() {
        let field = FieldError::TooLong { field: "touch.source".into(), len: 2000, max: 1024 };
        let body = documented(&ApiError::from(field));
        assert_eq!((body.error.code.as_str(), body.error.field.as_deref()), ("field_too_long", Some("touch.source")));
        let row = RowIssue { line: Some(3), index: None, field: "cost".into(), message: "is required".into() };
        let body = documented(&ApiError::invalid_rows(vec![row.clone()]));
        assert_eq!(body.error.rows, Some(vec![row]));
        assert_eq!(documented(&ApiError::rate_limited(3)).error.code, "rate_limited");
        // A detail the schema does not name is refused by the same reading.
        let extra = ApiError::bad_request("x").with_detail("hint", Value::from("y"));
        let bytes = futures_executor(actix_web::body::to_bytes(extra.error_response().into_body())).ok().unwrap();
        assert!(serde_json::from_slice::<ErrorBody>(&bytes).is_err());
    }
}
