//! Storage behind the chat domain: presence, membership, channels, message
//! history and rate limits, each a trait with an in-memory implementation (single node,
//! [`memory`]) and a Redis one (many nodes, [`redis`]).
//!
//! The traits speak in plain values (user ids, channel ids, timestamps) and
//! know nothing of sockets. Each method is one logical operation that a
//! backend must perform atomically (the Redis backend uses one script or one
//! pipeline per call), so that concurrent events on many nodes cannot leave
//! state half-updated.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::protocol::{Message, PresenceInfo, PresenceStatus};

/// A failure of a storage backend. Never shown to clients as such: the
/// gateway maps it to `SERVICE_UNAVAILABLE` or `INTERNAL_ERROR`.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot be reached (network, restart); retrying later may work.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something unexpected.
    #[error("backend error: {0}")]
    Internal(String),
}

/// Result of a backend call.
pub type BackendResult<T> = Result<T, BackendError>;

/// One live connection as recorded by presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The connection's id (the Socket.IO socket id), unique cluster-wide.
    pub connection_id: String,
    /// The node that holds the connection.
    pub node_id: String,
}

/// What registering a connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// Registered. `first` is true when the user had no other connection (went online).
    Registered {
        /// The user was offline before this connection.
        first: bool,
        /// The user's status after registering.
        status: PresenceStatus,
    },
    /// Refused: the user already holds `max` connections.
    TooManyConnections,
}

/// Presence: who is connected, with which status, and since when.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Registers a connection of `user_id` unless the user already has
    /// `max_connections` of them (checked and recorded atomically).
    async fn add_connection(
        &self,
        user_id: &str,
        connection: ConnectionRecord,
        max_connections: usize,
        now_ms: u64,
    ) -> BackendResult<ConnectOutcome>;

    /// Removes a connection. Returns `Some(last_seen)` when it was the user's
    /// last connection (the user is now offline), `None` otherwise or when the
    /// connection was not registered (removing twice is harmless).
    async fn remove_connection(
        &self,
        user_id: &str,
        connection_id: &str,
        now_ms: u64,
    ) -> BackendResult<Option<u64>>;

    /// Sets the status of an online user. Returns the new presence, or `None`
    /// when the user has no connection.
    async fn set_status(
        &self,
        user_id: &str,
        status: PresenceStatus,
        now_ms: u64,
    ) -> BackendResult<Option<PresenceInfo>>;

    /// Presence of the given users that are online, in the order given.
    async fn online_among(&self, user_ids: &[String]) -> BackendResult<Vec<PresenceInfo>>;

    /// Every online user.
    async fn online_users(&self) -> BackendResult<Vec<PresenceInfo>>;

    /// How many live connections `user_id` holds, on every node.
    async fn connection_count(&self, user_id: &str) -> BackendResult<usize>;
}

/// What joining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user became a member.
    Joined,
    /// The user was a member already (nothing changed).
    AlreadyMember,
    /// Refused: the user is a member of `max_channels` channels already.
    TooManyChannels,
}

/// Channel membership (per user, persistent across reconnects) and channel
/// activity.
#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    /// Makes `user_id` a member of `channel_id` unless that would exceed
    /// `max_channels` memberships (re-joining is always fine). A channel's
    /// activity starts at its first join.
    async fn join(
        &self,
        user_id: &str,
        channel_id: &str,
        max_channels: usize,
        now_ms: u64,
    ) -> BackendResult<JoinOutcome>;

    /// Ends a membership. Returns whether the user was a member.
    async fn leave(&self, user_id: &str, channel_id: &str) -> BackendResult<bool>;

    /// Whether `user_id` is a member of `channel_id`.
    async fn is_member(&self, user_id: &str, channel_id: &str) -> BackendResult<bool>;

    /// Members of a channel, sorted.
    async fn members(&self, channel_id: &str) -> BackendResult<Vec<String>>;

    /// Channels `user_id` is a member of, sorted.
    async fn user_channels(&self, user_id: &str) -> BackendResult<Vec<String>>;

    /// Assigns the next message id, nothing else: the channel's activity and
    /// history are recorded by [`HistoryStore::record`] once the message is
    /// stamped. Ids are global (unique across channels), increase, and are
    /// at least `now_ms * 1000`. An id taken and never used leaves a gap,
    /// which is harmless: ids promise order and uniqueness, not density.
    async fn next_message_id(&self, now_ms: u64) -> BackendResult<u64>;

    /// For each channel: (last activity ms, member count), in the order given.
    async fn channel_stats(&self, channel_ids: &[String]) -> BackendResult<Vec<(u64, usize)>>;

    /// For each channel, in the order given: its last activity (ms, 0 when
    /// unknown) and its members, sorted. One batch for all channels (no
    /// round trip per channel), for `channel:list`.
    async fn channel_overview(&self, channel_ids: &[String])
    -> BackendResult<Vec<ChannelOverview>>;
}

