//! A socket and everything that holds one.
//!
//! [`Socket`] (one namespace on one engine connection), [`Namespace`] (a
//! handler plus an adapter), the two traits that take sockets
//! ([`NamespaceHandler`], [`Adapter`]), the values handed to handlers
//! ([`Event`], [`AckSender`]) and the per-connection state ([`Client`],
//! [`ConnState`]) refer to one another, so they live in this one file and
//! every other file of the crate imports them from here, downwards.
//! Broadcast operators, the local adapter, the engine handler and the
//! encoders are built on top of them elsewhere.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use chatgate_eio::{BoxFuture, Conn, Frame, MessageText, Transport};

use crate::encode::{BroadcastPacket, encode_event, encode_raw_event};
use crate::error::{AckError, EmitError, PayloadError};
use crate::handler::{ConnectError, DisconnectReason};
use crate::packet::{Packet, PacketType, write_header};
use crate::rooms::{BroadcastOptions, Room};

const PENDING: u8 = 0;
const CONNECTED: u8 = 1;
const GONE: u8 = 2;

/// A connected client in one namespace. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Socket(Arc<Inner>);

struct Inner {
    id: Arc<str>,
    /// The id of a recovered session, which replaces `id` (set once, before
    /// the CONNECT reply; see [`Socket::restore_id`]).
    restored_id: OnceLock<Arc<str>>,
    ns: Namespace,
    conn: Arc<EngineConn>,
    data: OnceLock<Box<dyn Any + Send + Sync>>,
    state: AtomicU8,
    /// What the CONNECT reply waits for, while connecting; `None` once sent
    /// (and before anything was held).
    pending: Mutex<Option<Box<Pending>>>,
    /// Pending server -> client acks, allocated on first use.
    acks: Mutex<Option<Box<AckMap>>>,
    next_ack: AtomicU64,
}

/// Server -> client acks awaited, by ack id.
type AckMap = HashMap<u64, oneshot::Sender<Vec<Value>>>;

/// A filter of held frames (see [`Socket::skip_held`]).
type HeldFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The state of a socket between CONNECT and its reply.
#[derive(Default)]
struct Pending {
    /// Frames emitted meanwhile, sent after the reply.
    held: Vec<Frame>,
    /// Frames to send before the reply (a recovered session's missed events).
    before: Vec<Frame>,
    /// The session's private id for connection state recovery, in the reply.
    pid: Option<Box<str>>,
    /// Held text messages for which this is true are dropped at the reply.
    skip: Option<HeldFilter>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id())
            .field("nsp", &self.0.ns.path())
            .finish()
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Socket {}
impl Hash for Socket {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state)
    }
}

impl Socket {
    pub(crate) fn new(ns: Namespace, conn: Arc<EngineConn>) -> Socket {
        Socket(Arc::new(Inner {
            id: chatgate_eio::random_id().into(),
            restored_id: OnceLock::new(),
            ns,
            conn,
            data: OnceLock::new(),
            state: AtomicU8::new(PENDING),
            pending: Mutex::new(None),
            acks: Mutex::new(None),
            next_ack: AtomicU64::new(0),
        }))
    }

    pub(crate) fn ptr_eq(&self, other: &Socket) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn ns_path(&self) -> &str {
        self.0.ns.path()
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        self.0.restored_id.get().unwrap_or(&self.0.id)
    }

    /// Socket.IO session id (crypto-random, 128 bits, base64url).
    pub fn id(&self) -> &str {
        self.id_arc()
    }

    /// The namespace of this socket.
    pub fn namespace(&self) -> Namespace {
        self.0.ns.clone()
    }

