//! The log line of a refused `Origin`: the engine answers 403 to a polling
//! or WebSocket request from an origin outside `FRONTEND_URL` (cross-site
//! WebSocket hijacking protection) without a word; this layer around the
//! engine's router says which origin was refused.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Most characters of a refused `Origin` logged (the header is the client's).
const MAX_LOGGED_ORIGIN_CHARS: usize = 200;

/// Logs `origin refused` (origin, transport, peer) when the engine answers a
/// request that carries an `Origin` with 403.
pub(crate) async fn log_refused_origin(request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
    let transport = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("transport="))
            .map(|t| t.chars().take(16).collect::<String>())
    });
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let response = next.run(request).await;
    if response.status() == StatusCode::FORBIDDEN
        && let Some(origin) = origin
    {
        let origin: String = origin.chars().take(MAX_LOGGED_ORIGIN_CHARS).collect();
        tracing::info!(
            origin,
            transport = transport.as_deref().unwrap_or("none"),
            remote = remote.map(|r| r.to_string()),
            "origin refused: not in FRONTEND_URL"
        );
    }
    response
}
