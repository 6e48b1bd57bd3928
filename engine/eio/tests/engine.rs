//! In-process integration tests of the Engine.IO layer alone: an echo
//! handler on 127.0.0.1:0, spoken to with raw Engine.IO over WebSocket
//! (tokio-tungstenite) and HTTP/1.1 polling (a raw TcpStream). No fixed
//! sleeps: conditions are awaited with deadlines.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatgate_eio::{
    AllowedOrigins, BoxFuture, CloseReason, Conn, Engine, EngineConfig, EngineHandler, Frame,
    Message as EioMessage, MessageText,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "../../test-support/raw.rs"]
mod raw;
use raw::*;

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends every message back.
struct Echo;
impl EngineHandler for Echo {
    type Data = ();
    type Inbound = ();

    fn on_message<'a>(
        &'a self,
        conn: &'a Arc<Conn<Self>>,
        _inbound: &'a mut (),
        msg: EioMessage,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let frame = match msg {
                EioMessage::Text(t) => Frame::message(MessageText::from(t.as_str())),
                EioMessage::Binary(b) => Frame::binary(b),
            };
            let _ = conn.send(&[frame]);
        })
    }

    fn on_close<'a>(
        &'a self,
        _conn: &'a Arc<Conn<Self>>,
        _reason: CloseReason,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(150),
        ..Default::default()
    }
}

async fn raw_server(config: EngineConfig) -> (Engine<Echo>, SocketAddr) {
    let engine = Engine::new(config, Echo);
    let addr = serve(engine.router()).await;
    (engine, addr)
}

#[tokio::test]
async fn handshake_fields() {
    let (_io, addr) = raw_server(EngineConfig {
        path: "/socket.io/".into(),
        ..fast_config()
    })
    .await;
    let (sid, v) = poll_handshake(addr, "/socket.io/").await;
    assert!(sid.len() >= 20, "sid has >= 120 bits");
    assert_eq!(v["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(v["pingInterval"], 200);
    assert_eq!(v["pingTimeout"], 150);
    assert_eq!(v["maxPayload"], 1_000_000);
    let mut ws = ws_connect(addr, "").await;
    let open = next_text(&mut ws, false).await.unwrap();
    let v: Value = serde_json::from_str(&open[1..]).unwrap();
    assert_eq!(v["upgrades"], serde_json::json!([]));
    assert_ne!(v["sid"].as_str().unwrap(), sid);
}

#[tokio::test]
async fn bad_requests_get_engine_io_errors() {
    let (_io, addr) = raw_server(fast_config()).await;
    let (s, _, b) = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        &[],
        "",
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );
    let (s, _, b) = http(addr, "GET", "/socket.io/?EIO=4&transport=abc", &[], "").await;
    assert_eq!(
        (s, b.as_str()),
        (400, r#"{"code":0,"message":"Transport unknown"}"#)
    );
    let (s, _, _) = http(addr, "GET", "/socket.io/?EIO=3&transport=polling", &[], "").await;
    assert_eq!(s, 400);
    let (s, _, _) = http(
        addr,
        "POST",
        "/socket.io/?EIO=4&transport=polling",
        &[],
        "4x",
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn ws_ping_pong_then_timeout_of_a_silent_client() {
    let (io, addr) = raw_server(fast_config()).await;
    let mut ws = ws_connect(addr, "").await;
    next_text(&mut ws, false).await.unwrap(); // open
    for _ in 0..2 {
        assert_eq!(next_text(&mut ws, false).await.as_deref(), Some("2"));
        ws.send(Message::text("3")).await.unwrap();
    }
    assert_eq!(next_text(&mut ws, false).await.as_deref(), Some("2"));
    // Silent now: the server must close.
    assert_eq!(next_text(&mut ws, false).await, None);
    eventually(|| io.connection_count() == 0).await;
}

#[tokio::test]
async fn polling_batches_and_ping_timeout() {
    let (_io, addr) = raw_server(fast_config()).await;
    let (sid, _) = poll_handshake(addr, "/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (s, _, b) = http(addr, "POST", &url, &[], "4a\x1ebAQIDBA==\x1e4c").await;
    assert_eq!((s, b.as_str()), (200, "ok"));
    let (s, _, b) = http(addr, "GET", &url, &[], "").await;
    assert_eq!((s, b.as_str()), (200, "4a\x1ebAQIDBA==\x1e4c"));
    // Next GET waits for the ping; then no pong: the session expires.
    let (_, _, b) = http(addr, "GET", &url, &[], "").await;
    assert_eq!(b, "2");
    let expired = async {
        loop {
            let (s, _, _) = http(addr, "GET", &url, &[], "").await;
            if s == 400 {
                return;
            }
        }
    };
    timeout(DEADLINE, expired).await.unwrap();
}

#[tokio::test]
async fn upgrade_probe_moves_the_session_to_websocket() {
    let (_io, addr) = raw_server(fast_config()).await;
    let (sid, _) = poll_handshake(addr, "/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let mut ws = ws_connect(addr, &format!("&sid={sid}")).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws, false).await.as_deref(), Some("3probe"));
    let (s, _, b) = http(addr, "GET", &url, &[], "").await;
    assert_eq!((s, b.as_str()), (200, "6"));
    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws, true).await.as_deref(), Some("4hello"));
    let (s, _, _) = http(addr, "GET", &url, &[], "").await;
    assert_eq!(s, 400, "polling refused after upgrade");
}

/// Waits for the server to close `ws` (a close frame or EOF), skipping
/// anything else.
async fn expect_server_close(ws: &mut Ws) {
    timeout(DEADLINE, async {
        while let Some(msg) = ws.next().await {
            if matches!(msg, Ok(Message::Close(_)) | Err(_)) {
                return;
            }
        }
    })
    .await
    .expect("the server should close the socket");
}

/// A second WebSocket with the sid of a session that already upgraded is
/// accepted (101) and closed at once, as the reference server does: the
/// client sees a close, not a failed handshake, and the session's own
/// WebSocket goes on working.
#[tokio::test]
async fn websocket_with_the_sid_of_an_upgraded_session_is_accepted_and_closed() {
    let (_io, addr) = raw_server(fast_config()).await;
    let (sid, _) = poll_handshake(addr, "/socket.io/").await;
    let mut ws = ws_connect(addr, &format!("&sid={sid}")).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws, false).await.as_deref(), Some("3probe"));
    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("4first")).await.unwrap();
    assert_eq!(next_text(&mut ws, true).await.as_deref(), Some("4first"));

    // ws_connect fails unless the handshake answers 101.
    let mut second = ws_connect(addr, &format!("&sid={sid}")).await;
    expect_server_close(&mut second).await;

    ws.send(Message::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws, true).await.as_deref(), Some("4hello"));
}

