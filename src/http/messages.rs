//! Routes for messages and conversations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use super::rendered;
use crate::chat::{format_cursor, Auth, Chat, Target};
use crate::model::{Conversation, Message};

/// Routes under `/api/v1/messages` and `/api/v1/conversations`.
pub fn router() -> Router<Chat> {
    Router::new()
        .route("/api/v1/messages", post(send))
        .route("/api/v1/conversations", get(conversations))
        .route("/api/v1/conversations/{cid}/messages", get(history))
        .route("/api/v1/conversations/{cid}/read", post(read))
        .route("/api/v1/conversations/{cid}/messages/{seq}", axum::routing::delete(recall))
}

/// Exactly one of `user` or `group`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToBody {
    /// A friend's user id.
    pub user: Option<i64>,
    /// A group id.
    pub group: Option<i64>,
}

/// A message to send.
#[derive(Deserialize, ToSchema)]
pub struct SendBody {
    /// Recipient.
    pub to: ToBody,
    /// The client's idempotency key (1–64 characters, unique per sender).
    pub client_msg_id: String,
    /// 1–4,000 characters of text.
    pub body: String,
}

/// `{message}`.
#[derive(Serialize, ToSchema)]
pub struct MessageBody {
    /// The message.
    pub message: Message,
}

/// `{messages}`.
#[derive(Serialize, ToSchema)]
pub struct MessagesBody {
    /// Ascending by seq.
    pub messages: Vec<Message>,
}

/// The conversation list.
#[derive(Serialize, ToSchema)]
pub struct ConversationsBody {
    /// Most recent first.
    pub conversations: Vec<Conversation>,
    /// Poll from here to miss nothing after this list.
    pub cursor: String,
}

/// History paging.
#[derive(Deserialize, IntoParams)]
pub struct HistoryParams {
    /// The newest messages before this seq.
    pub before_seq: Option<i64>,
    /// The oldest messages after this seq.
    pub after_seq: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<usize>,
}

/// `{seq}`.
#[derive(Deserialize, ToSchema)]
pub struct ReadBody {
    /// Read up to this seq.
    pub seq: i64,
}

/// # `POST /api/v1/messages`
///
/// 201 once the message is durable; the same `client_msg_id` again answers 200 with the
/// stored message.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = SendBody, security(("bearer" = [])),
    responses((status = 201, body = MessageBody), (status = 200, description = "sent before", body = MessageBody),
        (status = 403, description = "not_friends / not_member", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send(State(chat): State<Chat>, auth: Auth, Json(b): Json<SendBody>) -> ApiResult<impl IntoResponse> {
    let target = match (b.to.user, b.to.group) {
        (Some(u), None) => Target::User(u),
        (None, Some(g)) => Target::Group(g),
        _ => {
            return Err(crate::chat::ChatError::invalid(
                "invalid_to",
                "`to` must hold exactly one of `user` or `group`",
            )
            .into())
        }
    };
    let sent = chat.send(auth.user, target, &b.client_msg_id, &b.body).await?;
    let status = if sent.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(message_answer(status, &sent.json))
}

/// `{message}` around a message the store rendered already ([`Message::to_json`]), for
/// its `message.new` event: serializing it again was ~5 % of a send's instructions.
fn message_answer(status: StatusCode, message_json: &str) -> Response {
    let mut body = String::with_capacity(message_json.len() + 12);
    body.push_str(r#"{"message":"#);
    body.push_str(message_json);
    body.push('}');
    rendered::json(status, body)
}

/// # `GET /api/v1/conversations`
#[utoipa::path(get, path = "/api/v1/conversations", tag = "messages", security(("bearer" = [])),
    responses((status = 200, body = ConversationsBody), (status = 401, body = ErrorBody)))]
pub async fn conversations(State(chat): State<Chat>, auth: Auth) -> ApiResult<axum::Json<ConversationsBody>> {
    let (conversations, cursor) = chat.conversations(auth.user).await?;
    Ok(axum::Json(ConversationsBody { conversations, cursor: format_cursor(cursor) }))
}

/// # `GET /api/v1/conversations/{cid}/messages`
#[utoipa::path(get, path = "/api/v1/conversations/{cid}/messages", tag = "messages", params(("cid" = String, Path), HistoryParams),
    security(("bearer" = [])),
    responses((status = 200, body = MessagesBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(chat): State<Chat>,
    auth: Auth,
    Path(cid): Path<String>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<axum::Json<MessagesBody>> {
    let messages = chat.history(auth.user, &cid, p.before_seq, p.after_seq, p.limit).await?;
    Ok(axum::Json(MessagesBody { messages }))
}

/// # `POST /api/v1/conversations/{cid}/read`
#[utoipa::path(post, path = "/api/v1/conversations/{cid}/read", tag = "messages", params(("cid" = String, Path)), request_body = ReadBody,
    security(("bearer" = [])),
    responses((status = 204, description = "read position stored"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(chat): State<Chat>,
    auth: Auth,
    Path(cid): Path<String>,
    Json(b): Json<ReadBody>,
) -> ApiResult<StatusCode> {
    chat.mark_read(auth.user, &cid, b.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `DELETE /api/v1/conversations/{cid}/messages/{seq}`
///
/// Recalls a message: its sender within 2 minutes, or a group's owner or admins.
#[utoipa::path(delete, path = "/api/v1/conversations/{cid}/messages/{seq}", tag = "messages",
    params(("cid" = String, Path), ("seq" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "recalled"), (status = 403, description = "not_sender / recall_window_passed", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn recall(
    State(chat): State<Chat>,
    auth: Auth,
    Path((cid, seq)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    chat.recall(auth.user, &cid, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[tokio::test]
    async fn the_send_answer_is_the_message_body_serde_renders() {
        let message = Message {
            id: 9,
            conversation_id: "g4".into(),
            seq: 12,
            sender_id: 2,
            client_msg_id: "c-1".into(),
            body: "naïve \\ \"quoted\"".into(),
            ts: 1_700_000_000_000,
            recalled: false,
        };
        let answer = message_answer(StatusCode::CREATED, &message.to_json());
        assert_eq!(answer.status(), StatusCode::CREATED);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), serde_json::to_string(&MessageBody { message }).unwrap());
    }
}
