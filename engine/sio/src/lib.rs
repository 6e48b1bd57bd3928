//! `chatgate-sio`: chatgate's Socket.IO v5 server, on top of the Engine.IO
//! server of [`chatgate_eio`] (re-exported as [`eio`]).
//!
//! The dependency runs one way: this crate implements the engine's
//! [`EngineHandler`](chatgate_eio::EngineHandler) ([`Client`]) and the
//! engine knows nothing of Socket.IO.
//!
//! # Layout
//!
//! From the bottom up (each file imports only files listed before it):
//!
//! * `error`, `packet`, `rooms`: errors, the `socket.io-parser` text format,
//!   room names and socket selections ([`BroadcastOptions`]).
//! * `handler`: plain values of the application interface
//!   ([`ConnectError`], [`DisconnectReason`]).
//! * `encode`: outbound packets encoded once ([`BroadcastPacket`]).
//! * `socket`: [`Socket`], [`Namespace`], the traits that take sockets
//!   ([`NamespaceHandler`], [`Adapter`]), the values handed to handlers
//!   ([`Event`], [`AckSender`]) and the per-connection state ([`Client`],
//!   [`ConnState`]): types that refer to one another, hence one file.
//! * `broadcast`: [`BroadcastOperator`] (and the `to`/`all`/`broadcast`
//!   methods of sockets and namespaces that make one).
//! * `adapter`: [`LocalAdapter`], the single-node [`Adapter`]; a cluster
//!   adapter wraps it.
//! * `client`: the engine handler: per engine connection it decodes
//!   packets, reassembles binary ones, routes them to namespace sockets,
//!   runs CONNECT and keeps the connect timeout (the engine's generic
//!   deadline).
//! * `io`: [`Io`], the server object, and [`IoConfig`].
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
mod encode;
mod error;
mod handler;
mod io;
pub mod packet;
mod rooms;
mod socket;

pub use chatgate_eio as eio;
pub use chatgate_eio::{
    AllowedOrigins, BoxFuture, ConnectionRateLimit, EngineConfig, Transport, random_id,
};

pub use adapter::LocalAdapter;
pub use broadcast::BroadcastOperator;
pub use encode::BroadcastPacket;
pub use error::{AckError, DecodeError, EmitError, PayloadError};
pub use handler::{ConnectError, DisconnectReason};
pub use io::{Io, IoConfig};
pub use rooms::{BroadcastOptions, Room};
pub use socket::{
    AckSender, Adapter, Client, ConnState, Event, Namespace, NamespaceHandler, Socket,
};
