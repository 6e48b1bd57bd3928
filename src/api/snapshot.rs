//! What this node holds right now, read from the engine's rooms: the one
//! walk over the local sockets that `/metrics`, `/status` and
//! `GET /api/v1/channels` share.

use std::collections::{HashMap, HashSet};

use super::context::Context;
use crate::delivery::is_user_room;

/// What this node holds right now, read from the engine's rooms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// Engine.IO connections (transport level, authenticated or not).
    pub engine_connections: usize,
    /// Confirmed Socket.IO connections of the chat namespace.
    pub sockets: usize,
    /// Distinct users with a connection on this node.
    pub users_connected: usize,
    /// Channel id -> connections subscribed to it on this node.
    pub channels: HashMap<String, usize>,
}

impl NodeSnapshot {
    /// Walks the sockets of the chat namespace once (O(sockets + rooms)).
    pub fn take(context: &Context) -> NodeSnapshot {
        let sockets = context.namespace.all().local_sockets();
        let mut channels: HashMap<String, usize> = HashMap::new();
        let mut users = HashSet::new();
        for socket in &sockets {
            for room in socket.rooms() {
                if *room == *socket.id() {
                    continue;
                }
                if is_user_room(&room) {
                    users.insert(room);
                } else {
                    *channels.entry(room.to_string()).or_default() += 1;
                }
            }
        }
        NodeSnapshot {
            engine_connections: context.io.engine_connection_count(),
            sockets: sockets.len(),
            users_connected: users.len(),
            channels,
        }
    }
}
