//! The webim HTTP API as a browser uses it: send a message, hold a poll, follow the cursor.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::arrival_clock::{LastArrival, TimedStream};

/// An HTTP/1.1 client for one server: pooled, or one connection of its own; cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: Transport,
    base: String,
}

#[derive(Clone)]
enum Transport {
    /// Any idle connection of a shared pool, or a new one.
    Pool(Client<HttpConnector, Full<Bytes>>),
    /// One keep-alive connection, as a browser tab holds; requests on it go one at a time.
    /// If asked, its reads note when their bytes arrived, across reconnects.
    Own(Arc<Mutex<Own>>, Option<LastArrival>),
}

type Connection = Pin<Box<http1::Connection<TokioIo<TimedStream>, Full<Bytes>>>>;

/// A connection of its own, driven by the task that sends on it. Given a task of its own
/// (hyper's usual set-up), every request and every answer crossed between two tasks: in
/// `fanout` that hand-off and its wake-ups were a large part of the generator's time, and a
/// saturated generator is then what the figures measure.
struct Own {
    send: http1::SendRequest<Full<Bytes>>,
    conn: Connection,
    /// The connection ended (the server closed it, as nginx does after 1,000 requests).
    closed: bool,
}

/// Runs `fut` while driving the connection it needs; fails if the connection ends first.
async fn drive<F: Future>(conn: &mut Connection, closed: &mut bool, fut: F) -> anyhow::Result<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if *closed || conn.as_mut().poll(cx).is_ready() {
            *closed = true;
            // What the connection delivered before it ended is there now; nothing more comes.
            return match fut.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Ok(out)),
                Poll::Pending => Poll::Ready(Err(anyhow::anyhow!("connection closed mid-request"))),
            };
        }
        Poll::Pending
    })
    .await
}

/// One poll answer, with only what the checks need; borrows from the answer's bytes.
#[derive(Debug, Deserialize)]
pub struct Polled<'a> {
    /// Where the next poll starts.
    #[serde(borrow)]
    pub cursor: Cow<'a, str>,
    /// What arrived (a cut batch is simply followed by the next poll).
    #[serde(borrow)]
    pub events: Vec<Event<'a>>,
    /// Whether more was there than the answer held.
    #[serde(default)]
    pub more: bool,
}

/// An event; only `message.new` is looked into.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    /// The event type.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The message of a `message.new`.
    #[serde(borrow)]
    pub message: Option<Message<'a>>,
}

/// A delivered message.
#[derive(Debug, Deserialize)]
pub struct Message<'a> {
    /// Conversation id.
    #[serde(borrow)]
    pub conversation_id: Cow<'a, str>,
    /// Gapless per conversation.
    pub seq: i64,
    /// Who sent it.
    pub sender_id: i64,
    /// The body: the bench writes the send time into it.
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

/// A poll's answer as it came: parse it with [`Answer::parse`].
pub struct Answer {
    body: Bytes,
    arrived: Option<Instant>,
}

impl Answer {
    /// The events and the next cursor.
    pub fn parse(&self) -> anyhow::Result<Polled<'_>> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// When it reached the socket, if the client is [`Api::stamped`].
    pub fn arrived(&self) -> Option<Instant> {
        self.arrived
    }
}

/// An answer: status, headers, body, and when its last bytes reached the socket (stamped
/// clients only).
pub type Exchange = (StatusCode, hyper::HeaderMap, Bytes, Option<Instant>);

