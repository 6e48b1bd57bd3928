//! [`Engine`]: the server object, its shared state and connection registry.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::EngineConfig;
use crate::conn::{CloseKind, Conn, EngineHandler, Shared};
use crate::handler::CloseReason;

/// The Engine.IO server. Cheap to clone.
pub struct Engine<H: EngineHandler> {
    pub(crate) shared: Arc<Shared<H>>,
}

impl<H: EngineHandler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
        }
    }
}

impl<H: EngineHandler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.shared.config.path)
            .finish()
    }
}

impl<H: EngineHandler> Engine<H> {
    /// An engine handing every connection's messages to `handler`.
    pub fn new(config: EngineConfig, handler: H) -> Engine<H> {
        Engine {
            shared: Arc::new(Shared::new(config, handler)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// An axum Router serving `config.path` (polling GET/POST, OPTIONS
    /// preflight, WebSocket upgrade). Merge it with other routes and serve
    /// it with TCP_NODELAY (e.g. `ListenerExt::tap_io` + `set_nodelay(true)`)
    /// and `into_make_service_with_connect_info::<SocketAddr>()` for
    /// [`Conn::remote_addr`].
    pub fn router(&self) -> axum::Router {
        crate::router::router(self.shared.clone())
    }

    /// Open connections (including ones still closing).
    pub fn connection_count(&self) -> usize {
        self.shared.live()
    }

    /// Graceful shutdown: refuse new connections, close every open one as
    /// "going away" (WebSocket close 1001 / polling close packet), so
    /// clients reconnect elsewhere. `on_close(ServerShutdown)` runs for
    /// every connection. Returns when all connections are gone or
    /// `deadline` passed (then the rest are aborted).
    pub async fn shutdown(&self, deadline: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let conns: Vec<Arc<Conn<H>>> = self.shared.all();
        for c in &conns {
            c.close_as(CloseReason::ServerShutdown, CloseKind::Graceful(1001));
        }
        let until = tokio::time::Instant::now() + deadline;
        let wait_all = async {
            loop {
                let notified = self.shared.live_changed();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.connection_count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout_at(until, wait_all).await.is_err() {
            tracing::warn!(
                left = self.connection_count(),
                "shutdown deadline passed: aborting connections"
            );
            for c in &conns {
                c.close_as(CloseReason::ServerShutdown, CloseKind::Abort);
            }
        }
    }
}
