//! The poll route taken straight to its handler, past the router: a held poll is answered
//! and asked again for every event a device gets, so polls are most of the server's
//! requests. The router's part of one (matching the path, the parameters' extension, its
//! boxed service and answer future, the content length set again) showed in callgrind; past
//! it, a fan-out delivery took 23.0k instructions instead of 25.7k (BENCHMARKS.md,
//! eighteenth measurement). Every other request, and a poll with a body, goes through the
//! router as before, which still serves `GET /api/v1/events` (and `HEAD`) for whatever
//! reaches it, and documents it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{Method, Request};
use axum::response::Response;
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;
use tower::Service;

use super::events;
use crate::chat::Chat;

/// Takes polls to their handler and everything else to `inner` (the router).
#[derive(Clone)]
pub struct FastPoll<S> {
    inner: S,
    chat: Chat,
}

impl<S> FastPoll<S> {
    /// Polls go to `chat` directly; the rest to `inner`.
    pub fn new(chat: Chat, inner: S) -> Self {
        FastPoll { inner, chat }
    }
}

/// A poll's answer, being made.
type Polling = Pin<Box<dyn Future<Output = Response> + Send>>;

impl<S, B> Service<Request<B>> for FastPoll<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
    B: HttpBody,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FastPollFuture<S::Future>;

    /// The router's readiness, which a poll taken here leaves unused: the router is always
    /// ready, and nothing inside it reserves a slot per request.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_plain_poll(&req) {
            let (parts, _) = req.into_parts();
            return FastPollFuture::Poll { future: Box::pin(events::answer(self.chat.clone(), parts)) };
        }
        FastPollFuture::Routed { future: self.inner.call(req) }
    }
}

/// `GET /api/v1/events` with no body: what every client sends to poll.
fn is_plain_poll<B: HttpBody>(req: &Request<B>) -> bool {
    req.method() == Method::GET && req.uri().path() == "/api/v1/events" && req.body().is_end_stream()
}

pin_project! {
    /// The future of [`FastPoll`]: a poll's answer, or the router's.
    #[project = FastPollProj]
    pub enum FastPollFuture<F> {
        /// Straight to the poll handler.
        Poll { future: Polling },
        /// Through the router.
        Routed { #[pin] future: F },
    }
}

impl<F> Future for FastPollFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FastPollProj::Poll { future } => future.as_mut().poll(cx).map(Ok),
            FastPollProj::Routed { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;
    use crate::chat::testing::open_chat;
    use crate::chat::Target;

    /// Counts the requests that reach it and answers 418.
    #[derive(Clone, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl Service<Request<Body>> for Counting {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            self.0.fetch_add(1, Ordering::Relaxed);
            let mut answer = Response::new(Body::empty());
            *answer.status_mut() = StatusCode::IM_A_TEAPOT;
            std::future::ready(Ok(answer))
        }
    }

    /// The status, the content type and the body.
    async fn status_and_body(answer: Response) -> (StatusCode, Option<String>, String) {
        let status = answer.status();
        let kind = answer.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_plain_get_of_the_poll_route_skips_the_router() {
        let (chat, _, dir, _stop) = open_chat("fast-poll-routing", 0).await;
        let inner = Counting::default();
        let mut service = FastPoll::new(chat, inner.clone());
        let routed = [
            Request::head("/api/v1/events").body(Body::empty()),
            Request::post("/api/v1/events").body(Body::empty()),
            Request::get("/api/v1/events").body(Body::from("unexpected")),
            Request::get("/api/v1/events/").body(Body::empty()),
            Request::get("/api/v1/eventsx").body(Body::empty()),
            Request::get("/health").body(Body::empty()),
        ];
        for (i, req) in routed.into_iter().enumerate() {
            let answer = service.ready().await.unwrap().call(req.unwrap()).await.unwrap();
            assert_eq!(answer.status(), StatusCode::IM_A_TEAPOT, "request {i} went to the router");
            assert_eq!(inner.0.load(Ordering::Relaxed), i + 1);
        }
        // Straight to the handler, which wants a token.
        let req = Request::get("/api/v1/events?timeout=0").body(Body::empty()).unwrap();
        let answer = service.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(inner.0.load(Ordering::Relaxed), 6, "the router never saw it");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_is_answered_as_the_router_answers_it() {
        let (chat, pairs, dir, _stop) = open_chat("fast-poll-same", 1).await;
        let [a, b] = &pairs[0];
        chat.send(a.user_id, Target::User(b.user_id), "m1", "hello").await.unwrap();
        let unused = Counting::default();
        let bearer = |token: &str| Some((AUTHORIZATION, format!("Bearer {token}")));
        let cookie = Some((COOKIE, format!("theme=dark; webim_token={}", b.token)));
        // The first three have the message; the rest are errors.
        let cases = [
            (bearer(&b.token), format!("cursor={}&timeout=0", b.cursor)),
            (cookie, format!("cursor={}&timeout=%30", b.cursor)),
            (bearer(&b.token), "timeout=0".to_owned()),
            (bearer(&b.token), "cursor=not-a-cursor".to_owned()),
            (bearer(&b.token), "timeout=abc".to_owned()),
            (bearer(&b.token), format!("cursor={}&cursor=1", b.cursor)),
            (bearer("not-a-token"), "timeout=0".to_owned()),
            (bearer("not-a-token"), "timeout=abc".to_owned()),
            (None, "timeout=0".to_owned()),
        ];
        for (i, (header, query)) in cases.into_iter().enumerate() {
            let req = || {
                let mut req = Request::get(format!("/api/v1/events?{query}"));
                if let Some((name, value)) = &header {
                    req = req.header(name, value);
                }
                req.body(Body::empty()).unwrap()
            };
            let fast = FastPoll::new(chat.clone(), unused.clone()).oneshot(req()).await.unwrap();
            let fast = status_and_body(fast).await;
            let routed = status_and_body(super::super::router(chat.clone()).oneshot(req()).await.unwrap()).await;
            assert_eq!(fast, routed, "{query}");
            assert_eq!(fast.1.as_deref(), Some("application/json"), "{query}");
            if i < 3 {
                assert_eq!(fast.0, StatusCode::OK, "{query}");
                assert!(fast.2.contains("hello"), "{query}: {}", fast.2);
            } else {
                assert!(fast.0.is_client_error(), "{query}: {}", fast.0);
                assert!(fast.2.contains("\"error\""), "{query}: {}", fast.2);
            }
        }
        assert_eq!(unused.0.load(Ordering::Relaxed), 0);
        std::fs::remove_dir_all(dir).ok();
    }
}
