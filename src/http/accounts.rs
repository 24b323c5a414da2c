//! Routes for accounts and devices.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Json, TOKEN_COOKIE};
use crate::chat::{Auth, Chat};
use crate::model::User;

/// Routes under `/api/v1/auth` and `/api/v1/me`.
pub fn router() -> Router<Chat> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
}

/// Sign-up fields.
#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    /// 3–32 of `[a-z0-9_]` (upper case is folded).
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// 1–64 characters; the username when absent.
    pub display_name: Option<String>,
}

/// Sign-in fields.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// A name for this device, shown in device lists.
    pub device_name: Option<String>,
}

/// `{user}`.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    /// The user.
    pub user: User,
}

/// The answer to a sign-in.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    /// Bearer token for every other call.
    pub token: String,
    /// The new device.
    pub device_id: i64,
    /// Who signed in.
    pub user: User,
    /// Where this device's message connection starts.
    pub cursor: String,
}

/// The signed-in user and their settings.
#[derive(Serialize, ToSchema)]
pub struct MeAnswer {
    /// The user.
    pub user: User,
    /// Client preferences stored for the user.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// # `POST /api/v1/auth/register`
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterBody,
    responses((status = 201, body = UserBody), (status = 409, description = "username taken", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(State(chat): State<Chat>, Json(b): Json<RegisterBody>) -> ApiResult<impl IntoResponse> {
    let user = chat.register(&b.username, &b.password, b.display_name.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(UserBody { user })))
}

/// # `POST /api/v1/auth/login`
///
/// Also sets the token as an HttpOnly, SameSite=Strict cookie for the web client.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer), (status = 401, description = "wrong username or password", body = ErrorBody)))]
pub async fn login(State(chat): State<Chat>, Json(b): Json<LoginBody>) -> ApiResult<impl IntoResponse> {
    let li = chat.login(&b.username, &b.password, b.device_name.as_deref()).await?;
    let cookie = format!("{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000", li.token);
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("tokens are header-safe"));
    let answer = LoginAnswer {
        token: li.token,
        device_id: li.device_id,
        user: li.user,
        cursor: crate::chat::format_cursor(li.cursor),
    };
    Ok((headers, axum::Json(answer)))
}

/// # `POST /api/v1/auth/logout`
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "the token is dead"), (status = 401, body = ErrorBody)))]
pub async fn logout(State(chat): State<Chat>, auth: Auth) -> ApiResult<impl IntoResponse> {
    chat.logout(&auth).await?;
    let clear = format!("{TOKEN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]))
}

/// # `GET /api/v1/me`
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MeAnswer), (status = 401, body = ErrorBody)))]
pub async fn me(State(chat): State<Chat>, auth: Auth) -> ApiResult<axum::Json<MeAnswer>> {
    let user = chat.me(&auth).await?;
    let settings = chat.settings(auth.user).await?;
    Ok(axum::Json(MeAnswer { user, settings }))
}