    /// Peer address of the connection that opened the session (when the
    /// server was started with connect info).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.conn.remote_addr()
    }

    /// Current transport of the engine connection.
    pub fn transport(&self) -> Transport {
        self.0.conn.transport()
    }

    /// Attaches application data (once; later calls are ignored).
    pub fn set_data<T: Any + Send + Sync>(&self, data: T) {
        if self.0.data.set(Box::new(data)).is_err() {
            tracing::warn!(sid = %self.0.id, "Socket::set_data called twice; ignored");
        }
    }

    /// The data set with [`set_data`](Self::set_data), if of type `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.data.get()?.downcast_ref::<T>()
    }

    /// Sends an event with one argument.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let text = encode_event(self.ns_path(), event, data, None)?;
        self.send_frames(&[Frame::message(text)])
    }

    /// Sends an event with several arguments and binary attachments
    /// (placeholders `{"_placeholder":true,"num":n}` in `args` refer to
    /// `attachments[n]`).
    pub fn emit_raw(
        &self,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    ) -> Result<(), EmitError> {
        self.send_frames(&encode_raw_event(
            self.ns_path(),
            event,
            args,
            attachments,
            None,
        ))
    }

    /// Sends an event and waits for the client's acknowledgement.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Vec<Value>, AckError> {
        let id = self.0.next_ack.fetch_add(1, Ordering::Relaxed);
        let text = encode_event(self.ns_path(), event, data, Some(id)).map_err(AckError::Emit)?;
        let (tx, rx) = oneshot::channel();
        self.0
            .acks
            .lock()
            .get_or_insert_with(Box::default)
            .insert(id, tx);
        if let Err(e) = self.send_frames(&[Frame::message(text)]) {
            self.take_ack(id);
            return Err(AckError::Emit(e));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                self.take_ack(id);
                Err(AckError::Timeout)
            }
        }
    }

    fn take_ack(&self, id: u64) -> Option<oneshot::Sender<Vec<Value>>> {
        let mut acks = self.0.acks.lock();
        let map = acks.as_mut()?;
        let tx = map.remove(&id);
        if map.is_empty() {
            *acks = None; // free the map while idle
        }
        tx
    }

    /// Joins a room (immediately, also before the CONNECT reply).
    pub fn join(&self, room: impl Into<Room>) {
        self.0.ns.adapter().join(self, room.into());
    }

    /// Leaves a room.
    pub fn leave(&self, room: impl Into<Room>) {
        self.0.ns.adapter().leave(self, &room.into());
    }

    /// Rooms of this socket, including its own id (as in the reference).
    pub fn rooms(&self) -> Vec<Room> {
        let mut rooms = vec![self.0.id.clone()];
        rooms.extend(self.0.ns.adapter().socket_rooms(self));
        rooms
    }

    /// Sends a Socket.IO DISCONNECT and removes the socket (the client will
    /// not reconnect). on_disconnect(ServerNamespaceDisconnect) runs in a task.
    pub fn disconnect(&self) {
        if !self.mark_gone() {
            return;
        }
        let mut text = MessageText::new();
        write_header(&mut text, PacketType::Disconnect, self.ns_path(), 0, None);
        self.0.conn.send_unbounded(Frame::message(text));
        detach(&self.0.conn, self, false);
        let me = self.clone();
        tokio::spawn(async move {
            me.cleanup(DisconnectReason::ServerNamespaceDisconnect)
                .await
        });
    }

    /// Closes this socket's engine connection without a Socket.IO
    /// DISCONNECT: the client sees its transport close and reconnects (after
    /// a DISCONNECT it would not). For a CONNECT that cannot be answered now.
    pub fn close_transport(&self) {
        self.0.conn.close();
    }

    /// Disconnects every socket of this socket's engine connection, then
    /// closes the connection.
    pub(crate) fn disconnect_and_close(&self) {
        let sockets = self.0.conn.data().sockets.lock().clone();
        for s in sockets {
            s.disconnect();
        }
        self.0.conn.close();
    }

    /// Whether the socket is connected (confirmed and not gone).
    pub fn is_connected(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == CONNECTED && !self.0.conn.is_closing()
    }

    // ---- engine side -------------------------------------------------------------

    /// Queues frames for this socket, holding them back until the CONNECT reply.
    pub(crate) fn send_frames(&self, frames: &[Frame]) -> Result<(), EmitError> {
        match self.0.state.load(Ordering::Acquire) {
            CONNECTED => Ok(self.0.conn.send(frames)?),
            GONE => Err(EmitError::Disconnected),
            _ => {
                let mut pending = self.0.pending.lock();
                match self.0.state.load(Ordering::Acquire) {
                    PENDING => {
                        let pending = pending.get_or_insert_with(Box::default);
                        if pending.held.len() + frames.len()
                            > self.0.conn.config().max_queued_packets
                        {
                            self.0.conn.close_slow_consumer();
                            return Err(EmitError::QueueFull);
                        }
                        pending.held.extend(frames.iter().cloned());
                        Ok(())
                    }
                    CONNECTED => {
                        drop(pending);
                        Ok(self.0.conn.send(frames)?)
                    }
                    _ => Err(EmitError::Disconnected),
                }
            }
        }
    }

    /// While connecting: the session's private id for connection state
    /// recovery (Socket.IO >= 4.6), sent in the CONNECT reply as `pid`. A
    /// client that reconnects sends it back with its last offset.
    pub fn set_pid(&self, pid: &str) {
        if let Some(pending) = self.pending_state() {
            pending.lock().get_or_insert_with(Box::default).pid = Some(pid.into());
        }
    }

    /// While connecting: this socket continues the session `sid` (a
    /// recovered session keeps its id). Call it before joining rooms.
    /// False if the socket is no longer connecting or was restored already.
    pub fn restore_id(&self, sid: &str) -> bool {
        if self.pending_state().is_none() {
            return false;
        }
        let old = self.0.id.clone();
        if self.0.restored_id.set(sid.into()).is_err() {
            return false;
        }
        self.0.ns.adapter().socket_id_changed(self, &old);
        true
    }

    /// The id this socket was created with: unique to this connection,
    /// even when it continues a recovered session under that session's id
    /// ([`id`](Self::id)).
    pub fn instance_id(&self) -> &str {
        &self.0.id
    }

    /// While connecting: an event (with a recovery offset as its last
    /// argument) sent before the CONNECT reply, as a recovered session's
    /// missed events are: socket.io-client hands them to the application
    /// right after `connect`, before anything sent later.
    pub fn emit_before_connect_reply<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        offset: &str,
    ) -> Result<(), EmitError> {
        let text = crate::encode::encode_event_with_offset(self.ns_path(), event, data, offset)?;
        let Some(pending) = self.pending_state() else {
            return Err(EmitError::Disconnected);
        };
        pending
            .lock()
            .get_or_insert_with(Box::default)
            .before
            .push(Frame::message(text));
        Ok(())
    }

    /// While connecting: drops, at the CONNECT reply, the held-back text
    /// messages (Socket.IO packet text) for which `skip` is true, e.g. live
    /// events that the missed events sent before the reply already hold.
    pub fn skip_held(&self, skip: impl Fn(&str) -> bool + Send + Sync + 'static) {
        if let Some(pending) = self.pending_state() {
            pending.lock().get_or_insert_with(Box::default).skip = Some(Box::new(skip));
        }
    }

    /// The pending state, while the socket is connecting.
    fn pending_state(&self) -> Option<&Mutex<Option<Box<Pending>>>> {
        (self.0.state.load(Ordering::Acquire) == PENDING).then_some(&self.0.pending)
    }

    /// Sends what waits before the CONNECT reply, the reply, then the
    /// held-back frames behind a flush barrier (a client reads the reply
    /// alone, as from the reference).
    pub(crate) fn confirm(&self) {
        let mut slot = self.0.pending.lock();
        let pending = slot.take().map(|p| *p).unwrap_or_default();
        let mut reply = MessageText::new();
        write_header(&mut reply, PacketType::Connect, self.ns_path(), 0, None);
        reply.push_str("{\"sid\":");
        reply.push_str(&Value::from(self.id()).to_string());
        if let Some(pid) = &pending.pid {
            reply.push_str(",\"pid\":");
            reply.push_str(&Value::from(&**pid).to_string());
        }
        reply.push('}');
        let held = match &pending.skip {
            Some(skip) => pending
                .held
                .into_iter()
                .filter(|frame| !frame.message_text().is_some_and(skip))
                .collect(),
            None => pending.held,
        };
        self.0.state.store(CONNECTED, Ordering::Release);
        drop(slot);
        let mut head = pending.before;
        head.push(Frame::message(reply));
        self.0.conn.send_then_pause(head, held);
    }

    /// CONNECT refused: drop held frames.
    pub(crate) fn abandon(&self) {
        self.0.state.store(GONE, Ordering::Release);
        *self.0.pending.lock() = None;
    }

    /// Marks the socket gone; true for the first caller only.
    fn mark_gone(&self) -> bool {
        self.0
            .state
            .compare_exchange(CONNECTED, GONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Removes from the adapter, fails pending acks, calls on_disconnect.
    async fn cleanup(&self, reason: DisconnectReason) {
        self.0.ns.adapter().remove_socket(self);
        *self.0.acks.lock() = None;
        self.0.ns.handler().on_disconnect(self, reason).await;
    }

    /// The engine connection closed.
    pub(crate) async fn closed(&self, reason: DisconnectReason) {
        if self.mark_gone() {
            self.cleanup(reason).await;
        }
    }

    /// A packet for this socket from the client.
    pub(crate) async fn on_packet(&self, packet: Packet, attachments: Vec<Bytes>) {
        match packet.kind {
            PacketType::Event | PacketType::BinaryEvent => {
                if self.0.state.load(Ordering::Acquire) != CONNECTED {
                    return;
                }
                let Some(Value::Array(mut args)) = packet.data else {
                    return;
                };
                if args.is_empty() {
                    return;
                }
                let name = match args.remove(0) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let ack = packet.id.map(|id| AckSender {
                    socket: self.clone(),
                    id,
                });
                let event = Event {
                    name,
                    args,
                    attachments,
                    ack,
                };
                self.0.ns.handler().on_event(self, event).await;
            }
            PacketType::Ack | PacketType::BinaryAck => {
                if let (Some(id), Some(Value::Array(args))) = (packet.id, packet.data)
                    && let Some(tx) = self.take_ack(id)
                {
                    let _ = tx.send(args);
                }
            }
            PacketType::Disconnect => {
                if self.mark_gone() {
                    detach(&self.0.conn, self, true);
                    self.cleanup(DisconnectReason::ClientNamespaceDisconnect)
                        .await;
                }
            }
            PacketType::Connect | PacketType::ConnectError => {}
        }
    }
}

/// Removes a socket from its connection. A client that left its last
/// namespace keeps its Engine.IO connection, as with the reference server
/// (socket.io-client closes it itself; a raw client may CONNECT again), but
/// must join a namespace again within the connect timeout.
pub(crate) fn detach(conn: &EngineConn, socket: &Socket, client_initiated: bool) {
    let empty = {
        let mut list = conn.data().sockets.lock();
        list.retain(|s| !s.ptr_eq(socket));
        list.is_empty()
    };
    if empty && client_initiated {
        conn.set_deadline(Some(Instant::now() + conn.handler().connect_timeout));
    }
}

// ---- namespaces -----------------------------------------------------------------

/// A Socket.IO namespace (`"/"`, `"/custom"`). Cheap to clone.
#[derive(Clone)]
pub struct Namespace(Arc<NamespaceInner>);

struct NamespaceInner {
    path: Arc<str>,
    handler: Arc<dyn NamespaceHandler>,
    adapter: Arc<dyn Adapter>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.0.path)
            .finish()
    }
}

