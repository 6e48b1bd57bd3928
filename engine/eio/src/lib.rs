//! `chatgate-eio`: chatgate's Engine.IO v4 server.
//!
//! Engine.IO is the transport under Socket.IO: sessions with a handshake,
//! WebSocket and HTTP long-polling, the upgrade from one to the other,
//! heartbeats, and text or binary messages. This crate knows nothing of
//! what travels in those messages: the layer above implements
//! [`EngineHandler`] and sends through [`Conn`].
//!
//! # Layout
//!
//! From the bottom up (each file imports only files listed before it):
//!
//! * `error`, `id`, `config`, `ip_limit`: errors, random session ids,
//!   settings, the per-IP handshake rate limit.
//! * `packet` / `payload`: wire encoding (packets, `\x1e` polling batches).
//! * `frame`: [`Frame`], a pre-encoded outbound packet shared by reference,
//!   and [`MessageText`], the buffer a text message is written into.
//! * `handler`: the values handed to the layer above ([`Message`],
//!   [`CloseReason`], [`Transport`]).
//! * `conn`: [`Conn`], one session, with the [`EngineHandler`] trait that
//!   serves it and the registry of sessions (they refer to one another).
//!   A session owns the bounded outbound queue of frames, heartbeat
//!   timers, a generic deadline, close state and the layer above's
//!   per-connection data; transports only drain it.
//! * `http`: Engine.IO's HTTP error answers.
//! * `websocket`: RFC 6455 handshake via hyper's upgrade, upgrade probe,
//!   and the single task per WebSocket connection (reader + writer +
//!   heartbeat futures joined in one task).
//! * `polling`: handshake, long-poll GET, POST.
//! * `router`: the axum entry point (query validation, CORS, dispatch).
//! * `engine`: [`Engine`], the server object.
//!
//! # Memory and latency
//!
//! An idle WebSocket connection holds one task, a small tungstenite read
//! buffer ([`EngineConfig::ws_read_buffer_size`]), an empty queue
//! (`VecDeque` without allocation) and two `Notify`s: no channels. Sending
//! is one queue push plus one wake-up of the connection task; the writer
//! drains the whole queue into one flush. Serve the router with
//! TCP_NODELAY: the writer already batches.
//!
//! # Metrics
//!
//! `chatgate_engine_connections` (gauge), `chatgate_engine_connections_opened_total`,
//! `chatgate_engine_connections_closed_total{reason}`,
//! `chatgate_engine_slow_consumer_disconnects_total`,
//! `chatgate_engine_packets_sent_total`,
//! `chatgate_engine_delivery_latency_seconds`,
//! `chatgate_engine_handshakes_rate_limited_total`.

mod config;
mod conn;
mod engine;
mod error;
mod frame;
mod handler;
mod http;
mod id;
mod ip_limit;
pub mod packet;
pub mod payload;
mod polling;
mod router;
mod websocket;

pub use config::{AllowedOrigins, ConnectionRateLimit, EngineConfig};
pub use conn::{Conn, EngineHandler};
pub use engine::Engine;
pub use error::{DecodeError, SendError};
pub use frame::{Frame, MessageText};
pub use handler::{BoxFuture, CloseReason, Message, Transport};
pub use id::random_id;