/// The same while the first upgrade is still in progress (probe answered,
/// `5` not sent yet): the intruder is closed, the upgrade completes.
#[tokio::test]
async fn websocket_with_the_sid_of_an_upgrading_session_is_accepted_and_closed() {
    let (_io, addr) = raw_server(fast_config()).await;
    let (sid, _) = poll_handshake(addr, "/socket.io/").await;
    let mut ws = ws_connect(addr, &format!("&sid={sid}")).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws, false).await.as_deref(), Some("3probe"));

    let mut second = ws_connect(addr, &format!("&sid={sid}")).await;
    expect_server_close(&mut second).await;

    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws, true).await.as_deref(), Some("4hello"));
}

/// A client's close (a POST) that overtakes its own long poll: the poll
/// still gets a noop, as it would had it been pending, and only later
/// requests find the session gone.
#[tokio::test]
async fn a_poll_racing_the_clients_close_gets_a_noop() {
    let (io, addr) = raw_server(fast_config()).await;
    let (sid, _) = poll_handshake(addr, "/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (s, _, _) = http(addr, "POST", &url, &[], "1").await;
    assert_eq!(s, 200);
    let (s, _, b) = http(addr, "GET", &url, &[], "").await;
    assert_eq!((s, b.as_str()), (200, "6"));
    let (s, _, _) = http(addr, "GET", &url, &[], "").await;
    assert_eq!(s, 400);
    eventually(|| io.connection_count() == 0).await;
}

/// An unknown sid is still refused before the handshake.
#[tokio::test]
async fn websocket_with_an_unknown_sid_is_refused() {
    let (_io, addr) = raw_server(fast_config()).await;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid=nope");
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 400)
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

#[tokio::test]
async fn max_payload_is_enforced() {
    let (_io, addr) = raw_server(EngineConfig {
        max_payload: 100,
        ..fast_config()
    })
    .await;
    let (sid, _) = poll_handshake(addr, "/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let big = format!("4{}", "x".repeat(200));
    let (s, _, _) = http(addr, "POST", &url, &[], &big).await;
    assert_eq!(s, 413);
    let (s, _, _) = http(addr, "GET", &url, &[], "").await;
    assert_eq!(s, 400, "session closed after 413");

    let mut ws = ws_connect(addr, "").await;
    next_text(&mut ws, false).await.unwrap();
    ws.send(Message::text(big)).await.unwrap();
    assert_eq!(
        next_text(&mut ws, true).await,
        None,
        "closed after an oversized message"
    );
}

#[tokio::test]
async fn cors_and_websocket_origin_checks() {
    let config = EngineConfig {
        allowed_origins: AllowedOrigins::List(vec!["http://good.test".into()]),
        ..fast_config()
    };
    let (_io, addr) = raw_server(config).await;
    let pre = |origin| {
        [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ]
    };
    let (s, h, _) = http(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &pre("http://good.test"),
        "",
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("http://good.test")
    );
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    let (_, h, _) = http(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &pre("http://evil.test"),
        "",
    )
    .await;
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    let (s, h, _) = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://good.test")],
        "",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("http://good.test")
    );
    let (s, h, _) = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://evil.test")],
        "",
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(header(&h, "access-control-allow-origin"), None);

    let mut req = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", "http://evil.test".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let mut req = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", "http://good.test".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}
