//! Socket.IO v5 on top of the engine.

pub(crate) mod adapter;
pub(crate) mod broadcast;
pub(crate) mod client;
pub(crate) mod namespace;
pub mod packet;
pub(crate) mod socket;
