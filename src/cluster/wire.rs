//! The wire format of Node's `@socket.io/redis-adapter` (v8, classic
//! pub/sub), so chatgate nodes, Node servers using that adapter and app
//! backends using `@socket.io/redis-emitter` understand each other.
//!
//! * Broadcasts go to `<prefix>#<nsp>#` (or `<prefix>#<nsp>#<room>#` when
//!   they target exactly one room) as msgpack `[uid, packet, opts]`, with
//!   `packet = {type: 2, data: [event, ...args], nsp}` (binary arguments as
//!   msgpack `bin`) and `opts = {rooms, except, flags}`.
//! * Room membership and disconnect requests go to `<prefix>-request#<nsp>#`
//!   as JSON `{uid, type, opts: {rooms, except}, rooms | close}` with `type`
//!   2 (join), 3 (leave), 4 (disconnect).

use bytes::Bytes;
use chatgate_sio::packet::{Packet, PacketType, write_header};
use chatgate_sio::{BroadcastOptions, BroadcastPacket, Room};
use rmpv::Value as Mp;
use serde_json::{Map, Value, json};

/// `RequestType.REMOTE_JOIN` of the Node adapter.
pub(crate) const REMOTE_JOIN: u64 = 2;
/// `RequestType.REMOTE_LEAVE`.
pub(crate) const REMOTE_LEAVE: u64 = 3;
/// `RequestType.REMOTE_DISCONNECT`.
pub(crate) const REMOTE_DISCONNECT: u64 = 4;

/// Most rooms accepted in one incoming selection (hostile-input bound).
const MAX_ROOMS: usize = 10_000;

/// Deepest nesting accepted in incoming msgpack (hostile-input bound): the
/// outermost value is at depth 0, so 64 levels of arrays or maps may wrap
/// a leaf.
const MAX_DEPTH: usize = 64;

/// The depth budget given to `rmpv`, which spends two units per array or
/// map level and up to three on a leaf (string, binary, extension): enough
/// for everything [`MAX_DEPTH`] allows, while bounding its recursion.
/// [`well_formed`] then applies [`MAX_DEPTH`] exactly.
const RMPV_DEPTH: usize = 2 * MAX_DEPTH + 3;

/// Decodes one msgpack value that must span all of `payload`. `None` when
/// malformed, nested deeper than [`MAX_DEPTH`] or holding a string that is
/// not UTF-8. (`rmpv` checks every length against the input and never
/// preallocates from one.)
fn decode(payload: &[u8]) -> Option<Mp> {
    let mut rest = payload;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, RMPV_DEPTH).ok()?;
    (rest.is_empty() && well_formed(&value, 0)).then_some(value)
}

/// Whether `value` (at `depth`) nests at most [`MAX_DEPTH`] deep and all its
/// strings are UTF-8 (`rmpv` keeps invalid ones as bytes).
fn well_formed(value: &Mp, depth: usize) -> bool {
    depth <= MAX_DEPTH
        && match value {
            Mp::String(s) => s.is_str(),
            Mp::Array(items) => items.iter().all(|v| well_formed(v, depth + 1)),
            Mp::Map(entries) => entries
                .iter()
                .all(|(k, v)| well_formed(k, depth + 1) && well_formed(v, depth + 1)),
            _ => true,
        }
}

/// Encodes `value`; `None` only if writing fails, which a `Vec` never does.
fn encode(value: &Mp) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    rmpv::encode::write_value(&mut out, value).ok()?;
    Some(out)
}

/// The value under string key `key`, if `value` is a map holding it.
fn get<'a>(value: &'a Mp, key: &str) -> Option<&'a Mp> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The value as an unsigned integer, if it is a non-negative integer (or a
/// float holding one: JavaScript numbers are floats).
fn as_u64(value: &Mp) -> Option<u64> {
    let whole = |f: f64| (f.fract() == 0.0 && (0.0..1.8e19).contains(&f)).then_some(f as u64);
    match *value {
        Mp::Integer(n) => n.as_u64(),
        Mp::F32(f) => whole(f64::from(f)),
        Mp::F64(f) => whole(f),
        _ => None,
    }
}

/// The channel names of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    /// `<prefix>#<nsp>#`: broadcasts (a room name and `#` may follow).
    pub(crate) broadcast: String,
    /// `<prefix>-request#<nsp>#`: requests.
    pub(crate) request: String,
}

impl Channels {
    /// The channels of namespace `nsp` under `prefix` (`socket.io` by default).
    pub(crate) fn new(prefix: &str, nsp: &str) -> Channels {
        Channels {
            broadcast: format!("{prefix}#{nsp}#"),
            request: format!("{prefix}-request#{nsp}#"),
        }
    }

    /// Where a broadcast with `opts` is published.
    pub(crate) fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        match opts.rooms.as_slice() {
            [room] => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }
}

fn rooms_mp(rooms: &[Room]) -> Mp {
    Mp::Array(rooms.iter().map(|r| Mp::from(&**r)).collect())
}

fn key(name: &str) -> Mp {
    Mp::from(name)
}

