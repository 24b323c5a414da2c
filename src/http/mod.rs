//! The HTTP API: one router per resource, merged here, with the layers every route shares
//! (request ids, tracing and panic safety; body limit; unread bodies drained) and fallbacks
//! in the error shape.

mod accounts;
mod avatars;
mod contacts;
mod drain;
mod envelope;
pub mod error;
mod events;
pub mod extract;
mod groups;
mod messages;
mod openapi;
mod profile;
mod web;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::map_request_body::MapRequestBodyLayer;

use self::envelope::EnvelopeLayer;
pub use self::error::{ApiError, ApiResult};
use crate::chat::Chat;

/// The whole API on top of `chat`.
pub fn router(chat: Chat) -> Router {
    let body_limit = chat.config().body_limit;
    Router::new()
        .merge(accounts::router())
        .merge(events::router())
        .merge(messages::router())
        .merge(contacts::router())
        .merge(avatars::router())
        .merge(groups::router())
        .merge(profile::router())
        .merge(web::router())
        .merge(openapi::router())
        .route("/health", axum::routing::get(|| async { "ok" }))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        // One composed layer rather than several `.layer` calls: axum boxes each layer's future
        // per request, and a held poll would keep every box for its whole life.
        .layer(
            ServiceBuilder::new()
                .layer(EnvelopeLayer::default())
                .layer(DefaultBodyLimit::max(body_limit))
                .layer(MapRequestBodyLayer::new(drain::drain_unread)),
        )
        .with_state(chat)
}
