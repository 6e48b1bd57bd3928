//! A lean Engine.IO v4 / Socket.IO v5 client over raw WebSocket.
//!
//! One tokio task per connection ([`run_client`]); all tasks run on one
//! current-thread runtime and share a [`Shared`] record through `Rc`, so the hot
//! path takes no locks and no atomics. Incoming frames are classified by prefix
//! and `message:new` payloads are scanned for the bench marker inside `text`
//! instead of being parsed as JSON.
//!
//! Every `message:send` asks for an acknowledgement (`42<id>[...]`, answered
//! by `43<id>[...]`), as the seed's clients do with their ack callback; the
//! time from the send to its ack is recorded, and a sender keeps at most
//! [`Schedule::window`] sends without an ack.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// Where the clients connect to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// TCP address of the server.
    pub(crate) addr: SocketAddr,
    /// Full WebSocket URL including the Engine.IO query.
    pub(crate) url: String,
}

impl Target {
    /// Target for a server listening on `addr` (path `/socket.io/`).
    pub(crate) fn for_addr(addr: SocketAddr) -> Self {
        Self {
            addr,
            url: format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        }
    }
}

/// Phase of a run, broadcast to every client task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Phase {
    /// Connecting / joining; clients only answer pings.
    Setup,
    /// Measurement started; senders send their first message at the instant.
    Run(TokioInstant),
    /// Stop: every task returns its result.
    Stop,
}

/// What one client sends during the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// Delay of the first message after the run start.
    pub(crate) offset: Duration,
    /// Time between two messages (zero: as fast as the window allows).
    pub(crate) period: Duration,
    /// Sends at most outstanding without an ack (`None`: no limit).
    pub(crate) window: Option<u32>,
    /// How long an ack may take before the send counts as timed out (and
    /// frees its place in the window).
    pub(crate) ack_timeout: Duration,
    /// Number of messages.
    pub(crate) count: u32,
    /// Deliveries each message should produce (other members of the room).
    pub(crate) fanout: u32,
    /// Of those, deliveries to members connected to another node than the
    /// sender (0 with one node).
    pub(crate) cross_fanout: u32,
}

/// Everything one client task needs to know.
#[derive(Debug, Clone)]
pub(crate) struct ClientSpec {
    /// Index of the client, also its user id (`bench-<index>`).
    pub(crate) index: u32,
    /// Channel to join, if any.
    pub(crate) channel: Option<Rc<str>>,
    /// Messages to send, if any.
    pub(crate) schedule: Option<Schedule>,
}

/// State shared by all client tasks of a run (single-threaded).
#[derive(Debug)]
pub(crate) struct Shared {
    /// Origin of the timestamps carried in the message text.
    pub(crate) base: Instant,
    /// Padding appended to every message text.
    pub(crate) padding: String,
    /// Number of nodes the clients are spread over (client `i` talks to node
    /// `i % nodes`); 1 for a single server.
    pub(crate) nodes: u32,
    /// Latency of every delivery, microseconds.
    pub(crate) latency_us: RefCell<Histogram<u64>>,
    /// Latency of the deliveries that crossed nodes, microseconds.
    pub(crate) cross_latency_us: RefCell<Histogram<u64>>,
    /// Send → ack latency of every `ok` ack, microseconds.
    pub(crate) ack_latency_us: RefCell<Histogram<u64>>,
    /// Sends answered by an `ok` ack.
    pub(crate) acked: Cell<u64>,
    /// Sends answered by an ack that is not `ok` (rate limited, refused...).
    pub(crate) ack_errors: Cell<u64>,
    /// Sends without an ack within the ack timeout (or by the end of the run,
    /// or before the connection was lost).
    pub(crate) ack_timeouts: Cell<u64>,
    /// First few distinct ack errors.
    pub(crate) ack_error_examples: RefCell<Vec<String>>,
    /// Clients that finished setup successfully.
    pub(crate) ready: Cell<u64>,
    /// Clients whose setup failed.
    pub(crate) failed: Cell<u64>,
    /// First few distinct failure reasons.
    pub(crate) failure_reasons: RefCell<Vec<String>>,
    /// Messages sent.
    pub(crate) sent: Cell<u64>,
    /// Deliveries expected from the messages sent so far.
    pub(crate) expected: Cell<u64>,
    /// `message:new` frames received that carried a bench marker.
    pub(crate) received: Cell<u64>,
    /// Deliveries expected across nodes from the messages sent so far.
    pub(crate) cross_expected: Cell<u64>,
    /// Unique deliveries received from a sender on another node.
    pub(crate) cross_received: Cell<u64>,
    /// Senders that sent their whole schedule (or died trying).
    pub(crate) senders_done: Cell<u64>,
    /// `error` events received.
    pub(crate) error_events: Cell<u64>,
    /// Connections lost after setup.
    pub(crate) disconnects: Cell<u64>,
    /// Time of the first send.
    pub(crate) first_send: Cell<Option<Instant>>,
    /// Time of the last delivery.
    pub(crate) last_recv: Cell<Option<Instant>>,
    /// Time of the last send.
    pub(crate) last_send: Cell<Option<Instant>>,
    /// Largest delay of a send behind its schedule (generator overload).
    pub(crate) max_send_lag: Cell<Duration>,
}

