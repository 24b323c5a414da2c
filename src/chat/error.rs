//! The errors of the chat rules; the HTTP layer maps each to a status once.

use crate::store::StoreError;

/// Why a chat operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No token, or a token that is not (or no longer) valid.
    #[error("sign in first: the token is missing, invalid or logged out")]
    Unauthorized,
    /// Wrong username or password; the same for both so names cannot be probed.
    #[error("wrong username or password")]
    BadCredentials,
    /// A field has a value the rules do not allow.
    #[error("{message}")]
    Invalid {
        /// Snake-case code naming the problem.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// The request itself is malformed (a cursor that is no cursor, …).
    #[error("{message}")]
    BadRequest {
        /// Snake-case code naming the problem.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// Something named in the request does not exist (or is not visible to the caller).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The caller may not do this.
    #[error("{message}")]
    Forbidden {
        /// Snake-case code naming the rule.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The request clashes with the current state.
    #[error("{message}")]
    Conflict {
        /// Snake-case code naming the clash.
        code: &'static str,
        /// What clashed.
        message: String,
    },
    /// The upload is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The cursor is older than retention (or from another database): resync.
    #[error("this cursor is too old; reload conversations and poll from their cursor")]
    CursorExpired,
    /// The server is shutting down.
    #[error("the server is shutting down; try again shortly")]
    Unavailable,
    /// The store failed.
    #[error("internal error")]
    Store(#[source] StoreError),
    /// Something else on the server failed (a background task, hashing, a file write).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ChatError {
    /// A 422 for `code` with `message`.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ChatError::Invalid { code, message: message.into() }
    }

    /// A 403 for `code` with `message`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ChatError::Forbidden { code, message: message.into() }
    }

    /// A server-side failure that is no fault of the request.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        ChatError::Internal(what.to_string())
    }

    /// A 409 for `code` with `message`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ChatError::Conflict { code, message: message.into() }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => ChatError::Unavailable,
            StoreError::Expired => ChatError::CursorExpired,
            other => ChatError::Store(other),
        }
    }
}

/// Result of chat operations.
pub type ChatResult<T> = Result<T, ChatError>;
