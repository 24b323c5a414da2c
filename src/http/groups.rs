//! Routes for groups, their members and join requests.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::contacts::SearchParams;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use super::profile::Picture;
use crate::chat::{Auth, Chat, JoinOutcome};
use crate::media::avatar::MAX_BYTES;
use crate::model::{Group, JoinPolicy, Member, Role, User};
use crate::store::GroupChanges;

/// Routes under `/api/v1/groups` and `/api/v1/me/groups`.
pub fn router() -> Router<Chat> {
    Router::new()
        .route("/api/v1/groups", post(create).get(search))
        .route("/api/v1/groups/{id}", get(show).patch(update).delete(dissolve))
        .route("/api/v1/groups/{id}/members", get(members).post(add))
        .route("/api/v1/groups/{id}/members/{user_id}", axum::routing::delete(remove).patch(set_role))
        .route("/api/v1/groups/{id}/join", post(join))
        .route("/api/v1/groups/{id}/leave", post(leave))
        .route("/api/v1/groups/{id}/transfer", post(transfer))
        .route("/api/v1/groups/{id}/requests", get(requests))
        .route("/api/v1/groups/{id}/requests/{user_id}/accept", post(accept))
        .route("/api/v1/groups/{id}/requests/{user_id}/decline", post(decline))
        .route(
            "/api/v1/groups/{id}/avatar",
            put(avatar).get(generated_avatar).layer(DefaultBodyLimit::max(MAX_BYTES + 1)),
        )
        .route("/api/v1/me/groups", get(mine))
}

/// A group to create.
#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    /// 1–64 characters.
    pub name: String,
    /// `open` (default) or `approval`.
    pub join_policy: Option<JoinPolicy>,
    /// Whether later members read earlier history (default true).
    pub history_visible_to_new_members: Option<bool>,
}

/// Group changes; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
pub struct UpdateBody {
    /// New name.
    pub name: Option<String>,
    /// New join policy.
    pub join_policy: Option<JoinPolicy>,
    /// New history visibility for later members.
    pub history_visible_to_new_members: Option<bool>,
}

/// `{user_id}`.
#[derive(Deserialize, ToSchema)]
pub struct UserIdBody {
    /// The user.
    pub user_id: i64,
}

/// `{role}`.
#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    /// `admin` or `member`.
    pub role: Role,
}

/// `{group}`.
#[derive(Serialize, ToSchema)]
pub struct GroupBody {
    /// The group.
    pub group: Group,
}

/// `{groups}`.
#[derive(Serialize, ToSchema)]
pub struct GroupsBody {
    /// Groups.
    pub groups: Vec<Group>,
}

/// `{members}`.
#[derive(Serialize, ToSchema)]
pub struct MembersBody {
    /// Owner first, then admins, then members.
    pub members: Vec<Member>,
}

/// The answer to a join.
#[derive(Serialize, ToSchema)]
pub struct JoinAnswer {
    /// The group.
    pub group: Group,
    /// `joined`, or `requested` for approval groups.
    pub status: String,
}

/// A pending join request.
#[derive(Serialize, ToSchema)]
pub struct JoinRequest {
    /// Who asks.
    pub user: User,
    /// When.
    pub ts: i64,
}

/// `{requests}`.
#[derive(Serialize, ToSchema)]
pub struct RequestsBody {
    /// Oldest first.
    pub requests: Vec<JoinRequest>,
}

/// # `POST /api/v1/groups`
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateBody, security(("bearer" = [])),
    responses((status = 201, body = GroupBody), (status = 422, body = ErrorBody)))]
pub async fn create(State(chat): State<Chat>, auth: Auth, Json(b): Json<CreateBody>) -> ApiResult<impl IntoResponse> {
    let policy = b.join_policy.unwrap_or(JoinPolicy::Open);
    let group = chat.create_group(auth.user, &b.name, policy, b.history_visible_to_new_members.unwrap_or(true)).await?;
    Ok((StatusCode::CREATED, axum::Json(GroupBody { group })))
}