impl Shared {
    /// Fresh shared state; `padding` bytes of filler in each message, clients
    /// spread over `nodes` servers.
    pub(crate) fn new(padding: usize, nodes: u32) -> Self {
        let hist = Histogram::new_with_bounds(1, 120_000_000, 3)
            .expect("static histogram bounds are valid");
        Self {
            base: Instant::now(),
            padding: "x".repeat(padding),
            nodes: nodes.max(1),
            latency_us: RefCell::new(hist.clone()),
            cross_latency_us: RefCell::new(hist.clone()),
            ack_latency_us: RefCell::new(hist),
            acked: Cell::new(0),
            ack_errors: Cell::new(0),
            ack_timeouts: Cell::new(0),
            ack_error_examples: RefCell::new(Vec::new()),
            ready: Cell::new(0),
            failed: Cell::new(0),
            failure_reasons: RefCell::new(Vec::new()),
            sent: Cell::new(0),
            expected: Cell::new(0),
            received: Cell::new(0),
            cross_expected: Cell::new(0),
            cross_received: Cell::new(0),
            senders_done: Cell::new(0),
            error_events: Cell::new(0),
            disconnects: Cell::new(0),
            first_send: Cell::new(None),
            last_recv: Cell::new(None),
            last_send: Cell::new(None),
            max_send_lag: Cell::new(Duration::ZERO),
        }
    }

    fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get() + n);
    }

    fn note_failure(&self, reason: String) {
        Self::add(&self.failed, 1);
        let mut reasons = self.failure_reasons.borrow_mut();
        if reasons.len() < 5 && !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
}

/// Per-sender record of the sequence numbers one receiver saw.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// `(sender index, bitset of seqs, unique count)`.
    peers: Vec<(u32, Vec<u64>, u64)>,
    /// Deliveries seen twice.
    pub(crate) duplicates: u64,
}

impl Tracker {
    fn record(&mut self, sender: u32, seq: u32) -> bool {
        let pos = match self.peers.iter().position(|p| p.0 == sender) {
            Some(pos) => pos,
            None => {
                self.peers.push((sender, Vec::new(), 0));
                self.peers.len() - 1
            }
        };
        let (_, bits, unique) = &mut self.peers[pos];
        let word = (seq / 64) as usize;
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let mask = 1u64 << (seq % 64);
        if bits[word] & mask != 0 {
            self.duplicates += 1;
            false
        } else {
            bits[word] |= mask;
            *unique += 1;
            true
        }
    }

    /// Unique deliveries received, all senders together.
    pub(crate) fn unique(&self) -> u64 {
        self.peers.iter().map(|p| p.2).sum()
    }
}

/// Sends of one client still waiting for their ack: ack id → send time.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    sent_at: HashMap<u64, Instant>,
}

impl Pending {
    /// Sends without an ack.
    pub(crate) fn len(&self) -> usize {
        self.sent_at.len()
    }

    /// Whether every send has its ack.
    pub(crate) fn is_empty(&self) -> bool {
        self.sent_at.is_empty()
    }

    fn insert(&mut self, id: u64, at: Instant) {
        self.sent_at.insert(id, at);
    }

    /// Takes the send answered by ack `id`; `None` for an unknown (or timed
    /// out) id.
    fn take(&mut self, id: u64) -> Option<Instant> {
        self.sent_at.remove(&id)
    }

    /// Drops the sends older than `timeout` at `now`; returns how many.
    fn expire(&mut self, now: Instant, timeout: Duration) -> u64 {
        let before = self.sent_at.len();
        self.sent_at
            .retain(|_, at| now.saturating_duration_since(*at) < timeout);
        (before - self.sent_at.len()) as u64
    }
}

