//! Wire-level checks of `chatgate-engine` with raw Engine.IO/Socket.IO frames
//! (no socket.io-client): handshake fields, packet encodings, heartbeat, error
//! answers of the HTTP endpoints, and origin checks (CORS / WebSocket hijacking).
//!
//! The packet formats asserted here are those of the reference implementation
//! (`engine.io` 6 / `socket.io-parser` 4), which socket.io-client expects.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chatgate_sio::{
    AllowedOrigins, BoxFuture, ConnectError, DisconnectReason, EngineConfig, Event, Io, IoConfig,
    NamespaceHandler, Socket,
};
use serde_json::{Value, json};
use support::raw::engine_path;
use support::{RawWs, TestServer, http_get, http_post, http_request};

/// `/`: accepts everyone and joins a room named after its sid; `echo` emits the
/// first argument back; `ack` acks with the received arguments and attachments;
/// `disconnect-me-close` disconnects the socket closing its transport.
struct EchoHandler;

impl NamespaceHandler for EchoHandler {
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        _auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>> {
        Box::pin(async move {
            socket.join(socket.id().to_owned());
            Ok(())
        })
    }

    fn on_event<'a>(&'a self, socket: &'a Socket, event: Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event.name.as_str() {
                "echo" => {
                    let first = event.args.first().cloned().unwrap_or(Value::Null);
                    let _ = socket.emit("echo", &first);
                }
                "ack" => {
                    if let Some(ack) = event.ack {
                        let _ = ack.send_raw(event.args, event.attachments);
                    }
                }
                "disconnect-me-close" => {
                    socket
                        .namespace()
                        .to(socket.id().to_owned())
                        .disconnect_sockets(true);
                }
                _ => {}
            }
        })
    }

    fn on_disconnect<'a>(
        &'a self,
        _socket: &'a Socket,
        _reason: DisconnectReason,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// An engine with [`EchoHandler`] on `/`, served on `127.0.0.1:0`.
async fn start(config: impl Into<IoConfig>) -> (Io, TestServer) {
    let io = Io::new(config);
    io.add_namespace("/", Arc::new(EchoHandler));
    let server = TestServer::start(io.router()).await;
    (io, server)
}

