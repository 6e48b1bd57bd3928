//! The API key check: `Authorization: Bearer <API_KEY>`, compared in
//! constant time. The key is never logged, and neither is what a caller sent.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::context::Context;
use super::error::ApiError;

/// Whether `headers` carry `Authorization: Bearer <expected>`.
pub fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(token.trim().as_bytes(), expected.as_bytes())
}

/// Compares two byte strings in time that depends only on their lengths, so
/// that response times do not reveal how much of a guessed key is right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware of `/api/v1`: refuses calls without the right key with `401`.
pub(crate) async fn require_api_key(
    State(context): State<Context>,
    request: Request,
    next: Next,
) -> Response {
    match context.api_key() {
        Some(key) if bearer_matches(request.headers(), key) => next.run(request).await,
        // The router is only mounted with a key; without one, refuse anyway.
        _ => ApiError::unauthorized().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn bearer() {
        assert!(bearer_matches(&with("Bearer k3y"), "k3y"));
        assert!(bearer_matches(&with("bearer  k3y "), "k3y"));
        assert!(!bearer_matches(&with("Bearer k3"), "k3y"));
        assert!(!bearer_matches(&with("Bearer k3yy"), "k3y"));
        assert!(!bearer_matches(&with("Basic k3y"), "k3y"));
        assert!(!bearer_matches(&with("k3y"), "k3y"));
        assert!(!bearer_matches(&HeaderMap::new(), "k3y"));
    }
}
