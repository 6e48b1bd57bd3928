//! The Node bridge: many real `socket.io-client` instances in one Node process
//! (`tests/js/bridge.mjs`), driven over line-delimited JSON on stdin/stdout.
//!
//! A reader task routes every line the bridge prints: answers complete the
//! pending command with the same `id`; notifications (`event`, `connect`,
//! `disconnect`, `connect_error`, `upgrade`) are buffered per client, so a test
//! never misses one that arrives before it starts waiting.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::default_timeout;

/// How many lines of the bridge's stderr are kept for failure messages.
const STDERR_TAIL_LINES: usize = 50;

/// The `tests/js` folder (bridge script and its `node_modules`).
fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("js")
}

/// A running `node tests/js/bridge.mjs`; the process is killed when this is dropped.
pub(crate) struct NodeBridge {
    /// State shared with the reader task and every [`SioClient`].
    inner: Arc<Inner>,
    /// The Node process; `kill_on_drop` ends it with the bridge.
    _child: Child,
    /// Routes stdout lines; aborted on drop.
    reader: JoinHandle<()>,
    /// Forwards stderr lines to the test's output; aborted on drop.
    stderr: JoinHandle<()>,
}

/// State shared by the bridge handle, its reader tasks and its clients.
struct Inner {
    /// Commands are written here, one JSON line each.
    stdin: tokio::sync::Mutex<ChildStdin>,
    /// Source of command ids.
    next_id: AtomicU64,
    /// Source of client names (`c1`, `c2`, ...).
    next_client: AtomicU64,
    /// Commands waiting for their answer, by id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
    /// Notification buffers, by client name (created before the connect command is sent).
    clients: Mutex<HashMap<String, Arc<ClientState>>>,
    /// The last lines the bridge wrote to stderr, for failure messages.
    stderr_tail: Mutex<VecDeque<String>>,
    /// Set once the bridge's stdout is closed (the process is gone).
    exited: AtomicBool,
}

/// Everything the bridge pushed about one client and not yet consumed by the test.
#[derive(Default)]
struct ClientState {
    /// The buffers; never locked across an `.await`.
    buffers: Mutex<Buffers>,
    /// Woken on every new notification for this client (and when the bridge exits).
    notify: Notify,
}

/// Unconsumed notifications of one client, oldest first.
#[derive(Default, Debug)]
struct Buffers {
    /// `event` notifications (every event the server emitted to this client).
    events: VecDeque<ReceivedEvent>,
    /// `connect` notifications: the socket id of each (re)connection.
    connects: VecDeque<Option<String>>,
    /// `disconnect` notifications: the reason given by socket.io-client.
    disconnects: VecDeque<String>,
    /// `connect_error` notifications.
    connect_errors: VecDeque<ConnectErrorInfo>,
    /// `upgrade` notifications: the transport upgraded to.
    upgrades: VecDeque<String>,
    /// `ping` notifications not yet consumed (server pings received).
    pings: usize,
}

/// One event the server emitted to a client.
#[derive(Clone, Debug)]
pub(crate) struct ReceivedEvent {
    /// The event name.
    pub(crate) name: String,
    /// Its arguments; binary ones as `{"$binary": base64}` (see [`super::as_binary`]).
    pub(crate) args: Vec<Value>,
    /// Whether the server asked for an ack (the bridge answered it, see
    /// [`SioClient::set_ack_reply`]).
    pub(crate) ack: bool,
}

/// A refused connection, as socket.io-client reported it in `connect_error`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConnectErrorInfo {
    /// `err.message`: the CONNECT_ERROR message, or a transport error text.
    pub(crate) message: String,
    /// `err.data`: the CONNECT_ERROR data (`Value::Null` when none).
    pub(crate) data: Value,
}

impl fmt::Display for ConnectErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect_error {:?} (data: {})", self.message, self.data)
    }
}

