//! The message connection route.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Query;
use super::rendered;
use crate::chat::{format_cursor, Auth, Batch, Chat};
use crate::model::Event;

/// Routes of the message connection.
pub fn router() -> Router<Chat> {
    Router::new().route("/api/v1/events", get(poll))
}

/// Poll parameters.
#[derive(Debug, PartialEq, Deserialize, IntoParams)]
pub struct PollParams {
    /// The cursor of the previous answer; acknowledges everything before it. Absent: resume
    /// from this device's last acknowledged cursor.
    pub cursor: Option<String>,
    /// Seconds to hold the request while nothing is pending (default and maximum set by the
    /// server, 60 and 90 unless configured).
    pub timeout: Option<u64>,
}

impl PollParams {
    /// Reads a query without escapes, repeated names or bad numbers — what clients send on
    /// every poll — or `None`, to leave the rest (and its error) to the general decoder. The
    /// general one decoded each name and value through a `Cow` and a UTF-8 check: ~4 % of
    /// the instructions of a fan-out delivery (BENCHMARKS.md, fourteenth measurement).
    fn from_plain_query(query: &str) -> Option<PollParams> {
        if query.contains(['%', '+']) {
            return None;
        }
        let mut p = PollParams { cursor: None, timeout: None };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "cursor" if p.cursor.is_none() => p.cursor = Some(value.to_owned()),
                "timeout" if p.timeout.is_none() => p.timeout = Some(value.parse().ok()?),
                "cursor" | "timeout" => return None,
                _ => {}
            }
        }
        Some(p)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PollParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match PollParams::from_plain_query(parts.uri.query().unwrap_or("")) {
            Some(p) => Ok(p),
            None => Query::<PollParams>::from_request_parts(parts, state).await.map(|q| q.0),
        }
    }
}

/// A poll's answer.
#[derive(Serialize, ToSchema)]
pub struct PollAnswer {
    /// Covers the events; send it with the next poll.
    pub cursor: String,
    /// What happened, in order.
    pub events: Vec<Event>,
    /// A batch limit cut the list: poll again at once.
    pub more: bool,
}

/// # `GET /api/v1/events`
///
/// Held until an event arrives or the timeout passes; a newer poll of the same device
/// answers this one at once, empty.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(PollParams), security(("bearer" = [])),
    responses((status = 200, body = PollAnswer), (status = 400, description = "invalid cursor", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 410, description = "cursor expired: resync", body = ErrorBody)))]
pub async fn poll(State(chat): State<Chat>, auth: Auth, p: PollParams) -> ApiResult<Response> {
    let batch = chat.poll(&auth, p.cursor.as_deref(), p.timeout).await?;
    Ok(rendered::json(StatusCode::OK, render(&batch)))
}

/// The poll route's answer from a request's parts, extracted as the router's [`poll`] is:
/// the token first, then the query. The parts are dropped before the poll is held, so a
/// held poll keeps no headers.
pub async fn answer(chat: Chat, mut parts: Parts) -> Response {
    let auth = match Auth::from_request_parts(&mut parts, &chat).await {
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    let params = match PollParams::from_request_parts(&mut parts, &chat).await {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    drop(parts);
    poll(State(chat), auth, params).await.into_response()
}

/// Joins the events' stored JSON without parsing it again: each event was rendered once,
/// when it was committed.
fn render(batch: &Batch) -> String {
    let size: usize = batch.events.iter().map(|e| e.json.len() + 1).sum();
    let mut out = String::with_capacity(size + 64);
    out.push_str("{\"cursor\":\"");
    out.push_str(&format_cursor(batch.cursor));
    out.push_str("\",\"events\":[");
    for (i, e) in batch.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&e.json);
    }
    out.push_str("],\"more\":");
    out.push_str(if batch.more { "true" } else { "false" });
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use axum::http::Uri;

    use super::*;

    /// What the general decoder makes of `query`.
    fn general(query: &str) -> Option<PollParams> {
        let uri: Uri = format!("/api/v1/events?{query}").parse().unwrap();
        axum::extract::Query::<PollParams>::try_from_uri(&uri).ok().map(|q| q.0)
    }

    #[test]
    fn a_plain_query_reads_as_the_general_decoder_reads_it() {
        for query in
            ["cursor=1001&timeout=2", "timeout=30", "cursor=", "cursor", "", "&cursor=7&&x=1", "cursor=0&other=%41"]
        {
            if let Some(plain) = PollParams::from_plain_query(query) {
                assert_eq!(Some(plain), general(query), "{query}");
            }
        }
        let p = PollParams::from_plain_query("cursor=1001&timeout=2").expect("plain");
        assert_eq!((p.cursor.as_deref(), p.timeout), (Some("1001"), Some(2)));
        assert_eq!(PollParams::from_plain_query("x=1"), Some(PollParams { cursor: None, timeout: None }));
    }

    #[test]
    fn escapes_repeats_and_bad_numbers_go_to_the_general_decoder() {
        for query in ["cursor=10%30", "cursor=1+2", "cursor=1&cursor=2", "timeout=abc", "timeout=", "timeout=-1"] {
            assert_eq!(PollParams::from_plain_query(query), None, "{query}");
        }
        assert_eq!(general("cursor=10%30").and_then(|p| p.cursor).as_deref(), Some("100"));
        assert_eq!(general("timeout=abc"), None, "rejected there, with its message");
    }
}
