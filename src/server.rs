//! The HTTP server: chatgate's engine on `/socket.io/`, health checks, and the
//! run loop with graceful shutdown.
//!
//! [`Server::run`] takes an already bound listener and a shutdown future, and
//! [`Server::spawn`] runs it in a task, so tests run a real server on
//! `127.0.0.1:0` in-process (the mini-redis way).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt;
use chatgate_sio::{AllowedOrigins, ConnectionRateLimit, EngineConfig, Io, IoConfig};
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::backend::redis::{RedisBackend, RedisOptions};
use crate::backend::{Backends, HistoryPolicy, RateQuota};
use crate::cluster::{ClusterAdapter, ClusterOptions};
use crate::config::{Config, Rate};
use crate::delivery;
use crate::domain::{ChatService, Limits, RatePolicy};
use crate::gateway::Gateway;

/// Shared state of the plain HTTP routes.
#[derive(Clone)]
struct AppState {
    /// Cleared when shutdown starts, so load balancers stop sending traffic.
    accepting: Arc<AtomicBool>,
    /// The backends, whose reachability `/readyz` reports.
    backends: Backends,
}

/// How much longer than a lost connection stays recoverable the Redis
/// Cluster's recovery log keeps a message (delivery delays, clocks).
const RECOVERY_LOG_MARGIN: Duration = Duration::from_secs(60);

/// The backends `config` asks for: Redis when configured (reached in the
/// background, so an unreachable Redis does not stop the start), else memory.
fn backends(config: &Config, node_id: &str) -> std::io::Result<(Backends, Option<RedisNode>)> {
    let invalid = |err: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, err);
    match &config.redis {
        None => Ok((Backends::in_memory(), None)),
        Some(settings) => {
            // Many nodes: cross-node delivery, and presence changes found by
            // sweeps of dead nodes and re-registrations get announced.
            let (changes_tx, changes) = tokio::sync::mpsc::unbounded_channel();
            let (lost_tx, data_lost) = tokio::sync::mpsc::unbounded_channel();
            // The ordered send on a Redis Cluster runs in the slot of the
            // adapter's sharded channel, and its recovery log keeps every
            // message a recoverable connection may have missed: sessions
            // live a third longer than the window (see
            // `ChatService::live_session_ttl`), plus delivery delays.
            let cluster_options = ClusterOptions {
                queue_capacity: config.cluster_queue_capacity,
                ..ClusterOptions::default()
            };
            let shard_channel = cluster_options.broadcast_channel("/");
            let log_keep =
                config.recovery_window + config.recovery_window / 3 + RECOVERY_LOG_MARGIN;
            let options = RedisOptions::new(node_id)
                .with_shard_channel(shard_channel)
                .with_recovery_log_keep(log_keep)
                .with_node_timeout(config.node_timeout)
                .with_rate_limit_fail_open(config.rate_limit_fail_open)
                .with_presence_changes(changes_tx)
                .with_data_lost(lost_tx);
            let backend =
                RedisBackend::connect(settings, options).map_err(|e| invalid(e.to_string()))?;
            let options = ClusterOptions {
                sequence_key: Some(backend.sequence_key()),
                ..cluster_options
            };
            let adapter = ClusterAdapter::start(settings, node_id, "/", options)
                .map_err(|e| invalid(e.to_string()))?;
            Ok((
                backend.clone().into_backends(),
                Some(RedisNode {
                    backend,
                    adapter,
                    changes,
                    data_lost,
                }),
            ))
        }
    }
}

