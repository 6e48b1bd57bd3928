//! A small MessagePack codec: just what the `@socket.io/redis-adapter` wire
//! format needs (it encodes with `notepack.io`). Decoding is defensive: the
//! input comes from Redis, where any client may publish, so lengths are
//! checked against the input and nesting is bounded.

/// A MessagePack value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mp {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer (or any signed encoding).
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float (32-bit values are widened).
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Binary data (a Node `Buffer`).
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Mp>),
    /// A map, in encoding order.
    Map(Vec<(Mp, Mp)>),
    /// An extension value (`notepack.io` encodes `undefined` and dates so).
    Ext(i8, Vec<u8>),
}

/// Deepest nesting accepted when decoding.
const MAX_DEPTH: usize = 64;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("invalid msgpack: {0}")]
pub(crate) struct MpError(&'static str);

impl Mp {
    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Mp::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under string key `key`, if this is a map holding it.
    pub(crate) fn get(&self, key: &str) -> Option<&Mp> {
        match self {
            Mp::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Mp::UInt(n) => Some(*n),
            Mp::Int(n) => u64::try_from(*n).ok(),
            Mp::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19 => Some(*f as u64),
            _ => None,
        }
    }
}

/// Encodes `value`.
pub(crate) fn encode(value: &Mp) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write(&mut out, value);
    out
}

