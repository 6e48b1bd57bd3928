//! The chaos client: one user, one Socket.IO connection at a time over raw
//! Engine.IO/WebSocket, reconnecting as `socket.io-client` does.
//!
//! Recovery follows `socket.io-client` (>= 4.6) to the letter: the CONNECT
//! reply's `pid` is kept, so is the last string argument of any event
//! (the offset, kept across sessions too); a reconnect sends
//! `{pid, offset, ...auth}` and counts as recovered when the reply carries
//! the same `pid`. A session that is not recovered falls back to the
//! history API: each channel is re-joined with `since` = the highest id
//! received there, and `missed` fills the gap.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::client_async_with_config;
use tokio_tungstenite::tungstenite::Message;

use super::rng::Rng;
use crate::client::{Ws, ws_config};

/// An acknowledgement older than this is counted as timed out.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection silent for this long is given up (the server pings every
/// 25 s by default).
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// Limit for one connection attempt (TCP, WebSocket, Engine.IO, CONNECT).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before a refused `channel:join` with `since` is tried again.
const REJOIN_RETRY: Duration = Duration::from_secs(1);

/// Phase of a chaos run, broadcast to every client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ChaosPhase {
    /// Connecting and joining.
    Setup,
    /// Sending from `start` until `end`; afterwards clients only receive.
    Send {
        /// First send instant (each client adds its own offset).
        start: TokioInstant,
        /// No send is due after this.
        end: TokioInstant,
    },
    /// Stop: every client returns.
    Stop,
}

/// How a copy of a message reached a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `message:new` on an established connection.
    Live,
    /// `message:new` before the CONNECT reply of a recovered session.
    Replay,
    /// In the `missed` list of a `channel:join` with `since`.
    Missed,
}

/// A message whose `message:send` was acknowledged with `ok`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acked {
    /// Channel index.
    pub(crate) channel: u32,
    /// Server-assigned message id.
    pub(crate) id: u64,
    /// Index of the sending client (not owed its own message).
    pub(crate) sender: u32,
}

/// What one client received, readable by the scenario at any time.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// Channel indices the client is a member of.
    pub(crate) channels: Vec<u32>,
    /// Whether setup joined every channel (only then is it owed messages).
    pub(crate) joined: bool,
    /// Whether a connection is established right now.
    pub(crate) connected: bool,
    /// Per channel slot: every message id received and how it came first.
    pub(crate) received: Vec<HashMap<u64, Source>>,
    /// Per channel slot: the highest id received (the next `since`).
    last_id: Vec<u64>,
    /// Per channel slot: a `channel:join` with `since` is still owed
    /// (a session was not recovered and the gap not yet filled).
    pub(crate) needs_since: Vec<bool>,
    /// Got a `connect_error` at least once.
    connect_error: bool,
}

/// Counters of the whole fleet.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Clients set up (connected and joined).
    pub(crate) ready: Cell<u64>,
    /// Clients whose setup failed.
    pub(crate) setup_failed: Cell<u64>,
    /// Connections established right now.
    pub(crate) connected: Cell<u64>,
    /// `message:send` emitted.
    pub(crate) sent: Cell<u64>,
    /// Sends whose connection was lost before the ack came.
    pub(crate) unacked_lost: Cell<u64>,
    /// Sends with no ack within [`ACK_TIMEOUT`] on a live connection.
    pub(crate) ack_timeouts: Cell<u64>,
    /// Scheduled sends skipped because the client was offline.
    pub(crate) skipped_offline: Cell<u64>,
    /// A `message:new` id received a second time (live or replayed).
    pub(crate) duplicates: Cell<u64>,
    /// Of those, after a node was killed.
    pub(crate) duplicates_after_kill: Cell<u64>,
    /// New messages that arrived replayed by a recovered session.
    pub(crate) via_replay: Cell<u64>,
    /// New messages taken from `missed`.
    pub(crate) via_missed: Cell<u64>,
    /// Copies that overlap `missed` and `message:new` (expected with
    /// `since`: the new connection is subscribed before the join).
    pub(crate) missed_overlap: Cell<u64>,
    /// `missedAll: false` answers to a `since` above 0 (a gap chatgate
    /// cannot fill).
    pub(crate) gaps: Cell<u64>,
    /// `missedAll: false` answers to `since` 0 (nothing received yet in
    /// that channel: chatgate cannot tell whether older messages were
    /// trimmed, so it must say `false`; not a gap of this run).
    pub(crate) gaps_since_zero: Cell<u64>,
    /// Clients that got a `connect_error` at least once (socket.io-client
    /// would not have reconnected them by itself; this client does).
    pub(crate) connect_error_clients: Cell<u64>,
    /// `channel:join` with `since` answered with an error (then retried).
    pub(crate) rejoin_errors: Cell<u64>,
    /// `channel:join` with `since` answered `ok`.
    pub(crate) rejoins: Cell<u64>,
    /// Channel slots still waiting for a successful `since` join.
    pub(crate) pending_since: Cell<u64>,
    /// `message:new` of a channel the client is not in, or unreadable.
    pub(crate) foreign: Cell<u64>,
    /// Sessions established after a lost connection.
    pub(crate) reconnects: Cell<u64>,
    /// Of those, recovered (same `pid`).
    pub(crate) recovered: Cell<u64>,
    /// Reconnects that offered a `pid` (the server had given one).
    pub(crate) pid_offered: Cell<u64>,
    /// Connection attempts that failed before the CONNECT reply.
    pub(crate) attempt_failures: Cell<u64>,
    /// Socket.IO DISCONNECT or Engine.IO close sent by the server.
    pub(crate) server_disconnects: Cell<u64>,
}