/// The many-nodes parts of a node on Redis.
struct RedisNode {
    /// The backend, to drain on shutdown.
    backend: RedisBackend,
    /// Cross-node delivery for namespace `/`.
    adapter: Arc<ClusterAdapter>,
    /// Presence changes found by sweeps and re-registrations, to announce.
    changes: tokio::sync::mpsc::UnboundedReceiver<crate::protocol::PresenceInfo>,
    /// Reports of Redis losing its data, to restore memberships.
    data_lost: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// How many times a membership restore is tried before it is given up.
const RESTORE_ATTEMPTS: u32 = 3;

/// Restores memberships whenever Redis reports it lost its data (restarted
/// without persistence): the channels this node's live connections are
/// subscribed to are written back, so their users can still send there.
/// The task ends when the sender (the backend) is dropped.
fn spawn_membership_restorer(
    mut data_lost: tokio::sync::mpsc::UnboundedReceiver<()>,
    namespace: chatgate_sio::Namespace,
    chat: ChatService,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while data_lost.recv().await.is_some() {
            for attempt in 1..=RESTORE_ATTEMPTS {
                let memberships = crate::gateway::live_memberships(&namespace);
                let subscriptions: usize = memberships.iter().map(|(_, c)| c.len()).sum();
                match chat.restore_memberships(&memberships).await {
                    Ok(restored) => {
                        tracing::info!(
                            users = memberships.len(),
                            subscriptions,
                            restored,
                            "Redis lost its data; restored memberships from live subscriptions"
                        );
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(
                            code = %err.code,
                            attempt,
                            users = memberships.len(),
                            "restoring memberships after Redis lost its data failed"
                        );
                        // Joins are idempotent: try again once Redis answers.
                        chat.backend_recovered().await;
                    }
                }
            }
        }
    })
}

fn quota(rate: Rate) -> RateQuota {
    RateQuota {
        count: rate.count,
        period: rate.period,
    }
}

/// The engine settings that follow from the configuration.
pub fn engine_config(config: &Config) -> IoConfig {
    let engine = EngineConfig {
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload_bytes,
        max_queued_packets: config.max_queued_packets,
        connection_rate_per_ip: config
            .connection_rate_per_ip
            .map(|rate| ConnectionRateLimit {
                count: rate.count,
                period: rate.period,
            }),
        polling: !config.websocket_only,
        allowed_origins: match &config.frontend_origins {
            Some(origins) => AllowedOrigins::List(origins.clone()),
            None => AllowedOrigins::Any,
        },
        ..EngineConfig::default()
    };
    IoConfig {
        engine,
        connect_timeout: config.connect_timeout,
    }
}

