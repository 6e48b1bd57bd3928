//! Every setting of chatgate, read once at startup and validated in one pass.
//!
//! Each setting is a CLI flag, an environment variable and a key of an
//! optional TOML file (`--config` / `CONFIG_FILE`), with precedence
//! flag > environment > file > default. The table of settings lives in
//! `config/sources.rs`; `chatgate --help` lists them with their env names and
//! defaults. Validation collects every problem before failing, so an operator
//! fixes a broken deployment in one round trip; no message ever quotes a
//! secret (`JWT_SECRET`, `REDIS_PASSWORD`, `REDIS_URL`, `API_KEY`).
//!
//! Dev mode (no JWT key) trusts whatever `userId` a client claims, so it is
//! refused unless the server binds a loopback address.

mod jwt;
mod rate;
mod redis;
mod sources;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

pub use jwt::{JwtSettings, MIN_RECOMMENDED_SECRET_BYTES, MIN_RSA_BITS};
pub use rate::{DEFAULT_RATE_LIMITS, Rate, RateLimits, known_event_names};
pub use redis::RedisSettings;

use sources::Sources;

/// The validated settings of one chatgate process.
///
/// Build it with [`Config::load`] (the binary), [`Config::from_sources`]
/// (tests of the loading itself) or `Config { .., ..Config::default() }`
/// (tests that need a server with particular settings).
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`BIND_ADDR`, `--bind`); default `127.0.0.1:3000`.
    pub bind: SocketAddr,
    /// Public URL of the server, announced in logs (`SOCKET_URL`); default
    /// `http://<bind>`.
    pub socket_url: String,
    /// Allowed CORS / WebSocket origins (`FRONTEND_URL`, comma-separated),
    /// normalized to `scheme://host[:port]` in lower case; `None` allows any
    /// origin, which only dev mode does. With a JWT key and no `FRONTEND_URL`
    /// the list is empty: no browser origin is admitted.
    pub frontend_origins: Option<Vec<String>>,
    /// How handshakes are authenticated: dev mode or JWT.
    pub auth: AuthConfig,
    /// Redis for scale-out; `None` runs on in-memory backends (single node).
    pub redis: Option<RedisSettings>,
    /// Per-user, per-event rate limits (`RATE_LIMITS`).
    pub rate_limits: RateLimits,
    /// With Redis unreachable, let events through without a rate limit
    /// (`RATE_LIMIT_FAIL_OPEN`); default false: they answer
    /// `SERVICE_UNAVAILABLE`. The in-memory limiter cannot fail.
    pub rate_limit_fail_open: bool,
    /// Longest message text, in characters (`MAX_MESSAGE_LENGTH`); default 4000.
    pub max_message_length: usize,
    /// Largest Engine.IO packet, in bytes (`MAX_PAYLOAD_BYTES`, Engine.IO
    /// `maxPayload`); default 100000.
    pub max_payload_bytes: usize,
    /// Connections one user may hold across the cluster
    /// (`MAX_CONNECTIONS_PER_USER`); default 20.
    pub max_connections_per_user: usize,
    /// Channel memberships per user (`MAX_CHANNELS_PER_USER`); default 500.
    pub max_channels_per_user: usize,
    /// Messages kept per channel (`HISTORY_SIZE`); default 500, 0 turns
    /// history off (no `missed`, empty `channel:history`).
    pub history_size: usize,
    /// How long a message is kept in history (`HISTORY_TTL_MS`); default
    /// one day.
    pub history_ttl: Duration,
    /// How long a lost connection can be recovered, on any node, with
    /// Socket.IO connection state recovery (`RECOVERY_WINDOW_MS`); default
    /// two minutes, zero turns recovery off.
    pub recovery_window: Duration,
    /// Engine.IO ping interval (`PING_INTERVAL_MS`); default 25 s.
    pub ping_interval: Duration,
    /// Engine.IO ping timeout (`PING_TIMEOUT_MS`); default 20 s.
    pub ping_timeout: Duration,
    /// How long an Engine.IO connection may stay without a Socket.IO CONNECT
    /// (`CONNECT_TIMEOUT_MS`); default 45 s.
    pub connect_timeout: Duration,
    /// Outbound packets queued per connection before the slow consumer is
    /// disconnected (`MAX_QUEUED_PACKETS`); default 1024.
    pub max_queued_packets: usize,
    /// Bound of each cross-node queue of a node on Redis: messages waiting
    /// to be published, and received ones waiting to be delivered
    /// (`CLUSTER_QUEUE_CAPACITY`); default 65536. Beyond it they are dropped
    /// and counted (`chatgate_cluster_publish_dropped_total`).
    pub cluster_queue_capacity: usize,
    /// New connections (handshakes) one client IP address may open per
    /// period (`CONNECTION_RATE_PER_IP`, e.g. `60/min`); `None` (the
    /// default, `off`) = no limit, as behind a reverse proxy every client
    /// has the proxy's address. The excess gets HTTP 429.
    pub connection_rate_per_ip: Option<Rate>,
    /// Grace period for connections to close on shutdown
    /// (`SHUTDOWN_TIMEOUT_MS`); default 10 s.
    pub shutdown_timeout: Duration,
    /// On shutdown with Redis, how long a closed connection's presence is
    /// kept so its client can reconnect to another node first
    /// (`DRAIN_GRACE_MS`); default 5 s.
    pub drain_grace: Duration,
    /// With Redis, how long a node may miss heartbeats before other nodes
    /// sweep its connections (`NODE_TIMEOUT_MS`); default 8 s.
    pub node_timeout: Duration,
    /// Log output format (`LOG_FORMAT`); default human.
    pub log_format: LogFormat,
    /// Refuse HTTP long-polling (`WEBSOCKET_ONLY`); default false.
    pub websocket_only: bool,
    /// Bearer key of the server HTTP API for app backends (`API_KEY`);
    /// `None` turns `/api/v1` off (it answers 404).
    pub api_key: Option<Secret<String>>,
    /// Serve the demo chat page at `/` (`DEMO_PAGE`); default on in dev
    /// mode, off once a JWT key is configured.
    pub demo_page: bool,
}

