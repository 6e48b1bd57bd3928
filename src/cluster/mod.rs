//! Cross-node delivery: a Redis pub/sub [`Adapter`] for chatgate's engine,
//! wire-compatible with Node's `@socket.io/redis-adapter` (v8), so
//! `@socket.io/redis-emitter` can emit into chatgate rooms.
//!
//! On one Redis, nodes use classic pub/sub in the adapter's format
//! (`PUBLISH`, `PSUBSCRIBE socket.io#/#*`, requests on
//! `socket.io-request#/#`). On a Redis Cluster they use sharded pub/sub in
//! the format of the adapter's `createShardedAdapter` (`SPUBLISH` and
//! `SSUBSCRIBE` on `socket.io#/#`, one slot), and still listen on the classic
//! channels for emitters.
//!
//! # Design
//!
//! [`ClusterAdapter`] wraps a [`LocalAdapter`]. Every operation is applied
//! locally at once; broadcasts, room joins/leaves and disconnects are also
//! encoded (see `wire.rs`) and handed to a background publisher through a
//! bounded queue: the engine's synchronous adapter methods never wait on
//! Redis. A batch Redis fails to take is sent again on a fresh connection
//! (the first publish after a Redis restart meets the dead one); a full
//! queue, or a batch that fails again, drops the publish, counts it
//! ([`ClusterStats::dropped`], metric `chatgate_cluster_publish_dropped_total`)
//! and logs it. A caller that must know whether its publishes went out
//! (the server API) queues them within [`confirming`].
//!
//! A subscriber connection (RESP3, pushes) listens on the broadcast pattern
//! and the request channel and applies what other nodes (and emitters) send
//! to the local sockets; messages carrying this node's uid are skipped. The
//! subscription is made again whenever the connection was lost (Redis
//! restart, failover), by the client's automatic resubscription and by a
//! watchdog that pings every second and re-subscribes after any loss.
//!
//! Nothing here waits for other nodes: there are no request/response
//! exchanges, so a dead node can never stall a live one. Node liveness
//! (heartbeats, `P:nodes`) lives in the Redis backend, which also sweeps a
//! dead node's connections; `delivery::spawn_presence_announcer` turns the
//! users that sweep took offline into `presence:update` events, which reach
//! every node through this adapter. The adapter itself knows nothing of chat:
//! it carries rooms and packets.

mod wire;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chatgate_sio::{
    Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalAdapter, Room, Socket,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::config::RedisSettings;

/// Options of the cluster adapter.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Prefix of the pub/sub channels: `key` of `@socket.io/redis-adapter`
    /// and `@socket.io/redis-emitter` (default `socket.io`).
    pub channel_prefix: String,
    /// Bound of each cross-node queue: publishes waiting for the publisher,
    /// and received messages waiting for the dispatcher. Beyond it new ones
    /// are dropped and counted (`CLUSTER_QUEUE_CAPACITY`).
    pub queue_capacity: usize,
    /// How often the subscriber checks its connection (and re-subscribes
    /// after a loss).
    pub watchdog_interval: Duration,
    /// The key of the last message id handed out, when Redis publishes the
    /// ordered messages: after (re)subscribing, and at every check, the
    /// subscriber publishes it as a sequence probe, so a missed tail of the
    /// ordered messages shows (and is filled from history, or the recovery
    /// log on a Redis Cluster). On a Redis Cluster it must be in the slot
    /// of the sharded channel (`RedisBackend::sequence_key`).
    pub sequence_key: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            channel_prefix: "socket.io".to_owned(),
            queue_capacity: 65_536,
            watchdog_interval: Duration::from_secs(1),
            sequence_key: None,
        }
    }
}

impl ClusterOptions {
    /// The broadcast channel of namespace `nsp`: on a Redis Cluster, the
    /// one sharded channel the nodes talk on (`socket.io#/#`).
    pub fn broadcast_channel(&self, nsp: &str) -> String {
        wire::Channels::new(&self.channel_prefix, nsp).broadcast
    }
}

/// Counters of one adapter.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Messages handed to the publisher.
    pub enqueued: AtomicU64,
    /// Messages published to Redis.
    pub published: AtomicU64,
    /// Messages the publisher failed to publish (also counted in `dropped`).
    pub failed: AtomicU64,
    /// Publishes dropped: queue full, or Redis failed to take them.
    pub dropped: AtomicU64,
    /// Messages received from other nodes and applied locally.
    pub received: AtomicU64,
    /// Messages received but dropped: the dispatcher fell `queue_capacity` behind.
    pub received_dropped: AtomicU64,
    /// Messages received that could not be decoded (ignored).
    pub malformed: AtomicU64,
    /// Times the subscription was (re)made.
    pub subscriptions: AtomicU64,
}