/// # `GET /api/v1/groups?q=`
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(SearchParams), security(("bearer" = [])),
    responses((status = 200, body = GroupsBody), (status = 422, body = ErrorBody)))]
pub async fn search(
    State(chat): State<Chat>,
    _auth: Auth,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<GroupsBody>> {
    let groups = chat.search_groups(p.q.as_deref().unwrap_or(""), p.offset.unwrap_or(0)).await?;
    Ok(axum::Json(GroupsBody { groups }))
}

/// # `GET /api/v1/groups/{id}`
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupBody), (status = 404, body = ErrorBody)))]
pub async fn show(State(chat): State<Chat>, _auth: Auth, Path(id): Path<i64>) -> ApiResult<axum::Json<GroupBody>> {
    Ok(axum::Json(GroupBody { group: chat.group(id).await? }))
}

/// # `PATCH /api/v1/groups/{id}`
#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = i64, Path)), request_body = UpdateBody,
    security(("bearer" = [])), responses((status = 200, body = GroupBody), (status = 403, body = ErrorBody)))]
pub async fn update(
    State(chat): State<Chat>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(b): Json<UpdateBody>,
) -> ApiResult<axum::Json<GroupBody>> {
    let changes = GroupChanges {
        name: b.name,
        join_policy: b.join_policy,
        history_visible: b.history_visible_to_new_members,
        avatar: None,
    };
    Ok(axum::Json(GroupBody { group: chat.update_group(auth.user, id, changes).await? }))
}