/// An `API_KEY` shorter than this many bytes is accepted with a warning.
pub const MIN_RECOMMENDED_API_KEY_BYTES: usize = 16;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{text:?} is not a log format: use human or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// How handshakes are authenticated.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// No JWT key configured: the client's `auth.userId` is trusted. Allowed
    /// only on a loopback address.
    Dev,
    /// Tokens are verified with this key and algorithm.
    Jwt(JwtSettings),
}

/// A value that must never be shown: `Debug` and `Display` print `MASKED`.
/// Read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub const fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The secret value itself; do not log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Secret<T> {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

/// Everything wrong with the settings, each problem in words an operator
/// understands and naming the setting as it was given (flag, env var or
/// file key). Never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// One entry per problem, in the order found.
    pub problems: Vec<String>,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut out = match self.problems.len() {
            1 => "invalid configuration:".to_owned(),
            n => format!("invalid configuration ({n} problems):"),
        };
        for problem in &self.problems {
            out.push_str("\n  - ");
            out.push_str(&problem.replace('\n', "\n    "));
        }
        out
    }
}

impl Default for Config {
    /// The built-in defaults: dev mode on `127.0.0.1:3000`, in-memory
    /// backends, the contract's limits.
    fn default() -> Config {
        let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);
        Config {
            bind,
            socket_url: format!("http://{bind}"),
            frontend_origins: None,
            auth: AuthConfig::Dev,
            redis: None,
            rate_limits: RateLimits::default(),
            rate_limit_fail_open: false,
            max_message_length: 4000,
            max_payload_bytes: 100_000,
            max_connections_per_user: 20,
            max_channels_per_user: 500,
            history_size: 500,
            history_ttl: Duration::from_millis(86_400_000),
            recovery_window: Duration::from_millis(120_000),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            connect_timeout: Duration::from_millis(45_000),
            max_queued_packets: 1024,
            cluster_queue_capacity: 65_536,
            connection_rate_per_ip: None,
            shutdown_timeout: Duration::from_millis(10_000),
            drain_grace: Duration::from_millis(5_000),
            node_timeout: Duration::from_millis(8_000),
            log_format: LogFormat::Human,
            websocket_only: false,
            api_key: None,
            demo_page: true,
        }
    }
}

