//! Sending, history, the conversation list and roaming.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_client_msg_id_is_stored_once() {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let cid = app.befriend(&a, &b).await;
    let cb = app.drain(&b).await;

    let (status, first) = read(app.send(&a, b.user_id, "retry-me", "once only").await).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let m = &first["message"];
    assert!(m["id"].is_i64(), "{first}");
    assert_eq!(m["conversation_id"], json!(cid));
    assert_eq!(m["seq"], json!(1));
    assert_eq!(m["sender_id"], json!(a.user_id));
    assert_eq!(m["client_msg_id"], json!("retry-me"));
    assert_eq!(m["body"], json!("once only"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let ts = m["ts"].as_i64().expect("ts is an integer");
    assert!((ts - now).abs() < 60_000, "ts is milliseconds since the epoch: {ts}");

    // The client did not see the 201 and retries, from another device even.
    let a2 = app.login("alice").await;
    for dev in [&a, &a2] {
        let (status, again) = read(app.send(dev, b.user_id, "retry-me", "once only").await).await;
        assert_eq!(status, StatusCode::OK, "a re-send answers 200: {again}");
        assert_eq!(again, first, "the same message");
    }

    let history = app.history(&b, &cid, "").await;
    assert_eq!(history.len(), 1, "{}", Value::from(history.clone()));
    assert_eq!(history[0], first["message"]);

    // The next message continues the seq without a gap.
    let next = app.send_ok(&a, b.user_id, "next", "second").await;
    assert_eq!(next["seq"], json!(2));

    let (events, _) = app.expect_events(&b, &cb, "both messages", |e| message_bodies(e).len() >= 2).await;
    assert_eq!(message_bodies(&events), ["once only", "second"], "the re-sends sent no event");

    // Retries racing each other still store one message.
    let sends: Vec<_> = (0..6)
        .map(|_| {
            app.client
                .post(app.url("/api/v1/messages"))
                .bearer_auth(&a.token)
                .json(&json!({"to": {"user": b.user_id}, "client_msg_id": "racing", "body": "raced"}))
                .send()
        })
        .collect();
    let mut created = 0;
    let mut answers = Vec::new();
    for response in futures_join(sends).await {
        let (status, body) = read(response.expect("the send reaches the server")).await;
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("a racing re-send answered {other}: {body}"),
        }
        answers.push(body);
    }
    assert_eq!(created, 1, "exactly one of the racing sends stores the message");
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "all answer the same message");
    assert_eq!(answers[0]["message"]["seq"], json!(3));
    assert_eq!(app.history(&b, &cid, "").await.len(), 3);

    // Reusing the key for another conversation is refused, not silently merged.
    let c = app.user("carol").await;
    app.befriend(&a, &c).await;
    let answer = read(app.send(&a, c.user_id, "retry-me", "elsewhere").await).await;
    assert_error(&answer, 409, "client_msg_id_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_list_shows_last_message_unread_count_and_most_recent_first() {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let c = app.user("carol").await;
    let ab = app.befriend(&a, &b).await;
    let ac = app.befriend(&a, &c).await;

    app.send_ok(&a, b.user_id, "ab1", "hi bob").await;
    app.send_ok(&a, b.user_id, "ab2", "are you there?").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 1..=3 {
        app.send_ok(&c, a.user_id, &format!("ca{i}"), &format!("carol {i}")).await;
    }
    let (status, body) = app.post(&a.token, &format!("/api/v1/conversations/{ac}/read"), json!({"seq": 2})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let list = app.conversations(&a).await;
    assert!(list["cursor"].is_string(), "{list}");
    let convs = list["conversations"].as_array().unwrap();
    let ids: Vec<&Value> = convs.iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, [&json!(ac), &json!(ab)], "most recent first: {list}");
    let with_c = &convs[0];
    assert_eq!(with_c["kind"], json!("direct"));
    assert_eq!(with_c["peer"]["id"], json!(c.user_id));
    assert_eq!(with_c["peer"]["username"], json!("carol"));
    assert_eq!(with_c["last_message"]["body"], json!("carol 3"));
    assert_eq!(with_c["last_message"]["seq"], json!(3));
    assert_eq!(with_c["last_seq"], json!(3));
    assert_eq!(with_c["read_seq"], json!(2));
    assert_eq!(with_c["unread"], json!(1), "one message after the read mark");
    let with_b = &convs[1];
    assert_eq!(with_b["peer"]["id"], json!(b.user_id));
    assert_eq!(with_b["last_message"]["body"], json!("are you there?"));
    assert_eq!(with_b["last_seq"], json!(2));
    assert_eq!(with_b["unread"], json!(0), "one's own messages are read");

    // The receiver's unread counts what was sent after their read mark.
    let unread_of = |list: &Value, cid: &str| -> Value {
        list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == json!(cid))
            .map(|c| c["unread"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(unread_of(&app.conversations(&b).await, &ab), json!(2));
    let (status, _) = app.post(&b.token, &format!("/api/v1/conversations/{ab}/read"), json!({"seq": 1})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(unread_of(&app.conversations(&b).await, &ab), json!(1));
    app.send_ok(&a, b.user_id, "ab3", "hello?").await;
    app.send_ok(&a, b.user_id, "ab4", "hello??").await;
    assert_eq!(unread_of(&app.conversations(&b).await, &ab), json!(3));
    // A read mark beyond the end is capped; it never goes backwards.
    let (status, _) = app.post(&b.token, &format!("/api/v1/conversations/{ab}/read"), json!({"seq": 99})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = app.conversations(&b).await;
    assert_eq!(unread_of(&list, &ab), json!(0));
    let (status, _) = app.post(&b.token, &format!("/api/v1/conversations/{ab}/read"), json!({"seq": 1})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = app.conversations(&b).await;
    let conv = &list["conversations"][0];
    assert_eq!(conv["id"], json!(ab));
    assert_eq!(conv["read_seq"], json!(4), "{conv}");
    assert_eq!(conv["unread"], json!(0));

    // A new message moves its conversation to the top of the sender's list.
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.send_ok(&b, a.user_id, "ba1", "back to you").await;
    let list = app.conversations(&a).await;
    assert_eq!(list["conversations"][0]["id"], json!(ab), "{list}");
    assert_eq!(list["conversations"][0]["last_message"]["body"], json!("back to you"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_lists_cursor_polls_only_what_comes_after_it() {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    app.befriend(&a, &b).await;
    app.send_ok(&a, b.user_id, "old", "before the list").await;

    let list = app.conversations(&b).await;
    let cursor = list["cursor"].as_str().unwrap().to_owned();
    app.send_ok(&a, b.user_id, "new", "after the list").await;
    let (events, _) = app.expect_events(&b, &cursor, "the new message", |e| !message_bodies(e).is_empty()).await;
    assert_eq!(message_bodies(&events), ["after the list"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_in_both_directions_and_a_new_device_sees_all_of_it() {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let cid = app.befriend(&a, &b).await;
    let mut sent = Vec::new();
    for i in 1..=10 {
        let (from, to) = if i % 3 == 0 { (&b, &a) } else { (&a, &b) };
        sent.push(app.send_ok(from, to.user_id, &format!("m{i}"), &format!("message {i}")).await);
    }

    let all = app.history(&a, &cid, "").await;
    assert_eq!(all, sent, "default page: everything, ascending");
    let s = |q: &'static str| page(&app, &a, &cid, q);
    assert_eq!(s("limit=3").await, [8, 9, 10], "the newest page");
    assert_eq!(s("before_seq=8&limit=3").await, [5, 6, 7]);
    assert_eq!(s("before_seq=3&limit=5").await, [1, 2]);
    assert_eq!(s("before_seq=1").await, Vec::<i64>::new());
    assert_eq!(s("after_seq=0&limit=4").await, [1, 2, 3, 4], "the oldest page");
    assert_eq!(s("after_seq=2&limit=3").await, [3, 4, 5]);
    assert_eq!(s("after_seq=8").await, [9, 10]);
    assert_eq!(s("after_seq=10").await, Vec::<i64>::new());
    assert_eq!(s("after_seq=2&before_seq=6").await, [3, 4, 5]);
    assert_eq!(s("limit=200").await, (1..=10).collect::<Vec<_>>());

    // Roaming: a device that logs in now sees the whole history and the conversation.
    for name in ["alice", "bob"] {
        let fresh = app.login(name).await;
        assert_eq!(app.history(&fresh, &cid, "limit=200").await, sent);
        let list = app.conversations(&fresh).await;
        let conv = &list["conversations"][0];
        assert_eq!(conv["id"], json!(cid));
        assert_eq!(conv["last_message"], sent[9], "{conv}");
        assert_eq!(conv["last_seq"], json!(10));
    }
}

async fn page(app: &TestApp, dev: &Device, cid: &str, query: &str) -> Vec<i64> {
    seqs(&app.history(dev, cid, query).await)
}

/// Awaits every future, concurrently.
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_1_to_4000_characters_and_emoji_are_characters() {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let cid = app.befriend(&a, &b).await;

    let longest = "\u{1F600}".repeat(4000);
    let m = app.send_ok(&a, b.user_id, "emoji", &longest).await;
    assert_eq!(m["body"], json!(longest), "stored as sent");
    let short = app.send_ok(&a, b.user_id, "one", "\u{1F44B}").await;
    assert_eq!(short["body"], json!("\u{1F44B}"));
    let answer = read(app.send(&a, b.user_id, "too-long", &"\u{1F600}".repeat(4001)).await).await;
    assert_error(&answer, 422, "invalid_body");
    assert_eq!(app.history(&b, &cid, "").await, [m, short], "text round-trips unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_list_tells_how_far_the_peer_has_received_and_read() {
    let app = spawn_app().await;
    let (a, b) = (app.user("marker_a").await, app.user("marker_b").await);
    let cid = app.befriend(&a, &b).await;
    for i in 1..=3 {
        app.send_ok(&a, b.user_id, &format!("m{i}"), &format!("message {i}")).await;
    }
    let cursor = app.drain(&b).await;
    // Polling again with the cursor acknowledges what the last answer held.
    app.poll(&b, Some(&cursor), 0).await;
    let (s, _) = app.post(&b.token, &format!("/api/v1/conversations/{cid}/read"), serde_json::json!({"seq": 2})).await;
    assert_eq!(s.as_u16(), 204);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let list = app.conversations(&a).await;
        let conv = list["conversations"].as_array().unwrap().iter().find(|c| c["id"] == cid.as_str()).unwrap().clone();
        if conv["peer_delivered_seq"] == 3 || std::time::Instant::now() > deadline {
            assert_eq!(conv["peer_delivered_seq"], 3, "{conv}");
            assert_eq!(conv["peer_read_seq"], 2, "{conv}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