/// # `DELETE /api/v1/groups/{id}`
///
/// Dissolves the group (owner only).
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "dissolved"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn dissolve(State(chat): State<Chat>, auth: Auth, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    chat.dissolve_group(auth.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/groups/{id}/members`
#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "groups", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = MembersBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn members(State(chat): State<Chat>, auth: Auth, Path(id): Path<i64>) -> ApiResult<axum::Json<MembersBody>> {
    Ok(axum::Json(MembersBody { members: chat.members(auth.user, id).await? }))
}

/// # `POST /api/v1/groups/{id}/members`
///
/// An owner or admin adds someone.
#[utoipa::path(post, path = "/api/v1/groups/{id}/members", tag = "groups", params(("id" = i64, Path)), request_body = UserIdBody,
    security(("bearer" = [])), responses((status = 201, body = GroupBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add(
    State(chat): State<Chat>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(b): Json<UserIdBody>,
) -> ApiResult<impl IntoResponse> {
    let group = chat.add_member(auth.user, id, b.user_id).await?;
    Ok((StatusCode::CREATED, axum::Json(GroupBody { group })))
}

/// # `DELETE /api/v1/groups/{id}/members/{user_id}`
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups", params(("id" = i64, Path), ("user_id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204, description = "removed"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(chat): State<Chat>,
    auth: Auth,
    Path((id, user_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    chat.remove_member(auth.user, id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `PATCH /api/v1/groups/{id}/members/{user_id}`
///
/// The owner promotes a member to admin or demotes an admin.
#[utoipa::path(patch, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups", params(("id" = i64, Path), ("user_id" = i64, Path)),
    request_body = RoleBody, security(("bearer" = [])),
    responses((status = 204, description = "role set"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_role(
    State(chat): State<Chat>,
    auth: Auth,
    Path((id, user_id)): Path<(i64, i64)>,
    Json(b): Json<RoleBody>,
) -> ApiResult<StatusCode> {
    chat.set_role(auth.user, id, user_id, b.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `POST /api/v1/groups/{id}/join`
///
/// Open groups: 200, a member at once. Approval groups: 202, a request the owner and
/// admins answer.
#[utoipa::path(post, path = "/api/v1/groups/{id}/join", tag = "groups", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = JoinAnswer), (status = 202, description = "requested", body = JoinAnswer), (status = 409, body = ErrorBody)))]
pub async fn join(State(chat): State<Chat>, auth: Auth, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(match chat.join_group(auth.user, id).await? {
        JoinOutcome::Joined(group) => (StatusCode::OK, axum::Json(JoinAnswer { group, status: "joined".into() })),
        JoinOutcome::Requested(group) => {
            (StatusCode::ACCEPTED, axum::Json(JoinAnswer { group, status: "requested".into() }))
        }
    })
}

/// # `POST /api/v1/groups/{id}/leave`
#[utoipa::path(post, path = "/api/v1/groups/{id}/leave", tag = "groups", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "left"), (status = 409, description = "the owner must transfer first", body = ErrorBody)))]
pub async fn leave(State(chat): State<Chat>, auth: Auth, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    chat.leave_group(auth.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `POST /api/v1/groups/{id}/transfer`
///
/// The owner hands the group to another member and becomes an admin.
#[utoipa::path(post, path = "/api/v1/groups/{id}/transfer", tag = "groups", params(("id" = i64, Path)), request_body = UserIdBody,
    security(("bearer" = [])), responses((status = 200, body = GroupBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn transfer(
    State(chat): State<Chat>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(b): Json<UserIdBody>,
) -> ApiResult<axum::Json<GroupBody>> {
    Ok(axum::Json(GroupBody { group: chat.transfer_group(auth.user, id, b.user_id).await? }))
}

/// # `GET /api/v1/groups/{id}/requests`
#[utoipa::path(get, path = "/api/v1/groups/{id}/requests", tag = "groups", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = RequestsBody), (status = 403, body = ErrorBody)))]
pub async fn requests(
    State(chat): State<Chat>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestsBody>> {
    let requests =
        chat.join_requests(auth.user, id).await?.into_iter().map(|(user, ts)| JoinRequest { user, ts }).collect();
    Ok(axum::Json(RequestsBody { requests }))
}

/// # `POST /api/v1/groups/{id}/requests/{user_id}/accept`
#[utoipa::path(post, path = "/api/v1/groups/{id}/requests/{user_id}/accept", tag = "groups",
    params(("id" = i64, Path), ("user_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn accept(
    State(chat): State<Chat>,
    auth: Auth,
    Path((id, user_id)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<GroupBody>> {
    Ok(axum::Json(GroupBody { group: chat.accept_join(auth.user, id, user_id).await? }))
}

/// # `POST /api/v1/groups/{id}/requests/{user_id}/decline`
#[utoipa::path(post, path = "/api/v1/groups/{id}/requests/{user_id}/decline", tag = "groups",
    params(("id" = i64, Path), ("user_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "declined"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn decline(
    State(chat): State<Chat>,
    auth: Auth,
    Path((id, user_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    chat.decline_join(auth.user, id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `PUT /api/v1/groups/{id}/avatar`
#[utoipa::path(put, path = "/api/v1/groups/{id}/avatar", tag = "groups", params(("id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "image/*"), security(("bearer" = [])),
    responses((status = 200, body = GroupBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn avatar(
    State(chat): State<Chat>,
    auth: Auth,
    Path(id): Path<i64>,
    Picture(bytes): Picture,
) -> ApiResult<axum::Json<GroupBody>> {
    Ok(axum::Json(GroupBody { group: chat.set_group_avatar(auth.user, id, bytes).await? }))
}

/// # `GET /api/v1/groups/{id}/avatar`
///
/// The generated picture of a group without an uploaded one.
#[utoipa::path(get, path = "/api/v1/groups/{id}/avatar", tag = "groups", params(("id" = i64, Path)),
    responses((status = 200, content_type = "image/svg+xml", description = "SVG picture"), (status = 404, body = ErrorBody)))]
pub async fn generated_avatar(
    State(chat): State<Chat>,
    _auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    let group = chat.group(id).await?;
    let svg = super::avatars::initials_svg(id, &group.name);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, max-age=300")], svg))
}

/// # `GET /api/v1/me/groups`
#[utoipa::path(get, path = "/api/v1/me/groups", tag = "groups", security(("bearer" = [])), responses((status = 200, body = GroupsBody)))]
pub async fn mine(State(chat): State<Chat>, auth: Auth) -> ApiResult<axum::Json<GroupsBody>> {
    Ok(axum::Json(GroupsBody { groups: chat.my_groups(auth.user).await? }))
}
