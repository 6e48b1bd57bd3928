//! What users implement ([`NamespaceHandler`]) and the values handed to
//! them ([`Event`], [`AckSender`], [`DisconnectReason`]).

use bytes::Bytes;
use chatgate_eio::{BoxFuture, CloseReason, Frame, MessageText};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{EmitError, PayloadError};
use crate::packet::PacketType;
use crate::socket::Socket;

/// Application logic of one namespace.
pub trait NamespaceHandler: Send + Sync + 'static {
    /// A client sent CONNECT to this namespace. `auth` is the CONNECT payload
    /// (`Value::Null` when none). The socket exists but is not yet confirmed:
    /// the handler may `set_data` and join rooms here (packets emitted to the
    /// socket meanwhile are held back); the CONNECT reply is sent only after
    /// this returns `Ok`. `Err(e)` sends CONNECT_ERROR `{message, data}`.
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>>;
    /// An EVENT/BINARY_EVENT from the client. Called in arrival order, one at
    /// a time per engine connection (the next packet is not read meanwhile).
    fn on_event<'a>(&'a self, socket: &'a Socket, event: Event) -> BoxFuture<'a, ()>;
    /// The socket is gone (any reason). Called exactly once per confirmed socket.
    fn on_disconnect<'a>(
        &'a self,
        socket: &'a Socket,
        reason: DisconnectReason,
    ) -> BoxFuture<'a, ()>;
}

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

/// An event received from a client.
#[derive(Debug)]
pub struct Event {
    /// Event name (first element of the packet array).
    pub name: String,
    /// The other elements; binary placeholders are left as
    /// `{"_placeholder":true,"num":n}`.
    pub args: Vec<Value>,
    /// Binary attachments, in order (`num` indexes this).
    pub attachments: Vec<Bytes>,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckSender>,
}

impl Event {
    /// Deserializes the first argument (missing -> `Value::Null`).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        T::deserialize(self.args.first().unwrap_or(&Value::Null)).map_err(|e| PayloadError {
            message: e.to_string(),
        })
    }
}

/// Answers one client ack request (consumed on use).
#[derive(Debug)]
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
}

impl AckSender {
    /// Acknowledges with a single argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let mut text = MessageText::new();
        crate::packet::write_header(
            &mut text,
            PacketType::Ack,
            self.socket.ns_path(),
            0,
            Some(self.id),
        );
        text.push('[');
        serde_json::to_writer(&mut text, data)?;
        text.push(']');
        self.socket.send_frames(&[Frame::message(text)])
    }

    /// Acknowledges with several arguments and binary attachments (placeholders
    /// `{"_placeholder":true,"num":n}` in `args` refer to `attachments[n]`).
    pub fn send_raw(self, args: Vec<Value>, attachments: Vec<Bytes>) -> Result<(), EmitError> {
        let kind = if attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        let mut text = MessageText::new();
        crate::packet::write_header(
            &mut text,
            kind,
            self.socket.ns_path(),
            attachments.len(),
            Some(self.id),
        );
        serde_json::to_writer(&mut text, &Value::Array(args))?;
        let mut frames = Vec::with_capacity(1 + attachments.len());
        frames.push(Frame::message(text));
        frames.extend(attachments.into_iter().map(Frame::binary));
        self.socket.send_frames(&frames)
    }
}

/// Why a socket went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent a Socket.IO DISCONNECT.
    ClientNamespaceDisconnect,
    /// The server disconnected the socket ([`Socket::disconnect`]).
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