/// One message for the publisher.
struct Publish {
    channel: String,
    payload: Vec<u8>,
    /// Told whether the message was published, when someone waits for it
    /// (a confirmed join).
    done: Option<oneshot::Sender<bool>>,
    /// Told `()` once the message is published; dropped unsent when it was
    /// dropped (see [`confirming`]).
    confirm: Option<oneshot::Sender<()>>,
}

thread_local! {
    /// While [`confirming`] runs its closure on this thread: the
    /// confirmations of the publishes the closure queued.
    static CONFIRMATIONS: RefCell<Option<Vec<oneshot::Receiver<()>>>> =
        const { RefCell::new(None) };
}

/// Runs `queue` (an emit, a room operation) and returns, next to its result,
/// the outcome of the cross-node publishes it queued: for a caller that must
/// not report success for a message other nodes never got (the server API).
/// Without the cross-node adapter there is nothing to wait for.
pub fn confirming<R>(queue: impl FnOnce() -> R) -> (R, Published) {
    let outer = CONFIRMATIONS.with(|slot| slot.replace(Some(Vec::new())));
    let result = queue();
    let mine = CONFIRMATIONS.with(|slot| slot.replace(outer));
    (result, Published(mine.unwrap_or_default()))
}

/// The cross-node publishes queued within [`confirming`].
#[derive(Debug)]
#[must_use = "wait for the publishes, or there was no point confirming them"]
pub struct Published(Vec<oneshot::Receiver<()>>);

impl Published {
    /// Waits (up to `timeout`) for every publish; whether all reached Redis.
    /// `false` when one was dropped (queue full, Redis failed after the
    /// retries) or the time ran out.
    pub async fn wait(self, timeout: Duration) -> bool {
        let all = futures_util::future::try_join_all(self.0);
        matches!(tokio::time::timeout(timeout, all).await, Ok(Ok(_)))
    }
}

/// Finds the ordered messages that a node missed: for the given rooms, those
/// with an id above `after` and below `before`, each ready for the local
/// adapter, in id order. See [`ClusterAdapter::set_gap_filler`].
pub type GapFiller = dyn Fn(u64, u64, Vec<Room>) -> BoxFuture<'static, Vec<(BroadcastPacket, BroadcastOptions)>>
    + Send
    + Sync;

/// State shared by the adapter and its background tasks.
struct Shared {
    /// The id of the last ordered message delivered, or announced by a
    /// sequence probe.
    last_seq: AtomicU64,
    /// `last_seq` holds a real position (a probe or an ordered message came
    /// since this node started); before, nothing is owed to anyone here.
    sequence_known: AtomicBool,
    /// Fills a gap in the ordered messages, once set.
    gap_filler: std::sync::OnceLock<Arc<GapFiller>>,
    /// The local part.
    local: LocalAdapter,
    /// This node's uid on the wire (messages with it are our own echoes).
    uid: String,
    /// The namespace served.
    nsp: String,
    /// Channel names.
    channels: wire::Channels,
    /// Classic pub/sub (one Redis) or sharded pub/sub (Redis Cluster).
    sharded: bool,
    /// To the publisher.
    outbox: mpsc::Sender<Publish>,
    /// Counters.
    stats: Arc<ClusterStats>,
}

impl Shared {
    /// Encodes `message` in this node's mode and queues it.
    fn send(&self, message: wire::Outgoing<'_>) {
        self.send_confirmed(message, None);
    }

