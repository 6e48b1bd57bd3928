//! [`LocalAdapter`]: the socket registry, rooms and broadcast of one
//! namespace on one node (the [`Adapter`] trait lives with [`Socket`]).
//!
//! Every [`BroadcastOperator`](crate::BroadcastOperator) operation goes
//! through [`Adapter`]. [`LocalAdapter`] serves one node. A cluster adapter
//! (e.g. one compatible with Node's `@socket.io/redis-adapter`) wraps a
//! `LocalAdapter` for the local part and adds pub/sub:
//!
//! * `broadcast`: deliver locally, then publish `(packet.text(), opts)`;
//!   on receipt from another node call the local `broadcast` with the same
//!   options (the packet text is the Socket.IO encoding, so it can be
//!   re-encoded into the Node adapter's msgpack format).
//! * `sockets_join` / `sockets_leave` / `disconnect_sockets`: apply locally,
//!   publish a request; other nodes apply it to their local sockets.
//! * `local_sockets` stays local (a `fetch_sockets` across nodes would be a
//!   request/response on top).

// `Socket` hashes by pointer identity, so its interior mutability cannot
// change a key's hash.
#![allow(clippy::mutable_key_type)]

use std::collections::{HashMap, HashSet};

use parking_lot::RwLock;

use crate::encode::BroadcastPacket;
use crate::rooms::{BroadcastOptions, Room};
use crate::socket::{Adapter, Socket};

/// In-memory adapter for a single node.
#[derive(Default)]
pub struct LocalAdapter {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// sid -> (socket, joined rooms).
    sockets: HashMap<Room, (Socket, Vec<Room>)>,
    rooms: HashMap<Room, HashSet<Socket>>,
}

impl State {
    fn excluded(&self, except: &[Room]) -> HashSet<Socket> {
        let mut out = HashSet::new();
        for r in except {
            if let Some(members) = self.rooms.get(r) {
                out.extend(members.iter().cloned());
            } else if let Some((s, _)) = self.sockets.get(r) {
                out.insert(s.clone());
            }
        }
        out
    }

    /// Calls `f` once for every selected socket.
    fn for_each(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Socket)) {
        let except = if opts.except.is_empty() {
            None
        } else {
            Some(self.excluded(&opts.except))
        };
        let mut visit = |s: &Socket| {
            if !except.as_ref().is_some_and(|e| e.contains(s)) {
                f(s)
            }
        };
        match opts.rooms.as_slice() {
            [] => self.sockets.values().for_each(|(s, _)| visit(s)),
            [room] => self.room_members(room, &mut visit),
            rooms => {
                let mut seen = HashSet::new();
                for room in rooms {
                    self.room_members(room, &mut |s: &Socket| {
                        if seen.insert(s.clone()) {
                            visit(s)
                        }
                    });
                }
            }
        }
    }

    fn room_members(&self, room: &Room, f: &mut dyn FnMut(&Socket)) {
        if let Some(members) = self.rooms.get(room) {
            members.iter().for_each(f);
        } else if let Some((s, _)) = self.sockets.get(room) {
            f(s);
        }
    }

    fn join(&mut self, socket: &Socket, room: Room) {
        let Some((_, joined)) = self.sockets.get_mut(socket.id()) else {
            return;
        };
        if joined.contains(&room) {
            return;
        }
        joined.push(room.clone());
        self.rooms.entry(room).or_default().insert(socket.clone());
    }

    fn leave(&mut self, socket: &Socket, room: &Room) {
        if let Some((_, joined)) = self.sockets.get_mut(socket.id()) {
            joined.retain(|r| r != room);
        }
        self.remove_member(socket, room);
    }

    fn remove_member(&mut self, socket: &Socket, room: &Room) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(socket);
            if members.is_empty() {
                self.rooms.remove(room); // frees the room
            }
        }
    }
}

impl LocalAdapter {
    /// An empty adapter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rooms with at least one socket (socket-id rooms not included).
    pub fn rooms(&self) -> Vec<Room> {
        self.state.read().rooms.keys().cloned().collect()
    }

    fn selected(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        let mut out = Vec::new();
        self.state.read().for_each(opts, |s| out.push(s.clone()));
        out
    }
}

impl Adapter for LocalAdapter {
    fn add_socket(&self, socket: &Socket) {
        let mut st = self.state.write();
        let replaced = st
            .sockets
            .insert(socket.id_arc().clone(), (socket.clone(), Vec::new()));
        // A recovered session took over the id of a socket still going
        // away: that one leaves its rooms now (its own removal is a no-op).
        if let Some((old, joined)) = replaced {
            for room in &joined {
                st.remove_member(&old, room);
            }
        }
    }

    fn remove_socket(&self, socket: &Socket) {
        let mut st = self.state.write();
        // Only this very socket: a recovered session's new socket may hold
        // the id of an old one that is still going away.
        if !st
            .sockets
            .get(socket.id())
            .is_some_and(|(s, _)| s == socket)
        {
            return;
        }
        let Some((_, joined)) = st.sockets.remove(socket.id()) else {
            return;
        };
        for room in &joined {
            st.remove_member(socket, room);
        }
        if st.sockets.capacity() > 64 && st.sockets.len() < st.sockets.capacity() / 4 {
            st.sockets.shrink_to_fit();
        }
        if st.rooms.capacity() > 64 && st.rooms.len() < st.rooms.capacity() / 4 {
            st.rooms.shrink_to_fit();
        }
    }

    fn socket_id_changed(&self, socket: &Socket, old_id: &str) {
        let mut st = self.state.write();
        // Rooms hold sockets, not ids: only the registry moves, in one
        // step, so no broadcast can miss the socket meanwhile.
        let Some(entry) = st.sockets.remove(old_id) else {
            return;
        };
        if entry.0 != *socket {
            st.sockets.insert(old_id.into(), entry);
            return;
        }
        if let Some((replaced, joined)) = st.sockets.insert(socket.id_arc().clone(), entry) {
            for room in &joined {
                st.remove_member(&replaced, room);
            }
        }
    }

    fn get_socket(&self, sid: &str) -> Option<Socket> {
        self.state.read().sockets.get(sid).map(|(s, _)| s.clone())
    }

    fn socket_count(&self) -> usize {
        self.state.read().sockets.len()
    }

    fn room_count(&self) -> usize {
        self.state.read().rooms.len()
    }

    fn join(&self, socket: &Socket, room: Room) {
        self.state.write().join(socket, room);
    }

    fn leave(&self, socket: &Socket, room: &Room) {
        self.state.write().leave(socket, room);
    }

    fn socket_rooms(&self, socket: &Socket) -> Vec<Room> {
        self.state
            .read()
            .sockets
            .get(socket.id())
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        // Sends only push shared frames into per-connection queues; a full
        // queue closes that connection (never silently skipped).
        let mut delivered = 0u64;
        self.state.read().for_each(opts, |s| {
            if s.send_frames(&packet.frames).is_ok() {
                delivered += 1;
            }
        });
        metrics::counter!("chatgate_engine_broadcast_deliveries_total").increment(delivered);
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let targets = self.selected(opts);
        let mut st = self.state.write();
        for s in &targets {
            for r in rooms {
                st.join(s, r.clone());
            }
        }
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let targets = self.selected(opts);
        let mut st = self.state.write();
        for s in &targets {
            for r in rooms {
                st.leave(s, r);
            }
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        // Collected first: disconnecting takes the write lock.
        for s in self.selected(opts) {
            if close {
                s.disconnect_and_close()
            } else {
                s.disconnect()
            }
        }
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        self.selected(opts)
    }
}
