//! Input rules of the wire contract that do not depend on any state.

use crate::error::{ErrorCode, GatewayError, GatewayResult};

/// Longest channel id, in characters.
pub const MAX_CHANNEL_ID_LEN: usize = 128;

/// Longest `clientMsgId`, in characters.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 128;

/// Checks a channel id: 1 to 128 characters of `[A-Za-z0-9_.:-]`.
pub fn channel_id(id: &str) -> GatewayResult<()> {
    let well_formed = !id.is_empty()
        && id.len() <= MAX_CHANNEL_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if well_formed {
        Ok(())
    } else {
        Err(GatewayError::invalid_payload(format!(
            "channel id must be 1-{MAX_CHANNEL_ID_LEN} characters of A-Z a-z 0-9 _ . : -"
        )))
    }
}

/// Checks message text: not empty (nor only white space) and at most `max_len`
/// characters, counted as JavaScript counts `text.length` (UTF-16 units), so a
/// client can apply the same limit before sending.
pub fn message_text(text: &str, max_len: usize) -> GatewayResult<()> {
    if text.trim().is_empty() {
        return Err(GatewayError::invalid_payload("message text is empty"));
    }
    let length = text.encode_utf16().count();
    if length > max_len {
        return Err(GatewayError::new(
            ErrorCode::PayloadTooLarge,
            format!("message text is {length} characters, the maximum is {max_len}"),
        ));
    }
    Ok(())
}

/// Checks a client's own message id: at most 128 characters.
pub fn client_msg_id(id: &str) -> GatewayResult<()> {
    if id.chars().count() > MAX_CLIENT_MSG_ID_LEN {
        return Err(GatewayError::invalid_payload(format!(
            "clientMsgId is longer than {MAX_CLIENT_MSG_ID_LEN} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn channel_ids() {
        for good in ["general", "a", "team-1:dev.ops_x", &"x".repeat(128)] {
            assert!(channel_id(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "é", "a/b", &"x".repeat(129), "a\0b"] {
            assert_eq!(
                channel_id(bad).err().map(|e| e.code),
                Some(ErrorCode::InvalidPayload),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn text_limits() {
        assert!(message_text("hi", 4).is_ok());
        assert!(message_text("abcd", 4).is_ok());
        assert_eq!(
            message_text("abcde", 4).err().map(|e| e.code),
            Some(ErrorCode::PayloadTooLarge)
        );
        // An emoji is two UTF-16 units, as in JavaScript.
        assert_eq!(
            message_text("😀😀😀", 4).err().map(|e| e.code),
            Some(ErrorCode::PayloadTooLarge)
        );
        for empty in ["", "   ", "\n\t"] {
            assert_eq!(
                message_text(empty, 4).err().map(|e| e.code),
                Some(ErrorCode::InvalidPayload)
            );
        }
    }

    proptest! {
        #[test]
        fn channel_id_never_panics_and_accepts_only_the_alphabet(s in "\\PC{0,200}") {
            let ok = channel_id(&s).is_ok();
            let expected = !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            prop_assert_eq!(ok, expected);
        }
    }
}