    /// Like [`send`](Self::send); `done` learns whether it was published.
    fn send_confirmed(&self, message: wire::Outgoing<'_>, done: Option<oneshot::Sender<bool>>) {
        let encoded = if self.sharded {
            wire::encode_sharded(&self.uid, &self.nsp, message)
                .map(|payload| (self.channels.broadcast.clone(), payload))
        } else {
            match message {
                wire::Outgoing::Broadcast(packet, opts) => {
                    wire::encode_broadcast(&self.uid, &self.nsp, packet, opts)
                        .map(|payload| (self.channels.broadcast_channel(opts), payload))
                }
                wire::Outgoing::Join(opts, rooms) => Some((
                    self.channels.request.clone(),
                    wire::encode_rooms_request(&self.uid, wire::REMOTE_JOIN, opts, rooms),
                )),
                wire::Outgoing::Leave(opts, rooms) => Some((
                    self.channels.request.clone(),
                    wire::encode_rooms_request(&self.uid, wire::REMOTE_LEAVE, opts, rooms),
                )),
                wire::Outgoing::Disconnect(opts, close) => Some((
                    self.channels.request.clone(),
                    wire::encode_disconnect_request(&self.uid, opts, close),
                )),
            }
        };
        match encoded {
            Some((channel, payload)) => self.publish(channel, payload, done),
            None => tracing::error!("a broadcast packet could not be encoded for other nodes"),
        }
    }

    fn publish(&self, channel: String, payload: Vec<u8>, done: Option<oneshot::Sender<bool>>) {
        let confirm = CONFIRMATIONS.with(|slot| {
            slot.borrow_mut().as_mut().map(|waiting| {
                let (tx, rx) = oneshot::channel();
                waiting.push(rx);
                tx
            })
        });
        let publish = Publish {
            channel,
            payload,
            done,
            confirm,
        };
        match self.outbox.try_send(publish) {
            Ok(()) => {
                self.stats.enqueued.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("chatgate_cluster_publish_dropped_total").increment(1);
                // Log the first drop and then every 1000th, not each one.
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    let why = match err {
                        mpsc::error::TrySendError::Full(_) => "queue full",
                        mpsc::error::TrySendError::Closed(_) => "publisher stopped",
                    };
                    tracing::warn!(dropped, why, "cross-node publish dropped");
                }
            }
        }
    }

    /// Applies a message from the broadcast pattern.
    async fn on_broadcast(&self, payload: &[u8]) {
        match wire::decode_broadcast(payload, &self.nsp) {
            Some(incoming) if incoming.uid == self.uid => {}
            Some(incoming) => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                if let Some((prev, seq)) = incoming.sequence
                    && !self.in_sequence(prev, seq).await
                {
                    return;
                }
                self.local.broadcast(&incoming.packet, &incoming.opts);
            }
            None => match wire::decode_probe(payload) {
                Some(last) => self.on_probe(last).await,
                None => {
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("ignored a broadcast message that is not for this namespace");
                }
            },
        }
    }

    /// Keeps the ordered messages in id order: `seq` follows `prev`. When
    /// messages were missed (the subscription was lost for a while, or the
    /// dispatcher fell behind), the gap is filled from history first, so
    /// the local sockets get them before this one. False when `seq` was
    /// delivered already (by such a fill).
    async fn in_sequence(&self, prev: u64, seq: u64) -> bool {
        let known = self.sequence_known.swap(true, Ordering::SeqCst);
        let last = self.last_seq.load(Ordering::SeqCst);
        if known && seq <= last {
            return false;
        }
        // `prev < last`: Redis lost its counter (a restart without
        // persistence); nothing after `last` was published before it.
        if known && prev > last {
            metrics::counter!("chatgate_cluster_gaps_total").increment(1);
            tracing::warn!(
                after = last,
                before = seq,
                "ordered messages missed: filling from history"
            );
            if let Some(filler) = self.gap_filler.get() {
                let rooms = self.local.rooms();
                for (packet, opts) in filler(last, seq, rooms).await {
                    self.local.broadcast(&packet, &opts);
                }
            }
        }
        self.last_seq.store(seq, Ordering::SeqCst);
        true
    }

    /// A sequence probe: the last ordered message published before it has
    /// id `last`. Anything above what was delivered is filled from history.
    async fn on_probe(&self, last: u64) {
        let delivered = self.last_seq.load(Ordering::SeqCst);
        if !self.sequence_known.swap(true, Ordering::SeqCst) {
            // A fresh subscriber: what came before it is not owed to anyone here.
            self.last_seq.store(last, Ordering::SeqCst);
            return;
        }
        if last <= delivered {
            return;
        }
        metrics::counter!("chatgate_cluster_gaps_total").increment(1);
        tracing::warn!(
            after = delivered,
            upto = last,
            "ordered messages missed: filling from history"
        );
        if let Some(filler) = self.gap_filler.get() {
            let rooms = self.local.rooms();
            for (packet, opts) in filler(delivered, last.saturating_add(1), rooms).await {
                self.local.broadcast(&packet, &opts);
            }
        }
        self.last_seq.store(last, Ordering::SeqCst);
    }

    /// Applies a message from the request channel.
    fn on_request(&self, payload: &[u8]) {
        let Some((uid, request)) = wire::decode_request(payload) else {
            tracing::debug!("ignored a request chatgate does not serve");
            return;
        };
        if uid != self.uid {
            self.apply(request);
        }
    }

    /// Applies a sharded message; ordered sends and sequence probes as
    /// [`on_broadcast`](Self::on_broadcast) does.
    async fn on_sharded(&self, payload: &[u8]) {
        match wire::decode_sharded(payload, &self.nsp) {
            Some((uid, _)) if uid == self.uid => {}
            Some((_, wire::Sharded::Broadcast(packet, opts, sequence))) => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                if let Some((prev, seq)) = sequence
                    && !self.in_sequence(prev, seq).await
                {
                    return;
                }
                self.local.broadcast(&packet, &opts);
            }
            Some((_, wire::Sharded::Request(request))) => self.apply(request),
            None => match wire::decode_sharded_probe(payload) {
                Some(last) => self.on_probe(last).await,
                None => tracing::debug!("ignored a sharded message chatgate does not serve"),
            },
        }
    }

    fn apply(&self, request: wire::Request) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        match request {
            wire::Request::Join(opts, rooms) => self.local.sockets_join(&opts, &rooms),
            wire::Request::Leave(opts, rooms) => self.local.sockets_leave(&opts, &rooms),
            wire::Request::Disconnect(opts, close) => self.local.disconnect_sockets(&opts, close),
        }
    }

    async fn on_push(&self, push: PushInfo) -> bool {
        let bytes = |v: Option<&Value>| match v {
            Some(Value::BulkString(b)) => Some(b.clone()),
            Some(Value::SimpleString(s)) => Some(s.clone().into_bytes()),
            _ => None,
        };
        let (channel, payload) = match push.kind {
            PushKind::PMessage => (bytes(push.data.get(1)), bytes(push.data.get(2))),
            PushKind::Message | PushKind::SMessage => {
                (bytes(push.data.first()), bytes(push.data.get(1)))
            }
            PushKind::Disconnection => return false,
            _ => return true,
        };
        let (Some(channel), Some(payload)) = (channel, payload) else {
            return true;
        };
        if push.kind == PushKind::SMessage {
            self.on_sharded(&payload).await;
        } else if channel == self.channels.request.as_bytes() {
            self.on_request(&payload);
        } else if channel.starts_with(self.channels.broadcast.as_bytes()) {
            self.on_broadcast(&payload).await;
        }
        true
    }
}

