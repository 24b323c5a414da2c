//! Routes for finding people and friendships.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use crate::chat::{Auth, Chat};
use crate::model::{FriendRequest, User};

/// Routes under `/api/v1/users`, `/api/v1/friends` and `/api/v1/friend-requests`.
pub fn router() -> Router<Chat> {
    Router::new()
        .route("/api/v1/users", get(search))
        .route("/api/v1/friends", get(friends))
        .route("/api/v1/friends/{user_id}", delete(remove))
        .route("/api/v1/friend-requests", post(request).get(requests))
        .route("/api/v1/friend-requests/{id}/accept", post(accept))
        .route("/api/v1/friend-requests/{id}/decline", post(decline))
}

/// Search text.
#[derive(Deserialize, IntoParams)]
pub struct SearchParams {
    /// Part of a name: a username or display name, or a group's name.
    pub q: Option<String>,
    /// How many matches to skip (paging, 50 per page).
    pub offset: Option<usize>,
}

/// `{users}`.
#[derive(Serialize, ToSchema)]
pub struct UsersBody {
    /// At most 50, prefix matches first.
    pub users: Vec<User>,
}

/// `{friends}`.
#[derive(Serialize, ToSchema)]
pub struct FriendsBody {
    /// By display name.
    pub friends: Vec<User>,
}

/// A friend request to make.
#[derive(Deserialize, ToSchema)]
pub struct RequestBody {
    /// Whom to ask.
    pub user_id: i64,
    /// Up to 500 characters.
    pub note: Option<String>,
}

/// `{request}`.
#[derive(Serialize, ToSchema)]
pub struct RequestAnswer {
    /// The stored request.
    pub request: FriendRequest,
}

/// Pending requests.
#[derive(Serialize, ToSchema)]
pub struct RequestsBody {
    /// Made to the caller.
    pub incoming: Vec<FriendRequest>,
    /// Made by the caller.
    pub outgoing: Vec<FriendRequest>,
}

/// The new friend.
#[derive(Serialize, ToSchema)]
pub struct AcceptedBody {
    /// Who is now a friend.
    pub user: User,
    /// The direct conversation with them.
    pub conversation_id: String,
}

/// # `GET /api/v1/users?q=`
#[utoipa::path(get, path = "/api/v1/users", tag = "contacts", params(SearchParams), security(("bearer" = [])),
    responses((status = 200, body = UsersBody), (status = 422, body = ErrorBody)))]
pub async fn search(
    State(chat): State<Chat>,
    _auth: Auth,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<UsersBody>> {
    let users = chat.search_users(p.q.as_deref().unwrap_or(""), p.offset.unwrap_or(0)).await?;
    Ok(axum::Json(UsersBody { users }))
}

/// # `GET /api/v1/friends`
#[utoipa::path(get, path = "/api/v1/friends", tag = "contacts", security(("bearer" = [])), responses((status = 200, body = FriendsBody)))]
pub async fn friends(State(chat): State<Chat>, auth: Auth) -> ApiResult<axum::Json<FriendsBody>> {
    Ok(axum::Json(FriendsBody { friends: chat.friends(auth.user).await? }))
}

/// # `DELETE /api/v1/friends/{user_id}`
#[utoipa::path(delete, path = "/api/v1/friends/{user_id}", tag = "contacts", params(("user_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "no longer friends"), (status = 404, body = ErrorBody)))]
pub async fn remove(State(chat): State<Chat>, auth: Auth, Path(user_id): Path<i64>) -> ApiResult<StatusCode> {
    chat.remove_friend(auth.user, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `POST /api/v1/friend-requests`
#[utoipa::path(post, path = "/api/v1/friend-requests", tag = "contacts", request_body = RequestBody, security(("bearer" = [])),
    responses((status = 201, body = RequestAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn request(State(chat): State<Chat>, auth: Auth, Json(b): Json<RequestBody>) -> ApiResult<impl IntoResponse> {
    let request = chat.request_friend(auth.user, b.user_id, b.note.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(RequestAnswer { request })))
}

/// # `GET /api/v1/friend-requests`
#[utoipa::path(get, path = "/api/v1/friend-requests", tag = "contacts", security(("bearer" = [])), responses((status = 200, body = RequestsBody)))]
pub async fn requests(State(chat): State<Chat>, auth: Auth) -> ApiResult<axum::Json<RequestsBody>> {
    let (incoming, outgoing) = chat.friend_requests(auth.user).await?;
    Ok(axum::Json(RequestsBody { incoming, outgoing }))
}

/// # `POST /api/v1/friend-requests/{id}/accept`
#[utoipa::path(post, path = "/api/v1/friend-requests/{id}/accept", tag = "contacts", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = AcceptedBody), (status = 404, body = ErrorBody)))]
pub async fn accept(State(chat): State<Chat>, auth: Auth, Path(id): Path<i64>) -> ApiResult<axum::Json<AcceptedBody>> {
    let (user, conv) = chat.accept_friend(auth.user, id).await?;
    Ok(axum::Json(AcceptedBody { user, conversation_id: conv.to_string() }))
}

/// # `POST /api/v1/friend-requests/{id}/decline`
#[utoipa::path(post, path = "/api/v1/friend-requests/{id}/decline", tag = "contacts", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "declined"), (status = 404, body = ErrorBody)))]
pub async fn decline(State(chat): State<Chat>, auth: Auth, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    chat.decline_friend(auth.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
