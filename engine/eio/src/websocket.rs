//! WebSocket transport: handshake (RFC 6455 over hyper's upgrade), the
//! probe of a polling -> WebSocket upgrade, and the connection task.
//!
//! One task per connection. It joins three futures: the reader (decodes
//! and dispatches in arrival order), the writer (drains the whole queue
//! with `feed`, then one `flush`) and the heartbeat. The HTTP request is
//! dropped as soon as the 101 answer is built; only the peer address stays.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::conn::{CloseKind, Conn, EngineHandler, Shared, WriteBatch};
use crate::frame::{Frame, Repr};
use crate::handler::{CloseReason, Transport};
use crate::http::EioError;
use crate::id::random_id;
use crate::packet::Packet;

fn header_has(req: &Request, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Validates the WebSocket handshake and answers 101; the connection task
/// starts once hyper hands over the socket.
pub(crate) fn upgrade<H: EngineHandler>(
    shared: &Arc<Shared<H>>,
    req: &mut Request,
    sid: Option<String>,
    remote: Option<SocketAddr>,
) -> Response {
    if !header_has(req, header::UPGRADE, "websocket")
        || !header_has(req, header::CONNECTION, "upgrade")
    {
        return EioError::BadRequest.response();
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return EioError::BadRequest.response();
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return EioError::BadRequest.response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let existing = match sid {
        Some(sid) => match shared.get(&sid) {
            None => return EioError::UnknownSid.response(),
            // A session that already upgraded (or is upgrading) keeps its
            // transport; the new WebSocket is accepted and closed at once,
            // as the reference server does, so a client sees a close
            // rather than a failed handshake.
            Some(c) if c.reserve_upgrade() => Upgrade::Probe(c),
            Some(_) => Upgrade::Refuse,
        },
        None if shared.shutting_down.load(Ordering::Acquire) => {
            let mut res = Response::new(Body::from("shutting down"));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return res;
        }
        None => Upgrade::New,
    };
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let shared = shared.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                if let Upgrade::Probe(conn) = &existing {
                    conn.abort_upgrade();
                }
                return;
            }
        };
        let config = ws_config(&shared);
        // Unwrap hyper's type-erased IO when possible: a plain TcpStream is
        // smaller and avoids one indirection per read/write.
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                let ws = if parts.read_buf.is_empty() {
                    WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await
                } else {
                    WebSocketStream::from_partially_read(
                        stream,
                        parts.read_buf.to_vec(),
                        Role::Server,
                        Some(config),
                    )
                    .await
                };
                serve(shared, existing, ws, remote).await
            }
            Err(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve(shared, existing, ws, remote).await
            }
        }
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// What the accepted WebSocket becomes.
enum Upgrade<H: EngineHandler> {
    /// A new session.
    New,
    /// The upgrade of an existing polling session (probe first).
    Probe(Arc<Conn<H>>),
    /// Nothing: the session cannot upgrade; close the WebSocket.
    Refuse,
}

fn ws_config<H: EngineHandler>(shared: &Shared<H>) -> WebSocketConfig {
    let c = &shared.config;
    WebSocketConfig::default()
        .read_buffer_size(c.ws_read_buffer_size.max(64))
        .write_buffer_size(c.ws_write_buffer_size)
        .max_message_size(Some(c.max_payload))
        .max_frame_size(Some(c.max_payload))
}

async fn serve<H, S>(
    shared: Arc<Shared<H>>,
    existing: Upgrade<H>,
    mut ws: WebSocketStream<S>,
    remote: Option<SocketAddr>,
) where
    H: EngineHandler,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = match existing {
        Upgrade::Probe(conn) => {
            if !probe(&conn, &mut ws).await {
                conn.abort_upgrade();
                let _ = ws.close(None).await;
                return;
            }
            conn
        }
        Upgrade::Refuse => {
            let _ = ws.close(None).await;
            return;
        }
        Upgrade::New => {
            let conn = Conn::new(
                shared.clone(),
                random_id().into(),
                Transport::WebSocket,
                remote,
            );
            conn.send_unbounded(Frame::packet(conn.open_packet(false)));
            shared.register(&conn);
            conn
        }
    };
    // A task of its own: the upgrade task (whose future reserves room for
    // the handshake and probe states) ends here and frees that memory, so
    // an idle connection holds only `run`'s state.
    tokio::spawn(run(conn, ws));
}