impl Namespace {
    pub(crate) fn new(
        path: &str,
        handler: Arc<dyn NamespaceHandler>,
        adapter: Arc<dyn Adapter>,
    ) -> Namespace {
        Namespace(Arc::new(NamespaceInner {
            path: path.into(),
            handler,
            adapter,
        }))
    }

    pub(crate) fn handler(&self) -> &Arc<dyn NamespaceHandler> {
        &self.0.handler
    }

    /// The adapter all room and broadcast operations go through.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.0.adapter
    }

    /// The namespace path, e.g. `"/"`.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// A socket of this namespace on this node, by Socket.IO id.
    pub fn get_socket(&self, sid: &str) -> Option<Socket> {
        self.0.adapter.get_socket(sid)
    }

    /// Sockets of this namespace on this node.
    pub fn socket_count(&self) -> usize {
        self.0.adapter.socket_count()
    }

    /// Rooms with at least one socket (socket-id rooms not counted).
    pub fn room_count(&self) -> usize {
        self.0.adapter.room_count()
    }
}

// ---- what applications implement and receive ----------------------------------

/// Application logic of one namespace.
pub trait NamespaceHandler: Send + Sync + 'static {
    /// A client sent CONNECT to this namespace. `auth` is the CONNECT payload
    /// (`Value::Null` when none). The socket exists but is not yet confirmed:
    /// the handler may `set_data` and join rooms here (packets emitted to the
    /// socket meanwhile are held back); the CONNECT reply is sent only after
    /// this returns `Ok`. `Err(e)` sends CONNECT_ERROR `{message, data}`.
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>>;
    /// An EVENT/BINARY_EVENT from the client. Called in arrival order, one at
    /// a time per engine connection (the next packet is not read meanwhile).
    fn on_event<'a>(&'a self, socket: &'a Socket, event: Event) -> BoxFuture<'a, ()>;
    /// The socket is gone (any reason). Called exactly once per confirmed socket.
    fn on_disconnect<'a>(
        &'a self,
        socket: &'a Socket,
        reason: DisconnectReason,
    ) -> BoxFuture<'a, ()>;
}