impl Counters {
    /// Adds one.
    pub(crate) fn inc(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }

    fn dec(cell: &Cell<u64>) {
        cell.set(cell.get().saturating_sub(1));
    }
}

/// State shared by all chaos clients (single-threaded).
#[derive(Debug)]
pub(crate) struct ChaosShared {
    /// Where clients connect (the balancer).
    pub(crate) addr: SocketAddr,
    /// WebSocket URL through the balancer.
    pub(crate) url: String,
    /// Channel names by index.
    pub(crate) channel_names: Vec<Rc<str>>,
    /// Channel index by name.
    channel_index: HashMap<Rc<str>, u32>,
    /// One record per client, by index.
    pub(crate) records: Vec<RefCell<Record>>,
    /// Every acknowledged message.
    pub(crate) acked: RefCell<Vec<Acked>>,
    /// Fleet counters.
    pub(crate) c: Counters,
    /// Loss of a connection to the CONNECT reply of the next session, ms.
    pub(crate) reconnect_ms: RefCell<Histogram<u64>>,
    /// `message:send` error acks by code.
    pub(crate) ack_errors: RefCell<BTreeMap<String, u64>>,
    /// `connect_error` answers by message.
    pub(crate) connect_errors: RefCell<BTreeMap<String, u64>>,
    /// First few setup failure reasons.
    pub(crate) failures: RefCell<Vec<String>>,
    /// Set once a node was killed: later duplicates are allowed.
    pub(crate) node_killed: Cell<bool>,
    /// Time of the last new message received.
    pub(crate) last_new: Cell<Option<Instant>>,
}