impl Config {
    /// Reads the process's command line, environment and config file.
    ///
    /// `--help` and `--version` print and exit the process, as usual for a
    /// CLI. Every problem is in the returned error.
    pub fn load() -> Result<Config, ConfigError> {
        Config::load_from(std::env::args_os())
    }

    /// Like [`Config::load`] with the given command line (first item: the
    /// program name); the environment is still the process's. Tests should
    /// prefer [`Config::from_sources`], which does not read the environment.
    pub fn load_from<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        if let Err(e) = sources::command(true).try_get_matches_from(args.clone())
            && matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            )
        {
            e.exit();
        }
        let mut problems = Vec::new();
        let mut env = HashMap::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.insert(name.to_owned(), value);
                }
                Err(_) if sources::SPECS.iter().any(|s| s.env == name) => {
                    problems.push(format!("{name} is not valid UTF-8"));
                }
                Err(_) => {}
            }
        }
        Config::build(args, &env, problems)
    }

    /// Reads settings from a command line (first item: the program name) and
    /// an explicit environment map, never the process environment: a pure
    /// function for tests.
    pub fn from_sources<I, T>(args: I, env: &HashMap<String, String>) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Config::build(args, env, Vec::new())
    }

    /// True when no JWT key is configured and clients' `userId` is trusted.
    pub fn is_dev_mode(&self) -> bool {
        matches!(self.auth, AuthConfig::Dev)
    }

    /// Settings that are allowed but deserve a loud log line at startup
    /// (dev mode, any origin, a short JWT secret...).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.is_dev_mode() {
            warnings.push(
                "DEV MODE: no JWT key is configured (JWT_SECRET or JWT_PUBLIC_KEY_FILE), so \
                 every client is trusted with the userId it claims; never expose this server"
                    .to_owned(),
            );
        }
        match &self.frontend_origins {
            None => {
                warnings.push("FRONTEND_URL is unset: pages of any origin may connect".to_owned())
            }
            Some(origins) if origins.is_empty() => warnings.push(
                "FRONTEND_URL is unset: no web page may connect (only clients that send no \
                 Origin header); list the origins of your frontend, e.g. \
                 FRONTEND_URL=https://chat.example.com"
                    .to_owned(),
            ),
            Some(_) => {}
        }
        if let AuthConfig::Jwt(jwt) = &self.auth
            && jwt.has_weak_secret()
        {
            warnings.push(format!(
                "JWT_SECRET is shorter than {MIN_RECOMMENDED_SECRET_BYTES} bytes; use a long \
                 random secret"
            ));
        }
        if let Some(key) = &self.api_key
            && key.expose().len() < MIN_RECOMMENDED_API_KEY_BYTES
        {
            warnings.push(format!(
                "API_KEY is shorter than {MIN_RECOMMENDED_API_KEY_BYTES} bytes; use a long \
                 random key"
            ));
        }
        if self.redis.is_some() && self.drain_grace >= self.shutdown_timeout {
            warnings.push(
                "DRAIN_GRACE_MS is not below SHUTDOWN_TIMEOUT_MS: presence removals of a draining \
                 node may be cut short (the other nodes' sweep cleans up after NODE_TIMEOUT_MS)"
                    .to_owned(),
            );
        }
        if self.max_payload_bytes < self.max_message_length.saturating_mul(4) + 1024 {
            warnings.push(format!(
                "MAX_PAYLOAD_BYTES ({}) may be too small for a message of MAX_MESSAGE_LENGTH \
                 ({}) characters, which can take up to 4 bytes each",
                self.max_payload_bytes, self.max_message_length
            ));
        }
        warnings
    }

    fn build<I, T>(
        args: I,
        env: &HashMap<String, String>,
        mut problems: Vec<String>,
    ) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let src = Sources::read(args, env, &mut problems).map_err(|usage| ConfigError {
            problems: vec![usage],
        })?;
        let p = &mut problems;
        let defaults = Config::default();

        let bind = src.parse("bind", p, parse_bind);
        let socket_url = if src.explicit("socket-url").is_some() {
            src.parse("socket-url", p, parse_public_url)
        } else {
            bind.map(|bind| format!("http://{bind}"))
        };
        let frontend_origins = if src.explicit("frontend-url").is_some() {
            src.parse("frontend-url", p, parse_origins).map(Some)
        } else {
            Some(None)
        };
        let key_configured =
            src.explicit("jwt-secret").is_some() || src.explicit("jwt-public-key-file").is_some();
        let auth = resolve_auth(&src, p);
        let redis = redis::resolve(&src, p);
        let mut rate_limits = None;
        if let Some(value) = src.get("rate-limits") {
            match RateLimits::parse(&value.text) {
                Ok(limits) => rate_limits = Some(limits),
                Err(entries) => {
                    let label = src.label("rate-limits");
                    p.extend(entries.into_iter().map(|why| format!("{label}: {why}")));
                }
            }
        }
        let max_message_length = src.parse("max-message-length", p, parse_count);
        let max_payload_bytes = src.parse("max-payload-bytes", p, parse_count);
        let max_connections_per_user = src.parse("max-connections-per-user", p, parse_count);
        let max_channels_per_user = src.parse("max-channels-per-user", p, parse_count);
        let history_size = src.parse("history-size", p, parse_history_size);
        let history_ttl = src.parse("history-ttl-ms", p, parse_history_ttl);
        let recovery_window = src.parse("recovery-window-ms", p, parse_recovery_window);
        let max_queued_packets = src.parse("max-queued-packets", p, parse_count);
        let cluster_queue_capacity = src.parse("cluster-queue-capacity", p, parse_count);
        let connection_rate_per_ip = src.parse("connection-rate-per-ip", p, parse_optional_rate);
        let ping_interval = src.parse("ping-interval-ms", p, parse_millis);
        let ping_timeout = src.parse("ping-timeout-ms", p, parse_millis);
        let connect_timeout = src.parse("connect-timeout-ms", p, parse_millis);
        let shutdown_timeout = src.parse("shutdown-timeout-ms", p, parse_millis);
        let drain_grace = src.parse("drain-grace-ms", p, parse_millis);
        let node_timeout = src.parse("node-timeout-ms", p, parse_millis);
        let log_format = src.parse("log-format", p, str::parse::<LogFormat>);
        let websocket_only = src.parse("websocket-only", p, parse_bool);
        let rate_limit_fail_open = src.parse("rate-limit-fail-open", p, parse_bool);
        let api_key = src.explicit("api-key").and_then(|value| {
            if value.text.trim().is_empty() {
                p.push(format!("{}: must not be empty", src.label("api-key")));
                None
            } else {
                Some(Secret::new(value.text.clone()))
            }
        });
        let demo_page = match src.explicit("demo-page") {
            Some(_) => src.parse("demo-page", p, parse_bool),
            None => Some(!key_configured),
        };

        if !key_configured
            && let Some(bind) = bind
            && !bind.ip().to_canonical().is_loopback()
        {
            p.push(format!(
                "dev mode (no JWT_SECRET or JWT_PUBLIC_KEY_FILE) trusts any userId a client \
                 claims, so it may only listen on a loopback address (127.0.0.1 or ::1), but \
                 {} is {bind}: configure a JWT key, or bind to 127.0.0.1",
                src.label("bind")
            ));
        }
        // Any origin is for dev mode only: with a JWT key and no list, no
        // browser origin is admitted (clients that send no `Origin`, such as
        // apps and servers, still connect), and `warnings` says so.
        let frontend_origins = match frontend_origins {
            Some(None) if key_configured => Some(Some(Vec::new())),
            other => other,
        };

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        // Every `None` below had its problem recorded above, so the defaults
        // are never used; they only spare an unwrap.
        Ok(Config {
            bind: bind.unwrap_or(defaults.bind),
            socket_url: socket_url.unwrap_or(defaults.socket_url),
            frontend_origins: frontend_origins.unwrap_or(defaults.frontend_origins),
            auth: auth.unwrap_or(defaults.auth),
            redis,
            rate_limits: rate_limits.unwrap_or(defaults.rate_limits),
            rate_limit_fail_open: rate_limit_fail_open.unwrap_or(defaults.rate_limit_fail_open),
            max_message_length: max_message_length.unwrap_or(defaults.max_message_length),
            max_payload_bytes: max_payload_bytes.unwrap_or(defaults.max_payload_bytes),
            max_connections_per_user: max_connections_per_user
                .unwrap_or(defaults.max_connections_per_user),
            max_channels_per_user: max_channels_per_user.unwrap_or(defaults.max_channels_per_user),
            history_size: history_size.unwrap_or(defaults.history_size),
            history_ttl: history_ttl.unwrap_or(defaults.history_ttl),
            recovery_window: recovery_window.unwrap_or(defaults.recovery_window),
            ping_interval: ping_interval.unwrap_or(defaults.ping_interval),
            ping_timeout: ping_timeout.unwrap_or(defaults.ping_timeout),
            connect_timeout: connect_timeout.unwrap_or(defaults.connect_timeout),
            max_queued_packets: max_queued_packets.unwrap_or(defaults.max_queued_packets),
            cluster_queue_capacity: cluster_queue_capacity
                .unwrap_or(defaults.cluster_queue_capacity),
            connection_rate_per_ip: connection_rate_per_ip
                .unwrap_or(defaults.connection_rate_per_ip),
            shutdown_timeout: shutdown_timeout.unwrap_or(defaults.shutdown_timeout),
            drain_grace: drain_grace.unwrap_or(defaults.drain_grace),
            node_timeout: node_timeout.unwrap_or(defaults.node_timeout),
            log_format: log_format.unwrap_or(defaults.log_format),
            websocket_only: websocket_only.unwrap_or(defaults.websocket_only),
            api_key,
            demo_page: demo_page.unwrap_or(defaults.demo_page),
        })
    }
}

