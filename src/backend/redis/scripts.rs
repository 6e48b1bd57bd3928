//! The Lua scripts, one `.lua` file each (next to this file), embedded at
//! build time. [`redis::Script`] runs them with `EVALSHA` and loads them on a
//! `NOSCRIPT` miss (after a Redis restart, or on a new cluster node), so a
//! call normally costs one round trip.

use std::sync::LazyLock;

use redis::Script;

use super::conn::{Link, backend_error};
use crate::backend::BackendResult;

/// A history script: the shared `history_trim.lua` prelude (Lua has no
/// include), then the script itself.
macro_rules! history_script {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(include_str!("history_trim.lua"), include_str!($file)))
        });
    };
}

/// An ordered send: the shared `ordered_prelude.lua` (the id, the payload's
/// gaps), after `history_trim.lua` when it records history too.
macro_rules! ordered_script {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(include_str!("ordered_prelude.lua"), include_str!($file)))
        });
    };
    ($(#[$doc:meta])* $name:ident, $file:literal, with history) => {
        $(#[$doc])*
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("history_trim.lua"),
                include_str!("ordered_prelude.lua"),
                include_str!($file)
            ))
        });
    };
}

macro_rules! script {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub(super) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!($file)));
    };
}

script!(
    /// Registers a connection under the per-user cap (user slot).
    ADD_CONNECTION,
    "add_connection.lua"
);
script!(
    /// Removes a connection; says whether it was the last (user slot).
    REMOVE_CONNECTION,
    "remove_connection.lua"
);
script!(
    /// Sets the status of an online user (user slot).
    SET_STATUS,
    "set_status.lua"
);
script!(
    /// The user's half of a join, under the membership cap (user slot).
    JOIN_USER,
    "join_user.lua"
);
script!(
    /// The channel's half of a join (channel slot).
    CHANNEL_ADD_MEMBER,
    "channel_add_member.lua"
);
script!(
    /// The channel's half of a leave (channel slot).
    CHANNEL_REMOVE_MEMBER,
    "channel_remove_member.lua"
);
script!(
    /// Hands out the next message id (its own key).
    NEXT_MESSAGE_ID,
    "next_message_id.lua"
);
script!(
    /// GCRA rate limiting for one user and event (user slot).
    RATE_LIMIT,
    "rate_limit.lua"
);

history_script!(
    /// Records a message: channel activity and history (channel slot).
    RECORD_MESSAGE,
    "record_message.lua"
);
ordered_script!(
    /// Assigns the id, records and publishes a message in one step (one
    /// Redis only: the keys span slots).
    SEND_ORDERED,
    "send_ordered.lua",
    with history
);
ordered_script!(
    /// The ordered send on a Redis Cluster: assigns the id, appends to the
    /// recovery log and publishes, in the shard channel's slot.
    SEND_SHARDED,
    "send_sharded.lua"
);
script!(
    /// The recovery log after an id, and its floor (shard channel's slot).
    LOG_SINCE,
    "log_since.lua"
);
history_script!(
    /// The messages after an id, and the floor (channel slot).
    HISTORY_SINCE,
    "history_since.lua"
);
history_script!(
    /// The messages before an id (channel slot).
    HISTORY_BEFORE,
    "history_before.lua"
);

/// Every script, for loading them all up front.
fn all() -> [&'static Script; 14] {
    [
        &ADD_CONNECTION,
        &REMOVE_CONNECTION,
        &SET_STATUS,
        &JOIN_USER,
        &CHANNEL_ADD_MEMBER,
        &CHANNEL_REMOVE_MEMBER,
        &NEXT_MESSAGE_ID,
        &RATE_LIMIT,
        &RECORD_MESSAGE,
        &SEND_ORDERED,
        &SEND_SHARDED,
        &LOG_SINCE,
        &HISTORY_SINCE,
        &HISTORY_BEFORE,
    ]
}

/// Loads every script (`SCRIPT LOAD`), so that the first call of each costs
/// one round trip, not three. Run whenever Redis is (re)reached: a restarted
/// Redis has forgotten them.
pub(super) async fn load_all(link: &Link) -> BackendResult<()> {
    for script in all() {
        script
            .load_async(&mut link.clone())
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}
