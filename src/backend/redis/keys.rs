//! Every Redis key chatgate writes, built in this one place.
//!
//! Layout (`P` is the configured key prefix, `REDIS_KEY_PREFIX`, default
//! `chatgate`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{u:<user>}:conns` | HASH | the user's live connections: connection id -> node id |
//! | `P:{u:<user>}:presence` | HASH | `status`, `last_seen` (ms); exists while the user is online |
//! | `P:{u:<user>}:channels` | SET | the channels the user is a member of (the source of truth for membership) |
//! | `P:{u:<user>}:rl:<event>` | STRING | GCRA theoretical arrival time (µs) of one event; expires by itself |
//! | `P:{c:<channel>}:members` | SET | the channel's members |
//! | `P:{c:<channel>}:meta` | HASH | `activity`: the channel's last activity (ms) |
//! | `P:{c:<channel>}:history` | ZSET | the channel's kept messages: member = the `message:new` JSON, score = message id; expires when the channel is quiet for `HISTORY_TTL_MS` |
//! | `P:{c:<channel>}:history:floor` | STRING | the highest message id the history may have lost (trimmed, expired); expires with the history |
//! | `P:online` | ZSET | index of online users (score 0, so it lists them sorted) |
//! | `P:msgid` | STRING | the last message id handed out (one Redis) |
//! | `P:{<shard channel>}:msgid` | STRING | the last message id handed out (Redis Cluster: in the slot of the sharded pub/sub channel, `socket.io#/#`) |
//! | `P:{<shard channel>}:log` | ZSET | Redis Cluster: the recovery log, every message of every channel (member = the `message:new` JSON, score = id), kept for the recovery window and a margin, at most a fixed count |
//! | `P:{<shard channel>}:log:floor` | STRING | the highest id the recovery log may have lost (cut by its count, or from before the log existed) |
//! | `P:node:<node>` | STRING | heartbeat of a node (expires when the node stops) |
//! | `P:nodes` | ZSET | every node, scored by when its heartbeat runs out (ms) |
//! | `P:{n:<node>}:conns` | HASH | the node's connections: connection id -> user id (to sweep a dead node) |
//!
//! The part in braces is the Redis Cluster hash tag: every key of one user
//! lives in that user's slot and every key of one channel in that channel's
//! slot, so each Lua script touches exactly one slot. User ids are free text
//! (a JWT `sub`), so `%`, `{` and `}` in them are percent-encoded: a user id
//! can never end a hash tag early or collide with another user's keys.
//! The keys of the ordered send on a Redis Cluster are tagged with what
//! Redis hashes of the sharded pub/sub channel, so the script that writes
//! them may `SPUBLISH` on that channel (same slot).

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    /// `"<prefix>:"`, prepended to every key.
    prefix: String,
}

/// Percent-encodes the characters that would break a hash tag.
fn encode(id: &str) -> std::borrow::Cow<'_, str> {
    if !id.contains(['%', '{', '}']) {
        return std::borrow::Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(id.len() + 6);
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

impl Keys {
    /// Keys under `prefix` (e.g. `chatgate`); an empty prefix means none.
    pub fn new(prefix: &str) -> Self {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}:")
        };
        Keys { prefix }
    }

    fn user(&self, user_id: &str, suffix: &str) -> String {
        format!("{}{{u:{}}}:{suffix}", self.prefix, encode(user_id))
    }

    fn channel(&self, channel_id: &str, suffix: &str) -> String {
        format!("{}{{c:{}}}:{suffix}", self.prefix, encode(channel_id))
    }

    /// The user's live connections (HASH connection id -> node id).
    pub fn connections(&self, user_id: &str) -> String {
        self.user(user_id, "conns")
    }

    /// The user's presence (HASH `status`, `last_seen`), present while online.
    pub fn presence(&self, user_id: &str) -> String {
        self.user(user_id, "presence")
    }

    /// The channels the user is a member of (SET).
    pub fn user_channels(&self, user_id: &str) -> String {
        self.user(user_id, "channels")
    }

    /// The user's rate-limit state for one event (STRING, expiring).
    pub fn rate_limit(&self, user_id: &str, event: &str) -> String {
        self.user(user_id, &format!("rl:{}", encode(event)))
    }

    /// The channel's members (SET).
    pub fn members(&self, channel_id: &str) -> String {
        self.channel(channel_id, "members")
    }

    /// The channel's metadata (HASH `activity`).
    pub fn channel_meta(&self, channel_id: &str) -> String {
        self.channel(channel_id, "meta")
    }

    /// The channel's message history (ZSET: message JSON scored by id).
    pub fn history(&self, channel_id: &str) -> String {
        self.channel(channel_id, "history")
    }

    /// The highest message id the channel's history may have lost (STRING).
    pub fn history_floor(&self, channel_id: &str) -> String {
        self.channel(channel_id, "history:floor")
    }

    /// The index of online users (ZSET, all scores 0).
    pub fn online_index(&self) -> String {
        format!("{}online", self.prefix)
    }

    /// A recoverable session, by private id (STRING: JSON, with a TTL). In
    /// a slot of its own.
    pub fn session(&self, pid: &str) -> String {
        format!("{}{{s:{}}}:session", self.prefix, encode(pid))
    }

    /// The last message id handed out (STRING).
    pub fn message_id(&self) -> String {
        format!("{}msgid", self.prefix)
    }

    /// The last message id handed out on a Redis Cluster (STRING), in the
    /// slot of the sharded pub/sub channel `shard_channel`.
    pub fn shard_message_id(&self, shard_channel: &str) -> String {
        self.shard(shard_channel, "msgid")
    }

    /// The recovery log on a Redis Cluster (ZSET: message JSON scored by
    /// id), in the slot of `shard_channel`.
    pub fn shard_log(&self, shard_channel: &str) -> String {
        self.shard(shard_channel, "log")
    }

    /// The highest id the recovery log may have lost (STRING), in the slot
    /// of `shard_channel`.
    pub fn shard_log_floor(&self, shard_channel: &str) -> String {
        self.shard(shard_channel, "log:floor")
    }

    /// A key in the slot of pub/sub channel `channel`: tagged with what
    /// Redis hashes of the channel's name (its own hash tag, if it has one).
    fn shard(&self, channel: &str, suffix: &str) -> String {
        format!("{}{{{}}}:{suffix}", self.prefix, hash_tag(channel))
    }

    /// The heartbeat of node `node_id` (STRING with a TTL).
    pub fn node(&self, node_id: &str) -> String {
        format!("{}node:{}", self.prefix, encode(node_id))
    }

    /// Every node, scored by the time its heartbeat runs out (ZSET).
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// The connections a node holds: connection id -> user id (HASH).
    pub fn node_connections(&self, node_id: &str) -> String {
        format!("{}{{n:{}}}:conns", self.prefix, encode(node_id))
    }
}