/// A Redis pub/sub [`Adapter`]: local delivery plus cross-node delivery in
/// the `@socket.io/redis-adapter` format. Build it with
/// [`ClusterAdapter::start`].
pub struct ClusterAdapter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ClusterAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAdapter")
            .field("uid", &self.shared.uid)
            .field("nsp", &self.shared.nsp)
            .finish_non_exhaustive()
    }
}

/// The cluster settings cannot work (a bad URL).
#[derive(Debug, thiserror::Error)]
#[error("cluster pub/sub settings are unusable: {0}")]
pub struct ClusterSetupError(String);

impl ClusterAdapter {
    /// An adapter for namespace `nsp` of node `uid` on the Redis of
    /// `settings`: classic pub/sub on one Redis, sharded pub/sub on a Redis
    /// Cluster. Starts its publisher and subscriber tasks (they connect in
    /// the background and keep reconnecting). Must run in a Tokio runtime.
    /// Fails only when the settings cannot work.
    pub fn start(
        settings: &RedisSettings,
        uid: &str,
        nsp: &str,
        options: ClusterOptions,
    ) -> Result<Arc<ClusterAdapter>, ClusterSetupError> {
        if settings.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let setup = |err: redis::RedisError| {
            ClusterSetupError(format!("{} ({:?})", settings.redacted_url(), err.kind()))
        };
        let (outbox, inbox) = mpsc::channel(options.queue_capacity.max(1));
        let stats = Arc::new(ClusterStats::default());
        let shared = Arc::new(Shared {
            last_seq: AtomicU64::new(0),
            sequence_known: AtomicBool::new(false),
            gap_filler: std::sync::OnceLock::new(),
            local: LocalAdapter::new(),
            uid: uid.to_owned(),
            nsp: nsp.to_owned(),
            channels: wire::Channels::new(&options.channel_prefix, nsp),
            sharded: settings.cluster,
            outbox,
            stats: stats.clone(),
        });
        let (push_tx, push_rx) = mpsc::channel::<PushInfo>(options.queue_capacity.max(1));
        let push_stats = stats.clone();
        let push_sender = move |push: PushInfo| {
            if push_tx.try_send(push).is_err() {
                let dropped = push_stats.received_dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    tracing::warn!(dropped, "cross-node message dropped: dispatcher behind");
                }
            }
            Ok::<(), redis::aio::SendError>(())
        };
        let url = settings.url.expose().as_str();
        let (publisher, subscriber) = if settings.cluster {
            let builder = || {
                ClusterClient::builder([url])
                    .connection_timeout(Duration::from_secs(1))
                    .response_timeout(Duration::from_secs(2))
                    .retries(2)
            };
            let publisher = builder().build().map_err(setup)?;
            let subscriber = builder()
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(push_sender)
                .build()
                .map_err(setup)?;
            (
                Source::Cluster(Box::new(publisher)),
                Source::Cluster(Box::new(subscriber)),
            )
        } else {
            let publisher_client = redis::Client::open(url).map_err(setup)?;
            let info = publisher_client.get_connection_info().clone();
            let resp3 = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            let subscriber_client =
                redis::Client::open(info.set_redis_settings(resp3)).map_err(setup)?;
            let base = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_secs(2)))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let publisher = ConnectionManager::new_lazy_with_config(publisher_client, base.clone())
                .map_err(setup)?;
            let config = base
                .set_push_sender(push_sender)
                .set_automatic_resubscription();
            let subscriber = ConnectionManager::new_lazy_with_config(subscriber_client, config)
                .map_err(setup)?;
            (
                Source::Single(Link::Single(publisher)),
                Source::Single(Link::Single(subscriber)),
            )
        };
        tokio::spawn(run_publisher(publisher, inbox, stats, settings.cluster));
        let lost = Arc::new(AtomicBool::new(true));
        let wake = Arc::new(Notify::new());
        tokio::spawn(run_dispatcher(
            Arc::downgrade(&shared),
            push_rx,
            lost.clone(),
            wake.clone(),
        ));
        tokio::spawn(run_watchdog(
            Arc::downgrade(&shared),
            subscriber,
            lost,
            wake,
            options.watchdog_interval,
            options.sequence_key,
        ));
        tracing::info!(
            uid,
            nsp,
            prefix = %options.channel_prefix,
            sharded = settings.cluster,
            "cross-node delivery through Redis pub/sub"
        );
        Ok(Arc::new(ClusterAdapter { shared }))
    }

    /// This node's counters.
    pub fn stats(&self) -> &ClusterStats {
        &self.shared.stats
    }

    /// How this node fills a gap in the ordered messages it received (set
    /// once, after the chat service exists; before that, gaps are counted
    /// and logged only).
    pub fn set_gap_filler(&self, filler: Arc<GapFiller>) {
        let _ = self.shared.gap_filler.set(filler);
    }

    /// `event` to `room` (except the socket `except`) as the ordered send
    /// publishes it from inside Redis: the channel and the payload around
    /// the gaps Redis fills (see `wire::ordered_event_parts`): classic
    /// pub/sub on one Redis, the sharded channel on a Redis Cluster. `None`
    /// when `payload` lacks `gap_field`.
    pub fn ordered_event_parts(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        payload: &serde_json::Map<String, serde_json::Value>,
        gap_field: &str,
    ) -> Option<(String, [Vec<u8>; 5])> {
        wire::ordered_event_parts(
            &self.shared.channels,
            &self.shared.nsp,
            room,
            except,
            event,
            payload,
            gap_field,
            self.shared.sharded,
        )
    }

    /// Waits (up to `timeout`) until everything queued so far was published
    /// or failed; for a clean exit. Returns whether it got there in time.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let stats = &self.shared.stats;
        let target = stats.enqueued.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done = stats.published.load(Ordering::SeqCst) + stats.failed.load(Ordering::SeqCst);
            if done >= target {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// An open connection: one Redis, or a Redis Cluster.
#[derive(Clone)]
enum Link {
    /// One Redis (reconnects by itself).
    Single(ConnectionManager),
    /// A Redis Cluster (follows the cluster, re-subscribes by itself).
    Cluster(ClusterConnection),
}

impl Link {
    async fn exec(&mut self, pipe: &redis::Pipeline) -> RedisResult<()> {
        match self {
            Link::Single(c) => pipe.query_async(c).await,
            Link::Cluster(c) => pipe.query_async(c).await,
        }
    }

    /// `GET key`.
    async fn get(&mut self, key: &str) -> RedisResult<Option<String>> {
        let get = redis::cmd("GET").arg(key).clone();
        match self {
            Link::Single(c) => get.query_async(c).await,
            Link::Cluster(c) => get.query_async(c).await,
        }
    }

    /// `PUBLISH channel payload`, or `SPUBLISH` when `sharded`.
    async fn publish(&mut self, channel: &str, payload: Vec<u8>, sharded: bool) -> RedisResult<()> {
        let command = if sharded { "SPUBLISH" } else { "PUBLISH" };
        let publish = redis::cmd(command).arg(channel).arg(payload).clone();
        match self {
            Link::Single(c) => publish.query_async::<Value>(c).await.map(drop),
            Link::Cluster(c) => publish.query_async::<Value>(c).await.map(drop),
        }
    }

    async fn ping(&mut self) -> RedisResult<()> {
        let ping = redis::cmd("PING");
        match self {
            Link::Single(c) => ping.query_async::<Value>(c).await.map(drop),
            Link::Cluster(c) => ping.query_async::<Value>(c).await.map(drop),
        }
    }

    /// Subscribes to what this node listens to.
    async fn subscribe(&mut self, channels: &wire::Channels) -> RedisResult<()> {
        let pattern = format!("{}*", channels.broadcast);
        match self {
            Link::Single(c) => {
                c.psubscribe(&pattern).await?;
                c.subscribe(&channels.request).await
            }
            Link::Cluster(c) => {
                // Nodes talk over the sharded channel; emitters (classic
                // PUBLISH) are heard through the classic subscriptions.
                c.ssubscribe(&channels.broadcast).await?;
                c.psubscribe(&pattern).await?;
                c.subscribe(&channels.request).await
            }
        }
    }
}

/// Where a connection comes from.
enum Source {
    /// Already made (a lazy connection manager).
    Single(Link),
    /// Made on first use (a cluster connection must reach a node to start).
    Cluster(Box<ClusterClient>),
}

impl Source {
    /// The connection, opening it if needed.
    async fn link(&self, cached: &mut Option<Link>) -> RedisResult<Link> {
        if let Some(link) = cached {
            return Ok(link.clone());
        }
        let link = match self {
            Source::Single(link) => link.clone(),
            Source::Cluster(client) => {
                let open =
                    tokio::time::timeout(Duration::from_secs(3), client.get_async_connection());
                match open.await {
                    Ok(connection) => Link::Cluster(connection?),
                    Err(_) => {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "connecting to the Redis cluster timed out",
                        )));
                    }
                }
            }
        };
        *cached = Some(link.clone());
        Ok(link)
    }
}