/// How much history each channel keeps (`HISTORY_SIZE`, `HISTORY_TTL_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// The newest messages kept per channel; 0 turns history off.
    pub size: usize,
    /// How long a message is kept (ms after its `ts`).
    pub ttl_ms: u64,
}

impl Default for HistoryPolicy {
    /// The contract's defaults: 500 messages, one day.
    fn default() -> Self {
        HistoryPolicy {
            size: 500,
            ttl_ms: 86_400_000,
        }
    }
}

impl HistoryPolicy {
    /// Whether history is off (`HISTORY_SIZE=0`).
    pub fn is_off(&self) -> bool {
        self.size == 0
    }

    /// Messages with a `ts` below this (ms) are expired at `now_ms`.
    pub fn cutoff_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.ttl_ms)
    }

    /// Message ids below this are expired at `now_ms`: an id is never below
    /// its message's `ts * 1000`, so such a message's `ts` is below
    /// [`HistoryPolicy::cutoff_ms`]. Also the floor of a channel whose
    /// history is unknown (never written, or gone quiet for longer than the
    /// TTL): any message below it could have existed and expired.
    pub fn cutoff_id(&self, now_ms: u64) -> u64 {
        self.cutoff_ms(now_ms).saturating_mul(1000)
    }
}

/// What `channel:join` with `since` recovers: [`HistoryStore::since`].
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    /// Messages with an id above `since`, oldest first; the newest `limit`
    /// of them when there are more.
    pub messages: Vec<Message>,
    /// True when `messages` holds every message of the channel after
    /// `since`: none was cut by the limit, trimmed or expired.
    pub complete: bool,
}

/// A page of `channel:history`: [`HistoryStore::before`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Up to `limit` messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether older kept messages exist than the first of `messages`.
    pub has_more: bool,
}

/// Message history per channel: the newest [`HistoryPolicy::size`]
/// messages, each for at most [`HistoryPolicy::ttl_ms`].
///
/// A trait of its own, not more methods on [`ChannelStore`]: history is the
/// one store whose size grows with traffic and that has its own settings and
/// retention, so a deployment may later keep it elsewhere (a database) while
/// membership stays where it is; and test doubles of membership need not
/// fake history. Its `record` also moves the channel's activity, because
/// both live in the channel's slot and one atomic step (one Redis round
/// trip) does both on the send path.
///
/// Every channel keeps a *floor*: the highest id history may have lost
/// (trimmed by size, expired, or from before the channel's history was
/// (re)created). Every message above the floor that was ever recorded is
/// still kept, which is how [`Missed::complete`] is known exactly.
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Records a stamped message: moves its channel's activity to
    /// `message.ts` (never back) and, unless `policy` is off, stores the
    /// message (the whole `message:new` payload), keeping the newest
    /// `policy.size` and dropping those older than `policy.ttl_ms`. One
    /// atomic step. Messages may arrive out of id order (ids come from a
    /// global counter before this call); history is ordered by id anyway.
    async fn record(
        &self,
        message: &Message,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<()>;

    /// The messages of `channel_id` with an id above `since`, at most
    /// `limit` (the newest ones when there are more), oldest first, and
    /// whether that is all of them.
    async fn since(
        &self,
        channel_id: &str,
        since: u64,
        limit: usize,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<Missed>;

    /// Assigns `draft` (whose `id` is ignored) its id, records it as
    /// [`record`](Self::record) does, and publishes it to every node with
    /// `template`, all in one atomic step: every node then receives the
    /// messages of all channels in id order, and a message is stored before
    /// anyone can receive it. On a Redis Cluster (ids, history and pub/sub
    /// in different slots) the atomic step assigns, appends to the ordered
    /// log ([`log_since`](Self::log_since)) and publishes, and the channel's
    /// history is written next, before this returns. `Ok(None)` when this
    /// backend cannot (one process in memory, where the caller keeps the
    /// order).
    async fn append_and_publish(
        &self,
        _draft: &Message,
        _template: &PublishTemplate,
        _policy: HistoryPolicy,
        _now_ms: u64,
    ) -> BackendResult<Option<Appended>> {
        Ok(None)
    }

    /// Whether [`append_and_publish`](Self::append_and_publish) checks
    /// [`PublishTemplate::member`] in its atomic step (one Redis: the
    /// membership is on the same server). Elsewhere the caller checks it
    /// first.
    fn checks_membership(&self) -> bool {
        false
    }

    /// The ordered log: the messages of every channel with an id above
    /// `after`, oldest first, at most `limit`; `complete` when none above
    /// `after` was lost (cut by `limit`, dropped by the log's count bound).
    /// Where the ordered send publishes a message before its channel's
    /// history has it (a Redis Cluster), the log has it first, so gap fills
    /// and recovery read it there. `Ok(None)` when this backend keeps no
    /// such log: per-channel history is written before the message is
    /// delivered (memory, one Redis), and is read instead.
    async fn log_since(&self, _after: u64, _limit: usize) -> BackendResult<Option<Missed>> {
        Ok(None)
    }

    /// Up to `limit` messages of `channel_id` with an id below `before` (the
    /// newest ones without `before`), oldest first, and whether older kept
    /// messages exist.
    async fn before(
        &self,
        channel_id: &str,
        before: Option<u64>,
        limit: usize,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<HistoryPage>;
}

/// A message as the shared pub/sub carries it, with gaps for what only the
/// atomic step of [`HistoryStore::append_and_publish`] knows: the payload is
/// `parts[0] ID parts[1] OFFSET parts[2] PREV parts[3] ID parts[4]`, where
/// ID and PREV are MessagePack `uint 64` (`0xcf` and 8 bytes, big endian;
/// PREV is the id handed out before this one) and OFFSET is a MessagePack
/// `str` of 16 characters, [`crate::protocol::offset_of`] of the id. Built
/// by the cross-node adapter's wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTemplate {
    /// The pub/sub channel.
    pub channel: String,
    /// The payload around its gaps.
    pub parts: [Vec<u8>; 5],
    /// Publish only if this user is a member of the message's channel, where
    /// the backend checks it in the same step
    /// ([`HistoryStore::checks_membership`]); ignored elsewhere.
    pub member: Option<String>,
}

/// What [`HistoryStore::append_and_publish`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Stored and published, with this id.
    Published(Message),
    /// Nothing: the sender is not a member of the channel
    /// ([`PublishTemplate::member`]).
    NotMember,
}