/// The JSON of an Engine.IO OPEN packet (`0{...}`).
fn open_packet(text: &str) -> Value {
    let json = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("expected an OPEN packet, got {text:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("OPEN packet is not JSON ({e}): {text:?}"))
}

/// Opens a polling session; returns its sid.
async fn polling_handshake(server: &TestServer) -> String {
    let response = http_get(server.addr(), &engine_path("polling", ""), &[]).await;
    assert_eq!(response.status, 200, "handshake: {}", response.text());
    let open = open_packet(&response.text());
    open["sid"].as_str().expect("sid is a string").to_owned()
}

#[tokio::test]
async fn websocket_handshake_connect_event_and_ack() {
    let (_io, server) = start(EngineConfig::default()).await;
    let (mut ws, open) = RawWs::open(server.addr()).await;
    assert!(
        open["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{open}"
    );
    assert_eq!(
        open["upgrades"],
        json!([]),
        "nothing to upgrade to from WebSocket"
    );
    assert_eq!(open["pingInterval"], json!(25_000));
    assert_eq!(open["pingTimeout"], json!(20_000));
    assert_eq!(open["maxPayload"], json!(1_000_000));

    ws.send_text("40").await;
    let connect = ws.recv_text().await;
    let body = connect
        .strip_prefix("40")
        .unwrap_or_else(|| panic!("expected CONNECT, got {connect:?}"));
    let body: Value = serde_json::from_str(body).expect("CONNECT payload is JSON");
    assert!(body["sid"].is_string(), "{connect}");
    assert_ne!(
        body["sid"], open["sid"],
        "Socket.IO sid differs from the Engine.IO sid"
    );

    ws.send_text(r#"42["echo",{"a":[1,"b"]}]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo",{"a":[1,"b"]}]"#);

    ws.send_text(r#"4217["ack","x",2]"#).await;
    assert_eq!(ws.recv_text().await, r#"4317["x",2]"#);

    // BINARY_EVENT with one attachment -> BINARY_ACK with the same attachment.
    ws.send_text(r#"451-3["ack",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(&[0, 1, 2, 255]).await;
    assert_eq!(
        ws.recv_text().await,
        r#"461-3[{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(ws.recv_binary().await, vec![0, 1, 2, 255]);

    // Unknown namespace -> CONNECT_ERROR for that namespace only.
    ws.send_text("40/nope,").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
    ws.send_text(r#"42["echo","still connected"]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo","still connected"]"#);
}

#[tokio::test]
async fn polling_handshake_connect_and_event() {
    let (_io, server) = start(EngineConfig::default()).await;
    let response = http_get(server.addr(), &engine_path("polling", ""), &[]).await;
    assert_eq!(response.status, 200);
    let open = open_packet(&response.text());
    assert_eq!(open["upgrades"], json!(["websocket"]));
    let sid = open["sid"].as_str().expect("sid");
    let session = engine_path("polling", &format!("sid={sid}"));

    let posted = http_post(server.addr(), &session, &[], b"40").await;
    assert_eq!((posted.status, posted.text().as_str()), (200, "ok"));
    let polled = http_get(server.addr(), &session, &[]).await;
    assert!(
        polled.text().starts_with("40{\"sid\":"),
        "{}",
        polled.text()
    );

    // Two packets in one POST (separated by \x1e), answered in one GET.
    let batch = "42[\"echo\",1]\u{1e}42[\"echo\",2]";
    let posted = http_post(server.addr(), &session, &[], batch.as_bytes()).await;
    assert_eq!(posted.status, 200);
    let mut received = Vec::new();
    while received.len() < 2 {
        let polled = http_get(server.addr(), &session, &[]).await;
        assert_eq!(polled.status, 200);
        received.extend(polled.text().split('\u{1e}').map(str::to_owned));
    }
    assert_eq!(received, vec![r#"42["echo",1]"#, r#"42["echo",2]"#]);
}

#[tokio::test]
async fn bad_requests_get_engine_io_error_answers() {
    let (_io, server) = start(EngineConfig {
        max_payload: 100,
        ..EngineConfig::default()
    })
    .await;
    let addr = server.addr();

    let answer = http_get(addr, "/socket.io/?EIO=3&transport=polling", &[]).await;
    assert_eq!(answer.status, 400, "EIO=3: {}", answer.text());
    let answer = http_get(addr, "/socket.io/?EIO=4&transport=carrier-pigeon", &[]).await;
    assert_eq!(answer.status, 400, "unknown transport: {}", answer.text());
    let answer = http_get(addr, &engine_path("polling", "sid=unknown"), &[]).await;
    assert_eq!(answer.status, 400, "unknown sid: {}", answer.text());

    let sid = polling_handshake(&server).await;
    let session = engine_path("polling", &format!("sid={sid}"));
    let oversized = format!("42[\"echo\",\"{}\"]", "x".repeat(200));
    let answer = http_post(addr, &session, &[], oversized.as_bytes()).await;
    assert_eq!(
        answer.status,
        413,
        "POST over maxPayload: {}",
        answer.text()
    );
}

#[tokio::test]
async fn server_pings_and_drops_a_silent_raw_client() {
    let (io, server) = start(EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    })
    .await;
    let (mut ws, _open) = RawWs::open(server.addr()).await;
    ws.send_text("40").await;
    assert!(ws.recv_text().await.starts_with("40"));

    for _ in 0..3 {
        assert_eq!(ws.recv_text().await, "2", "server ping");
        ws.send_text("3").await;
    }
    assert_eq!(io.engine_connection_count(), 1);

    // Stop answering: the server closes the connection.
    assert_eq!(ws.recv_text().await, "2");
    ws.expect_closed().await;
    support::wait_until("engine connection gone", support::default_timeout(), || {
        io.engine_connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn engine_connection_without_socket_io_connect_times_out() {
    let (io, server) = start(IoConfig {
        connect_timeout: Duration::from_millis(300),
        ..IoConfig::default()
    })
    .await;
    let (mut ws, _open) = RawWs::open(server.addr()).await;
    ws.expect_closed().await;
    support::wait_until("engine connection gone", support::default_timeout(), || {
        io.engine_connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn origins_outside_the_allow_list_are_refused() {
    let allowed = "http://allowed.test";
    let (_io, server) = start(EngineConfig {
        allowed_origins: AllowedOrigins::List(vec![allowed.to_owned()]),
        ..EngineConfig::default()
    })
    .await;
    let addr = server.addr();
    let handshake = engine_path("polling", "");

    let answer = http_get(addr, &handshake, &[("Origin", allowed)]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some(allowed));
    assert_eq!(
        answer.header("access-control-allow-credentials"),
        Some("true")
    );

    let preflight = http_request(
        addr,
        "OPTIONS",
        &handshake,
        &[
            ("Origin", allowed),
            ("Access-Control-Request-Method", "POST"),
        ],
        &[],
    )
    .await;
    assert!(
        (200..300).contains(&preflight.status),
        "preflight: {}",
        preflight.status
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(allowed)
    );

    let answer = http_get(addr, &handshake, &[("Origin", "http://evil.test")]).await;
    assert_eq!(
        answer.header("access-control-allow-origin"),
        None,
        "no CORS grant for a foreign origin (status {})",
        answer.status
    );

    let ws_path = engine_path("websocket", "");
    assert!(
        RawWs::connect_with(addr, &ws_path, &[("Origin", "http://evil.test")])
            .await
            .is_err(),
        "cross-site WebSocket handshake must be rejected"
    );
    assert!(
        RawWs::connect_with(addr, &ws_path, &[("Origin", allowed)])
            .await
            .is_ok()
    );
    assert!(
        RawWs::connect_with(addr, &ws_path, &[]).await.is_ok(),
        "no Origin (not a browser)"
    );
}

#[tokio::test]
async fn disconnect_with_transport_close_sends_disconnect_before_closing() {
    let (_io, server) = start(EngineConfig::default()).await;

    // WebSocket: DISCONNECT ("41"), then the connection ends.
    let (mut ws, _open) = RawWs::open(server.addr()).await;
    ws.send_text("40").await;
    assert!(ws.recv_text().await.starts_with("40"));
    ws.send_text(r#"42["disconnect-me-close"]"#).await;
    assert_eq!(ws.recv_text().await, "41");
    ws.expect_closed().await;

    // Polling: a GET carries DISCONNECT ("41"), a later GET the Engine.IO
    // CLOSE packet ("1"), as the reference engine does (it drains the buffer,
    // then closes). Both in one payload would make socket.io-client report
    // "transport close": it handles the CLOSE at once but decoded Socket.IO
    // packets on the next tick.
    let sid = polling_handshake(&server).await;
    let session = engine_path("polling", &format!("sid={sid}"));
    assert_eq!(
        http_post(server.addr(), &session, &[], b"40").await.status,
        200
    );
    assert!(
        http_get(server.addr(), &session, &[])
            .await
            .text()
            .starts_with("40")
    );
    let posted = http_post(
        server.addr(),
        &session,
        &[],
        br#"42["disconnect-me-close"]"#,
    )
    .await;
    assert_eq!(posted.status, 200);
    let mut payloads: Vec<String> = Vec::new();
    while !payloads
        .iter()
        .any(|p| p.split('\u{1e}').any(|packet| packet == "1"))
    {
        let polled = http_get(server.addr(), &session, &[]).await;
        assert_eq!(
            polled.status,
            200,
            "GET after the close (payloads so far {payloads:?}): {}",
            polled.text()
        );
        payloads.push(polled.text());
    }
    assert_eq!(payloads, vec!["41", "1"], "one payload per GET");
}

/// A client that gives up on a pending long poll (aborted request, closed TCP
/// connection) is gone: the session closes at once instead of lingering until
/// the ping timeout, so presence does not show a dead client as online.
#[tokio::test]
async fn aborted_long_poll_closes_the_session() {
    let (_io, server) = start(EngineConfig {
        // Long enough that only the abort can end the session within the test.
        ping_interval: Duration::from_secs(60),
        ping_timeout: Duration::from_secs(60),
        ..EngineConfig::default()
    })
    .await;
    let sid = polling_handshake(&server).await;
    let path = engine_path("polling", &format!("sid={sid}"));
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stream = tokio::net::TcpStream::connect(server.addr())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
        stream
            .write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        // Dropping the stream closes the connection with the poll pending.
    }
    // The session is gone: a later poll is refused (the GET would otherwise
    // hang for a whole minute waiting for data).
    let deadline = tokio::time::Instant::now() + support::default_timeout();
    loop {
        let answer = tokio::time::timeout(
            Duration::from_millis(500),
            http_get(server.addr(), &path, &[]),
        )
        .await;
        match answer {
            Ok(response) if response.status == 400 => break,
            // Still alive: either this GET found data or it is the pending
            // one the server has not noticed the abort of yet. Try again.
            _ if tokio::time::Instant::now() < deadline => continue,
            other => panic!(
                "session survived the aborted poll: {:?}",
                other.map(|r| r.status)
            ),
        }
    }
}

/// A client that leaves its last namespace keeps its Engine.IO connection,
/// as with the reference server: pings go on and it may CONNECT again. Left
/// without a namespace, it is closed after the connect timeout, like a
/// connection that never joined one.
#[tokio::test]
async fn leaving_the_last_namespace_keeps_the_engine_connection_for_a_while() {
    let (io, server) = start(IoConfig {
        engine: EngineConfig {
            ping_interval: Duration::from_millis(200),
            ping_timeout: Duration::from_secs(5),
            ..EngineConfig::default()
        },
        connect_timeout: Duration::from_millis(600),
    })
    .await;
    let (mut ws, _open) = RawWs::open(server.addr()).await;
    ws.send_text("40").await;
    assert!(ws.recv_text().await.starts_with("40"));
    ws.send_text("41").await;
    // Still open: the next thing is a ping, answered to stay alive.
    assert_eq!(ws.recv_text().await, "2");
    ws.send_text("3").await;
    ws.send_text("40").await;
    let again = loop {
        let text = ws.recv_text().await;
        if text == "2" {
            ws.send_text("3").await;
            continue;
        }
        break text;
    };
    assert!(again.starts_with("40{\"sid\""), "{again}");
    ws.send_text("41").await;
    // Pongs keep it alive, but without a namespace the connect timeout ends it.
    let deadline = tokio::time::Instant::now() + support::default_timeout();
    loop {
        match tokio::time::timeout_at(deadline, ws.recv()).await {
            Ok(Some(tokio_tungstenite::tungstenite::Message::Text(t))) if t.as_str() == "2" => {
                ws.send_text("3").await;
            }
            Ok(Some(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                panic!("unexpected {t:?}")
            }
            Ok(_) => break,
            Err(_) => panic!("not closed after the connect timeout"),
        }
    }
    support::wait_until("engine connection gone", support::default_timeout(), || {
        io.engine_connection_count() == 0
    })
    .await;
}
