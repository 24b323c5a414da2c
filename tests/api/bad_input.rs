//! Bad input on every route: each case names its status and error code, every error has
//! the contract's shape, and nothing is a 500. Also: the OpenAPI document lists every route.

use std::collections::HashSet;

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

/// What the cases refer to: users, a friendship with a message, a pending request.
struct World {
    /// alice: friends with bob, has asked dave.
    a: Device,
    /// bob: alice's friend.
    b: Device,
    /// carol: a stranger to everyone.
    c: Device,
    /// dave: asked by alice.
    d: Device,
    /// The conversation of alice and bob.
    ab: String,
    /// alice's pending request to dave.
    ad: i64,
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
    let (b_id, c_id, a_id, d_id) = (w.b.user_id, w.c.user_id, w.a.user_id, w.d.user_id);
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
    add(r, M::GET, "/api/v1/users/999999/avatar", &none, Body::None, 404, "user_not_found");
    add(r, M::GET, "/api/v1/users/-1/avatar", &none, Body::None, 404, "user_not_found");
    add(r, M::GET, "/api/v1/users/abc/avatar", &none, Body::None, 404, "resource_not_found");

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

    // Unknown routes.
    for path in ["/api/v1/nope", "/api/v1/me/", "/api/v2/me", "/api/v1/conversations/x/y/z", "/api/v1/friend-requests/1/maybe"] {
        add(None, M::GET, path, &ta, Body::None, 404, "route_not_found");
    }
    add(None, M::POST, "/api/v1/nope", &none, j(json!({})), 404, "route_not_found");

    // A wrong method on every route.
    let wrong: [(&'static str, &'static str, Method, &str); 19] = [
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
        ("GET", "/api/openapi.json", M::POST, "/api/openapi.json"),
        ("GET", "/health", M::POST, "/health"),
    ];
    for (route_method, route_path, method, path) in wrong {
        add(Some((route_method, route_path)), method, path, &ta, Body::None, 405, "method_not_allowed");
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_route_answers_the_right_status_and_error_code() {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let c = app.user("carol").await;
    let d = app.user("dave").await;
    let ab = app.befriend(&a, &b).await;
    app.send_ok(&a, b.user_id, "m1", "hello").await;
    let (status, body) = app.post(&a.token, "/api/v1/friend-requests", json!({"user_id": d.user_id})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ad = body["request"]["id"].as_i64().unwrap();
    let world = World { a, b, c, d, ab, ad };
    let cases = cases(&world);
    let World { b, d, ab, .. } = world;

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

    // The valid state survived all that: the pending request, the friendship, the message.
    let (_, lists) = app.get(&d.token, "/api/v1/friend-requests").await;
    assert_eq!(lists["incoming"][0]["id"], json!(ad), "{lists}");
    assert_eq!(seqs(&app.history(&b, &ab, "").await), [1]);
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
    // BUG: (not implemented yet) the server has no profile, avatar upload, settings,
    // recall or group routes, so neither serves nor documents them.
    let missing: Vec<_> = CONTRACT.iter().filter(|(m, p)| !listed.contains(&(m.to_string(), shape(p)))).collect();
    assert!(missing.is_empty(), "contract routes missing from the OpenAPI document: {missing:?}");
}