/// Options of [`NodeBridge::connect`], mapped onto socket.io-client's options.
#[derive(Clone, Debug)]
pub(crate) struct ConnectOptions {
    /// socket.io-client major version: 4 (default) or 3.
    pub(crate) version: u8,
    /// `auth`: the CONNECT payload (`Value::Null` = not sent).
    pub(crate) auth: Value,
    /// `transports`, e.g. `["websocket"]` or `["polling"]`; empty = client default
    /// (`["polling", "websocket"]`, polling first then upgrade).
    pub(crate) transports: Vec<&'static str>,
    /// `upgrade`: whether polling may upgrade to WebSocket (`None` = client default, true).
    pub(crate) upgrade: Option<bool>,
    /// `reconnection` (default false here, unlike the client, so a test sees every drop).
    pub(crate) reconnection: bool,
    /// `path` (`None` = `/socket.io/`).
    pub(crate) path: Option<String>,
    /// `extraHeaders` (Node only), e.g. `Origin`.
    pub(crate) extra_headers: Vec<(String, String)>,
    /// `query`: extra query parameters of the handshake.
    pub(crate) query: Vec<(String, String)>,
    /// Any other socket.io-client option, merged last (e.g. `{"reconnectionDelay": 50}`).
    pub(crate) extra: Value,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            version: 4,
            auth: Value::Null,
            transports: Vec::new(),
            upgrade: None,
            reconnection: false,
            path: None,
            extra_headers: Vec::new(),
            query: Vec::new(),
            extra: Value::Null,
        }
    }
}

