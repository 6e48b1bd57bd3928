//! Engine.IO conformance server for the `socketio/engine.io-protocol` test
//! suite: a raw engine (no Socket.IO) on `/engine.io/` echoing every message.
//! pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, port 3000 (`PORT`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use chatgate_engine::{BoxFuture, EngineConfig, Io, RawConn, RawHandler, RawMessage};

struct Echo;

impl RawHandler for Echo {
    fn on_message<'a>(&'a self, conn: &'a RawConn, msg: RawMessage) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = conn.send(msg);
        })
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
    let io = Io::new_raw(config, Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("engine.io suite server on port {port}");
    axum::serve(
        listener,
        io.router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
