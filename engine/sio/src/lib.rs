//! `chatgate-sio`: chatgate's Socket.IO v5 server, on top of the Engine.IO
//! server of [`chatgate_eio`] (re-exported as [`eio`]).
//!
//! The dependency runs one way: this crate implements the engine's
//! [`EngineHandler`](chatgate_eio::EngineHandler) ([`Client`]) and the
//! engine knows nothing of Socket.IO.
//!
//! # Layout
//!
//! * `packet`: the `socket.io-parser` text format.
//! * `client`: [`Client`], the engine handler: per engine connection it
//!   decodes packets, reassembles binary ones, routes them to namespace
//!   sockets, runs CONNECT and keeps the connect timeout (the engine's
//!   generic deadline).
//! * `socket`, `namespace`, `broadcast`: the public handles ([`Socket`],
//!   [`Namespace`], [`BroadcastOperator`]).
//! * `adapter`: the [`Adapter`] trait (registry, rooms, broadcast) and
//!   [`LocalAdapter`]; a cluster adapter plugs in here.
//! * `handler`: what the application implements ([`NamespaceHandler`])
//!   and what it receives ([`Event`], [`AckSender`], [`DisconnectReason`]).
//! * `io`: [`Io`], the server object, and [`IoConfig`].
//! * `error`: emit, ack and payload errors.
//!
//! # Memory and latency
//!
//! A socket is one `Arc` holding its id, namespace and engine connection;
//! its per-connection decoder state lives inline in the engine connection
//! ([`ConnState`]). A broadcast encodes its packet once; recipients share
//! the bytes and each delivery is one queue push plus one wake-up.

mod adapter;
mod broadcast;
mod client;
mod error;
mod handler;
mod io;
mod namespace;
pub mod packet;
mod socket;

pub use chatgate_eio as eio;
pub use chatgate_eio::{
    AllowedOrigins, BoxFuture, ConnectionRateLimit, EngineConfig, Transport, random_id,
};

pub use adapter::{Adapter, BroadcastOptions, BroadcastPacket, LocalAdapter};
pub use broadcast::BroadcastOperator;
pub use client::{Client, ConnState};
pub use error::{AckError, DecodeError, EmitError, PayloadError};
pub use handler::{AckSender, ConnectError, DisconnectReason, Event, NamespaceHandler};
pub use io::{Io, IoConfig};
pub use namespace::{Namespace, Room};
pub use socket::Socket;
