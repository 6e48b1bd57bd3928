//! In-process integration tests of the Socket.IO layer: a server on
//! 127.0.0.1:0, spoken to with raw Engine.IO/Socket.IO packets over
//! WebSocket (tokio-tungstenite). No fixed sleeps: conditions are awaited with deadlines.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatgate_sio::{
    BoxFuture, ConnectError, DisconnectReason, EngineConfig, Event, Io, IoConfig, NamespaceHandler,
    Socket,
};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

#[path = "../../test-support/raw.rs"]
mod raw;
use raw::*;

async fn serve(io: &Io) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = io
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(150),
        ..Default::default()
    }
}

/// Records disconnects; joins the rooms listed in auth `{"rooms":[..]}`.
#[derive(Default)]
struct Recorder {
    disconnects: Mutex<Vec<(String, DisconnectReason)>>,
}
impl NamespaceHandler for Recorder {
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>> {
        Box::pin(async move {
            if auth.get("deny").is_some() {
                return Err(ConnectError {
                    message: "DENIED".into(),
                    data: Some(serde_json::json!({"x": 1})),
                });
            }
            for r in auth
                .get("rooms")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                socket.join(r.as_str().unwrap_or_default());
            }
            socket.set_data(7u32);
            Ok(())
        })
    }
    fn on_event<'a>(&'a self, socket: &'a Socket, mut event: Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(ack) = event.ack.take() {
                let n: i64 = event.parse().unwrap_or(-1);
                let _ = ack.send(&(n + 1));
            } else {
                let _ = socket.emit("echo", &event.args);
            }
        })
    }
    fn on_disconnect<'a>(
        &'a self,
        socket: &'a Socket,
        reason: DisconnectReason,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.disconnects
                .lock()
                .push((socket.id().to_owned(), reason))
        })
    }
}

async fn sio_server(config: impl Into<IoConfig>) -> (Io, Arc<Recorder>, SocketAddr) {
    let io = Io::new(config);
    let rec = Arc::new(Recorder::default());
    io.add_namespace("/", rec.clone());
    let addr = serve(&io).await;
    (io, rec, addr)
}

