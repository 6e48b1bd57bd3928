//! Redis backends: presence, membership, channel activity, message ids,
//! message history and rate limits shared by every chatgate node that points at the same Redis.
//!
//! # Layout
//!
//! - [`keys`]: every key name, with the hash tags that keep each script in
//!   one Redis Cluster slot.
//! - `conn`: the connection (single server or cluster), error mapping,
//!   batching of independent commands.
//! - `scripts`: the Lua scripts (`*.lua` next to this file, embedded at build
//!   time), run with `EVALSHA` and loaded on a miss.
//! - `presence`, `channels`, `history`, `ratelimit`: the trait implementations.
//! - `health`: the heartbeat task behind `/readyz`, and the re-registration
//!   of this node's live connections after Redis comes back.
//!
//! `docs/redis.md` describes the key layout, the scripts, the round trips per
//! event and the failure behaviour.

mod channels;
mod conn;
mod health;
mod history;
pub mod keys;
mod presence;
mod ratelimit;
mod scripts;
mod sessions;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

pub use conn::RedisSetupError;
use keys::Keys;

use super::{BackendHealth, BackendResult, Backends, ConnectionRecord};
use crate::config::RedisSettings;
use crate::protocol::{PresenceInfo, PresenceStatus};

/// How the Redis backend behaves; the defaults suit production.
#[derive(Clone)]
pub struct RedisOptions {
    /// This node's id: names its heartbeat key and goes into its presence
    /// records.
    pub node_id: String,
    /// A PEM bundle of CA certificates to trust for `rediss://` instead of the
    /// system's roots (a private CA). `None`: the system's roots.
    pub root_ca_pem: Option<Vec<u8>>,
    /// How often the health task checks Redis (and so how soon a recovered
    /// Redis is noticed). Default 1 s.
    pub health_interval: Duration,
    /// How long a node may miss its heartbeats before other nodes consider
    /// it dead and sweep its connections (their users go offline). Default
    /// 8 s (`NODE_TIMEOUT_MS`); keep it well above `health_interval`.
    pub node_timeout: Duration,
    /// How long one connection attempt may take. Default 1 s.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer one request. Default 2 s.
    pub response_timeout: Duration,
    /// When Redis cannot be reached, let events pass the rate limiter (fail
    /// open) instead of refusing them with `SERVICE_UNAVAILABLE` (fail closed,
    /// the default).
    pub rate_limit_fail_open: bool,
    /// Receives the presence changes no disconnect or connect handler sees,
    /// so they can be announced: `offline` for every user that this node's
    /// sweep of a dead node took offline (only the node whose sweep claimed
    /// the dead node reports, each user once), and the user's status for
    /// every user that came back online when this node re-registered its
    /// connections (it had been swept while alive, or Redis lost its data).
    /// `None`: not reported.
    pub presence_changes: Option<tokio::sync::mpsc::UnboundedSender<PresenceInfo>>,
    /// Told `()` whenever a health check finds that Redis lost this node's
    /// data (a restart without persistence, a flush) while it holds live
    /// connections, after their presence was re-registered: what only the
    /// node knows (the channels its connections are subscribed to) should be
    /// written back. `None`: not reported.
    pub data_lost: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    /// On a Redis Cluster: the sharded pub/sub channel the nodes talk on
    /// (the cluster adapter's, default `socket.io#/#`). The ordered send,
    /// the message counter and the recovery log live in its slot.
    pub shard_channel: String,
    /// On a Redis Cluster: how long the recovery log keeps a message.
    /// Must exceed how long a lost connection stays recoverable (a live
    /// session's TTL) plus delivery delays. Default 3 min.
    pub recovery_log_keep: Duration,
    /// On a Redis Cluster: the most messages the recovery log keeps (beyond
    /// it, the oldest go, and recovering from before them fails). Default
    /// 100 000.
    pub recovery_log_cap: usize,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("node_id", &self.node_id)
            .field("root_ca_pem", &self.root_ca_pem.as_ref().map(|_| "set"))
            .field("health_interval", &self.health_interval)
            .field("node_timeout", &self.node_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("rate_limit_fail_open", &self.rate_limit_fail_open)
            .field("presence_changes", &self.presence_changes.is_some())
            .field("data_lost", &self.data_lost.is_some())
            .field("shard_channel", &self.shard_channel)
            .field("recovery_log_keep", &self.recovery_log_keep)
            .field("recovery_log_cap", &self.recovery_log_cap)
            .finish()
    }
}

