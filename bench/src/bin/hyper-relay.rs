//! `hyper-relay`: the least a hyper server can do in the generator's pub/sub scenarios, as a
//! floor for webim. It speaks the part of Nchan's protocol that `webim-bench --target nchan`
//! uses (`POST /pub?id=C`, a long-poll `GET /sub?id=C` that follows `Etag`, `GET /health`)
//! on the same runtime and connection set-up as webim (one thread, plain HTTP/1.1), and does
//! nothing else: no routing framework, no tokens, no JSON, no storage. What it reaches in a
//! scenario is what hyper and tokio leave for everything webim adds.
//!
//! Unlike Nchan it keeps every message of a channel (a benchmark run's worth, in memory), so
//! a subscriber that falls behind loses nothing and a run's loss check holds at any size.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ETAG, LAST_MODIFIED};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Longest hold of a poll, as Nchan's `nchan_subscriber_timeout`.
const HOLD: Duration = Duration::from_secs(90);
/// Nchan answers with a date; the generator only hands it back.
const SINCE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// A channel: its messages, numbered from 0 by their place, and the polls waiting for the
/// next one.
#[derive(Default)]
struct Channel {
    messages: Vec<Bytes>,
    arrived: Rc<Notify>,
}

impl Channel {
    /// The message after number `after` (the first, when `after` is `None`), with its number.
    fn after(&self, after: Option<u64>) -> Option<(u64, Bytes)> {
        let n = match after {
            None => 0,
            Some(a) => a.checked_add(1)?,
        };
        self.messages.get(usize::try_from(n).ok()?).map(|body| (n, body.clone()))
    }
}

type Channels = Rc<RefCell<HashMap<String, Channel>>>;

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

/// The `id` of `?id=C`.
fn channel_of<B>(req: &Request<B>) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix("id=")).map(str::to_owned)
}

async fn handle(channels: Channels, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/health" {
        return Ok(answer(StatusCode::OK, Bytes::from_static(b"ok")));
    }
    let Some(id) = channel_of(&req) else {
        return Ok(answer(StatusCode::BAD_REQUEST, Bytes::from_static(b"no channel id")));
    };
    match (req.method().clone(), req.uri().path()) {
        (Method::POST, "/pub") => {
            let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
                return Ok(answer(StatusCode::BAD_REQUEST, Bytes::from_static(b"body not read")));
            };
            let mut all = channels.borrow_mut();
            let channel = all.entry(id).or_default();
            channel.messages.push(body);
            channel.arrived.notify_waiters();
            Ok(answer(StatusCode::CREATED, Bytes::from(format!("queued messages: {}\n", channel.messages.len()))))
        }
        (Method::GET, "/sub") => {
            let after = req.headers().get("if-none-match").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let deadline = tokio::time::Instant::now() + HOLD;
            loop {
                let arrived = {
                    let mut all = channels.borrow_mut();
                    let channel = all.entry(id.clone()).or_default();
                    if let Some((n, body)) = channel.after(after) {
                        let mut r = answer(StatusCode::OK, body);
                        r.headers_mut().insert(ETAG, n.into());
                        r.headers_mut().insert(LAST_MODIFIED, SINCE.parse().expect("a valid header"));
                        return Ok(r);
                    }
                    channel.arrived.clone()
                };
                let notified = arrived.notified();
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Ok(answer(StatusCode::NOT_MODIFIED, Bytes::new()));
                }
            }
        }
        _ => Ok(answer(StatusCode::NOT_FOUND, Bytes::from_static(b"not found"))),
    }
}

fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).unwrap_or_else(|| "18991".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let channels = Channels::default();
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let channels = channels.clone();
            tokio::task::spawn_local(async move {
                let service = service_fn(move |req| handle(channels.clone(), req));
                let _ =
                    http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_gets_the_message_after_its_etag() {
        let mut c = Channel::default();
        assert_eq!(c.after(None), None);
        for n in 0..3u64 {
            c.messages.push(Bytes::from(n.to_string()));
        }
        assert_eq!(c.after(None), Some((0, Bytes::from("0"))));
        assert_eq!(c.after(Some(0)), Some((1, Bytes::from("1"))));
        assert_eq!(c.after(Some(2)), None);
        assert_eq!(c.after(Some(u64::MAX)), None);
    }

    #[test]
    fn the_channel_is_the_id_in_the_query() {
        let of = |uri: &str| channel_of(&Request::builder().uri(uri).body(()).expect("a request"));
        assert_eq!(of("/sub?id=d7"), Some("d7".into()));
        assert_eq!(of("/sub?x=1&id=b"), Some("b".into()));
        assert_eq!(of("/sub"), None);
    }
}