/// How much history channels keep, from `HISTORY_SIZE` and `HISTORY_TTL_MS`.
pub fn history_policy(config: &Config) -> HistoryPolicy {
    HistoryPolicy {
        size: config.history_size,
        ttl_ms: u64::try_from(config.history_ttl.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The domain limits that follow from the configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_message_length: config.max_message_length,
        max_connections_per_user: config.max_connections_per_user,
        max_channels_per_user: config.max_channels_per_user,
        rate_limits: RatePolicy {
            default: quota(config.rate_limits.default),
            per_event: config
                .rate_limits
                .per_event
                .iter()
                .map(|(event, rate)| (event.clone(), quota(*rate)))
                .collect(),
        },
    }
}

/// A running chatgate server.
pub struct Server {
    io: Io,
    state: AppState,
    /// The many-nodes parts, drained on shutdown (none in memory).
    cluster: Option<ClusterParts>,
}

/// What a node on Redis needs to drain.
#[derive(Clone)]
struct ClusterParts {
    /// Defers and then finishes the presence removals.
    backend: RedisBackend,
    /// Flushed before exit.
    adapter: Arc<ClusterAdapter>,
    /// Where offline users are announced.
    namespace: chatgate_sio::Namespace,
    /// Reads the channels of users to announce.
    chat: ChatService,
}

impl ClusterParts {
    /// Waits for the removals deferred by the drain, announces the users
    /// they took offline and flushes the announcements to Redis.
    async fn finish_drain(&self) {
        let offline = self.backend.finish_drain().await;
        let count = offline.len();
        for (user_id, last_seen) in offline {
            let presence = crate::protocol::PresenceInfo {
                user_id,
                status: crate::protocol::PresenceStatus::Offline,
                last_seen,
            };
            delivery::announce_presence_change(&self.namespace, &self.chat, presence).await;
        }
        if !self.adapter.flush(Duration::from_secs(1)).await {
            tracing::warn!("some cross-node messages were not published before exit");
        }
        tracing::info!(offline = count, "drain finished");
    }
}

impl Server {
    /// Builds the app for `config` and serves it on `listener` until
    /// `shutdown` resolves; then drains (closes every connection so clients
    /// reconnect elsewhere, within `SHUTDOWN_TIMEOUT_MS`) and returns.
    pub async fn run(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shutdown_timeout = config.shutdown_timeout;
        let (server, router) = Self::build(&config)?;
        let io = server.io.clone();
        let accepting = server.state.accepting.clone();
        let cluster = server.cluster.clone();
        let drain_grace = config.drain_grace;
        // Tells the exit watchdog below that the drain started.
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let drain = async move {
            shutdown.await;
            let _ = draining_tx.send(());
            let until = tokio::time::Instant::now() + shutdown_timeout;
            tracing::info!("shutting down: closing connections so clients reconnect elsewhere");
            accepting.store(false, Ordering::SeqCst);
            if let Some(cluster) = &cluster {
                // Presence stays for the grace period: clients that reconnect
                // to another node meanwhile never look offline.
                cluster.backend.begin_drain(drain_grace);
            }
            io.shutdown(shutdown_timeout).await;
            if let Some(cluster) = &cluster
                && tokio::time::timeout_at(until, cluster.finish_drain())
                    .await
                    .is_err()
            {
                tracing::warn!(
                    "presence removals outlived the shutdown timeout; other nodes sweep the rest"
                );
            }
        };
        let listener = listener.tap_io(|tcp| {
            // Chat packets are small: send them now, not after Nagle's delay.
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "TCP_NODELAY not set");
            }
        });
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(drain);
        // Polling requests still open when the drain ends must not hold the
        // exit. The clock starts with the drain, not with the server.
        let exit_deadline = async move {
            if draining_rx.await.is_ok() {
                tokio::time::sleep(shutdown_timeout + Duration::from_secs(1)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = served.into_future() => result,
            () = exit_deadline => {
                tracing::warn!("some HTTP connections outlived the shutdown timeout");
                Ok(())
            }
        }
    }

    /// Starts a server on `listener` in a background task; for tests and
    /// embedding. Returns the handle and the task.
    pub fn spawn(
        config: Config,
        listener: TcpListener,
    ) -> std::io::Result<(RunningServer, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(Self::run(config, listener, async move {
            let _ = stop_rx.await;
        }));
        Ok((
            RunningServer {
                addr,
                stop: Some(stop_tx),
            },
            task,
        ))
    }

    fn build(config: &Config) -> std::io::Result<(Server, Router)> {
        let io = Io::new(engine_config(config));
        // Random per process: a restarted node is a new node to the others.
        let node_id = chatgate_sio::random_id();
        let (backends, redis_node) = backends(config, &node_id)?;
        let chat = ChatService::new(backends.clone(), limits(config), node_id)
            .with_history(history_policy(config))
            .with_recovery(config.recovery_window);
        let chat = match &redis_node {
            // One process: it keeps the order of its messages itself.
            None => chat.with_local_order(),
            // Many: Redis assigns, stores and publishes each message in one
            // step, so every node delivers all of them in id order.
            Some(node) => chat.with_publish_format(delivery::publish_format(node.adapter.clone())),
        };
        let gateway = Gateway::new(chat.clone(), Authenticator::new(&config.auth));
        let (namespace, cluster) = match redis_node {
            None => (io.add_namespace("/", gateway), None),
            Some(node) => {
                node.adapter
                    .set_gap_filler(delivery::gap_filler(chat.clone()));
                let namespace = io.add_namespace_with_adapter("/", gateway, node.adapter.clone());
                delivery::spawn_presence_announcer(node.changes, namespace.clone(), chat.clone());
                spawn_membership_restorer(node.data_lost, namespace.clone(), chat.clone());
                let parts = ClusterParts {
                    backend: node.backend,
                    adapter: node.adapter,
                    namespace: namespace.clone(),
                    chat: chat.clone(),
                };
                (namespace, Some(parts))
            }
        };
        crate::gateway::spawn_session_refresher(namespace.clone(), chat.clone());
        let state = AppState {
            accepting: Arc::new(AtomicBool::new(true)),
            backends,
        };
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(state.clone())
            // The engine refuses foreign origins (403) silently: say which.
            .merge(io.router().layer(axum::middleware::from_fn(
                crate::gateway::log_refused_origin,
            )))
            // Server API, /metrics, /status and the demo page (installs the metrics recorder).
            .merge(crate::api::routes(config, &io, namespace, chat));
        Ok((Server { io, state, cluster }, router))
    }
}

/// A server started with [`Server::spawn`]; dropping it stops the server.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the graceful shutdown.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET /healthz`: the process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: ready to take connections (backends reachable, not draining).
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !state.accepting.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if !state.backends.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "backends unreachable")
    } else {
        (StatusCode::OK, "ready")
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