/// Dev mode, or JWT settings with a checked key; `None` after a problem.
fn resolve_auth(src: &Sources, p: &mut Vec<String>) -> Option<AuthConfig> {
    let before = p.len();
    let forced = src
        .explicit("jwt-algorithm")
        .and_then(|_| src.parse("jwt-algorithm", p, jwt::parse_algorithm));
    let issuer = src.explicit("jwt-issuer").and_then(|_| {
        src.parse("jwt-issuer", p, |text| match text.trim() {
            "" => Err("must not be empty".to_owned()),
            issuer => Ok(issuer.to_owned()),
        })
    });
    let audience = src.explicit("jwt-audience").and_then(|_| {
        src.parse("jwt-audience", p, |text| {
            let list: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            if list.is_empty() {
                Err("lists no audience".to_owned())
            } else {
                Ok(list)
            }
        })
    });
    let settings = match (
        src.explicit("jwt-secret"),
        src.explicit("jwt-public-key-file"),
    ) {
        (Some(_), Some(_)) => {
            p.push(format!(
                "{} and {} are both set: configure one JWT key",
                src.label("jwt-secret"),
                src.label("jwt-public-key-file")
            ));
            return None;
        }
        (None, None) => {
            for long in ["jwt-algorithm", "jwt-issuer", "jwt-audience"] {
                if src.explicit(long).is_some() {
                    p.push(format!(
                        "{} is set, but no JWT key is (JWT_SECRET or JWT_PUBLIC_KEY_FILE)",
                        src.label(long)
                    ));
                }
            }
            return Some(AuthConfig::Dev);
        }
        (Some(secret), None) => {
            if secret.text.trim().is_empty() {
                p.push(format!("{}: must not be empty", src.label("jwt-secret")));
                return None;
            }
            jwt::from_secret(secret.text.as_bytes(), forced)
                .map_err(|why| p.push(format!("{}: {why}", src.label("jwt-secret"))))
                .ok()?
        }
        (None, Some(_)) => {
            let path = src.path("jwt-public-key-file")?;
            JwtSettings::from_public_key_file(&path, forced)
                .map_err(|why| p.push(format!("{}: {why}", src.label("jwt-public-key-file"))))
                .ok()?
        }
    };
    if p.len() > before {
        return None;
    }
    let settings = match issuer {
        Some(issuer) => settings.with_issuer(issuer),
        None => settings,
    };
    let settings = match audience {
        Some(audience) => settings.with_audience(audience),
        None => settings,
    };
    Some(AuthConfig::Jwt(settings))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

/// A whole number of at least 1.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} must be a whole number of at least 1")),
    }
}

