//! Extractors whose rejections use the API error shape: JSON bodies, query strings, path
//! ids and the caller's token.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;

use super::error::ApiError;
use crate::chat::{Auth, Chat, ChatError};

/// Name of the cookie the web client may carry the token in.
pub const TOKEN_COOKIE: &str = "webim_token";

/// A JSON object request body. Text that is not JSON is 400 `malformed_json`; JSON that
/// does not fit (not an object, wrong types, missing or repeated fields) is 422
/// `invalid_field`; oversize bodies are 413 `payload_too_large`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        let invalid = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
        // Serde would fill a struct from an array, field by field; the API takes objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return match serde_json::from_slice::<IgnoredAny>(&bytes) {
                Ok(_) => Err(invalid("the body must be a JSON object".into())),
                Err(e) => Err(malformed(e)),
            };
        }
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Json(value)),
            Err(e) if e.classify() == Category::Data => Err(invalid(e.to_string())),
            // serde_json reports some shape errors (a number where a word is expected) as
            // syntax: if the text is valid JSON, the shape is what is wrong.
            Err(e) => match serde_json::from_slice::<IgnoredAny>(&bytes) {
                Ok(_) => Err(invalid(e.to_string())),
                Err(syntax) => Err(malformed(syntax)),
            },
        }
    }
}

fn malformed(e: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}"))
}

/// The whole body; empty is 400, too large 413.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
    if bytes.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "a JSON body is required"));
    }
    Ok(bytes)
}

/// Any JSON value as the body, for routes that check its shape themselves.
pub struct AnyJson(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for AnyJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        if bytes.is_empty() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "a JSON body is required"));
        }
        // Parsing into a value first separates bad syntax (400) from a bad shape (422).
        serde_json::from_slice(&bytes).map(AnyJson).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}"))
        })
    }
}

/// Maps a body read failure: too large is 413, anything else 400.
pub fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_body", format!("the request body could not be read: {e}"))
    }
}

/// A query string; a value of the wrong type is 400 `invalid_query`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

/// Path parameters; one that does not parse names nothing that exists, so it is a 404.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// The token a request carries: the bearer header, else the cookie.
pub fn token_of(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Chat> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, chat: &Chat) -> Result<Self, Self::Rejection> {
        let token = token_of(parts).ok_or(ChatError::Unauthorized)?;
        Ok(chat.authenticate(token).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut req = axum::http::Request::builder();
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_token_comes_from_the_bearer_header_or_the_cookie() {
        assert_eq!(token_of(&parts(&[("authorization", "Bearer abc")])), Some("abc"));
        assert_eq!(token_of(&parts(&[("authorization", "bearer  abc ")])), Some("abc"));
        assert_eq!(token_of(&parts(&[("authorization", "Basic abc")])), None);
        assert_eq!(token_of(&parts(&[("cookie", "a=b; webim_token=xyz")])), Some("xyz"));
        assert_eq!(token_of(&parts(&[("cookie", "webim_token_other=1")])), None);
        assert_eq!(token_of(&parts(&[])), None);
    }
}
