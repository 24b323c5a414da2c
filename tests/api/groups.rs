//! Groups: fan-out to every member, gapless seqs under concurrent senders, the
//! authorization matrix, approval, transfer, dissolve, history visibility and recall.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

impl TestApp {
    /// `PATCH path` with a bearer token and a JSON body.
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PATCH, path, Some(token), Body::Json(body)).await
    }

    /// Creates a group owned by `owner`; answers it.
    pub async fn create_group(&self, owner: &Device, name: &str, policy: &str) -> Value {
        let (status, body) =
            self.post(&owner.token, "/api/v1/groups", json!({"name": name, "join_policy": policy})).await;
        assert_eq!(status, StatusCode::CREATED, "create group: {body}");
        body["group"].clone()
    }

    /// Sends a group message that must be stored; answers the message.
    pub async fn send_group(&self, dev: &Device, group: i64, client_msg_id: &str, body: &str) -> Value {
        let (status, answer) = self
            .post(
                &dev.token,
                "/api/v1/messages",
                json!({"to": {"group": group}, "client_msg_id": client_msg_id, "body": body}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "group send: {answer}");
        answer["message"].clone()
    }
}

/// An open group of `n` members; the first is the owner.
async fn group_of(app: &TestApp, n: usize) -> (Vec<Device>, i64) {
    let mut members = Vec::new();
    for i in 0..n {
        members.push(app.user(&format!("member{i}")).await);
    }
    let group = app.create_group(&members[0], "The Five", "open").await;
    let id = group["id"].as_i64().unwrap();
    for m in &members[1..] {
        let (status, body) = app.post_empty(&m.token, &format!("/api/v1/groups/{id}/join")).await;
        assert_eq!(status, StatusCode::OK, "join: {body}");
        assert_eq!(body["status"], "joined");
    }
    (members, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_reaches_every_held_poll_within_200ms_and_offline_members_later() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (members, id) = group_of(&app, 5).await;
    let cid = format!("g{id}");
    let second = app.login(&members[0].username).await;
    let offline = app.user("offline_one").await;
    let (s, _) = app.post_empty(&offline.token, &format!("/api/v1/groups/{id}/join")).await;
    assert_eq!(s, StatusCode::OK);
    let _guard = exclusive().await;
    let mut holders = Vec::new();
    for dev in members[1..].iter().chain([&second]) {
        let cursor = app.drain(dev).await;
        let (app2, dev) = (app.clone(), dev.clone());
        holders.push(tokio::spawn(async move { app2.poll_raw(&dev, Some(&cursor), 10).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_at = Instant::now();
    let message = app.send_group(&members[0], id, "hello-all", "hello, all of you").await;
    let acked = Instant::now();
    for holder in holders {
        let polled = holder.await.unwrap();
        assert_eq!(polled.status, StatusCode::OK);
        let events = polled.body["events"].as_array().unwrap();
        let news = of_type(events, "message.new");
        assert_eq!(news.len(), 1, "{}", polled.body);
        assert_eq!(news[0]["message"]["conversation_id"], cid);
        let after_ack = polled.at.saturating_duration_since(acked);
        assert!(
            after_ack < Duration::from_millis(200),
            "answered {after_ack:?} after the 201 ({:?} after the send)",
            polled.at - sent_at
        );
    }
    let events = app.poll(&offline, Some(&offline.cursor), 0).await;
    let bodies = message_bodies(events["events"].as_array().unwrap());
    assert_eq!(bodies, ["hello, all of you"], "the offline member gets it on the next poll");
    assert_eq!(message["seq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_senders_give_every_member_seqs_1_to_400_exactly_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (members, id) = group_of(&app, 5).await;
    let cursors: Vec<String> = {
        let mut v = Vec::new();
        for m in &members {
            v.push(app.drain(m).await);
        }
        v
    };
    let _guard = exclusive().await;
    let mut senders = Vec::new();
    for (k, dev) in members[1..].iter().enumerate() {
        let (app, dev) = (app.clone(), dev.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..100 {
                app.send_group(&dev, id, &format!("s{k}-{i}"), &format!("{k}:{i}")).await;
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    for (dev, cursor) in members.iter().zip(cursors) {
        let (events, _) =
            app.collect_until(dev, &cursor, Duration::from_secs(20), |e| of_type(e, "message.new").len() >= 400).await;
        let mut seqs: Vec<i64> =
            of_type(&events, "message.new").iter().map(|e| e["message"]["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs.len(), 400, "{} got each message once", dev.username);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order for {}", dev.username);
        seqs.dedup();
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_do_what_in_a_group() {
    let app = spawn_app().await;
    let (m, id) = group_of(&app, 4).await;
    let (owner, admin, member, removed) = (&m[0], &m[1], &m[2], &m[3]);
    let stranger = app.user("stranger").await;
    let g = |p: &str| format!("/api/v1/groups/{id}{p}");
    assert_eq!(
        app.patch(&owner.token, &g(&format!("/members/{}", admin.user_id)), json!({"role": "admin"})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.delete(&owner.token, &g(&format!("/members/{}", removed.user_id))).await.0, StatusCode::NO_CONTENT);

    // Strangers and removed members: no reading, no posting, no member list.
    for outsider in [&stranger, removed] {
        assert_error(
            &app.get(&outsider.token, &format!("/api/v1/conversations/g{id}/messages")).await,
            403,
            "not_member",
        );
        assert_error(&app.get(&outsider.token, &g("/members")).await, 403, "not_member");
        let send = app
            .post(&outsider.token, "/api/v1/messages", json!({"to": {"group": id}, "client_msg_id": "x", "body": "hi"}))
            .await;
        assert_error(&send, 403, "not_member");
        assert_error(
            &app.post(&outsider.token, &g("/members"), json!({"user_id": outsider.user_id})).await,
            403,
            "not_member",
        );
    }
    // Plain members: no admin actions.
    assert_error(
        &app.post(&member.token, &g("/members"), json!({"user_id": stranger.user_id})).await,
        403,
        "not_allowed",
    );
    assert_error(&app.delete(&member.token, &g(&format!("/members/{}", admin.user_id))).await, 403, "not_allowed");
    assert_error(&app.patch(&member.token, &g(""), json!({"name": "mine now"})).await, 403, "not_allowed");
    assert_error(&app.get(&member.token, &g("/requests")).await, 403, "not_allowed");
    // Admins: no owner actions, and no removing their equals.
    assert_error(&app.delete(&admin.token, &g("")).await, 403, "not_allowed");
    assert_error(
        &app.post(&admin.token, &g("/transfer"), json!({"user_id": member.user_id})).await,
        403,
        "not_allowed",
    );
    assert_error(
        &app.patch(&admin.token, &g(&format!("/members/{}", member.user_id)), json!({"role": "admin"})).await,
        403,
        "not_allowed",
    );
    assert_error(&app.delete(&admin.token, &g(&format!("/members/{}", owner.user_id))).await, 403, "not_allowed");
    // What admins may do.
    assert_eq!(
        app.post(&admin.token, &g("/members"), json!({"user_id": stranger.user_id})).await.0,
        StatusCode::CREATED
    );
    assert_eq!(app.delete(&admin.token, &g(&format!("/members/{}", stranger.user_id))).await.0, StatusCode::NO_CONTENT);
    let (s, renamed) = app.patch(&admin.token, &g(""), json!({"name": "Renamed"})).await;
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(renamed["group"]["name"], "Renamed");
    // The owner cannot just leave; unknown groups are 404.
    assert_error(&app.post_empty(&owner.token, &g("/leave")).await, 409, "owner_cannot_leave");
    assert_error(&app.get(&owner.token, "/api/v1/groups/999999").await, 404, "group_not_found");
    // Roles as listed.
    let (_, list) = app.get(&member.token, &g("/members")).await;
    let roles: Vec<(i64, String)> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user"]["id"].as_i64().unwrap(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles[0], (owner.user_id, "owner".into()));
    assert!(roles.contains(&(admin.user_id, "admin".into())));
    assert_eq!(roles.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_transfer_and_dissolve_end_to_end() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let asker = app.user("asker").await;
    let declined = app.user("declined").await;
    let group = app.create_group(&owner, "Invite Only", "approval").await;
    let id = group["id"].as_i64().unwrap();
    let owner_cursor = app.drain(&owner).await;

    let (status, body) = app.post_empty(&asker.token, &format!("/api/v1/groups/{id}/join")).await;
    assert_eq!((status.as_u16(), body["status"].as_str()), (202, Some("requested")), "{body}");
    assert_error(&app.post_empty(&asker.token, &format!("/api/v1/groups/{id}/join")).await, 409, "request_pending");
    app.post_empty(&declined.token, &format!("/api/v1/groups/{id}/join")).await;
    let (events, owner_cursor) = app
        .expect_events(&owner, &owner_cursor, "two join requests", |e| of_type(e, "group.join_request").len() == 2)
        .await;
    assert_eq!(of_type(&events, "group.join_request")[0]["user"]["id"], asker.user_id);
    let (_, requests) = app.get(&owner.token, &format!("/api/v1/groups/{id}/requests")).await;
    assert_eq!(requests["requests"].as_array().unwrap().len(), 2);
    assert_error(&app.get(&asker.token, &format!("/api/v1/conversations/g{id}/messages")).await, 403, "not_member");

    let (status, accepted) =
        app.post_empty(&owner.token, &format!("/api/v1/groups/{id}/requests/{}/accept", asker.user_id)).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["group"]["member_count"], 2);
    let (status, _) =
        app.post_empty(&owner.token, &format!("/api/v1/groups/{id}/requests/{}/decline", declined.user_id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.expect_events(&declined, &declined.cursor, "group.join_declined", |e| {
        !of_type(e, "group.join_declined").is_empty()
    })
    .await;
    let (events, asker_cursor) = app
        .expect_events(&asker, &asker.cursor, "group.member_joined", |e| !of_type(e, "group.member_joined").is_empty())
        .await;
    assert_eq!(of_type(&events, "group.member_joined")[0]["user"]["id"], asker.user_id);
    let list = app.conversations(&asker).await;
    assert!(
        list["conversations"].as_array().unwrap().iter().any(|c| c["id"] == format!("g{id}")),
        "the joiner has the conversation"
    );

    // Transfer: the asker owns it, the old owner is an admin and may leave.
    let (status, moved) =
        app.post(&owner.token, &format!("/api/v1/groups/{id}/transfer"), json!({"user_id": asker.user_id})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["group"]["owner_id"], asker.user_id);
    let (events, asker_cursor) = app
        .expect_events(&asker, &asker_cursor, "the new owner's role", |e| !of_type(e, "group.member_role").is_empty())
        .await;
    assert!(of_type(&events, "group.member_role")
        .iter()
        .any(|e| e["user_id"] == asker.user_id && e["role"] == "owner"));
    app.send_group(&owner, id, "before-dissolve", "last words").await;

    // Dissolve: every member learns it and loses access.
    assert_eq!(app.delete(&asker.token, &format!("/api/v1/groups/{id}")).await.0, StatusCode::NO_CONTENT);
    for (dev, cursor) in [(&asker, asker_cursor.as_str()), (&owner, owner_cursor.as_str())] {
        app.expect_events(dev, cursor, "group.dissolved", |e| !of_type(e, "group.dissolved").is_empty()).await;
        assert_error(&app.get(&dev.token, &format!("/api/v1/conversations/g{id}/messages")).await, 403, "not_member");
        let send = app
            .post(&dev.token, "/api/v1/messages", json!({"to": {"group": id}, "client_msg_id": "late", "body": "hi"}))
            .await;
        assert_error(&send, 403, "not_member");
        let list = app.conversations(dev).await;
        assert!(list["conversations"].as_array().unwrap().iter().all(|c| c["id"] != format!("g{id}")));
    }
    assert_error(&app.get(&owner.token, &format!("/api/v1/groups/{id}")).await, 404, "group_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_members_see_nothing_after_and_late_joiners_see_history_only_if_allowed() {
    let app = spawn_app().await;
    let owner = app.user("host").await;
    let leaver = app.user("leaver").await;
    let late = app.user("late").await;
    let open = app.create_group(&owner, "Open History", "open").await["id"].as_i64().unwrap();
    let (s, hidden) = app
        .post(
            &owner.token,
            "/api/v1/groups",
            json!({"name": "Hidden History", "history_visible_to_new_members": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let hidden = hidden["group"]["id"].as_i64().unwrap();
    for id in [open, hidden] {
        app.post_empty(&leaver.token, &format!("/api/v1/groups/{id}/join")).await;
        app.send_group(&owner, id, &format!("early-{id}"), "before you came").await;
    }
    let cursor = app.drain(&leaver).await;
    assert_eq!(app.post_empty(&leaver.token, &format!("/api/v1/groups/{open}/leave")).await.0, StatusCode::NO_CONTENT);
    app.send_group(&owner, open, "after-leave", "you are gone").await;
    let (events, _) = app.collect_until(&leaver, &cursor, Duration::from_millis(1500), |_| false).await;
    assert!(message_bodies(&events).is_empty(), "nothing after leaving: {}", Value::from(events.clone()));
    assert_eq!(of_type(&events, "group.member_left").len(), 1, "the leaver is told they left");

    for id in [open, hidden] {
        app.post_empty(&late.token, &format!("/api/v1/groups/{id}/join")).await;
        app.send_group(&owner, id, &format!("late-{id}"), "welcome").await;
    }
    let open_history: Vec<String> = app
        .history(&late, &format!("g{open}"), "")
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(open_history, ["before you came", "you are gone", "welcome"]);
    let hidden_history: Vec<String> = app
        .history(&late, &format!("g{hidden}"), "")
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hidden_history, ["welcome"], "history before joining stays hidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_offline_while_its_user_was_removed_gets_what_came_before_and_the_removal() {
    let mut app = spawn_app().await;
    let (m, id) = group_of(&app, 2).await;
    let (owner, member) = (&m[0], &m[1]);
    let laptop = app.login(&member.username).await;
    let cursor = app.drain(&laptop).await;
    app.send_group(owner, id, "before", "still yours").await;
    let removed = app.delete(&owner.token, &format!("/api/v1/groups/{id}/members/{}", member.user_id)).await;
    assert_eq!(removed.0, StatusCode::NO_CONTENT);
    app.send_group(owner, id, "after", "not yours").await;
    // A restart empties memory: the laptop's poll reads all of it from the store.
    app.restart().await;
    let (events, _) = app.collect_until(&laptop, &cursor, Duration::from_millis(1500), |_| false).await;
    assert_eq!(message_bodies(&events), ["still yours"], "{}", Value::from(events.clone()));
    let left = of_type(&events, "group.member_left");
    assert_eq!(left.len(), 1, "the laptop learns it was removed: {}", Value::from(events.clone()));
    assert_eq!(left[0]["user_id"], member.user_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_group_refuses_more_members_with_a_clear_error() {
    let app = spawn_app_with(|c| c.max_group_members = 2).await;
    let (_, id) = group_of(&app, 2).await;
    let third = app.user("third").await;
    let answer = app.post_empty(&third.token, &format!("/api/v1/groups/{id}/join")).await;
    assert_error(&answer, 409, "group_full");
    assert!(answer.1["error"]["message"].as_str().unwrap().contains('2'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_works_inside_the_window_and_admins_recall_any_time() {
    let app = spawn_app_with(|c| c.recall_window = Duration::from_secs(1)).await;
    let (m, id) = group_of(&app, 3).await;
    let (owner, sender, other) = (&m[0], &m[1], &m[2]);
    let cid = format!("g{id}");
    let cursor = app.drain(other).await;
    let first = app.send_group(sender, id, "r1", "oops").await;
    assert_eq!(
        app.delete(&sender.token, &format!("/api/v1/conversations/{cid}/messages/{}", first["seq"])).await.0,
        StatusCode::NO_CONTENT
    );
    let (events, _) =
        app.expect_events(other, &cursor, "message.recalled", |e| !of_type(e, "message.recalled").is_empty()).await;
    assert_eq!(of_type(&events, "message.recalled")[0]["seq"], first["seq"]);
    let history = app.history(other, &cid, "").await;
    assert_eq!(history[0]["recalled"], true);
    assert_eq!(history[0]["body"], "", "the old text is gone");

    let second = app.send_group(sender, id, "r2", "keep me").await;
    assert_error(
        &app.delete(&other.token, &format!("/api/v1/conversations/{cid}/messages/{}", second["seq"])).await,
        403,
        "not_sender",
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_error(
        &app.delete(&sender.token, &format!("/api/v1/conversations/{cid}/messages/{}", second["seq"])).await,
        403,
        "recall_window_passed",
    );
    assert_eq!(
        app.delete(&owner.token, &format!("/api/v1/conversations/{cid}/messages/{}", second["seq"])).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.delete(&owner.token, &format!("/api/v1/conversations/{cid}/messages/99")).await,
        404,
        "message_not_found",
    );
}