/// An event received from a client.
#[derive(Debug)]
pub struct Event {
    /// Event name (first element of the packet array).
    pub name: String,
    /// The other elements; binary placeholders are left as
    /// `{"_placeholder":true,"num":n}`.
    pub args: Vec<Value>,
    /// Binary attachments, in order (`num` indexes this).
    pub attachments: Vec<Bytes>,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckSender>,
}

impl Event {
    /// Deserializes the first argument (missing -> `Value::Null`).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        T::deserialize(self.args.first().unwrap_or(&Value::Null)).map_err(|e| PayloadError {
            message: e.to_string(),
        })
    }
}

/// Answers one client ack request (consumed on use).
#[derive(Debug)]
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
}

impl AckSender {
    /// Acknowledges with a single argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let mut text = MessageText::new();
        crate::packet::write_header(
            &mut text,
            PacketType::Ack,
            self.socket.ns_path(),
            0,
            Some(self.id),
        );
        text.push('[');
        serde_json::to_writer(&mut text, data)?;
        text.push(']');
        self.socket.send_frames(&[Frame::message(text)])
    }

    /// Acknowledges with several arguments and binary attachments (placeholders
    /// `{"_placeholder":true,"num":n}` in `args` refer to `attachments[n]`).
    pub fn send_raw(self, args: Vec<Value>, attachments: Vec<Bytes>) -> Result<(), EmitError> {
        let kind = if attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        let mut text = MessageText::new();
        crate::packet::write_header(
            &mut text,
            kind,
            self.socket.ns_path(),
            attachments.len(),
            Some(self.id),
        );
        serde_json::to_writer(&mut text, &Value::Array(args))?;
        let mut frames = Vec::with_capacity(1 + attachments.len());
        frames.push(Frame::message(text));
        frames.extend(attachments.into_iter().map(Frame::binary));
        self.socket.send_frames(&frames)
    }
}

