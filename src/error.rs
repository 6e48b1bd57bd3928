//! The one error type of chatgate and its stable, machine-readable codes.
//!
//! Every failure a client can see is a [`GatewayError`]. Its [`ErrorCode`] is
//! part of the wire contract (see `docs/wire-contract.md`): clients branch on
//! it, so the spelling of each code lives here and nowhere else, and a test
//! pins the list.

use serde::Serialize;
use serde_json::{Value, json};

/// A stable error code as sent to clients (`"code"` of a failure object, or
/// the `message` of a refused handshake's `connect_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No valid identity: missing, expired or forged credentials.
    Unauthorized,
    /// The identity is valid but its token does not allow this.
    Forbidden,
    /// Wrong type or shape of a payload, a bad channel id, empty text.
    InvalidPayload,
    /// The user is not a member of the channel the event names.
    NotInChannel,
    /// Text or payload over the configured maximum.
    PayloadTooLarge,
    /// Too many events of this kind; `retryAfterMs` says when to retry.
    RateLimited,
    /// The user already holds the maximum number of connections.
    TooManyConnections,
    /// The user is already a member of the maximum number of channels.
    TooManyChannels,
    /// A backend (e.g. Redis) needed for this request is unreachable.
    ServiceUnavailable,
    /// A bug or an unexpected failure inside chatgate.
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order the contract lists them.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::InvalidPayload,
        ErrorCode::NotInChannel,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::TooManyConnections,
        ErrorCode::TooManyChannels,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
    ];

    /// The code as clients see it, e.g. `"RATE_LIMITED"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::InvalidPayload => "INVALID_PAYLOAD",
            ErrorCode::NotInChannel => "NOT_IN_CHANNEL",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::TooManyConnections => "TOO_MANY_CONNECTIONS",
            ErrorCode::TooManyChannels => "TOO_MANY_CHANNELS",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure that reaches a client: a code, a human message and, for rate
/// limits, when to retry.
///
/// Internal details (backend errors, bugs) are logged where they happen and
/// reach the client only as a generic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct GatewayError {
    /// The stable code clients branch on.
    pub code: ErrorCode,
    /// A human-readable explanation, safe to show to the user.
    pub message: String,
    /// For [`ErrorCode::RateLimited`]: milliseconds until the event is allowed.
    pub retry_after_ms: Option<u64>,
}

impl GatewayError {
    /// A failure with a code and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        GatewayError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// `UNAUTHORIZED` with a message.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// `FORBIDDEN` with a message.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `INVALID_PAYLOAD` with a message.
    pub fn invalid_payload(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidPayload, message)
    }

    /// `RATE_LIMITED`, retry after `retry_after_ms`.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        GatewayError {
            code: ErrorCode::RateLimited,
            message: format!("rate limit exceeded, retry in {retry_after_ms} ms"),
            retry_after_ms: Some(retry_after_ms),
        }
    }

    /// `SERVICE_UNAVAILABLE`: a backend cannot be reached right now.
    pub fn service_unavailable() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            "a backend service is unavailable, try again shortly",
        )
    }

    /// `INTERNAL_ERROR` with a generic message; log the detail before.
    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "internal server error")
    }

    /// The failure object of the wire contract:
    /// `{ "status": "error", "code", "message", "retryAfterMs"? }`.
    pub fn to_failure_object(&self) -> Value {
        let mut object = json!({
            "status": "error",
            "code": self.code.as_str(),
            "message": self.message,
        });
        if let (Some(ms), Some(map)) = (self.retry_after_ms, object.as_object_mut()) {
            map.insert("retryAfterMs".to_owned(), json!(ms));
        }
        object
    }
}

/// Result of a client-visible operation.
pub type GatewayResult<T> = Result<T, GatewayError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are a protocol: changing one is a breaking change.
    #[test]
    fn codes_are_pinned() {
        let spelled: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            spelled,
            [
                "UNAUTHORIZED",
                "FORBIDDEN",
                "INVALID_PAYLOAD",
                "NOT_IN_CHANNEL",
                "PAYLOAD_TOO_LARGE",
                "RATE_LIMITED",
                "TOO_MANY_CONNECTIONS",
                "TOO_MANY_CHANNELS",
                "SERVICE_UNAVAILABLE",
                "INTERNAL_ERROR",
            ]
        );
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(Value::String(code.as_str().to_owned()))
            );
        }
    }

    #[test]
    fn failure_object_shape() {
        let plain = GatewayError::invalid_payload("bad").to_failure_object();
        assert_eq!(
            plain,
            json!({"status": "error", "code": "INVALID_PAYLOAD", "message": "bad"})
        );
        let limited = GatewayError::rate_limited(1500).to_failure_object();
        assert_eq!(limited["code"], "RATE_LIMITED");
        assert_eq!(limited["retryAfterMs"], 1500);
    }
}
