//! HTTP entry point: query validation, CORS, dispatch to the transports.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::any;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::conn::{EngineHandler, Shared};
use crate::http::{EioError, text_response};

/// Query parameters the engine uses.
#[derive(Debug, Default)]
pub(crate) struct Query<'a> {
    pub(crate) eio: Option<&'a str>,
    pub(crate) transport: Option<&'a str>,
    pub(crate) sid: Option<&'a str>,
}

pub(crate) fn parse_query(q: Option<&str>) -> Query<'_> {
    let mut out = Query::default();
    for pair in q.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "EIO" => out.eio = Some(v),
            "transport" => out.transport = Some(v),
            "sid" => out.sid = Some(v),
            _ => {}
        }
    }
    out
}

pub(crate) fn router<H: EngineHandler>(shared: Arc<Shared<H>>) -> axum::Router {
    let path = shared.config.path.clone();
    let trimmed = path.trim_end_matches('/').to_owned();
    let mut r = axum::Router::new().route(&path, any(handle::<H>));
    if !trimmed.is_empty() && trimmed != path {
        r = r.route(&trimmed, any(handle::<H>));
    }
    r.with_state(shared)
}

/// Adds CORS headers for an allowed `Origin` (credentials allowed, origin
/// reflected); nothing for refused or absent origins.
fn cors<H: EngineHandler>(
    shared: &Shared<H>,
    origin: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) {
    let Some(origin) = origin else { return };
    let allowed = origin
        .to_str()
        .ok()
        .is_some_and(|o| shared.config.allowed_origins.allows(Some(o)));
    if allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

async fn handle<H: EngineHandler>(State(shared): State<Arc<Shared<H>>>, req: Request) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut res = dispatch(&shared, req).await;
    cors(&shared, origin.as_ref(), res.headers_mut());
    res
}

async fn dispatch<H: EngineHandler>(shared: &Arc<Shared<H>>, mut req: Request) -> Response {
    if req.method() == Method::OPTIONS {
        return preflight(req.headers());
    }
    let origin_ok = match req.headers().get(header::ORIGIN) {
        None => true,
        Some(o) => o
            .to_str()
            .ok()
            .is_some_and(|o| shared.config.allowed_origins.allows(Some(o))),
    };
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let query = parse_query(req.uri().query());
    if query.eio != Some("4") {
        return EioError::UnsupportedProtocolVersion.response();
    }
    let sid = query.sid.map(str::to_owned);
    let new_session = sid.is_none()
        && match query.transport {
            Some("websocket") => shared.config.websocket,
            Some("polling") => shared.config.polling && req.method() == Method::GET,
            _ => false,
        };
    if new_session
        && origin_ok
        && let (Some(limiter), Some(remote)) = (&shared.ip_limiter, remote)
        && let Err(retry_after) = limiter.check(remote.ip(), tokio::time::Instant::now())
    {
        return too_many_connections(retry_after);
    }
    match query.transport {
        Some("websocket") if shared.config.websocket => {
            if !origin_ok {
                // Cross-site WebSocket hijacking protection.
                return EioError::Forbidden.response();
            }
            crate::websocket::upgrade(shared, &mut req, sid, remote)
        }
        Some("polling") if shared.config.polling => {
            if !origin_ok {
                return EioError::Forbidden.response();
            }
            let method = req.method().clone();
            match (method, sid) {
                (Method::GET, None) => crate::polling::handshake(shared, remote),
                (Method::GET, Some(sid)) => crate::polling::get(shared, &sid).await,
                (Method::POST, Some(sid)) => {
                    crate::polling::post(shared, &sid, req.into_body()).await
                }
                (_, None) => EioError::BadHandshakeMethod.response(),
                (_, Some(_)) => EioError::BadRequest.response(),
            }
        }
        _ => EioError::TransportUnknown.response(),
    }
}

/// HTTP 429 for a handshake over the per-IP connection rate limit, with
/// `Retry-After` in whole seconds (at least 1).
fn too_many_connections(retry_after: std::time::Duration) -> Response {
    metrics::counter!("chatgate_engine_handshakes_rate_limited_total").increment(1);
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut res = text_response(
        StatusCode::TOO_MANY_REQUESTS,
        "application/json",
        "{\"code\":\"TOO_MANY_CONNECTIONS\",\"message\":\"Too many new connections from this address\"}",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    res
}

fn preflight(req_headers: &HeaderMap) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    let allow_headers = req_headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query() {
        let q = parse_query(Some("EIO=4&transport=polling&t=x&sid=abc"));
        assert_eq!(q.eio, Some("4"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some("abc"));
        let q = parse_query(None);
        assert!(q.eio.is_none());
    }
}
