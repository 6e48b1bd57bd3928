//! Plain values of the application interface: a refused CONNECT
//! ([`ConnectError`]) and why a socket went away ([`DisconnectReason`]).

use chatgate_eio::CloseReason;
use serde_json::Value;

/// A refused CONNECT: sent to the client as CONNECT_ERROR `{message, data}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// `message` of the client's `connect_error` Error.
    pub message: String,
    /// Optional `data` of the client's `connect_error` Error.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message and no data.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }
}

/// Why a socket went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent a Socket.IO DISCONNECT.
    ClientNamespaceDisconnect,
    /// The server disconnected the socket ([`Socket::disconnect`](crate::Socket::disconnect)).
    ServerNamespaceDisconnect,
    /// The client closed the transport (close packet, WebSocket close, EOF).
    TransportClose,
    /// Transport failure or malformed packet.
    TransportError,
    /// No pong within `ping_timeout`.
    PingTimeout,
    /// The outbound queue bound was hit.
    SlowConsumer,
    /// [`Io::shutdown`](crate::Io::shutdown).
    ServerShutdown,
    /// No Socket.IO CONNECT within `connect_timeout` (engine level only: no
    /// socket ever sees it).
    ConnectTimeout,
}

impl From<CloseReason> for DisconnectReason {
    /// Why the sockets of a closed engine connection went away.
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
            CloseReason::ServerShutdown => DisconnectReason::ServerShutdown,
            CloseReason::ServerClose => DisconnectReason::ServerNamespaceDisconnect,
            CloseReason::DeadlineExpired => DisconnectReason::ConnectTimeout,
            _ => DisconnectReason::TransportError,
        }
    }
}

impl DisconnectReason {
    /// The reference implementation's wording (also the metrics label).
    pub fn as_str(&self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::SlowConsumer => "slow consumer",
            DisconnectReason::ServerShutdown => "server shutting down",
            DisconnectReason::ConnectTimeout => "connect timeout",
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
