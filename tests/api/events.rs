//! The message connection: held polls, the message pool, cursors and acknowledgements,
//! multi-device delivery, receipts and presence.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Two friends, `a` and `b`, with their conversation id, `a`'s login cursor and `b`'s
/// cursor after draining the friendship's events. `a` does not poll, so it never comes
/// online: no presence change of `a` can wake one of `b`'s polls.
async fn friends(app: &TestApp) -> (Device, Device, String, String, String) {
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let cid = app.befriend(&a, &b).await;
    let ca = a.cursor.clone();
    let cb = app.drain(&b).await;
    (a, b, cid, ca, cb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_poll_answers_within_200ms_of_a_send() {
    let _quiet = exclusive().await;
    let app = Arc::new(spawn_app().await);
    let (a, b, _cid, _ca, cb) = friends(&app).await;

    let poller = {
        let (app, b, cb) = (app.clone(), b.clone(), cb.clone());
        tokio::spawn(async move { app.poll_raw(&b, Some(&cb), 30).await })
    };
    // Let the poll reach the server and be held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poller.is_finished(), "nothing was pending, so the poll is held");

    let send_started = Instant::now();
    let response = app.send(&a, b.user_id, "m1", "hello").await;
    let sent = Instant::now();
    assert_eq!(response.status(), StatusCode::CREATED);

    let polled = poller.await.unwrap();
    assert_eq!(polled.status, StatusCode::OK, "{}", polled.body);
    assert!(polled.at >= send_started, "the poll answered before the send");
    let latency = polled.at.saturating_duration_since(sent);
    eprintln!("the held poll answered {latency:?} after the send's 201");
    assert!(latency < Duration::from_millis(200), "the held poll answered {latency:?} after the send's 201");
    let events = polled.body["events"].as_array().unwrap();
    assert_eq!(message_bodies(events), ["hello"], "{}", polled.body);
    assert_ne!(polled.body["cursor"], json!(cb), "the cursor moves past the event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_with_nothing_pending_answers_empty_after_its_timeout() {
    let app = spawn_app().await;
    let (_a, b, _cid, _ca, cb) = friends(&app).await;

    let started = Instant::now();
    let answer = app.poll(&b, Some(&cb), 1).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took <= Duration::from_secs(3), "timeout=1 answered after {took:?}");
    assert_eq!(answer, json!({"cursor": cb, "events": [], "more": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_poll_on_the_same_device_supersedes_the_first() {
    let app = Arc::new(spawn_app().await);
    let (a, b, _cid, _ca, cb) = friends(&app).await;

    let first = {
        let (app, b, cb) = (app.clone(), b.clone(), cb.clone());
        tokio::spawn(async move { app.poll_raw(&b, Some(&cb), 30).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!first.is_finished(), "the first poll is held");

    let second_started = Instant::now();
    let second = {
        let (app, b, cb) = (app.clone(), b.clone(), cb.clone());
        tokio::spawn(async move { app.poll_raw(&b, Some(&cb), 10).await })
    };
    let first = first.await.unwrap();
    let took = first.at.saturating_duration_since(second_started);
    assert!(took < Duration::from_secs(2), "the superseded poll answered {took:?} after the newer one started");
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.body,
        json!({"cursor": cb, "events": [], "more": false}),
        "the superseded poll answers empty, with its own cursor"
    );
    assert!(!second.is_finished(), "the newer poll is still held");

    // The newer poll is the live one.
    app.send_ok(&a, b.user_id, "m1", "to the newer poll").await;
    let second = second.await.unwrap();
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(message_bodies(second.body["events"].as_array().unwrap()), ["to the newer poll"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_while_no_poll_is_held_arrive_in_order_on_the_next_poll() {
    let app = spawn_app().await;
    let (a, b, cid, _ca, cb) = friends(&app).await;

    let mut expected = Vec::new();
    for i in 1..=5 {
        app.send_ok(&a, b.user_id, &format!("m{i}"), &format!("message {i}")).await;
        expected.push(format!("message {i}"));
    }

    let answer = app.poll(&b, Some(&cb), 5).await;
    let events = answer["events"].as_array().unwrap();
    assert_eq!(message_bodies(events), expected, "{answer}");
    let news = of_type(events, "message.new");
    for (i, e) in news.iter().enumerate() {
        let m = &e["message"];
        assert_eq!(m["seq"], json!(i as i64 + 1));
        assert_eq!(m["conversation_id"], json!(cid));
        assert_eq!(m["sender_id"], json!(a.user_id));
        assert!(e["ts"].is_i64(), "events carry ts: {e}");
    }
    assert_eq!(answer["more"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reconnecting_without_a_cursor_resumes_from_its_acknowledged_one() {
    let app = spawn_app().await;
    let (a, b, _cid, _ca, c0) = friends(&app).await;

    app.send_ok(&a, b.user_id, "m1", "before the ack").await;
    let answer = app.poll(&b, Some(&c0), 5).await;
    assert_eq!(message_bodies(answer["events"].as_array().unwrap()), ["before the ack"]);
    let c1 = answer["cursor"].as_str().unwrap().to_owned();
    // Polling with C acknowledges C.
    app.poll(&b, Some(&c1), 0).await;

    app.send_ok(&a, b.user_id, "m2", "after the ack").await;
    // Reconnect without a cursor: resume from C1, neither from the login cursor nor from C0.
    let p = app.poll_raw(&b, None, 5).await;
    assert_eq!(p.status, StatusCode::OK, "poll without a cursor: {}", p.body);
    assert_eq!(
        message_bodies(p.body["events"].as_array().unwrap()),
        ["after the ack"],
        "a poll without a cursor resumes after the acknowledged cursor: {}",
        p.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_answers_held_polls_and_the_acknowledged_cursor_survives_a_restart() {
    let mut app = spawn_app().await;
    let (a, b, _cid, _ca, c0) = friends(&app).await;
    app.send_ok(&a, b.user_id, "m1", "before the restart").await;
    let answer = app.poll(&b, Some(&c0), 5).await;
    let c1 = answer["cursor"].as_str().unwrap().to_owned();

    // Acknowledge C1 with a poll that is held when the server stops.
    let held = {
        let (client, url, token) = (app.client.clone(), app.url("/api/v1/events"), b.token.clone());
        tokio::spawn(async move {
            let response = client
                .get(url)
                .bearer_auth(token)
                .query(&[("cursor", c1.as_str()), ("timeout", "30")])
                .send()
                .await
                .expect("the held poll is answered");
            (Instant::now(), read(response).await)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    app.restart().await;
    let (answered, (status, body)) = held.await.unwrap();
    assert!(
        answered.saturating_duration_since(stopping) < Duration::from_secs(5),
        "the held poll answered {:?} after shutdown began",
        answered.saturating_duration_since(stopping)
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]), "{body}");

    // The same token works after the restart and resumes after C1.
    app.send_ok(&a, b.user_id, "m2", "after the restart").await;
    let p = app.poll_raw(&b, None, 5).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(
        message_bodies(p.body["events"].as_array().unwrap()),
        ["after the restart"],
        "the acknowledged cursor was saved: {}",
        p.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_of_one_user_both_get_every_event() {
    let app = spawn_app().await;
    let (a, b1, _cid, _ca, c1) = friends(&app).await;
    let b2 = app.login("bob").await;
    let c2 = app.drain(&b2).await;

    let bodies: Vec<String> = (1..=3).map(|i| format!("to both {i}")).collect();
    for (i, body) in bodies.iter().enumerate() {
        app.send_ok(&a, b1.user_id, &format!("m{i}"), body).await;
    }
    let want = |events: &[Value]| message_bodies(events).len() >= 3;
    let (e1, _) = app.expect_events(&b1, &c1, "3 messages", want).await;
    let (e2, _) = app.expect_events(&b2, &c2, "3 messages", want).await;
    assert_eq!(message_bodies(&e1), bodies);
    assert_eq!(message_bodies(&e2), bodies);

    // Other events reach both devices too: a friend request to bob.
    let carol = app.user("carol").await;
    let (status, _) = app.post(&carol.token, "/api/v1/friend-requests", json!({"user_id": b1.user_id})).await;
    assert_eq!(status, StatusCode::CREATED);
    let want = |events: &[Value]| !of_type(events, "friend.request").is_empty();
    app.expect_events(&b1, &c1, "friend.request", want).await;
    app.expect_events(&b2, &c2, "friend.request", want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_other_device_gets_its_own_message_new() {
    let app = spawn_app().await;
    let (a1, b, cid, c1, _cb) = friends(&app).await;
    let a2 = app.login("alice").await;
    let c2 = app.drain(&a2).await;

    let sent = app.send_ok(&a1, b.user_id, "mine", "from my phone").await;
    let want = |events: &[Value]| !message_bodies(events).is_empty();
    for (dev, cursor) in [(&a2, &c2), (&a1, &c1)] {
        let (events, _) = app.expect_events(dev, cursor, "own message", want).await;
        let news = of_type(&events, "message.new");
        assert_eq!(news.len(), 1, "{}", Value::from(events.clone()));
        assert_eq!(news[0]["message"], sent);
        assert_eq!(news[0]["message"]["sender_id"], json!(a1.user_id));
        assert_eq!(news[0]["message"]["conversation_id"], json!(cid));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_and_read_receipts_reach_the_sender() {
    let app = spawn_app().await;
    let (a, b, cid, ca, cb) = friends(&app).await;

    app.send_ok(&a, b.user_id, "m1", "are you there?").await;
    app.send_ok(&a, b.user_id, "m2", "hello?").await;
    let sent = app.send_ok(&a, b.user_id, "m3", "did you get this?").await;
    let seq = sent["seq"].as_i64().unwrap();
    assert_eq!(seq, 3);

    // B receives the messages…
    let answer = app.poll(&b, Some(&cb), 5).await;
    assert_eq!(message_bodies(answer["events"].as_array().unwrap()), ["are you there?", "hello?", "did you get this?"]);
    // …and acknowledges it by polling with the new cursor.
    let cb1 = answer["cursor"].as_str().unwrap().to_owned();
    app.poll(&b, Some(&cb1), 0).await;

    let delivered = json!({"conversation_id": cid, "user_id": b.user_id, "seq": seq});
    let (events, ca) = app
        .expect_events(&a, &ca, "conversation.delivered", |events| {
            !of_type(events, "conversation.delivered").is_empty()
        })
        .await;
    let receipts = of_type(&events, "conversation.delivered");
    assert_eq!(receipts.len(), 1, "one receipt up to the newest message: {}", Value::from(events.clone()));
    for (k, v) in delivered.as_object().unwrap() {
        assert_eq!(&receipts[0][k], v, "delivered.{k}: {}", receipts[0]);
    }

    let (status, body) = app.post(&b.token, &format!("/api/v1/conversations/{cid}/read"), json!({"seq": seq})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (events, _) = app
        .expect_events(&a, &ca, "conversation.read", |events| !of_type(events, "conversation.read").is_empty())
        .await;
    let reads = of_type(&events, "conversation.read");
    assert_eq!(reads.len(), 1, "{}", Value::from(events.clone()));
    assert_eq!(reads[0]["conversation_id"], json!(cid));
    assert_eq!(reads[0]["user_id"], json!(b.user_id));
    assert_eq!(reads[0]["seq"], json!(seq));

    // The reader's own devices learn of it too, but never of their own delivery receipt
    // (everything after the acknowledged cursor): only the sender shows delivery marks.
    let want = |events: &[Value]| !of_type(events, "conversation.read").is_empty();
    let (events, _) = app.expect_events(&b, &cb1, "its own conversation.read", want).await;
    assert!(of_type(&events, "conversation.delivered").is_empty(), "{}", Value::from(events.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_goes_online_and_offline_once() {
    let app = Arc::new(spawn_app().await);
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let stranger = app.user("carol").await;
    app.befriend(&a, &b).await;

    // A holds polls the whole time, gathering everything.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let watcher = {
        let (app, a) = (app.clone(), a.clone());
        tokio::spawn(async move {
            let mut cursor = a.cursor.clone();
            let mut seen: Vec<(Instant, Value)> = Vec::new();
            while !*stop_rx.borrow_and_update() {
                let answer = app.poll(&a, Some(&cursor), 1).await;
                cursor = answer["cursor"].as_str().unwrap().to_owned();
                let now = Instant::now();
                for e in answer["events"].as_array().unwrap() {
                    seen.push((now, e.clone()));
                }
            }
            seen
        })
    };
    let bob_presence = |seen: &[(Instant, Value)]| -> Vec<bool> {
        seen.iter()
            .filter(|(_, e)| kind(e) == "presence" && e["user_id"] == json!(b.user_id))
            .map(|(_, e)| e["online"].as_bool().expect("online is a bool"))
            .collect()
    };
    let friends_online = |app: Arc<TestApp>, a: Device| async move {
        let (status, body) = app.get(&a.token, "/api/v1/friends").await;
        assert_eq!(status, StatusCode::OK);
        body["friends"][0]["online"].clone()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(friends_online(app.clone(), a.clone()).await, json!(false));

    // B polls several times, back to back (each held up to a second).
    let mut cb = b.cursor.clone();
    for _ in 0..4 {
        let answer = app.poll(&b, Some(&cb), 1).await;
        cb = answer["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(friends_online(app.clone(), a.clone()).await, json!(true), "bob is online while he polls");
    let b_stopped = Instant::now();

    // After the grace and a sweeper tick, B is offline; give it plenty of time, then a
    // little more to catch a repeated announcement.
    let deadline = b_stopped + PRESENCE_GRACE + Duration::from_secs(8);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if friends_online(app.clone(), a.clone()).await == json!(false) || Instant::now() > deadline {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop_tx.send(true).unwrap();
    let seen = watcher.await.unwrap();

    assert_eq!(
        bob_presence(&seen),
        [true, false],
        "one presence online:true despite re-polls, then one online:false; A saw {}",
        Value::from(seen.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>())
    );
    let offline_at =
        seen.iter().find(|(_, e)| kind(e) == "presence" && e["online"] == json!(false)).map(|(at, _)| *at).unwrap();
    let after = offline_at.saturating_duration_since(b_stopped);
    assert!(
        after >= PRESENCE_GRACE - Duration::from_millis(100) && after <= PRESENCE_GRACE + Duration::from_secs(4),
        "offline was announced {after:?} after bob's last poll (grace {PRESENCE_GRACE:?})"
    );
    assert_eq!(friends_online(app.clone(), a.clone()).await, json!(false));

    // Presence goes to friends only.
    let answer = app.poll(&stranger, Some(&stranger.cursor), 0).await;
    let events = answer["events"].as_array().unwrap();
    assert!(of_type(events, "presence").is_empty(), "a stranger sees no presence: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_senders_get_gapless_seqs_and_the_receiver_gets_each_message_once() {
    const SENDERS: usize = 8;
    const EACH: usize = 200;
    const TOTAL: usize = SENDERS * EACH;
    let _quiet = exclusive().await;
    let app = Arc::new(spawn_app().await);
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let cid = app.befriend(&a, &b).await;
    let c0 = app.drain(&b).await;
    let mut senders = vec![a.clone()];
    for _ in 1..SENDERS {
        senders.push(app.login("alice").await);
    }

    // The receiver polls live while the senders send, and gives up 10 s after they are done.
    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<Instant>);
    let receiver = {
        let (app, b, c0) = (app.clone(), b.clone(), c0.clone());
        tokio::spawn(async move {
            let mut cursor = c0;
            let mut messages = Vec::new();
            let gave_up = || done_rx.borrow().is_some_and(|t| t.elapsed() > Duration::from_secs(10));
            while messages.len() < TOTAL && !gave_up() {
                let answer = app.poll(&b, Some(&cursor), 5).await;
                cursor = answer["cursor"].as_str().unwrap().to_owned();
                for e in of_type(answer["events"].as_array().unwrap(), "message.new") {
                    messages.push(e["message"].clone());
                }
            }
            messages
        })
    };

    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(s, dev)| {
            let (app, to) = (app.clone(), b.user_id);
            tokio::spawn(async move {
                for i in 0..EACH {
                    let response = app.send(&dev, to, &format!("s{s}-{i}"), &format!("sender {s} #{i}")).await;
                    let status = response.status();
                    assert_eq!(status, StatusCode::CREATED, "{:?}", read(response).await);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done_tx.send_replace(Some(Instant::now()));
    eprintln!("{TOTAL} sends took {:?}", started.elapsed());

    // History: seq is exactly 1..=TOTAL, no gap, no duplicate.
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page = app.history(&b, &cid, &format!("after_seq={after}&limit=200")).await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 200, "a page holds at most the limit");
        assert!(page[0]["seq"].as_i64().unwrap() > after, "a page after_seq={after} starts after it");
        assert!(history.len() < TOTAL, "history goes beyond {TOTAL} messages");
        after = page.last().unwrap()["seq"].as_i64().unwrap();
        history.extend(page);
    }
    assert_eq!(seqs(&history), (1..=TOTAL as i64).collect::<Vec<_>>());
    let keys: HashSet<&str> = history.iter().map(|m| m["client_msg_id"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), TOTAL, "every client_msg_id stored once");
    for s in 0..SENDERS {
        // Each sender's own messages keep their order.
        let mine: Vec<&str> = history
            .iter()
            .filter_map(|m| m["client_msg_id"].as_str())
            .filter(|k| k.starts_with(&format!("s{s}-")))
            .collect();
        let want: Vec<String> = (0..EACH).map(|i| format!("s{s}-{i}")).collect();
        assert_eq!(mine, want, "sender {s}'s messages in send order");
    }

    // The live poll stream: each message exactly once, in seq order.
    let live = receiver.await.unwrap();
    check_stream("the live poll stream", &live, &history);

    // Replaying from the old cursor pages through the backlog with `more`.
    let mut cursor = c0;
    let mut replay = Vec::new();
    let mut saw_more = false;
    loop {
        let answer = app.poll(&b, Some(&cursor), 0).await;
        cursor = answer["cursor"].as_str().unwrap().to_owned();
        let events = answer["events"].as_array().unwrap();
        for e in of_type(events, "message.new") {
            replay.push(e["message"].clone());
        }
        if answer["more"] == json!(true) {
            saw_more = true;
            assert!(!events.is_empty(), "more:true comes with events");
            continue;
        }
        if events.is_empty() {
            break;
        }
    }
    assert!(saw_more, "a {TOTAL}-message backlog does not fit one answer");
    check_stream("the replayed poll stream", &replay, &history);
}

/// Each stored message exactly once, in seq order, as stored.
fn check_stream(what: &str, got: &[Value], history: &[Value]) {
    let mut count: HashMap<i64, usize> = HashMap::new();
    for m in got {
        *count.entry(m["id"].as_i64().unwrap()).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "{what}: duplicated message ids {dups:?}");
    let missing = history.iter().filter(|m| !count.contains_key(&m["id"].as_i64().unwrap())).count();
    assert_eq!(missing, 0, "{what}: {missing} messages never arrived");
    assert_eq!(got.len(), history.len(), "{what}: message count");
    assert_eq!(seqs(got), seqs(history), "{what}: messages arrive in seq order");
    assert_eq!(got, history, "{what}: messages as stored");
}
