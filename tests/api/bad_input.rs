//! Bad input on every route: each case names its status and error code, every error has
//! the contract's shape, and nothing is a 500. Also: the OpenAPI document lists every route.

use std::collections::HashSet;
use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// How a case authenticates.
#[derive(Debug, Clone)]
enum Auth {
    /// No `Authorization` header.
    No,
    /// `Bearer <token>`.
    Token(String),
    /// This exact `Authorization` header.
    Header(&'static str),
}

/// One request and the error it must get.
#[derive(Debug, Clone)]
struct Case {
    /// The route of [`ROUTES`] the case exercises; `None` for unknown routes.
    route: Option<(&'static str, &'static str)>,
    method: Method,
    path: String,
    auth: Auth,
    body: Body,
    status: u16,
    code: &'static str,
}

/// What the cases refer to: users, a friendship with a message, a pending request, groups
/// with every role, a pending join request and a dissolved group.
struct World {
    /// alice: friends with bob, has asked dave; owns every group.
    a: Device,
    /// bob: alice's friend; a plain member of `g`.
    b: Device,
    /// carol: a stranger to everyone, in no group.
    c: Device,
    /// dave: asked by alice; an admin of `g`.
    d: Device,
    /// eve: has asked to join `ap`, in no group.
    e: Device,
    /// The conversation of alice and bob; alice's message is seq 1.
    ab: String,
    /// alice's pending request to dave.
    ad: i64,
    /// An open group: alice owner, dave admin, bob member.
    g: i64,
    /// `g`'s conversation; alice's message is seq 1.
    gc: String,
    /// An approval group of alice alone; eve's request to join is pending.
    ap: i64,
    /// A group alice created and dissolved.
    gone: i64,
}

/// The largest picture the avatar routes take (2 MiB); JSON routes take 64 KiB.
const PICTURE_LIMIT: usize = 2 * 1024 * 1024;

/// A small, valid PNG.
fn png() -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 90])));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

/// Raw bytes labelled as a PNG.
fn pic(bytes: Vec<u8>) -> Body {
    Body::Bytes(bytes, "image/png")
}

/// A JSON body larger than the 64 KiB limit.
fn oversize() -> Body {
    Body::Raw(format!(
        "{{\"username\":\"zed\",\"password\":\"{0}\",\"user_id\":1,\"seq\":1,\"body\":\"{0}\",\"client_msg_id\":\"x\",\"to\":{{\"user\":1}}}}",
        "x".repeat(33 * 1024)
    ))
}

fn raw(s: &str) -> Body {
    Body::Raw(s.to_owned())
}

fn j(v: Value) -> Body {
    Body::Json(v)
}

fn long(n: usize) -> String {
    "y".repeat(n)
}

