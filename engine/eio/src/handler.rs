//! The values the engine hands to its [`EngineHandler`](crate::EngineHandler).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed, sendable future (what handler methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (the Engine.IO packet type removed).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the transport (close packet, WebSocket close, EOF,
    /// an aborted long poll).
    TransportClose,
    /// Transport failure or malformed packet.
    TransportError,
    /// No pong within `ping_timeout`.
    PingTimeout,
    /// The outbound queue bound was hit.
    SlowConsumer,
    /// [`Engine::shutdown`](crate::Engine::shutdown).
    ServerShutdown,
    /// The layer above closed it ([`Conn::close`](crate::Conn::close), [`Conn::abort`](crate::Conn::abort)).
    ServerClose,
    /// The deadline set with [`Conn::set_deadline`](crate::Conn::set_deadline) passed.
    DeadlineExpired,
}

impl CloseReason {
    /// A short label (also the metrics label).
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::ServerClose => "server close",
            CloseReason::DeadlineExpired => "deadline expired",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Current transport of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}
