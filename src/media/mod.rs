//! Media processing: turning uploaded pictures into safe, uniform files. No HTTP, no storage.

pub mod avatar;
