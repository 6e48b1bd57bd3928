//! Failures of the HTTP surfaces as responses: the wire contract's failure
//! object (`{status: "error", code, message}`) with an HTTP status that
//! follows from the code. Internal details are logged where they happen,
//! never sent.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ErrorCode, GatewayError};

/// A failed API call. Converts from [`GatewayError`], so handlers use `?` on
/// domain results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The failure as clients of the wire contract know it.
    pub error: GatewayError,
    /// The HTTP status, derived from the code unless set otherwise.
    pub status: StatusCode,
}

impl ApiError {
    /// A failure with the HTTP status that follows from `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        GatewayError::new(code, message).into()
    }

    /// `401 UNAUTHORIZED`: no API key, or the wrong one.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong API key: send `Authorization: Bearer <API_KEY>`",
        )
    }

    /// `404` for a path or surface that does not exist (`INVALID_PAYLOAD`,
    /// the contract's code for a request that names nothing).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            error: GatewayError::invalid_payload(message),
            status: StatusCode::NOT_FOUND,
        }
    }

    /// A path parameter that cannot be decoded.
    pub fn from_path(rejection: &PathRejection) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidPayload,
            format!("bad path parameter: {}", rejection.body_text()),
        )
    }

    /// A body that cannot be read: too large, or broken.
    pub fn from_body(rejection: &BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body is larger than {} bytes",
                    super::MAX_BODY_BYTES
                ),
            )
        } else {
            ApiError::new(ErrorCode::InvalidPayload, "the request body cannot be read")
        }
    }
}

/// The HTTP status of each error code.
pub fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::InvalidPayload => StatusCode::BAD_REQUEST,
        ErrorCode::NotInChannel => StatusCode::NOT_FOUND,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited | ErrorCode::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManyChannels => StatusCode::CONFLICT,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> ApiError {
        ApiError {
            status: http_status(error.code),
            error,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.error.to_failure_object())).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(ms) = self.error.retry_after_ms {
            let seconds = ms.div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_error_status() {
        for code in ErrorCode::ALL {
            let status = http_status(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
        }
        let limited: ApiError = GatewayError::rate_limited(1500).into();
        let response = limited.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("2"))
        );
        let response = ApiError::unauthorized().into_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer"))
        );
    }
}