impl RedisOptions {
    /// The defaults, for node `node_id`.
    pub fn new(node_id: impl Into<String>) -> Self {
        RedisOptions {
            node_id: node_id.into(),
            root_ca_pem: None,
            health_interval: Duration::from_secs(1),
            node_timeout: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            rate_limit_fail_open: false,
            presence_changes: None,
            data_lost: None,
            shard_channel: "socket.io#/#".to_owned(),
            recovery_log_keep: Duration::from_secs(180),
            recovery_log_cap: 100_000,
        }
    }

    /// On a Redis Cluster: the sharded pub/sub channel of the ordered send
    /// (see [`RedisOptions::shard_channel`]).
    pub fn with_shard_channel(mut self, channel: impl Into<String>) -> Self {
        self.shard_channel = channel.into();
        self
    }

    /// On a Redis Cluster: how long the recovery log keeps a message (see
    /// [`RedisOptions::recovery_log_keep`]).
    pub fn with_recovery_log_keep(mut self, keep: Duration) -> Self {
        self.recovery_log_keep = keep;
        self
    }

    /// Reports to `sink` when Redis lost this node's data (see
    /// [`RedisOptions::data_lost`]).
    pub fn with_data_lost(mut self, sink: tokio::sync::mpsc::UnboundedSender<()>) -> Self {
        self.data_lost = Some(sink);
        self
    }

    /// Trusts the CA certificates in `pem` for TLS.
    pub fn with_root_ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.root_ca_pem = Some(pem);
        self
    }

    /// Sets how often Redis is checked.
    pub fn with_health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval;
        self
    }

    /// Sets how long missed heartbeats make this node count as dead.
    pub fn with_node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Sends the presence changes found by sweeps and re-registrations to
    /// `sink` (see [`RedisOptions::presence_changes`]).
    pub fn with_presence_changes(
        mut self,
        sink: tokio::sync::mpsc::UnboundedSender<PresenceInfo>,
    ) -> Self {
        self.presence_changes = Some(sink);
        self
    }

    /// Sets whether rate limiting lets events pass while Redis is unreachable.
    pub fn with_rate_limit_fail_open(mut self, fail_open: bool) -> Self {
        self.rate_limit_fail_open = fail_open;
        self
    }
}

/// Redis health as last seen by the health task.
const STATE_UNKNOWN: u8 = 0;
const STATE_UP: u8 = 1;
const STATE_DOWN: u8 = 2;

/// One live connection this node registered, kept to re-register it after
/// Redis comes back (a restart without persistence loses every key).
#[derive(Debug, Clone)]
struct LiveConnection {
    /// Whose connection it is.
    user_id: String,
    /// The node recorded with it.
    node_id: String,
}

/// The presence this node has put into Redis, as it should be there now.
#[derive(Debug, Default)]
struct LiveRegistry {
    /// connection id -> owner, for every connection registered and not yet removed.
    connections: HashMap<String, LiveConnection>,
    /// user id -> (connections of that user here, last status set through this node).
    users: HashMap<String, (usize, PresenceStatus)>,
    /// Removals Redis missed while it was unreachable.
    pending_removals: Vec<PendingRemoval>,
}

/// A connection removal to replay once Redis is reachable again.
#[derive(Debug, Clone)]
struct PendingRemoval {
    /// Whose connection it was.
    user_id: String,
    /// The connection.
    connection_id: String,
    /// The node it was recorded with.
    node_id: String,
}

