//! The `chatgate` binary: load the configuration, set up logging, serve until
//! SIGINT/SIGTERM.

use std::process::ExitCode;

use chatgate::config::{Config, LogFormat};
use chatgate::server::{Server, shutdown_signal};
use tracing_subscriber::EnvFilter;

/// Log levels a bare `RUST_LOG` word may be.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Crates whose name alone is a useful `RUST_LOG` directive (every level of
/// that target); any other target must be written `<target>=<level>`.
const KNOWN_TARGETS: [&str; 12] = [
    "chatgate",
    "chatgate_eio",
    "chatgate_sio",
    "axum",
    "hyper",
    "hyper_util",
    "tower",
    "tokio",
    "tokio_tungstenite",
    "tungstenite",
    "redis",
    "rustls",
];

/// The log filter from `RUST_LOG` (`info` when unset or empty).
///
/// `EnvFilter` reads a bare word such as `verbose` as a target name, which
/// silently turns off every log line (the dev-mode warning included), and
/// the old fallback hid syntax errors the same way: both are refused here so
/// that a typo stops startup instead of silencing the server.
fn log_filter(rust_log: Option<&str>) -> Result<EnvFilter, String> {
    let text = rust_log.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Ok(EnvFilter::new("info"));
    }
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.contains(['=', '[']) {
            continue;
        }
        let word = directive.to_ascii_lowercase();
        let root = word.split("::").next().unwrap_or_default();
        if !LEVELS.contains(&word.as_str()) && !KNOWN_TARGETS.contains(&root) {
            return Err(format!(
                "invalid RUST_LOG {text:?}: {directive:?} is not a log level ({}); \
                 for a target write {directive}=<level>",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::builder()
        .parse(text)
        .map_err(|err| format!("invalid RUST_LOG {text:?}: {err}"))
}

fn init_logging(format: LogFormat, filter: EnvFilter) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("chatgate: {err}");
            return ExitCode::from(2);
        }
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = match log_filter(rust_log.as_deref()) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("chatgate: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format, filter);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    tracing::info!(rate_limits = %config.rate_limits, "effective rate limits");
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("chatgate: cannot listen on {}: {err}", config.bind);
            return ExitCode::from(1);
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| config.bind.to_string(), |a| a.to_string());
    tracing::info!(bind = %local, url = %config.socket_url, "chatgate listening");
    println!(
        "chatgate listening on http://{local} (public URL {})",
        config.socket_url
    );
    match Server::run(config, listener, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(%err, "server failed");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn rust_log_values() {
        for good in [
            None,
            Some(""),
            Some("info"),
            Some("DEBUG"),
            Some("warn,chatgate=debug"),
            Some("chatgate"),
            Some("chatgate::gateway"),
            Some("my_crate=trace"),
            Some("chatgate[connect]=debug"),
        ] {
            assert!(log_filter(good).is_ok(), "{good:?}");
        }
        for bad in ["verbose", "info,verbose", "chatgate=verbose", "inf"] {
            let err = log_filter(Some(bad)).expect_err(bad);
            assert!(err.contains("invalid RUST_LOG"), "{err}");
        }
    }
}
