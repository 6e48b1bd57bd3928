//! Error types of the public API.

pub use chatgate_eio::DecodeError;
use chatgate_eio::SendError;

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The data could not be serialized to JSON.
    #[error("serialization failed: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The socket (or its engine connection) is closed.
    #[error("socket disconnected")]
    Disconnected,
    /// The outbound queue was full: the connection has been closed as a slow consumer.
    #[error("outbound queue full (slow consumer)")]
    QueueFull,
}

impl From<SendError> for EmitError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Closed => EmitError::Disconnected,
            SendError::QueueFull => EmitError::QueueFull,
        }
    }
}

/// Why an [`emit_with_ack`](crate::Socket::emit_with_ack) got no acknowledgement.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The packet could not be sent.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// No ack arrived in time.
    #[error("ack timeout")]
    Timeout,
    /// The socket disconnected before acknowledging.
    #[error("socket disconnected before the ack")]
    Disconnected,
}

/// A payload that does not have the expected shape ([`Event::parse`](crate::Event::parse)).
#[derive(Debug, thiserror::Error)]
#[error("invalid payload: {message}")]
pub struct PayloadError {
    /// Human-readable description (from serde).
    pub message: String,
}