impl LiveRegistry {
    fn add(&mut self, user_id: &str, record: &ConnectionRecord, status: PresenceStatus) {
        if self
            .connections
            .insert(
                record.connection_id.clone(),
                LiveConnection {
                    user_id: user_id.to_owned(),
                    node_id: record.node_id.clone(),
                },
            )
            .is_none()
        {
            let entry = self.users.entry(user_id.to_owned()).or_insert((0, status));
            entry.0 += 1;
            entry.1 = status;
        }
    }

    /// Forgets a connection; returns the node it was recorded with.
    fn remove(&mut self, connection_id: &str) -> Option<String> {
        let live = self.connections.remove(connection_id)?;
        if let Some(entry) = self.users.get_mut(&live.user_id) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                self.users.remove(&live.user_id);
            }
        }
        Some(live.node_id)
    }
}

/// A presence removal deferred by a drain; yields `(user id, last seen)`
/// when it took the user offline.
type DeferredRemoval = tokio::task::JoinHandle<Option<(String, u64)>>;

/// State shared by the backend handles and the health task.
struct Inner {
    /// Key names.
    keys: Keys,
    /// A Redis Cluster: a script touches one slot only.
    cluster: bool,
    /// Options.
    options: RedisOptions,
    /// The connection.
    connector: conn::Connector,
    /// `STATE_*`: Redis health as last checked.
    state: AtomicU8,
    /// Wakes the health task early (a request saw Redis fail).
    wake: Arc<tokio::sync::Notify>,
    /// Woken (all waiters) after every health check that found Redis
    /// answering (and re-registered what it had to).
    answered: tokio::sync::Notify,
    /// What this node registered, for re-registration.
    live: parking_lot::Mutex<LiveRegistry>,
    /// Nodes alive as of the last heartbeat (from `P:nodes`, never from
    /// `PUBSUB NUMSUB`).
    live_nodes: std::sync::atomic::AtomicUsize,
    /// While draining: connection removals wait until then, so users who
    /// reconnect to another node meanwhile never look offline.
    drain_until: parking_lot::Mutex<Option<tokio::time::Instant>>,
    /// The removals deferred while draining; each yields the user it took
    /// offline, if any.
    drain_tasks: parking_lot::Mutex<Vec<DeferredRemoval>>,
}

impl Inner {
    /// The connection, or `Unavailable` at once while the health task knows
    /// Redis is down (so requests fail fast instead of each waiting for a
    /// timeout; the health task notices the recovery).
    fn link(&self) -> BackendResult<conn::Link> {
        if self.state.load(Ordering::SeqCst) == STATE_DOWN {
            return Err(super::BackendError::Unavailable(
                "redis is unreachable".into(),
            ));
        }
        self.connector.link()
    }

    /// The key of the last message id handed out: `P:msgid` on one Redis,
    /// in the shard channel's slot on a Redis Cluster (where the ordered
    /// send assigns ids). Every reader and writer of the counter uses this.
    fn counter_key(&self) -> String {
        if self.cluster {
            self.keys.shard_message_id(&self.options.shard_channel)
        } else {
            self.keys.message_id()
        }
    }

    /// Passes `result` through, waking the health task when it says Redis
    /// is unreachable and the task does not know yet.
    fn observe<T>(&self, result: BackendResult<T>) -> BackendResult<T> {
        if let Err(super::BackendError::Unavailable(_)) = &result
            && self.state.load(Ordering::SeqCst) != STATE_DOWN
        {
            self.wake.notify_one();
        }
        result
    }
}

