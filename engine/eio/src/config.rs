//! Engine configuration.

use std::time::Duration;

/// Configuration of an [`Engine`](crate::Engine).
///
/// Build it with struct-update syntax so new fields do not break callers:
/// `EngineConfig { path: "/socket.io/".into(), ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// URL path served by the router, with a trailing slash (default `"/socket.io/"`).
    pub path: String,
    /// Interval between server pings (default 25 s).
    pub ping_interval: Duration,
    /// How long the server waits for a pong before closing (default 20 s).
    pub ping_timeout: Duration,
    /// Engine.IO `maxPayload` in bytes (default 1 000 000): bigger polling
    /// POST bodies get HTTP 413, bigger WebSocket messages close the connection.
    pub max_payload: usize,
    /// Time allowed for a polling -> WebSocket upgrade (default 10 s).
    pub upgrade_timeout: Duration,
    /// Bound of the outbound queue of one engine connection, in frames
    /// (default 1024). When full, the connection is closed with
    /// [`CloseReason::SlowConsumer`](crate::CloseReason::SlowConsumer):
    /// packets are never dropped silently while connected.
    pub max_queued_packets: usize,
    /// WebSocket transport enabled (default true).
    pub websocket: bool,
    /// HTTP long-polling transport enabled (default true).
    pub polling: bool,
    /// Origins allowed for CORS and WebSocket handshakes (default `Any`).
    pub allowed_origins: AllowedOrigins,
    /// Initial read buffer of a WebSocket connection in bytes (default 1024).
    /// Allocated eagerly per connection by tungstenite, so keep it small: it
    /// grows on demand for bigger frames.
    pub ws_read_buffer_size: usize,
    /// Bytes buffered by tungstenite before writing to the socket (default
    /// 0: frames go straight to the kernel; a batch still ends with one flush).
    pub ws_write_buffer_size: usize,
    /// Rate limit of new engine connections (handshakes) per client IP
    /// address (IPv6: per /64), or `None` for no limit (the default: behind a
    /// reverse proxy every client has the proxy's address). A refused
    /// handshake gets HTTP 429 with a `Retry-After` header, which
    /// socket.io-client reports as a `connect_error` and retries with its
    /// reconnection back-off. Needs the peer address
    /// (`into_make_service_with_connect_info::<SocketAddr>()`); requests
    /// without one are not limited.
    pub connection_rate_per_ip: Option<ConnectionRateLimit>,
}

/// `count` new connections per `period` and client address: the whole
/// `count` may be used at once, then one more every `period / count` (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRateLimit {
    /// Connections allowed per period (a burst of this many is allowed).
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".to_owned(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            upgrade_timeout: Duration::from_secs(10),
            max_queued_packets: 1024,
            websocket: true,
            polling: true,
            allowed_origins: AllowedOrigins::Any,
            ws_read_buffer_size: 1024,
            ws_write_buffer_size: 0,
            connection_rate_per_ip: None,
        }
    }
}

/// Which `Origin` header values are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Every origin (CORS responses reflect the request origin).
    Any,
    /// Only these origins, compared exactly (e.g. `"https://chat.example.com"`).
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Whether a request with this `Origin` header (None = no header) is allowed.
    /// Requests without an `Origin` (non-browser clients) are always allowed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (AllowedOrigins::Any, _) | (_, None) => true,
            (AllowedOrigins::List(list), Some(o)) => list.iter().any(|a| a == o),
        }
    }
}