/// The table: one line per case, grouped by route.
#[rustfmt::skip]
fn cases(w: &World) -> Vec<Case> {
    use Method as M;
    let mut cases = Vec::new();
    let mut add = |route: Option<(&'static str, &'static str)>, method: Method, path: &str, auth: &Auth, body: Body, status: u16, code: &'static str| {
        cases.push(Case { route, method, path: path.to_owned(), auth: auth.clone(), body, status, code })
    };
    let none = Auth::No;
    let bad = Auth::Token("not-a-token-this-server-gave-out".into());
    let (ta, tc, td) = (Auth::Token(w.a.token.clone()), Auth::Token(w.c.token.clone()), Auth::Token(w.d.token.clone()));
    let (tb, te) = (Auth::Token(w.b.token.clone()), Auth::Token(w.e.token.clone()));
    let (b_id, c_id, a_id, d_id, e_id) = (w.b.user_id, w.c.user_id, w.a.user_id, w.d.user_id, w.e.user_id);
    let ab = w.ab.as_str();
    let unknown_cid = "d1-999999";

    let r = Some(("POST", "/api/v1/auth/register"));
    let p = "/api/v1/auth/register";
    add(r, M::POST, p, &none, raw("{\"username\": "), 400, "malformed_json");
    add(r, M::POST, p, &none, raw("not json"), 400, "malformed_json");
    add(r, M::POST, p, &none, Body::None, 400, "malformed_json");
    add(r, M::POST, p, &none, j(json!({"username": 5, "password": PASSWORD})), 422, "invalid_field");
    add(r, M::POST, p, &none, j(json!({"username": "zed"})), 422, "invalid_field");
    add(r, M::POST, p, &none, j(json!("a string")), 422, "invalid_field");
    add(r, M::POST, p, &none, j(json!({"username": "zed", "password": PASSWORD, "display_name": 7})), 422, "invalid_field");
    add(r, M::POST, p, &none, oversize(), 413, "payload_too_large");
    add(r, M::POST, p, &none, j(json!({"username": "a b", "password": PASSWORD})), 422, "invalid_username");
    add(r, M::POST, p, &none, j(json!({"username": "zed", "password": "short"})), 422, "invalid_password");
    add(r, M::POST, p, &none, j(json!({"username": "ALICE", "password": PASSWORD})), 409, "username_taken");

    let r = Some(("POST", "/api/v1/auth/login"));
    let p = "/api/v1/auth/login";
    add(r, M::POST, p, &none, raw("{"), 400, "malformed_json");
    add(r, M::POST, p, &none, Body::None, 400, "malformed_json");
    add(r, M::POST, p, &none, j(json!({"username": "alice", "password": 12345678})), 422, "invalid_field");
    add(r, M::POST, p, &none, j(json!({"password": PASSWORD})), 422, "invalid_field");
    add(r, M::POST, p, &none, oversize(), 413, "payload_too_large");
    add(r, M::POST, p, &none, j(json!({"username": "alice", "password": "wrong password"})), 401, "invalid_credentials");
    add(r, M::POST, p, &none, j(json!({"username": "nobody", "password": PASSWORD})), 401, "invalid_credentials");

    let r = Some(("POST", "/api/v1/auth/logout"));
    let p = "/api/v1/auth/logout";
    add(r, M::POST, p, &none, Body::None, 401, "unauthorized");
    add(r, M::POST, p, &bad, Body::None, 401, "unauthorized");

    let r = Some(("GET", "/api/v1/me"));
    let p = "/api/v1/me";
    add(r, M::GET, p, &none, Body::None, 401, "unauthorized");
    add(r, M::GET, p, &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, p, &Auth::Header("Bearer"), Body::None, 401, "unauthorized");
    add(r, M::GET, p, &Auth::Header("Bearer "), Body::None, 401, "unauthorized");
    add(r, M::GET, p, &Auth::Header("Basic YWxpY2U6cGFzc3dvcmQ="), Body::None, 401, "unauthorized");

    let r = Some(("GET", "/api/v1/events"));
    add(r, M::GET, "/api/v1/events?timeout=0", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/events?timeout=0", &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=abc", &ta, Body::None, 400, "invalid_cursor");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=", &ta, Body::None, 400, "invalid_cursor");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=-1", &ta, Body::None, 400, "invalid_cursor");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=01", &ta, Body::None, 400, "invalid_cursor");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=1.5", &ta, Body::None, 400, "invalid_cursor");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=99999999999999999999", &ta, Body::None, 400, "invalid_cursor");
    add(r, M::GET, "/api/v1/events?timeout=0&cursor=999999999999", &ta, Body::None, 410, "cursor_expired");
    add(r, M::GET, "/api/v1/events?timeout=abc", &ta, Body::None, 400, "invalid_query");
    add(r, M::GET, "/api/v1/events?timeout=-5", &ta, Body::None, 400, "invalid_query");

    let r = Some(("POST", "/api/v1/messages"));
    let p = "/api/v1/messages";
    let msg = |to: Value, cmid: &str, body: &str| j(json!({"to": to, "client_msg_id": cmid, "body": body}));
    let to_b = json!({"user": b_id});
    add(r, M::POST, p, &none, msg(to_b.clone(), "x", "hi"), 401, "unauthorized");
    add(r, M::POST, p, &bad, msg(to_b.clone(), "x", "hi"), 401, "unauthorized");
    add(r, M::POST, p, &ta, raw("{\"to\": {\"user\": 1}, "), 400, "malformed_json");
    add(r, M::POST, p, &ta, Body::None, 400, "malformed_json");
    add(r, M::POST, p, &ta, j(json!({"to": "bob", "client_msg_id": "x", "body": "hi"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"to": {"user": "bob"}, "client_msg_id": "x", "body": "hi"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"to": to_b, "client_msg_id": 7, "body": "hi"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"to": to_b, "client_msg_id": "x"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"to": {"user": b_id, "nobody": 1}, "client_msg_id": "x", "body": "hi"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, raw(&format!("{{\"to\": {}{}, \"client_msg_id\": \"x\", \"body\": \"hi\"}}", "[".repeat(5000), "]".repeat(5000))), 422, "invalid_field");
    add(r, M::POST, p, &ta, msg(json!({}), "x", "hi"), 422, "invalid_to");
    add(r, M::POST, p, &ta, msg(json!({"user": b_id, "group": 1}), "x", "hi"), 422, "invalid_to");
    add(r, M::POST, p, &ta, msg(to_b.clone(), "x", ""), 422, "invalid_body");
    add(r, M::POST, p, &ta, msg(to_b.clone(), "x", "  \n "), 422, "invalid_body");
    add(r, M::POST, p, &ta, msg(to_b.clone(), "x", &long(4001)), 422, "invalid_body");
    add(r, M::POST, p, &ta, msg(to_b.clone(), "", "hi"), 422, "invalid_client_msg_id");
    add(r, M::POST, p, &ta, msg(to_b.clone(), &long(65), "hi"), 422, "invalid_client_msg_id");
    add(r, M::POST, p, &ta, msg(json!({"user": 999_999}), "x", "hi"), 404, "user_not_found");
    add(r, M::POST, p, &ta, msg(json!({"group": 999_999}), "x", "hi"), 404, "group_not_found");
    add(r, M::POST, p, &ta, msg(json!({"user": c_id}), "x", "hi"), 403, "not_friends");
    add(r, M::POST, p, &ta, oversize(), 413, "payload_too_large");

    let r = Some(("GET", "/api/v1/conversations"));
    add(r, M::GET, "/api/v1/conversations", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/conversations", &bad, Body::None, 401, "unauthorized");

    let r = Some(("GET", "/api/v1/conversations/{cid}/messages"));
    let h = |cid: &str, q: &str| format!("/api/v1/conversations/{cid}/messages?{q}");
    add(r, M::GET, &h(ab, ""), &none, Body::None, 401, "unauthorized");
    add(r, M::GET, &h(ab, ""), &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, &h(ab, ""), &tc, Body::None, 403, "not_member");
    add(r, M::GET, &h(unknown_cid, ""), &ta, Body::None, 404, "conversation_not_found");
    add(r, M::GET, &h("nonsense", ""), &ta, Body::None, 404, "conversation_not_found");
    add(r, M::GET, &h(ab, "limit=0"), &ta, Body::None, 422, "invalid_limit");
    add(r, M::GET, &h(ab, "limit=201"), &ta, Body::None, 422, "invalid_limit");
    add(r, M::GET, &h(ab, "limit=abc"), &ta, Body::None, 400, "invalid_query");
    add(r, M::GET, &h(ab, "limit=-1"), &ta, Body::None, 400, "invalid_query");
    add(r, M::GET, &h(ab, "before_seq=0"), &ta, Body::None, 422, "invalid_seq");
    add(r, M::GET, &h(ab, "after_seq=-1"), &ta, Body::None, 422, "invalid_seq");
    add(r, M::GET, &h(ab, "after_seq=x"), &ta, Body::None, 400, "invalid_query");

    let r = Some(("POST", "/api/v1/conversations/{cid}/read"));
    let rd = |cid: &str| format!("/api/v1/conversations/{cid}/read");
    add(r, M::POST, &rd(ab), &none, j(json!({"seq": 1})), 401, "unauthorized");
    add(r, M::POST, &rd(ab), &bad, j(json!({"seq": 1})), 401, "unauthorized");
    add(r, M::POST, &rd(ab), &tc, j(json!({"seq": 1})), 403, "not_member");
    add(r, M::POST, &rd(unknown_cid), &ta, j(json!({"seq": 1})), 404, "conversation_not_found");
    add(r, M::POST, &rd("nonsense"), &ta, j(json!({"seq": 1})), 404, "conversation_not_found");
    add(r, M::POST, &rd(ab), &ta, raw("{\"seq\": }"), 400, "malformed_json");
    add(r, M::POST, &rd(ab), &ta, raw("{\"seq\": 1} trailing"), 400, "malformed_json");
    add(r, M::POST, &rd(ab), &ta, Body::None, 400, "malformed_json");
    add(r, M::POST, &rd(ab), &ta, j(json!({"seq": "one"})), 422, "invalid_field");
    add(r, M::POST, &rd(ab), &ta, j(json!({"seq": 1.5})), 422, "invalid_field");
    add(r, M::POST, &rd(ab), &ta, j(json!({})), 422, "invalid_field");
    add(r, M::POST, &rd(ab), &ta, j(json!({"seq": -1})), 422, "invalid_seq");
    add(r, M::POST, &rd(ab), &ta, oversize(), 413, "payload_too_large");

    let r = Some(("GET", "/api/v1/users"));
    add(r, M::GET, "/api/v1/users?q=ali", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/users?q=ali", &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/users", &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, "/api/v1/users?q=", &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, "/api/v1/users?q=%20%20", &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, &format!("/api/v1/users?q={}", long(65)), &ta, Body::None, 422, "invalid_query");

    // Public, like any picture on a page.
    let r = Some(("GET", "/api/v1/users/{id}/avatar"));
    add(r, M::GET, "/api/v1/users/1/avatar", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/users/1/avatar", &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/users/999999/avatar", &ta, Body::None, 404, "user_not_found");
    add(r, M::GET, "/api/v1/users/-1/avatar", &ta, Body::None, 404, "user_not_found");
    add(r, M::GET, "/api/v1/users/abc/avatar", &ta, Body::None, 404, "resource_not_found");

    let r = Some(("GET", "/api/v1/friends"));
    add(r, M::GET, "/api/v1/friends", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/friends", &bad, Body::None, 401, "unauthorized");

    let r = Some(("DELETE", "/api/v1/friends/{user_id}"));
    add(r, M::DELETE, &format!("/api/v1/friends/{b_id}"), &none, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &format!("/api/v1/friends/{b_id}"), &bad, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &format!("/api/v1/friends/{c_id}"), &ta, Body::None, 404, "friend_not_found");
    add(r, M::DELETE, "/api/v1/friends/999999", &ta, Body::None, 404, "friend_not_found");
    add(r, M::DELETE, "/api/v1/friends/bob", &ta, Body::None, 404, "resource_not_found");

    let r = Some(("POST", "/api/v1/friend-requests"));
    let p = "/api/v1/friend-requests";
    add(r, M::POST, p, &none, j(json!({"user_id": c_id})), 401, "unauthorized");
    add(r, M::POST, p, &bad, j(json!({"user_id": c_id})), 401, "unauthorized");
    add(r, M::POST, p, &ta, raw("{\"user_id\""), 400, "malformed_json");
    add(r, M::POST, p, &ta, Body::None, 400, "malformed_json");
    add(r, M::POST, p, &ta, j(json!({"user_id": "carol"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"note": "hi"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"user_id": c_id, "note": 5})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"user_id": a_id})), 422, "invalid_user_id");
    add(r, M::POST, p, &ta, j(json!({"user_id": c_id, "note": long(501)})), 422, "invalid_note");
    add(r, M::POST, p, &ta, j(json!({"user_id": 999_999})), 404, "user_not_found");
    add(r, M::POST, p, &ta, j(json!({"user_id": b_id})), 409, "already_friends");
    add(r, M::POST, p, &ta, j(json!({"user_id": d_id})), 409, "request_pending");
    add(r, M::POST, p, &td, j(json!({"user_id": a_id})), 409, "request_pending");
    add(r, M::POST, p, &ta, oversize(), 413, "payload_too_large");

    let r = Some(("GET", "/api/v1/friend-requests"));
    add(r, M::GET, p, &none, Body::None, 401, "unauthorized");
    add(r, M::GET, p, &bad, Body::None, 401, "unauthorized");

    for verb in ["accept", "decline"] {
        let r = Some(("POST", if verb == "accept" { "/api/v1/friend-requests/{id}/accept" } else { "/api/v1/friend-requests/{id}/decline" }));
        let fr = |id: &str| format!("/api/v1/friend-requests/{id}/{verb}");
        let ad = w.ad.to_string();
        add(r, M::POST, &fr(&ad), &none, Body::None, 401, "unauthorized");
        add(r, M::POST, &fr(&ad), &bad, Body::None, 401, "unauthorized");
        add(r, M::POST, &fr("999999"), &ta, Body::None, 404, "friend_request_not_found");
        add(r, M::POST, &fr("abc"), &ta, Body::None, 404, "resource_not_found");
        // Someone else's request, and one's own outgoing one.
        add(r, M::POST, &fr(&ad), &tc, Body::None, 404, "friend_request_not_found");
        add(r, M::POST, &fr(&ad), &ta, Body::None, 404, "friend_request_not_found");
    }

    let r = Some(("PATCH", "/api/v1/me"));
    let p = "/api/v1/me";
    add(r, M::PATCH, p, &none, j(json!({"display_name": "Zed"})), 401, "unauthorized");
    add(r, M::PATCH, p, &bad, j(json!({"display_name": "Zed"})), 401, "unauthorized");
    add(r, M::PATCH, p, &ta, raw("{\"display_name\": "), 400, "malformed_json");
    add(r, M::PATCH, p, &ta, Body::None, 400, "malformed_json");
    add(r, M::PATCH, p, &ta, j(json!({"display_name": 5})), 422, "invalid_field");
    add(r, M::PATCH, p, &ta, j(json!("Zed")), 422, "invalid_field");
    // Serde's derived structs would accept an array field by field; the body must be an object.
    add(r, M::PATCH, p, &ta, j(json!([null])), 422, "invalid_field");
    add(r, M::PATCH, p, &ta, j(json!({"display_name": ""})), 422, "invalid_display_name");
    add(r, M::PATCH, p, &ta, j(json!({"display_name": " \t "})), 422, "invalid_display_name");
    add(r, M::PATCH, p, &ta, j(json!({"display_name": long(65)})), 422, "invalid_display_name");
    add(r, M::PATCH, p, &ta, j(json!({"display_name": "bell\u{7}ringer"})), 422, "invalid_display_name");
    add(r, M::PATCH, p, &ta, oversize(), 413, "payload_too_large");

    // A raw picture body of at most 2 MiB; the 64 KiB JSON limit does not apply.
    let r = Some(("PUT", "/api/v1/me/avatar"));
    let p = "/api/v1/me/avatar";
    add(r, M::PUT, p, &none, pic(png()), 401, "unauthorized");
    add(r, M::PUT, p, &bad, pic(png()), 401, "unauthorized");
    add(r, M::PUT, p, &ta, Body::None, 422, "invalid_image");
    add(r, M::PUT, p, &ta, pic(b"just some words, no picture".to_vec()), 422, "invalid_image");
    add(r, M::PUT, p, &ta, j(json!({"avatar": "https://example.com/me.png"})), 422, "invalid_image");
    add(r, M::PUT, p, &ta, pic([b"BM".as_slice(), &[0u8; 64]].concat()), 422, "invalid_image");
    add(r, M::PUT, p, &ta, pic(png()[..40].to_vec()), 422, "invalid_image");
    add(r, M::PUT, p, &ta, pic(png_bomb(&png())), 422, "invalid_image");
    add(r, M::PUT, p, &ta, pic(vec![0x89; 100 * 1024]), 422, "invalid_image");
    add(r, M::PUT, p, &ta, pic(vec![0x89; PICTURE_LIMIT + 1]), 413, "payload_too_large");
    add(r, M::PUT, p, &ta, pic(vec![0x89; 3 * 1024 * 1024]), 413, "payload_too_large");

    let r = Some(("PUT", "/api/v1/me/settings"));
    let p = "/api/v1/me/settings";
    add(r, M::PUT, p, &none, j(json!({"theme": "dark"})), 401, "unauthorized");
    add(r, M::PUT, p, &bad, j(json!({"theme": "dark"})), 401, "unauthorized");
    add(r, M::PUT, p, &ta, raw("{\"theme\": "), 400, "malformed_json");
    add(r, M::PUT, p, &ta, raw("{\"theme\": \"dark\"} {}"), 400, "malformed_json");
    add(r, M::PUT, p, &ta, Body::None, 400, "malformed_json");
    // Nested beyond the parser's depth limit: refused as malformed, without a crash.
    add(r, M::PUT, p, &ta, raw(&format!("{{\"x\": {}{}}}", "[".repeat(5000), "]".repeat(5000))), 400, "malformed_json");
    add(r, M::PUT, p, &ta, raw("[\"theme\", \"dark\"]"), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, raw("\"dark\""), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, raw("null"), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, raw("42"), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, j(json!({"theme": 5})), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, j(json!({"theme": ""})), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, j(json!({"theme": long(33)})), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, j(json!({"theme": {"name": "dark"}})), 422, "invalid_settings");
    add(r, M::PUT, p, &ta, j(json!({"notes": long(9 * 1024)})), 422, "settings_too_large");
    add(r, M::PUT, p, &ta, oversize(), 413, "payload_too_large");

    // Stored pictures, public like any picture on a page; the name is `<sha256>.png`.
    let r = Some(("GET", "/avatars/{name}"));
    add(r, M::GET, "/avatars/nothing.png", &none, Body::None, 404, "picture_not_found");
    add(r, M::GET, &format!("/avatars/{}.png", "0".repeat(64)), &none, Body::None, 404, "picture_not_found");
    add(r, M::GET, &format!("/avatars/{}", "0".repeat(64)), &none, Body::None, 404, "picture_not_found");
    add(r, M::GET, &format!("/avatars/{}.png", "A".repeat(64)), &none, Body::None, 404, "picture_not_found");
    add(r, M::GET, "/avatars/.png", &none, Body::None, 404, "picture_not_found");
    add(r, M::GET, "/avatars/..%2F..%2Fdata.db.png", &none, Body::None, 404, "picture_not_found");
    add(r, M::GET, "/avatars/..%2F..%2F..%2F..%2Fetc%2Fpasswd", &none, Body::None, 404, "picture_not_found");

    let r = Some(("DELETE", "/api/v1/conversations/{cid}/messages/{seq}"));
    let rc = |cid: &str, seq: &str| format!("/api/v1/conversations/{cid}/messages/{seq}");
    let gc = w.gc.as_str();
    add(r, M::DELETE, &rc(ab, "1"), &none, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &rc(ab, "1"), &bad, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &rc(ab, "1"), &tc, Body::None, 403, "not_member");
    add(r, M::DELETE, &rc(gc, "1"), &tc, Body::None, 403, "not_member");
    add(r, M::DELETE, &rc(unknown_cid, "1"), &ta, Body::None, 404, "conversation_not_found");
    add(r, M::DELETE, &rc("g999999", "1"), &ta, Body::None, 404, "conversation_not_found");
    add(r, M::DELETE, &rc("nonsense", "1"), &ta, Body::None, 404, "conversation_not_found");
    add(r, M::DELETE, &rc(ab, "999"), &ta, Body::None, 404, "message_not_found");
    add(r, M::DELETE, &rc(ab, "0"), &ta, Body::None, 404, "message_not_found");
    add(r, M::DELETE, &rc(ab, "-1"), &ta, Body::None, 404, "message_not_found");
    add(r, M::DELETE, &rc(gc, "2"), &ta, Body::None, 404, "message_not_found");
    add(r, M::DELETE, &rc(ab, "abc"), &ta, Body::None, 404, "resource_not_found");
    add(r, M::DELETE, &rc(ab, "1.5"), &ta, Body::None, 404, "resource_not_found");
    add(r, M::DELETE, &rc(ab, "99999999999999999999"), &ta, Body::None, 404, "resource_not_found");
    // Someone else's message, in a direct chat and as a plain group member.
    add(r, M::DELETE, &rc(ab, "1"), &tb, Body::None, 403, "not_sender");
    add(r, M::DELETE, &rc(gc, "1"), &tb, Body::None, 403, "not_sender");
    // One's own message after the recall window (zero in this test's server).
    add(r, M::DELETE, &rc(ab, "1"), &ta, Body::None, 403, "recall_window_passed");

    // Groups. `g`: alice owner, dave admin, bob member; `ap`: approval, eve asked; `gone`:
    // dissolved.
    let (g, ap, gone) = (w.g.to_string(), w.ap.to_string(), w.gone.to_string());
    let (g, ap, gone) = (g.as_str(), ap.as_str(), gone.as_str());
    let gp = |id: &str, rest: &str| format!("/api/v1/groups/{id}{rest}");
    // Group ids that name no group: unknown, dissolved, negative (404 `group_not_found`).
    let no_groups = ["999999", gone, "-1"];
    // Group ids that do not parse (404 `resource_not_found`).
    let bad_ids = ["abc", "1.5", "99999999999999999999"];

    let r = Some(("POST", "/api/v1/groups"));
    let p = "/api/v1/groups";
    add(r, M::POST, p, &none, j(json!({"name": "Club"})), 401, "unauthorized");
    add(r, M::POST, p, &bad, j(json!({"name": "Club"})), 401, "unauthorized");
    add(r, M::POST, p, &ta, raw("{\"name\": \"Club\""), 400, "malformed_json");
    add(r, M::POST, p, &ta, raw("{'name': 'Club'}"), 400, "malformed_json");
    add(r, M::POST, p, &ta, Body::None, 400, "malformed_json");
    add(r, M::POST, p, &ta, j(json!({"name": 5})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"join_policy": "open"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"name": "Club", "join_policy": "secret"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"name": "Club", "join_policy": "Open"})), 422, "invalid_field");
    // Valid JSON of the wrong shape is 422, even where serde_json calls it a syntax error.
    add(r, M::POST, p, &ta, j(json!({"name": "Club", "join_policy": 1})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"name": "Club", "join_policy": true})), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"name": "Club", "history_visible_to_new_members": "yes"})), 422, "invalid_field");
    add(r, M::POST, p, &ta, raw("{\"name\": \"Club\", \"name\": \"Other\"}"), 422, "invalid_field");
    add(r, M::POST, p, &ta, j(json!({"name": ""})), 422, "invalid_name");
    add(r, M::POST, p, &ta, j(json!({"name": "   "})), 422, "invalid_name");
    add(r, M::POST, p, &ta, j(json!({"name": long(65)})), 422, "invalid_name");
    add(r, M::POST, p, &ta, j(json!({"name": "two\nlines"})), 422, "invalid_name");
    add(r, M::POST, p, &ta, oversize(), 413, "payload_too_large");

    let r = Some(("GET", "/api/v1/groups"));
    add(r, M::GET, "/api/v1/groups?q=club", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/groups?q=club", &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/groups", &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, "/api/v1/groups?q=", &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, "/api/v1/groups?q=%20%20", &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, &format!("/api/v1/groups?q={}", long(65)), &ta, Body::None, 422, "invalid_query");
    add(r, M::GET, "/api/v1/groups?q=club&offset=abc", &ta, Body::None, 400, "invalid_query");
    add(r, M::GET, "/api/v1/groups?q=club&offset=-1", &ta, Body::None, 400, "invalid_query");
    add(r, M::GET, "/api/v1/groups?q=club&offset=1.5", &ta, Body::None, 400, "invalid_query");

    let r = Some(("GET", "/api/v1/groups/{id}"));
    add(r, M::GET, &gp(g, ""), &none, Body::None, 401, "unauthorized");
    add(r, M::GET, &gp(g, ""), &bad, Body::None, 401, "unauthorized");
    for id in no_groups { add(r, M::GET, &gp(id, ""), &ta, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::GET, &gp(id, ""), &ta, Body::None, 404, "resource_not_found"); }

    let r = Some(("PATCH", "/api/v1/groups/{id}"));
    let rename = || j(json!({"name": "Renamed"}));
    add(r, M::PATCH, &gp(g, ""), &none, rename(), 401, "unauthorized");
    add(r, M::PATCH, &gp(g, ""), &bad, rename(), 401, "unauthorized");
    add(r, M::PATCH, &gp(g, ""), &tc, rename(), 403, "not_member");
    add(r, M::PATCH, &gp(g, ""), &tb, rename(), 403, "not_allowed");
    add(r, M::PATCH, &gp(ap, ""), &te, rename(), 403, "not_member");
    for id in no_groups { add(r, M::PATCH, &gp(id, ""), &ta, rename(), 404, "group_not_found"); }
    for id in bad_ids { add(r, M::PATCH, &gp(id, ""), &ta, rename(), 404, "resource_not_found"); }
    add(r, M::PATCH, &gp(g, ""), &ta, raw("{\"name\": "), 400, "malformed_json");
    add(r, M::PATCH, &gp(g, ""), &ta, Body::None, 400, "malformed_json");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!({"name": 5})), 422, "invalid_field");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!({"join_policy": "closed"})), 422, "invalid_field");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!({"join_policy": ["open"]})), 422, "invalid_field");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!([null, null, null])), 422, "invalid_field");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!({"history_visible_to_new_members": 1})), 422, "invalid_field");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!("Renamed")), 422, "invalid_field");
    add(r, M::PATCH, &gp(g, ""), &ta, j(json!({"name": ""})), 422, "invalid_name");
    add(r, M::PATCH, &gp(g, ""), &td, j(json!({"name": long(65)})), 422, "invalid_name");
    add(r, M::PATCH, &gp(g, ""), &ta, oversize(), 413, "payload_too_large");

    let r = Some(("DELETE", "/api/v1/groups/{id}"));
    add(r, M::DELETE, &gp(g, ""), &none, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &gp(g, ""), &bad, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &gp(g, ""), &tc, Body::None, 403, "not_member");
    add(r, M::DELETE, &gp(g, ""), &tb, Body::None, 403, "not_allowed");
    // Only the owner dissolves; an admin may not.
    add(r, M::DELETE, &gp(g, ""), &td, Body::None, 403, "not_allowed");
    for id in no_groups { add(r, M::DELETE, &gp(id, ""), &ta, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::DELETE, &gp(id, ""), &ta, Body::None, 404, "resource_not_found"); }

    let r = Some(("GET", "/api/v1/groups/{id}/members"));
    add(r, M::GET, &gp(g, "/members"), &none, Body::None, 401, "unauthorized");
    add(r, M::GET, &gp(g, "/members"), &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, &gp(g, "/members"), &tc, Body::None, 403, "not_member");
    // Asking to join does not make one a member.
    add(r, M::GET, &gp(ap, "/members"), &te, Body::None, 403, "not_member");
    for id in no_groups { add(r, M::GET, &gp(id, "/members"), &ta, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::GET, &gp(id, "/members"), &ta, Body::None, 404, "resource_not_found"); }

    let r = Some(("POST", "/api/v1/groups/{id}/members"));
    let add_c = || j(json!({"user_id": c_id}));
    add(r, M::POST, &gp(g, "/members"), &none, add_c(), 401, "unauthorized");
    add(r, M::POST, &gp(g, "/members"), &bad, add_c(), 401, "unauthorized");
    add(r, M::POST, &gp(g, "/members"), &tc, add_c(), 403, "not_member");
    add(r, M::POST, &gp(g, "/members"), &tb, add_c(), 403, "not_allowed");
    for id in no_groups { add(r, M::POST, &gp(id, "/members"), &ta, add_c(), 404, "group_not_found"); }
    for id in bad_ids { add(r, M::POST, &gp(id, "/members"), &ta, add_c(), 404, "resource_not_found"); }
    add(r, M::POST, &gp(g, "/members"), &ta, raw("{\"user_id\": "), 400, "malformed_json");
    add(r, M::POST, &gp(g, "/members"), &ta, Body::None, 400, "malformed_json");
    add(r, M::POST, &gp(g, "/members"), &ta, j(json!({"user_id": "carol"})), 422, "invalid_field");
    add(r, M::POST, &gp(g, "/members"), &ta, j(json!({"user_id": 1.5})), 422, "invalid_field");
    add(r, M::POST, &gp(g, "/members"), &ta, j(json!({})), 422, "invalid_field");
    add(r, M::POST, &gp(g, "/members"), &ta, j(json!({"user_id": 999_999})), 404, "user_not_found");
    add(r, M::POST, &gp(g, "/members"), &ta, j(json!({"user_id": b_id})), 409, "already_member");
    add(r, M::POST, &gp(g, "/members"), &td, j(json!({"user_id": a_id})), 409, "already_member");
    add(r, M::POST, &gp(g, "/members"), &ta, oversize(), 413, "payload_too_large");

    let r = Some(("DELETE", "/api/v1/groups/{id}/members/{user_id}"));
    let gm = |id: &str, user: &str| format!("/api/v1/groups/{id}/members/{user}");
    let (b_s, c_s, a_s, d_s, e_s) = (b_id.to_string(), c_id.to_string(), a_id.to_string(), d_id.to_string(), e_id.to_string());
    add(r, M::DELETE, &gm(g, &b_s), &none, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &gm(g, &b_s), &bad, Body::None, 401, "unauthorized");
    add(r, M::DELETE, &gm(g, &b_s), &tc, Body::None, 403, "not_member");
    add(r, M::DELETE, &gm(g, &d_s), &tb, Body::None, 403, "not_allowed");
    // An admin removes plain members only, never the owner.
    add(r, M::DELETE, &gm(g, &a_s), &td, Body::None, 403, "not_allowed");
    add(r, M::DELETE, &gm(g, &c_s), &ta, Body::None, 404, "member_not_found");
    add(r, M::DELETE, &gm(g, "999999"), &ta, Body::None, 404, "member_not_found");
    add(r, M::DELETE, &gm(ap, &e_s), &ta, Body::None, 404, "member_not_found");
    add(r, M::DELETE, &gm(g, &a_s), &ta, Body::None, 409, "owner_cannot_leave");
    for id in no_groups { add(r, M::DELETE, &gm(id, &b_s), &ta, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::DELETE, &gm(id, &b_s), &ta, Body::None, 404, "resource_not_found"); }
    add(r, M::DELETE, &gm(g, "bob"), &ta, Body::None, 404, "resource_not_found");

    let r = Some(("PATCH", "/api/v1/groups/{id}/members/{user_id}"));
    let admin = || j(json!({"role": "admin"}));
    add(r, M::PATCH, &gm(g, &b_s), &none, admin(), 401, "unauthorized");
    add(r, M::PATCH, &gm(g, &b_s), &bad, admin(), 401, "unauthorized");
    add(r, M::PATCH, &gm(g, &b_s), &tc, admin(), 403, "not_member");
    add(r, M::PATCH, &gm(g, &b_s), &tb, admin(), 403, "not_allowed");
    // Only the owner sets roles; an admin may not.
    add(r, M::PATCH, &gm(g, &b_s), &td, admin(), 403, "not_allowed");
    for id in no_groups { add(r, M::PATCH, &gm(id, &b_s), &ta, admin(), 404, "group_not_found"); }
    for id in bad_ids { add(r, M::PATCH, &gm(id, &b_s), &ta, admin(), 404, "resource_not_found"); }
    add(r, M::PATCH, &gm(g, "bob"), &ta, admin(), 404, "resource_not_found");
    add(r, M::PATCH, &gm(g, &c_s), &ta, admin(), 404, "member_not_found");
    add(r, M::PATCH, &gm(g, "999999"), &ta, admin(), 404, "member_not_found");
    add(r, M::PATCH, &gm(g, &b_s), &ta, raw("{\"role\": adm"), 400, "malformed_json");
    add(r, M::PATCH, &gm(g, &b_s), &ta, Body::None, 400, "malformed_json");
    add(r, M::PATCH, &gm(g, &b_s), &ta, j(json!({})), 422, "invalid_field");
    add(r, M::PATCH, &gm(g, &b_s), &ta, j(json!({"role": 1})), 422, "invalid_field");
    // Not a role at all: refused by the body's type, like any unknown enum value.
    add(r, M::PATCH, &gm(g, &b_s), &ta, j(json!({"role": "boss"})), 422, "invalid_field");
    add(r, M::PATCH, &gm(g, &b_s), &ta, j(json!({"role": "owner"})), 422, "invalid_role");
    add(r, M::PATCH, &gm(g, &a_s), &ta, admin(), 422, "invalid_user_id");
    add(r, M::PATCH, &gm(g, &b_s), &ta, oversize(), 413, "payload_too_large");

    let r = Some(("POST", "/api/v1/groups/{id}/join"));
    add(r, M::POST, &gp(g, "/join"), &none, Body::None, 401, "unauthorized");
    add(r, M::POST, &gp(g, "/join"), &bad, Body::None, 401, "unauthorized");
    add(r, M::POST, &gp(g, "/join"), &tb, Body::None, 409, "already_member");
    add(r, M::POST, &gp(g, "/join"), &ta, Body::None, 409, "already_member");
    add(r, M::POST, &gp(ap, "/join"), &ta, Body::None, 409, "already_member");
    add(r, M::POST, &gp(ap, "/join"), &te, Body::None, 409, "request_pending");
    for id in no_groups { add(r, M::POST, &gp(id, "/join"), &tc, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::POST, &gp(id, "/join"), &tc, Body::None, 404, "resource_not_found"); }

    let r = Some(("POST", "/api/v1/groups/{id}/leave"));
    add(r, M::POST, &gp(g, "/leave"), &none, Body::None, 401, "unauthorized");
    add(r, M::POST, &gp(g, "/leave"), &bad, Body::None, 401, "unauthorized");
    add(r, M::POST, &gp(g, "/leave"), &tc, Body::None, 403, "not_member");
    add(r, M::POST, &gp(ap, "/leave"), &te, Body::None, 403, "not_member");
    add(r, M::POST, &gp(g, "/leave"), &ta, Body::None, 409, "owner_cannot_leave");
    for id in no_groups { add(r, M::POST, &gp(id, "/leave"), &tb, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::POST, &gp(id, "/leave"), &tb, Body::None, 404, "resource_not_found"); }

    let r = Some(("POST", "/api/v1/groups/{id}/transfer"));
    let to_b = || j(json!({"user_id": b_id}));
    add(r, M::POST, &gp(g, "/transfer"), &none, to_b(), 401, "unauthorized");
    add(r, M::POST, &gp(g, "/transfer"), &bad, to_b(), 401, "unauthorized");
    add(r, M::POST, &gp(g, "/transfer"), &tc, to_b(), 403, "not_member");
    add(r, M::POST, &gp(g, "/transfer"), &tb, j(json!({"user_id": d_id})), 403, "not_allowed");
    // Only the owner hands the group over; an admin may not.
    add(r, M::POST, &gp(g, "/transfer"), &td, to_b(), 403, "not_allowed");
    for id in no_groups { add(r, M::POST, &gp(id, "/transfer"), &ta, to_b(), 404, "group_not_found"); }
    for id in bad_ids { add(r, M::POST, &gp(id, "/transfer"), &ta, to_b(), 404, "resource_not_found"); }
    add(r, M::POST, &gp(g, "/transfer"), &ta, raw("{\"user_id\": }"), 400, "malformed_json");
    add(r, M::POST, &gp(g, "/transfer"), &ta, Body::None, 400, "malformed_json");
    add(r, M::POST, &gp(g, "/transfer"), &ta, j(json!({"user_id": "bob"})), 422, "invalid_field");
    add(r, M::POST, &gp(g, "/transfer"), &ta, j(json!({"to": b_id})), 422, "invalid_field");
    add(r, M::POST, &gp(g, "/transfer"), &ta, j(json!({"user_id": a_id})), 422, "invalid_user_id");
    add(r, M::POST, &gp(g, "/transfer"), &ta, j(json!({"user_id": c_id})), 404, "member_not_found");
    add(r, M::POST, &gp(g, "/transfer"), &ta, j(json!({"user_id": 999_999})), 404, "member_not_found");
    add(r, M::POST, &gp(ap, "/transfer"), &ta, j(json!({"user_id": e_id})), 404, "member_not_found");
    add(r, M::POST, &gp(g, "/transfer"), &ta, oversize(), 413, "payload_too_large");

    let r = Some(("GET", "/api/v1/groups/{id}/requests"));
    add(r, M::GET, &gp(ap, "/requests"), &none, Body::None, 401, "unauthorized");
    add(r, M::GET, &gp(ap, "/requests"), &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, &gp(ap, "/requests"), &tc, Body::None, 403, "not_member");
    add(r, M::GET, &gp(ap, "/requests"), &te, Body::None, 403, "not_member");
    add(r, M::GET, &gp(g, "/requests"), &tb, Body::None, 403, "not_allowed");
    for id in no_groups { add(r, M::GET, &gp(id, "/requests"), &ta, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::GET, &gp(id, "/requests"), &ta, Body::None, 404, "resource_not_found"); }

    for verb in ["accept", "decline"] {
        let r = Some(("POST", if verb == "accept" { "/api/v1/groups/{id}/requests/{user_id}/accept" } else { "/api/v1/groups/{id}/requests/{user_id}/decline" }));
        let jr = |id: &str, user: &str| format!("/api/v1/groups/{id}/requests/{user}/{verb}");
        add(r, M::POST, &jr(ap, &e_s), &none, Body::None, 401, "unauthorized");
        add(r, M::POST, &jr(ap, &e_s), &bad, Body::None, 401, "unauthorized");
        add(r, M::POST, &jr(ap, &e_s), &tc, Body::None, 403, "not_member");
        // One's own request.
        add(r, M::POST, &jr(ap, &e_s), &te, Body::None, 403, "not_member");
        add(r, M::POST, &jr(g, &c_s), &tb, Body::None, 403, "not_allowed");
        for id in no_groups { add(r, M::POST, &jr(id, &e_s), &ta, Body::None, 404, "group_not_found"); }
        for id in bad_ids { add(r, M::POST, &jr(id, &e_s), &ta, Body::None, 404, "resource_not_found"); }
        add(r, M::POST, &jr(ap, "eve"), &ta, Body::None, 404, "resource_not_found");
        // Nobody asked: a stranger, a member, the owner herself; eve asked another group.
        add(r, M::POST, &jr(ap, &c_s), &ta, Body::None, 404, "join_request_not_found");
        add(r, M::POST, &jr(g, &b_s), &ta, Body::None, 404, "join_request_not_found");
        add(r, M::POST, &jr(ap, &a_s), &ta, Body::None, 404, "join_request_not_found");
        add(r, M::POST, &jr(g, &e_s), &td, Body::None, 404, "join_request_not_found");
        let unknown_user = if verb == "accept" { "user_not_found" } else { "join_request_not_found" };
        add(r, M::POST, &jr(ap, "999999"), &ta, Body::None, 404, unknown_user);
    }

    // A raw picture body of at most 2 MiB, like the user's.
    let r = Some(("PUT", "/api/v1/groups/{id}/avatar"));
    add(r, M::PUT, &gp(g, "/avatar"), &none, pic(png()), 401, "unauthorized");
    add(r, M::PUT, &gp(g, "/avatar"), &bad, pic(png()), 401, "unauthorized");
    add(r, M::PUT, &gp(g, "/avatar"), &tc, pic(png()), 403, "not_member");
    add(r, M::PUT, &gp(g, "/avatar"), &tb, pic(png()), 403, "not_allowed");
    for id in no_groups { add(r, M::PUT, &gp(id, "/avatar"), &ta, pic(png()), 404, "group_not_found"); }
    for id in bad_ids { add(r, M::PUT, &gp(id, "/avatar"), &ta, pic(png()), 404, "resource_not_found"); }
    add(r, M::PUT, &gp(g, "/avatar"), &ta, Body::None, 422, "invalid_image");
    add(r, M::PUT, &gp(g, "/avatar"), &ta, pic(b"GIF89a, but nothing after".to_vec()), 422, "invalid_image");
    add(r, M::PUT, &gp(g, "/avatar"), &td, pic(png_bomb(&png())), 422, "invalid_image");
    add(r, M::PUT, &gp(g, "/avatar"), &ta, pic(vec![0x89; 100 * 1024]), 422, "invalid_image");
    add(r, M::PUT, &gp(g, "/avatar"), &ta, pic(vec![0x89; PICTURE_LIMIT + 1]), 413, "payload_too_large");
    add(r, M::PUT, &gp(g, "/avatar"), &ta, pic(vec![0x89; 3 * 1024 * 1024]), 413, "payload_too_large");

    // The generated picture, public like the user's.
    let r = Some(("GET", "/api/v1/groups/{id}/avatar"));
    add(r, M::GET, &gp(g, "/avatar"), &none, Body::None, 401, "unauthorized");
    for id in no_groups { add(r, M::GET, &gp(id, "/avatar"), &ta, Body::None, 404, "group_not_found"); }
    for id in bad_ids { add(r, M::GET, &gp(id, "/avatar"), &ta, Body::None, 404, "resource_not_found"); }

    let r = Some(("GET", "/api/v1/me/groups"));
    add(r, M::GET, "/api/v1/me/groups", &none, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/me/groups", &bad, Body::None, 401, "unauthorized");
    add(r, M::GET, "/api/v1/me/groups", &Auth::Header("Bearer "), Body::None, 401, "unauthorized");

    // Unknown routes.
    for path in ["/api/v1/nope", "/api/v1/me/", "/api/v2/me", "/api/v1/conversations/x/y/z", "/api/v1/friend-requests/1/maybe",
                 "/api/v1/groups/1/nope", "/api/v1/groups/1/members/2/role", "/api/v1/groups/1/requests/2/maybe", "/api/v1/me/groups/1", "/avatars/a/b.png"] {
        add(None, M::GET, path, &ta, Body::None, 404, "route_not_found");
    }
    add(None, M::POST, "/api/v1/nope", &none, j(json!({})), 404, "route_not_found");

    // A wrong method on every route.
    let wrong: &[(&'static str, &'static str, Method, &str)] = &[
        ("POST", "/api/v1/auth/register", M::GET, "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login", M::PUT, "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout", M::GET, "/api/v1/auth/logout"),
        ("GET", "/api/v1/me", M::DELETE, "/api/v1/me"),
        ("GET", "/api/v1/events", M::POST, "/api/v1/events"),
        ("POST", "/api/v1/messages", M::GET, "/api/v1/messages"),
        ("GET", "/api/v1/conversations", M::POST, "/api/v1/conversations"),
        ("GET", "/api/v1/conversations/{cid}/messages", M::PUT, "/api/v1/conversations/d1-2/messages"),
        ("POST", "/api/v1/conversations/{cid}/read", M::GET, "/api/v1/conversations/d1-2/read"),
        ("GET", "/api/v1/users", M::POST, "/api/v1/users"),
        ("GET", "/api/v1/users/{id}/avatar", M::DELETE, "/api/v1/users/1/avatar"),
        ("GET", "/api/v1/friends", M::POST, "/api/v1/friends"),
        ("DELETE", "/api/v1/friends/{user_id}", M::GET, "/api/v1/friends/1"),
        ("POST", "/api/v1/friend-requests", M::DELETE, "/api/v1/friend-requests"),
        ("GET", "/api/v1/friend-requests", M::PUT, "/api/v1/friend-requests"),
        ("POST", "/api/v1/friend-requests/{id}/accept", M::GET, "/api/v1/friend-requests/1/accept"),
        ("POST", "/api/v1/friend-requests/{id}/decline", M::DELETE, "/api/v1/friend-requests/1/decline"),
        ("PATCH", "/api/v1/me", M::PUT, "/api/v1/me"),
        ("PUT", "/api/v1/me/avatar", M::GET, "/api/v1/me/avatar"),
        ("PUT", "/api/v1/me/settings", M::GET, "/api/v1/me/settings"),
        ("GET", "/avatars/{name}", M::POST, "/avatars/x.png"),
        ("DELETE", "/api/v1/conversations/{cid}/messages/{seq}", M::GET, "/api/v1/conversations/d1-2/messages/1"),
        ("POST", "/api/v1/groups", M::DELETE, "/api/v1/groups"),
        ("GET", "/api/v1/groups", M::PUT, "/api/v1/groups"),
        ("GET", "/api/v1/groups/{id}", M::POST, "/api/v1/groups/1"),
        ("PATCH", "/api/v1/groups/{id}", M::PUT, "/api/v1/groups/1"),
        ("DELETE", "/api/v1/groups/{id}", M::POST, "/api/v1/groups/1"),
        ("GET", "/api/v1/groups/{id}/members", M::PUT, "/api/v1/groups/1/members"),
        ("POST", "/api/v1/groups/{id}/members", M::DELETE, "/api/v1/groups/1/members"),
        ("DELETE", "/api/v1/groups/{id}/members/{user_id}", M::GET, "/api/v1/groups/1/members/2"),
        ("PATCH", "/api/v1/groups/{id}/members/{user_id}", M::POST, "/api/v1/groups/1/members/2"),
        ("POST", "/api/v1/groups/{id}/join", M::GET, "/api/v1/groups/1/join"),
        ("POST", "/api/v1/groups/{id}/leave", M::DELETE, "/api/v1/groups/1/leave"),
        ("POST", "/api/v1/groups/{id}/transfer", M::PUT, "/api/v1/groups/1/transfer"),
        ("GET", "/api/v1/groups/{id}/requests", M::POST, "/api/v1/groups/1/requests"),
        ("POST", "/api/v1/groups/{id}/requests/{user_id}/accept", M::GET, "/api/v1/groups/1/requests/2/accept"),
        ("POST", "/api/v1/groups/{id}/requests/{user_id}/decline", M::DELETE, "/api/v1/groups/1/requests/2/decline"),
        ("PUT", "/api/v1/groups/{id}/avatar", M::POST, "/api/v1/groups/1/avatar"),
        ("GET", "/api/v1/groups/{id}/avatar", M::DELETE, "/api/v1/groups/1/avatar"),
        ("GET", "/api/v1/me/groups", M::POST, "/api/v1/me/groups"),
        ("GET", "/api/openapi.json", M::POST, "/api/openapi.json"),
        ("GET", "/health", M::POST, "/health"),
    ];
    for (route_method, route_path, method, path) in wrong {
        add(Some((*route_method, *route_path)), method.clone(), path, &ta, Body::None, 405, "method_not_allowed");
    }
    cases
}

