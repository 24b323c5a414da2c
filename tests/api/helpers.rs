//! A real server per test, on a free port with a fresh data directory, and a typed client
//! for it. Tests talk HTTP only.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use webim::app::Application;
use webim::config::Config;

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// How long a user stays online after their last poll, in the test servers.
pub const PRESENCE_GRACE: Duration = Duration::from_secs(1);

/// Tests that measure latency or push much load hold this, so they never overlap on a
/// small, shared machine.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds off the other timing-sensitive or heavy tests while the guard lives.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().await
}

/// Every route the server's routers serve, as (method, path template). The bad-input test
/// must cover each one, and the OpenAPI document must list each `/api/v1` one.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/messages"),
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/{cid}/messages"),
    ("POST", "/api/v1/conversations/{cid}/read"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}/avatar"),
    ("GET", "/api/v1/friends"),
    ("DELETE", "/api/v1/friends/{user_id}"),
    ("POST", "/api/v1/friend-requests"),
    ("GET", "/api/v1/friend-requests"),
    ("POST", "/api/v1/friend-requests/{id}/accept"),
    ("POST", "/api/v1/friend-requests/{id}/decline"),
    ("PATCH", "/api/v1/me"),
    ("PUT", "/api/v1/me/avatar"),
    ("PUT", "/api/v1/me/settings"),
    ("GET", "/avatars/{name}"),
    ("DELETE", "/api/v1/conversations/{cid}/messages/{seq}"),
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/groups"),
    ("GET", "/api/v1/groups/{id}"),
    ("PATCH", "/api/v1/groups/{id}"),
    ("DELETE", "/api/v1/groups/{id}"),
    ("GET", "/api/v1/groups/{id}/members"),
    ("POST", "/api/v1/groups/{id}/members"),
    ("DELETE", "/api/v1/groups/{id}/members/{user_id}"),
    ("PATCH", "/api/v1/groups/{id}/members/{user_id}"),
    ("POST", "/api/v1/groups/{id}/join"),
    ("POST", "/api/v1/groups/{id}/leave"),
    ("POST", "/api/v1/groups/{id}/transfer"),
    ("GET", "/api/v1/groups/{id}/requests"),
    ("POST", "/api/v1/groups/{id}/requests/{user_id}/accept"),
    ("POST", "/api/v1/groups/{id}/requests/{user_id}/decline"),
    ("PUT", "/api/v1/groups/{id}/avatar"),
    ("GET", "/api/v1/groups/{id}/avatar"),
    ("GET", "/api/v1/me/groups"),
    ("GET", "/api/openapi.json"),
    ("GET", "/health"),
];

/// A running server and a client for it. Dropping it shuts the server down and removes
/// its data directory.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// `http://addr`.
    pub base: String,
    /// One client (one connection pool) for every request of the test.
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    config: Config,
    data_dir: PathBuf,
}

/// One login of a user.
#[derive(Debug, Clone)]
pub struct Device {
    /// Bearer token.
    pub token: String,
    /// The device's id.
    pub device_id: i64,
    /// The user's id.
    pub user_id: i64,
    /// The user's name.
    pub username: String,
    /// The cursor the login answered with.
    pub cursor: String,
}

/// A poll's answer with how long it took.
#[derive(Debug)]
pub struct Polled {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
    /// When the answer arrived.
    pub at: Instant,
}

fn fresh_data_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!(
        "webim-test-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Starts a server with test settings: a free port, a fresh data directory, cheap password
/// hashing and a short presence grace.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to change the settings first.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = fresh_data_dir();
    let mut config = Config::with_data_dir(&data_dir);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.argon2_memory_kib = 64;
    config.presence_grace = PRESENCE_GRACE;
    change(&mut config);
    let (addr, shutdown, server) = start(config.clone()).await;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap();
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client,
        shutdown: Some(shutdown),
        server: Some(server),
        config,
        data_dir,
    }
}

/// Builds and runs a server until the returned sender fires (or is dropped).
async fn start(config: Config) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let app = Application::build(config).await.expect("the server builds");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let signal = async move {
            let _ = rx.await;
        };
        if let Err(e) = app.run_until(signal).await {
            eprintln!("server failed: {e:#}");
        }
    });
    (addr, tx, server)
}

