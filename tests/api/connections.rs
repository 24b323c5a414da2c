//! A connection stays usable when the server answers before reading the request's body,
//! and a held poll whose client hangs up ends at once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, PRESENCE_GRACE};

/// Reads one HTTP/1.1 answer (status line, headers, a Content-Length body); returns the status.
async fn read_answer(conn: &mut BufReader<OwnedReadHalf>) -> u16 {
    let mut line = String::new();
    conn.read_line(&mut line).await.expect("status line");
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {line:?}"));
    let mut length = 0;
    loop {
        line.clear();
        conn.read_line(&mut line).await.expect("header line");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("content-length");
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.expect("body");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_given_before_the_body_is_read_leave_the_connection_usable() {
    let app = spawn_app().await;
    let me = app.user("uploader").await;
    let (read, mut write) = TcpStream::connect(app.addr).await.unwrap().into_split();
    let mut answers = BufReader::new(read);
    // Over the limit (413 once it is passed), then without a token (401 before any byte of
    // the body): each answer comes while the body is still on its way. An avatar (2 MiB
    // limit, through the router) and a message (64 KiB, past the router: `fast_routes.rs`).
    let avatar = "PUT /api/v1/me/avatar HTTP/1.1\r\ncontent-type: image/png";
    let message = "POST /api/v1/messages HTTP/1.1\r\ncontent-type: application/json";
    let token = Some(me.token.as_str());
    let cases = [
        (avatar, token, 3 << 20, 413),
        (avatar, None, 1 << 20, 401),
        (message, token, 1 << 20, 413),
        (message, None, 1 << 20, 401),
    ];
    for (route, token, size, want) in cases {
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!("{route}\r\nhost: x\r\n{auth}content-length: {size}\r\n\r\n");
        let sending = tokio::spawn(async move {
            write.write_all(head.as_bytes()).await?;
            write.write_all(&vec![7u8; size]).await?;
            std::io::Result::Ok(write)
        });
        assert_eq!(read_answer(&mut answers).await, want);
        write = sending.await.unwrap().expect("the whole body was taken");
    }
    // The same connection serves the next request.
    write.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert_eq!(read_answer(&mut answers).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_poll_whose_client_hangs_up_ends_at_once() {
    // A browser tab closed mid-poll: the server must not count the poll as held until its
    // timeout (60 s here), or the user would stay "online" to friends for a minute and the
    // poll's memory would stay taken. Presence shows it: offline follows the grace period.
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    app.befriend(&a, &b).await;
    let bob_online = || async {
        let (_, body) = app.get(&a.token, "/api/v1/friends").await;
        body["friends"][0]["online"].clone()
    };
    // Past everything befriending produced, so that the poll has nothing to answer with.
    let cursor = app.drain(&b).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/events?cursor={cursor}&timeout=60 HTTP/1.1\r\nhost: webim\r\nauthorization: Bearer {}\r\n\r\n",
        b.token
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    // Held: no answer, and bob stays online past the grace that follows a poll's end.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(PRESENCE_GRACE * 2, conn.read(&mut byte)).await;
    assert!(early.is_err(), "the poll was answered at once: {early:?}");
    assert_eq!(bob_online().await, json!(true), "bob is online while his poll is held");
    drop(conn);
    let hung_up = Instant::now();
    let mut online: Value = json!(true);
    while online == json!(true) && hung_up.elapsed() < PRESENCE_GRACE + Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        online = bob_online().await;
    }
    assert_eq!(online, json!(false), "bob still online {:?} after his poll's connection closed", hung_up.elapsed());
    // The grace and one sweep of the presence task, well short of the poll's 60 s.
    assert!(hung_up.elapsed() < PRESENCE_GRACE + Duration::from_secs(8), "offline after {:?}", hung_up.elapsed());
}
