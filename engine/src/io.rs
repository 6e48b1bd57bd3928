//! [`Io`]: the server object, its shared state and connection registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::config::EngineConfig;
use crate::engineio::conn::{CloseKind, EngineConn};
use crate::handler::{DisconnectReason, NamespaceHandler, RawConn, RawHandler};
use crate::socketio::adapter::{Adapter, LocalAdapter};
use crate::socketio::namespace::Namespace;

/// 128 random bits from the OS-seeded CSPRNG, base64url (22 chars): the
/// engine's session and socket ids, and an id for anything else that must
/// not collide or be guessed (chatgate's node ids).
pub fn random_id() -> String {
    use base64::Engine as _;
    use rand::Rng as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What runs on top of the engine.
pub(crate) enum Upper {
    SocketIo(RwLock<HashMap<String, Namespace>>),
    Raw(Arc<dyn RawHandler>),
}

/// State shared by the router, the connections and [`Io`].
pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    pub(crate) upper: Upper,
    conns: RwLock<HashMap<Box<str>, Arc<EngineConn>>>,
    /// Connections not yet finished (registered or closing).
    live: AtomicUsize,
    live_changed: Notify,
    pub(crate) shutting_down: AtomicBool,
    /// Per-IP handshake rate limit (`config.connection_rate_per_ip`).
    pub(crate) ip_limiter: Option<crate::ip_limit::IpLimiter>,
}

impl Shared {
    pub(crate) fn is_socketio(&self) -> bool {
        matches!(self.upper, Upper::SocketIo(_))
    }

    pub(crate) fn namespace(&self, path: &str) -> Option<Namespace> {
        match &self.upper {
            Upper::SocketIo(nsps) => nsps.read().get(path).cloned(),
            Upper::Raw(_) => None,
        }
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Arc<EngineConn>> {
        self.conns.read().get(sid).cloned()
    }

    /// Registers a new connection (metrics, raw on_open).
    pub(crate) fn register(&self, conn: &Arc<EngineConn>) {
        self.conns.write().insert(conn.sid.clone(), conn.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("chatgate_engine_connections").increment(1.0);
        metrics::counter!("chatgate_engine_connections_opened_total").increment(1);
        if let Upper::Raw(h) = &self.upper {
            h.on_open(&RawConn(conn.clone()));
        }
    }

    pub(crate) fn unregister(&self, sid: &str) {
        let removed = self.conns.write().remove(sid);
        drop(removed);
    }

    /// Called once per connection by `EngineConn::finish`.
    pub(crate) async fn on_conn_closed(&self, conn: &Arc<EngineConn>, reason: DisconnectReason) {
        match &self.upper {
            Upper::SocketIo(_) => crate::socketio::client::on_conn_closed(conn, reason).await,
            Upper::Raw(h) => h.on_close(&RawConn(conn.clone()), reason),
        }
        metrics::gauge!("chatgate_engine_connections").decrement(1.0);
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.live_changed.notify_waiters();
    }
}

/// The Engine.IO + Socket.IO server. Cheap to clone.
#[derive(Clone)]
pub struct Io {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("path", &self.shared.config.path)
            .finish()
    }
}

impl Io {
    fn with_upper(config: EngineConfig, upper: Upper) -> Io {
        Io {
            shared: Arc::new(Shared {
                ip_limiter: config
                    .connection_rate_per_ip
                    .map(crate::ip_limit::IpLimiter::new),
                config,
                upper,
                conns: RwLock::new(HashMap::new()),
                live: AtomicUsize::new(0),
                live_changed: Notify::new(),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// A Socket.IO server; add namespaces with [`add_namespace`](Self::add_namespace).
    pub fn new(config: EngineConfig) -> Io {
        Io::with_upper(config, Upper::SocketIo(RwLock::new(HashMap::new())))
    }

    /// A raw Engine.IO server (no Socket.IO): every message goes to `handler`.
    /// Used by the Engine.IO conformance example.
    pub fn new_raw(config: EngineConfig, handler: Arc<dyn RawHandler>) -> Io {
        Io::with_upper(config, Upper::Raw(handler))
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Registers a namespace (`"/"` or `"/custom"`) with a [`LocalAdapter`].
    /// CONNECTs to unknown namespaces get CONNECT_ERROR "Invalid namespace".
    pub fn add_namespace(&self, path: &str, handler: Arc<dyn NamespaceHandler>) -> Namespace {
        self.add_namespace_with_adapter(path, handler, Arc::new(LocalAdapter::new()))
    }

    /// Registers a namespace with a custom [`Adapter`] (e.g. a cluster adapter).
    /// On a raw engine the namespace is returned but never reachable.
    pub fn add_namespace_with_adapter(
        &self,
        path: &str,
        handler: Arc<dyn NamespaceHandler>,
        adapter: Arc<dyn Adapter>,
    ) -> Namespace {
        let ns = Namespace::new(path, handler, adapter);
        if let Upper::SocketIo(nsps) = &self.shared.upper {
            nsps.write().insert(path.to_owned(), ns.clone());
        }
        ns
    }

    /// A registered namespace.
    pub fn of(&self, path: &str) -> Option<Namespace> {
        self.shared.namespace(path)
    }

    /// An axum Router serving `config.path` (polling GET/POST, OPTIONS
    /// preflight, WebSocket upgrade). Merge it with other routes and serve
    /// it with TCP_NODELAY (e.g. `ListenerExt::tap_io` + `set_nodelay(true)`)
    /// and `into_make_service_with_connect_info::<SocketAddr>()` for
    /// [`Socket::remote_addr`](crate::Socket::remote_addr).
    pub fn router(&self) -> axum::Router {
        crate::router::router(self.shared.clone())
    }

    /// Open engine connections (including ones still closing).
    pub fn engine_connection_count(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Graceful shutdown: refuse new engine connections, close every open
    /// one as "going away" (WebSocket close 1001 / polling close packet)
    /// without a Socket.IO DISCONNECT, so clients reconnect elsewhere.
    /// on_disconnect(ServerShutdown) runs for every socket. Returns when all
    /// connections are gone or `deadline` passed (then the rest are aborted).
    pub async fn shutdown(&self, deadline: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let conns: Vec<_> = self.shared.conns.read().values().cloned().collect();
        for c in &conns {
            c.close(DisconnectReason::ServerShutdown, CloseKind::Graceful(1001));
        }
        let until = tokio::time::Instant::now() + deadline;
        let wait_all = async {
            loop {
                let notified = self.shared.live_changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.engine_connection_count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout_at(until, wait_all).await.is_err() {
            tracing::warn!(
                left = self.engine_connection_count(),
                "shutdown deadline passed: aborting connections"
            );
            for c in &conns {
                c.close(DisconnectReason::ServerShutdown, CloseKind::Abort);
            }
        }
    }
}