/// How many times the publisher sends a batch before dropping it: once, then
/// again on a fresh connection (the first publish after a Redis restart
/// meets the dead connection).
const PUBLISH_ATTEMPTS: u32 = 3;

/// Pause before the second retry of a batch (the first is immediate: the
/// failure already started the reconnection it waits for).
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Whether a failed publish may be sent again: the connection failed, so
/// Redis did not take it. Not after a timeout, where Redis may have
/// published it already (a retry would deliver it twice).
fn retry_publish(err: &redis::RedisError) -> bool {
    !err.is_timeout()
        && (err.is_io_error()
            || err.is_unrecoverable_error()
            || err.is_cluster_error()
            || err.kind() == redis::ErrorKind::ClusterConnectionNotFound)
}

/// Sends one batch, retrying on a fresh connection (see [`PUBLISH_ATTEMPTS`]).
async fn send_batch(
    source: &Source,
    cached: &mut Option<Link>,
    pipe: &redis::Pipeline,
) -> RedisResult<()> {
    let mut attempt = 1;
    loop {
        let sent = match source.link(cached).await {
            Ok(mut link) => link.exec(pipe).await,
            Err(err) => Err(err),
        };
        match sent {
            Err(err) if attempt < PUBLISH_ATTEMPTS && retry_publish(&err) => {
                tracing::debug!(error = %err, attempt, "cross-node publish failed; retrying");
                if matches!(source, Source::Cluster(_)) && err.is_unrecoverable_error() {
                    // A new cluster connection, from the seed node.
                    *cached = None;
                }
                if attempt > 1 {
                    tokio::time::sleep(PUBLISH_RETRY_PAUSE).await;
                }
                attempt += 1;
            }
            sent => return sent,
        }
    }
}

