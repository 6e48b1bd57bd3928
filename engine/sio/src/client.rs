//! The Socket.IO side of every engine connection: [`Client`] is the
//! Engine.IO handler. It decodes packets (and reassembles binary ones),
//! routes them to the namespace sockets, runs CONNECT, and enforces the
//! connect timeout with the engine's generic deadline.

use std::sync::Arc;

use bytes::Bytes;
use chatgate_eio::{BoxFuture, CloseReason, EngineHandler, Frame, Message, MessageText};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::DecodeError;
use crate::handler::DisconnectReason;
use crate::packet::{Packet, PacketType};
use crate::socket::{Client, ConnState, EngineConn, PartialPacket, Socket};

impl EngineHandler for Client {
    type Data = ConnState;
    /// A binary packet waiting for its attachments.
    type Inbound = Option<PartialPacket>;

    fn on_open(&self, conn: &Arc<EngineConn>) {
        conn.set_deadline(Some(Instant::now() + self.connect_timeout));
    }

    fn on_message<'a>(
        &'a self,
        conn: &'a Arc<EngineConn>,
        partial: &'a mut Option<PartialPacket>,
        msg: Message,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let result = match msg {
                Message::Text(text) => on_text(conn, partial, &text).await,
                Message::Binary(data) => on_binary(conn, partial, data).await,
            };
            if let Err(e) = result {
                tracing::debug!(sid = %conn.id(), error = %e, "bad socket.io packet");
                conn.abort(CloseReason::TransportError);
            }
        })
    }

    fn on_close<'a>(&'a self, conn: &'a Arc<EngineConn>, reason: CloseReason) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let reason = DisconnectReason::from(reason);
            let sockets = std::mem::take(&mut *conn.data().sockets.lock());
            for s in sockets {
                s.closed(reason).await;
            }
        })
    }
}

/// A text message carrying a Socket.IO packet.
async fn on_text(
    conn: &Arc<EngineConn>,
    partial: &mut Option<PartialPacket>,
    text: &str,
) -> Result<(), DecodeError> {
    let packet = {
        if partial.is_some() {
            return Err(DecodeError("text packet while waiting for attachments"));
        }
        let packet = Packet::decode(text)?;
        if packet.kind.is_binary() && packet.attachments > 0 {
            let n = packet.attachments;
            *partial = Some(Box::new((packet, Vec::with_capacity(n.min(16)))));
            return Ok(());
        }
        packet
    };
    dispatch(conn, packet, Vec::new()).await
}

/// A binary message: the next attachment of a binary packet.
async fn on_binary(
    conn: &Arc<EngineConn>,
    slot: &mut Option<PartialPacket>,
    data: Bytes,
) -> Result<(), DecodeError> {
    let done = {
        let Some(partial) = slot.as_mut() else {
            return Err(DecodeError("binary data outside a binary packet"));
        };
        // All attachments of one packet together may not exceed `max_payload`,
        // so a packet declaring many attachments cannot make us buffer
        // `attachments * max_payload` bytes.
        let buffered: usize = partial.1.iter().map(Bytes::len).sum();
        if buffered.saturating_add(data.len()) > conn.config().max_payload {
            *slot = None;
            return Err(DecodeError("attachments larger than max_payload"));
        }
        partial.1.push(data);
        if partial.1.len() < partial.0.attachments {
            return Ok(());
        }
        slot.take()
    };
    let Some(done) = done else {
        return Ok(());
    };
    let (packet, attachments) = *done;
    dispatch(conn, packet, attachments).await
}

async fn dispatch(
    conn: &Arc<EngineConn>,
    packet: Packet,
    attachments: Vec<Bytes>,
) -> Result<(), DecodeError> {
    let socket = conn
        .data()
        .sockets
        .lock()
        .iter()
        .find(|s| s.ns_path() == packet.nsp)
        .cloned();
    match (socket, packet.kind) {
        (None, PacketType::Connect) => {
            connect(conn, packet).await;
            Ok(())
        }
        // A late packet for a namespace we just left: harmless.
        (None, PacketType::Disconnect) => Ok(()),
        (Some(s), k) if k != PacketType::Connect && k != PacketType::ConnectError => {
            s.on_packet(packet, attachments).await;
            Ok(())
        }
        // The reference closes on such invalid states.
        _ => Err(DecodeError("invalid state")),
    }
}

/// CONNECT_ERROR `{message, data?}`, written by hand to keep the
/// reference's key order.
fn connect_error(conn: &EngineConn, nsp: &str, message: &str, data: Option<Value>) {
    let mut text = MessageText::new();
    crate::packet::write_header(&mut text, PacketType::ConnectError, nsp, 0, None);
    text.push_str("{\"message\":");
    text.push_str(&json!(message).to_string());
    if let Some(d) = data {
        text.push_str(",\"data\":");
        text.push_str(&d.to_string());
    }
    text.push('}');
    conn.send_unbounded(Frame::message(text));
}

async fn connect(conn: &Arc<EngineConn>, packet: Packet) {
    let Some(ns) = conn.handler().namespace(&packet.nsp) else {
        connect_error(conn, &packet.nsp, "Invalid namespace", None);
        return;
    };
    if conn.is_closing() {
        return;
    }
    let auth = packet.data.unwrap_or(Value::Null);
    let socket = Socket::new(ns.clone(), conn.clone());
    ns.adapter().add_socket(&socket);
    let result = ns.handler().on_connect(&socket, &auth).await;
    match result {
        Ok(()) if !conn.is_closing() => {
            conn.data().sockets.lock().push(socket.clone());
            conn.set_deadline(None);
            socket.confirm();
        }
        Ok(()) => {
            // The connection died during on_connect: the socket was never confirmed.
            socket.abandon();
            ns.adapter().remove_socket(&socket);
        }
        Err(e) => {
            socket.abandon();
            ns.adapter().remove_socket(&socket);
            connect_error(conn, ns.path(), &e.message, e.data);
        }
    }
}
