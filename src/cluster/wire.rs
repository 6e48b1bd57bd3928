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
use chatgate_engine::socketio_packet::{Packet, PacketType, write_header};
use chatgate_engine::{BroadcastOptions, BroadcastPacket, Room};
use serde_json::{Map, Value, json};

use super::msgpack::{Mp, decode, encode};

/// `RequestType.REMOTE_JOIN` of the Node adapter.
pub(crate) const REMOTE_JOIN: u64 = 2;
/// `RequestType.REMOTE_LEAVE`.
pub(crate) const REMOTE_LEAVE: u64 = 3;
/// `RequestType.REMOTE_DISCONNECT`.
pub(crate) const REMOTE_DISCONNECT: u64 = 4;

/// Most rooms accepted in one incoming selection (hostile-input bound).
const MAX_ROOMS: usize = 10_000;

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
    Mp::Array(rooms.iter().map(|r| Mp::Str(r.to_string())).collect())
}

fn key(name: &str) -> Mp {
    Mp::Str(name.to_owned())
}

/// Encodes a local broadcast for other nodes; `None` if the packet text
/// cannot be parsed (never the case for packets the engine encoded).
pub(crate) fn encode_broadcast(
    uid: &str,
    nsp: &str,
    packet: &BroadcastPacket,
    opts: &BroadcastOptions,
) -> Option<Vec<u8>> {
    let message = Mp::Array(vec![
        Mp::Str(uid.to_owned()),
        packet_mp(nsp, packet)?,
        opts_mp(opts),
    ]);
    Some(encode(&message))
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
        (key("type"), Mp::UInt(2)),
        (key("data"), data),
        (key("nsp"), Mp::Str(nsp.to_owned())),
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
        Value::Bool(b) => Mp::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Mp::UInt(u)
            } else if let Some(i) = n.as_i64() {
                Mp::Int(i)
            } else {
                Mp::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => Mp::Str(s.clone()),
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
                return Mp::Bin(bytes.to_vec());
            }
            Mp::Map(
                map.iter()
                    .map(|(k, v)| (Mp::Str(k.clone()), json_to_mp(v, attachments)))
                    .collect(),
            )
        }
    }
}

/// Msgpack to JSON; `bin` values become placeholders and attachments, as
/// `socket.io-parser` deconstructs a packet. Extension values (`undefined`,
/// dates) become `null`.
fn mp_to_json(value: Mp, attachments: &mut Vec<Bytes>) -> Value {
    match value {
        Mp::Nil | Mp::Ext(..) => Value::Null,
        Mp::Bool(b) => Value::Bool(b),
        Mp::Int(i) => json!(i),
        Mp::UInt(u) => json!(u),
        Mp::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Mp::Str(s) => Value::String(s),
        Mp::Bin(b) => {
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
                let k = match k {
                    Mp::Str(s) => s,
                    other => match mp_to_json(other, &mut Vec::new()) {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
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
}

/// A room name from the wire: strings, and numbers (Node allows numeric rooms).
fn room_of(value: &Mp) -> Option<Room> {
    match value {
        Mp::Str(s) => Some(Room::from(s.as_str())),
        Mp::UInt(n) => Some(Room::from(n.to_string())),
        Mp::Int(n) => Some(Room::from(n.to_string())),
        Mp::Float(f) => Some(Room::from(f.to_string())),
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
    let Mp::Array(parts) = decode(payload).ok()? else {
        return None;
    };
    let mut parts = parts.into_iter();
    let uid = match parts.next()? {
        Mp::Str(s) => s,
        _ => String::new(),
    };
    let packet = parts.next()?;
    let opts = parts.next()?;
    Some(IncomingBroadcast {
        uid,
        opts: options_of(&opts)?,
        packet: packet_of(packet, nsp)?,
    })
}

/// The selection of `{rooms, except, flags}`; `None` when malformed or
/// flagged `local`.
fn options_of(opts: &Mp) -> Option<BroadcastOptions> {
    if opts
        .get("flags")
        .and_then(|f| f.get("local"))
        .is_some_and(|l| *l == Mp::Bool(true))
    {
        return None;
    }
    Some(BroadcastOptions {
        rooms: rooms_of(opts.get("rooms"))?,
        except: rooms_of(opts.get("except"))?,
    })
}

/// The packet of `{type, data, nsp}`: events of namespace `nsp` only.
fn packet_of(packet: Mp, nsp: &str) -> Option<BroadcastPacket> {
    let packet_nsp = packet.get("nsp").and_then(Mp::as_str).unwrap_or("/");
    if packet_nsp != nsp {
        return None;
    }
    let kind = packet.get("type").and_then(Mp::as_u64)?;
    if kind != 2 && kind != 5 {
        return None;
    }
    let data = match packet {
        Mp::Map(entries) => entries
            .into_iter()
            .find(|(k, _)| k.as_str() == Some("data"))
            .map(|(_, v)| v)?,
        _ => return None,
    };
    // An event is an array whose first element is the event name.
    match &data {
        Mp::Array(items) if matches!(items.first(), Some(Mp::Str(_))) => {}
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
                (key("close"), Mp::Bool(close)),
            ]),
        ),
    };
    Some(encode(&Mp::Map(vec![
        (key("uid"), Mp::Str(uid.to_owned())),
        (key("nsp"), Mp::Str(nsp.to_owned())),
        (key("type"), Mp::UInt(kind)),
        (key("data"), data),
    ])))
}

/// A sharded message received.
#[derive(Debug)]
pub(crate) enum Sharded {
    /// A broadcast.
    Broadcast(BroadcastPacket, BroadcastOptions),
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
        decode(payload).ok()?
    };
    if message.get("nsp").and_then(Mp::as_str) != Some(nsp) {
        return None;
    }
    let uid = message
        .get("uid")
        .and_then(Mp::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = message.get("type").and_then(Mp::as_u64)?;
    let data = take(message, "data")?;
    let selection = |data: &Mp| -> Option<BroadcastOptions> {
        let opts = data.get("opts")?;
        Some(BroadcastOptions {
            rooms: rooms_of(opts.get("rooms"))?,
            except: rooms_of(opts.get("except"))?,
        })
    };
    let decoded = match kind {
        SHARDED_BROADCAST => {
            if data.get("requestId").is_some() {
                return None;
            }
            let opts = options_of(data.get("opts")?)?;
            Sharded::Broadcast(packet_of(take(data, "packet")?, nsp)?, opts)
        }
        SHARDED_JOIN => Sharded::Request(Request::Join(
            selection(&data)?,
            rooms_of(data.get("rooms"))?,
        )),
        SHARDED_LEAVE => Sharded::Request(Request::Leave(
            selection(&data)?,
            rooms_of(data.get("rooms"))?,
        )),
        SHARDED_DISCONNECT => Sharded::Request(Request::Disconnect(
            selection(&data)?,
            data.get("close") == Some(&Mp::Bool(true)),
        )),
        _ => return None,
    };
    Some((uid, decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Some((uid, Sharded::Broadcast(p, decoded))) => {
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