impl ChaosShared {
    /// Shared state for clients connecting to `addr` whose channel lists
    /// are `memberships` (client index -> channel indices).
    pub(crate) fn new(
        addr: SocketAddr,
        channel_names: Vec<Rc<str>>,
        memberships: Vec<Vec<u32>>,
    ) -> Self {
        let channel_index = channel_names
            .iter()
            .enumerate()
            .map(|(i, n)| (Rc::clone(n), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let records = memberships
            .into_iter()
            .map(|channels| {
                let n = channels.len();
                RefCell::new(Record {
                    channels,
                    received: vec![HashMap::new(); n],
                    last_id: vec![0; n],
                    needs_since: vec![false; n],
                    ..Record::default()
                })
            })
            .collect();
        Self {
            addr,
            url: format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
            channel_names,
            channel_index,
            records,
            acked: RefCell::new(Vec::new()),
            c: Counters::default(),
            reconnect_ms: RefCell::new(
                Histogram::new_with_bounds(1, 3_600_000, 3)
                    .expect("static histogram bounds are valid"),
            ),
            ack_errors: RefCell::new(BTreeMap::new()),
            connect_errors: RefCell::new(BTreeMap::new()),
            failures: RefCell::new(Vec::new()),
            node_killed: Cell::new(false),
            last_new: Cell::new(None),
        }
    }

    fn note_failure(&self, reason: String) {
        Counters::inc(&self.c.setup_failed);
        let mut reasons = self.failures.borrow_mut();
        if reasons.len() < 5 && !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
}

/// A Socket.IO packet as far as the chaos client cares.
#[derive(Debug, PartialEq)]
enum Frame {
    /// Engine.IO ping.
    Ping,
    /// CONNECT reply (`{sid, pid?}`).
    Connect(Value),
    /// CONNECT refused.
    ConnectError(Value),
    /// Socket.IO DISCONNECT or Engine.IO close.
    Disconnect,
    /// An event's arguments, name first.
    Event(Vec<Value>),
    /// An ack for our request `id`.
    Ack(u64, Vec<Value>),
    /// Anything else (pong, noop, unreadable).
    Other,
}

/// Splits leading ASCII digits off `s`.
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(n)
}

fn parse_frame(text: &str) -> Frame {
    let Some(packet) = text.strip_prefix('4') else {
        return match text {
            "2" => Frame::Ping,
            "1" => Frame::Disconnect,
            _ => Frame::Other,
        };
    };
    let mut chars = packet.chars();
    let kind = chars.next();
    let body = chars.as_str();
    let args = |json: &str| serde_json::from_str::<Vec<Value>>(json).ok();
    match kind {
        Some('0') => Frame::Connect(serde_json::from_str(body).unwrap_or(Value::Null)),
        Some('1') => Frame::Disconnect,
        Some('2') => {
            let (_, json) = split_digits(body);
            args(json).map_or(Frame::Other, Frame::Event)
        }
        Some('3') => {
            let (id, json) = split_digits(body);
            match (id.parse::<u64>(), args(json)) {
                (Ok(id), Some(a)) => Frame::Ack(id, a),
                _ => Frame::Other,
            }
        }
        Some('4') => Frame::ConnectError(serde_json::from_str(body).unwrap_or(Value::Null)),
        _ => Frame::Other,
    }
}

/// A message id: a JSON integer or a string of decimal digits.
pub(crate) fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// A request awaiting its ack.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// `message:send` into a channel, sent at the instant.
    Send { channel: u32, at: Instant },
    /// `channel:join` with `since` for a channel slot.
    Join {
        /// Channel slot.
        slot: usize,
        /// The `since` sent (0 for the joins of the setup).
        since: u64,
    },
}

/// One established connection.
struct Conn {
    ws: Ws,
    /// Next ack id.
    next_ack: u64,
    /// Requests awaiting their ack.
    pending: HashMap<u64, Pending>,
    /// Per slot: a `since` join is in flight.
    joining: Vec<bool>,
    /// Per slot: not before this instant may a failed `since` join be retried.
    retry_at: Vec<Option<Instant>>,
    /// Last frame received.
    last_frame: Instant,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Lost: reconnect.
    Lost,
    /// The run is over.
    Stop,
}

/// What one client sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendPlan {
    /// Time between two sends.
    pub(crate) period: Duration,
    /// Delay of the first send after the phase's start.
    pub(crate) offset: Duration,
}

/// One chaos client.
struct Client {
    index: u32,
    user: String,
    shared: Rc<ChaosShared>,
    rng: Rng,
    plan: SendPlan,
    /// `pid` of the current (or last) session, as socket.io-client keeps it.
    pid: Option<String>,
    /// Last string argument of any event (socket.io-client's `_lastOffset`).
    offset: Option<String>,
    /// Sequence number of the next scheduled send.
    next_seq: u32,
    /// Re-join with `since` after a session that was not recovered.
    since_fallback: bool,
    /// The send window, once the run started.
    window: Option<(TokioInstant, TokioInstant)>,
}

