//! Socket.IO conformance server for the `socketio/socket.io-protocol` test suite.
//!
//! Emits `auth` (the handshake auth) on connect, echoes `message` as
//! `message-back` (all arguments, binary included), acknowledges
//! `message-with-ack` with its arguments; namespaces `/` and `/custom`.
//! pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, port 3000 (`PORT`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use chatgate_sio::{
    BoxFuture, ConnectError, DisconnectReason, EngineConfig, Event, Io, NamespaceHandler, Socket,
};
use serde_json::{Value, json};

struct Echo;

impl NamespaceHandler for Echo {
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>> {
        Box::pin(async move {
            let auth = if auth.is_null() {
                json!({})
            } else {
                auth.clone()
            };
            // Held back by the engine until the CONNECT reply is sent.
            let _ = socket.emit("auth", &auth);
            Ok(())
        })
    }

    fn on_event<'a>(&'a self, socket: &'a Socket, event: Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event.name.as_str() {
                "message" => {
                    let _ = socket.emit_raw("message-back", event.args, event.attachments);
                }
                "message-with-ack" => {
                    if let Some(ack) = event.ack {
                        let _ = ack.send_raw(event.args, event.attachments);
                    }
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let io = Io::new(EngineConfig {
        path: "/socket.io/".into(),
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        ..Default::default()
    });
    io.add_namespace("/", Arc::new(Echo));
    io.add_namespace("/custom", Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("socket.io suite server on port {port}");
    axum::serve(
        listener,
        io.router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
