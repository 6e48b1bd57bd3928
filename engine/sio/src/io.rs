//! [`Io`]: the Socket.IO server object and its configuration.

use std::sync::Arc;
use std::time::Duration;

use chatgate_eio::{Engine, EngineConfig};

use crate::adapter::LocalAdapter;
use crate::socket::{Adapter, Client, Namespace, NamespaceHandler};

/// Configuration of an [`Io`] server: the engine's, plus Socket.IO's own.
///
/// Build it with struct-update syntax so new fields do not break callers:
/// `IoConfig { connect_timeout: Duration::from_secs(10), ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct IoConfig {
    /// Engine.IO settings (path, heartbeat, payload and queue bounds,
    /// transports, origins).
    pub engine: EngineConfig,
    /// An engine connection that has not joined any namespace after this
    /// long is closed (default 45 s), as is one whose client left its last
    /// namespace and joins none again in that time.
    pub connect_timeout: Duration,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            engine: EngineConfig::default(),
            connect_timeout: Duration::from_secs(45),
        }
    }
}

impl From<EngineConfig> for IoConfig {
    /// Engine settings with Socket.IO's defaults.
    fn from(engine: EngineConfig) -> Self {
        IoConfig {
            engine,
            ..IoConfig::default()
        }
    }
}

/// The Socket.IO server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Io {
    engine: Engine<Client>,
}

impl Io {
    /// A Socket.IO server; add namespaces with [`add_namespace`](Self::add_namespace).
    pub fn new(config: impl Into<IoConfig>) -> Io {
        let config = config.into();
        Io {
            engine: Engine::new(config.engine, Client::new(config.connect_timeout)),
        }
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        self.engine.config()
    }

    /// Registers a namespace (`"/"` or `"/custom"`) with a [`LocalAdapter`].
    /// CONNECTs to unknown namespaces get CONNECT_ERROR "Invalid namespace".
    pub fn add_namespace(&self, path: &str, handler: Arc<dyn NamespaceHandler>) -> Namespace {
        self.add_namespace_with_adapter(path, handler, Arc::new(LocalAdapter::new()))
    }

    /// Registers a namespace with a custom [`Adapter`] (e.g. a cluster adapter).
    pub fn add_namespace_with_adapter(
        &self,
        path: &str,
        handler: Arc<dyn NamespaceHandler>,
        adapter: Arc<dyn Adapter>,
    ) -> Namespace {
        let ns = Namespace::new(path, handler, adapter);
        self.engine
            .handler()
            .namespaces
            .write()
            .insert(path.to_owned(), ns.clone());
        ns
    }

    /// A registered namespace.
    pub fn of(&self, path: &str) -> Option<Namespace> {
        self.engine.handler().namespaces.read().get(path).cloned()
    }

    /// An axum Router serving the engine's path (polling GET/POST, OPTIONS
    /// preflight, WebSocket upgrade). Merge it with other routes and serve
    /// it with TCP_NODELAY (e.g. `ListenerExt::tap_io` + `set_nodelay(true)`)
    /// and `into_make_service_with_connect_info::<SocketAddr>()` for
    /// [`Socket::remote_addr`](crate::Socket::remote_addr).
    pub fn router(&self) -> axum::Router {
        self.engine.router()
    }

    /// Open engine connections (including ones still closing).
    pub fn engine_connection_count(&self) -> usize {
        self.engine.connection_count()
    }

    /// Graceful shutdown: refuse new engine connections, close every open
    /// one as "going away" (WebSocket close 1001 / polling close packet)
    /// without a Socket.IO DISCONNECT, so clients reconnect elsewhere.
    /// on_disconnect(ServerShutdown) runs for every socket. Returns when all
    /// connections are gone or `deadline` passed (then the rest are aborted).
    pub async fn shutdown(&self, deadline: Duration) {
        self.engine.shutdown(deadline).await
    }
}
