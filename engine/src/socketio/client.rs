//! The Socket.IO side of one engine connection: decodes packets (and
//! reassembles binary ones), routes them to the namespace sockets, runs
//! CONNECT.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::packet::{Packet, PacketType};
use super::socket::Socket;
use crate::engineio::conn::{EngineConn, Frame};
use crate::error::DecodeError;
use crate::handler::DisconnectReason;

/// Decoder state of one connection (guarded by `EngineConn::inbound`).
#[derive(Default)]
pub(crate) struct Inbound {
    partial: Option<Box<(Packet, Vec<Bytes>)>>,
}

/// A text Engine.IO message carrying a Socket.IO packet.
pub(crate) async fn on_text(
    conn: &Arc<EngineConn>,
    inb: &mut Inbound,
    text: &str,
) -> Result<(), DecodeError> {
    if inb.partial.is_some() {
        return Err(DecodeError("text packet while waiting for attachments"));
    }
    let packet = Packet::decode(text)?;
    if packet.kind.is_binary() && packet.attachments > 0 {
        let n = packet.attachments;
        inb.partial = Some(Box::new((packet, Vec::with_capacity(n.min(16)))));
        return Ok(());
    }
    dispatch(conn, packet, Vec::new()).await
}

/// A binary Engine.IO message: the next attachment of a binary packet.
pub(crate) async fn on_binary(
    conn: &Arc<EngineConn>,
    inb: &mut Inbound,
    data: Bytes,
) -> Result<(), DecodeError> {
    let Some(partial) = inb.partial.as_mut() else {
        return Err(DecodeError("binary data outside a binary packet"));
    };
    // All attachments of one packet together may not exceed `max_payload`,
    // so a packet declaring many attachments cannot make us buffer
    // `attachments * max_payload` bytes.
    let buffered: usize = partial.1.iter().map(Bytes::len).sum();
    if buffered.saturating_add(data.len()) > conn.shared.config.max_payload {
        inb.partial = None;
        return Err(DecodeError("attachments larger than max_payload"));
    }
    partial.1.push(data);
    if partial.1.len() < partial.0.attachments {
        return Ok(());
    }
    let Some(done) = inb.partial.take() else {
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

fn connect_error(conn: &EngineConn, nsp: &str, data: Value) {
    let packet = Packet {
        kind: PacketType::ConnectError,
        nsp: nsp.to_owned(),
        id: None,
        data: Some(data),
        attachments: 0,
    };
    conn.push_control(Frame::text(format!("4{}", packet.encode())));
}

async fn connect(conn: &Arc<EngineConn>, packet: Packet) {
    let Some(ns) = conn.shared.namespace(&packet.nsp) else {
        connect_error(conn, &packet.nsp, json!({ "message": "Invalid namespace" }));
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
            conn.sockets.lock().push(socket.clone());
            conn.clear_connect_deadline();
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
            // Written by hand to keep the reference's key order {message, data}.
            let mut text = String::from("4");
            super::packet::write_header(&mut text, PacketType::ConnectError, ns.path(), 0, None);
            text.push_str("{\"message\":");
            text.push_str(&Value::String(e.message).to_string());
            if let Some(d) = e.data {
                text.push_str(",\"data\":");
                text.push_str(&d.to_string());
            }
            text.push('}');
            conn.push_control(Frame::text(text));
        }
    }
}

/// Removes a socket from its connection. A client that left its last
/// namespace keeps its Engine.IO connection, as with the reference server
/// (socket.io-client closes it itself; a raw client may CONNECT again), but
/// must join a namespace again within the connect timeout.
pub(crate) fn detach(conn: &EngineConn, socket: &Socket, client_initiated: bool) {
    let empty = {
        let mut list = conn.sockets.lock();
        list.retain(|s| !s.ptr_eq(socket));
        list.is_empty()
    };
    if empty && client_initiated {
        conn.arm_connect_deadline();
    }
}

/// Engine connection closed: every confirmed socket gets on_disconnect once.
pub(crate) async fn on_conn_closed(conn: &EngineConn, reason: DisconnectReason) {
    let sockets = std::mem::take(&mut *conn.sockets.lock());
    for s in sockets {
        s.closed(reason).await;
    }
}
