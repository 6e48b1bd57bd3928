//! decode(encode(p)) == p for Engine.IO packets and polling payloads.

use bytes::Bytes;
use chatgate_eio::packet::Packet as EioPacket;
use chatgate_eio::payload::{decode_payload, encode_payload};
use proptest::prelude::*;

fn eio_packet() -> impl Strategy<Value = EioPacket> {
    prop_oneof![
        Just(EioPacket::Close),
        any::<bool>().prop_map(EioPacket::Ping),
        any::<bool>().prop_map(EioPacket::Pong),
        "[^\x1e]*".prop_map(EioPacket::Message),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|v| EioPacket::Binary(Bytes::from(v))),
        Just(EioPacket::Upgrade),
        Just(EioPacket::Noop),
    ]
}

proptest! {
    #[test]
    fn engine_io_round_trip(p in eio_packet()) {
        prop_assert_eq!(EioPacket::decode_text(&p.encode_text(), true), Ok(p));
    }

    #[test]
    fn polling_payload_round_trip(ps in proptest::collection::vec(eio_packet(), 1..6)) {
        let records: Vec<String> = ps.iter().map(EioPacket::encode_text).collect();
        let body = encode_payload(records.iter().map(String::as_str));
        prop_assert_eq!(decode_payload(&body), Ok(ps));
    }

    #[test]
    fn decoders_never_panic(s in ".*") {
        let _ = EioPacket::decode_text(&s, true);
        let _ = decode_payload(&s);
    }
}