/// Sends queued publishes, in order, in pipelines of up to 256
/// (`SPUBLISH` on a cluster: one channel, so one slot). A batch that fails
/// is retried ([`send_batch`]), and only then dropped and counted.
async fn run_publisher(
    source: Source,
    mut inbox: mpsc::Receiver<Publish>,
    stats: Arc<ClusterStats>,
    sharded: bool,
) {
    let command = if sharded { "SPUBLISH" } else { "PUBLISH" };
    let mut cached = None;
    let mut batch = Vec::with_capacity(256);
    let mut failures: u64 = 0;
    while inbox.recv_many(&mut batch, 256).await > 0 {
        let mut pipe = redis::pipe();
        for message in &batch {
            pipe.cmd(command)
                .arg(&message.channel)
                .arg(&message.payload)
                .ignore();
        }
        let count = batch.len() as u64;
        let sent = send_batch(&source, &mut cached, &pipe).await;
        let published = sent.is_ok();
        match sent {
            Ok(()) => {
                for message in &mut batch {
                    if let Some(confirm) = message.confirm.take() {
                        let _ = confirm.send(());
                    }
                }
                stats.published.fetch_add(count, Ordering::Relaxed);
                metrics::counter!("chatgate_cluster_published_total").increment(count);
                if failures > 0 {
                    tracing::info!(
                        failed_batches = failures,
                        "cross-node publishing works again"
                    );
                    failures = 0;
                }
            }
            Err(err) => {
                stats.failed.fetch_add(count, Ordering::Relaxed);
                stats.dropped.fetch_add(count, Ordering::Relaxed);
                metrics::counter!("chatgate_cluster_publish_dropped_total").increment(count);
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %err, dropped = count, "cross-node publish failed");
                }
            }
        }
        for message in batch.drain(..) {
            if let Some(done) = message.done {
                let _ = done.send(published);
            }
        }
    }
}