/// Creates a group owned by `owner`; answers its id.
async fn new_group(app: &TestApp, owner: &Device, name: &str, policy: &str) -> i64 {
    let (status, body) = app.post(&owner.token, "/api/v1/groups", json!({"name": name, "join_policy": policy})).await;
    assert_eq!(status, StatusCode::CREATED, "create group: {body}");
    body["group"]["id"].as_i64().expect("a group id")
}

/// A request that must answer `status`; answers the body.
async fn must(app: &TestApp, method: Method, path: &str, dev: &Device, body: Body, status: u16) -> Value {
    let (got, answer) = app.request(method.clone(), path, Some(&dev.token), body).await;
    assert_eq!(got.as_u16(), status, "{method} {path}: {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_route_answers_the_right_status_and_error_code() {
    // No recall window, so a sender's own recall is always too late here.
    let app = spawn_app_with(|c| c.recall_window = Duration::ZERO).await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let c = app.user("carol").await;
    let d = app.user("dave").await;
    let e = app.user("eve").await;
    let ab = app.befriend(&a, &b).await;
    app.send_ok(&a, b.user_id, "m1", "hello").await;
    let (status, body) = app.post(&a.token, "/api/v1/friend-requests", json!({"user_id": d.user_id})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ad = body["request"]["id"].as_i64().unwrap();

    let g = new_group(&app, &a, "Bad Input Club", "open").await;
    for who in [&b, &d] {
        must(&app, Method::POST, &format!("/api/v1/groups/{g}/join"), who, Body::None, 200).await;
    }
    let role = Body::Json(json!({"role": "admin"}));
    must(&app, Method::PATCH, &format!("/api/v1/groups/{g}/members/{}", d.user_id), &a, role, 204).await;
    let to_g = json!({"to": {"group": g}, "client_msg_id": "g1", "body": "hello group"});
    let sent = must(&app, Method::POST, "/api/v1/messages", &a, Body::Json(to_g), 201).await;
    let gc = sent["message"]["conversation_id"].as_str().expect("a conversation id").to_owned();
    let ap = new_group(&app, &a, "Approval Only", "approval").await;
    must(&app, Method::POST, &format!("/api/v1/groups/{ap}/join"), &e, Body::None, 202).await;
    let gone = new_group(&app, &a, "Gone Already", "open").await;
    must(&app, Method::DELETE, &format!("/api/v1/groups/{gone}"), &a, Body::None, 204).await;
    let (_, before) = app.get(&a.token, "/api/v1/me").await;

    let world = World { a, b, c, d, e, ab, ad, g, gc, ap, gone };
    let cases = cases(&world);
    let World { a, b, d, e, ab, g, gc, ap, .. } = world;

    // Every route of the server is exercised.
    let covered: HashSet<(&str, &str)> = cases.iter().filter_map(|c| c.route).collect();
    let missed: Vec<_> = ROUTES.iter().filter(|r| !covered.contains(*r)).collect();
    assert!(missed.is_empty(), "routes without bad-input cases: {missed:?}");

    let mut failures = Vec::new();
    for case in &cases {
        let mut req = app.client.request(case.method.clone(), app.url(&case.path));
        req = match &case.auth {
            Auth::No => req,
            Auth::Token(t) => req.bearer_auth(t),
            Auth::Header(h) => req.header("authorization", *h),
        };
        req = match &case.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Raw(s) => req.header("content-type", "application/json").body(s.clone()),
            Body::Bytes(b, content_type) => req.header("content-type", *content_type).body(b.clone()),
        };
        let label = format!(
            "{} {} (auth {:?}, body {})",
            case.method,
            case.path,
            match &case.auth {
                Auth::No => "none".to_owned(),
                Auth::Token(t) if t.starts_with("not-a-token") => "bad token".to_owned(),
                Auth::Token(_) => "token".to_owned(),
                Auth::Header(h) => h.to_string(),
            },
            match &case.body {
                Body::None => "none".to_owned(),
                Body::Json(v) => truncate(&v.to_string()),
                Body::Raw(s) => truncate(s),
                Body::Bytes(b, content_type) => format!("{} bytes of {content_type}", b.len()),
            }
        );
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{label}: no answer: {e}"));
                continue;
            }
        };
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let (status, body) = read(response).await;
        if status.is_server_error() {
            failures.push(format!("{label}: a {status} for bad input: {body}"));
            continue;
        }
        let code = match error_shape(&body) {
            Ok(code) => code,
            Err(why) => {
                failures.push(format!("{label}: {status} without the error shape ({why}): {body}"));
                continue;
            }
        };
        if !content_type.starts_with("application/json") {
            failures.push(format!("{label}: error with content-type {content_type:?}"));
        }
        if status.as_u16() != case.status || code != case.code {
            failures.push(format!(
                "{label}: want {} {}, got {} {}: {}",
                case.status,
                case.code,
                status.as_u16(),
                code,
                body["error"]["message"]
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // The valid state survived all that: the pending request, the friendship, the messages.
    let (_, lists) = app.get(&d.token, "/api/v1/friend-requests").await;
    assert_eq!(lists["incoming"][0]["id"], json!(ad), "{lists}");
    let direct = app.history(&b, &ab, "").await;
    assert_eq!(seqs(&direct), [1]);
    assert_eq!(direct[0]["body"], "hello", "not recalled: {}", direct[0]);
    let group = app.history(&b, &gc, "").await;
    assert_eq!(seqs(&group), [1]);
    assert_eq!(group[0]["body"], "hello group", "not recalled: {}", group[0]);
    // The groups: same name, owner, policy, members and roles, eve's request still pending;
    // alice's profile and settings unchanged.
    let (_, shown) = app.get(&a.token, &format!("/api/v1/groups/{g}")).await;
    assert_eq!(shown["group"]["name"], "Bad Input Club", "{shown}");
    assert_eq!(shown["group"]["owner_id"], json!(a.user_id), "{shown}");
    assert_eq!(shown["group"]["join_policy"], "open", "{shown}");
    assert_eq!(shown["group"]["avatar_url"], format!("/api/v1/groups/{g}/avatar"), "no picture: {shown}");
    let (_, members) = app.get(&a.token, &format!("/api/v1/groups/{g}/members")).await;
    let roles: Vec<(i64, String)> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["user"]["id"].as_i64().unwrap(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        roles,
        [(a.user_id, "owner".to_owned()), (d.user_id, "admin".to_owned()), (b.user_id, "member".to_owned())],
        "{members}"
    );
    let (_, mine) = app.get(&a.token, "/api/v1/me/groups").await;
    let names: Vec<&str> = mine["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Approval Only", "Bad Input Club"], "{mine}");
    let (_, requests) = app.get(&a.token, &format!("/api/v1/groups/{ap}/requests")).await;
    assert_eq!(requests["requests"].as_array().map(Vec::len), Some(1), "{requests}");
    assert_eq!(requests["requests"][0]["user"]["id"], json!(e.user_id), "{requests}");
    let (_, after) = app.get(&a.token, "/api/v1/me").await;
    for field in ["display_name", "avatar_url"] {
        assert_eq!(after["user"][field], before["user"][field], "alice's {field}: {after}");
    }
    assert_eq!(after["settings"], before["settings"], "alice's settings");
}

fn truncate(s: &str) -> String {
    if s.len() > 60 {
        format!("{}… ({} bytes)", s.chars().take(60).collect::<String>(), s.len())
    } else {
        s.to_owned()
    }
}

/// `/a/{x}/b` → `/a/{}/b`, so parameter names do not matter.
fn shape(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "{}" } else { seg }).collect::<Vec<_>>().join("/")
}

