//! Integration tests of the HTTP API: each test starts a real server on a free port with a
//! fresh data directory and talks to it over HTTP only, as a client would.

mod accounts;
mod bad_input;
mod connections;
mod contacts;
mod events;
mod groups;
mod helpers;
mod messages;
mod profile;
