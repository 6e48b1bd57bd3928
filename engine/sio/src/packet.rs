//! Socket.IO v5 packets (the `socket.io-parser` text format).
//!
//! `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`, e.g.
//! `2/chat,12["msg",1]` or `51-["up",{"_placeholder":true,"num":0}]`.
//! Binary attachments travel as separate Engine.IO binary messages.

use serde_json::Value;

use crate::error::DecodeError;

/// Upper bound on declared attachments, so a hostile header cannot make
/// us wait for (and buffer) an unbounded number of binary frames.
const MAX_ATTACHMENTS: usize = 1000;

/// Socket.IO packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `0`
    Connect,
    /// `1`
    Disconnect,
    /// `2`
    Event,
    /// `3`
    Ack,
    /// `4`
    ConnectError,
    /// `5`
    BinaryEvent,
    /// `6`
    BinaryAck,
}

impl PacketType {
    fn from_char(c: u8) -> Option<PacketType> {
        Some(match c {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// The type digit.
    pub fn as_char(self) -> char {
        match self {
            PacketType::Connect => '0',
            PacketType::Disconnect => '1',
            PacketType::Event => '2',
            PacketType::Ack => '3',
            PacketType::ConnectError => '4',
            PacketType::BinaryEvent => '5',
            PacketType::BinaryAck => '6',
        }
    }

    /// BINARY_EVENT or BINARY_ACK.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

/// A decoded Socket.IO packet (attachments not included).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Packet type.
    pub kind: PacketType,
    /// Namespace, `"/"` by default.
    pub nsp: String,
    /// Ack id.
    pub id: Option<u64>,
    /// JSON payload.
    pub data: Option<Value>,
    /// Number of binary attachments that follow (binary types only).
    pub attachments: usize,
}

/// Writes the header (`type`, attachments, namespace, ack id) of a packet.
/// Writes into a `String` or an Engine.IO [`MessageText`](chatgate_eio::MessageText)
/// (neither can fail).
pub fn write_header<W: std::fmt::Write>(
    out: &mut W,
    kind: PacketType,
    nsp: &str,
    attachments: usize,
    id: Option<u64>,
) {
    let _ = out.write_char(kind.as_char());
    if kind.is_binary() {
        let _ = write!(out, "{attachments}-");
    }
    if nsp != "/" {
        let _ = out.write_str(nsp);
        let _ = out.write_char(',');
    }
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
}

impl Packet {
    /// Encodes the packet text (without the Engine.IO `4` prefix).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        write_header(&mut out, self.kind, &self.nsp, self.attachments, self.id);
        if let Some(data) = &self.data {
            out.push_str(&data.to_string());
        }
        out
    }

    /// Decodes and validates a packet, as `socket.io-parser` does.
    pub fn decode(s: &str) -> Result<Packet, DecodeError> {
        let b = s.as_bytes();
        let kind = b
            .first()
            .and_then(|c| PacketType::from_char(*c))
            .ok_or(DecodeError("unknown packet type"))?;
        let mut i = 1;
        let mut attachments = 0;
        if kind.is_binary() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start || b.get(i) != Some(&b'-') {
                return Err(DecodeError("bad attachment count"));
            }
            attachments = s[start..i]
                .parse()
                .map_err(|_| DecodeError("bad attachment count"))?;
            if attachments > MAX_ATTACHMENTS {
                return Err(DecodeError("too many attachments"));
            }
            i += 1;
        }
        let mut nsp = "/".to_owned();
        if b.get(i) == Some(&b'/') {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            nsp = s[start..i].to_owned();
            if i < b.len() {
                i += 1; // the comma
            }
        }
        let mut id = None;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i > start {
            id = Some(s[start..i].parse().map_err(|_| DecodeError("bad ack id"))?);
        }
        let data = if i < b.len() {
            Some(parse_json(&s[i..])?)
        } else {
            None
        };
        let valid = match kind {
            PacketType::Connect => matches!(data, None | Some(Value::Object(_))),
            PacketType::Disconnect => data.is_none(),
            PacketType::ConnectError => matches!(data, Some(Value::String(_) | Value::Object(_))),
            PacketType::Event | PacketType::BinaryEvent => match &data {
                Some(Value::Array(a)) => {
                    matches!(a.first(), Some(Value::String(_) | Value::Number(_)))
                }
                _ => false,
            },
            PacketType::Ack | PacketType::BinaryAck => matches!(data, Some(Value::Array(_))),
        };
        if !valid {
            return Err(DecodeError("invalid payload"));
        }
        Ok(Packet {
            kind,
            nsp,
            id,
            data,
            attachments,
        })
    }
}

/// Parses the JSON of a packet. serde_json's recursion limit (128) bounds
/// the nesting, so hostile input cannot overflow the stack. JavaScript
/// strings may hold lone UTF-16 surrogates, which `JSON.stringify` writes as
/// `\ud800`-style escapes that serde_json refuses: such escapes are replaced
/// by U+FFFD and the text parsed again, as a JavaScript server would accept it.
fn parse_json(text: &str) -> Result<Value, DecodeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(value),
        Err(_) => match replace_lone_surrogates(text) {
            Some(fixed) => serde_json::from_str::<Value>(&fixed),
            None => return Err(DecodeError("invalid payload")),
        }
        .map_err(|_| DecodeError("invalid payload")),
    }
}

