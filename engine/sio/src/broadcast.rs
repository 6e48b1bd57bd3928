//! [`BroadcastOperator`]: selects sockets and acts on them through the adapter.

use serde::Serialize;

use chatgate_eio::Frame;

use crate::encode::{BroadcastPacket, encode_event, encode_event_with_offset};
use crate::error::EmitError;
use crate::rooms::{BroadcastOptions, Room};
use crate::socket::{Namespace, Socket};

/// Selects sockets (rooms, exceptions) and acts on them. All operations go
/// through the namespace's [`Adapter`](crate::Adapter), so they become
/// cluster-wide once a cross-node adapter is plugged in.
#[derive(Clone, Debug)]
pub struct BroadcastOperator {
    ns: Namespace,
    opts: BroadcastOptions,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Namespace, opts: BroadcastOptions) -> Self {
        BroadcastOperator { ns, opts }
    }

    /// Adds a target room (union of rooms).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let room = room.into();
        if !self.opts.rooms.contains(&room) {
            self.opts.rooms.push(room);
        }
        self
    }

    /// Excludes the sockets of `room`.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// Excludes one socket.
    pub fn except_socket(self, sid: &str) -> Self {
        self.except(sid)
    }

    /// The selection.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Encodes the EVENT packet once and shares the bytes with every
    /// recipient. `data` is the single argument of the event.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let text = encode_event(self.ns.path(), event, data, None)?;
        let packet = BroadcastPacket {
            frames: vec![Frame::message(text)],
        };
        self.ns.adapter().broadcast(&packet, &self.opts);
        Ok(())
    }

    /// Like [`emit`](Self::emit), with `offset` as the event's last argument:
    /// the connection state recovery offset of this event, which a client
    /// sends back when it reconnects.
    pub fn emit_with_offset<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        offset: &str,
    ) -> Result<(), EmitError> {
        let text = encode_event_with_offset(self.ns.path(), event, data, offset)?;
        let packet = BroadcastPacket {
            frames: vec![Frame::message(text)],
        };
        self.ns.adapter().broadcast(&packet, &self.opts);
        Ok(())
    }

    /// Every selected socket joins `room`.
    pub fn sockets_join(&self, room: impl Into<Room>) {
        self.ns.adapter().sockets_join(&self.opts, &[room.into()]);
    }

    /// Like [`sockets_join`](Self::sockets_join), and resolves once every
    /// node will apply the join before anything published later (see
    /// [`Adapter::sockets_join_confirmed`](crate::Adapter::sockets_join_confirmed)).
    pub async fn sockets_join_confirmed(&self, room: impl Into<Room>) -> bool {
        self.ns
            .adapter()
            .sockets_join_confirmed(&self.opts, &[room.into()])
            .await
    }

    /// Every selected socket leaves `room`.
    pub fn sockets_leave(&self, room: impl Into<Room>) {
        self.ns.adapter().sockets_leave(&self.opts, &[room.into()]);
    }

    /// Disconnects every selected socket; `close_transport` also closes
    /// their engine connections.
    pub fn disconnect_sockets(&self, close_transport: bool) {
        self.ns
            .adapter()
            .disconnect_sockets(&self.opts, close_transport);
    }

    /// The selected sockets on this node.
    pub fn local_sockets(&self) -> Vec<Socket> {
        self.ns.adapter().local_sockets(&self.opts)
    }
}

// Defined here rather than with the types: a broadcast operator sits above
// sockets and namespaces.

impl Namespace {
    /// Sockets in `room`.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.all().to(room)
    }

    /// Every socket of the namespace.
    pub fn all(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone(), BroadcastOptions::default())
    }
}

impl Socket {
    /// Every socket of the namespace except this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.namespace().all().except_socket(self.id())
    }

    /// Sockets in `room`, except this one.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.namespace().to(room).except_socket(self.id())
    }
}