/// Parses an ack frame `43<id>[...]`: the ack id and whether its first
/// argument says `"status":"ok"`.
pub(crate) fn parse_ack(frame: &[u8]) -> Option<(u64, bool)> {
    let rest = frame.strip_prefix(b"43")?;
    let (id, rest) = parse_num(rest)?;
    if !rest.starts_with(b"[") {
        return None;
    }
    Some((id, find(rest, b"\"status\":\"ok\"").is_some()))
}

/// What a client task hands back when it ends.
#[derive(Debug, Default)]
pub(crate) struct ClientOutcome {
    /// Deliveries received, per sender.
    pub(crate) tracker: Tracker,
    /// Whether setup succeeded.
    pub(crate) ready: bool,
}

/// A client WebSocket over plain TCP.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// WebSocket settings for the bench's many small connections.
pub(crate) fn ws_config() -> WebSocketConfig {
    // Small buffers: thousands of connections live in this one process.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Next text frame, skipping WebSocket control frames.
async fn next_text(ws: &mut Ws) -> Result<tokio_tungstenite::tungstenite::Utf8Bytes, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
    }
}

/// Reads frames until one starts with `prefix`, answering pings meanwhile.
async fn await_prefix(ws: &mut Ws, prefix: &str) -> Result<String, String> {
    loop {
        let t = next_text(ws).await?;
        if t.as_str() == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|e| format!("pong: {e}"))?;
        } else if t.starts_with(prefix) {
            return Ok(t.to_string());
        } else if let Some(reason) = t.strip_prefix("44") {
            return Err(format!("connect_error {reason}"));
        } else if t.starts_with("41") {
            return Err("server disconnected the socket".into());
        }
    }
}

