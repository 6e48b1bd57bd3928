//! Engine.IO v4 packets: one character type, then the data.
//!
//! Text packets travel as WebSocket text frames (or polling records); binary
//! messages travel as WebSocket binary frames without a type byte, or as
//! `b<base64>` records in polling payloads.

use bytes::Bytes;

use crate::error::DecodeError;

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + handshake JSON (server -> client only).
    Open(String),
    /// `1`: close the session.
    Close,
    /// `2` (+ optional `probe` during an upgrade).
    Ping(bool),
    /// `3` (+ optional `probe`).
    Pong(bool),
    /// `4` + text message.
    Message(String),
    /// A binary message.
    Binary(Bytes),
    /// `5`: upgrade done (client -> server).
    Upgrade,
    /// `6`: no-op, used to end a pending poll.
    Noop,
}

impl Packet {
    /// Decodes a text packet (a WebSocket text frame or a polling record).
    /// `b<base64>` decodes to [`Packet::Binary`] only when `allow_b64` (polling).
    pub fn decode_text(s: &str, allow_b64: bool) -> Result<Packet, DecodeError> {
        let mut chars = s.chars();
        let kind = chars.next().ok_or(DecodeError("empty packet"))?;
        let rest = chars.as_str();
        Ok(match kind {
            '0' => Packet::Open(rest.to_owned()),
            '1' if rest.is_empty() => Packet::Close,
            '2' | '3' => {
                let probe = match rest {
                    "" => false,
                    "probe" => true,
                    _ => return Err(DecodeError("bad ping/pong data")),
                };
                if kind == '2' {
                    Packet::Ping(probe)
                } else {
                    Packet::Pong(probe)
                }
            }
            '4' => Packet::Message(rest.to_owned()),
            '5' if rest.is_empty() => Packet::Upgrade,
            '6' if rest.is_empty() => Packet::Noop,
            'b' if allow_b64 => {
                use base64::Engine as _;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .map_err(|_| DecodeError("bad base64"))?;
                Packet::Binary(Bytes::from(data))
            }
            _ => return Err(DecodeError("unknown packet type")),
        })
    }

    /// Encodes as text. Binary is encoded as `b<base64>` (polling form).
    pub fn encode_text(&self) -> String {
        match self {
            Packet::Open(s) => format!("0{s}"),
            Packet::Close => "1".to_owned(),
            Packet::Ping(p) => if *p { "2probe" } else { "2" }.to_owned(),
            Packet::Pong(p) => if *p { "3probe" } else { "3" }.to_owned(),
            Packet::Message(m) => format!("4{m}"),
            Packet::Binary(b) => {
                use base64::Engine as _;
                format!("b{}", base64::engine::general_purpose::STANDARD.encode(b))
            }
            Packet::Upgrade => "5".to_owned(),
            Packet::Noop => "6".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_type() {
        assert_eq!(
            Packet::decode_text("0{}", false),
            Ok(Packet::Open("{}".into()))
        );
        assert_eq!(Packet::decode_text("1", false), Ok(Packet::Close));
        assert_eq!(Packet::decode_text("2", false), Ok(Packet::Ping(false)));
        assert_eq!(Packet::decode_text("2probe", false), Ok(Packet::Ping(true)));
        assert_eq!(Packet::decode_text("3probe", false), Ok(Packet::Pong(true)));
        assert_eq!(
            Packet::decode_text("4héllo", false),
            Ok(Packet::Message("héllo".into()))
        );
        assert_eq!(Packet::decode_text("5", false), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text("6", false), Ok(Packet::Noop));
        assert_eq!(
            Packet::decode_text("bAQIDBA==", true),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "7", "1x", "2pro", "bAQIDBA==", "5x", "6x"] {
            assert!(Packet::decode_text(bad, false).is_err(), "{bad:?}");
        }
        assert!(Packet::decode_text("b!!", true).is_err());
    }

    #[test]
    fn encodes() {
        assert_eq!(Packet::Message("hi".into()).encode_text(), "4hi");
        assert_eq!(Packet::Pong(true).encode_text(), "3probe");
        assert_eq!(
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])).encode_text(),
            "bAQIDBA=="
        );
        assert_eq!(Packet::Noop.encode_text(), "6");
    }
}
