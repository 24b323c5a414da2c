//! The two busiest routes taken straight to their handlers, past the router: a poll is
//! answered and asked again for every event a device gets, and a send comes with every
//! message, so together they are nearly all of the server's requests under load. The
//! router's part of one (matching the path, the parameters' extension, its boxed service and
//! answer future, the content length set again) showed in callgrind: past it, a fan-out
//! delivery took 23.0k instructions instead of 25.7k (BENCHMARKS.md, eighteenth measurement),
//! and a message sent ~3.8k fewer (twenty-second measurement). Every other request, a
//! poll with a body, and any other method or path goes through the router as before, which
//! still serves both routes for whatever reaches it, and documents them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Method, Request};
use axum::response::Response;
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceExt};

use super::{drain, events, messages};
use crate::chat::Chat;

/// Takes polls and sends to their handlers and everything else to `inner` (the router).
#[derive(Clone)]
pub struct FastRoutes<S> {
    inner: S,
    chat: Chat,
}

impl<S> FastRoutes<S> {
    /// Polls and sends go to `chat` directly; the rest to `inner`.
    pub fn new(chat: Chat, inner: S) -> Self {
        FastRoutes { inner, chat }
    }
}

/// A poll's or a send's answer, being made.
type Answering = Pin<Box<dyn Future<Output = Response> + Send>>;

impl<S, B> Service<Request<B>> for FastRoutes<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FastRoutesFuture<S::Future>;

    /// The router's readiness, which a request taken here leaves unused: the router is always
    /// ready, and nothing inside it reserves a slot per request.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_plain_poll(&req) {
            let (parts, _) = req.into_parts();
            return FastRoutesFuture::Direct { future: Box::pin(events::answer(self.chat.clone(), parts)) };
        }
        if is_send(&req) {
            return FastRoutesFuture::Direct { future: Box::pin(send(self.chat.clone(), req)) };
        }
        FastRoutesFuture::Routed { future: self.inner.call(req) }
    }
}

/// `GET /api/v1/events` with no body: what every client sends to poll.
fn is_plain_poll<B: HttpBody>(req: &Request<B>) -> bool {
    req.method() == Method::GET && req.uri().path() == "/api/v1/events" && req.body().is_end_stream()
}

/// `POST /api/v1/messages`.
fn is_send<B>(req: &Request<B>) -> bool {
    req.method() == Method::POST && req.uri().path() == "/api/v1/messages"
}

/// A send, through what the router puts around its handler: the body drained if left unread
/// and limited in size as for every route (`super::routed`), then the handler's extractors.
async fn send<B>(chat: Chat, req: Request<B>) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let limit = DefaultBodyLimit::max(chat.config().body_limit);
    let handler = limit.layer(messages::send.with_state(chat));
    let req = req.map(drain::drain_unread);
    match handler.oneshot(req).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    }
}

