//! Answers whose JSON body was rendered already (a poll's joined events, a send's stored
//! message), sent as they are rather than through `axum::Json`.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

/// `body`, already JSON, with `status` and its one header: `(headers, String)` would set
/// `text/plain` first and then replace it, two header-map inserts on every poll.
pub fn json(status: StatusCode, body: String) -> Response {
    let mut answer = Response::new(Body::from(body));
    *answer.status_mut() = status;
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer
}