fn write_len(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, codes: [u8; 3]) {
    match fix {
        Some((base, max)) if len <= max => out.push(base | len as u8),
        _ if len <= 0xff && codes[0] != 0 => {
            out.push(codes[0]);
            out.push(len as u8);
        }
        _ if len <= 0xffff => {
            out.push(codes[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(codes[2]);
            out.extend_from_slice(&(u32::try_from(len).unwrap_or(u32::MAX)).to_be_bytes());
        }
    }
}

fn write(out: &mut Vec<u8>, value: &Mp) {
    match value {
        Mp::Nil => out.push(0xc0),
        Mp::Bool(false) => out.push(0xc2),
        Mp::Bool(true) => out.push(0xc3),
        Mp::UInt(n) => write_uint(out, *n),
        Mp::Int(n) if *n >= 0 => write_uint(out, *n as u64),
        Mp::Int(n) => {
            let n = *n;
            if n >= -32 {
                out.push(n as i8 as u8);
            } else if n >= i64::from(i8::MIN) {
                out.push(0xd0);
                out.push(n as i8 as u8);
            } else if n >= i64::from(i16::MIN) {
                out.push(0xd1);
                out.extend_from_slice(&(n as i16).to_be_bytes());
            } else if n >= i64::from(i32::MIN) {
                out.push(0xd2);
                out.extend_from_slice(&(n as i32).to_be_bytes());
            } else {
                out.push(0xd3);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Mp::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Mp::Str(s) => {
            write_len(out, s.len(), Some((0xa0, 31)), [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(s.as_bytes());
        }
        Mp::Bin(b) => {
            write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6]);
            out.extend_from_slice(b);
        }
        Mp::Array(items) => {
            write_len(out, items.len(), Some((0x90, 15)), [0, 0xdc, 0xdd]);
            for item in items {
                write(out, item);
            }
        }
        Mp::Map(entries) => {
            write_len(out, entries.len(), Some((0x80, 15)), [0, 0xde, 0xdf]);
            for (k, v) in entries {
                write(out, k);
                write(out, v);
            }
        }
        Mp::Ext(kind, data) => {
            match data.len() {
                1 => out.push(0xd4),
                2 => out.push(0xd5),
                4 => out.push(0xd6),
                8 => out.push(0xd7),
                16 => out.push(0xd8),
                len => write_len(out, len, None, [0xc7, 0xc8, 0xc9]),
            }
            out.push(*kind as u8);
            out.extend_from_slice(data);
        }
    }
}

fn write_uint(out: &mut Vec<u8>, n: u64) {
    if n < 128 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.push(0xcc);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Decodes one value that must span all of `input`.
pub(crate) fn decode(input: &[u8]) -> Result<Mp, MpError> {
    let mut reader = Reader { input, at: 0 };
    let value = reader.value(0)?;
    if reader.at != input.len() {
        return Err(MpError("trailing bytes"));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MpError> {
        let end = self.at.checked_add(n).ok_or(MpError("length overflow"))?;
        let bytes = self
            .input
            .get(self.at..end)
            .ok_or(MpError("truncated input"))?;
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, MpError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], MpError> {
        let mut out = [0_u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self, width: usize) -> Result<usize, MpError> {
        Ok(match width {
            1 => usize::from(self.byte()?),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn string(&mut self, len: usize) -> Result<Mp, MpError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(|s| Mp::Str(s.to_owned()))
            .map_err(|_| MpError("string is not UTF-8"))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Mp, MpError> {
        // Every element takes at least one byte: refuse impossible lengths
        // before allocating.
        if len > self.input.len() - self.at {
            return Err(MpError("truncated array"));
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Mp::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Mp, MpError> {
        if len.saturating_mul(2) > self.input.len() - self.at {
            return Err(MpError("truncated map"));
        }
        let mut entries = Vec::with_capacity(len);
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        Ok(Mp::Map(entries))
    }

    fn ext(&mut self, len: usize) -> Result<Mp, MpError> {
        let kind = self.byte()? as i8;
        Ok(Mp::Ext(kind, self.take(len)?.to_vec()))
    }

    fn value(&mut self, depth: usize) -> Result<Mp, MpError> {
        if depth > MAX_DEPTH {
            return Err(MpError("nested too deeply"));
        }
        let code = self.byte()?;
        Ok(match code {
            0x00..=0x7f => Mp::UInt(u64::from(code)),
            0x80..=0x8f => return self.map(usize::from(code & 0x0f), depth),
            0x90..=0x9f => return self.array(usize::from(code & 0x0f), depth),
            0xa0..=0xbf => return self.string(usize::from(code & 0x1f)),
            0xc0 => Mp::Nil,
            0xc2 => Mp::Bool(false),
            0xc3 => Mp::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (code - 0xc4))?;
                Mp::Bin(self.take(len)?.to_vec())
            }
            0xc7..=0xc9 => {
                let len = self.len(1 << (code - 0xc7))?;
                return self.ext(len);
            }
            0xca => Mp::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Mp::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Mp::UInt(u64::from(self.byte()?)),
            0xcd => Mp::UInt(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => Mp::UInt(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Mp::UInt(u64::from_be_bytes(self.be()?)),
            0xd0 => Mp::Int(i64::from(self.byte()? as i8)),
            0xd1 => Mp::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Mp::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Mp::Int(i64::from_be_bytes(self.be()?)),
            0xd4..=0xd8 => return self.ext(1 << (code - 0xd4)),
            0xd9..=0xdb => {
                let len = self.len(1 << (code - 0xd9))?;
                return self.string(len);
            }
            0xdc | 0xdd => {
                let len = self.len(if code == 0xdc { 2 } else { 4 })?;
                return self.array(len, depth);
            }
            0xde | 0xdf => {
                let len = self.len(if code == 0xde { 2 } else { 4 })?;
                return self.map(len, depth);
            }
            0xe0..=0xff => Mp::Int(i64::from(code as i8)),
            0xc1 => return Err(MpError("reserved type 0xc1")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let value = Mp::Array(vec![
            Mp::Str("emitter".into()),
            Mp::Map(vec![
                (Mp::Str("type".into()), Mp::UInt(2)),
                (
                    Mp::Str("data".into()),
                    Mp::Array(vec![
                        Mp::Str("x".repeat(40)),
                        Mp::Int(-5),
                        Mp::Int(-300),
                        Mp::UInt(70_000),
                        Mp::Float(1.5),
                        Mp::Bin(vec![1, 2, 3]),
                        Mp::Nil,
                        Mp::Bool(true),
                        Mp::Ext(0, vec![0]),
                    ]),
                ),
            ]),
        ]);
        let decoded = decode(&encode(&value)).expect("decodes");
        assert_eq!(decoded, value);
    }

    #[test]
    fn refuses_hostile_input() {
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xdb, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0x91; 200]).is_err());
        assert!(decode(&[0xc1]).is_err());
        assert!(decode(&[0x01, 0x02]).is_err());
        assert!(decode(&[]).is_err());
    }
}
