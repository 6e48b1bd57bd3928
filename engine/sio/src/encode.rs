//! Outbound packets, encoded once: an event is written straight into an
//! Engine.IO message buffer, and a broadcast's frames are shared by every
//! recipient.

use bytes::Bytes;
use chatgate_eio::{Frame, MessageText};
use serde::Serialize;
use serde_json::Value;

use crate::error::EmitError;
use crate::packet::{PacketType, write_header};

/// A packet encoded once, shared by reference with every recipient.
#[derive(Debug, Clone)]
pub struct BroadcastPacket {
    pub(crate) frames: Vec<Frame>,
}

impl BroadcastPacket {
    /// The Socket.IO packet text (without the Engine.IO `4` prefix), for
    /// cluster adapters that forward it.
    pub fn text(&self) -> &str {
        self.frames
            .first()
            .and_then(Frame::message_text)
            .unwrap_or("")
    }

    /// A packet from its Socket.IO text (without the Engine.IO `4` prefix,
    /// as [`text`](Self::text) returns it) and binary attachments: how a
    /// cluster adapter rebuilds a packet received from another node.
    pub fn from_parts(text: &str, attachments: Vec<bytes::Bytes>) -> BroadcastPacket {
        let mut frames = Vec::with_capacity(1 + attachments.len());
        frames.push(Frame::message(MessageText::from(text)));
        frames.extend(attachments.into_iter().map(Frame::binary));
        BroadcastPacket { frames }
    }

    /// Binary attachments following the text (empty for `emit`).
    pub fn attachments(&self) -> impl Iterator<Item = &bytes::Bytes> {
        self.frames.iter().filter_map(Frame::binary_data)
    }
}

/// `2<nsp>,<id>["event",data]`.
pub(crate) fn encode_event<T: Serialize + ?Sized>(
    nsp: &str,
    event: &str,
    data: &T,
    id: Option<u64>,
) -> Result<MessageText, EmitError> {
    let mut text = MessageText::with_capacity(32 + event.len());
    write_header(&mut text, PacketType::Event, nsp, 0, id);
    text.push('[');
    serde_json::to_writer(&mut text, event)?;
    text.push(',');
    serde_json::to_writer(&mut text, data)?;
    text.push(']');
    Ok(text)
}

/// `2<nsp>["event",data,"offset"]`: an event whose last argument is a
/// connection state recovery offset (socket.io-client remembers the last
/// string argument of every event as its offset).
pub(crate) fn encode_event_with_offset<T: Serialize + ?Sized>(
    nsp: &str,
    event: &str,
    data: &T,
    offset: &str,
) -> Result<MessageText, EmitError> {
    let mut text = MessageText::with_capacity(48 + event.len() + offset.len());
    write_header(&mut text, PacketType::Event, nsp, 0, None);
    text.push('[');
    serde_json::to_writer(&mut text, event)?;
    text.push(',');
    serde_json::to_writer(&mut text, data)?;
    text.push(',');
    serde_json::to_writer(&mut text, offset)?;
    text.push(']');
    Ok(text)
}

/// An event with several arguments and attachments, as frames.
pub(crate) fn encode_raw_event(
    nsp: &str,
    event: &str,
    mut args: Vec<Value>,
    attachments: Vec<Bytes>,
    id: Option<u64>,
) -> Vec<Frame> {
    let kind = if attachments.is_empty() {
        PacketType::Event
    } else {
        PacketType::BinaryEvent
    };
    args.insert(0, Value::String(event.to_owned()));
    let mut text = MessageText::new();
    write_header(&mut text, kind, nsp, attachments.len(), id);
    text.push_str(&Value::Array(args).to_string());
    let mut frames = Vec::with_capacity(1 + attachments.len());
    frames.push(Frame::message(text));
    frames.extend(attachments.into_iter().map(Frame::binary));
    frames
}