async fn openapi_routes(app: &TestApp) -> HashSet<(String, String)> {
    let response = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    let (status, doc) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].is_string(), "an OpenAPI document: {doc}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut routes = HashSet::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), shape(path)));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_the_server_serves() {
    let app = spawn_app().await;
    let listed = openapi_routes(&app).await;
    let missing: Vec<_> = ROUTES
        .iter()
        .filter(|(_, path)| path.starts_with("/api/v1/"))
        .filter(|(m, p)| !listed.contains(&(m.to_string(), shape(p))))
        .collect();
    assert!(missing.is_empty(), "served but not in the OpenAPI document: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_of_the_contract() {
    // Every call in API.md, the contract the document must describe.
    const CONTRACT: &[(&str, &str)] = &[
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout"),
        ("GET", "/api/v1/me"),
        ("PATCH", "/api/v1/me"),
        ("PUT", "/api/v1/me/avatar"),
        ("PUT", "/api/v1/me/settings"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/conversations/{cid}/messages"),
        ("POST", "/api/v1/conversations/{cid}/read"),
        ("DELETE", "/api/v1/conversations/{cid}/messages/{seq}"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/friends"),
        ("POST", "/api/v1/friend-requests"),
        ("GET", "/api/v1/friend-requests"),
        ("POST", "/api/v1/friend-requests/{id}/accept"),
        ("POST", "/api/v1/friend-requests/{id}/decline"),
        ("DELETE", "/api/v1/friends/{user_id}"),
        ("POST", "/api/v1/groups"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/groups/{id}"),
        ("GET", "/api/v1/groups/{id}/members"),
        ("POST", "/api/v1/groups/{id}/join"),
        ("POST", "/api/v1/groups/{id}/leave"),
        ("POST", "/api/v1/groups/{id}/members"),
        ("DELETE", "/api/v1/groups/{id}/members/{user_id}"),
        ("GET", "/api/v1/me/groups"),
    ];
    let app = spawn_app().await;
    let listed = openapi_routes(&app).await;
    let missing: Vec<_> = CONTRACT.iter().filter(|(m, p)| !listed.contains(&(m.to_string(), shape(p)))).collect();
    assert!(missing.is_empty(), "contract routes missing from the OpenAPI document: {missing:?}");
}
