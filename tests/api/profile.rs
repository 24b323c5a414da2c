//! Profiles, avatars, settings and search, as a client uses them.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A `w`×`h` picture encoded as `format`.
fn picture(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
    let img =
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

impl TestApp {
    /// `PUT path` with raw bytes.
    pub async fn put_bytes(&self, token: &str, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        read(self.client.put(self.url(path)).bearer_auth(token).body(bytes).send().await.unwrap()).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PUT, path, Some(token), Body::Json(body)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_avatars_are_served_square_at_256_px_and_reach_friends() {
    let app = spawn_app().await;
    let (me, friend) = (app.user("painter").await, app.user("viewer").await);
    app.befriend(&me, &friend).await;
    let cursor = app.drain(&friend).await;
    let mut urls = Vec::new();
    for (format, w, h) in [(ImageFormat::Png, 640, 480), (ImageFormat::Jpeg, 300, 900), (ImageFormat::WebP, 257, 256)] {
        let (status, body) = app.put_bytes(&me.token, "/api/v1/me/avatar", picture(w, h, format)).await;
        assert_eq!(status, StatusCode::OK, "{format:?}: {body}");
        let url = body["user"]["avatar_url"].as_str().unwrap().to_owned();
        let served = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.headers()["content-type"], "image/png");
        assert!(served.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let etag = served.headers()["etag"].to_str().unwrap().to_owned();
        let img = image::load_from_memory(&served.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (256, 256), "{format:?} re-encoded at 256 px");
        let again = app.client.get(app.url(&url)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        urls.push(url);
    }
    let (events, _) = app
        .expect_events(&friend, &cursor, "the last avatar", |e| {
            of_type(e, "profile.updated").iter().any(|p| p["user"]["avatar_url"] == urls[2].as_str())
        })
        .await;
    assert!(of_type(&events, "profile.updated").len() >= 3);
    let (_, friends) = app.get(&friend.token, "/api/v1/friends").await;
    assert_eq!(friends["friends"][0]["avatar_url"], urls[2].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_usable_picture_is_refused_with_a_4xx() {
    let app = spawn_app().await;
    let me = app.user("careful").await;
    let png = picture(300, 300, ImageFormat::Png);
    let bomb = png_bomb(&picture(1, 1, ImageFormat::Png));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("a text file", b"just some words, no picture".to_vec(), 422, "invalid_image"),
        ("a truncated PNG", png[..png.len() / 2].to_vec(), 422, "invalid_image"),
        ("a huge-dimension PNG", bomb, 422, "invalid_image"),
        ("an empty body", Vec::new(), 422, "invalid_image"),
        ("more than 2 MiB", vec![0x89; 2 * 1024 * 1024 + 10], 413, "payload_too_large"),
    ];
    for (what, bytes, status, code) in cases {
        let answer = app.put_bytes(&me.token, "/api/v1/me/avatar", bytes).await;
        assert_eq!(answer.0.as_u16(), status, "{what}: {}", answer.1);
        assert_eq!(error_code(&answer.1), code, "{what}");
    }
    let (_, me_now) = app.get(&me.token, "/api/v1/me").await;
    assert!(me_now["user"]["avatar_url"].as_str().unwrap().starts_with("/api/v1/users/"), "still the generated avatar");
    let generated = app
        .client
        .get(app.url(me_now["user"]["avatar_url"].as_str().unwrap()))
        .bearer_auth(&me.token)
        .send()
        .await
        .unwrap();
    assert_eq!(generated.headers()["content-type"], "image/svg+xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_names_follow_the_user_to_every_device() {
    let app = spawn_app().await;
    let phone = app.user("roamer").await;
    let laptop = app.login("roamer").await;
    let cursor = app.drain(&laptop).await;
    let (status, body) =
        app.put_json(&phone.token, "/api/v1/me/settings", json!({"theme": "dark", "sound": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (events, cursor) =
        app.expect_events(&laptop, &cursor, "settings.updated", |e| !of_type(e, "settings.updated").is_empty()).await;
    assert_eq!(of_type(&events, "settings.updated")[0]["settings"], json!({"theme": "dark", "sound": false}));
    let (_, body) = app.put_json(&laptop.token, "/api/v1/me/settings", json!({"sound": null, "theme": "sakura"})).await;
    assert_eq!(body["settings"], json!({"theme": "sakura"}), "null removes a key");
    let (_, me) = app.get(&phone.token, "/api/v1/me").await;
    assert_eq!(me["settings"], json!({"theme": "sakura"}));
    assert_error(
        &app.put_json(&phone.token, "/api/v1/me/settings", json!(["not", "an", "object"])).await,
        422,
        "invalid_settings",
    );
    assert_error(
        &app.put_json(&phone.token, "/api/v1/me/settings", json!({"theme": 5})).await,
        422,
        "invalid_settings",
    );
    let big = json!({"notes": "n".repeat(9000)});
    assert_error(&app.put_json(&phone.token, "/api/v1/me/settings", big).await, 422, "settings_too_large");

    let (status, body) = app.patch(&phone.token, "/api/v1/me", json!({"display_name": "  Roaming Rita  "})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["display_name"], "Roaming Rita");
    app.expect_events(&laptop, &cursor, "profile.updated", |e| !of_type(e, "profile.updated").is_empty()).await;
    assert_error(
        &app.patch(&phone.token, "/api/v1/me", json!({"display_name": "   "})).await,
        422,
        "invalid_display_name",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_substrings_case_insensitively_prefix_first_and_pages() {
    let app = spawn_app().await;
    let me = app.user("seeker").await;
    for name in ["annabel", "joanna", "anna_k", "hannah", "bob"] {
        app.register(name).await;
    }
    let (_, found) = app.get(&me.token, "/api/v1/users?q=ANN").await;
    let names: Vec<&str> = found["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["anna_k", "annabel", "hannah", "joanna"], "prefix matches first, then by name");
    let (_, page2) = app.get(&me.token, "/api/v1/users?q=ann&offset=2").await;
    assert_eq!(page2["users"].as_array().unwrap().len(), 2);

    for name in ["Rust Lovers", "Trusty Friends", "Cooking"] {
        app.create_group(&me, name, "open").await;
    }
    let (_, groups) = app.get(&me.token, "/api/v1/groups?q=rust").await;
    let names: Vec<&str> = groups["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Rust Lovers", "Trusty Friends"]);
    let (_, short) = app.get(&me.token, "/api/v1/groups?q=co").await;
    assert_eq!(short["groups"][0]["name"], "Cooking");
    assert_error(&app.get(&me.token, "/api/v1/groups?q=").await, 422, "invalid_query");
    let (_, mine) = app.get(&me.token, "/api/v1/me/groups").await;
    assert_eq!(mine["groups"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_picture_reaches_every_member() {
    let app = spawn_app().await;
    let owner = app.user("gowner").await;
    let member = app.user("gmember").await;
    let id = app.create_group(&owner, "Pictured", "open").await["id"].as_i64().unwrap();
    app.post_empty(&member.token, &format!("/api/v1/groups/{id}/join")).await;
    let cursor = app.drain(&member).await;
    assert_error(
        &app.put_bytes(&member.token, &format!("/api/v1/groups/{id}/avatar"), picture(64, 64, ImageFormat::Png)).await,
        403,
        "not_allowed",
    );
    let (status, body) =
        app.put_bytes(&owner.token, &format!("/api/v1/groups/{id}/avatar"), picture(64, 64, ImageFormat::Png)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["group"]["avatar_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/avatars/"));
    app.expect_events(&member, &cursor, "group.updated with the picture", |e| {
        of_type(e, "group.updated").iter().any(|g| g["group"]["avatar_url"] == url.as_str())
    })
    .await;
}