/// Finishes a `since` query from what a backend fetched: up to `limit + 1`
/// messages above `since`, newest first, and the channel's floor. Messages
/// whose `ts` is past the TTL but not yet removed count as lost (they raise
/// the floor), so both backends answer exactly alike.
pub(crate) fn finish_since(
    newest_first: Vec<Message>,
    mut floor: u64,
    since: u64,
    limit: usize,
    cutoff_ms: u64,
) -> Missed {
    let mut kept = Vec::with_capacity(newest_first.len().min(limit));
    let mut cut = false;
    for message in newest_first {
        if message.ts < cutoff_ms {
            floor = floor.max(message.id);
        } else if kept.len() == limit {
            cut = true;
        } else {
            kept.push(message);
        }
    }
    kept.reverse();
    Missed {
        messages: kept,
        complete: !cut && floor <= since,
    }
}

/// Finishes a `before` query from up to `limit + 1` messages below
/// `before`, newest first (expired ones are left out).
pub(crate) fn finish_before(
    newest_first: Vec<Message>,
    limit: usize,
    cutoff_ms: u64,
) -> HistoryPage {
    let mut kept: Vec<Message> = newest_first
        .into_iter()
        .filter(|message| message.ts >= cutoff_ms)
        .collect();
    let has_more = kept.len() > limit;
    kept.truncate(limit);
    kept.reverse();
    HistoryPage {
        messages: kept,
        has_more,
    }
}

/// A channel's activity and members, as [`ChannelStore::channel_overview`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOverview {
    /// Last activity (ms since the epoch); 0 when the channel is unknown.
    pub last_activity: u64,
    /// The members, sorted.
    pub members: Vec<String>,
}

/// A rate limit: at most `count` events per `period`, spread evenly (GCRA:
/// the full `count` may come as a burst, then one per `period / count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateQuota {
    /// Events allowed per period (also the burst size).
    pub count: u32,
    /// The period.
    pub period: Duration,
}

/// Per-user, per-event rate limiting.
#[async_trait]
pub trait RateLimitStore: Send + Sync + 'static {
    /// Counts one `event` of `user_id` against `quota`. `Ok(None)`: allowed.
    /// `Ok(Some(retry_after))`: refused, allowed again after that long.
    async fn check(
        &self,
        user_id: &str,
        event: &str,
        quota: RateQuota,
    ) -> BackendResult<Option<Duration>>;
}

