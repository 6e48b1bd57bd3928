//! Fuzz smoke of the wire decoders (proptest): the Engine.IO packet and
//! polling-payload decoders and the Socket.IO packet decoder (binary
//! attachment counts and placeholders included) take any text a client can
//! send without panicking, and what they produce encodes back to itself.
//!
//! Bounded to a few seconds in the normal test command; for a longer run set
//! `CHATGATE_FUZZ_CASES` (e.g. `CHATGATE_FUZZ_CASES=200000 cargo test --release
//! --test fuzz_wire`). A failing input is printed by proptest (minimized);
//! keep it as a case in `regressions` below once fixed.

use bytes::Bytes;
use chatgate_sio::eio::packet::Packet as EioPacket;
use chatgate_sio::eio::payload::{SEPARATOR, decode_payload, encode_payload};
use chatgate_sio::packet::{Packet as SioPacket, PacketType};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Cases per property: `CHATGATE_FUZZ_CASES`, default `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("CHATGATE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that looks like protocol traffic: a mix of protocol characters,
/// digits, JSON punctuation and arbitrary unicode.
fn wire_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "0", "1", "2", "3", "4", "5", "6", "b", "probe", "-", "/", ",", "[", "]", "{", "}",
            "\"", ":", "\\", "\\u", "d800", "\\udc00", "\u{1e}", "_placeholder", "num", "true",
            "null", "42", "451-", "9999999999999999999999", "/admin,", "\"m\"", "\u{0}",
        ])
        .prop_map(str::to_owned),
        2 => "[0-9]{1,4}",
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

/// Any JSON value (bounded depth and width).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Binary fractions with few digits: exact through print and parse.
        (any::<i32>(), 0u32..5).prop_filter_map("finite", |(n, k)| {
            serde_json::Number::from_f64(f64::from(n) / f64::from(1u32 << k)).map(Value::Number)
        }),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A namespace as clients write it: `/` or `/name` without a comma.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[a-zA-Z0-9_\\-]{1,12}"]
}

/// A Socket.IO packet that is valid for its type (what a conforming
/// client sends), with its attachment count.
fn sio_packet() -> impl Strategy<Value = SioPacket> {
    let kinds = prop::sample::select(vec![
        PacketType::Connect,
        PacketType::Disconnect,
        PacketType::Event,
        PacketType::Ack,
        PacketType::ConnectError,
        PacketType::BinaryEvent,
        PacketType::BinaryAck,
    ]);
    (
        kinds,
        namespace(),
        prop::option::of(any::<u64>()),
        json_value(),
        prop::collection::vec(json_value(), 0..4),
        ".{0,10}",
        0usize..=1000,
    )
        .prop_map(|(kind, nsp, id, value, args, name, attachments)| {
            let (id, data) = match kind {
                PacketType::Connect => (
                    None,
                    match value {
                        Value::Object(_) => Some(value),
                        _ => None,
                    },
                ),
                PacketType::Disconnect => (None, None),
                PacketType::ConnectError => (None, Some(json!({ "message": name }))),
                PacketType::Event | PacketType::BinaryEvent => {
                    let mut all = vec![Value::String(name)];
                    all.extend(args);
                    (id, Some(Value::Array(all)))
                }
                PacketType::Ack | PacketType::BinaryAck => (id, Some(Value::Array(args))),
            };
            SioPacket {
                kind,
                nsp,
                id,
                data,
                attachments: if kind.is_binary() { attachments } else { 0 },
            }
        })
}

fn eio_packet() -> impl Strategy<Value = EioPacket> {
    prop_oneof![
        Just(EioPacket::Close),
        any::<bool>().prop_map(EioPacket::Ping),
        any::<bool>().prop_map(EioPacket::Pong),
        any::<String>().prop_map(EioPacket::Message),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| EioPacket::Binary(Bytes::from(b))),
        Just(EioPacket::Upgrade),
        Just(EioPacket::Noop),
    ]
}

proptest! {
    #![proptest_config(config(600))]

    /// Engine.IO: any text frame or polling record decodes or is refused.
    #[test]
    fn engine_io_packet_decoder_never_panics(text in wire_text(), b64 in any::<bool>()) {
        let _ = EioPacket::decode_text(&text, b64);
    }

    /// Engine.IO polling: any POST body decodes or is refused as a whole.
    #[test]
    fn polling_payload_decoder_never_panics(text in wire_text()) {
        if let Ok(packets) = decode_payload(&text) {
            prop_assert_eq!(packets.len(), text.split(SEPARATOR).count());
        }
    }

    /// Engine.IO: decode(encode(p)) == p (binary in its polling form).
    #[test]
    fn engine_io_packets_round_trip(packet in eio_packet()) {
        let text = packet.encode_text();
        let binary = matches!(packet, EioPacket::Binary(_));
        prop_assert_eq!(EioPacket::decode_text(&text, binary), Ok(packet.clone()));
        // Messages without a separator batch and split back.
        if !text.contains(SEPARATOR) {
            let body = encode_payload([text.as_str(), "6", text.as_str()]);
            prop_assert_eq!(
                decode_payload(&body),
                Ok(vec![packet.clone(), EioPacket::Noop, packet])
            );
        }
    }

    /// Socket.IO: any text decodes or is refused; what decodes is valid for
    /// its type and encodes back to an equivalent packet.
    #[test]
    fn socket_io_decoder_never_panics(text in wire_text()) {
        if let Ok(packet) = SioPacket::decode(&text) {
            prop_assert!(packet.attachments <= 1000);
            if !packet.kind.is_binary() {
                prop_assert_eq!(packet.attachments, 0);
            }
            // Floats of arbitrary text need not print back digit for digit:
            // compare everything but the data's exact value.
            let again = SioPacket::decode(&packet.encode());
            prop_assert!(again.is_ok(), "{:?} re-encoded does not decode", packet);
            if let Ok(again) = again {
                prop_assert_eq!(
                    (again.kind, &again.nsp, again.id, again.attachments, again.data.is_some()),
                    (packet.kind, &packet.nsp, packet.id, packet.attachments, packet.data.is_some())
                );
            }
        }
    }

    /// Socket.IO: any JSON after a valid header decodes or is refused.
    #[test]
    fn socket_io_decoder_takes_any_json(
        header in prop::sample::select(vec!["0", "1", "2", "3", "4", "51-", "61-", "2/x,", "212"]),
        value in json_value(),
    ) {
        let _ = SioPacket::decode(&format!("{header}{value}"));
    }

    /// Socket.IO: decode(encode(p)) == p for every valid packet.
    #[test]
    fn socket_io_packets_round_trip(packet in sio_packet()) {
        prop_assert_eq!(SioPacket::decode(&packet.encode()), Ok(packet));
    }
}

/// Inputs that once crashed or misbehaved, or that probe edges of the
/// decoders; each must decode or be refused without panicking.
#[test]
fn regressions() {
    let deep = format!("2[\"m\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let deep_objects = format!(
        "2[\"m\",{}1{}]",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    let cases: Vec<String> = vec![
        String::new(),
        "5".into(),
        "5-".into(),
        "51001-[\"m\"]".into(),
        "518446744073709551616-[\"m\"]".into(),
        "2/".into(),
        "2/,".into(),
        "2/a,18446744073709551616[\"m\"]".into(),
        "2[\"m\",\"\\ud800\"]".into(),
        "2[\"m\",\"\\udc00\\ud800\"]".into(),
        "2[\"m\",\"\\ud800\\u\"]".into(),
        "2[\"é\\".into(),
        "0é".into(),
        deep,
        deep_objects,
    ];
    for text in &cases {
        let _ = SioPacket::decode(text);
        let _ = EioPacket::decode_text(text, true);
        let _ = decode_payload(text);
    }
    // Nesting beyond serde_json's recursion limit is refused, not a crash.
    assert!(SioPacket::decode(&cases[13]).is_err());
    // Lone surrogates, as JSON.stringify writes them, are accepted (U+FFFD).
    assert_eq!(
        SioPacket::decode("2[\"m\",\"a\\ud800\"]").map(|p| p.data),
        Ok(Some(json!(["m", "a\u{fffd}"])))
    );
}