impl Client {
    fn record(&self) -> std::cell::RefMut<'_, Record> {
        self.shared.records[self.index as usize].borrow_mut()
    }

    /// Opens a WebSocket through the balancer, does the Engine.IO and
    /// Socket.IO handshakes (offering `pid`/`offset` when a session was
    /// given one) and returns the connection, the CONNECT reply and the
    /// events that came before it.
    async fn open(&self) -> Result<(Conn, Value, Vec<Vec<Value>>), String> {
        let tcp = TcpStream::connect(self.shared.addr)
            .await
            .map_err(|e| format!("tcp connect: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (mut ws, _) =
            client_async_with_config(self.shared.url.as_str(), tcp, Some(ws_config()))
                .await
                .map_err(|e| format!("websocket handshake: {e}"))?;
        let auth = match &self.pid {
            Some(pid) => match &self.offset {
                Some(offset) => json!({"pid": pid, "offset": offset, "userId": self.user}),
                None => json!({"pid": pid, "userId": self.user}),
            },
            None => json!({"userId": self.user}),
        };
        let mut opened = false;
        let mut early = Vec::new();
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_))) | None => return Err("closed during handshake".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("websocket: {e}")),
            };
            if !opened {
                if !text.starts_with("0{") {
                    return Err(format!(
                        "expected Engine.IO open, got {:.60}",
                        text.as_str()
                    ));
                }
                opened = true;
                ws.send(Message::text(format!("40{auth}")))
                    .await
                    .map_err(|e| format!("send CONNECT: {e}"))?;
                continue;
            }
            match parse_frame(text.as_str()) {
                Frame::Ping => ws
                    .send(Message::text("3"))
                    .await
                    .map_err(|e| format!("pong: {e}"))?,
                Frame::Connect(reply) => {
                    let slots = self.record().channels.len();
                    let conn = Conn {
                        ws,
                        next_ack: 0,
                        pending: HashMap::new(),
                        joining: vec![false; slots],
                        retry_at: vec![None; slots],
                        last_frame: Instant::now(),
                    };
                    return Ok((conn, reply, early));
                }
                Frame::ConnectError(e) => {
                    let msg = e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string();
                    {
                        let mut rec = self.record();
                        if !rec.connect_error {
                            rec.connect_error = true;
                            Counters::inc(&self.shared.c.connect_error_clients);
                        }
                    }
                    *self
                        .shared
                        .connect_errors
                        .borrow_mut()
                        .entry(msg.clone())
                        .or_default() += 1;
                    return Err(format!("connect_error {msg}"));
                }
                Frame::Disconnect => return Err("disconnected during handshake".into()),
                Frame::Event(args) => early.push(args),
                Frame::Ack(..) | Frame::Other => {}
            }
        }
    }

    /// First connection: connect and join every channel (no `since`).
    async fn setup(&mut self) -> Result<Conn, String> {
        let (mut conn, reply, _) = self.open().await?;
        self.pid = reply.get("pid").and_then(Value::as_str).map(String::from);
        let channels = self.record().channels.clone();
        for (slot, &ch) in channels.iter().enumerate() {
            let name = &self.shared.channel_names[ch as usize];
            let id = conn.next_ack;
            conn.next_ack += 1;
            conn.pending.insert(id, Pending::Join { slot, since: 0 });
            let frame = format!("42{id}{}", json!(["channel:join", {"channelId": &**name}]));
            conn.ws
                .send(Message::text(frame))
                .await
                .map_err(|e| format!("send join: {e}"))?;
        }
        while !conn.pending.is_empty() {
            let text = match conn.ws.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_))) | None => return Err("closed during setup".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("websocket: {e}")),
            };
            match parse_frame(text.as_str()) {
                Frame::Ping => conn
                    .ws
                    .send(Message::text("3"))
                    .await
                    .map_err(|e| format!("pong: {e}"))?,
                Frame::Ack(id, args)
                    if conn.pending.remove(&id).is_some()
                        && args
                            .first()
                            .and_then(|a| a.get("status"))
                            .and_then(Value::as_str)
                            != Some("ok") =>
                {
                    return Err(format!(
                        "join refused: {:.120}",
                        args.first().map(Value::to_string).unwrap_or_default()
                    ));
                }
                Frame::Disconnect => return Err("server disconnected during setup".into()),
                _ => {}
            }
        }
        Ok(conn)
    }

    /// Takes one `message:new` payload (or `missed` entry).
    fn take(&self, payload: &Value, source: Source) {
        let c = &self.shared.c;
        let channel = payload.get("channelId").and_then(Value::as_str);
        let Some(&ch) = channel.and_then(|n| self.shared.channel_index.get(n)) else {
            Counters::inc(&c.foreign);
            return;
        };
        let mut rec = self.record();
        let Some(slot) = rec.channels.iter().position(|&x| x == ch) else {
            Counters::inc(&c.foreign);
            return;
        };
        if payload.get("userId").and_then(Value::as_str) == Some(self.user.as_str()) {
            // Its own message (a sender is not owed it).
            return;
        }
        let Some(id) = payload.get("id").and_then(parse_id) else {
            Counters::inc(&c.foreign);
            return;
        };
        match rec.received[slot].entry(id) {
            Entry::Vacant(v) => {
                v.insert(source);
                match source {
                    Source::Live => {}
                    Source::Replay => Counters::inc(&c.via_replay),
                    Source::Missed => Counters::inc(&c.via_missed),
                }
                if id > rec.last_id[slot] {
                    rec.last_id[slot] = id;
                }
                self.shared.last_new.set(Some(Instant::now()));
            }
            Entry::Occupied(first) => {
                if source == Source::Missed || *first.get() == Source::Missed {
                    Counters::inc(&c.missed_overlap);
                } else {
                    Counters::inc(&c.duplicates);
                    if self.shared.node_killed.get() {
                        Counters::inc(&c.duplicates_after_kill);
                    }
                }
            }
        }
    }

    /// An event's arguments: the offset rule of socket.io-client, then
    /// `message:new`.
    fn on_event(&mut self, args: &[Value], source: Source) {
        // socket.io-client: `if (this._pid && args.length && typeof
        // args[args.length - 1] === "string")`, the event name included.
        if self.pid.is_some()
            && let Some(Value::String(offset)) = args.last()
        {
            self.offset = Some(offset.clone());
        }
        if args.first().and_then(Value::as_str) == Some("message:new")
            && let Some(payload) = args.get(1)
        {
            self.take(payload, source);
        }
    }

    /// After a reconnect's CONNECT reply: recovered or not, the replayed
    /// events, and the `since` joins still owed.
    async fn after_reconnect(&mut self, conn: &mut Conn, reply: &Value, early: Vec<Vec<Value>>) {
        let shared = Rc::clone(&self.shared);
        let c = &shared.c;
        let new_pid = reply.get("pid").and_then(Value::as_str).map(String::from);
        let recovered = self.pid.is_some() && new_pid == self.pid;
        Counters::inc(&c.reconnects);
        if self.pid.is_some() {
            Counters::inc(&c.pid_offered);
        }
        if recovered {
            Counters::inc(&c.recovered);
        }
        self.pid = new_pid;
        let source = if recovered {
            Source::Replay
        } else {
            Source::Live
        };
        for args in early {
            self.on_event(&args, source);
        }
        if !recovered && self.since_fallback {
            let mut rec = self.record();
            for flag in &mut rec.needs_since {
                if !*flag {
                    *flag = true;
                    Counters::inc(&c.pending_since);
                }
            }
        }
        let _ = self.send_since_joins(conn).await;
    }

    /// Sends `channel:join` with `since` for every slot that needs one and
    /// has none in flight (and whose retry pause is over).
    async fn send_since_joins(&mut self, conn: &mut Conn) -> Result<(), String> {
        let now = Instant::now();
        let todo: Vec<(usize, u32, u64)> = {
            let rec = self.record();
            (0..rec.channels.len())
                .filter(|&s| rec.needs_since[s] && !conn.joining[s])
                .filter(|&s| conn.retry_at[s].is_none_or(|t| t <= now))
                .map(|s| (s, rec.channels[s], rec.last_id[s]))
                .collect()
        };
        for (slot, ch, since) in todo {
            let id = conn.next_ack;
            conn.next_ack += 1;
            conn.pending.insert(id, Pending::Join { slot, since });
            conn.joining[slot] = true;
            let name = &self.shared.channel_names[ch as usize];
            let frame = format!(
                "42{id}{}",
                json!(["channel:join", {"channelId": &**name, "since": since.to_string()}])
            );
            conn.ws
                .send(Message::text(frame))
                .await
                .map_err(|e| format!("send join: {e}"))?;
        }
        Ok(())
    }

    fn on_ack(&mut self, conn: &mut Conn, id: u64, args: &[Value]) {
        let Some(pending) = conn.pending.remove(&id) else {
            return;
        };
        let c = &self.shared.c;
        let reply = args.first().cloned().unwrap_or(Value::Null);
        let ok = reply.get("status").and_then(Value::as_str) == Some("ok");
        match pending {
            Pending::Send { channel, .. } => {
                if let (true, Some(msg_id)) = (ok, reply.get("id").and_then(parse_id)) {
                    self.shared.acked.borrow_mut().push(Acked {
                        channel,
                        id: msg_id,
                        sender: self.index,
                    });
                } else {
                    let code = reply
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or(if ok { "OK_WITHOUT_ID" } else { "UNREADABLE" })
                        .to_string();
                    *self.shared.ack_errors.borrow_mut().entry(code).or_default() += 1;
                }
            }
            Pending::Join { slot, since } => {
                conn.joining[slot] = false;
                if !ok {
                    Counters::inc(&c.rejoin_errors);
                    conn.retry_at[slot] = Some(Instant::now() + REJOIN_RETRY);
                    return;
                }
                Counters::inc(&c.rejoins);
                if reply.get("missedAll").and_then(Value::as_bool) == Some(false) {
                    Counters::inc(if since == 0 {
                        &c.gaps_since_zero
                    } else {
                        &c.gaps
                    });
                }
                if let Some(missed) = reply.get("missed").and_then(Value::as_array) {
                    for m in missed {
                        self.take(m, Source::Missed);
                    }
                }
                let mut rec = self.record();
                if rec.needs_since[slot] {
                    rec.needs_since[slot] = false;
                    Counters::dec(&c.pending_since);
                }
            }
        }
    }

    /// The next scheduled send, if one is due before the window's end.
    fn next_due(&self) -> Option<TokioInstant> {
        let (start, end) = self.window?;
        let due = start + self.plan.offset + self.plan.period * self.next_seq;
        (due <= end).then_some(due)
    }

    /// Skips the sends that fell due while offline.
    fn skip_missed_sends(&mut self) {
        let now = TokioInstant::now();
        while let Some(due) = self.next_due() {
            if due + self.plan.period / 2 >= now {
                break;
            }
            self.next_seq += 1;
            Counters::inc(&self.shared.c.skipped_offline);
        }
    }

    async fn send_message(&mut self, conn: &mut Conn) -> Result<(), String> {
        let slots = self.record().channels.len() as u64;
        let slot = self.rng.below(slots) as usize;
        let channel = self.record().channels[slot];
        let id = conn.next_ack;
        conn.next_ack += 1;
        conn.pending.insert(
            id,
            Pending::Send {
                channel,
                at: Instant::now(),
            },
        );
        let name = &self.shared.channel_names[channel as usize];
        let text = format!("#{}:{}", self.index, self.next_seq);
        self.next_seq += 1;
        let frame = format!(
            "42{id}{}",
            json!(["message:send", {"channelId": &**name, "text": text}])
        );
        Counters::inc(&self.shared.c.sent);
        conn.ws
            .send(Message::text(frame))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// Housekeeping every half second: ack timeouts, `since` retries,
    /// silence watchdog. `Err` when the connection is given up.
    async fn tick(&mut self, conn: &mut Conn) -> Result<(), String> {
        let now = Instant::now();
        let before = conn.pending.len();
        conn.pending.retain(
            |_, p| !matches!(p, Pending::Send { at, .. } if now.duration_since(*at) > ACK_TIMEOUT),
        );
        for _ in conn.pending.len()..before {
            Counters::inc(&self.shared.c.ack_timeouts);
        }
        if now.duration_since(conn.last_frame) > SILENCE_LIMIT {
            return Err("silent connection".into());
        }
        self.send_since_joins(conn).await
    }

    /// Serves one connection until it is lost or the run stops.
    async fn serve(&mut self, conn: &mut Conn, phase: &mut watch::Receiver<ChaosPhase>) -> End {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.next_due();
            let far = TokioInstant::now() + Duration::from_secs(3600);
            tokio::select! {
                biased;
                changed = phase.changed() => {
                    let current = if changed.is_ok() { *phase.borrow_and_update() } else { ChaosPhase::Stop };
                    match current {
                        ChaosPhase::Stop => return End::Stop,
                        ChaosPhase::Send { start, end } => self.window = Some((start, end)),
                        ChaosPhase::Setup => {}
                    }
                }
                () = tokio::time::sleep_until(due.unwrap_or(far)), if due.is_some() => {
                    if self.send_message(conn).await.is_err() {
                        return End::Lost;
                    }
                }
                _ = tick.tick() => {
                    if self.tick(conn).await.is_err() {
                        return End::Lost;
                    }
                }
                frame = conn.ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Lost,
                        Some(Ok(_)) => continue,
                    };
                    conn.last_frame = Instant::now();
                    match parse_frame(text.as_str()) {
                        Frame::Ping => {
                            if conn.ws.send(Message::text("3")).await.is_err() {
                                return End::Lost;
                            }
                        }
                        Frame::Event(args) => self.on_event(&args, Source::Live),
                        Frame::Ack(id, args) => self.on_ack(conn, id, &args),
                        Frame::Disconnect => {
                            Counters::inc(&self.shared.c.server_disconnects);
                            return End::Lost;
                        }
                        Frame::Connect(_) | Frame::ConnectError(_) | Frame::Other => {}
                    }
                }
            }
        }
    }

    /// Marks the connection gone: pending sends are unacknowledged.
    fn on_lost(&self, conn: Conn) {
        let c = &self.shared.c;
        for p in conn.pending.values() {
            if matches!(p, Pending::Send { .. }) {
                Counters::inc(&c.unacked_lost);
            }
        }
        self.record().connected = false;
        Counters::dec(&c.connected);
    }

    fn on_established(&self) {
        self.record().connected = true;
        Counters::inc(&self.shared.c.connected);
    }

    /// socket.io-client's reconnection delay: 1 s doubling to 5 s, +-50 %.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let base = (1000.0 * 2f64.powi(attempt.min(8) as i32)).min(5000.0);
        Duration::from_secs_f64(base * (0.5 + self.rng.unit()) / 1000.0)
    }
}

