//! Wake-ups: who receives a committed event, and waking their held polls.
//!
//! [`hub::Hub`] is the in-process router every node runs; a cross-node bus feeds other
//! nodes' commits into it.

pub mod hub;

pub use hub::Hub;
