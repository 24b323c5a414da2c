//! # webim — a real-time web messenger over HTTP long polling
//!
//! # Layout
//! - [`config`]: one typed configuration from flags, `WEBIM_*` variables and a TOML file.
//! - [`app`]: builds and runs the server (listener, graceful shutdown).
//! - [`http`]: routers, extractors and the one error mapping; thin handlers, no SQL.
//! - [`chat`]: the rules — accounts, contacts, sending, the message connection, receipts,
//!   presence, retention. No HTTP.
//! - [`bus`]: who receives each committed event, and waking their held polls.
//! - [`store`]: the durable state behind the [`store::Store`] trait; SQLite embedded.
//! - [`model`]: the shapes every layer shares, as the API contract shows them.
//! - [`fast_map`]: hash maps with a fast hash, for keys the server assigns.
//!
//! Dependencies point one way: `http → chat → store/bus → model` (and `fast_map`).

pub mod app;
pub mod bus;
pub mod chat;
pub mod config;
pub mod fast_map;
pub mod http;
pub mod media;
pub mod model;
pub mod one_send;
pub mod store;
