//! `chatgate-engine`: chatgate's own Engine.IO v4 + Socket.IO v5 server.
//!
//! # Layout
//!
//! * [`engineio`]: the Engine.IO layer.
//!   * `packet` / `payload`: wire encoding (packets, `\x1e` polling batches).
//!   * `conn`: one session. Owns the bounded outbound queue of pre-encoded
//!     frames, heartbeat timers and close state; transports only drain it.
//!   * `websocket`: RFC 6455 handshake via hyper's upgrade, upgrade probe,
//!     and the single task per WebSocket connection (reader + writer +
//!     heartbeat futures joined in one task).
//!   * `polling`: handshake, long-poll GET, POST.
//! * `socketio`: the Socket.IO layer.
//!   * `packet`: the `socket.io-parser` text format.
//!   * `client`: per engine connection: decoding, binary reassembly,
//!     namespace routing, CONNECT.
//!   * `socket`, `namespace`, `broadcast`: the public handles.
//!   * `adapter`: the [`Adapter`] trait (registry, rooms, broadcast) and
//!     [`LocalAdapter`]; a Redis adapter plugs in here.
//! * `handler`: what the application implements ([`NamespaceHandler`],
//!   [`RawHandler`]) and what it receives.
//! * `router`: the axum entry point (query validation, CORS, 400 bodies,
//!   the per-IP handshake rate limit of `ip_limit`).
//! * `io`: [`Io`], shared state and the connection registry.
//!
//! # Memory and latency
//!
//! An idle WebSocket connection holds one task, a small tungstenite read
//! buffer ([`EngineConfig::ws_read_buffer_size`]), an empty queue
//! (`VecDeque` without allocation) and two `Notify`s: no channels. A
//! broadcast encodes its packet once; recipients share the bytes and each
//! delivery is one queue push plus one wake-up of the connection task.
//! Serve the router with TCP_NODELAY: the writer already batches.
//!
//! # Metrics
//!
//! `chatgate_engine_connections` (gauge), `chatgate_engine_connections_opened_total`,
//! `chatgate_engine_connections_closed_total{reason}`,
//! `chatgate_engine_slow_consumer_disconnects_total`,
//! `chatgate_engine_packets_sent_total`.

mod config;
pub mod engineio;
mod error;
mod handler;
mod io;
mod ip_limit;
mod router;
mod socketio;

pub use config::{AllowedOrigins, ConnectionRateLimit, EngineConfig};
pub use error::{AckError, DecodeError, EmitError, PayloadError};
pub use handler::{
    AckSender, BoxFuture, ConnectError, DisconnectReason, Event, NamespaceHandler, RawConn,
    RawHandler, RawMessage, Transport,
};
pub use io::{Io, random_id};
pub use socketio::adapter::{Adapter, BroadcastOptions, BroadcastPacket, LocalAdapter};
pub use socketio::broadcast::BroadcastOperator;
pub use socketio::namespace::{Namespace, Room};
pub use socketio::packet as socketio_packet;
pub use socketio::socket::Socket;