pin_project! {
    /// The future of [`FastRoutes`]: a poll's or a send's answer, or the router's.
    #[project = FastRoutesProj]
    pub enum FastRoutesFuture<F> {
        /// Straight to the handler.
        Direct { future: Answering },
        /// Through the router.
        Routed { #[pin] future: F },
    }
}

impl<F> Future for FastRoutesFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FastRoutesProj::Direct { future } => future.as_mut().poll(cx).map(Ok),
            FastRoutesProj::Routed { future } => future.poll(cx),
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
    async fn only_a_plain_poll_and_a_send_skip_the_router() {
        let (chat, _, dir, _stop) = open_chat("fast-routing", 0).await;
        let inner = Counting::default();
        let mut service = FastRoutes::new(chat, inner.clone());
        let routed = [
            Request::head("/api/v1/events").body(Body::empty()),
            Request::post("/api/v1/events").body(Body::empty()),
            Request::get("/api/v1/events").body(Body::from("unexpected")),
            Request::get("/api/v1/events/").body(Body::empty()),
            Request::get("/api/v1/eventsx").body(Body::empty()),
            Request::get("/health").body(Body::empty()),
            Request::get("/api/v1/messages").body(Body::empty()),
            Request::put("/api/v1/messages").body(Body::from("{}")),
            Request::post("/api/v1/messages/").body(Body::from("{}")),
            Request::post("/api/v1/conversations").body(Body::from("{}")),
        ];
        let count = routed.len();
        for (i, req) in routed.into_iter().enumerate() {
            let answer = service.ready().await.unwrap().call(req.unwrap()).await.unwrap();
            assert_eq!(answer.status(), StatusCode::IM_A_TEAPOT, "request {i} went to the router");
            assert_eq!(inner.0.load(Ordering::Relaxed), i + 1);
        }
        // Straight to the handlers, which want a token.
        let fast = [
            Request::get("/api/v1/events?timeout=0").body(Body::empty()),
            Request::post("/api/v1/messages").body(Body::from("{}")),
        ];
        for req in fast {
            let answer = service.ready().await.unwrap().call(req.unwrap()).await.unwrap();
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(inner.0.load(Ordering::Relaxed), count, "the router never saw them");
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
            let fast = FastRoutes::new(chat.clone(), unused.clone()).oneshot(req()).await.unwrap();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_is_answered_as_the_router_answers_it() {
        let (chat, mut pairs, dir, _stop) = open_chat("fast-send-same", 2).await;
        let [c, _] = pairs.remove(1);
        let [a, b] = pairs.remove(0);
        let unused = Counting::default();
        let to_b = |id: &str| format!(r#"{{"to":{{"user":{}}},"client_msg_id":"{id}","body":"hi"}}"#, b.user_id);
        let bearer = Some(format!("Bearer {}", a.token));
        let oversize =
            format!(r#"{{"to":{{"user":{}}},"client_msg_id":"big","body":"{}"}}"#, b.user_id, "x".repeat(70_000));
        // Each body goes one way first and then the other: a first send (201) then the same
        // again (200, the same message), and every error.
        let cases = [
            (bearer.clone(), to_b("fast-first"), StatusCode::CREATED),
            (bearer.clone(), to_b("routed-first"), StatusCode::CREATED),
            (bearer.clone(), r#"{"to":{"user":1},"client_msg_id":"#.to_owned(), StatusCode::BAD_REQUEST),
            (bearer.clone(), "[1]".to_owned(), StatusCode::UNPROCESSABLE_ENTITY),
            (bearer.clone(), r#"{"client_msg_id":"m","body":"hi"}"#.to_owned(), StatusCode::UNPROCESSABLE_ENTITY),
            (
                bearer.clone(),
                r#"{"to":{"user":1,"group":1},"client_msg_id":"m","body":"hi"}"#.to_owned(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (bearer.clone(), String::new(), StatusCode::BAD_REQUEST),
            (bearer.clone(), oversize, StatusCode::PAYLOAD_TOO_LARGE),
            (
                bearer.clone(),
                format!(r#"{{"to":{{"user":{}}},"client_msg_id":"m","body":"hi"}}"#, c.user_id),
                StatusCode::FORBIDDEN,
            ),
            (Some("Bearer not-a-token".to_owned()), to_b("m"), StatusCode::UNAUTHORIZED),
            (None, to_b("m"), StatusCode::UNAUTHORIZED),
        ];
        for (i, (auth, body, status)) in cases.into_iter().enumerate() {
            let req = || {
                let mut req = Request::post("/api/v1/messages").header(CONTENT_TYPE, "application/json");
                if let Some(auth) = &auth {
                    req = req.header(AUTHORIZATION, auth);
                }
                req.body(Body::from(body.clone())).unwrap()
            };
            let fast = || async {
                status_and_body(FastRoutes::new(chat.clone(), unused.clone()).oneshot(req()).await.unwrap()).await
            };
            let routed = || async {
                status_and_body(super::super::routed::<Body>(chat.clone()).oneshot(req()).await.unwrap()).await
            };
            let (first, second) = if i == 1 { (routed().await, fast().await) } else { (fast().await, routed().await) };
            assert_eq!(first.0, status, "case {i}: {}", first.2);
            if status == StatusCode::CREATED {
                assert_eq!(second.0, StatusCode::OK, "case {i}: the same send again");
                assert_eq!((first.1, first.2), (second.1, second.2), "case {i}: the same message");
            } else {
                assert_eq!(first, second, "case {i}");
                assert!(first.2.contains("\"error\""), "case {i}: {}", first.2);
            }
        }
        assert_eq!(unused.0.load(Ordering::Relaxed), 0);
        std::fs::remove_dir_all(dir).ok();
    }
}
