//! HTTP long-polling: handshake, GET (long poll), POST (client packets).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::conn::{CloseKind, Conn, EngineHandler, PollOutcome, Shared};
use crate::frame::{Frame, Repr};
use crate::handler::{CloseReason, Transport};
use crate::http::{EioError, text_response};
use crate::id::random_id;
use crate::payload::{SEPARATOR, decode_payload};

const TEXT: &str = "text/plain; charset=UTF-8";

/// Longest wait of a GET for an upgrade in progress to end.
const UPGRADE_POLL_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// `GET ?EIO=4&transport=polling`: a new session; the body is the open packet.
pub(crate) fn handshake<H: EngineHandler>(
    shared: &Arc<Shared<H>>,
    remote: Option<SocketAddr>,
) -> Response {
    if shared.shutting_down.load(Ordering::Acquire) {
        return text_response(StatusCode::SERVICE_UNAVAILABLE, TEXT, "shutting down");
    }
    let conn = Conn::new(
        shared.clone(),
        random_id().into(),
        Transport::Polling,
        remote,
    );
    shared.register(&conn);
    let open = conn.open_packet(true);
    tokio::spawn(conn.run_polling_driver());
    text_response(StatusCode::OK, TEXT, open)
}

// The error is the HTTP answer the handler returns as is (cold path).
#[allow(clippy::result_large_err)]
fn lookup<H: EngineHandler>(shared: &Shared<H>, sid: &str) -> Result<Arc<Conn<H>>, Response> {
    let conn = shared
        .get(sid)
        .ok_or_else(|| EioError::UnknownSid.response())?;
    // An expired session is refused even if its timer task is late.
    conn.check_timers(Instant::now());
    if conn.is_closing() && !matches!(conn.transport(), Transport::Polling) {
        return Err(EioError::UnknownSid.response());
    }
    Ok(conn)
}

/// Clears the pending-poll flag however the GET ends. A GET dropped before
/// it answered means the client went away mid-poll (aborted request, closed
/// TCP connection): the session is closed, as the reference server does, so
/// its user is not kept online by a dead client until the ping timeout.
struct PollGuard<'a, H: EngineHandler> {
    conn: &'a Conn<H>,
    answered: bool,
}
impl<H: EngineHandler> Drop for PollGuard<'_, H> {
    fn drop(&mut self) {
        self.conn.end_poll();
        if !self.answered {
            self.conn
                .close_as(CloseReason::TransportClose, CloseKind::Abort);
        }
    }
}

/// Long poll: waits for queued packets and returns them as one payload.
pub(crate) async fn get<H: EngineHandler>(shared: &Arc<Shared<H>>, sid: &str) -> Response {
    let conn = match lookup(shared, sid) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if conn.is_closing() && shared.get(sid).is_none() {
        return EioError::UnknownSid.response();
    }
    // A GET that arrives while the session upgrades waits a moment for the
    // outcome: refused if the WebSocket took over (its `5` was on the way),
    // else a noop as usual. Never longer: a client may be waiting for this
    // very poll to end before it sends `5`. The reference server answers
    // such polls on a 100 ms tick too.
    if let Ok(false) = tokio::time::timeout(UPGRADE_POLL_WAIT, conn.upgrade_settled()).await {
        return EioError::BadRequest.response();
    }
    match conn.begin_poll() {
        Ok(()) => {}
        Err(_) => return EioError::BadRequest.response(),
    }
    let mut guard = PollGuard {
        conn: &conn,
        answered: false,
    };
    let body = match conn.next_poll().await {
        PollOutcome::Frames(frames) => encode(frames.iter(), false),
        PollOutcome::Close(frames) => encode(frames.iter(), true),
        PollOutcome::Noop => "6".to_owned(),
    };
    guard.answered = true;
    metrics::counter!("chatgate_engine_packets_sent_total").increment(1);
    text_response(StatusCode::OK, TEXT, body)
}

fn encode<'a>(frames: impl Iterator<Item = &'a Frame>, close: bool) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for f in frames {
        if !out.is_empty() {
            out.push(SEPARATOR);
        }
        match &f.0 {
            Repr::Text(t) => out.push_str(t.as_str()),
            Repr::Binary(b) => {
                out.push('b');
                base64::engine::general_purpose::STANDARD.encode_string(b, &mut out);
            }
        }
    }
    if close {
        if !out.is_empty() {
            out.push(SEPARATOR);
        }
        out.push('1');
    }
    out
}

/// Client packets. Over `max_payload` -> 413 and close; malformed -> 400 and close.
pub(crate) async fn post<H: EngineHandler>(
    shared: &Arc<Shared<H>>,
    sid: &str,
    body: Body,
) -> Response {
    let conn = match lookup(shared, sid) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if conn.transport() != Transport::Polling || conn.is_closing() {
        return EioError::BadRequest.response();
    }
    let limited = http_body_util::Limited::new(body, shared.config.max_payload);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                conn.close_as(CloseReason::TransportError, CloseKind::Abort);
                return text_response(StatusCode::PAYLOAD_TOO_LARGE, TEXT, "payload too large");
            }
            conn.close_as(CloseReason::TransportError, CloseKind::Abort);
            return EioError::BadRequest.response();
        }
    };
    let packets = match std::str::from_utf8(&bytes).ok().map(decode_payload) {
        Some(Ok(p)) => p,
        _ => {
            conn.close_as(CloseReason::TransportError, CloseKind::Abort);
            return EioError::BadRequest.response();
        }
    };
    let mut inbound = conn.inbound.lock().await;
    if conn.is_closing() {
        return EioError::BadRequest.response();
    }
    for p in packets {
        if !conn.receive(&mut inbound, p).await {
            break;
        }
    }
    drop(inbound);
    text_response(StatusCode::OK, "text/html", "ok")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use bytes::Bytes;

    #[test]
    fn encodes_batches_with_base64_binary() {
        let frames = [
            Frame::message("hello".into()),
            Frame::binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        assert_eq!(encode(frames.iter(), false), "4hello\x1ebAQIDBA==");
        assert_eq!(encode(frames.iter(), true), "4hello\x1ebAQIDBA==\x1e1");
        assert_eq!(encode([].iter(), true), "1");
    }

    #[test]
    fn payload_packets_match() {
        assert_eq!(Packet::decode_text("1", true), Ok(Packet::Close));
    }
}