/// A recoverable session (Socket.IO connection state recovery), as kept
/// under its private id (`pid`) while it may be recovered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// The socket id the session keeps.
    pub sid: String,
    /// The user who owns it: only they may recover it.
    pub user_id: String,
    /// The last message id handed out when the session began: a client that
    /// received no `message:new` yet is owed everything after it.
    pub start: u64,
    /// Channels joined during the session, with the last message id handed
    /// out when they were: nothing of such a channel up to that id is owed.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub joined: std::collections::BTreeMap<String, u64>,
}

/// Recoverable sessions, by private id. Each expires on its own: a live
/// session is refreshed by its node, a lost one is kept for the recovery
/// window and then forgotten, and one whose node crashed expires without
/// anyone's help.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Whether sessions kept here outlive this process (Redis). Then a live
    /// session is written as it opens, so another node can recover it after
    /// this one crashed. In memory, where a crash takes every session along,
    /// only lost sessions are kept, and a live one is found among the live
    /// connections.
    fn durable(&self) -> bool;

    /// Raises `record.start` to the last message id handed out now, if
    /// higher, and, when [`durable`](Self::durable), keeps the record under
    /// `pid` for `ttl`. Returns the record.
    async fn open(
        &self,
        pid: &str,
        record: SessionRecord,
        ttl: Duration,
    ) -> BackendResult<SessionRecord>;

    /// Keeps `record` under `pid` for `ttl`, as it is (a recovered session).
    async fn keep(&self, pid: &str, record: &SessionRecord, ttl: Duration) -> BackendResult<()>;

    /// The session kept under `pid`, if it has not expired.
    async fn load(&self, pid: &str) -> BackendResult<Option<SessionRecord>>;

    /// Notes that the session `pid` joined `channel_id` now (see
    /// [`SessionRecord::joined`]; nothing when no such session is kept).
    /// Returns the last message id handed out now.
    async fn note_join(&self, pid: &str, channel_id: &str) -> BackendResult<u64>;

    /// Each of `pids` is kept for `ttl` from now (if it still exists).
    async fn refresh(&self, pids: &[String], ttl: Duration) -> BackendResult<()>;
}

/// Whether the backends can serve now, for `/readyz`.
#[async_trait]
pub trait BackendHealth: Send + Sync + 'static {
    /// True while the backends are reachable. Cheap: reads a flag that a
    /// background check keeps current.
    fn is_ready(&self) -> bool;

    /// After a request failed with [`BackendError::Unavailable`]: returns
    /// once a check made from now on finds the backends reachable (at once
    /// for backends that are never unreachable). Callers bound the wait.
    async fn recovered(&self) {}

    /// How many chatgate nodes share these backends and are alive (this
    /// one included), from their heartbeats. Cheap: no round trip.
    fn live_nodes(&self) -> usize;
}

/// The set of backends one node runs on.
#[derive(Clone)]
pub struct Backends {
    /// Presence of connections and users.
    pub presence: Arc<dyn PresenceStore>,
    /// Membership and channel activity.
    pub channels: Arc<dyn ChannelStore>,
    /// Message history (and the activity a message brings).
    pub history: Arc<dyn HistoryStore>,
    /// Rate limits.
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// Recoverable sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Reachability, for `/readyz`.
    pub health: Arc<dyn BackendHealth>,
}

impl Backends {
    /// All in-memory: one node, no outside services.
    pub fn in_memory() -> Self {
        let store = Arc::new(memory::MemoryStore::default());
        Backends {
            presence: store.clone(),
            channels: store.clone(),
            history: store.clone(),
            rate_limits: Arc::new(memory::MemoryRateLimiter::default()),
            sessions: store.clone(),
            health: store,
        }
    }

    /// All on the Redis of `settings`, for node `node_id`, with the default
    /// [`redis::RedisOptions`]. Returns at once: Redis is reached (and
    /// re-reached after trouble) in the background, and `is_ready` says when
    /// it is. Fails only on settings that cannot work. Needs a Tokio runtime.
    pub fn redis(
        settings: &crate::config::RedisSettings,
        node_id: &str,
    ) -> Result<Self, redis::RedisSetupError> {
        Ok(
            redis::RedisBackend::connect(settings, redis::RedisOptions::new(node_id))?
                .into_backends(),
        )
    }

    /// Whether the backends can serve now.
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }
}