/// Most messages `HISTORY_SIZE` may keep per channel.
const MAX_HISTORY_SIZE: usize = 100_000;

/// Longest `HISTORY_TTL_MS`: one year.
const MAX_HISTORY_TTL_MS: u64 = 365 * 86_400_000;

/// `HISTORY_SIZE`: 0 (history off) up to [`MAX_HISTORY_SIZE`].
fn parse_history_size(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n <= MAX_HISTORY_SIZE => Ok(n),
        _ => Err(format!(
            "{text:?} must be a whole number from 0 (history off) to {MAX_HISTORY_SIZE}"
        )),
    }
}

/// Longest `RECOVERY_WINDOW_MS`: one day (history is what recovery replays).
const MAX_RECOVERY_WINDOW_MS: u64 = 86_400_000;

/// `RECOVERY_WINDOW_MS`: 0 (off) up to a day.
fn parse_recovery_window(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms <= MAX_RECOVERY_WINDOW_MS => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{text:?} must be a whole number of milliseconds from 0 (off) to {MAX_RECOVERY_WINDOW_MS} (a day)"
        )),
    }
}

/// `HISTORY_TTL_MS`: 1 ms up to a year.
fn parse_history_ttl(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) if (1..=MAX_HISTORY_TTL_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{text:?} must be a whole number of milliseconds from 1 to {MAX_HISTORY_TTL_MS} (a year)"
        )),
    }
}