/// Sleeps `d` unless the run stops first (`true` then).
async fn stopped_during(
    phase: &mut watch::Receiver<ChaosPhase>,
    d: Duration,
    window: &mut Option<(TokioInstant, TokioInstant)>,
) -> bool {
    let until = TokioInstant::now() + d;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return false,
            changed = phase.changed() => {
                let current = if changed.is_ok() { *phase.borrow_and_update() } else { ChaosPhase::Stop };
                match current {
                    ChaosPhase::Stop => return true,
                    ChaosPhase::Send { start, end } => *window = Some((start, end)),
                    ChaosPhase::Setup => {}
                }
            }
        }
    }
}

/// Everything one chaos client needs.
#[derive(Debug, Clone)]
pub(crate) struct ChaosClientSpec {
    /// Client index (user `chaos-<index>`).
    pub(crate) index: u32,
    /// What it sends.
    pub(crate) plan: SendPlan,
    /// Seed of its random choices.
    pub(crate) seed: u64,
    /// Limit of its first connection and joins.
    pub(crate) setup_timeout: Duration,
    /// Re-join with `since` when a session is not recovered (`false`: an
    /// app relying on connection state recovery alone).
    pub(crate) since_fallback: bool,
}

/// One chaos client: set up, then serve, lose, reconnect (recovering or
/// re-joining with `since`) until [`ChaosPhase::Stop`].
pub(crate) async fn run_chaos_client(
    spec: ChaosClientSpec,
    shared: Rc<ChaosShared>,
    gate: Rc<Semaphore>,
    mut phase: watch::Receiver<ChaosPhase>,
) {
    let mut client = Client {
        index: spec.index,
        user: format!("chaos-{}", spec.index),
        shared: Rc::clone(&shared),
        rng: Rng::new(spec.seed),
        plan: spec.plan,
        pid: None,
        offset: None,
        next_seq: 0,
        since_fallback: spec.since_fallback,
        window: None,
    };
    let first = {
        let Ok(_permit) = gate.acquire().await else {
            return;
        };
        tokio::time::timeout(spec.setup_timeout, client.setup()).await
    };
    let mut conn = match first {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return shared.note_failure(e),
        Err(_) => return shared.note_failure("setup timed out".into()),
    };
    client.record().joined = true;
    Counters::inc(&shared.c.ready);
    client.on_established();
    loop {
        let end = client.serve(&mut conn, &mut phase).await;
        client.on_lost(conn);
        if end == End::Stop {
            return;
        }
        let lost_at = Instant::now();
        let mut attempt = 0;
        let (new_conn, reply, early) = loop {
            let delay = client.backoff(attempt);
            if stopped_during(&mut phase, delay, &mut client.window).await {
                return;
            }
            match tokio::time::timeout(CONNECT_TIMEOUT, client.open()).await {
                Ok(Ok(opened)) => break opened,
                _ => {
                    Counters::inc(&shared.c.attempt_failures);
                    attempt += 1;
                }
            }
        };
        conn = new_conn;
        let ms = u64::try_from(lost_at.elapsed().as_millis()).unwrap_or(u64::MAX);
        shared
            .reconnect_ms
            .borrow_mut()
            .saturating_record(ms.max(1));
        client.on_established();
        client.after_reconnect(&mut conn, &reply, early).await;
        client.skip_missed_sends();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_socket_io_frames() {
        assert_eq!(parse_frame("2"), Frame::Ping);
        assert_eq!(
            parse_frame(r#"40{"sid":"a","pid":"p"}"#),
            Frame::Connect(json!({"sid": "a", "pid": "p"}))
        );
        assert_eq!(
            parse_frame(r#"42["message:new",{"id":"5"},"5"]"#),
            Frame::Event(vec![json!("message:new"), json!({"id": "5"}), json!("5")])
        );
        assert_eq!(
            parse_frame(r#"4317[{"status":"ok","id":9}]"#),
            Frame::Ack(17, vec![json!({"status": "ok", "id": 9})])
        );
        assert_eq!(
            parse_frame(r#"44{"message":"UNAUTHORIZED"}"#),
            Frame::ConnectError(json!({"message": "UNAUTHORIZED"}))
        );
        assert_eq!(parse_frame("41"), Frame::Disconnect);
        assert_eq!(parse_frame("1"), Frame::Disconnect);
        assert_eq!(parse_frame("42not json"), Frame::Other);
    }

    fn client(pid: Option<&str>) -> Client {
        let shared = ChaosShared::new(
            SocketAddr::from(([127, 0, 0, 1], 9)),
            vec![Rc::from("a"), Rc::from("b")],
            vec![vec![0, 1]],
        );
        Client {
            index: 0,
            user: "chaos-0".into(),
            shared: Rc::new(shared),
            rng: Rng::new(1),
            plan: SendPlan {
                period: Duration::from_secs(1),
                offset: Duration::ZERO,
            },
            pid: pid.map(String::from),
            offset: None,
            next_seq: 0,
            since_fallback: true,
            window: None,
        }
    }

    #[test]
    fn keeps_the_offset_only_with_a_pid_and_dedupes_by_id() {
        let msg = |id: &str, from: &str| json!({"id": id, "channelId": "b", "userId": from, "text": "t", "ts": 1});
        let mut without = client(None);
        without.on_event(
            &[json!("message:new"), msg("5", "x"), json!("5")],
            Source::Live,
        );
        assert_eq!(without.offset, None);

        let mut c = client(Some("p1"));
        c.on_event(
            &[json!("message:new"), msg("5", "x"), json!("5")],
            Source::Live,
        );
        c.on_event(
            &[json!("message:new"), msg("7", "x"), json!("7")],
            Source::Replay,
        );
        c.on_event(
            &[json!("message:new"), msg("7", "x"), json!("7")],
            Source::Live,
        );
        c.take(&msg("7", "x"), Source::Missed);
        c.take(&msg("9", "chaos-0"), Source::Missed);
        assert_eq!(c.offset.as_deref(), Some("7"));
        let rec = c.record();
        assert_eq!(rec.received[1].len(), 2, "own message 9 is not counted");
        assert_eq!(rec.last_id[1], 7);
        drop(rec);
        let counters = &c.shared.c;
        assert_eq!(counters.duplicates.get(), 1);
        assert_eq!(counters.missed_overlap.get(), 1);
        assert_eq!(counters.via_replay.get(), 1);
    }

    #[test]
    fn parses_message_ids() {
        assert_eq!(parse_id(&json!(12)), Some(12));
        assert_eq!(
            parse_id(&json!("1733400000000001")),
            Some(1_733_400_000_000_001)
        );
        assert_eq!(parse_id(&json!("")), None);
        assert_eq!(parse_id(&json!("12a")), None);
        assert_eq!(parse_id(&json!(-1)), None);
    }
}