/// The uid of the messages that the ordered send publishes from inside
/// Redis: no node's, so every node, the sender's included, delivers them.
pub(crate) const ORDERED_UID: &str = "chatgate-ordered";

/// An event to one room, encoded as a broadcast in the adapter's format
/// (classic pub/sub, or with `sharded` the sharded adapter's) around five
/// gaps that only Redis can fill (see `backend::PublishTemplate`): the
/// payload's `gap_field` (its first entry), the offset (the event's last
/// argument), and in the options the previous id (`prev`) and the id again
/// (`seq`), which receivers use to notice a gap. Returns the channel and
/// the parts; `None` if `payload` lacks `gap_field`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ordered_event_parts(
    channels: &Channels,
    nsp: &str,
    room: &str,
    except: Option<&str>,
    event: &str,
    payload: &Map<String, Value>,
    gap_field: &str,
    sharded: bool,
) -> Option<(String, [Vec<u8>; 5])> {
    use rmp::encode::{write_array_len, write_map_len, write_str, write_uint};
    if !payload.contains_key(gap_field) {
        return None;
    }
    let len = |n: usize| u32::try_from(n).ok();
    let mut head = Vec::with_capacity(64);
    if sharded {
        // {uid, nsp, type: 3, data: {packet: {type: 2, data: [event,
        // {gap_field: ID, ...}, OFFSET], nsp}, opts}}
        write_map_len(&mut head, 4).ok()?;
        write_str(&mut head, "uid").ok()?;
        write_str(&mut head, ORDERED_UID).ok()?;
        write_str(&mut head, "nsp").ok()?;
        write_str(&mut head, nsp).ok()?;
        write_str(&mut head, "type").ok()?;
        write_uint(&mut head, SHARDED_BROADCAST).ok()?;
        write_str(&mut head, "data").ok()?;
        write_map_len(&mut head, 2).ok()?;
        write_str(&mut head, "packet").ok()?;
    } else {
        // [uid, {type: 2, data: [event, {gap_field: ID, ...}, OFFSET], nsp}, opts]
        write_array_len(&mut head, 3).ok()?;
        write_str(&mut head, ORDERED_UID).ok()?;
    }
    write_map_len(&mut head, 3).ok()?;
    write_str(&mut head, "type").ok()?;
    write_uint(&mut head, 2).ok()?;
    write_str(&mut head, "data").ok()?;
    write_array_len(&mut head, 3).ok()?;
    write_str(&mut head, event).ok()?;
    write_map_len(&mut head, len(payload.len())?).ok()?;
    write_str(&mut head, gap_field).ok()?;
    let mut fields = Vec::with_capacity(128);
    for (name, value) in payload.iter().filter(|(name, _)| *name != gap_field) {
        write_str(&mut fields, name).ok()?;
        rmpv::encode::write_value(&mut fields, &json_to_mp(value, &[])).ok()?;
    }
    // ... nsp}, {rooms, except, flags, prev: PREV, seq: ID}] (sharded:
    // `opts: {...}}}`)
    let mut tail = Vec::with_capacity(64);
    write_str(&mut tail, "nsp").ok()?;
    write_str(&mut tail, nsp).ok()?;
    if sharded {
        write_str(&mut tail, "opts").ok()?;
    }
    write_map_len(&mut tail, 5).ok()?;
    write_str(&mut tail, "rooms").ok()?;
    rmpv::encode::write_value(&mut tail, &rooms_mp(&[Room::from(room)])).ok()?;
    write_str(&mut tail, "except").ok()?;
    let except: Vec<Room> = except.map(Room::from).into_iter().collect();
    rmpv::encode::write_value(&mut tail, &rooms_mp(&except)).ok()?;
    write_str(&mut tail, "flags").ok()?;
    write_map_len(&mut tail, 0).ok()?;
    write_str(&mut tail, "prev").ok()?;
    let mut seq = Vec::with_capacity(4);
    write_str(&mut seq, "seq").ok()?;
    let channel = if sharded {
        channels.broadcast.clone()
    } else {
        format!("{}{room}#", channels.broadcast)
    };
    Some((channel, [head, fields, tail, seq, Vec::new()]))
}

/// The namespace of sequence probes: no application's (Node servers ignore
/// broadcasts of other namespaces), so only chatgate nodes read them.
const PROBE_NSP: &str = "/\u{0}chatgate-sequence";

/// A sequence probe: "the last ordered message has id `last`", published
/// after everything that came before it, so that a node which missed the
/// tail of the ordered messages (no later message to show the gap) notices.
pub(crate) fn encode_probe(last: u64) -> Option<Vec<u8>> {
    let message = Mp::Array(vec![
        Mp::from(ORDERED_UID),
        Mp::Map(vec![
            (key("type"), Mp::from(2_u64)),
            (key("data"), Mp::Array(Vec::new())),
            (key("nsp"), Mp::from(PROBE_NSP)),
        ]),
        Mp::Map(vec![
            (key("rooms"), Mp::Array(Vec::new())),
            (key("except"), Mp::Array(Vec::new())),
            (key("flags"), Mp::Map(Vec::new())),
            (key("prev"), Mp::from(last)),
            (key("seq"), Mp::from(last)),
        ]),
    ]);
    encode(&message)
}

