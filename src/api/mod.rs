//! chatgate's HTTP surfaces besides Socket.IO: the server API for app
//! backends, the operator views and the demo chat page.
//!
//! | path | what | access |
//! |---|---|---|
//! | `/api/v1/...` ([`v1`]) | server API: publish, membership, presence, disconnect | `Authorization: Bearer <API_KEY>`; 404 without `API_KEY` |
//! | `/metrics` ([`crate::metrics`]) | Prometheus text format | open |
//! | `/status`, `/status.html` ([`crate::status`]) | node, users, top channels, event rates | the API key when set; open in dev mode without one; 404 otherwise |
//! | `/` ([`demo`]) | demo chat page | `DEMO_PAGE` (on in dev mode) |
//!
//! Every call of `/api/v1` logs one line (method, route template, status,
//! duration), never the key, a body or the path's values.

pub mod auth;
pub mod demo;
pub mod error;
pub mod v1;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use chatgate_sio::{Io, Namespace};
use parking_lot::Mutex;

use crate::config::{Config, Secret};
use crate::domain::ChatService;
use crate::status::RateWindow;

/// Largest request body the API reads (a message of 4000 characters of up to
/// 4 bytes each, with room for the rest of the JSON).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the HTTP surfaces act on: the engine, the chat namespace and the
/// chat service, shared with the gateway. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// The engine, for connection counts.
    pub(crate) io: Io,
    /// The chat namespace `/`: rooms, sockets, deliveries.
    pub(crate) namespace: Namespace,
    /// The chat use cases, on the same backends as the gateway.
    pub(crate) chat: ChatService,
    /// The API key; `None` disables the server API.
    api_key: Option<Arc<Secret<String>>>,
    /// Dev mode: the status view is open when no API key is set.
    dev_mode: bool,
    /// When this server was built, for the uptime in `/status`.
    pub(crate) started: Instant,
    /// Samples of the event counters, for the rates in `/status`.
    pub(crate) rates: Arc<Mutex<RateWindow>>,
}

impl Context {
    /// A context over the server's engine, namespace and chat service.
    pub fn new(config: &Config, io: Io, namespace: Namespace, chat: ChatService) -> Context {
        Context {
            io,
            namespace,
            chat,
            api_key: config.api_key.clone().map(Arc::new),
            dev_mode: config.is_dev_mode(),
            started: Instant::now(),
            rates: Arc::new(Mutex::new(RateWindow::default())),
        }
    }

    /// The API key, if one is configured. Never log it.
    pub(crate) fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref().map(|key| key.expose().as_str())
    }

    /// Whether the status view is served at all: with an API key (which it
    /// then requires), or in dev mode.
    pub(crate) fn status_enabled(&self) -> bool {
        self.api_key.is_some() || self.dev_mode
    }
}

/// The routes of every surface of this module for `config`, to be merged into
/// the server's app. Also installs the metrics recorder (once per process).
pub fn routes(config: &Config, io: &Io, namespace: Namespace, chat: ChatService) -> Router {
    crate::metrics::install();
    let context = Context::new(config, io.clone(), namespace, chat);
    let mut router = Router::new()
        .route("/metrics", get(crate::metrics::metrics_endpoint))
        .merge(crate::status::routes(&context));
    router = match context.api_key() {
        Some(_) => router.merge(v1::router(&context)),
        None => router.merge(v1::disabled_router()),
    };
    if config.demo_page {
        router = router.merge(demo::router(config));
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(context)
}
