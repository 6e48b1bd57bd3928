//! Engine.IO conformance server for the `socketio/engine.io-protocol` test
//! suite: a raw engine (no Socket.IO) on `/engine.io/` echoing every message.
//! pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, port 3000 (`PORT`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use chatgate_eio::{
    BoxFuture, CloseReason, Conn, Engine, EngineConfig, EngineHandler, Frame, Message, MessageText,
};

/// Sends every message back as it came.
struct Echo;

impl EngineHandler for Echo {
    type Data = ();
    type Inbound = ();

    fn on_message<'a>(
        &'a self,
        conn: &'a Arc<Conn<Self>>,
        _inbound: &'a mut (),
        msg: Message,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let frame = match msg {
                Message::Text(text) => Frame::message(MessageText::from(text.as_str())),
                Message::Binary(data) => Frame::binary(data),
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let config = EngineConfig {
        path: "/engine.io/".into(),
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        ..Default::default()
    };
    let engine = Engine::new(config, Echo);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("engine.io suite server on port {port}");
    axum::serve(
        listener,
        engine
            .router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
