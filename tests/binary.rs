//! The real binary as a child process: restart durability (SIGKILL while messages stream
//! in: after a restart every message that got its 201 is in history), graceful shutdown on
//! SIGTERM, `webim seed` for load tests, the queue of connections not yet accepted, and the
//! allocator's options.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// Starts `webim serve` on a free port; returns the child and its base URL.
async fn start(data: &Path) -> (Child, String) {
    start_with(data, &[]).await
}

/// [`start`] with more flags.
async fn start_with(data: &Path, flags: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--argon2-memory-kib", "64", "--data-dir"])
        .arg(data)
        .args(flags)
        .env("WEBIM_LOG", "webim=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.trim().to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens within 30 s");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(client: &reqwest::Client, base: &str, name: &str) -> String {
    let (s, _) = call(
        client,
        reqwest::Method::POST,
        format!("{base}/api/v1/auth/register"),
        None,
        Some(json!({"username": name, "password": "password1"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v) = call(
        client,
        reqwest::Method::POST,
        format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": name, "password": "password1"})),
    )
    .await;
    assert_eq!(s, 200);
    v["token"].as_str().unwrap().to_owned()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webim-{tag}-{}-{}", std::process::id(), webim::model::now_ms()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_a_kill_9_mid_stream() {
    kill_9_mid_stream("2").await;
}

/// One worker runs a one-thread runtime, where commits are answered by a task of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_a_kill_9_mid_stream_on_one_worker() {
    kill_9_mid_stream("1").await;
}

async fn kill_9_mid_stream(workers: &str) {
    let data = temp_dir(&format!("kill9-{workers}"));
    let (mut child, base) = start_with(&data, &["--workers", workers]).await;
    let client = reqwest::Client::new();
    let alice = login(&client, &base, "alice").await;
    let bob = login(&client, &base, "bob").await;
    let (s, req) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/friend-requests"),
        Some(&alice),
        Some(json!({"user_id": 2})),
    )
    .await;
    assert_eq!(s, 201, "{req}");
    let id = req["request"]["id"].as_i64().unwrap();
    let (s, _) =
        call(&client, reqwest::Method::POST, format!("{base}/api/v1/friend-requests/{id}/accept"), Some(&bob), None)
            .await;
    assert_eq!(s, 200);

    // Four senders stream messages; every 201 is recorded before the kill can land.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut senders = Vec::new();
    for task in 0..4 {
        let (client, base, token, acked) = (client.clone(), base.clone(), alice.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({"to": {"user": 2}, "client_msg_id": format!("t{task}-{i}"), "body": format!("message {task}-{i}")});
                match client.post(format!("{base}/api/v1/messages")).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => {
                        acked.lock().await.insert(format!("t{task}-{i}"));
                    }
                    _ => break,
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while acked.lock().await.len() < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("300 messages acknowledged within 60 s");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().await.clone();

    let (_child, base) = start(&data).await;
    let mut stored = BTreeSet::new();
    let mut after = 0;
    loop {
        let url = format!("{base}/api/v1/conversations/d1-2/messages?after_seq={after}&limit=200");
        let (s, v) = call(&client, reqwest::Method::GET, url, Some(&bob), None).await;
        assert_eq!(s, 200, "{v}");
        let page = v["messages"].as_array().unwrap().clone();
        let Some(last) = page.last() else { break };
        for (i, m) in page.iter().enumerate() {
            assert_eq!(m["seq"].as_i64().unwrap(), after + 1 + i as i64, "seq has no gap after restart");
            stored.insert(m["client_msg_id"].as_str().unwrap().to_owned());
        }
        after = last["seq"].as_i64().unwrap();
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged messages lost: {lost:?}", lost.len());
    assert!(acked.len() >= 300);
    eprintln!("{} acknowledged, {} stored after the kill", acked.len(), stored.len());
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_held_polls_at_once_and_exits_cleanly() {
    let data = temp_dir("sigterm");
    let (mut child, base) = start(&data).await;
    let client = reqwest::Client::new();
    let token = login(&client, &base, "carol").await;
    let held = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            call(&client, reqwest::Method::GET, format!("{base}/api/v1/events?timeout=60"), Some(&token), None).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = std::time::Instant::now();
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(5), held).await.expect("the held poll answers").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"], json!([]));
    assert!(sent.elapsed() < Duration::from_secs(3), "answered {:?} after SIGTERM", sent.elapsed());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("the server exits").unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_tokens_work_over_http_and_seeded_users_cannot_log_in() {
    let data = temp_dir("seed");
    let out = Command::new(env!("CARGO_BIN_EXE_webim"))
        .args(["seed", "--pairs", "3", "--groups", "1", "--group-members", "4", "--idle", "2", "--data-dir"])
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seeded: Value = serde_json::from_slice(&out.stdout).expect("seed prints JSON");
    assert_eq!(seeded["pairs"].as_array().unwrap().len(), 3);
    assert_eq!(seeded["groups"][0]["members"].as_array().unwrap().len(), 4);
    assert_eq!(seeded["idle"].as_array().unwrap().len(), 2);

    let (_child, base) = start(&data).await;
    let client = reqwest::Client::new();
    let [a, b] = [&seeded["pairs"][0][0], &seeded["pairs"][0][1]];
    let (ta, tb) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());
    let body = json!({"to": {"user": b["user_id"]}, "client_msg_id": "seeded-1", "body": "hello from a seed"});
    let (s, sent) = call(&client, reqwest::Method::POST, format!("{base}/api/v1/messages"), Some(ta), Some(body)).await;
    assert_eq!(s, 201, "seeded pairs are friends: {sent}");
    let cursor = b["cursor"].as_str().unwrap();
    let (s, polled) =
        call(&client, reqwest::Method::GET, format!("{base}/api/v1/events?cursor={cursor}&timeout=5"), Some(tb), None)
            .await;
    assert_eq!(s, 200);
    assert!(
        polled["events"].as_array().unwrap().iter().any(|e| e["message"]["body"] == "hello from a seed"),
        "{polled}"
    );
    let group = &seeded["groups"][0];
    let member = group["members"][3]["token"].as_str().unwrap();
    let body = json!({"to": {"group": group["id"]}, "client_msg_id": "g-1", "body": "to the group"});
    let (s, _) =
        call(&client, reqwest::Method::POST, format!("{base}/api/v1/messages"), Some(member), Some(body)).await;
    assert_eq!(s, 201, "seeded members are in the group");
    let name = format!("seed_p{}", 0);
    let (s, _) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": name, "password": "anything at all"})),
    )
    .await;
    assert_eq!(s, 401, "seeded users have no password");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reconnecting_clients_is_queued_not_dropped() {
    // After a restart every open browser reconnects at once. The kernel completes and queues
    // those handshakes until the server accepts them; what overflows the queue is dropped and
    // retried only after a second or more. A stopped server accepts nothing, so whatever
    // connects within the deadline was queued.
    const CLIENTS: usize = 2000;
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    assert!(somaxconn > CLIENTS, "this test needs net.core.somaxconn above {CLIENTS} (it is {somaxconn})");
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let open_files: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(open_files > CLIENTS + 200, "this test opens {CLIENTS} sockets; `ulimit -n` is {open_files}");
    let data = temp_dir("backlog");
    let (mut child, base) = start(&data).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().await.unwrap().success());
    let mut connects = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let addr = addr.clone();
        connects.spawn(async move {
            tokio::time::timeout(Duration::from_millis(900), tokio::net::TcpStream::connect(addr)).await
        });
    }
    let (mut queued, mut open) = (0, Vec::new());
    while let Some(r) = connects.join_next().await {
        if let Ok(Ok(stream)) = r.unwrap() {
            queued += 1;
            open.push(stream);
        }
    }
    assert!(Command::new("kill").args(["-CONT", &pid]).status().await.unwrap().success());
    assert_eq!(queued, CLIENTS, "handshakes completed within 0.9 s while the server was stopped");
    drop(open);
    let (status, _) = call(&reqwest::Client::new(), reqwest::Method::GET, format!("{base}/health"), None, None).await;
    assert_eq!(status, 200);
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_freed_after_a_burst_is_returned_by_a_background_thread() {
    // jemalloc only gives freed memory back when asked to in its options (src/main.rs);
    // without them an idle server keeps what a burst of polls left behind.
    let data = temp_dir("jemalloc");
    let (mut child, _) = start(&data).await;
    let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id().unwrap())).unwrap();
    let names: Vec<String> =
        tasks.map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap().trim().to_owned()).collect();
    assert_eq!(names.iter().filter(|n| *n == "jemalloc_bg_thd").count(), 1, "threads: {names:?}");
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
