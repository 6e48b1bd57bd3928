//! HTTP long-polling payloads: packets joined by the record separator `\x1e`.

use crate::error::DecodeError;
use crate::packet::Packet;

/// The Engine.IO v4 record separator.
pub const SEPARATOR: char = '\x1e';

/// Splits a POST body into packets. Any bad record fails the whole payload
/// (the reference closes the session then).
pub fn decode_payload(body: &str) -> Result<Vec<Packet>, DecodeError> {
    body.split(SEPARATOR)
        .map(|record| Packet::decode_text(record, true))
        .collect()
}

/// Joins already-encoded text records into one payload.
pub fn encode_payload<'a>(records: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.push_str(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn batches_round_trip() {
        let body = "4hello\x1ebAQIDBA==\x1e2";
        let packets = decode_payload(body).expect("valid");
        assert_eq!(
            packets,
            vec![
                Packet::Message("hello".into()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                Packet::Ping(false)
            ]
        );
        let encoded: Vec<String> = packets.iter().map(Packet::encode_text).collect();
        assert_eq!(encode_payload(encoded.iter().map(String::as_str)), body);
    }

    #[test]
    fn one_bad_record_fails_all() {
        assert!(decode_payload("4a\x1eabc").is_err());
        assert!(decode_payload("").is_err());
    }
}