/// Applies pushed messages; flags a lost connection for the watchdog.
async fn run_dispatcher(
    shared: std::sync::Weak<Shared>,
    mut pushes: mpsc::Receiver<PushInfo>,
    lost: Arc<AtomicBool>,
    wake: Arc<Notify>,
) {
    while let Some(push) = pushes.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.on_push(push).await {
            lost.store(true, Ordering::SeqCst);
            wake.notify_one();
        }
    }
}

/// Subscribes, then pings every `interval`; subscribes again after any loss.
async fn run_watchdog(
    shared: std::sync::Weak<Shared>,
    source: Source,
    lost: Arc<AtomicBool>,
    wake: Arc<Notify>,
    interval: Duration,
    sequence_key: Option<String>,
) {
    let mut cached = None;
    let mut failures: u32 = 0;
    loop {
        let Some(state) = shared.upgrade() else {
            return;
        };
        let channels = state.channels.clone();
        let stats = state.stats.clone();
        drop(state);
        let link = source.link(&mut cached).await;
        if lost.load(Ordering::SeqCst) {
            let subscribed = match link {
                Ok(mut link) => link.subscribe(&channels).await,
                Err(err) => Err(err),
            };
            let subscribed = match subscribed {
                Ok(()) => probe(&source, &mut cached, &channels, sequence_key.as_deref()).await,
                Err(err) => Err(err),
            };
            match subscribed {
                Ok(()) => {
                    lost.store(false, Ordering::SeqCst);
                    let n = stats.subscriptions.fetch_add(1, Ordering::Relaxed) + 1;
                    if n > 1 {
                        tracing::info!("cross-node subscription restored");
                    }
                    failures = 0;
                }
                Err(err) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %err, "cross-node subscription failed; retrying");
                    }
                }
            }
        } else {
            let pinged = match link {
                Ok(mut link) => link.ping().await,
                Err(err) => Err(err),
            };
            let pinged = match pinged {
                Ok(()) => probe(&source, &mut cached, &channels, sequence_key.as_deref()).await,
                Err(err) => Err(err),
            };
            if let Err(err) = pinged {
                tracing::warn!(error = %err, "cross-node subscriber lost Redis; will re-subscribe");
                lost.store(true, Ordering::SeqCst);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
        }
    }
}

