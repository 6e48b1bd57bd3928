//! Namespaces: a handler plus an adapter (socket registry and rooms).

use std::sync::Arc;

use crate::adapter::{Adapter, BroadcastOptions};
use crate::broadcast::BroadcastOperator;
use crate::handler::NamespaceHandler;
use crate::socket::Socket;

/// A room name. `&str` and `String` convert into it.
pub type Room = Arc<str>;

/// A Socket.IO namespace (`"/"`, `"/custom"`). Cheap to clone.
#[derive(Clone)]
pub struct Namespace(Arc<Inner>);

struct Inner {
    path: Arc<str>,
    handler: Arc<dyn NamespaceHandler>,
    adapter: Arc<dyn Adapter>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.0.path)
            .finish()
    }
}

impl Namespace {
    pub(crate) fn new(
        path: &str,
        handler: Arc<dyn NamespaceHandler>,
        adapter: Arc<dyn Adapter>,
    ) -> Namespace {
        Namespace(Arc::new(Inner {
            path: path.into(),
            handler,
            adapter,
        }))
    }

    pub(crate) fn handler(&self) -> &Arc<dyn NamespaceHandler> {
        &self.0.handler
    }

    /// The adapter all room and broadcast operations go through.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.0.adapter
    }

    /// The namespace path, e.g. `"/"`.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Sockets in `room`.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.all().to(room)
    }

    /// Every socket of the namespace.
    pub fn all(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone(), BroadcastOptions::default())
    }

    /// A socket of this namespace on this node, by Socket.IO id.
    pub fn get_socket(&self, sid: &str) -> Option<Socket> {
        self.0.adapter.get_socket(sid)
    }

    /// Sockets of this namespace on this node.
    pub fn socket_count(&self) -> usize {
        self.0.adapter.socket_count()
    }

    /// Rooms with at least one socket (socket-id rooms not counted).
    pub fn room_count(&self) -> usize {
        self.0.adapter.room_count()
    }
}