/// What Redis Cluster hashes of a key or channel name: the text between the
/// first `{` and the next `}`, when not empty; else all of it.
fn hash_tag(key: &str) -> &str {
    let Some(open) = key.find('{') else {
        return key;
    };
    match key[open + 1..].find('}') {
        Some(0) | None => key,
        Some(len) => &key[open + 1..open + 1 + len],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_pinned() {
        let keys = Keys::new("chatgate");
        assert_eq!(keys.connections("alice"), "chatgate:{u:alice}:conns");
        assert_eq!(keys.presence("alice"), "chatgate:{u:alice}:presence");
        assert_eq!(keys.user_channels("alice"), "chatgate:{u:alice}:channels");
        assert_eq!(
            keys.rate_limit("alice", "message:send"),
            "chatgate:{u:alice}:rl:message:send"
        );
        assert_eq!(keys.members("general"), "chatgate:{c:general}:members");
        assert_eq!(keys.channel_meta("general"), "chatgate:{c:general}:meta");
        assert_eq!(keys.history("general"), "chatgate:{c:general}:history");
        assert_eq!(
            keys.history_floor("general"),
            "chatgate:{c:general}:history:floor"
        );
        assert_eq!(keys.online_index(), "chatgate:online");
        assert_eq!(keys.message_id(), "chatgate:msgid");
        assert_eq!(
            keys.shard_message_id("socket.io#/#"),
            "chatgate:{socket.io#/#}:msgid"
        );
        assert_eq!(
            keys.shard_log("socket.io#/#"),
            "chatgate:{socket.io#/#}:log"
        );
        assert_eq!(
            keys.shard_log_floor("socket.io#/#"),
            "chatgate:{socket.io#/#}:log:floor"
        );
        assert_eq!(keys.shard_log("a{b}c"), "chatgate:{b}:log");
        assert_eq!(keys.node("n1"), "chatgate:node:n1");
        assert_eq!(keys.nodes(), "chatgate:nodes");
        assert_eq!(keys.node_connections("n1"), "chatgate:{n:n1}:conns");
        assert_eq!(Keys::new("").online_index(), "online");
    }

    #[test]
    fn each_user_and_channel_has_one_slot() {
        let keys = Keys::new("p");
        for user in ["alice", "a}b", "{x}", "%7D", "a:b"] {
            let tag = hash_tag(&keys.connections(user)).to_owned();
            assert_eq!(hash_tag(&keys.presence(user)), tag);
            assert_eq!(hash_tag(&keys.user_channels(user)), tag);
            assert_eq!(hash_tag(&keys.rate_limit(user, "e}v")), tag);
        }
        for channel in ["general", "a:b"] {
            let tag = hash_tag(&keys.members(channel)).to_owned();
            assert_eq!(hash_tag(&keys.channel_meta(channel)), tag);
            assert_eq!(hash_tag(&keys.history(channel)), tag);
            assert_eq!(hash_tag(&keys.history_floor(channel)), tag);
        }
        // Braces cannot make two users share keys.
        assert_ne!(keys.connections("a}b"), keys.connections("a"));
        assert_ne!(keys.connections("%7D"), keys.connections("}"));
    }
}