/// Publishes a sequence probe (see [`ClusterOptions::sequence_key`]): the
/// last message id handed out, read now, so it follows every message with
/// that id or lower on the pub/sub.
async fn probe(
    source: &Source,
    cached: &mut Option<Link>,
    channels: &wire::Channels,
    sequence_key: Option<&str>,
) -> RedisResult<()> {
    let Some(key) = sequence_key else {
        return Ok(());
    };
    let mut link = source.link(cached).await?;
    let last: Option<String> = link.get(key).await?;
    let last = last.and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
    // On a Redis Cluster the counter and the shard channel share a slot, so
    // the probe follows every message with that id or lower there too.
    let (sharded, payload) = match link {
        Link::Single(_) => (false, wire::encode_probe(last)),
        Link::Cluster(_) => (true, wire::encode_sharded_probe(last)),
    };
    if let Some(payload) = payload {
        link.publish(&channels.broadcast, payload, sharded).await?;
    }
    Ok(())
}

impl Adapter for ClusterAdapter {
    fn add_socket(&self, socket: &Socket) {
        self.shared.local.add_socket(socket)
    }

    fn remove_socket(&self, socket: &Socket) {
        self.shared.local.remove_socket(socket)
    }

    fn socket_id_changed(&self, socket: &Socket, old_id: &str) {
        self.shared.local.socket_id_changed(socket, old_id);
    }

    fn get_socket(&self, sid: &str) -> Option<Socket> {
        self.shared.local.get_socket(sid)
    }

    fn socket_count(&self) -> usize {
        self.shared.local.socket_count()
    }

    fn room_count(&self) -> usize {
        self.shared.local.room_count()
    }

    fn join(&self, socket: &Socket, room: Room) {
        self.shared.local.join(socket, room)
    }

    fn leave(&self, socket: &Socket, room: &Room) {
        self.shared.local.leave(socket, room)
    }

    fn socket_rooms(&self, socket: &Socket) -> Vec<Room> {
        self.shared.local.socket_rooms(socket)
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        self.shared.local.broadcast(packet, opts);
        self.shared.send(wire::Outgoing::Broadcast(packet, opts));
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.shared.local.sockets_join(opts, rooms);
        self.shared.send(wire::Outgoing::Join(opts, rooms));
    }

    fn sockets_join_confirmed<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, bool> {
        self.shared.local.sockets_join(opts, rooms);
        let (done, published) = oneshot::channel();
        self.shared
            .send_confirmed(wire::Outgoing::Join(opts, rooms), Some(done));
        // Requests and messages reach every node over one subscription, in
        // the order Redis took them: once published, the join comes first.
        Box::pin(async move { published.await.unwrap_or(false) })
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.shared.local.sockets_leave(opts, rooms);
        self.shared.send(wire::Outgoing::Leave(opts, rooms));
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.shared.local.disconnect_sockets(opts, close);
        self.shared.send(wire::Outgoing::Disconnect(opts, close));
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        self.shared.local.local_sockets(opts)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chatgate_sio::{Adapter, BroadcastOptions, BroadcastPacket};

    use super::*;
    use crate::config::Config;

    /// Over `queue_capacity`, publishes are dropped and counted, never
    /// waited for: the adapter's methods must not block on Redis.
    #[tokio::test]
    async fn publishes_over_the_queue_bound_are_dropped_and_counted() {
        // Nothing listens on the discard port: the publisher cannot drain,
        // and on this single-threaded runtime it does not run before the
        // next `.await` anyway.
        let env = HashMap::from([("REDIS_URL".to_owned(), "redis://127.0.0.1:9".to_owned())]);
        let config = Config::from_sources(["chatgate"], &env).unwrap_or_else(|e| panic!("{e}"));
        let settings = config.redis.unwrap_or_else(|| panic!("REDIS_URL is set"));
        let options = ClusterOptions {
            queue_capacity: 3,
            ..ClusterOptions::default()
        };
        let adapter = ClusterAdapter::start(&settings, "node-test", "/", options)
            .unwrap_or_else(|e| panic!("{e}"));
        let packet = BroadcastPacket::from_parts(r#"2["message:new",{"n":1}]"#, Vec::new());
        let opts = BroadcastOptions {
            rooms: vec!["general".into()],
            except: Vec::new(),
        };
        for _ in 0..10 {
            adapter.broadcast(&packet, &opts);
        }
        let stats = adapter.stats();
        assert_eq!(stats.enqueued.load(Ordering::Relaxed), 3);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 7);
    }
}
