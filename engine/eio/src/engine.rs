//! [`Engine`]: the server object, its shared state and connection registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::config::EngineConfig;
use crate::conn::{CloseKind, Conn};
use crate::handler::{CloseReason, EngineHandler};

/// State shared by the router, the connections and [`Engine`].
pub(crate) struct Shared<H: EngineHandler> {
    pub(crate) config: EngineConfig,
    pub(crate) handler: H,
    conns: RwLock<HashMap<Box<str>, Arc<Conn<H>>>>,
    /// Connections not yet finished (registered or closing).
    live: AtomicUsize,
    live_changed: Notify,
    pub(crate) shutting_down: AtomicBool,
    /// Per-IP handshake rate limit (`config.connection_rate_per_ip`).
    pub(crate) ip_limiter: Option<crate::ip_limit::IpLimiter>,
}

impl<H: EngineHandler> Shared<H> {
    pub(crate) fn get(&self, sid: &str) -> Option<Arc<Conn<H>>> {
        self.conns.read().get(sid).cloned()
    }

    /// Registers a new connection (metrics, the handler's `on_open`).
    pub(crate) fn register(&self, conn: &Arc<Conn<H>>) {
        self.conns.write().insert(conn.sid.clone(), conn.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("chatgate_engine_connections").increment(1.0);
        metrics::counter!("chatgate_engine_connections_opened_total").increment(1);
        self.handler.on_open(conn);
    }

    pub(crate) fn unregister(&self, sid: &str) {
        let removed = self.conns.write().remove(sid);
        drop(removed);
    }

    /// Called once per connection by `Conn::finish`.
    pub(crate) async fn on_conn_closed(&self, conn: &Arc<Conn<H>>, reason: CloseReason) {
        self.handler.on_close(conn, reason).await;
        metrics::gauge!("chatgate_engine_connections").decrement(1.0);
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.live_changed.notify_waiters();
    }
}

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
            shared: Arc::new(Shared {
                ip_limiter: config
                    .connection_rate_per_ip
                    .map(crate::ip_limit::IpLimiter::new),
                config,
                handler,
                conns: RwLock::new(HashMap::new()),
                live: AtomicUsize::new(0),
                live_changed: Notify::new(),
                shutting_down: AtomicBool::new(false),
            }),
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
        self.shared.live.load(Ordering::Acquire)
    }

    /// Graceful shutdown: refuse new connections, close every open one as
    /// "going away" (WebSocket close 1001 / polling close packet), so
    /// clients reconnect elsewhere. `on_close(ServerShutdown)` runs for
    /// every connection. Returns when all connections are gone or
    /// `deadline` passed (then the rest are aborted).
    pub async fn shutdown(&self, deadline: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let conns: Vec<_> = self.shared.conns.read().values().cloned().collect();
        for c in &conns {
            c.close_as(CloseReason::ServerShutdown, CloseKind::Graceful(1001));
        }
        let until = tokio::time::Instant::now() + deadline;
        let wait_all = async {
            loop {
                let notified = self.shared.live_changed.notified();
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
