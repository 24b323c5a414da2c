//! `hyper-relay`: the least a hyper server can do in the generator's pub/sub scenarios, as a
//! floor for webim. It speaks the part of Nchan's protocol that `webim-bench --target nchan`
//! uses (`POST /pub?id=C`, a long-poll `GET /sub?id=C` that follows `Etag`, `GET /health`)
//! on the same kind of runtime, connections and allocator as webim (one thread, plain
//! HTTP/1.1, jemalloc), and does nothing else: no routing framework, no tokens, no JSON, no
//! durable storage. What it reaches in a scenario is what hyper and tokio leave for
//! everything webim adds. (webim also tunes jemalloc to give memory back after a burst; the
//! relay does not, so its `idle` memory is not a floor for webim's.)
//!
//! Unlike Nchan it keeps every message of a channel (a benchmark run's worth, in memory), so
//! a subscriber that falls behind loses nothing and a run's loss check holds at any size.
//!
//! Usage: `hyper-relay [PORT]` (0, the default, takes a free port); it prints
//! `listening on ADDR` once it listens.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ETAG, LAST_MODIFIED};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;

// As in webim, so the allocator is not a difference between the two.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

/// Appends `body` to channel `id` and wakes its polls; the channel's message count after.
fn publish(channels: &Channels, id: String, body: Bytes) -> usize {
    let mut all = channels.borrow_mut();
    let channel = all.entry(id).or_default();
    channel.messages.push(body);
    channel.arrived.notify_waiters();
    channel.messages.len()
}

/// The message after number `after` on channel `id`, waiting for it until `hold` has passed
/// (then `None`).
async fn next_message(channels: &Channels, id: &str, after: Option<u64>, hold: Duration) -> Option<(u64, Bytes)> {
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        // The channel's `Notify` is taken out (an `Rc`) so the borrow of the map ends before
        // the wait; the `Notified` is made before any await, so a publish between the check
        // and the wait still wakes it (it counts every `notify_waiters` from its creation).
        let arrived = {
            let mut all = channels.borrow_mut();
            // Looked up first: `entry` would take an owned key, an allocation every poll.
            if !all.contains_key(id) {
                all.insert(id.to_owned(), Channel::default());
            }
            let channel = &all[id];
            if let Some(found) = channel.after(after) {
                return Some(found);
            }
            channel.arrived.clone()
        };
        let notified = arrived.notified();
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return None;
        }
    }
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
            // A copy of its own: the collected body may share, and so keep, hyper's whole
            // read buffer.
            let kept = publish(&channels, id, Bytes::copy_from_slice(&body));
            Ok(answer(StatusCode::CREATED, Bytes::from(format!("queued messages: {kept}\n"))))
        }
        (Method::GET, "/sub") => {
            let after = req.headers().get("if-none-match").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            Ok(match next_message(&channels, &id, after, HOLD).await {
                Some((n, body)) => {
                    let mut r = answer(StatusCode::OK, body);
                    r.headers_mut().insert(ETAG, n.into());
                    r.headers_mut().insert(LAST_MODIFIED, HeaderValue::from_static(SINCE));
                    r
                }
                None => answer(StatusCode::NOT_MODIFIED, Bytes::new()),
            })
        }
        _ => Ok(answer(StatusCode::NOT_FOUND, Bytes::from_static(b"not found"))),
    }
}

fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).unwrap_or_else(|| "0".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        // The generator reads this line for the address, rather than trusting that whatever
        // answers on a port is this process.
        println!("listening on {}", listener.local_addr()?);
        std::io::Write::flush(&mut std::io::stdout())?;
        let channels = Channels::default();
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    eprintln!("hyper-relay: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // As webim does: small answers leave at once rather than wait for Nagle's timer.
            let _ = tcp.set_nodelay(true);
            let channels = channels.clone();
            tokio::task::spawn_local(async move {
                let service = service_fn(move |req| handle(channels.clone(), req));
                // One `send` per answer, as webim's small answers leave (`src/one_send.rs`).
                // hyper's own flattening keeps a buffer per connection as large as its
                // largest answer, which here is small.
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .writev(false)
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
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

    #[tokio::test(flavor = "current_thread")]
    async fn a_held_poll_is_answered_by_the_next_publish_or_after_the_hold() {
        let hold = Duration::from_millis(50);
        let channels = Channels::default();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let waiting = {
                    let channels = channels.clone();
                    tokio::task::spawn_local(async move { next_message(&channels, "c", None, hold).await })
                };
                tokio::task::yield_now().await;
                assert_eq!(publish(&channels, "c".into(), Bytes::from("hi")), 1);
                assert_eq!(waiting.await.expect("the poll ran"), Some((0, Bytes::from("hi"))));
                // Nothing after message 0: the poll ends empty once the hold has passed.
                let started = std::time::Instant::now();
                assert_eq!(next_message(&channels, "c", Some(0), hold).await, None);
                assert!(started.elapsed() >= hold);
            })
            .await;
    }

    #[test]
    fn the_channel_is_the_id_in_the_query() {
        let of = |uri: &str| channel_of(&Request::builder().uri(uri).body(()).expect("a request"));
        assert_eq!(of("/sub?id=d7"), Some("d7".into()));
        assert_eq!(of("/sub?x=1&id=b"), Some("b".into()));
        assert_eq!(of("/sub"), None);
    }
}
