//! decode(encode(p)) == p for Socket.IO packets.

use chatgate_sio::packet::{Packet as SioPacket, PacketType};
use proptest::prelude::*;
use serde_json::Value;

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".*".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn sio_packet() -> impl Strategy<Value = SioPacket> {
    let nsp = prop_oneof![Just("/".to_owned()), "/[a-z0-9_-]{1,8}"];
    let object = proptest::collection::btree_map("[a-z]{0,5}", json(), 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let args =
        ("[a-z]{0,6}", proptest::collection::vec(json(), 0..3)).prop_map(|(name, mut rest)| {
            rest.insert(0, Value::String(name));
            Value::Array(rest)
        });
    let id = proptest::option::of(any::<u32>().prop_map(u64::from));
    (
        nsp,
        0u8..7,
        proptest::option::of(object),
        args,
        proptest::collection::vec(json(), 0..3),
        id,
        0usize..5,
    )
        .prop_map(|(nsp, t, obj, args, ack, id, n)| {
            let (kind, data, id, attachments) = match t {
                0 => (PacketType::Connect, obj, None, 0),
                1 => (PacketType::Disconnect, None, None, 0),
                2 => (PacketType::Event, Some(args), id, 0),
                3 => (
                    PacketType::Ack,
                    Some(Value::Array(ack)),
                    Some(id.unwrap_or(0)),
                    0,
                ),
                4 => (
                    PacketType::ConnectError,
                    Some(obj.unwrap_or(Value::String("e".into()))),
                    None,
                    0,
                ),
                5 => (PacketType::BinaryEvent, Some(args), id, n),
                _ => (
                    PacketType::BinaryAck,
                    Some(Value::Array(ack)),
                    Some(id.unwrap_or(0)),
                    n,
                ),
            };
            SioPacket {
                kind,
                nsp,
                id,
                data,
                attachments,
            }
        })
}

proptest! {
    #[test]
    fn socket_io_round_trip(p in sio_packet()) {
        prop_assert_eq!(SioPacket::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn decoder_never_panics(s in ".*") {
        let _ = SioPacket::decode(&s);
    }
}
