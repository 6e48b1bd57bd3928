//! [`Context`]: what every HTTP surface of this module acts on. Its own file
//! so that the surfaces import it downward, never from the module that
//! assembles them.

use std::sync::Arc;
use std::time::Instant;

use chatgate_sio::{Io, Namespace};
use parking_lot::Mutex;

use super::rates::RateWindow;
use crate::config::{Config, Secret};
use crate::domain::ChatService;

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
