//! The HTTP API: one router per resource, merged here, with the layers every route shares
//! (body limit, request ids and tracing, panic safety, unread bodies drained) and fallbacks
//! in the error shape.

mod accounts;
mod avatars;
mod contacts;
mod drain;
pub mod error;
mod events;
pub mod extract;
mod groups;
mod messages;
mod openapi;
mod profile;
mod web;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

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
        // One composed layer rather than five `.layer` calls: axum boxes each layer's future
        // per request, and a held poll would keep all five boxes for its whole life.
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(Counter::default()))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    // Debug, not info: making an enabled span (its fields formatted, a slot in
                    // the registry) was 5–7 % of the server's time fanning out to 1,000 polls.
                    tracing::debug_span!("request", id, method = %req.method(), path = %req.uri().path())
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_| {
                    axum::response::IntoResponse::into_response(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "something went wrong on the server; try again",
                    ))
                }))
                .layer(DefaultBodyLimit::max(body_limit))
                .layer(MapRequestBodyLayer::new(drain::drain_unread)),
        )
        .with_state(chat)
}

/// Request ids: a process-wide counter, unique per run.
#[derive(Clone, Default)]
struct Counter(std::sync::Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Some(RequestId::new(HeaderValue::from(n)))
    }
}