/// Upgrade probe: `2probe` -> `3probe`, then wait for `5`.
async fn probe<H, S>(conn: &Arc<Conn<H>>, ws: &mut WebSocketStream<S>) -> bool
where
    H: EngineHandler,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + conn.shared.config.upgrade_timeout;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => return false,
        };
        let Message::Text(t) = msg else {
            if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                continue;
            }
            return false;
        };
        match Packet::decode_text(t.as_str(), false) {
            Ok(Packet::Ping(true)) => {
                if !conn.begin_upgrade()
                    || ws
                        .send(Message::Text(Utf8Bytes::from_static("3probe")))
                        .await
                        .is_err()
                {
                    return false;
                }
            }
            Ok(Packet::Upgrade) => return conn.complete_upgrade(),
            _ => return false,
        }
    }
}

/// The connection task body.
async fn run<H, S>(conn: Arc<Conn<H>>, ws: WebSocketStream<S>)
where
    H: EngineHandler,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let reader = async {
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = conn.wait_closing() => return,
            };
            // Handlers run to completion even if a close starts meanwhile.
            let ok = match msg {
                Some(Ok(Message::Text(t))) => match Packet::decode_text(t.as_str(), false) {
                    Ok(p) => {
                        let mut inbound = conn.inbound.lock().await;
                        // Boxed: message handling has a large state that an
                        // idle connection should not reserve.
                        Box::pin(conn.receive(&mut inbound, p)).await
                    }
                    Err(_) => {
                        conn.close_as(CloseReason::TransportError, CloseKind::Abort);
                        false
                    }
                },
                Some(Ok(Message::Binary(b))) => {
                    let mut inbound = conn.inbound.lock().await;
                    Box::pin(conn.receive(&mut inbound, Packet::Binary(b))).await
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => true,
                Some(Ok(Message::Close(_))) | None => {
                    conn.close_as(CloseReason::TransportClose, CloseKind::Abort);
                    false
                }
                Some(Err(e)) => {
                    tracing::debug!(sid = %conn.sid, error = %e, "websocket read error");
                    conn.close_as(CloseReason::TransportError, CloseKind::Abort);
                    false
                }
            };
            if !ok {
                return;
            }
        }
    };
    let writer = async {
        let write_loop = async {
            loop {
                match conn.next_write().await {
                    WriteBatch::Frames(frames, pause_after) => {
                        let n = frames.len() as u64;
                        for f in frames {
                            sink.feed(to_message(f)).await?;
                        }
                        sink.flush().await?;
                        metrics::counter!("chatgate_engine_packets_sent_total").increment(n);
                        if pause_after {
                            // The flush barrier of `send_then_pause`: let the
                            // client read the first write alone.
                            tokio::time::sleep(BARRIER_PAUSE).await;
                        }
                    }
                    WriteBatch::Close(frames, code) => {
                        let fin = async {
                            for f in frames {
                                sink.feed(to_message(f)).await?;
                            }
                            let frame = CloseFrame {
                                code: CloseCode::from(code),
                                reason: Utf8Bytes::from_static(""),
                            };
                            sink.send(Message::Close(Some(frame))).await
                        };
                        let grace = conn
                            .shared
                            .config
                            .ping_timeout
                            .min(std::time::Duration::from_secs(5));
                        // Boxed: runs once, at close; idle connections
                        // should not reserve room for it.
                        let _ = Box::pin(tokio::time::timeout(grace, fin)).await;
                        return Ok(());
                    }
                    WriteBatch::Stop => return Ok(()),
                }
            }
        };
        let result: Result<(), tokio_tungstenite::tungstenite::Error> = tokio::select! {
            r = write_loop => r,
            _ = conn.wait_abort() => Ok(()),
        };
        if let Err(e) = result {
            tracing::debug!(sid = %conn.sid, error = %e, "websocket write error");
            conn.close_as(CloseReason::TransportError, CloseKind::Abort);
        }
    };
    tokio::join!(reader, writer, conn.heartbeat(false));
    conn.finish().await;
}

/// Pause after the first write of a [`Conn::send_then_pause`] (only when
/// something follows it): about an event-loop turn of the client.
const BARRIER_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

fn to_message(f: Frame) -> Message {
    match f.0 {
        Repr::Text(t) => Message::Text(t),
        Repr::Binary(b) => Message::Binary(b),
    }
}
