//! Where settings come from: the command line, environment variables and an
//! optional TOML file, merged with precedence CLI > env > file > default.
//!
//! Every setting is declared once, in [`SPECS`]: its flag, its env var, its
//! default and its help text. The `clap` command, the env lookup and the set
//! of keys allowed in the file are all derived from that table, so they
//! cannot drift apart. Values are kept as text here; `config.rs` parses and
//! validates them in one pass so that every problem is reported at once.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command};

use super::rate::DEFAULT_RATE_LIMITS;

/// One setting: a long flag, an env var, and how `--help` presents it.
#[derive(Debug)]
pub(super) struct Spec {
    /// The long flag without dashes; also the key in the TOML file.
    pub(super) long: &'static str,
    /// The environment variable.
    pub(super) env: &'static str,
    /// Shown in `--help` as the value placeholder.
    value_name: &'static str,
    /// Applied when no source sets the value; shown in `--help`.
    pub(super) default: Option<&'static str>,
    /// The `--help` section.
    heading: &'static str,
    /// One line of help (more detail lives in the docs).
    help: &'static str,
    /// Never echo the value (help output, error messages).
    pub(super) secret: bool,
    /// A boolean that may be given as a bare `--flag` (meaning `true`).
    switch: bool,
}

const NET: &str = "Network";
const AUTH: &str = "Authentication";
const REDIS: &str = "Redis (scale-out; in-memory single node when unset)";
const LIMITS: &str = "Limits";
const TIMING: &str = "Timeouts (milliseconds)";
const OPS: &str = "Operations";

const fn spec(
    long: &'static str,
    env: &'static str,
    value_name: &'static str,
    default: Option<&'static str>,
    heading: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        long,
        env,
        value_name,
        default,
        heading,
        help,
        secret: false,
        switch: false,
    }
}

const fn secret(spec: Spec) -> Spec {
    Spec {
        secret: true,
        ..spec
    }
}

const fn switch(spec: Spec) -> Spec {
    Spec {
        switch: true,
        ..spec
    }
}

/// The flag naming the config file; it cannot appear inside the file.
pub(super) const CONFIG_FLAG: &str = "config";

