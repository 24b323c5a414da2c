//! Generated avatars: the initials on a colour derived from the user id, as SVG, for users
//! who uploaded no picture.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::error::{ApiResult, ErrorBody};
use super::extract::Path;
use crate::chat::{Auth, Chat};

/// The generated-avatar route (signed-in users; a page's `<img>` carries the cookie).
pub fn router() -> Router<Chat> {
    Router::new().route("/api/v1/users/{id}/avatar", get(avatar))
}

/// # `GET /api/v1/users/{id}/avatar`
#[utoipa::path(get, path = "/api/v1/users/{id}/avatar", tag = "contacts", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, content_type = "image/svg+xml", description = "SVG picture"), (status = 404, body = ErrorBody)))]
pub async fn avatar(State(chat): State<Chat>, _auth: Auth, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    let user = chat.public_user(id).await?;
    let svg = initials_svg(id, &user.display_name);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, max-age=300")], svg))
}

/// An SVG with up to two initials on a colour picked from the id.
pub fn initials_svg(id: i64, name: &str) -> String {
    const COLOURS: [&str; 8] = ["#e57373", "#f06292", "#ba68c8", "#7986cb", "#4fc3f7", "#4db6ac", "#aed581", "#ffb74d"];
    let initials: String =
        name.split_whitespace().filter_map(|w| w.chars().next()).take(2).flat_map(char::to_uppercase).collect();
    let text = escape(if initials.is_empty() { "?" } else { &initials });
    let colour = COLOURS[id.rem_euclid(COLOURS.len() as i64) as usize];
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"256\" height=\"256\" viewBox=\"0 0 256 256\">\
         <rect width=\"256\" height=\"256\" fill=\"{colour}\"/>\
         <text x=\"128\" y=\"128\" dy=\".35em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"110\" fill=\"#fff\">{text}</text></svg>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_are_escaped_and_colour_follows_the_id() {
        let svg = initials_svg(3, "<b> x");
        assert!(svg.contains("&lt;X"), "{svg}");
        assert!(!svg.contains("<b>"));
        assert_eq!(initials_svg(3, "a"), initials_svg(11, "a"));
        assert!(initials_svg(1, "").contains(">?<"));
    }
}