/// A sequence probe in the sharded adapter's format: a message of a
/// namespace no application has (Node servers ignore it), `{uid, nsp, type:
/// 3, data: {seq}}`.
pub(crate) fn encode_sharded_probe(last: u64) -> Option<Vec<u8>> {
    encode(&Mp::Map(vec![
        (key("uid"), Mp::from(ORDERED_UID)),
        (key("nsp"), Mp::from(PROBE_NSP)),
        (key("type"), Mp::from(SHARDED_BROADCAST)),
        (key("data"), Mp::Map(vec![(key("seq"), Mp::from(last))])),
    ]))
}

/// The id a sharded sequence probe announces; `None` for anything else.
pub(crate) fn decode_sharded_probe(payload: &[u8]) -> Option<u64> {
    let message = decode(payload)?;
    if get(&message, "uid")?.as_str() != Some(ORDERED_UID)
        || get(&message, "nsp")?.as_str() != Some(PROBE_NSP)
    {
        return None;
    }
    get(get(&message, "data")?, "seq")?.as_u64()
}

/// The id a sequence probe announces; `None` for anything else.
pub(crate) fn decode_probe(payload: &[u8]) -> Option<u64> {
    let Mp::Array(parts) = decode(payload)? else {
        return None;
    };
    let [uid, packet, opts] = parts.as_slice() else {
        return None;
    };
    if uid.as_str() != Some(ORDERED_UID) || get(packet, "nsp")?.as_str() != Some(PROBE_NSP) {
        return None;
    }
    get(opts, "seq")?.as_u64()
}

/// Encodes a local broadcast for other nodes; `None` if the packet text
/// cannot be parsed (never the case for packets the engine encoded).
pub(crate) fn encode_broadcast(
    uid: &str,
    nsp: &str,
    packet: &BroadcastPacket,
    opts: &BroadcastOptions,
) -> Option<Vec<u8>> {
    let message = Mp::Array(vec![Mp::from(uid), packet_mp(nsp, packet)?, opts_mp(opts)]);
    encode(&message)
}

/// `{type: 2, data, nsp}` of a packet (binary attachments inlined as `bin`).
fn packet_mp(nsp: &str, packet: &BroadcastPacket) -> Option<Mp> {
    let decoded = Packet::decode(packet.text()).ok()?;
    let attachments: Vec<&Bytes> = packet.attachments().collect();
    let data = decoded
        .data
        .as_ref()
        .map_or(Mp::Array(Vec::new()), |d| json_to_mp(d, &attachments));
    Some(Mp::Map(vec![
        (key("type"), Mp::from(2_u64)),
        (key("data"), data),
        (key("nsp"), Mp::from(nsp)),
    ]))
}

/// `{rooms, except, flags}`.
fn opts_mp(opts: &BroadcastOptions) -> Mp {
    Mp::Map(vec![
        (key("rooms"), rooms_mp(&opts.rooms)),
        (key("except"), rooms_mp(&opts.except)),
        (key("flags"), Mp::Map(Vec::new())),
    ])
}

/// JSON to msgpack; `{"_placeholder":true,"num":n}` becomes attachment `n`.
fn json_to_mp(value: &Value, attachments: &[&Bytes]) -> Mp {
    match value {
        Value::Null => Mp::Nil,
        Value::Bool(b) => Mp::Boolean(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Mp::from(u)
            } else if let Some(i) = n.as_i64() {
                Mp::from(i)
            } else {
                Mp::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => Mp::from(s.as_str()),
        Value::Array(items) => {
            Mp::Array(items.iter().map(|v| json_to_mp(v, attachments)).collect())
        }
        Value::Object(map) => {
            if map.get("_placeholder") == Some(&Value::Bool(true))
                && let Some(bytes) = map
                    .get("num")
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(|n| attachments.get(n))
            {
                return Mp::Binary(bytes.to_vec());
            }
            Mp::Map(
                map.iter()
                    .map(|(k, v)| (Mp::from(k.as_str()), json_to_mp(v, attachments)))
                    .collect(),
            )
        }
    }
}

/// A float as JSON (`null` for NaN and infinities, as `JSON.stringify`).
fn float_json(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Msgpack to JSON; `bin` values become placeholders and attachments, as
/// `socket.io-parser` deconstructs a packet. `nil` (how `notepack.io` 3
/// encodes `undefined`) and extension values (older `notepack.io`'s
/// `undefined`, dates) become `null`.
fn mp_to_json(value: Mp, attachments: &mut Vec<Bytes>) -> Value {
    match value {
        Mp::Nil | Mp::Ext(..) => Value::Null,
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(n) => n
            .as_u64()
            .map(Value::from)
            .or_else(|| n.as_i64().map(Value::from))
            .unwrap_or(Value::Null),
        Mp::F32(f) => float_json(f64::from(f)),
        Mp::F64(f) => float_json(f),
        // `decode` refused strings that are not UTF-8.
        Mp::String(s) => s.into_str().map_or(Value::Null, Value::String),
        Mp::Binary(b) => {
            let num = attachments.len();
            attachments.push(Bytes::from(b));
            json!({ "_placeholder": true, "num": num })
        }
        Mp::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| mp_to_json(v, attachments))
                .collect(),
        ),
        Mp::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let k = match mp_to_json(k, &mut Vec::new()) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(k, mp_to_json(v, attachments));
            }
            Value::Object(map)
        }
    }
}

