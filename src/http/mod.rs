//! The HTTP API: one router per resource, merged here, with the layers every route shares
//! (request ids, tracing and panic safety; body limit; unread bodies drained) and fallbacks
//! in the error shape. Polls and sends skip the router ([`fast_routes`]).

mod accounts;
mod avatars;
mod contacts;
mod drain;
mod envelope;
pub mod error;
mod events;
pub mod extract;
mod fast_routes;
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
use self::fast_routes::FastRoutes;
use crate::chat::Chat;

/// The whole API on top of `chat`, behind the layers every request goes through.
pub type Api = Envelope<FastRoutes<Routed>>;

/// The router behind the layers it needs in every request's path: unread bodies drained,
/// bodies limited in size.
type Routed<B = Incoming> = MapRequestBody<<DefaultBodyLimit as Layer<Router>>::Service, fn(B) -> Body>;

/// The whole API on top of `chat`.
///
/// The layers wrap the finished router rather than going in with `Router::layer`, which
/// would give every route one more boxed service, cloned and boxed again per request and
/// kept by a held poll for its whole life.
pub fn api(chat: Chat) -> Api {
    let fast = chat.clone();
    ServiceBuilder::new()
        .layer(EnvelopeLayer::default())
        .layer_fn(move |inner| FastRoutes::new(fast.clone(), inner))
        .service(routed::<Incoming>(chat))
}

/// The router with the layers of [`Routed`], for request bodies of type `B`.
fn routed<B>(chat: Chat) -> Routed<B>
where
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let body_limit = chat.config().body_limit;
    ServiceBuilder::new()
        .layer(MapRequestBodyLayer::new(drain::drain_unread::<B> as fn(B) -> Body))
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