impl ConnectOptions {
    /// Options with these `transports` and defaults otherwise.
    pub(crate) fn transports(transports: &[&'static str]) -> Self {
        Self {
            transports: transports.to_vec(),
            ..Self::default()
        }
    }

    /// WebSocket only (no polling, no upgrade).
    pub(crate) fn websocket() -> Self {
        Self::transports(&["websocket"])
    }

    /// HTTP long-polling only (upgrade disabled).
    pub(crate) fn polling() -> Self {
        Self {
            upgrade: Some(false),
            ..Self::transports(&["polling"])
        }
    }

    /// Sets `auth`.
    pub(crate) fn with_auth(mut self, auth: Value) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the client's major version (3 or 4).
    pub(crate) fn with_version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Turns socket.io-client's automatic reconnection on or off.
    pub(crate) fn with_reconnection(mut self, reconnection: bool) -> Self {
        self.reconnection = reconnection;
        self
    }

    /// The socket.io-client options object sent to the bridge.
    fn to_json(&self, timeout: Duration) -> Value {
        let mut options = json!({
            "reconnection": self.reconnection,
            "forceNew": true,
            // The client gives up (connect_error "timeout") before the harness would.
            "timeout": u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        });
        let map = options
            .as_object_mut()
            .expect("options literal is an object");
        if !self.auth.is_null() {
            map.insert("auth".into(), self.auth.clone());
        }
        if !self.transports.is_empty() {
            map.insert("transports".into(), json!(self.transports));
        }
        if let Some(upgrade) = self.upgrade {
            map.insert("upgrade".into(), json!(upgrade));
        }
        if let Some(path) = &self.path {
            map.insert("path".into(), json!(path));
        }
        if !self.extra_headers.is_empty() {
            let headers: serde_json::Map<String, Value> = self
                .extra_headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            map.insert("extraHeaders".into(), Value::Object(headers));
        }
        if !self.query.is_empty() {
            let query: serde_json::Map<String, Value> = self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            map.insert("query".into(), Value::Object(query));
        }
        if let Value::Object(extra) = &self.extra {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        options
    }
}

impl NodeBridge {
    /// Starts `node tests/js/bridge.mjs` and waits for its `ready` line.
    ///
    /// Panics with instructions when `tests/js/node_modules` is missing (run
    /// `./scripts/test` or `npm ci --prefix tests/js`) or `node` cannot be started.
    pub(crate) async fn spawn() -> NodeBridge {
        let dir = js_dir();
        assert!(
            dir.join("node_modules").join("socket.io-client").is_dir(),
            "{} is missing: run `./scripts/test` or `npm ci --prefix tests/js` first",
            dir.join("node_modules").display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("bridge.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `node` for the test bridge ({e}); is Node.js installed?")
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");

        let inner = Arc::new(Inner {
            stdin: tokio::sync::Mutex::new(stdin),
            next_id: AtomicU64::new(1),
            next_client: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            stderr_tail: Mutex::new(VecDeque::new()),
            exited: AtomicBool::new(false),
        });

        let stderr_inner = Arc::clone(&inner);
        let stderr = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                let mut tail = stderr_inner.stderr_tail.lock();
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });

        let (ready_tx, ready_rx) = oneshot::channel();
        let reader_inner = Arc::clone(&inner);
        let reader = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(message) if message.get("type").and_then(Value::as_str) == Some("ready") => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(message);
                        }
                    }
                    Ok(message) => reader_inner.route(message),
                    Err(_) => eprintln!("[bridge stdout, not JSON] {line}"),
                }
            }
            reader_inner.on_exit();
        });

        let bridge = NodeBridge {
            inner,
            _child: child,
            reader,
            stderr,
        };
        match tokio::time::timeout(default_timeout() * 2, ready_rx).await {
            Ok(Ok(_ready)) => bridge,
            _ => panic!(
                "the Node test bridge did not start; its stderr:\n{}",
                bridge.inner.stderr_tail()
            ),
        }
    }

    /// Connects a new socket.io-client to `url` (e.g. `http://127.0.0.1:PORT` or
    /// `.../custom` for a namespace). Returns once the client emitted `connect`
    /// (Ok) or `connect_error` (Err; the bridge then drops that client).
    pub(crate) async fn connect(
        &self,
        url: &str,
        options: ConnectOptions,
    ) -> Result<SioClient, ConnectErrorInfo> {
        let name = format!(
            "c{}",
            self.inner.next_client.fetch_add(1, Ordering::Relaxed)
        );
        let state = Arc::new(ClientState::default());
        self.inner
            .clients
            .lock()
            .insert(name.clone(), Arc::clone(&state));
        let timeout = default_timeout();
        let command = json!({
            "cmd": "connect",
            "client": name,
            "url": url,
            "version": options.version,
            "options": options.to_json(timeout),
        });
        let result = self
            .inner
            .request(command, timeout + Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("bridge connect {name} to {url}: {e}"));
        if let Some(error) = result.get("connectError") {
            self.inner.clients.lock().remove(&name);
            return Err(ConnectErrorInfo {
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                data: error.get("data").cloned().unwrap_or(Value::Null),
            });
        }
        // The initial `connect` notification precedes the answer: consume it, so
        // `next_connect` only sees reconnections.
        state.buffers.lock().connects.pop_front();
        Ok(SioClient {
            inner: Arc::clone(&self.inner),
            state,
            name,
            id: result
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            initial_transport: result
                .get("transport")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Sends a raw bridge command (`{"cmd": ..., ...}`, see `bridge.mjs`) and returns
    /// its result, or the bridge's error text: for commands without a typed wrapper.
    pub(crate) async fn command(&self, command: Value) -> Result<Value, String> {
        self.inner.request(command, default_timeout()).await
    }

    /// [`connect`](Self::connect), panicking (with the connect_error) when refused.
    pub(crate) async fn connect_ok(&self, url: &str, options: ConnectOptions) -> SioClient {
        match self.connect(url, options).await {
            Ok(client) => client,
            Err(e) => panic!("expected {url} to accept the connection, got {e}"),
        }
    }
}

impl Drop for NodeBridge {
    fn drop(&mut self) {
        self.reader.abort();
        self.stderr.abort();
        // `kill_on_drop` ends the Node process with `_child`.
    }
}

impl Inner {
    /// Sends one command and waits for its answer (`ok: true` -> result, else the error text).
    async fn request(&self, mut command: Value, timeout: Duration) -> Result<Value, String> {
        if self.exited.load(Ordering::SeqCst) {
            return Err(format!(
                "the bridge has exited; its stderr:\n{}",
                self.stderr_tail()
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        command["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let mut line = command.to_string();
        line.push('\n');
        {
            let mut stdin = self.stdin.lock().await;
            if let Err(e) = stdin.write_all(line.as_bytes()).await {
                self.pending.lock().remove(&id);
                return Err(format!(
                    "cannot write to the bridge ({e}); its stderr:\n{}",
                    self.stderr_tail()
                ));
            }
            let _ = stdin.flush().await;
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(format!(
                "the bridge exited; its stderr:\n{}",
                self.stderr_tail()
            )),
            Err(_) => {
                self.pending.lock().remove(&id);
                Err(format!(
                    "no answer from the bridge within {timeout:?} to {command}"
                ))
            }
        }
    }

    /// Dispatches one line printed by the bridge.
    fn route(&self, message: Value) {
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            let answer = if message.get("ok").and_then(Value::as_bool) == Some(true) {
                Ok(message.get("result").cloned().unwrap_or(Value::Null))
            } else {
                Err(message
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown bridge error")
                    .to_owned())
            };
            if let Some(tx) = self.pending.lock().remove(&id) {
                let _ = tx.send(answer);
            }
            return;
        }
        let Some(client) = message.get("client").and_then(Value::as_str) else {
            eprintln!("[bridge] unroutable line: {message}");
            return;
        };
        let Some(state) = self.clients.lock().get(client).cloned() else {
            return; // a client the test has already given up on
        };
        let text = |key: &str| {
            message
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        {
            let mut buffers = state.buffers.lock();
            match message.get("type").and_then(Value::as_str) {
                Some("event") => buffers.events.push_back(ReceivedEvent {
                    name: text("event"),
                    args: match message.get("args") {
                        Some(Value::Array(args)) => args.clone(),
                        _ => Vec::new(),
                    },
                    ack: message.get("ack").and_then(Value::as_bool).unwrap_or(false),
                }),
                Some("connect") => buffers
                    .connects
                    .push_back(message.get("id").and_then(Value::as_str).map(str::to_owned)),
                Some("disconnect") => buffers.disconnects.push_back(text("reason")),
                Some("connect_error") => buffers.connect_errors.push_back(ConnectErrorInfo {
                    message: text("message"),
                    data: message.get("data").cloned().unwrap_or(Value::Null),
                }),
                Some("upgrade") => buffers.upgrades.push_back(text("transport")),
                Some("ping") => buffers.pings += 1,
                _ => eprintln!("[bridge] unknown notification: {message}"),
            }
        }
        state.notify.notify_waiters();
    }

    /// The bridge's stdout closed: fail every pending command and wake every waiter.
    fn on_exit(&self) {
        self.exited.store(true, Ordering::SeqCst);
        self.pending.lock().clear(); // dropping the senders fails the receivers
        for state in self.clients.lock().values() {
            state.notify.notify_waiters();
        }
    }

    /// The last stderr lines of the bridge, for failure messages.
    fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock();
        if tail.is_empty() {
            "(nothing)".to_owned()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }
}

/// One socket.io-client instance living in the bridge.
///
/// Every wait is bounded by [`default_timeout`] and panics with the client's
/// unconsumed notifications, so a failing test shows what did arrive instead.
pub(crate) struct SioClient {
    /// The bridge this client lives in.
    inner: Arc<Inner>,
    /// Its notification buffers.
    state: Arc<ClientState>,
    /// Its name in the bridge (`c1`, ...).
    name: String,
    /// `socket.id` at the initial connection.
    id: String,
    /// The transport of the initial connection (`polling` or `websocket`).
    initial_transport: String,
}

impl SioClient {
    /// `socket.id` of the initial connection (the Socket.IO session id).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The client's name in the bridge, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The transport the initial connection was confirmed on.
    pub(crate) fn initial_transport(&self) -> &str {
        &self.initial_transport
    }

    /// Sends a command about this client and panics (readably) if it fails.
    async fn command(&self, cmd: &str, mut fields: Value, timeout: Duration) -> Value {
        fields["cmd"] = json!(cmd);
        fields["client"] = json!(self.name);
        match self.inner.request(fields, timeout).await {
            Ok(result) => result,
            Err(e) => panic!(
                "client {}: `{cmd}` failed: {e}\n{}",
                self.name,
                self.pending_report()
            ),
        }
    }

    /// `socket.emit(event, ...args)` without an ack.
    pub(crate) async fn emit(&self, event: &str, args: Vec<Value>) {
        self.command(
            "emit",
            json!({ "event": event, "args": args, "ack": false }),
            default_timeout(),
        )
        .await;
    }

    /// `socket.emit(event, ...args, ack)`: returns the arguments of the server's ack,
    /// panicking when none arrives within [`default_timeout`].
    pub(crate) async fn emit_with_ack(&self, event: &str, args: Vec<Value>) -> Vec<Value> {
        match self.try_emit_with_ack(event, args, default_timeout()).await {
            Ok(reply) => reply,
            Err(e) => panic!("client {}: {e}\n{}", self.name, self.pending_report()),
        }
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with an explicit deadline; Err when
    /// no ack arrived in time (for tests where a missing ack is the expectation).
    pub(crate) async fn try_emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let command = json!({
            "cmd": "emit",
            "client": self.name,
            "event": event,
            "args": args,
            "ack": true,
            "timeoutMs": millis,
        });
        match self
            .inner
            .request(command, timeout + Duration::from_secs(2))
            .await?
        {
            Value::Array(reply) => Ok(reply),
            other => Err(format!("ack of {event:?} was not an array: {other}")),
        }
    }

    /// The arguments this client acks the server's `event` with (default: the
    /// received arguments, echoed back).
    pub(crate) async fn set_ack_reply(&self, event: &str, args: Vec<Value>) {
        self.command(
            "ackReply",
            json!({ "event": event, "args": args }),
            default_timeout(),
        )
        .await;
    }

    /// Waits for the next event called `name` and returns its arguments. Events
    /// of other names stay buffered for later calls.
    pub(crate) async fn next_event(&self, name: &str) -> Vec<Value> {
        self.next_event_full(name, default_timeout()).await.args
    }

    /// Waits (up to `timeout`) for the next event called `name`, with its ack flag.
    pub(crate) async fn next_event_full(&self, name: &str, timeout: Duration) -> ReceivedEvent {
        self.wait_for(&format!("event {name:?}"), timeout, |b| {
            let index = b.events.iter().position(|e| e.name == name)?;
            b.events.remove(index)
        })
        .await
    }

    /// Asserts that no event called `name` arrives within `within`. This is the
    /// harness's only inherent time window: absence can only be observed for a while.
    pub(crate) async fn expect_no_event(&self, name: &str, within: Duration) {
        let found = self.wait_for_opt(within, |b| {
            let index = b.events.iter().position(|e| e.name == name)?;
            b.events.remove(index)
        });
        if let Some(event) = found.await {
            panic!(
                "client {}: expected no event {name:?} within {within:?}, got args {:?}\n{}",
                self.name,
                event.args,
                self.pending_report()
            );
        }
    }

    /// Every buffered event, removed from the buffer (no waiting).
    pub(crate) fn take_events(&self) -> Vec<ReceivedEvent> {
        self.state.buffers.lock().events.drain(..).collect()
    }

    /// Waits for the next `disconnect` and returns socket.io-client's reason
    /// (`io server disconnect`, `transport close`, `ping timeout`, ...).
    pub(crate) async fn next_disconnect(&self) -> String {
        self.wait_for("disconnect", default_timeout(), |b| {
            b.disconnects.pop_front()
        })
        .await
    }

    /// Waits for the next reconnection (`connect` after the initial one, which
    /// [`NodeBridge::connect`] already consumed); returns the new `socket.id`.
    pub(crate) async fn next_connect(&self) -> Option<String> {
        self.wait_for("connect (reconnection)", default_timeout(), |b| {
            b.connects.pop_front()
        })
        .await
    }

    /// Waits for the next `connect_error` (e.g. of a reconnection attempt).
    pub(crate) async fn next_connect_error(&self) -> ConnectErrorInfo {
        self.wait_for("connect_error", default_timeout(), |b| {
            b.connect_errors.pop_front()
        })
        .await
    }

    /// Waits for the Engine.IO connection to upgrade; returns the new transport name.
    pub(crate) async fn next_upgrade(&self) -> String {
        self.wait_for("upgrade", default_timeout(), |b| b.upgrades.pop_front())
            .await
    }

    /// Waits for the next Engine.IO ping from the server (counted since the
    /// last call): proof that the connection is alive through a heartbeat.
    pub(crate) async fn next_ping(&self) {
        self.wait_for("server ping", default_timeout(), |b| {
            b.pings = b.pings.checked_sub(1)?;
            Some(())
        })
        .await;
    }

    /// Forgets the server pings received so far, so [`next_ping`](Self::next_ping)
    /// only counts the ones from now on.
    pub(crate) fn forget_pings(&self) {
        self.state.buffers.lock().pings = 0;
    }

    /// The current transport name (`polling` or `websocket`), asked from the client.
    pub(crate) async fn transport(&self) -> String {
        let result = self
            .command("transport", json!({}), default_timeout())
            .await;
        result.as_str().unwrap_or_default().to_owned()
    }

    /// Whether socket.io-client considers the socket connected right now.
    pub(crate) async fn connected(&self) -> bool {
        let state = self.command("state", json!({}), default_timeout()).await;
        state
            .get("connected")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether socket.io-client recovered its session (connection state
    /// recovery) at the last (re)connection: `socket.recovered`.
    pub(crate) async fn recovered(&self) -> bool {
        let state = self.command("state", json!({}), default_timeout()).await;
        state
            .get("recovered")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The private id of its recoverable session, as socket.io-client keeps
    /// it (`socket._pid`); `None` without recovery.
    pub(crate) async fn pid(&self) -> Option<String> {
        let state = self.command("state", json!({}), default_timeout()).await;
        state.get("pid").and_then(Value::as_str).map(str::to_owned)
    }

    /// The current Engine.IO connection stops answering the server's pings
    /// (to provoke the server's ping timeout).
    pub(crate) async fn silence(&self) {
        self.command("silence", json!({}), default_timeout()).await;
    }

    /// `socket.disconnect()`: a Socket.IO DISCONNECT from the client side.
    pub(crate) async fn disconnect(&self) {
        self.command("disconnect", json!({}), default_timeout())
            .await;
    }

    /// Closes the client's Engine.IO connection (transport) without a Socket.IO DISCONNECT.
    pub(crate) async fn close(&self) {
        self.command("close", json!({}), default_timeout()).await;
    }

    /// Waits until `take` finds something in the buffers, or panics after `timeout`
    /// with everything still buffered.
    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        take: impl FnMut(&mut Buffers) -> Option<T>,
    ) -> T {
        match self.wait_for_opt(timeout, take).await {
            Some(found) => found,
            None => panic!(
                "client {}: no {what} within {timeout:?}\n{}",
                self.name,
                self.pending_report()
            ),
        }
    }

    /// Waits until `take` finds something in the buffers; None after `timeout`
    /// (or at once when the bridge has exited).
    async fn wait_for_opt<T>(
        &self,
        timeout: Duration,
        mut take: impl FnMut(&mut Buffers) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a notification in between is not lost.
            notified.as_mut().enable();
            if let Some(found) = take(&mut self.state.buffers.lock()) {
                return Some(found);
            }
            if self.inner.exited.load(Ordering::SeqCst) {
                return None;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// What this client has buffered and not consumed, plus the bridge's stderr tail.
    fn pending_report(&self) -> String {
        let buffers = self.state.buffers.lock();
        let events: Vec<String> = buffers
            .events
            .iter()
            .map(|e| {
                format!(
                    "{}{:?}{}",
                    e.name,
                    e.args,
                    if e.ack { " (ack asked)" } else { "" }
                )
            })
            .collect();
        format!(
            "  buffered events: {events:?}\n  disconnects: {:?}\n  reconnects: {:?}\n  connect_errors: {:?}\n  upgrades: {:?}\n  unconsumed pings: {}\n  bridge exited: {}\n  bridge stderr tail:\n{}",
            buffers.disconnects,
            buffers.connects,
            buffers.connect_errors,
            buffers.upgrades,
            buffers.pings,
            self.inner.exited.load(Ordering::SeqCst),
            self.inner.stderr_tail()
        )
    }
}

impl fmt::Debug for SioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SioClient")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