impl TestApp {
    /// Shuts the server down gracefully and starts a new one on the same data directory
    /// (on a new port).
    pub async fn restart(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(20), server)
                .await
                .expect("the server stops within 20 s")
                .expect("the server task ends cleanly");
        }
        let (addr, shutdown, server) = start(self.config.clone()).await;
        self.addr = addr;
        self.base = format!("http://{addr}");
        self.shutdown = Some(shutdown);
        self.server = Some(server);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A body for [`TestApp::request`].
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// A JSON value.
    Json(Value),
    /// Bytes sent as they are, labelled JSON.
    Raw(String),
    /// Bytes sent as they are, labelled with this content type (pictures, …).
    Bytes(Vec<u8>, &'static str),
}

/// Parses an answer body: `Null` when empty, the text as a JSON string when it is not JSON.
pub fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Reads a response into (status, json).
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("the body arrives");
    (status, parse_body(&bytes))
}

/// The `type` of an event.
pub fn kind(event: &Value) -> &str {
    event["type"].as_str().unwrap_or("")
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| kind(e) == t).collect()
}

/// The bodies of the `message.new` events, in order.
pub fn message_bodies(events: &[Value]) -> Vec<String> {
    of_type(events, "message.new").iter().map(|e| e["message"]["body"].as_str().unwrap().to_owned()).collect()
}

/// Checks the error shape `{"error":{"code":..,"message":..}}`; answers the code or what
/// is wrong with the shape.
pub fn error_shape(body: &Value) -> Result<String, String> {
    let obj = body.as_object().ok_or("the body is no JSON object")?;
    if obj.len() != 1 {
        return Err("the body holds more than `error`".into());
    }
    let error = obj.get("error").and_then(Value::as_object).ok_or("`error` is missing or no object")?;
    let message = error.get("message").and_then(Value::as_str).ok_or("`error.message` is missing or no string")?;
    if message.trim().is_empty() {
        return Err("`error.message` is empty".into());
    }
    let code = error.get("code").and_then(Value::as_str).ok_or("`error.code` is missing or no string")?;
    let snake = !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !snake {
        return Err("`error.code` is not snake_case".into());
    }
    Ok(code.to_owned())
}

/// Asserts the error shape and returns the code.
#[track_caller]
pub fn error_code(body: &Value) -> String {
    error_shape(body).unwrap_or_else(|why| panic!("{why}: {body}"))
}

/// Asserts an error answer's status and code.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(answer.0.as_u16(), status, "status of {}", answer.1);
    assert_eq!(error_code(&answer.1), code, "code of {}", answer.1);
}

