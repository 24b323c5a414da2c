//! The OpenAPI document, generated from the handlers' annotations.

use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, avatars, contacts, events, groups, messages, profile};
use crate::chat::Chat;

#[derive(OpenApi)]
#[openapi(
    info(title = "webim", description = "Real-time web messaging over HTTP long polling. See API.md for the contract."),
    paths(
        accounts::register, accounts::login, accounts::logout, accounts::me,
        events::poll,
        messages::send, messages::conversations, messages::history, messages::read,
        contacts::search, contacts::friends, contacts::remove, contacts::request, contacts::requests,
        contacts::accept, contacts::decline, avatars::avatar, messages::recall,
        profile::update, profile::avatar, profile::settings, profile::picture,
        groups::create, groups::search, groups::show, groups::update, groups::dissolve, groups::members, groups::add,
        groups::remove, groups::set_role, groups::join, groups::leave, groups::transfer, groups::requests, groups::accept,
        groups::decline, groups::avatar, groups::generated_avatar, groups::mine,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi().to_json().expect("the OpenAPI document serializes")
}

/// `GET /api/openapi.json`.
pub fn router() -> Router<Chat> {
    let doc = document();
    Router::new()
        .route("/api/openapi.json", get(move || async move { super::rendered::json(axum::http::StatusCode::OK, doc) }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_names_every_contract_route() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/events",
            "/api/v1/messages",
            "/api/v1/friend-requests/{id}/accept",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        assert!(doc["components"]["schemas"]["Message"].is_object());
    }
}