/// Opens the WebSocket, performs the Engine.IO / Socket.IO handshake and joins
/// the channel.
async fn setup(target: &Target, spec: &ClientSpec) -> Result<Ws, String> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("tcp connect: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (mut ws, _) = client_async_with_config(target.url.as_str(), tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with("0{") {
        return Err(format!(
            "expected Engine.IO open packet, got {:.60}",
            open.as_str()
        ));
    }
    ws.send(Message::text(format!(
        "40{{\"userId\":\"bench-{}\"}}",
        spec.index
    )))
    .await
    .map_err(|e| format!("send CONNECT: {e}"))?;
    await_prefix(&mut ws, "40").await?;
    if let Some(channel) = &spec.channel {
        ws.send(Message::text(format!(
            "420[\"channel:join\",\"{channel}\"]"
        )))
        .await
        .map_err(|e| format!("send join: {e}"))?;
        let ack = await_prefix(&mut ws, "430[").await?;
        if !ack.contains("\"status\":\"ok\"") {
            return Err(format!("join refused: {:.120}", ack));
        }
    }
    Ok(ws)
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses decimal digits at the start of `s`; returns the value and the rest.
fn parse_num(s: &[u8]) -> Option<(u64, &[u8])> {
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let v = s[..len]
        .iter()
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    Some((v, &s[len..]))
}

/// Extracts `(sender, seq, sent_ns)` from a `message:new` frame whose text is
/// `#<sender>:<seq>@<ns>|...`.
pub(crate) fn parse_marker(frame: &[u8]) -> Option<(u32, u32, u64)> {
    const KEY: &[u8] = b"\"text\":\"#";
    let at = find(frame, KEY)? + KEY.len();
    let (sender, rest) = parse_num(&frame[at..])?;
    let rest = rest.strip_prefix(b":")?;
    let (seq, rest) = parse_num(rest)?;
    let rest = rest.strip_prefix(b"@")?;
    let (ns, _) = parse_num(rest)?;
    Some((u32::try_from(sender).ok()?, u32::try_from(seq).ok()?, ns))
}

/// Handles one text frame after setup. Returns `false` when the server ended
/// the Socket.IO session.
async fn on_frame(
    ws: &mut Ws,
    text: &str,
    own_index: u32,
    shared: &Shared,
    tracker: &mut Tracker,
    pending: &mut Pending,
) -> Result<bool, String> {
    let bytes = text.as_bytes();
    if bytes.starts_with(b"43") {
        if let Some((id, ok)) = parse_ack(bytes)
            && let Some(sent_at) = pending.take(id)
        {
            if ok {
                let us = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
                shared
                    .ack_latency_us
                    .borrow_mut()
                    .saturating_record(us.max(1));
                Shared::add(&shared.acked, 1);
            } else {
                Shared::add(&shared.ack_errors, 1);
                let mut examples = shared.ack_error_examples.borrow_mut();
                let example: String = text.chars().take(160).collect();
                if examples.len() < 3 && !examples.contains(&example) {
                    examples.push(example);
                }
            }
        }
    } else if bytes == b"2" {
        ws.send(Message::text("3"))
            .await
            .map_err(|e| format!("pong: {e}"))?;
    } else if bytes.starts_with(b"42[\"message:new\"") {
        if let Some((sender, seq, sent_ns)) = parse_marker(bytes) {
            let now = Instant::now();
            let now_ns =
                u64::try_from(now.duration_since(shared.base).as_nanos()).unwrap_or(u64::MAX);
            let lat_us = now_ns.saturating_sub(sent_ns) / 1000;
            shared
                .latency_us
                .borrow_mut()
                .saturating_record(lat_us.max(1));
            let cross = sender % shared.nodes != own_index % shared.nodes;
            if cross {
                shared
                    .cross_latency_us
                    .borrow_mut()
                    .saturating_record(lat_us.max(1));
            }
            if tracker.record(sender, seq) {
                Shared::add(&shared.received, 1);
                if cross {
                    Shared::add(&shared.cross_received, 1);
                }
            }
            shared.last_recv.set(Some(now));
        }
    } else if bytes.starts_with(b"42[\"error\"") {
        Shared::add(&shared.error_events, 1);
    } else if bytes.starts_with(b"41") {
        return Ok(false);
    }
    Ok(true)
}

/// Ack id of message `seq` (0 is the join's).
fn ack_id(seq: u32) -> u64 {
    u64::from(seq) + 1
}

/// Builds the `message:send` frame for message `seq` of `sender`, asking for
/// an ack with id [`ack_id`]`(seq)`.
fn send_frame(shared: &Shared, channel: &str, sender: u32, seq: u32) -> String {
    let ns = shared.base.elapsed().as_nanos();
    format!(
        "42{}[\"message:send\",{{\"channelId\":\"{channel}\",\"text\":\"#{sender}:{seq}@{ns}|{}\"}}]",
        ack_id(seq),
        shared.padding
    )
}

/// One client: connect, join, then answer pings, receive, and send its
/// schedule once the run starts, until [`Phase::Stop`].
pub(crate) async fn run_client(
    target: Rc<Target>,
    spec: ClientSpec,
    shared: Rc<Shared>,
    gate: Rc<Semaphore>,
    mut phase: watch::Receiver<Phase>,
    setup_timeout: Duration,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let setup_result = {
        let Ok(_permit) = gate.acquire().await else {
            return outcome;
        };
        tokio::time::timeout(setup_timeout, setup(&target, &spec)).await
    };
    let mut ws = match setup_result {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            shared.note_failure(e);
            mark_sender_done(&spec, &shared);
            return outcome;
        }
        Err(_) => {
            shared.note_failure("setup timed out".into());
            mark_sender_done(&spec, &shared);
            return outcome;
        }
    };
    outcome.ready = true;
    Shared::add(&shared.ready, 1);

    let schedule = spec.schedule;
    let channel = spec.channel.clone().unwrap_or_else(|| Rc::from(""));
    let mut next_seq: u32 = 0;
    let mut started: Option<TokioInstant> = None;
    let mut sending = false;
    let mut all_sent = false;
    let mut timer = pin!(tokio::time::sleep(Duration::from_secs(3600)));
    let mut done_marked = false;
    let mut pending = Pending::default();
    let ack_timeout = schedule.map_or(Duration::from_secs(10), |s| s.ack_timeout);
    // Expires acks that never came, so a lost one cannot stall the window.
    let mut sweep = tokio::time::interval(Duration::from_millis(250).min(ack_timeout));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        // A sender is done when its schedule is sent and every send has its
        // ack (or timed out).
        if all_sent && pending.is_empty() && !done_marked {
            done_marked = true;
            Shared::add(&shared.senders_done, 1);
        }
        let window_open = schedule
            .and_then(|s| s.window)
            .is_none_or(|w| pending.len() < w as usize);
        let waiting_acks = !pending.is_empty();
        tokio::select! {
            biased;
            changed = phase.changed() => {
                let current = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Stop };
                match current {
                    Phase::Stop => break,
                    Phase::Run(start) if started.is_none() => {
                        started = Some(start);
                        if let Some(s) = schedule.filter(|s| s.count > 0) {
                            sending = true;
                            timer.as_mut().reset(start + s.offset);
                        } else if schedule.is_some() {
                            all_sent = true;
                        }
                    }
                    _ => {}
                }
            }
            _ = sweep.tick(), if waiting_acks => {
                let expired = pending.expire(Instant::now(), ack_timeout);
                Shared::add(&shared.ack_timeouts, expired);
            }
            () = &mut timer, if sending && window_open => {
                let (Some(s), Some(start)) = (schedule, started) else { break };
                if !s.period.is_zero() {
                    let due = start + s.offset + s.period * next_seq;
                    let lag = TokioInstant::now().saturating_duration_since(due);
                    if lag > shared.max_send_lag.get() {
                        shared.max_send_lag.set(lag);
                    }
                }
                let frame = send_frame(&shared, &channel, spec.index, next_seq);
                let now = Instant::now();
                pending.insert(ack_id(next_seq), now);
                if let Err(e) = ws.send(Message::text(frame)).await {
                    shared.note_failure(format!("send: {e}"));
                    Shared::add(&shared.disconnects, 1);
                    break;
                }
                if shared.first_send.get().is_none() {
                    shared.first_send.set(Some(now));
                }
                shared.last_send.set(Some(now));
                Shared::add(&shared.sent, 1);
                Shared::add(&shared.expected, u64::from(s.fanout));
                Shared::add(&shared.cross_expected, u64::from(s.cross_fanout));
                next_seq += 1;
                if next_seq >= s.count {
                    sending = false;
                    all_sent = true;
                } else {
                    timer.as_mut().reset(start + s.offset + s.period * next_seq);
                }
            }
            frame = ws.next() => {
                let alive = match frame {
                    Some(Ok(Message::Text(t))) => {
                        on_frame(
                            &mut ws,
                            t.as_str(),
                            spec.index,
                            &shared,
                            &mut outcome.tracker,
                            &mut pending,
                        )
                        .await
                        .unwrap_or_default()
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => false,
                    Some(Ok(_)) => true,
                };
                if !alive {
                    Shared::add(&shared.disconnects, 1);
                    break;
                }
            }
        }
    }
    // Sends still without an ack at the end never got one.
    Shared::add(&shared.ack_timeouts, pending.len() as u64);
    if !done_marked && schedule.is_some() {
        Shared::add(&shared.senders_done, 1);
    }
    drop(ws);
    outcome
}

