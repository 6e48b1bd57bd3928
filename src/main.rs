//! The `chatgate` binary: load the configuration, set up logging, serve until
//! SIGINT/SIGTERM.

use std::process::ExitCode;

use chatgate::config::{Config, LogFormat};
use chatgate::server::{Server, shutdown_signal};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
    init_logging(config.log_format);
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