impl TestApp {
    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Any request; `token` as a bearer token when given.
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Body) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(s) => req.header("content-type", "application/json").body(s),
            Body::Bytes(b, content_type) => req.header("content-type", content_type).body(b),
        };
        read(req.send().await.expect("the request reaches the server")).await
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, Some(token), Body::None).await
    }

    /// `POST path` with a bearer token and a JSON body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(token), Body::Json(body)).await
    }

    /// `POST path` with a bearer token and no body.
    pub async fn post_empty(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(token), Body::None).await
    }

    /// `DELETE path` with a bearer token.
    pub async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, Some(token), Body::None).await
    }

    /// Registers `name` (password [`PASSWORD`]); answers the `user`.
    pub async fn register(&self, name: &str) -> Value {
        let answer = self
            .request(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Body::Json(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(answer.0, StatusCode::CREATED, "register {name}: {}", answer.1);
        answer.1["user"].clone()
    }

    /// Logs `name` in: a new device.
    pub async fn login(&self, name: &str) -> Device {
        let (status, body) = self
            .request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Body::Json(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {name}: {body}");
        Device {
            token: body["token"].as_str().expect("a token").to_owned(),
            device_id: body["device_id"].as_i64().expect("a device id"),
            user_id: body["user"]["id"].as_i64().expect("a user id"),
            username: name.to_owned(),
            cursor: body["cursor"].as_str().expect("a cursor").to_owned(),
        }
    }

    /// Registers and logs in `name`.
    pub async fn user(&self, name: &str) -> Device {
        self.register(name).await;
        self.login(name).await
    }

    /// `a` asks `b`, `b` accepts; answers the id of their direct conversation.
    pub async fn befriend(&self, a: &Device, b: &Device) -> String {
        let (status, body) = self.post(&a.token, "/api/v1/friend-requests", json!({"user_id": b.user_id})).await;
        assert_eq!(status, StatusCode::CREATED, "friend request: {body}");
        let id = body["request"]["id"].as_i64().expect("a request id");
        let (status, body) = self.post_empty(&b.token, &format!("/api/v1/friend-requests/{id}/accept")).await;
        assert_eq!(status, StatusCode::OK, "accept: {body}");
        body["conversation_id"].as_str().expect("a conversation id").to_owned()
    }

    /// Sends a direct message; the raw response.
    pub async fn send(&self, dev: &Device, to_user: i64, client_msg_id: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/messages"))
            .bearer_auth(&dev.token)
            .json(&json!({"to": {"user": to_user}, "client_msg_id": client_msg_id, "body": body}))
            .send()
            .await
            .expect("the request reaches the server")
    }

    /// Sends a direct message that must be stored (201); answers the `message`.
    pub async fn send_ok(&self, dev: &Device, to_user: i64, client_msg_id: &str, body: &str) -> Value {
        let (status, answer) = read(self.send(dev, to_user, client_msg_id, body).await).await;
        assert_eq!(status, StatusCode::CREATED, "send: {answer}");
        answer["message"].clone()
    }

    /// One poll, any outcome.
    pub async fn poll_raw(&self, dev: &Device, cursor: Option<&str>, timeout_s: u64) -> Polled {
        let mut query = vec![("timeout", timeout_s.to_string())];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let response = self
            .client
            .get(self.url("/api/v1/events"))
            .bearer_auth(&dev.token)
            .query(&query)
            .send()
            .await
            .expect("the poll reaches the server");
        let status = response.status();
        let bytes = response.bytes().await.expect("the poll's body arrives");
        Polled { status, body: parse_body(&bytes), at: Instant::now() }
    }

    /// One poll that must answer 200 `{cursor, events, more}`.
    pub async fn poll(&self, dev: &Device, cursor: Option<&str>, timeout_s: u64) -> Value {
        let p = self.poll_raw(dev, cursor, timeout_s).await;
        assert_eq!(p.status, StatusCode::OK, "poll: {}", p.body);
        assert!(p.body["cursor"].is_string(), "a cursor: {}", p.body);
        assert!(p.body["events"].is_array(), "events: {}", p.body);
        assert!(p.body["more"].is_boolean(), "more: {}", p.body);
        p.body
    }

    /// Polls without waiting from the device's login cursor until nothing is pending;
    /// answers the cursor after everything.
    pub async fn drain(&self, dev: &Device) -> String {
        self.drain_from(dev, &dev.cursor).await
    }

    /// Polls without waiting from `cursor` until nothing is pending; answers the cursor.
    pub async fn drain_from(&self, dev: &Device, cursor: &str) -> String {
        let mut cursor = cursor.to_owned();
        loop {
            let answer = self.poll(dev, Some(&cursor), 0).await;
            cursor = answer["cursor"].as_str().unwrap().to_owned();
            if answer["events"].as_array().unwrap().is_empty() {
                return cursor;
            }
        }
    }

    /// Polls from `cursor`, gathering events, until `done` holds for what was gathered or
    /// `within` passes; answers the events and the last cursor.
    pub async fn collect_until(
        &self,
        dev: &Device,
        cursor: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> (Vec<Value>, String) {
        let deadline = Instant::now() + within;
        let mut cursor = cursor.to_owned();
        let mut events = Vec::new();
        while !done(&events) && Instant::now() < deadline {
            let answer = self.poll(dev, Some(&cursor), 1).await;
            cursor = answer["cursor"].as_str().unwrap().to_owned();
            events.extend(answer["events"].as_array().unwrap().iter().cloned());
        }
        (events, cursor)
    }

    /// Like [`TestApp::collect_until`], failing when `done` never holds.
    pub async fn expect_events(
        &self,
        dev: &Device,
        cursor: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> (Vec<Value>, String) {
        let (events, cursor) = self.collect_until(dev, cursor, Duration::from_secs(10), &done).await;
        assert!(done(&events), "{} never got {what}; got {}", dev.username, Value::from(events.clone()));
        (events, cursor)
    }

    /// A page of a conversation's history; `query` like `"after_seq=3&limit=2"`.
    pub async fn history(&self, dev: &Device, cid: &str, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&dev.token, &format!("/api/v1/conversations/{cid}/messages?{query}")).await;
        assert_eq!(status, StatusCode::OK, "history: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// The device's conversation list: `{conversations, cursor}`.
    pub async fn conversations(&self, dev: &Device) -> Value {
        let (status, body) = self.get(&dev.token, "/api/v1/conversations").await;
        assert_eq!(status, StatusCode::OK, "conversations: {body}");
        body
    }
}

/// The seqs of a list of messages.
pub fn seqs(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

/// `png` with its header rewritten to claim 100,000 × 100,000 pixels (CRC fixed): a
/// decompression bomb's header.
pub fn png_bomb(png: &[u8]) -> Vec<u8> {
    let mut bomb = png.to_vec();
    // IHDR's data starts at byte 16: width, height (big endian), then its CRC at 29.
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb
}