impl Api {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        Api { http: Transport::Pool(http), base: base.trim_end_matches('/').to_owned() }
    }

    /// A client of the same server on a connection of its own. A simulated device uses one
    /// per loop, as a browser does: no pool to share with thousands of others, which made
    /// the generator's own work a large part of what it measured.
    pub async fn dedicated(&self) -> anyhow::Result<Api> {
        self.own_connection(None).await
    }

    /// Like [`Api::dedicated`], and its answers' arrival at the socket is known
    /// ([`Api::exchange`], [`Answer::arrived`]). Not for every connection: where the
    /// generator is the limit, stamped reads looked a few per cent slower (BENCHMARKS.md,
    /// nineteenth measurement).
    pub async fn stamped(&self) -> anyhow::Result<Api> {
        self.own_connection(Some(LastArrival::default())).await
    }

    async fn own_connection(&self, last: Option<LastArrival>) -> anyhow::Result<Api> {
        let own = self.open(last.as_ref()).await?;
        Ok(Api { http: Transport::Own(Arc::new(Mutex::new(own)), last), base: self.base.clone() })
    }

    /// `n` clients with a connection each, opened a wave at a time: a burst of thousands at
    /// once would overflow the server's queue of unaccepted connections (Nchan's is 511),
    /// and each dropped handshake is retried only after a second.
    pub async fn dedicated_many(&self, n: usize) -> anyhow::Result<Vec<Api>> {
        self.many(n, false).await
    }

    /// `n` clients as [`Api::stamped`] makes them, opened as [`Api::dedicated_many`] does.
    pub async fn stamped_many(&self, n: usize) -> anyhow::Result<Vec<Api>> {
        self.many(n, true).await
    }

    async fn many(&self, n: usize, stamped: bool) -> anyhow::Result<Vec<Api>> {
        const WAVE: usize = 256;
        let mut all = Vec::with_capacity(n);
        while all.len() < n {
            let mut wave = tokio::task::JoinSet::new();
            for _ in 0..WAVE.min(n - all.len()) {
                let api = self.clone();
                wave.spawn(async move {
                    if stamped {
                        api.stamped().await
                    } else {
                        api.dedicated().await
                    }
                });
            }
            while let Some(r) = wave.join_next().await {
                all.push(r??);
            }
        }
        Ok(all)
    }

    async fn open(&self, last: Option<&LastArrival>) -> anyhow::Result<Own> {
        let stream = TcpStream::connect(self.authority()).await.context("connect failed")?;
        stream.set_nodelay(true)?;
        let stream = TimedStream::new(stream, last.cloned()).context("receive timestamps refused")?;
        let (send, conn) = http1::handshake(TokioIo::new(stream)).await.context("handshake failed")?;
        Ok(Own { send, conn: Box::pin(conn), closed: false })
    }

    fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.exchange(method, path, token, body, &[]).await.map(|(s, _, b, _)| (s, b))
    }

    /// Any request with extra headers; answers the status, headers and body, and the
    /// answer's arrival at the socket. That is taken while the connection is still held, so
    /// it is this answer's and not a later one's.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Exchange> {
        let mut req = match self.http {
            Transport::Pool(_) => Request::builder().uri(format!("{}{path}", self.base)),
            // A connection of its own sends the path alone; the pool adds the host itself.
            Transport::Own(..) => Request::builder().uri(path).header("host", self.authority()),
        }
        .method(method);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body)?;
        match &self.http {
            Transport::Pool(client) => {
                let (parts, body) = client.request(req).await.context("request failed")?.into_parts();
                let bytes = body.collect().await.context("body failed")?.to_bytes();
                Ok((parts.status, parts.headers, bytes, None))
            }
            Transport::Own(own, last) => {
                let mut own = own.lock().await;
                let Own { send, conn, closed } = &mut *own;
                // A server may end a keep-alive connection after an answer (nginx does after
                // 1,000 requests); a browser then opens a new one, and so does this.
                if *closed
                    || !matches!(drive(conn, closed, std::future::poll_fn(|cx| send.poll_ready(cx))).await, Ok(Ok(())))
                {
                    *own = self.open(last.as_ref()).await?;
                }
                let Own { send, conn, closed } = &mut *own;
                let response = send.send_request(req);
                let (parts, body) = drive(conn, closed, response).await?.context("request failed")?.into_parts();
                let bytes = drive(conn, closed, body.collect()).await?.context("body failed")?.to_bytes();
                Ok((parts.status, parts.headers, bytes, last.as_ref().and_then(LastArrival::get)))
            }
        }
    }

    /// `GET /health`: the cheapest route, for the machine's ceiling.
    pub async fn health(&self) -> anyhow::Result<()> {
        let (status, _) = self.call(Method::GET, "/health", None, None).await?;
        if status != StatusCode::OK {
            bail!("health answered {status}");
        }
        Ok(())
    }

    /// Sends a message (`to` is `{"user":ID}` or `{"group":ID}`); fails unless stored (201).
    pub async fn send(&self, token: &str, to: &str, client_msg_id: &str, body: &str) -> anyhow::Result<()> {
        let json = format!(r#"{{"to":{to},"client_msg_id":"{client_msg_id}","body":"{body}"}}"#);
        let (status, answer) = self.call(Method::POST, "/api/v1/messages", Some(token), Some(json)).await?;
        if status != StatusCode::CREATED {
            bail!("send answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        Ok(())
    }

    /// One long poll from `cursor`.
    pub async fn poll(&self, token: &str, cursor: &str, timeout_s: u64) -> anyhow::Result<Answer> {
        let path = format!("/api/v1/events?cursor={cursor}&timeout={timeout_s}");
        let (status, _, body, arrived) = self.exchange(Method::GET, &path, Some(token), None, &[]).await?;
        if status != StatusCode::OK {
            bail!("poll answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(Answer { body, arrived })
    }
}
