//! The HTTP API: one router per resource, merged here, with the layers every route shares
//! (request ids, tracing and panic safety; body limit; unread bodies drained) and fallbacks
//! in the error shape. Polls skip the router ([`fast_poll`]).

mod accounts;
mod avatars;
mod contacts;
mod drain;
mod envelope;
pub mod error;
mod events;
pub mod extract;
mod fast_poll;
mod groups;
mod messages;
mod openapi;
mod profile;
mod rendered;
mod web;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use tower::{Layer, ServiceBuilder};
use tower_http::map_request_body::{MapRequestBody, MapRequestBodyLayer};

use self::envelope::{Envelope, EnvelopeLayer};
pub use self::error::{ApiError, ApiResult};
use self::fast_poll::FastPoll;
use crate::chat::Chat;

/// The whole API on top of `chat`, behind the layers every request goes through.
pub type Api = Envelope<FastPoll<MapRequestBody<<DefaultBodyLimit as Layer<Router>>::Service, fn(Incoming) -> Body>>>;

/// The whole API on top of `chat`.
///
/// The layers wrap the finished router rather than going in with `Router::layer`, which
/// would give every route one more boxed service, cloned and boxed again per request and
/// kept by a held poll for its whole life.
pub fn api(chat: Chat) -> Api {
    let body_limit = chat.config().body_limit;
    let polls = chat.clone();
    ServiceBuilder::new()
        .layer(EnvelopeLayer::default())
        .layer_fn(move |inner| FastPoll::new(polls.clone(), inner))
        .layer(MapRequestBodyLayer::new(drain::drain_unread::<Incoming> as fn(Incoming) -> Body))
        .layer(DefaultBodyLimit::max(body_limit))
        .service(router(chat))
}

/// Every route, with fallbacks in the error shape.
fn router(chat: Chat) -> Router {
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
        .with_state(chat)
}
