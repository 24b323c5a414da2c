//! What every request goes through on its way in and out: a request id (`x-request-id`, the
//! client's own or a number), a debug-level span with it, and a panic turned into a `500`.
//!
//! One hand-written layer instead of tower-http's four (set and propagate the id, trace,
//! catch panics): each of those wraps the request's future again, the trace layer wraps the
//! answer's body too, and together they were ~19 % of the server's instructions per poll
//! answered when fanning out (counted with callgrind; BENCHMARKS.md, ninth measurement).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Span;

use super::error::ApiError;

/// The header carrying the request id, both ways.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a service in [`Envelope`]; the numbering is shared by every clone.
#[derive(Clone, Default)]
pub struct EnvelopeLayer {
    next_id: Arc<AtomicU64>,
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope { inner, next_id: self.next_id.clone() }
    }
}

/// The service of [`EnvelopeLayer`].
#[derive(Clone)]
pub struct Envelope<S> {
    inner: S,
    next_id: Arc<AtomicU64>,
}

impl<S, B> Service<Request<B>> for Envelope<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Enveloped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => HeaderValue::from(self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        // Debug, not info: an enabled span (its fields formatted, a slot in the registry) was
        // 5–7 % of the server's time fanning out to 1,000 polls. A disabled one costs a level
        // check, and the clock is read only when the answer will be logged.
        let span = tracing::debug_span!("request", id = id.to_str().unwrap_or("-"), method = %req.method(),
            path = %req.uri().path());
        let started = (!span.is_disabled()).then(Instant::now);
        let state = {
            let _entered = span.enter();
            match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
                Ok(future) => State::Running { future },
                Err(_) => State::Panicked,
            }
        };
        Enveloped { state, id: Some(id), span, started }
    }
}

pin_project! {
    /// The future of [`Envelope`]: the inner answer with the request id added.
    pub struct Enveloped<F> {
        #[pin]
        state: State<F>,
        id: Option<HeaderValue>,
        span: Span,
        started: Option<Instant>,
    }
}

pin_project! {
    /// Where an enveloped request stands.
    #[project = StateProj]
    enum State<F> {
        /// The handler is running.
        Running { #[pin] future: F },
        /// The handler panicked while being called.
        Panicked,
    }
}

impl<F, E> Future for Enveloped<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        // `None`: the handler panicked, now or when it was called.
        let polled = match this.state.project() {
            StateProj::Running { future } => catch_unwind(AssertUnwindSafe(|| future.poll(cx))).ok(),
            StateProj::Panicked => None,
        };
        let mut response = match polled {
            Some(Poll::Pending) => return Poll::Pending,
            Some(Poll::Ready(Err(e))) => return Poll::Ready(Err(e)),
            Some(Poll::Ready(Ok(response))) => response,
            None => {
                tracing::error!("a request handler panicked");
                ApiError::internal().into_response()
            }
        };
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        if let Some(started) = this.started {
            tracing::debug!(
                status = response.status().as_u16(),
                latency_us = started.elapsed().as_micros() as u64,
                "answered"
            );
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::ready;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;

    use super::*;

    /// Answers 200, or panics where told to.
    #[derive(Clone, Copy)]
    enum Handler {
        Ok,
        PanicOnCall,
        PanicOnPoll,
    }

    impl Service<Request> for Handler {
        type Response = Response;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request) -> Self::Future {
            match self {
                Handler::Ok => Box::pin(ready(Ok(StatusCode::OK.into_response()))),
                Handler::PanicOnCall => panic!("in call"),
                Handler::PanicOnPoll => Box::pin(async { panic!("in poll") }),
            }
        }
    }

    async fn answer(service: &mut Envelope<Handler>, id: Option<&str>) -> Response {
        let mut req = Request::new(Body::empty());
        if let Some(id) = id {
            req.headers_mut().insert(&X_REQUEST_ID, HeaderValue::from_str(id).unwrap());
        }
        service.call(req).await.unwrap()
    }

    fn id_of(response: &Response) -> &str {
        response.headers().get(&X_REQUEST_ID).expect("an x-request-id").to_str().unwrap()
    }

    #[tokio::test]
    async fn every_answer_carries_a_new_number_unless_the_client_sent_an_id() {
        let mut service = EnvelopeLayer::default().layer(Handler::Ok);
        let (first, second) = (answer(&mut service, None).await, answer(&mut service, None).await);
        assert_eq!(first.status(), StatusCode::OK);
        let (a, b): (u64, u64) = (id_of(&first).parse().unwrap(), id_of(&second).parse().unwrap());
        assert_eq!(b, a + 1);
        assert_eq!(id_of(&answer(&mut service, Some("trace-me")).await), "trace-me");
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_error_shape() {
        for handler in [Handler::PanicOnCall, Handler::PanicOnPoll] {
            let response = answer(&mut EnvelopeLayer::default().layer(handler), None).await;
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(id_of(&response), "0");
            let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["code"], "internal");
        }
    }
}