/// Connects a Socket.IO client over WebSocket; returns it and its sid.
async fn sio_client(addr: SocketAddr, auth: &str) -> (Ws, String) {
    let mut ws = ws_connect(addr, "").await;
    next_text(&mut ws, true).await.unwrap();
    ws.send(Message::text(format!("40{auth}"))).await.unwrap();
    let reply = next_text(&mut ws, true).await.unwrap();
    assert!(reply.starts_with("40{"), "{reply}");
    let v: Value = serde_json::from_str(&reply[2..]).unwrap();
    (ws, v["sid"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn connect_ack_and_connect_error() {
    let (io, rec, addr) = sio_server(fast_config()).await;
    let (mut ws, sid) = sio_client(addr, "").await;
    let ns = io.of("/").unwrap();
    assert_eq!(ns.get_socket(&sid).unwrap().data::<u32>(), Some(&7));
    ws.send(Message::text("425[\"inc\",41]")).await.unwrap();
    assert_eq!(next_text(&mut ws, true).await.as_deref(), Some("435[42]"));
    ws.send(Message::text("42[\"x\",1]")).await.unwrap();
    assert_eq!(
        next_text(&mut ws, true).await.as_deref(),
        Some("42[\"echo\",[1]]")
    );
    ws.send(Message::text("40/nope,")).await.unwrap();
    assert_eq!(
        next_text(&mut ws, true).await.as_deref(),
        Some("44/nope,{\"message\":\"Invalid namespace\"}")
    );
    ws.send(Message::text("41")).await.unwrap();
    eventually(|| rec.disconnects.lock().len() == 1).await;
    assert_eq!(
        rec.disconnects.lock()[0].1,
        DisconnectReason::ClientNamespaceDisconnect
    );

    let mut ws = ws_connect(addr, "").await;
    next_text(&mut ws, true).await.unwrap();
    ws.send(Message::text("40{\"deny\":true}")).await.unwrap();
    assert_eq!(
        next_text(&mut ws, true).await.as_deref(),
        Some("44{\"message\":\"DENIED\",\"data\":{\"x\":1}}")
    );
}

#[tokio::test]
async fn broadcast_to_rooms_with_exceptions() {
    let (io, rec, addr) = sio_server(fast_config()).await;
    let (mut a, _) = sio_client(addr, r#"{"rooms":["r1"]}"#).await;
    let (mut b, b_sid) = sio_client(addr, r#"{"rooms":["r1","r2"]}"#).await;
    let (mut c, _) = sio_client(addr, r#"{"rooms":["r2"]}"#).await;
    let ns = io.of("/").unwrap();
    assert_eq!(ns.room_count(), 2);
    // r1 ∪ r2 minus r2 = a only.
    ns.to("r1").to("r2").except("r2").emit("m", &1).unwrap();
    // everyone except b.
    ns.all().except_socket(&b_sid).emit("m", &2).unwrap();
    // to a socket id room.
    ns.to(b_sid.as_str()).emit("m", &3).unwrap();
    assert_eq!(
        next_text(&mut a, true).await.as_deref(),
        Some("42[\"m\",1]")
    );
    assert_eq!(
        next_text(&mut a, true).await.as_deref(),
        Some("42[\"m\",2]")
    );
    assert_eq!(
        next_text(&mut c, true).await.as_deref(),
        Some("42[\"m\",2]")
    );
    assert_eq!(
        next_text(&mut b, true).await.as_deref(),
        Some("42[\"m\",3]")
    );
    assert_eq!(ns.to("r2").local_sockets().len(), 2);
    ns.to("r1").sockets_leave("r1");
    assert_eq!(ns.room_count(), 1, "an emptied room is freed");
    drop(c);
    eventually(|| rec.disconnects.lock().len() == 1).await;
    eventually(|| ns.to("r2").local_sockets().len() == 1).await;
}

#[tokio::test]
async fn slow_consumer_is_disconnected_not_skipped() {
    let (io, rec, addr) = sio_server(EngineConfig {
        max_queued_packets: 4,
        ..fast_config()
    })
    .await;
    let (_ws, sid) = sio_client(addr, "").await;
    let socket = io.of("/").unwrap().get_socket(&sid).unwrap();
    // No await in between: the connection task cannot drain meanwhile.
    let results: Vec<_> = (0..10).map(|i| socket.emit("m", &i)).collect();
    assert!(results.iter().take(4).all(Result::is_ok));
    assert!(matches!(
        results[4],
        Err(chatgate_sio::EmitError::QueueFull)
    ));
    assert!(
        results.iter().skip(5).all(Result::is_err),
        "nothing is queued after the bound"
    );
    eventually(|| rec.disconnects.lock().len() == 1).await;
    assert_eq!(rec.disconnects.lock()[0].1, DisconnectReason::SlowConsumer);
}

#[tokio::test]
async fn connect_timeout_closes_idle_engine_connections() {
    let (io, _rec, addr) = sio_server(IoConfig {
        engine: fast_config(),
        connect_timeout: Duration::from_millis(100),
    })
    .await;
    let mut ws = ws_connect(addr, "").await;
    next_text(&mut ws, true).await.unwrap();
    assert_eq!(next_text(&mut ws, true).await, None);
    eventually(|| io.engine_connection_count() == 0).await;
}

#[tokio::test]
async fn shutdown_closes_as_going_away_without_disconnect_packet() {
    let (io, rec, addr) = sio_server(fast_config()).await;
    let (mut ws, _) = sio_client(addr, "").await;
    let (psid, _) = poll_handshake(addr, "/socket.io/").await;
    io.shutdown(DEADLINE).await;
    assert_eq!(io.engine_connection_count(), 0);
    let close = loop {
        match timeout(DEADLINE, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                assert!(!t.as_str().starts_with("41"), "no Socket.IO DISCONNECT")
            }
            Some(Ok(Message::Close(frame))) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), 1001);
    assert_eq!(
        rec.disconnects
            .lock()
            .as_slice()
            .iter()
            .map(|d| d.1)
            .collect::<Vec<_>>(),
        vec![DisconnectReason::ServerShutdown]
    );
    let (s, _, _) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", &[], "").await;
    assert_eq!(s, 503, "new connections refused");
    let (s, _, _) = http(
        addr,
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&sid={psid}"),
        &[],
        "",
    )
    .await;
    assert_eq!(s, 400);
}
