//! Accounts and devices: sign-up, sign-in, `GET /me`, sign-out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn register_raw(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.request(Method::POST, "/api/v1/auth/register", None, Body::Json(body)).await
}

async fn login_raw(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Body::Json(json!({"username": username, "password": password})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_answers_201_with_the_user_and_names_are_unique_ignoring_case() {
    let app = spawn_app().await;
    let (status, body) =
        register_raw(&app, json!({"username": "alice", "password": PASSWORD, "display_name": "Alice L."})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let user = &body["user"];
    assert!(user["id"].is_i64(), "{body}");
    assert_eq!(user["username"], json!("alice"));
    assert_eq!(user["display_name"], json!("Alice L."));
    assert!(user["avatar_url"].is_string(), "{body}");
    assert_eq!(user["online"], json!(false));

    // Without a display name, the username stands in.
    let bob = app.register("bob").await;
    assert_eq!(bob["display_name"], json!("bob"));
    assert_ne!(bob["id"], user["id"]);

    for taken in ["alice", "ALICE", "Alice"] {
        let answer = register_raw(&app, json!({"username": taken, "password": PASSWORD})).await;
        assert_error(&answer, 409, "username_taken");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usernames_and_short_passwords_are_422() {
    let app = spawn_app().await;
    let long = "x".repeat(33);
    for name in ["ab", "", "has space", "bob!", "ålice", long.as_str()] {
        let answer = register_raw(&app, json!({"username": name, "password": PASSWORD})).await;
        assert_error(&answer, 422, "invalid_username");
    }
    for password in ["", "short", "1234567"] {
        let answer = register_raw(&app, json!({"username": "carol", "password": password})).await;
        assert_error(&answer, 422, "invalid_password");
    }
    let answer = register_raw(&app, json!({"username": "carol", "password": PASSWORD, "display_name": "   "})).await;
    assert_error(&answer, 422, "invalid_display_name");
    // None of those created the account.
    app.register("carol").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_makes_a_device_and_wrong_credentials_are_one_401() {
    let app = spawn_app().await;
    let user = app.register("alice").await;

    let (status, body) = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Body::Json(json!({"username": "ALICE", "password": PASSWORD, "device_name": "laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"].as_str().is_some_and(|t| t.len() >= 20), "{body}");
    assert!(body["device_id"].is_i64(), "{body}");
    assert!(body["cursor"].is_string(), "{body}");
    assert_eq!(body["user"], user);

    // Each login is its own device with its own token.
    let d1 = app.login("alice").await;
    let d2 = app.login("alice").await;
    assert_ne!(d1.token, d2.token);
    assert_ne!(d1.device_id, d2.device_id);

    let wrong_password = login_raw(&app, "alice", "not the password").await;
    let unknown_user = login_raw(&app, "nobody", PASSWORD).await;
    let invalid_name = login_raw(&app, "?!", PASSWORD).await;
    assert_error(&wrong_password, 401, "invalid_credentials");
    assert_eq!(wrong_password, unknown_user, "a wrong password and an unknown user answer the same");
    assert_eq!(wrong_password, invalid_name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_the_signed_in_user_by_bearer_or_cookie() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let dev = app.login("alice").await;

    let (status, body) = app.get(&dev.token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], user["id"]);
    assert_eq!(body["user"]["username"], json!("alice"));
    assert!(body["settings"].is_object(), "{body}");

    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("webim_token={}", dev.token))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "the cookie carries the token: {body}");
    assert_eq!(body["user"]["id"], user["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_kills_the_token_at_once_and_only_that_one() {
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;
    let dev = app.login("alice").await;
    let other = app.login("alice").await;
    // Use the token first, so any cache of it is warm.
    let (status, _) = app.get(&dev.token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    let cursor = app.drain(&dev).await;

    // A held poll of the device answers when it logs out.
    let held = {
        let (app, dev) = (app.clone(), dev.clone());
        tokio::spawn(async move { app.poll_raw(&dev, Some(&cursor), 30).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logged_out = Instant::now();
    let (status, body) = app.post_empty(&dev.token, "/api/v1/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null, "204 has no body");

    let answer = app.get(&dev.token, "/api/v1/me").await;
    assert_error(&answer, 401, "unauthorized");
    let p = app.poll_raw(&dev, None, 0).await;
    assert_error(&(p.status, p.body), 401, "unauthorized");
    let answer = app.post_empty(&dev.token, "/api/v1/auth/logout").await;
    assert_error(&answer, 401, "unauthorized");

    let held = held.await.unwrap();
    assert!(
        held.at.saturating_duration_since(logged_out) < Duration::from_secs(3),
        "the held poll answered {:?} after the logout",
        held.at.saturating_duration_since(logged_out)
    );

    let (status, body) = app.get(&other.token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK, "the other device stays signed in: {body}");
}
