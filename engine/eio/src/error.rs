//! Error types of the Engine.IO layer.

/// A malformed Engine.IO packet or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed packet: {0}")]
pub struct DecodeError(pub &'static str);

/// Why frames could not be queued on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
    /// The outbound queue bound was hit: the connection has been closed as
    /// a slow consumer.
    #[error("outbound queue full (slow consumer)")]
    QueueFull,
}