/// Every setting chatgate reads. The order is the `--help` order (sections
/// appear in the order of their first setting).
pub(super) const SPECS: &[Spec] = &[
    spec(
        "bind",
        "BIND_ADDR",
        "IP:PORT",
        Some("127.0.0.1:3000"),
        NET,
        "Address to listen on; dev mode (no JWT key) requires a loopback address",
    ),
    spec(
        "socket-url",
        "SOCKET_URL",
        "URL",
        None,
        NET,
        "Public URL of this server, announced in logs [default: http://<bind>]",
    ),
    spec(
        "frontend-url",
        "FRONTEND_URL",
        "ORIGINS",
        None,
        NET,
        "Allowed CORS origins, comma-separated (scheme://host[:port]); unset = any origin, \
         allowed in dev mode only",
    ),
    switch(spec(
        "websocket-only",
        "WEBSOCKET_ONLY",
        "BOOL",
        Some("false"),
        NET,
        "Refuse HTTP long-polling; clients must connect with WebSocket",
    )),
    secret(spec(
        "jwt-secret",
        "JWT_SECRET",
        "SECRET",
        None,
        AUTH,
        "HS256 shared secret (prefer the env var: flags are visible in `ps`); setting a JWT key \
         leaves dev mode",
    )),
    spec(
        "jwt-public-key-file",
        "JWT_PUBLIC_KEY_FILE",
        "PEM",
        None,
        AUTH,
        "PEM public key for RS256 (RSA) or ES256 (P-256) tokens; the algorithm follows the key",
    ),
    spec(
        "jwt-algorithm",
        "JWT_ALGORITHM",
        "ALG",
        None,
        AUTH,
        "Accept only this algorithm (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384); \
         must fit the key",
    ),
    spec(
        "jwt-issuer",
        "JWT_ISSUER",
        "ISS",
        None,
        AUTH,
        "Require this `iss` claim",
    ),
    spec(
        "jwt-audience",
        "JWT_AUDIENCE",
        "AUD",
        None,
        AUTH,
        "Require an `aud` claim naming one of these (comma-separated); unset = `aud` not checked",
    ),
    secret(spec(
        "redis-url",
        "REDIS_URL",
        "URL",
        None,
        REDIS,
        "redis://, rediss:// (TLS), redis+cluster:// or rediss+cluster:// URL; or use the \
         REDIS_HOST settings",
    )),
    spec(
        "redis-host",
        "REDIS_HOST",
        "HOST",
        None,
        REDIS,
        "Redis host (instead of REDIS_URL)",
    ),
    spec(
        "redis-port",
        "REDIS_PORT",
        "PORT",
        Some("6379"),
        REDIS,
        "Redis port (with REDIS_HOST)",
    ),
    secret(spec(
        "redis-password",
        "REDIS_PASSWORD",
        "PASSWORD",
        None,
        REDIS,
        "Redis password (with REDIS_HOST)",
    )),
    spec(
        "redis-username",
        "REDIS_USERNAME",
        "USER",
        None,
        REDIS,
        "Redis ACL user name (with REDIS_HOST)",
    ),
    switch(spec(
        "redis-tls",
        "REDIS_TLS",
        "BOOL",
        Some("false"),
        REDIS,
        "Connect to Redis over TLS (with REDIS_HOST)",
    )),
    spec(
        "redis-db",
        "REDIS_DB",
        "N",
        Some("0"),
        REDIS,
        "Redis database number (with REDIS_HOST; cluster mode allows only 0)",
    ),
    switch(spec(
        "redis-cluster",
        "REDIS_CLUSTER",
        "BOOL",
        Some("false"),
        REDIS,
        "Redis is a cluster (same as a +cluster URL scheme)",
    )),
    spec(
        "redis-key-prefix",
        "REDIS_KEY_PREFIX",
        "PREFIX",
        Some("chatgate"),
        REDIS,
        "Prefix of every Redis key, so several deployments can share a Redis",
    ),
    spec(
        "rate-limits",
        "RATE_LIMITS",
        "LIMITS",
        Some(DEFAULT_RATE_LIMITS),
        LIMITS,
        "Per-user rate limits, event=count/period (60/min, 10/s, 5/30s); `default` is every \
         other event; events not listed keep these defaults",
    ),
    switch(spec(
        "rate-limit-fail-open",
        "RATE_LIMIT_FAIL_OPEN",
        "BOOL",
        Some("false"),
        LIMITS,
        "When Redis cannot be reached, let events through unlimited (true) instead of \
         answering SERVICE_UNAVAILABLE (false)",
    )),
    spec(
        "max-message-length",
        "MAX_MESSAGE_LENGTH",
        "CHARS",
        Some("4000"),
        LIMITS,
        "Longest message text, in characters",
    ),
    spec(
        "max-payload-bytes",
        "MAX_PAYLOAD_BYTES",
        "BYTES",
        Some("100000"),
        LIMITS,
        "Largest Engine.IO packet accepted (maxPayload)",
    ),
    spec(
        "max-connections-per-user",
        "MAX_CONNECTIONS_PER_USER",
        "N",
        Some("20"),
        LIMITS,
        "Connections one user may hold, across the cluster",
    ),
    spec(
        "max-channels-per-user",
        "MAX_CHANNELS_PER_USER",
        "N",
        Some("500"),
        LIMITS,
        "Channel memberships per user",
    ),
    spec(
        "history-size",
        "HISTORY_SIZE",
        "N",
        Some("500"),
        LIMITS,
        "Messages kept per channel for `missed` and channel:history; 0 turns history off",
    ),
    spec(
        "history-ttl-ms",
        "HISTORY_TTL_MS",
        "MS",
        Some("86400000"),
        LIMITS,
        "How long a message is kept in history (milliseconds)",
    ),
    spec(
        "recovery-window-ms",
        "RECOVERY_WINDOW_MS",
        "MS",
        Some("120000"),
        LIMITS,
        "How long a lost connection can be recovered (Socket.IO connection state recovery, any node); 0 turns it off",
    ),
    spec(
        "max-queued-packets",
        "MAX_QUEUED_PACKETS",
        "N",
        Some("1024"),
        LIMITS,
        "Outbound packets queued per connection; a slower consumer is disconnected",
    ),
    spec(
        "cluster-queue-capacity",
        "CLUSTER_QUEUE_CAPACITY",
        "N",
        Some("65536"),
        LIMITS,
        "With Redis, cross-node messages a node may hold waiting to be published, and received \
         waiting to be delivered; beyond it they are dropped and counted",
    ),
    spec(
        "connection-rate-per-ip",
        "CONNECTION_RATE_PER_IP",
        "RATE",
        Some("off"),
        LIMITS,
        "New connections one client IP may open, count/period (e.g. 60/min; the excess gets HTTP \
         429), or off; keep off behind a reverse proxy (all clients share its address)",
    ),
    spec(
        "ping-interval-ms",
        "PING_INTERVAL_MS",
        "MS",
        Some("25000"),
        TIMING,
        "Engine.IO ping interval",
    ),
    spec(
        "ping-timeout-ms",
        "PING_TIMEOUT_MS",
        "MS",
        Some("20000"),
        TIMING,
        "Engine.IO ping timeout: no pong within it closes the connection",
    ),
    spec(
        "connect-timeout-ms",
        "CONNECT_TIMEOUT_MS",
        "MS",
        Some("45000"),
        TIMING,
        "Time an Engine.IO connection may stay without a Socket.IO CONNECT",
    ),
    spec(
        "shutdown-timeout-ms",
        "SHUTDOWN_TIMEOUT_MS",
        "MS",
        Some("10000"),
        TIMING,
        "Grace period for connections to close on shutdown",
    ),
    spec(
        "drain-grace-ms",
        "DRAIN_GRACE_MS",
        "MS",
        Some("5000"),
        TIMING,
        "On shutdown with Redis, how long a closed connection's presence is kept so its client \
         can reconnect to another node without going offline (keep below SHUTDOWN_TIMEOUT_MS)",
    ),
    spec(
        "node-timeout-ms",
        "NODE_TIMEOUT_MS",
        "MS",
        Some("8000"),
        TIMING,
        "With Redis, how long a node may miss heartbeats (sent every second) before other nodes \
         sweep its connections and announce its users offline",
    ),
    spec(
        "log-format",
        "LOG_FORMAT",
        "FORMAT",
        Some("human"),
        OPS,
        "Log output: human or json",
    ),
    secret(spec(
        "api-key",
        "API_KEY",
        "KEY",
        None,
        OPS,
        "Bearer key of the server HTTP API (/api/v1) for app backends (prefer the env var); \
         unset = API off",
    )),
    switch(spec(
        "demo-page",
        "DEMO_PAGE",
        "BOOL",
        None,
        OPS,
        "Serve the demo chat page at / [default: true in dev mode, false with a JWT key]",
    )),
    spec(
        CONFIG_FLAG,
        "CONFIG_FILE",
        "FILE",
        None,
        OPS,
        "TOML file of settings; keys are the long flag names (e.g. max-message-length = 2000); \
         unknown keys are refused",
    ),
];