fn mark_sender_done(spec: &ClientSpec, shared: &Shared) {
    if spec.schedule.is_some() {
        Shared::add(&shared.senders_done, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_marker_from_message_new() {
        let frame = br##"42["message:new",{"id":"7","channelId":"room-1","userId":"bench-3","text":"#3:41@123456789|xxxx","ts":1}]"##;
        assert_eq!(parse_marker(frame), Some((3, 41, 123_456_789)));
    }

    #[test]
    fn rejects_frames_without_marker() {
        assert_eq!(parse_marker(br#"42["message:new",{"text":"hello"}]"#), None);
        assert_eq!(
            parse_marker(br##"42["message:new",{"text":"#1:x@2|"}]"##),
            None
        );
    }

    #[test]
    fn parses_acks() {
        assert_eq!(
            parse_ack(br#"4317[{"status":"ok","id":"9","channelId":"room-0","ts":1}]"#),
            Some((17, true))
        );
        assert_eq!(
            parse_ack(br#"433[{"status":"error","code":"RATE_LIMITED","message":"slow down"}]"#),
            Some((3, false))
        );
        assert_eq!(parse_ack(br#"43[{"status":"ok"}]"#), None);
        assert_eq!(parse_ack(br#"42["message:new",{}]"#), None);
    }

    #[test]
    fn send_frame_asks_for_an_ack() {
        let shared = Shared::new(2, 1);
        let frame = send_frame(&shared, "room-0", 0, 4);
        assert!(frame.starts_with("425[\"message:send\",{\"channelId\":\"room-0\""));
        assert!(frame.ends_with("|xx\"}]"));
    }

    #[test]
    fn pending_expires_old_sends() {
        let mut p = Pending::default();
        let t0 = Instant::now();
        p.insert(1, t0);
        p.insert(2, t0 + Duration::from_secs(5));
        assert_eq!(
            p.expire(t0 + Duration::from_secs(6), Duration::from_secs(3)),
            1
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p.take(1), None);
        assert_eq!(p.take(2), Some(t0 + Duration::from_secs(5)));
        assert!(p.is_empty());
    }

    #[test]
    fn tracker_counts_duplicates() {
        let mut t = Tracker::default();
        assert!(t.record(1, 0));
        assert!(t.record(1, 100));
        assert!(!t.record(1, 0));
        assert!(t.record(2, 0));
        assert_eq!(t.unique(), 3);
        assert_eq!(t.duplicates, 1);
    }
}