/// All Redis backends of one node; cheap to clone. Dropping the last clone
/// stops its health task.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("node_id", &self.inner.options.node_id)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Prepares the backend for `settings` and starts its health task, which
    /// connects (and keeps reconnecting, with backoff) in the background.
    /// Fails only when the settings cannot work; an unreachable Redis is not
    /// an error here, the backend just is not ready yet. Must be called
    /// within a Tokio runtime.
    pub fn connect(
        settings: &RedisSettings,
        options: RedisOptions,
    ) -> Result<RedisBackend, RedisSetupError> {
        let connector = conn::Connector::new(
            settings,
            options.root_ca_pem.as_deref(),
            conn::Timeouts {
                connect: options.connect_timeout,
                response: options.response_timeout,
            },
        )?;
        let inner = Arc::new(Inner {
            keys: Keys::new(&settings.key_prefix),
            cluster: settings.cluster,
            options,
            connector,
            state: AtomicU8::new(STATE_UNKNOWN),
            wake: Arc::new(tokio::sync::Notify::new()),
            answered: tokio::sync::Notify::new(),
            live: parking_lot::Mutex::new(LiveRegistry::default()),
            live_nodes: std::sync::atomic::AtomicUsize::new(1),
            drain_until: parking_lot::Mutex::new(None),
            drain_tasks: parking_lot::Mutex::new(Vec::new()),
        });
        tokio::spawn(health::run(Arc::downgrade(&inner)));
        tracing::info!(redis = %settings.redacted_url(), cluster = settings.cluster, "using Redis backends");
        Ok(RedisBackend { inner })
    }

    /// The key of the last message id handed out, for the cross-node
    /// adapter's sequence probes (see `ClusterOptions::sequence_key`).
    pub fn sequence_key(&self) -> String {
        self.inner.counter_key()
    }

    /// The three backends of [`Backends`], all on this Redis.
    pub fn into_backends(self) -> Backends {
        let backend = Arc::new(self);
        Backends {
            presence: backend.clone(),
            channels: backend.clone(),
            history: backend.clone(),
            rate_limits: backend.clone(),
            sessions: backend.clone(),
            health: backend,
        }
    }

    /// Whether Redis answered the last health check.
    pub fn is_ready(&self) -> bool {
        self.inner.state.load(Ordering::SeqCst) == STATE_UP
    }

    /// Requests sent to Redis by this node so far (a pipeline counts once);
    /// the tests use it to measure round trips per event.
    pub fn requests_sent(&self) -> u64 {
        self.inner.connector.requests()
    }

    /// How many chatgate nodes are alive, counted from their heartbeats at
    /// this node's last health check (1, this node, until then).
    pub fn live_nodes(&self) -> usize {
        self.inner.live_nodes.load(Ordering::Relaxed)
    }

    /// Starts draining: from now on, removing a connection's presence is
    /// deferred until `grace` has passed (counted from this call), so a user
    /// whose client reconnects to another node within it never goes offline.
    /// Such removals report "still online"; [`RedisBackend::finish_drain`]
    /// waits for them and returns the users they did take offline.
    pub fn begin_drain(&self, grace: Duration) {
        *self.inner.drain_until.lock() = Some(tokio::time::Instant::now() + grace);
    }

    /// Waits for the removals deferred by [`RedisBackend::begin_drain`] (they
    /// run once the grace period is over) and returns `(user id, last seen)`
    /// of every user they took offline, to be announced.
    pub async fn finish_drain(&self) -> Vec<(String, u64)> {
        let tasks = std::mem::take(&mut *self.inner.drain_tasks.lock());
        let mut offline = Vec::new();
        for task in tasks {
            if let Ok(Some(user)) = task.await {
                offline.push(user);
            }
        }
        offline
    }

    /// How many connections this node holds registered (and would
    /// re-register after a Redis restart).
    pub fn live_connections(&self) -> usize {
        self.inner.live.lock().connections.len()
    }
}

#[async_trait::async_trait]
impl BackendHealth for RedisBackend {
    fn is_ready(&self) -> bool {
        RedisBackend::is_ready(self)
    }

    /// Waits for the next health check that finds Redis answering: within
    /// `health_interval` while Redis is up, within about a second of Redis
    /// answering again while it is down.
    async fn recovered(&self) {
        self.inner.answered.notified().await;
    }

    fn live_nodes(&self) -> usize {
        RedisBackend::live_nodes(self)
    }
}
