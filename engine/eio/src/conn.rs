//! One Engine.IO session: outbound queue, heartbeat, close state.
//!
//! The connection never owns a transport. Whoever serves it (the WebSocket
//! task, or polling GET requests plus a small driver task) drains the queue
//! and watches the state. Producers (emits, broadcasts) only lock the state
//! briefly, push pre-encoded frames and wake the transport with one
//! `Notify`: no channel is allocated while a connection is idle.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::EngineConfig;
use crate::error::SendError;
use crate::frame::Frame;
use crate::handler::{BoxFuture, CloseReason, Message, Transport};
use crate::packet::Packet;

/// The layer above Engine.IO (Socket.IO, or an echo server for the
/// protocol suite). One handler serves every connection of an
/// [`Engine`](crate::Engine).
pub trait EngineHandler: Send + Sync + Sized + 'static {
    /// Per-connection state of the layer above, stored inline in each
    /// connection (no extra allocation per connection).
    type Data: Default + Send + Sync + 'static;

    /// Per-connection state that only message handling touches (a decoder's
    /// partial packet): kept behind the lock that already serializes
    /// `on_message`, so it needs no lock of its own.
    type Inbound: Default + Send + 'static;

    /// A new connection is open; its open packet is already queued.
    fn on_open(&self, _conn: &Arc<Conn<Self>>) {}

    /// A message from the client. Called in arrival order, one at a time
    /// per connection: the next message is not read meanwhile.
    fn on_message<'a>(
        &'a self,
        conn: &'a Arc<Conn<Self>>,
        inbound: &'a mut Self::Inbound,
        msg: Message,
    ) -> BoxFuture<'a, ()>;

    /// The connection is gone. Called exactly once per connection, after
    /// any `on_message` still running has returned.
    fn on_close<'a>(&'a self, conn: &'a Arc<Conn<Self>>, reason: CloseReason) -> BoxFuture<'a, ()>;
}

/// State shared by the router, the connections and [`Engine`].
pub(crate) struct Shared<H: EngineHandler> {
    pub(crate) config: EngineConfig,
    pub(crate) handler: H,
    conns: parking_lot::RwLock<HashMap<Box<str>, Arc<Conn<H>>>>,
    /// Connections not yet finished (registered or closing).
    live: AtomicUsize,
    live_changed: Notify,
    pub(crate) shutting_down: AtomicBool,
    /// Per-IP handshake rate limit (`config.connection_rate_per_ip`).
    pub(crate) ip_limiter: Option<crate::ip_limit::IpLimiter>,
}