/// The spec of a setting by its long flag name.
pub(super) fn spec_of(long: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.long == long)
}

/// The `clap` command. With `with_env`, clap itself reads the environment
/// (used only to render `--help` with the current env values); without, the
/// environment is supplied by the caller as a map, which keeps parsing pure.
pub(super) fn command(with_env: bool) -> Command {
    let mut cmd = Command::new("chatgate")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A Socket.IO-compatible real-time chat gateway")
        .after_help(
            "Every setting is a flag, an environment variable and a key of the --config file. \
             Precedence: flag > environment > file > default. Empty environment variables \
             count as unset.",
        );
    for spec in SPECS {
        let mut arg = Arg::new(spec.long)
            .long(spec.long)
            .value_name(spec.value_name)
            .help(spec.help)
            .help_heading(spec.heading)
            .action(ArgAction::Set);
        if with_env {
            arg = arg.env(spec.env).hide_env_values(spec.secret);
        }
        if let Some(default) = spec.default {
            arg = arg.default_value(default);
        }
        if spec.switch {
            arg = arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true");
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Where a value came from; names the setting the way the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// `--flag` on the command line.
    Cli,
    /// The environment variable.
    Env,
    /// A key of the config file at this path.
    File(PathBuf),
    /// The built-in default.
    Default,
}

/// One resolved value and where it came from.
#[derive(Debug, Clone)]
pub(super) struct Value {
    /// The text of the value.
    pub(super) text: String,
    /// Its source.
    pub(super) origin: Origin,
}

/// The merged settings, still as text, plus problems found while reading
/// the sources (unreadable file, unknown keys...).
#[derive(Debug, Default)]
pub(super) struct Sources {
    values: HashMap<&'static str, Value>,
}

impl Sources {
    /// Reads the command line, `env` and the config file (named by
    /// `--config` or `CONFIG_FILE`). Problems go to `problems`; a command line
    /// clap cannot parse (or `--help`) is returned as the only problem.
    pub(super) fn read<I, T>(
        args: I,
        env: &HashMap<String, String>,
        problems: &mut Vec<String>,
    ) -> Result<Sources, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = command(false).try_get_matches_from(args).map_err(|e| {
            let text = e.render().to_string();
            let text = text.trim_end();
            text.strip_prefix("error: ").unwrap_or(text).to_owned()
        })?;
        let env_value = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();

        let mut cli: HashMap<&'static str, String> = HashMap::new();
        for spec in SPECS {
            if matches.value_source(spec.long) == Some(ValueSource::CommandLine)
                && let Some(text) = matches.get_one::<String>(spec.long)
            {
                cli.insert(spec.long, text.clone());
            }
        }

        let file_path = cli
            .get(CONFIG_FLAG)
            .cloned()
            .or_else(|| env_value(spec_env(CONFIG_FLAG)))
            .map(PathBuf::from);
        let file = match &file_path {
            Some(path) => read_file(path, problems),
            None => HashMap::new(),
        };

        let mut values = HashMap::new();
        for spec in SPECS {
            let value = if let Some(text) = cli.remove(spec.long) {
                Some(Value {
                    text,
                    origin: Origin::Cli,
                })
            } else if let Some(text) = env_value(spec.env) {
                Some(Value {
                    text,
                    origin: Origin::Env,
                })
            } else if let (Some(text), Some(path)) = (file.get(spec.long), &file_path) {
                Some(Value {
                    text: text.clone(),
                    origin: Origin::File(path.clone()),
                })
            } else {
                spec.default.map(|text| Value {
                    text: text.to_owned(),
                    origin: Origin::Default,
                })
            };
            if let Some(value) = value {
                values.insert(spec.long, value);
            }
        }
        Ok(Sources { values })
    }

    /// The value of a setting, default included.
    pub(super) fn get(&self, long: &str) -> Option<&Value> {
        self.values.get(long)
    }

    /// The value of a setting only if some source set it (not the default).
    pub(super) fn explicit(&self, long: &str) -> Option<&Value> {
        self.get(long).filter(|v| v.origin != Origin::Default)
    }

    /// How to name a setting in a message: as the user gave it.
    pub(super) fn label(&self, long: &str) -> String {
        match self.get(long).map(|v| &v.origin) {
            Some(Origin::Cli) => format!("--{long}"),
            Some(Origin::Env) => spec_env(long).to_owned(),
            Some(Origin::File(path)) => format!("`{long}` in {}", path.display()),
            Some(Origin::Default) | None => format!("--{long} / {}", spec_env(long)),
        }
    }

    /// Parses a setting with `parse`; a failure becomes a problem that names
    /// the setting (never its value: `parse` decides what to quote).
    pub(super) fn parse<T>(
        &self,
        long: &str,
        problems: &mut Vec<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(long)?;
        match parse(&value.text) {
            Ok(parsed) => Some(parsed),
            Err(why) => {
                problems.push(format!("{}: {why}", self.label(long)));
                None
            }
        }
    }

    /// A path setting; a relative path from the config file is taken
    /// relative to that file's directory.
    pub(super) fn path(&self, long: &str) -> Option<PathBuf> {
        let value = self.get(long)?;
        let path = PathBuf::from(&value.text);
        match &value.origin {
            Origin::File(file) if path.is_relative() => Some(
                file.parent()
                    .map_or_else(|| path.clone(), |dir| dir.join(&path)),
            ),
            _ => Some(path),
        }
    }
}

/// The env var name of a setting.
fn spec_env(long: &str) -> &'static str {
    spec_of(long).map_or("", |s| s.env)
}