/// `off` (also `none`, `0`, empty) or a rate such as `60/min`.
fn parse_optional_rate(text: &str) -> Result<Option<Rate>, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "off" | "none" | "0" => Ok(None),
        _ => text.parse::<Rate>().map(Some),
    }
}

/// Milliseconds, at least 1.
fn parse_millis(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms >= 1 => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{text:?} must be a whole number of milliseconds, at least 1"
        )),
    }
}

fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is not an IP address with a port, e.g. 127.0.0.1:3000, 0.0.0.0:3000 or \
             [::1]:3000 (host names such as localhost are not accepted)"
        )
    })
}

/// `http(s)://host...`
fn parse_public_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(url.to_owned())
        }
        _ => Err(format!("{text:?} is not an http:// or https:// URL")),
    }
}

/// A comma-separated list of origins, normalized and deduplicated.
fn parse_origins(text: &str) -> Result<Vec<String>, String> {
    let mut origins: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match parse_origin(entry) {
            Ok(origin) if !origins.contains(&origin) => origins.push(origin),
            Ok(_) => {}
            Err(why) => bad.push(why),
        }
    }
    if !bad.is_empty() {
        return Err(bad.join("; "));
    }
    if origins.is_empty() {
        return Err("lists no origin".to_owned());
    }
    Ok(origins)
}

/// One origin, `scheme://host[:port]`, normalized as browsers send it in
/// `Origin`: lower case, no default port, no trailing slash.
fn parse_origin(entry: &str) -> Result<String, String> {
    let shape = || {
        format!(
            "{entry:?} is not an origin: expected scheme://host[:port], e.g. https://chat.example.com"
        )
    };
    if entry == "*" {
        return Err(
            "`*` is not accepted: leave FRONTEND_URL unset to allow any origin (dev mode only)"
                .to_owned(),
        );
    }
    let trimmed = entry.strip_suffix('/').unwrap_or(entry);
    let (scheme, authority) = trimmed.split_once("://").ok_or_else(shape)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(shape());
    }
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "{entry:?} has a path: an origin is only scheme://host[:port]"
        ));
    }
    if authority.contains('*') {
        return Err(format!("{entry:?}: wildcards are not supported in origins"));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(shape)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(shape)?),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(shape());
        }
        (format!("[{host}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)));
    if !host_ok {
        return Err(shape());
    }
    let scheme = scheme.to_ascii_lowercase();
    // Browsers omit the scheme's default port from `Origin`; so do we.
    let port = match port {
        None => String::new(),
        Some(port) => match port.parse::<u16>() {
            Ok(80) if scheme == "http" => String::new(),
            Ok(443) if scheme == "https" => String::new(),
            Ok(n) if n > 0 && !port.starts_with('+') => format!(":{n}"),
            _ => return Err(shape()),
        },
    };
    Ok(format!("{scheme}://{}{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests;
