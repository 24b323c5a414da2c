//! The message connection route.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::Query;
use crate::chat::{format_cursor, Auth, Batch, Chat};
use crate::model::Event;

/// Routes of the message connection.
pub fn router() -> Router<Chat> {
    Router::new().route("/api/v1/events", get(poll))
}

/// Poll parameters.
#[derive(Deserialize, IntoParams)]
pub struct PollParams {
    /// The cursor of the previous answer; acknowledges everything before it. Absent: resume
    /// from this device's last acknowledged cursor.
    pub cursor: Option<String>,
    /// Seconds to hold the request while nothing is pending (default and maximum set by the
    /// server, 60 and 90 unless configured).
    pub timeout: Option<u64>,
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
pub async fn poll(State(chat): State<Chat>, auth: Auth, Query(p): Query<PollParams>) -> ApiResult<impl IntoResponse> {
    let batch = chat.poll(&auth, p.cursor.as_deref(), p.timeout).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], render(&batch)))
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
