//! Pre-encoded outbound packets.
//!
//! A [`Frame`] is built once and shared by reference: a broadcast to a
//! thousand connections queues a thousand clones of one `Frame`, which copy
//! a pointer, never the text. A text message is written into a
//! [`MessageText`], which starts with Engine.IO's message type, so turning
//! it into a frame needs no copy and the layer above never spells the type.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The Engine.IO `message` packet type, first character of every text message.
const MESSAGE_TYPE: char = '4';

/// One pre-encoded outbound packet. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(pub(crate) Repr);

/// What a frame holds on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repr {
    /// A complete text packet, type character included (`4...`, `2`, `0{...}`).
    Text(Utf8Bytes),
    /// A binary message (WebSocket binary frame, `b<base64>` over polling).
    Binary(Bytes),
}

impl Frame {
    /// A text message.
    pub fn message(text: MessageText) -> Frame {
        Frame(Repr::Text(text.0.into()))
    }

    /// A binary message.
    pub fn binary(data: Bytes) -> Frame {
        Frame(Repr::Binary(data))
    }

    /// A text packet of the engine itself (open, ping, pong).
    pub(crate) fn packet(text: impl Into<Utf8Bytes>) -> Frame {
        Frame(Repr::Text(text.into()))
    }

    /// The text of a text message, without the packet type; `None` for a
    /// binary message or an engine packet.
    pub fn message_text(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(t) => t.as_str().strip_prefix(MESSAGE_TYPE),
            Repr::Binary(_) => None,
        }
    }

    /// The data of a binary message.
    pub fn binary_data(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Binary(b) => Some(b),
            Repr::Text(_) => None,
        }
    }
}

/// A text message being written. It already holds the packet type, so
/// [`Frame::message`] takes the buffer as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl std::fmt::Debug for MessageText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MessageText").field(&self.as_str()).finish()
    }
}

impl Default for MessageText {
    fn default() -> Self {
        MessageText::with_capacity(0)
    }
}

impl MessageText {
    /// An empty message.
    pub fn new() -> MessageText {
        MessageText::default()
    }

    /// An empty message with room for `capacity` bytes of text.
    pub fn with_capacity(capacity: usize) -> MessageText {
        let mut buf = String::with_capacity(capacity + 1);
        buf.push(MESSAGE_TYPE);
        MessageText(buf)
    }

    /// Appends text.
    pub fn push_str(&mut self, s: &str) {
        self.0.push_str(s);
    }

    /// Appends one character.
    pub fn push(&mut self, c: char) {
        self.0.push(c);
    }

    /// The text written so far (without the packet type).
    pub fn as_str(&self) -> &str {
        &self.0[MESSAGE_TYPE.len_utf8()..]
    }
}

impl From<&str> for MessageText {
    fn from(s: &str) -> Self {
        let mut m = MessageText::with_capacity(s.len());
        m.push_str(s);
        m
    }
}

impl std::fmt::Write for MessageText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// So `serde_json::to_writer` can write straight into a message (JSON is
/// always UTF-8; anything else is refused, never stored).
impl std::io::Write for MessageText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = std::str::from_utf8(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.push_str(s);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_carry_the_type_once() {
        let mut m = MessageText::from("2[\"a\"");
        m.push(']');
        assert_eq!(m.as_str(), "2[\"a\"]");
        let f = Frame::message(m);
        assert_eq!(f.message_text(), Some("2[\"a\"]"));
        assert_eq!(f.0, Repr::Text(Utf8Bytes::from_static("42[\"a\"]")));
        assert_eq!(Frame::packet("2").message_text(), None);
        assert_eq!(Frame::binary(Bytes::from_static(b"x")).message_text(), None);
    }
}
