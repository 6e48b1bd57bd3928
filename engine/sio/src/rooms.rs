//! Room names and socket selections.
//!
//! Like the reference, every socket is implicitly in a room named after its
//! id: `to(sid)` and `except(sid)` work without storing such rooms.

use std::sync::Arc;

/// A room name. `&str` and `String` convert into it.
pub type Room = Arc<str>;

/// Which sockets an operation targets: the union of `rooms` (every socket
/// when empty) minus the sockets of `except` rooms (socket ids included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target rooms; empty = the whole namespace.
    pub rooms: Vec<Room>,
    /// Excluded rooms (a socket id excludes that socket).
    pub except: Vec<Room>,
}