/// A broadcast received from another node (or an emitter).
#[derive(Debug)]
pub(crate) struct IncomingBroadcast {
    /// The sender's uid (`"emitter"` for `@socket.io/redis-emitter`).
    pub(crate) uid: String,
    /// The packet, ready for the local adapter.
    pub(crate) packet: BroadcastPacket,
    /// Which sockets it is for.
    pub(crate) opts: BroadcastOptions,
    /// `(prev, seq)` of an ordered send (see [`ordered_event_parts`]).
    pub(crate) sequence: Option<(u64, u64)>,
}

/// A room name from the wire: strings, and numbers (Node allows numeric rooms).
fn room_of(value: &Mp) -> Option<Room> {
    match value {
        Mp::String(s) => s.as_str().map(Room::from),
        Mp::Integer(n) => Some(Room::from(n.to_string())),
        Mp::F32(f) => Some(Room::from(f64::from(*f).to_string())),
        Mp::F64(f) => Some(Room::from(f.to_string())),
        _ => None,
    }
}

fn rooms_of(value: Option<&Mp>) -> Option<Vec<Room>> {
    match value {
        None | Some(Mp::Nil) => Some(Vec::new()),
        Some(Mp::Array(items)) if items.len() <= MAX_ROOMS => items.iter().map(room_of).collect(),
        _ => None,
    }
}

/// Decodes a broadcast message of namespace `nsp`. `None` for anything
/// else: malformed input, other namespaces, packets that are not events,
/// and broadcasts flagged `local`.
pub(crate) fn decode_broadcast(payload: &[u8], nsp: &str) -> Option<IncomingBroadcast> {
    let Mp::Array(parts) = decode(payload)? else {
        return None;
    };
    let mut parts = parts.into_iter();
    let uid = match parts.next()? {
        Mp::String(s) => s.into_str().unwrap_or_default(),
        _ => String::new(),
    };
    let packet = parts.next()?;
    let opts = parts.next()?;
    Some(IncomingBroadcast {
        uid,
        opts: options_of(&opts)?,
        packet: packet_of(packet, nsp)?,
        sequence: sequence_of(&opts),
    })
}

/// `(prev, seq)` of an ordered send, from its options.
fn sequence_of(opts: &Mp) -> Option<(u64, u64)> {
    Some((
        get(opts, "prev").and_then(Mp::as_u64)?,
        get(opts, "seq").and_then(Mp::as_u64)?,
    ))
}

/// The selection of `{rooms, except, flags}`; `None` when malformed or
/// flagged `local`.
fn options_of(opts: &Mp) -> Option<BroadcastOptions> {
    if get(opts, "flags")
        .and_then(|f| get(f, "local"))
        .is_some_and(|l| *l == Mp::Boolean(true))
    {
        return None;
    }
    Some(BroadcastOptions {
        rooms: rooms_of(get(opts, "rooms"))?,
        except: rooms_of(get(opts, "except"))?,
    })
}

/// The packet of `{type, data, nsp}`: events of namespace `nsp` only.
fn packet_of(packet: Mp, nsp: &str) -> Option<BroadcastPacket> {
    let packet_nsp = get(&packet, "nsp").and_then(Mp::as_str).unwrap_or("/");
    if packet_nsp != nsp {
        return None;
    }
    let kind = get(&packet, "type").and_then(as_u64)?;
    if kind != 2 && kind != 5 {
        return None;
    }
    let data = take(packet, "data")?;
    // An event is an array whose first element is the event name.
    match &data {
        Mp::Array(items) if matches!(items.first(), Some(Mp::String(_))) => {}
        _ => return None,
    }
    let mut attachments = Vec::new();
    let json = mp_to_json(data, &mut attachments);
    let kind = if attachments.is_empty() {
        PacketType::Event
    } else {
        PacketType::BinaryEvent
    };
    let mut text = String::new();
    write_header(&mut text, kind, nsp, attachments.len(), None);
    text.push_str(&json.to_string());
    Some(BroadcastPacket::from_parts(&text, attachments))
}

fn names(rooms: &[Room]) -> Vec<&str> {
    rooms.iter().map(|r| &**r).collect()
}

/// Encodes a join (`REMOTE_JOIN`) or leave (`REMOTE_LEAVE`) request.
pub(crate) fn encode_rooms_request(
    uid: &str,
    kind: u64,
    opts: &BroadcastOptions,
    rooms: &[Room],
) -> Vec<u8> {
    json!({
        "uid": uid,
        "type": kind,
        "opts": { "rooms": names(&opts.rooms), "except": names(&opts.except) },
        "rooms": names(rooms),
    })
    .to_string()
    .into_bytes()
}

/// Encodes a `REMOTE_DISCONNECT` request.
pub(crate) fn encode_disconnect_request(
    uid: &str,
    opts: &BroadcastOptions,
    close: bool,
) -> Vec<u8> {
    json!({
        "uid": uid,
        "type": REMOTE_DISCONNECT,
        "opts": { "rooms": names(&opts.rooms), "except": names(&opts.except) },
        "close": close,
    })
    .to_string()
    .into_bytes()
}