/// Socket registry, rooms and broadcast of one namespace.
///
/// Implementations must not call back into the engine while holding their
/// own locks except through [`Socket`] sends, which never block and never
/// take adapter locks.
pub trait Adapter: Send + Sync + 'static {
    /// A socket was created (CONNECT received; confirmed later).
    fn add_socket(&self, socket: &Socket);
    /// The socket is gone: forget it and leave all its rooms.
    fn remove_socket(&self, socket: &Socket);
    /// A local socket by id.
    fn get_socket(&self, sid: &str) -> Option<Socket>;
    /// Number of local sockets.
    fn socket_count(&self) -> usize;
    /// Number of non-empty rooms.
    fn room_count(&self) -> usize;
    /// `socket` joins `room`.
    fn join(&self, socket: &Socket, room: Room);
    /// `socket` leaves `room`; an emptied room is freed.
    fn leave(&self, socket: &Socket, room: &Room);
    /// Rooms joined by `socket` (its id room not included).
    fn socket_rooms(&self, socket: &Socket) -> Vec<Room>;
    /// Sends `packet` to every selected socket.
    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions);
    /// `socket` now has another id ([`Socket::restore_id`]); `old_id` was
    /// its id. It keeps its rooms. A socket still registered under the new
    /// id (the session's previous connection, going away) is forgotten.
    fn socket_id_changed(&self, socket: &Socket, old_id: &str);
    /// Every selected socket joins `rooms`.
    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Like [`sockets_join`](Self::sockets_join), and resolves once the join
    /// is certain to be applied on every node before anything published
    /// after it; false when that could not be made certain (it may still
    /// have been applied). A single-node adapter is done at once.
    fn sockets_join_confirmed<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, bool> {
        self.sockets_join(opts, rooms);
        Box::pin(std::future::ready(true))
    }
    /// Every selected socket leaves `rooms`.
    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Disconnects every selected socket (and closes their engine
    /// connections when `close`).
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);
    /// The selected sockets of this node.
    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket>;
}

// ---- per engine connection ------------------------------------------------------

/// An engine connection as Socket.IO holds it.
pub(crate) type EngineConn = Conn<Client>;

/// The Engine.IO handler of a Socket.IO server: its namespaces and the
/// connect timeout.
pub struct Client {
    pub(crate) namespaces: RwLock<HashMap<String, Namespace>>,
    /// An engine connection that has joined no namespace after this long is closed.
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A binary packet and the attachments received for it so far.
pub(crate) type PartialPacket = Box<(Packet, Vec<Bytes>)>;

/// Socket.IO state of one engine connection.
#[derive(Default)]
pub struct ConnState {
    /// Sockets multiplexed on this connection (usually one).
    pub(crate) sockets: Mutex<Vec<Socket>>,
}

impl Client {
    pub(crate) fn new(connect_timeout: Duration) -> Client {
        Client {
            namespaces: RwLock::new(HashMap::new()),
            connect_timeout,
        }
    }

    pub(crate) fn namespace(&self, path: &str) -> Option<Namespace> {
        self.namespaces.read().get(path).cloned()
    }
}
