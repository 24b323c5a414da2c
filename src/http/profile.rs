//! Routes for the user's profile, pictures and settings.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::UserBody;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{body_error, AnyJson, Json, Path};
use crate::chat::{Auth, Chat};
use crate::media::avatar::MAX_BYTES;

/// Routes under `/api/v1/me` (profile, avatar, settings) and `/avatars`.
pub fn router() -> Router<Chat> {
    Router::new()
        .route("/api/v1/me", patch(update))
        // One byte over the limit, so an oversize picture is told apart from a large one.
        .route("/api/v1/me/avatar", put(avatar).layer(DefaultBodyLimit::max(MAX_BYTES + 1)))
        .route("/api/v1/me/settings", put(settings))
        .route("/avatars/{name}", get(picture))
}

/// Profile changes.
#[derive(Deserialize, ToSchema)]
pub struct ProfileBody {
    /// 1–64 characters, trimmed.
    pub display_name: Option<String>,
}

/// `{settings}`.
#[derive(Serialize, ToSchema)]
pub struct SettingsBody {
    /// All settings now.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// A raw picture body (PNG, JPEG, WebP or GIF), at most 2 MiB.
pub struct Picture(pub Vec<u8>);

impl<S: Send + Sync> FromRequest<S> for Picture {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        if bytes.len() > MAX_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "pictures must be at most 2 MiB",
            ));
        }
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                "the body must be the picture's bytes",
            ));
        }
        Ok(Picture(bytes.to_vec()))
    }
}

/// # `PATCH /api/v1/me`
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", request_body = ProfileBody, security(("bearer" = [])),
    responses((status = 200, body = UserBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(chat): State<Chat>,
    auth: Auth,
    Json(b): Json<ProfileBody>,
) -> ApiResult<axum::Json<UserBody>> {
    let user = match b.display_name {
        Some(name) => chat.update_profile(auth.user, &name).await?,
        None => chat.me(&auth).await?,
    };
    Ok(axum::Json(UserBody { user }))
}

/// # `PUT /api/v1/me/avatar`
///
/// The body is the picture itself; it is cropped to a square and stored at 256 px.
#[utoipa::path(put, path = "/api/v1/me/avatar", tag = "accounts", request_body(content = Vec<u8>, content_type = "image/*"),
    security(("bearer" = [])),
    responses((status = 200, body = UserBody), (status = 413, body = ErrorBody), (status = 422, description = "not a picture", body = ErrorBody)))]
pub async fn avatar(State(chat): State<Chat>, auth: Auth, Picture(bytes): Picture) -> ApiResult<axum::Json<UserBody>> {
    Ok(axum::Json(UserBody { user: chat.set_avatar(auth.user, bytes).await? }))
}

/// # `PUT /api/v1/me/settings`
///
/// Merges the given keys (a `null` removes one); the user's other devices get
/// `settings.updated`.
#[utoipa::path(put, path = "/api/v1/me/settings", tag = "accounts", request_body = Object, security(("bearer" = [])),
    responses((status = 200, body = SettingsBody), (status = 422, body = ErrorBody)))]
pub async fn settings(
    State(chat): State<Chat>,
    auth: Auth,
    AnyJson(patch): AnyJson,
) -> ApiResult<axum::Json<SettingsBody>> {
    Ok(axum::Json(SettingsBody { settings: chat.put_settings(auth.user, patch).await? }))
}

/// # `GET /avatars/{hash}.png`
///
/// Stored pictures never change (the name is their hash), so they are cached for a year.
#[utoipa::path(get, path = "/avatars/{name}", tag = "accounts", params(("name" = String, Path)),
    responses((status = 200, content_type = "image/png", description = "the picture"), (status = 304, description = "not modified"),
        (status = 404, body = ErrorBody)))]
pub async fn picture(
    State(chat): State<Chat>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let hash = name.strip_suffix(".png").ok_or(crate::chat::ChatError::NotFound("picture"))?;
    let etag = format!("\"{hash}\"");
    let cache =
        [(header::ETAG, etag.clone()), (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned())];
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, cache, Vec::new()).into_response());
    }
    let bytes = chat.picture(hash).await?;
    Ok((cache, [(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}