/// A request received on the request channel.
#[derive(Debug, PartialEq)]
pub(crate) enum Request {
    /// Selected sockets join `rooms`.
    Join(BroadcastOptions, Vec<Room>),
    /// Selected sockets leave `rooms`.
    Leave(BroadcastOptions, Vec<Room>),
    /// Selected sockets disconnect (`close`: also their connections).
    Disconnect(BroadcastOptions, bool),
}

fn json_rooms(value: Option<&Value>) -> Option<Vec<Room>> {
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_ROOMS => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(Room::from(s.as_str())),
                Value::Number(n) => Some(Room::from(n.to_string())),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Decodes a request; returns the sender's uid (empty when absent, as from
/// the emitter) and the request. `None` for requests chatgate does not
/// serve (fetches, server-side emits, acknowledged broadcasts) and for
/// malformed input.
pub(crate) fn decode_request(payload: &[u8]) -> Option<(String, Request)> {
    if payload.first() != Some(&b'{') {
        return None; // msgpack requests: acknowledged broadcasts only
    }
    let value: Value = serde_json::from_slice(payload).ok()?;
    let uid = value
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = value.get("type").and_then(Value::as_u64)?;
    // Requests for one socket by id (`sid`) target Node sockets: not ours.
    let opts_value = value.get("opts")?;
    let opts = BroadcastOptions {
        rooms: json_rooms(opts_value.get("rooms"))?,
        except: json_rooms(opts_value.get("except"))?,
    };
    let request = match kind {
        REMOTE_JOIN => Request::Join(opts, json_rooms(value.get("rooms"))?),
        REMOTE_LEAVE => Request::Leave(opts, json_rooms(value.get("rooms"))?),
        REMOTE_DISCONNECT => Request::Disconnect(
            opts,
            value.get("close").and_then(Value::as_bool).unwrap_or(false),
        ),
        _ => return None,
    };
    Some((uid, request))
}

// ---- Sharded pub/sub (Redis Cluster) ------------------------------------
//
// The format of `createShardedAdapter` (socket.io-adapter's ClusterAdapter
// messages): `{uid, nsp, type, data}` on `<prefix>#<nsp>#`, JSON or msgpack
// (chatgate always writes msgpack; both are read). Types: 3 broadcast
// (`data: {packet, opts}`), 4 join and 5 leave (`data: {opts, rooms}`),
// 6 disconnect (`data: {opts, close}`).

/// ClusterAdapter `MessageType.BROADCAST`.
const SHARDED_BROADCAST: u64 = 3;
/// `MessageType.SOCKETS_JOIN`.
const SHARDED_JOIN: u64 = 4;
/// `MessageType.SOCKETS_LEAVE`.
const SHARDED_LEAVE: u64 = 5;
/// `MessageType.DISCONNECT_SOCKETS`.
const SHARDED_DISCONNECT: u64 = 6;

/// What a node tells the others.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    /// A broadcast.
    Broadcast(&'a BroadcastPacket, &'a BroadcastOptions),
    /// Selected sockets join rooms.
    Join(&'a BroadcastOptions, &'a [Room]),
    /// Selected sockets leave rooms.
    Leave(&'a BroadcastOptions, &'a [Room]),
    /// Selected sockets disconnect.
    Disconnect(&'a BroadcastOptions, bool),
}

fn selection_mp(opts: &BroadcastOptions) -> Mp {
    Mp::Map(vec![
        (key("rooms"), rooms_mp(&opts.rooms)),
        (key("except"), rooms_mp(&opts.except)),
    ])
}

/// Encodes a sharded message; `None` if a packet cannot be parsed.
pub(crate) fn encode_sharded(uid: &str, nsp: &str, message: Outgoing<'_>) -> Option<Vec<u8>> {
    let (kind, data) = match message {
        Outgoing::Broadcast(packet, opts) => (
            SHARDED_BROADCAST,
            Mp::Map(vec![
                (key("packet"), packet_mp(nsp, packet)?),
                (key("opts"), opts_mp(opts)),
            ]),
        ),
        Outgoing::Join(opts, rooms) | Outgoing::Leave(opts, rooms) => (
            if matches!(message, Outgoing::Join(..)) {
                SHARDED_JOIN
            } else {
                SHARDED_LEAVE
            },
            Mp::Map(vec![
                (key("opts"), selection_mp(opts)),
                (key("rooms"), rooms_mp(rooms)),
            ]),
        ),
        Outgoing::Disconnect(opts, close) => (
            SHARDED_DISCONNECT,
            Mp::Map(vec![
                (key("opts"), selection_mp(opts)),
                (key("close"), Mp::Boolean(close)),
            ]),
        ),
    };
    encode(&Mp::Map(vec![
        (key("uid"), Mp::from(uid)),
        (key("nsp"), Mp::from(nsp)),
        (key("type"), Mp::from(kind)),
        (key("data"), data),
    ]))
}

/// A sharded message received.
#[derive(Debug)]
pub(crate) enum Sharded {
    /// A broadcast; `(prev, seq)` of an ordered send.
    Broadcast(BroadcastPacket, BroadcastOptions, Option<(u64, u64)>),
    /// A room or disconnect request.
    Request(Request),
}

fn take(map: Mp, name: &str) -> Option<Mp> {
    match map {
        Mp::Map(entries) => entries
            .into_iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Decodes a sharded message of namespace `nsp`; returns the sender's uid
/// and the message. `None` for other namespaces, message types chatgate
/// does not serve (heartbeats, fetches, acknowledged broadcasts) and
/// malformed input.
pub(crate) fn decode_sharded(payload: &[u8], nsp: &str) -> Option<(String, Sharded)> {
    let message = if payload.first() == Some(&b'{') {
        let value: Value = serde_json::from_slice(payload).ok()?;
        json_to_mp(&value, &[])
    } else {
        decode(payload)?
    };
    if get(&message, "nsp").and_then(Mp::as_str) != Some(nsp) {
        return None;
    }
    let uid = get(&message, "uid")
        .and_then(Mp::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = get(&message, "type").and_then(as_u64)?;
    let data = take(message, "data")?;
    let selection = |data: &Mp| -> Option<BroadcastOptions> {
        let opts = get(data, "opts")?;
        Some(BroadcastOptions {
            rooms: rooms_of(get(opts, "rooms"))?,
            except: rooms_of(get(opts, "except"))?,
        })
    };
    let decoded = match kind {
        SHARDED_BROADCAST => {
            if get(&data, "requestId").is_some() {
                return None;
            }
            let opts_value = get(&data, "opts")?;
            let opts = options_of(opts_value)?;
            let sequence = sequence_of(opts_value);
            Sharded::Broadcast(packet_of(take(data, "packet")?, nsp)?, opts, sequence)
        }
        SHARDED_JOIN => Sharded::Request(Request::Join(
            selection(&data)?,
            rooms_of(get(&data, "rooms"))?,
        )),
        SHARDED_LEAVE => Sharded::Request(Request::Leave(
            selection(&data)?,
            rooms_of(get(&data, "rooms"))?,
        )),
        SHARDED_DISCONNECT => Sharded::Request(Request::Disconnect(
            selection(&data)?,
            get(&data, "close") == Some(&Mp::Boolean(true)),
        )),
        _ => return None,
    };
    Some((uid, decoded))
}

#[cfg(test)]
mod tests {
    #[test]
    fn probes_round_trip_and_stay_out_of_every_namespace() {
        let payload = super::encode_probe(1_796_000_000_000_000).expect("encodes");
        assert_eq!(super::decode_probe(&payload), Some(1_796_000_000_000_000));
        assert!(super::decode_broadcast(&payload, "/").is_none());
    }

    use super::*;

    /// Fills an ordered template as the send scripts do.
    fn fill(parts: &[Vec<u8>; 5], id: u64, prev: u64) -> Vec<u8> {
        let uint = |n: u64| [&[0xcf][..], &n.to_be_bytes()].concat();
        let offset = [&[0xb0][..], format!("{id:016}").as_bytes()].concat();
        [
            parts[0].clone(),
            uint(id),
            parts[1].clone(),
            offset,
            parts[2].clone(),
            uint(prev),
            parts[3].clone(),
            uint(id),
            parts[4].clone(),
        ]
        .concat()
    }

    #[test]
    fn ordered_templates_decode_in_both_formats() {
        let channels = Channels::new("socket.io", "/");
        let payload = json!({"id": 0, "channelId": "general", "text": "hi"});
        let payload = payload.as_object().expect("an object");
        let expected = r#"2["message:new",{"channelId":"general","id":1796000000000001,"text":"hi"},"1796000000000001"]"#;
        let (channel, parts) = ordered_event_parts(
            &channels,
            "/",
            "general",
            Some("sid1"),
            "message:new",
            payload,
            "id",
            false,
        )
        .expect("a template");
        assert_eq!(channel, "socket.io#/#general#");
        let classic = fill(&parts, 1_796_000_000_000_001, 7);
        let incoming = decode_broadcast(&classic, "/").expect("decodes");
        assert_eq!(incoming.uid, ORDERED_UID);
        assert_eq!(incoming.packet.text(), expected);
        assert_eq!(incoming.opts, opts(&["general"], &["sid1"]));
        assert_eq!(incoming.sequence, Some((7, 1_796_000_000_000_001)));

        let (channel, parts) = ordered_event_parts(
            &channels,
            "/",
            "general",
            Some("sid1"),
            "message:new",
            payload,
            "id",
            true,
        )
        .expect("a template");
        assert_eq!(channel, "socket.io#/#");
        let sharded = fill(&parts, 1_796_000_000_000_001, 7);
        match decode_sharded(&sharded, "/") {
            Some((uid, Sharded::Broadcast(packet, o, sequence))) => {
                assert_eq!(uid, ORDERED_UID);
                assert_eq!(packet.text(), expected);
                assert_eq!(o, opts(&["general"], &["sid1"]));
                assert_eq!(sequence, Some((7, 1_796_000_000_000_001)));
            }
            other => panic!("{other:?}"),
        }
        assert!(decode_sharded(&sharded, "/other").is_none());
    }

    #[test]
    fn sharded_probes_round_trip_and_stay_out_of_every_namespace() {
        let payload = encode_sharded_probe(1_796_000_000_000_000).expect("encodes");
        assert_eq!(decode_sharded_probe(&payload), Some(1_796_000_000_000_000));
        assert!(decode_sharded(&payload, "/").is_none());
        let packet = BroadcastPacket::from_parts(r#"2["typing",{"a":1}]"#, vec![]);
        let o = opts(&["general"], &[]);
        let broadcast =
            encode_sharded("n1", "/", Outgoing::Broadcast(&packet, &o)).expect("encodes");
        assert!(decode_sharded_probe(&broadcast).is_none());
    }

    fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            except: except.iter().map(|r| Room::from(*r)).collect(),
        }
    }

    #[test]
    fn broadcast_round_trip() {
        let packet =
            BroadcastPacket::from_parts(r#"2["message:new",{"id":1,"text":"hi"}]"#, vec![]);
        let o = opts(&["general"], &["sid1"]);
        let bytes = encode_broadcast("node-a", "/", &packet, &o).expect("encodes");
        let incoming = decode_broadcast(&bytes, "/").expect("decodes");
        assert_eq!(incoming.uid, "node-a");
        assert_eq!(incoming.opts, o);
        assert_eq!(incoming.packet.text(), packet.text());
        assert!(decode_broadcast(&bytes, "/other").is_none());
    }

    #[test]
    fn binary_becomes_attachments() {
        let packet = BroadcastPacket::from_parts(
            r#"51-["file",{"_placeholder":true,"num":0}]"#,
            vec![Bytes::from_static(b"abc")],
        );
        let bytes = encode_broadcast("n", "/", &packet, &opts(&[], &[])).expect("encodes");
        let incoming = decode_broadcast(&bytes, "/").expect("decodes");
        assert_eq!(
            incoming.packet.text(),
            r#"51-["file",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(incoming.packet.attachments().count(), 1);
    }

    #[test]
    fn requests_round_trip() {
        let o = opts(&["@alice"], &[]);
        let join = encode_rooms_request("n", REMOTE_JOIN, &o, &[Room::from("general")]);
        assert_eq!(
            decode_request(&join),
            Some((
                "n".into(),
                Request::Join(o.clone(), vec![Room::from("general")])
            ))
        );
        let leave = encode_rooms_request("n", REMOTE_LEAVE, &o, &[Room::from("general")]);
        assert!(matches!(
            decode_request(&leave),
            Some((_, Request::Leave(..)))
        ));
        let disconnect = encode_disconnect_request("n", &o, true);
        assert_eq!(
            decode_request(&disconnect),
            Some(("n".into(), Request::Disconnect(o, true)))
        );
        assert!(decode_request(b"{\"type\":0,\"requestId\":\"x\"}").is_none());
        assert!(decode_request(b"\x93").is_none());
    }

    #[test]
    fn sharded_round_trip() {
        let packet = BroadcastPacket::from_parts(r#"2["typing",{"a":1}]"#, vec![]);
        let o = opts(&["general"], &["sid"]);
        let bytes = encode_sharded("n1", "/", Outgoing::Broadcast(&packet, &o)).expect("encodes");
        match decode_sharded(&bytes, "/") {
            Some((uid, Sharded::Broadcast(p, decoded, None))) => {
                assert_eq!(uid, "n1");
                assert_eq!(p.text(), packet.text());
                assert_eq!(decoded, o);
            }
            other => panic!("{other:?}"),
        }
        let rooms = [Room::from("x")];
        let join = encode_sharded("n1", "/", Outgoing::Join(&o, &rooms)).expect("encodes");
        assert!(matches!(
            decode_sharded(&join, "/"),
            Some((_, Sharded::Request(Request::Join(..))))
        ));
        let json = br#"{"uid":"node","nsp":"/","type":6,"data":{"opts":{"rooms":["@a"],"except":[]},"close":true}}"#;
        assert!(matches!(
            decode_sharded(json, "/"),
            Some((_, Sharded::Request(Request::Disconnect(_, true))))
        ));
        assert!(decode_sharded(json, "/other").is_none());
        assert!(decode_sharded(br#"{"uid":"x","nsp":"/","type":2}"#, "/").is_none());
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// `notepack.io` 3.0.1 (the Node adapter's encoder) of
    /// `["node-a", {type: 2, data: ["message:new", {id: 1, text: "hi"}],
    /// nsp: "/"}, {rooms: ["general"], except: ["sid1"], flags: {}}]`.
    const NOTEPACK_BROADCAST: &str = "93a66e6f64652d6183a47479706502a46461746192ab6d6573736167653a6e657782a2696401a474657874a26869a36e7370a12f83a5726f6f6d7391a767656e6572616ca665786365707491a473696431a5666c61677380";

    #[test]
    fn encodes_broadcasts_byte_for_byte_as_notepack() {
        let packet =
            BroadcastPacket::from_parts(r#"2["message:new",{"id":1,"text":"hi"}]"#, vec![]);
        let o = opts(&["general"], &["sid1"]);
        let bytes = encode_broadcast("node-a", "/", &packet, &o).expect("encodes");
        assert_eq!(bytes, hex(NOTEPACK_BROADCAST));
        let incoming = decode_broadcast(&bytes, "/").expect("decodes");
        assert_eq!(incoming.packet.text(), packet.text());
    }

    #[test]
    fn decodes_every_notepack_value_type() {
        // notepack.io 3.0.1 of `["emitter", {type: 2, data: ["ev", "x" * 40,
        // -5, -300, 70000, 1.5, Buffer [1, 2, 3], null, true, undefined],
        // nsp: "/"}, {rooms: [], except: [], flags: {}}]`.
        let notepack = "93a7656d697474657283a47479706502a4646174619aa26576d92878787878787878787878787878787878787878787878787878787878787878787878787878787878fbd1fed4ce00011170cb3ff8000000000000c403010203c0c3c0a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380";
        let incoming = decode_broadcast(&hex(notepack), "/").expect("decodes");
        assert_eq!(incoming.uid, "emitter");
        assert_eq!(incoming.opts, opts(&[], &[]));
        let x = "x".repeat(40);
        assert_eq!(
            incoming.packet.text(),
            format!(
                r#"51-["ev","{x}",-5,-300,70000,1.5,{{"_placeholder":true,"num":0}},null,true,null]"#
            )
        );
        let attachments: Vec<&Bytes> = incoming.packet.attachments().collect();
        assert_eq!(attachments, [&Bytes::from_static(&[1, 2, 3])]);

        // Extension values (older notepack's `undefined` as fixext 1 type 0,
        // a timestamp) become null; the last `undefined` above swapped for
        // both (array of 11).
        let with_ext = notepack
            .replace("9aa26576", "9ba26576")
            .replace("c3c0a36e", "c3d40000d6ff00000000a36e");
        let incoming = decode_broadcast(&hex(&with_ext), "/").expect("decodes");
        assert!(
            incoming.packet.text().ends_with(",true,null,null]"),
            "{}",
            incoming.packet.text()
        );
    }

    #[test]
    fn numeric_rooms_and_float_types() {
        let message = Mp::Array(vec![
            Mp::from("n"),
            Mp::Map(vec![
                (key("type"), Mp::F64(2.0)),
                (key("data"), Mp::Array(vec![Mp::from("ev"), Mp::F32(0.5)])),
            ]),
            Mp::Map(vec![(
                key("rooms"),
                Mp::Array(vec![Mp::from(7_u64), Mp::from(-2_i64), Mp::F64(1.5)]),
            )]),
        ]);
        let bytes = encode(&message).expect("encodes");
        let incoming = decode_broadcast(&bytes, "/").expect("decodes");
        assert_eq!(incoming.opts, opts(&["7", "-2", "1.5"], &[]));
        assert_eq!(incoming.packet.text(), r#"2["ev",0.5]"#);
    }

    #[test]
    fn refuses_hostile_input() {
        // Lengths beyond the input: array, string, map, binary, extension.
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(decode(&[0xdb, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(decode(&[0xc6, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(decode(&[0xc9, 0xff, 0xff, 0xff, 0xff, 0x00]).is_none());
        // Trailing bytes, empty input, strings that are not UTF-8.
        assert!(decode(&[0x01, 0x02]).is_none());
        assert!(decode(&[]).is_none());
        assert!(decode(&[0x91, 0xa1, 0xff]).is_none());
        assert!(decode(&[0x81, 0xa1, 0xff, 0x01]).is_none());
        // Nesting: 64 levels may wrap a leaf of any kind, 65 may not.
        let nested = |levels: usize, leaf: &[u8]| [vec![0x91; levels], leaf.to_vec()].concat();
        for leaf in [
            &[0x01][..],
            &[0xa1, b'x'],
            &[0xc4, 1, 9],
            &[0xd4, 0, 0],
            &[0x90],
        ] {
            assert!(decode(&nested(64, leaf)).is_some(), "{leaf:?}");
            assert!(decode(&nested(65, leaf)).is_none(), "{leaf:?}");
        }
        assert!(decode(&[0x91; 200]).is_none());
        assert!(decode(&[0x81, 0x01, 0x91].repeat(100)).is_none());
        // Not broadcasts (0xc1, reserved, decodes as nil).
        assert!(decode_broadcast(&[0xc1], "/").is_none());
        assert!(decode_broadcast(&[0x93, 0xc0, 0xc0, 0xc0], "/").is_none());
        assert!(decode_sharded(&[0x91; 200], "/").is_none());
    }

    #[test]
    fn channel_names_match_the_node_adapter() {
        let c = Channels::new("socket.io", "/");
        assert_eq!(c.broadcast, "socket.io#/#");
        assert_eq!(c.request, "socket.io-request#/#");
        assert_eq!(
            c.broadcast_channel(&opts(&["general"], &[])),
            "socket.io#/#general#"
        );
        assert_eq!(c.broadcast_channel(&opts(&["a", "b"], &[])), "socket.io#/#");
    }
}
