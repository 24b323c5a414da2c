//! The one error type of the HTTP layer and its JSON shape:
//! `{"error": {"code": "snake_case", "message": "…"}}`. Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::chat::ChatError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake-case code clients branch on.
    pub code: String,
    /// Text a person can act on.
    pub message: String,
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Snake-case code.
    pub code: String,
    /// Human-readable text.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into() }
    }

    /// 500 with a generic message; what went wrong is logged where it happened, never sent.
    pub fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on the server; try again")
    }

    /// 404 for an unknown route or id.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what}_not_found"), format!("no such {}", what.replace('_', " ")))
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        let message = e.to_string();
        match e {
            ChatError::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message),
            ChatError::BadCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message),
            ChatError::Invalid { code, .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message),
            ChatError::BadRequest { code, .. } => ApiError::new(StatusCode::BAD_REQUEST, code, message),
            ChatError::NotFound(what) => ApiError::not_found(what),
            ChatError::Forbidden { code, .. } => ApiError::new(StatusCode::FORBIDDEN, code, message),
            ChatError::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, message),
            ChatError::TooLarge(_) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message),
            ChatError::CursorExpired => ApiError::new(StatusCode::GONE, "cursor_expired", message),
            ChatError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
            ChatError::Internal(what) => {
                tracing::error!(error = %what, "request failed on the server");
                ApiError::internal()
            }
            ChatError::Store(source) => {
                tracing::error!(error = %source, "request failed in the store");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