/// The value of the `\uXXXX` escape starting at `b[at]` (the backslash).
fn unicode_escape(b: &[u8], at: usize) -> Option<u16> {
    if b.get(at) != Some(&b'\\') || b.get(at + 1) != Some(&b'u') {
        return None;
    }
    let hex = std::str::from_utf8(b.get(at + 2..at + 6)?).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

/// `text` with every unpaired surrogate escape replaced by `\ufffd`, or
/// `None` when there is none. Works on bytes: escapes are ASCII, and bytes
/// of multi-byte UTF-8 characters are never ASCII.
pub(crate) fn replace_lone_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = unicode_escape(b, i) else {
            i += 2; // any other escape: skip the escaped character
            continue;
        };
        let lone = match unit {
            0xD800..=0xDBFF => match unicode_escape(b, i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    i += 12; // a valid pair
                    continue;
                }
                _ => true,
            },
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[copied..i]);
            buf.push_str("\\ufffd");
            copied = i + 6;
        }
        i += 6;
    }
    let mut buf = out?;
    buf.push_str(&text[copied..]);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        data: Option<Value>,
        attachments: usize,
    ) -> Packet {
        Packet {
            kind,
            nsp: nsp.into(),
            id,
            data,
            attachments,
        }
    }

    #[test]
    fn decodes_reference_examples() {
        assert_eq!(
            Packet::decode("0"),
            Ok(p(PacketType::Connect, "/", None, None, 0))
        );
        assert_eq!(
            Packet::decode("0/admin,{\"token\":\"1\"}"),
            Ok(p(
                PacketType::Connect,
                "/admin",
                None,
                Some(json!({"token":"1"})),
                0
            ))
        );
        assert_eq!(
            Packet::decode("0/custom"),
            Ok(p(PacketType::Connect, "/custom", None, None, 0))
        );
        assert_eq!(
            Packet::decode("1/custom,"),
            Ok(p(PacketType::Disconnect, "/custom", None, None, 0))
        );
        assert_eq!(
            Packet::decode("2456[\"m\",1]"),
            Ok(p(
                PacketType::Event,
                "/",
                Some(456),
                Some(json!(["m", 1])),
                0
            ))
        );
        assert_eq!(
            Packet::decode("3/a,7[]"),
            Ok(p(PacketType::Ack, "/a", Some(7), Some(json!([])), 0))
        );
        assert_eq!(
            Packet::decode("52-789[\"m\",{\"_placeholder\":true,\"num\":0}]"),
            Ok(p(
                PacketType::BinaryEvent,
                "/",
                Some(789),
                Some(json!(["m", {"_placeholder": true, "num": 0}])),
                2
            ))
        );
        assert_eq!(
            Packet::decode("61-/a,1[]"),
            Ok(p(PacketType::BinaryAck, "/a", Some(1), Some(json!([])), 1))
        );
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "abc",
            "7",
            "2{}",
            "2abc[\"m\"]",
            "2[]",
            "2[{}]",
            "1{}",
            "0[1]",
            "5[\"m\"]",
            "5x-[\"m\"]",
            "3{}",
            "4",
            "299999999999999999999[\"m\"]",
            "51001-[\"m\"]",
        ] {
            assert!(Packet::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let packet = Packet::decode(r#"2["m","a\ud800b\udc00c\ud83d\ude00"]"#);
        assert_eq!(
            packet.map(|p| p.data),
            Ok(Some(json!(["m", "a\u{fffd}b\u{fffd}c\u{1f600}"])))
        );
        assert_eq!(replace_lone_surrogates(r#"["\\ud800"]"#), None);
        assert_eq!(
            replace_lone_surrogates(r#""\ud800"#).as_deref(),
            Some(r#""\ufffd"#)
        );
        assert_eq!(replace_lone_surrogates("\\u12"), None);
        assert!(Packet::decode(r#"2["m","\ud800"#).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let depth = 100_000;
        let text = format!("2[\"m\",{}{}]", "[".repeat(depth), "]".repeat(depth));
        assert!(Packet::decode(&text).is_err());
    }

    #[test]
    fn encodes_like_the_reference() {
        assert_eq!(
            p(PacketType::Connect, "/", None, Some(json!({"sid":"x"})), 0).encode(),
            "0{\"sid\":\"x\"}"
        );
        assert_eq!(
            p(
                PacketType::ConnectError,
                "/random",
                None,
                Some(json!({"message":"Invalid namespace"})),
                0
            )
            .encode(),
            "4/random,{\"message\":\"Invalid namespace\"}"
        );
        assert_eq!(
            p(PacketType::Disconnect, "/c", None, None, 0).encode(),
            "1/c,"
        );
        assert_eq!(
            p(PacketType::BinaryAck, "/", Some(789), Some(json!([])), 2).encode(),
            "62-789[]"
        );
    }
}
