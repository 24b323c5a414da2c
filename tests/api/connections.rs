//! A connection stays usable when the server answers before reading the request's body.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

use crate::helpers::spawn_app;

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
    // Over the 2 MiB limit (413 after 2 MiB), then without a token (401 before any byte of
    // the body): each answer comes while the body is still on its way.
    let cases = [(Some(me.token.as_str()), 3 << 20, 413), (None, 1 << 20, 401)];
    for (token, size, want) in cases {
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!(
            "PUT /api/v1/me/avatar HTTP/1.1\r\nhost: x\r\n{auth}content-type: image/png\r\ncontent-length: {size}\r\n\r\n"
        );
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