/// Reads the TOML config file into `long flag -> text`. Keys may use `-` or
/// `_`. Unknown keys, nested tables and unreadable files are problems.
fn read_file(path: &Path, problems: &mut Vec<String>) -> HashMap<&'static str, String> {
    let shown = path.display();
    let mut out = HashMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("cannot read config file {shown}: {e}"));
            return out;
        }
    };
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => {
            // The message only: the error's snippet could quote a secret.
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            let at = line.map_or_else(String::new, |l| format!(", line {l}"));
            problems.push(format!(
                "config file {shown}{at} is not valid TOML: {}",
                e.message().trim_end()
            ));
            return out;
        }
    };
    for (key, value) in table {
        let long = key.replace('_', "-");
        let Some(spec) = spec_of(&long).filter(|s| s.long != CONFIG_FLAG) else {
            problems.push(format!(
                "config file {shown}: unknown key `{key}` (keys are the long flag names, \
                 see --help)"
            ));
            continue;
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .into_iter()
                    .map(|item| match item {
                        toml::Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                match strings {
                    Some(strings) => strings.join(","),
                    None => {
                        problems.push(format!(
                            "config file {shown}: `{key}` must be a string or a list of strings"
                        ));
                        continue;
                    }
                }
            }
            _ => {
                problems.push(format!(
                    "config file {shown}: `{key}` must be a string, a whole number or a boolean"
                ));
                continue;
            }
        };
        if out.insert(spec.long, text).is_some() {
            problems.push(format!(
                "config file {shown}: `{long}` is set twice (as `-` and `_` spellings)"
            ));
        }
    }
    out
}
