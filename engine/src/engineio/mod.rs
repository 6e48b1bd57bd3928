//! Engine.IO v4: packets, sessions and the two transports.

pub(crate) mod conn;
pub mod packet;
pub mod payload;
pub(crate) mod polling;
pub(crate) mod websocket;
