//! HTTP answers of the engine: Engine.IO's error bodies and plain responses.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// Engine.IO error codes (the JSON body of HTTP 400 answers).
#[derive(Debug, Clone, Copy)]
pub(crate) enum EioError {
    TransportUnknown = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl EioError {
    fn message(self) -> &'static str {
        match self {
            EioError::TransportUnknown => "Transport unknown",
            EioError::UnknownSid => "Session ID unknown",
            EioError::BadHandshakeMethod => "Bad handshake method",
            EioError::BadRequest => "Bad request",
            EioError::Forbidden => "Forbidden",
            EioError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// `{"code":N,"message":"..."}` with HTTP 400 (403 for Forbidden).
    pub(crate) fn response(self) -> Response {
        let status = if matches!(self, EioError::Forbidden) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self as u8,
            self.message()
        );
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

pub(crate) fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
