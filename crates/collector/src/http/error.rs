//! What the money and exports admin APIs share: their JSON errors and the
//! hop to a blocking thread. Authentication is the calls API's
//! [`crate::http::calls::Admin`] extractor (one admin token for all).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::json;

use crate::storage::StorageError;

/// One bad field of one uploaded row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

impl std::fmt::Display for RowIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.index) {
            (Some(l), _) => write!(f, "line {l}, {}: {}", self.field, self.message),
            (None, Some(i)) => write!(f, "[{i}].{}: {}", self.field, self.message),
            (None, None) => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// Errors of the money and exports admin APIs.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Uploaded rows that failed validation; nothing was stored.
    #[error("{} invalid row field(s), nothing stored; first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    InvalidRows(Vec<RowIssue>),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    fn code(&self) -> &'static str {
        match self {
            AdminError::BadRequest(_) => "bad_request",
            AdminError::InvalidRows(_) => "invalid_rows",
            AdminError::TooLarge(_) => "payload_too_large",
            AdminError::NotFound { code, .. } | AdminError::Conflict { code, .. } => code,
            AdminError::Storage(_) => "storage_error",
            AdminError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) | AdminError::InvalidRows(_) => StatusCode::BAD_REQUEST,
            AdminError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::NotFound { .. } => StatusCode::NOT_FOUND,
            AdminError::Conflict { .. } => StatusCode::CONFLICT,
            AdminError::Storage(_) | AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            crate::outage::server_error(self);
        }
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        // Every bad field at once, so a spreadsheet can be fixed in one go.
        if let AdminError::InvalidRows(rows) = self {
            error["rows"] = json!(rows);
        }
        HttpResponse::build(self.status_code()).json(json!({ "error": error }))
    }
}

/// Runs blocking storage work off the executor.
pub async fn blocking<T: Send + 'static, E: Into<AdminError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, AdminError> {
    web::block(f).await.map_err(|e| AdminError::Internal(format!("the blocking pool failed: {e}")))?.map_err(Into::into)
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body(body: web::Payload, limit: usize) -> Result<web::Bytes, AdminError> {
    body.to_bytes_limited(limit)
        .await
        .map_err(|_| AdminError::TooLarge(limit))?
        .map_err(|e| AdminError::BadRequest(format!("cannot read the body: {e}")))
}

/// Parses the query string with a JSON 400 on unknown or bad keys.
pub fn query<T: serde::de::DeserializeOwned>(req: &actix_web::HttpRequest) -> Result<T, AdminError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| AdminError::BadRequest(format!("query string: {e}")))
}
