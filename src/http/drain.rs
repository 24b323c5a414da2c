//! Reads to the end the request bodies a handler left unread (an early 401, a 413 past the
//! size limit), so the answer reaches the client and the connection stays usable: closing a
//! socket with unread bytes makes the kernel reset it, and the client may see that reset
//! instead of the answer.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

/// Most bytes read and thrown away after the answer; a larger body closes the connection.
const DRAIN_MAX: usize = 8 << 20;
/// Longest time spent draining one body.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Wraps a request body that has data to come; empty bodies (every poll) stay as they are.
pub fn drain_unread<B>(body: B) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let body = Body::new(body);
    if body.is_end_stream() {
        body
    } else {
        Body::new(Drained(Some(body)))
    }
}

/// A request body that reads itself to the end when dropped early.
struct Drained(Option<Body>);

impl HttpBody for Drained {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(body) = self.0.as_mut() else { return Poll::Ready(None) };
        let frame = ready!(Pin::new(body).poll_frame(cx));
        if frame.is_none() {
            self.0 = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        let Some(mut body) = self.0.take() else { return };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, Bytes::len);
                    if read > DRAIN_MAX {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body fed from a channel, one frame per message.
    struct Chan(tokio::sync::mpsc::Receiver<Bytes>);

    impl HttpBody for Chan {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_body_dropped_unread_is_read_to_the_end() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(drain_unread(Body::new(Chan(rx))));
        for _ in 0..3 {
            // With room for one message only, these complete because something reads on.
            tokio::time::timeout(Duration::from_secs(5), tx.send(Bytes::from(vec![0; 1024])))
                .await
                .expect("the dropped body is still being read")
                .expect("the reader is alive");
        }
    }

    #[tokio::test]
    async fn an_empty_body_is_left_as_it_is() {
        assert!(drain_unread(Body::empty()).is_end_stream());
    }
}