impl<H: EngineHandler> Shared<H> {
    pub(crate) fn new(config: EngineConfig, handler: H) -> Shared<H> {
        Shared {
            ip_limiter: config
                .connection_rate_per_ip
                .map(crate::ip_limit::IpLimiter::new),
            config,
            handler,
            conns: parking_lot::RwLock::new(HashMap::new()),
            live: AtomicUsize::new(0),
            live_changed: Notify::new(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Every registered connection.
    pub(crate) fn all(&self) -> Vec<Arc<Conn<H>>> {
        self.conns.read().values().cloned().collect()
    }

    /// Connections not yet finished.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Resolves when `live` changes (enable it before reading `live`).
    pub(crate) fn live_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.live_changed.notified()
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Arc<Conn<H>>> {
        self.conns.read().get(sid).cloned()
    }

    /// Registers a new connection (metrics, the handler's `on_open`).
    pub(crate) fn register(&self, conn: &Arc<Conn<H>>) {
        self.conns.write().insert(conn.sid.clone(), conn.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("chatgate_engine_connections").increment(1.0);
        metrics::counter!("chatgate_engine_connections_opened_total").increment(1);
        self.handler.on_open(conn);
    }

    pub(crate) fn unregister(&self, sid: &str) {
        let removed = self.conns.write().remove(sid);
        drop(removed);
    }

    /// Called once per connection by `Conn::finish`.
    pub(crate) async fn on_conn_closed(&self, conn: &Arc<Conn<H>>, reason: CloseReason) {
        self.handler.on_close(conn, reason).await;
        metrics::gauge!("chatgate_engine_connections").decrement(1.0);
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.live_changed.notify_waiters();
    }
}

/// How a connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseKind {
    /// The client asked (close packet): a pending poll ends with a noop.
    Client,
    /// Flush the queue, then a close packet (polling) or close frame with this code.
    Graceful(u16),
    /// Drop everything now.
    Abort,
}

/// What a polling GET delivers when it ends.
pub(crate) enum PollOutcome {
    /// Queued frames.
    Frames(VecDeque<Frame>),
    /// Queued frames then a close packet.
    Close(VecDeque<Frame>),
    /// A noop (`6`): upgrade in progress, or the client closed.
    Noop,
}

/// What the WebSocket writer does next.
pub(crate) enum WriteBatch {
    /// Frames to write; `pause_after`: a flush barrier follows the batch
    /// (see [`Conn::send_then_pause`]).
    Frames(VecDeque<Frame>, bool),
    /// Last frames then a close frame (graceful close).
    Close(VecDeque<Frame>, u16),
    /// Stop writing.
    Stop,
}

struct State {
    queue: VecDeque<Frame>,
    /// When the oldest frame still queued was queued: the delivery latency
    /// histogram measures from here to the moment a writer takes the batch.
    queued_since: Option<Instant>,
    /// The WebSocket writer flushes after this many queued frames before
    /// writing the rest (see [`Conn::send_then_pause`]).
    flush_after: Option<usize>,
    transport: Transport,
    upgrading: bool,
    poll_pending: bool,
    closing: Option<(CloseReason, CloseKind)>,
    /// The close packet reached the client (polling graceful close).
    close_delivered: bool,
    awaiting_pong: bool,
    /// Next ping (or the pong deadline while `awaiting_pong`).
    next_timer: Instant,
    /// When set, the connection closes at this instant
    /// ([`Conn::set_deadline`]).
    deadline: Option<Instant>,
}

/// Metric: seconds a batch of packets waited in its connection's queue
/// before a writer took it (the server's share of delivery latency).
const DELIVERY_LATENCY_METRIC: &str = "chatgate_engine_delivery_latency_seconds";

/// Takes the whole queue for one write, recording how long it waited.
fn take_batch(st: &mut State) -> VecDeque<Frame> {
    st.flush_after = None;
    if let Some(since) = st.queued_since.take() {
        metrics::histogram!(DELIVERY_LATENCY_METRIC).record(since.elapsed().as_secs_f64());
    }
    std::mem::take(&mut st.queue)
}

/// Takes the frames up to a pending flush point for one WebSocket write, or
/// the whole queue when there is none.
fn take_ws_batch(st: &mut State) -> WriteBatch {
    match st.flush_after.take() {
        Some(n) if n < st.queue.len() => {
            let rest = st.queue.split_off(n);
            let first = std::mem::replace(&mut st.queue, rest);
            // The rest waits from now on.
            st.queued_since = Some(Instant::now());
            WriteBatch::Frames(first, true)
        }
        _ => WriteBatch::Frames(take_batch(st), false),
    }
}

/// An Engine.IO session, whichever transport serves it. The layer above
/// holds it as `Arc<Conn<H>>`, sends through it and keeps its own state in
/// [`data`](Conn::data).
pub struct Conn<H: EngineHandler> {
    pub(crate) sid: Box<str>,
    remote_addr: Option<SocketAddr>,
    pub(crate) shared: Arc<Shared<H>>,
    state: Mutex<State>,
    /// Wakes the writer (WebSocket task or pending GET): data, close, upgrade.
    data_notify: Notify,
    /// Wakes watchers (reader, heartbeat, driver) on close or transport change.
    state_notify: Notify,
    /// Serializes inbound processing (WebSocket reader, POSTs), so the
    /// handler sees one message at a time, and holds its inbound state.
    pub(crate) inbound: tokio::sync::Mutex<H::Inbound>,
    /// The layer above's state of this connection.
    data: H::Data,
    finished: AtomicBool,
}

impl<H: EngineHandler> std::fmt::Debug for Conn<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("sid", &self.sid).finish()
    }
}

impl<H: EngineHandler> Conn<H> {
    pub(crate) fn new(
        shared: Arc<Shared<H>>,
        sid: Box<str>,
        transport: Transport,
        remote_addr: Option<SocketAddr>,
    ) -> Arc<Conn<H>> {
        let now = Instant::now();
        Arc::new(Conn {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_since: None,
                flush_after: None,
                transport,
                upgrading: false,
                poll_pending: false,
                closing: None,
                close_delivered: false,
                awaiting_pong: false,
                next_timer: now + shared.config.ping_interval,
                deadline: None,
            }),
            sid,
            remote_addr,
            shared,
            data_notify: Notify::new(),
            state_notify: Notify::new(),
            inbound: tokio::sync::Mutex::new(H::Inbound::default()),
            data: H::Data::default(),
            finished: AtomicBool::new(false),
        })
    }

    /// The handshake packet (`0{...}`).
    pub(crate) fn open_packet(&self, upgrades: bool) -> String {
        let c = &self.shared.config;
        let upgrades = if upgrades && c.websocket {
            "[\"websocket\"]"
        } else {
            "[]"
        };
        format!(
            "0{{\"sid\":\"{}\",\"upgrades\":{},\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
            self.sid,
            upgrades,
            c.ping_interval.as_millis(),
            c.ping_timeout.as_millis(),
            c.max_payload
        )
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.sid
    }

    /// Peer address of the request that opened the session (when the
    /// server was started with connect info).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The layer above's state of this connection.
    pub fn data(&self) -> &H::Data {
        &self.data
    }

    /// The engine's handler (the layer above's shared state).
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The current transport.
    pub fn transport(&self) -> Transport {
        self.state.lock().transport
    }

    /// Whether the connection is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.state.lock().closing.is_some()
    }

    /// Closes the connection as a slow consumer (the layer above may hold
    /// frames of its own against the same bound).
    pub fn close_slow_consumer(&self) {
        metrics::counter!("chatgate_engine_slow_consumer_disconnects_total").increment(1);
        tracing::debug!(sid = %self.sid, "outbound queue full: closing slow consumer");
        self.close_as(CloseReason::SlowConsumer, CloseKind::Abort);
    }

    /// Queues frames atomically (all or none). Hitting the bound
    /// ([`EngineConfig::max_queued_packets`]) closes the connection as a
    /// slow consumer: never a silent drop while connected.
    pub fn send(&self, frames: &[Frame]) -> Result<(), SendError> {
        {
            let mut st = self.state.lock();
            if st.closing.is_some() {
                return Err(SendError::Closed);
            }
            if st.queue.len() + frames.len() > self.shared.config.max_queued_packets {
                drop(st);
                self.close_slow_consumer();
                return Err(SendError::QueueFull);
            }
            if st.queue.is_empty() {
                st.queued_since = Some(Instant::now());
            }
            st.queue.extend(frames.iter().cloned());
        }
        self.data_notify.notify_one();
        Ok(())
    }

    /// Queues a frame regardless of the bound: for the few packets that
    /// answer the client's own requests (pings, handshake replies), which a
    /// client cannot multiply.
    pub fn send_unbounded(&self, frame: Frame) {
        {
            let mut st = self.state.lock();
            if st.closing.is_some() {
                return;
            }
            if st.queue.is_empty() {
                st.queued_since = Some(Instant::now());
            }
            st.queue.push_back(frame);
        }
        self.data_notify.notify_one();
    }

    /// Queues `head` (unbounded, like [`send_unbounded`](Self::send_unbounded))
    /// followed by `tail` behind a flush barrier: over WebSocket, `head` is
    /// written alone and `tail` a short pause later (about one event-loop
    /// turn of the client). Clients that take one message per turn (a `ws`
    /// client with a one-shot listener per message, as protocol test suites
    /// use) would otherwise miss a second message that arrived in the same
    /// read. `tail` counts against the bound.
    pub fn send_then_pause(&self, head: Vec<Frame>, tail: Vec<Frame>) {
        let held = tail;
        {
            let mut st = self.state.lock();
            if st.closing.is_some() {
                return;
            }
            if st.queue.is_empty() {
                st.queued_since = Some(Instant::now());
            }
            st.queue.extend(head);
            if !held.is_empty() {
                st.flush_after = Some(st.queue.len());
                // Held frames count against the bound like any other.
                if st.queue.len() + held.len() > self.shared.config.max_queued_packets {
                    drop(st);
                    self.close_slow_consumer();
                    return;
                }
                st.queue.extend(held);
            }
        }
        self.data_notify.notify_one();
    }

    /// Closes gracefully: what is queued is delivered, then a close packet
    /// (polling) or a close frame (WebSocket). `on_close(ServerClose)` follows.
    pub fn close(&self) {
        self.close_as(CloseReason::ServerClose, CloseKind::Graceful(1000));
    }

    /// Closes at once, dropping what is queued.
    pub fn abort(&self, reason: CloseReason) {
        self.close_as(reason, CloseKind::Abort);
    }

    /// Starts closing (idempotent; an abort may override a graceful close).
    pub(crate) fn close_as(&self, reason: CloseReason, kind: CloseKind) {
        let remove_now;
        {
            let mut st = self.state.lock();
            match st.closing {
                None => st.closing = Some((reason, kind)),
                Some((r, CloseKind::Graceful(_))) if kind == CloseKind::Abort => {
                    st.closing = Some((r, kind))
                }
                Some(_) => return,
            }
            // A graceful polling close waits for a GET to carry the close packet.
            // A graceful polling close waits for a GET to carry the close
            // packet. So does a client's close (a POST) racing its own GET:
            // that GET gets a noop, not an unknown-session error.
            remove_now = !(st.transport == Transport::Polling
                && match kind {
                    CloseKind::Graceful(_) => true,
                    CloseKind::Client => !st.poll_pending,
                    CloseKind::Abort => false,
                });
        }
        if remove_now {
            self.shared.unregister(&self.sid);
        }
        self.data_notify.notify_one();
        self.state_notify.notify_waiters();
    }

    fn closing_kind(&self) -> Option<CloseKind> {
        self.state.lock().closing.map(|c| c.1)
    }

    /// Resolves once the connection is closing (or `also` holds for the state).
    async fn wait_state(&self, cond: impl Fn(&State) -> bool) {
        loop {
            let notified = self.state_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(&self.state.lock()) {
                return;
            }
            notified.await;
        }
    }

    /// Resolves once the connection is closing.
    pub(crate) async fn wait_closing(&self) {
        self.wait_state(|s| s.closing.is_some()).await
    }

    /// Resolves once the writer must stop at once (abort or client close).
    pub(crate) async fn wait_abort(&self) {
        self.wait_state(|s| matches!(s.closing, Some((_, CloseKind::Abort | CloseKind::Client))))
            .await
    }

    /// Next thing for the WebSocket writer (waits for it).
    pub(crate) async fn next_write(&self) -> WriteBatch {
        loop {
            {
                let mut st = self.state.lock();
                match st.closing {
                    Some((_, CloseKind::Graceful(code))) => {
                        return WriteBatch::Close(std::mem::take(&mut st.queue), code);
                    }
                    Some(_) => return WriteBatch::Stop,
                    None if !st.queue.is_empty() => {
                        return take_ws_batch(&mut st);
                    }
                    None => {}
                }
            }
            // A permit stored by notify_one() makes this race-free.
            self.data_notify.notified().await;
        }
    }

    // ---- heartbeat ----------------------------------------------------------

    /// The client answered a ping.
    pub(crate) fn on_pong(&self) {
        let mut st = self.state.lock();
        if st.awaiting_pong {
            st.awaiting_pong = false;
            st.next_timer = Instant::now() + self.shared.config.ping_interval;
        }
    }

    /// Closes the connection gracefully with
    /// [`CloseReason::DeadlineExpired`] at `at`, unless cleared (`None`) or
    /// moved before. A generic timer for the layer above (Socket.IO closes
    /// connections that join no namespace in time).
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.state.lock().deadline = at;
        // The heartbeat task recomputes its next wake-up.
        self.state_notify.notify_waiters();
    }

    /// Applies due timers now (also called inline by polling requests so an
    /// expired session is refused even if the timer task is late).
    pub(crate) fn check_timers(&self, now: Instant) {
        let mut st = self.state.lock();
        if st.closing.is_some() {
            return;
        }
        if st.deadline.is_some_and(|d| now >= d) {
            st.deadline = None;
            drop(st);
            self.close_as(CloseReason::DeadlineExpired, CloseKind::Graceful(1000));
            return;
        }
        if now >= st.next_timer {
            if st.awaiting_pong {
                drop(st);
                self.close_as(CloseReason::PingTimeout, CloseKind::Abort);
                return;
            }
            st.awaiting_pong = true;
            st.next_timer = now + self.shared.config.ping_timeout;
            if st.queue.is_empty() {
                st.queued_since = Some(now);
            }
            st.queue
                .push_back(Frame::packet(Utf8Bytes::from_static("2")));
            drop(st);
            self.data_notify.notify_one();
        }
    }

    /// Runs pings, the ping timeout and the connect timeout until the
    /// connection closes (or, for the polling driver, leaves polling).
    pub(crate) async fn heartbeat(&self, polling_driver: bool) {
        loop {
            let notified = self.state_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let at = {
                let st = self.state.lock();
                if st.closing.is_some() || (polling_driver && st.transport != Transport::Polling) {
                    return;
                }
                st.deadline.map_or(st.next_timer, |d| d.min(st.next_timer))
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => self.check_timers(Instant::now()),
                _ = notified => {}
            }
        }
    }

    // ---- polling ------------------------------------------------------------

    /// Registers a GET poll. Err(true): a second concurrent poll (the
    /// session is closed, as the reference does); Err(false): not polling.
    pub(crate) fn begin_poll(&self) -> Result<(), bool> {
        let mut st = self.state.lock();
        if st.transport != Transport::Polling || st.close_delivered {
            return Err(false);
        }
        if st.poll_pending {
            drop(st);
            self.close_as(CloseReason::TransportError, CloseKind::Graceful(1000));
            return Err(true);
        }
        st.poll_pending = true;
        Ok(())
    }

    pub(crate) fn end_poll(&self) {
        self.state.lock().poll_pending = false;
    }

    /// Waits until a GET poll has something to return.
    pub(crate) async fn next_poll(&self) -> PollOutcome {
        loop {
            {
                let mut st = self.state.lock();
                match st.closing {
                    Some((_, CloseKind::Graceful(_))) if !st.queue.is_empty() => {
                        // Last packets first, the close packet in the next GET:
                        // socket.io-client handles a close packet at once but
                        // packets decoded with it a tick later, so a batched
                        // `41` + `1` would be reported as "transport close".
                        return PollOutcome::Frames(take_batch(&mut st));
                    }
                    Some((_, CloseKind::Graceful(_))) => {
                        st.close_delivered = true;
                        let q = std::mem::take(&mut st.queue);
                        drop(st);
                        self.shared.unregister(&self.sid);
                        self.state_notify.notify_waiters();
                        return PollOutcome::Close(q);
                    }
                    Some((_, CloseKind::Client)) => {
                        st.close_delivered = true;
                        drop(st);
                        self.shared.unregister(&self.sid);
                        self.state_notify.notify_waiters();
                        return PollOutcome::Noop;
                    }
                    Some((_, CloseKind::Abort)) => return PollOutcome::Close(VecDeque::new()),
                    None => {}
                }
                if st.transport != Transport::Polling {
                    return PollOutcome::Noop;
                }
                if !st.queue.is_empty() {
                    return PollOutcome::Frames(take_batch(&mut st));
                }
                if st.upgrading {
                    return PollOutcome::Noop;
                }
            }
            self.data_notify.notified().await;
        }
    }

    /// Polling driver task: heartbeat until closed or upgraded; after a
    /// graceful close, give a GET some time to carry the close packet.
    pub(crate) async fn run_polling_driver(self: Arc<Self>) {
        self.heartbeat(true).await;
        if self.transport() != Transport::Polling && !self.is_closing() {
            return; // upgraded: the WebSocket task owns the connection now
        }
        let grace = match self.closing_kind() {
            Some(CloseKind::Graceful(_)) => Some(std::time::Duration::from_secs(10)),
            // Only a GET already in flight when the client closed comes.
            Some(CloseKind::Client) => Some(std::time::Duration::from_secs(1)),
            _ => None,
        };
        if let Some(grace) = grace {
            let grace = self.shared.config.ping_timeout.min(grace);
            let _ = tokio::time::timeout(
                grace,
                self.wait_state(|s| {
                    s.close_delivered || matches!(s.closing, Some((_, CloseKind::Abort)))
                }),
            )
            .await;
        }
        self.finish().await;
    }

    // ---- upgrade -------------------------------------------------------------

    /// A WebSocket with this session's id was accepted: the session is
    /// upgrading from now on (as with the reference server), so a second
    /// one is refused. Returns false if the connection cannot upgrade.
    pub(crate) fn reserve_upgrade(&self) -> bool {
        let mut st = self.state.lock();
        if st.closing.is_some() || st.transport != Transport::Polling || st.upgrading {
            return false;
        }
        st.upgrading = true;
        true
    }

    /// `2probe` received on the new WebSocket: end the pending poll with a
    /// noop. Returns false if the upgrade cannot go on.
    pub(crate) fn begin_upgrade(&self) -> bool {
        let st = self.state.lock();
        if st.closing.is_some() || st.transport != Transport::Polling || !st.upgrading {
            return false;
        }
        drop(st);
        self.data_notify.notify_one();
        true
    }

    pub(crate) fn abort_upgrade(&self) {
        self.state.lock().upgrading = false;
        self.state_notify.notify_waiters();
    }

    /// Resolves once no upgrade is in progress; true if the connection
    /// then still uses polling (the upgrade failed or none was running).
    pub(crate) async fn upgrade_settled(&self) -> bool {
        self.wait_state(|s| !s.upgrading || s.closing.is_some())
            .await;
        self.transport() == Transport::Polling
    }

    /// `5` received: the WebSocket becomes the transport.
    pub(crate) fn complete_upgrade(&self) -> bool {
        let mut st = self.state.lock();
        if st.closing.is_some() || !st.upgrading {
            return false;
        }
        st.upgrading = false;
        st.transport = Transport::WebSocket;
        drop(st);
        self.data_notify.notify_one();
        self.state_notify.notify_waiters();
        true
    }

    // ---- end -------------------------------------------------------------------

    /// Final cleanup, exactly once: unregister, metrics, the handler's
    /// `on_close`.
    pub(crate) async fn finish(self: &Arc<Self>) {
        let reason = {
            let mut st = self.state.lock();
            let reason = match st.closing {
                Some((r, _)) => r,
                None => {
                    st.closing = Some((CloseReason::TransportClose, CloseKind::Abort));
                    CloseReason::TransportClose
                }
            };
            st.queue = VecDeque::new();
            reason
        };
        self.state_notify.notify_waiters();
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.unregister(&self.sid);
        // Wait for in-flight inbound processing (a message handler still
        // running) so on_close comes after the last on_message.
        let _inbound = self.inbound.lock().await;
        metrics::counter!("chatgate_engine_connections_closed_total", "reason" => reason.as_str())
            .increment(1);
        self.shared.on_conn_closed(self, reason).await;
    }
}

impl<H: EngineHandler> Conn<H> {
    /// Handles one client packet (both transports); the caller holds the
    /// connection's inbound lock. False once the connection is closing.
    pub(crate) async fn receive(
        self: &Arc<Self>,
        inbound: &mut H::Inbound,
        packet: Packet,
    ) -> bool {
        let conn = self;
        match packet {
            Packet::Pong(false) => conn.on_pong(),
            // Protocol v3 clients ping the server: answer, harmless for v4.
            Packet::Ping(false) => conn.send_unbounded(Frame::packet(Utf8Bytes::from_static("3"))),
            Packet::Message(text) => {
                conn.shared
                    .handler
                    .on_message(conn, inbound, Message::Text(text))
                    .await
            }
            Packet::Binary(data) => {
                conn.shared
                    .handler
                    .on_message(conn, inbound, Message::Binary(data))
                    .await
            }
            Packet::Close => conn.close_as(CloseReason::TransportClose, CloseKind::Client),
            Packet::Noop | Packet::Upgrade | Packet::Ping(true) | Packet::Pong(true) => {}
            Packet::Open(_) => conn.close_as(CloseReason::TransportError, CloseKind::Abort),
        }
        !conn.is_closing()
    }
}
