//! The connection to Redis (one server or a cluster), how its errors map to
//! [`BackendError`], and batching of independent commands.
//!
//! A standalone Redis is reached through a lazy [`ConnectionManager`]: it
//! connects on first use and reconnects by itself after an I/O error. A
//! cluster connection is opened by the health task (it must reach a node to
//! learn the slot map) and then follows the cluster by itself. Until either
//! exists, calls fail with [`BackendError::Unavailable`]: Redis trouble is
//! never a crash.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

use crate::backend::{BackendError, BackendResult};
use crate::config::RedisSettings;

/// What the connection is made from.
#[allow(
    clippy::large_enum_variant,
    reason = "one per node, never moved around"
)]
enum Source {
    /// One Redis server (or a proxy in front of many).
    Single(redis::Client),
    /// A Redis Cluster, found from its seed node.
    Cluster(redis::cluster::ClusterClient),
}

/// An open connection, cheap to clone (both kinds multiplex one socket per node).
#[derive(Clone)]
pub(super) struct Link {
    /// The connection itself.
    kind: LinkKind,
    /// Counts requests sent to Redis (a pipeline is one), for the round-trip
    /// measurements in the tests and docs.
    requests: Arc<AtomicU64>,
}

#[derive(Clone)]
enum LinkKind {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Metric: seconds each request to Redis took (a pipeline is one request).
const REQUEST_DURATION_METRIC: &str = "chatgate_redis_request_duration_seconds";

/// Metric: requests to Redis that failed (I/O, timeout, or an error reply).
const REQUEST_ERRORS_METRIC: &str = "chatgate_redis_request_errors_total";

/// Runs one request, recording its round-trip time and whether it failed.
fn timed<'a, T: Send + 'a>(request: RedisFuture<'a, T>) -> RedisFuture<'a, T> {
    Box::pin(async move {
        let started = std::time::Instant::now();
        let result = request.await;
        metrics::histogram!(REQUEST_DURATION_METRIC).record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(REQUEST_ERRORS_METRIC).increment(1);
        }
        result
    })
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        timed(match &mut self.kind {
            LinkKind::Single(conn) => conn.req_packed_command(cmd),
            LinkKind::Cluster(conn) => conn.req_packed_command(cmd),
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        timed(match &mut self.kind {
            LinkKind::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            LinkKind::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        })
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            LinkKind::Single(conn) => conn.get_db(),
            LinkKind::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Link {
    /// Runs independent commands in one round trip: one pipeline on a single
    /// server; on a cluster (where a pipeline must stay in one slot) all of
    /// them at once over the multiplexed node connections. Results come in
    /// the order of `cmds`; no commands, no request.
    pub(super) async fn batch(&self, cmds: Vec<Cmd>) -> BackendResult<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match &self.kind {
            LinkKind::Single(_) => {
                let mut pipeline = redis::pipe();
                for cmd in cmds {
                    pipeline.add_command(cmd);
                }
                let mut link = self.clone();
                pipeline
                    .query_async::<Vec<Value>>(&mut link)
                    .await
                    .map_err(backend_error)
            }
            LinkKind::Cluster(_) => {
                let calls = cmds.into_iter().map(|cmd| {
                    let mut link = self.clone();
                    async move { cmd.query_async::<Value>(&mut link).await }
                });
                futures_util::future::join_all(calls)
                    .await
                    .into_iter()
                    .map(|result| result.map_err(backend_error))
                    .collect()
            }
        }
    }

    /// Runs one command.
    pub(super) async fn query<T: redis::FromRedisValue>(&self, cmd: Cmd) -> BackendResult<T> {
        let mut link = self.clone();
        cmd.query_async::<T>(&mut link).await.map_err(backend_error)
    }
}

/// Timeouts and retries of the Redis client.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// How long one connection attempt may take.
    pub(super) connect: Duration,
    /// How long Redis may take to answer one request.
    pub(super) response: Duration,
}

/// Holds the configured client and, once made, the connection.
pub(super) struct Connector {
    /// What to connect to.
    source: Source,
    /// The connection, once made. Cloned out, never held across an `.await`.
    link: RwLock<Option<Link>>,
    /// Timeouts and retries.
    timeouts: Timeouts,
    /// Shared with every [`Link`]: requests sent so far.
    requests: Arc<AtomicU64>,
}

/// A Redis setting that cannot work (bad URL, bad certificate): a startup
/// error, unlike an unreachable Redis.
#[derive(Debug, thiserror::Error)]
#[error("Redis settings are unusable: {0}")]
pub struct RedisSetupError(pub(super) String);

impl Connector {
    /// Prepares the client for `settings`; connects nothing yet.
    pub(super) fn new(
        settings: &RedisSettings,
        root_ca_pem: Option<&[u8]>,
        timeouts: Timeouts,
    ) -> Result<Connector, RedisSetupError> {
        if settings.tls {
            // rustls needs a process-wide crypto provider; chatgate builds
            // rustls with `ring` only. Installing twice is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        // Error texts from the client could echo the URL: never include them.
        let certificates = |pem: &[u8]| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        };
        let url = settings.url.expose().as_str();
        let source = if settings.cluster {
            let mut builder = redis::cluster::ClusterClient::builder([url])
                .connection_timeout(timeouts.connect)
                .response_timeout(timeouts.response)
                .retries(2);
            if let (true, Some(pem)) = (settings.tls, root_ca_pem) {
                builder = builder.certs(certificates(pem));
            }
            Source::Cluster(builder.build().map_err(|err| {
                RedisSetupError(format!("{} ({:?})", settings.redacted_url(), err.kind()))
            })?)
        } else {
            let client = match (settings.tls, root_ca_pem) {
                (true, Some(pem)) => redis::Client::build_with_tls(url, certificates(pem)),
                _ => redis::Client::open(url),
            };
            Source::Single(client.map_err(|err| {
                RedisSetupError(format!("{} ({:?})", settings.redacted_url(), err.kind()))
            })?)
        };
        Ok(Connector {
            source,
            link: RwLock::new(None),
            timeouts,
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Requests sent to Redis so far (a pipeline counts once).
    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The connection, made now if it can be made without waiting (a lazy
    /// standalone manager); `Unavailable` while a cluster is not reached yet.
    pub(super) fn link(&self) -> BackendResult<Link> {
        if let Some(link) = self.link.read().clone() {
            return Ok(link);
        }
        match &self.source {
            Source::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeouts.connect))
                    .set_response_timeout(Some(self.timeouts.response))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map_err(backend_error)?;
                let mut slot = self.link.write();
                Ok(slot
                    .get_or_insert_with(|| Link {
                        kind: LinkKind::Single(manager),
                        requests: self.requests.clone(),
                    })
                    .clone())
            }
            Source::Cluster(_) => Err(BackendError::Unavailable(
                "not connected to the Redis cluster yet".into(),
            )),
        }
    }

    /// Makes sure a connection exists, opening the cluster connection if
    /// needed (called by the health task, which retries).
    pub(super) async fn ensure_link(&self) -> BackendResult<Link> {
        if let Ok(link) = self.link() {
            return Ok(link);
        }
        let Source::Cluster(client) = &self.source else {
            return self.link();
        };
        let connection = tokio::time::timeout(
            self.timeouts.connect + self.timeouts.response,
            client.get_async_connection(),
        )
        .await
        .map_err(|_| BackendError::Unavailable("connecting to the Redis cluster timed out".into()))?
        .map_err(backend_error)?;
        let mut slot = self.link.write();
        Ok(slot
            .get_or_insert_with(|| Link {
                kind: LinkKind::Cluster(connection),
                requests: self.requests.clone(),
            })
            .clone())
    }
}

/// Maps a Redis client error: trouble reaching or using Redis (network,
/// timeouts, restarts, failovers, cluster redirections, authentication) is
/// `Unavailable`, anything else (a wrong reply, a script error) is
/// `Internal`. The text never holds the URL.
pub(super) fn backend_error(err: RedisError) -> BackendError {
    let temporary = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            ErrorKind::AuthenticationFailed | ErrorKind::ClusterConnectionNotFound
        )
        || matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "LOADING"))
        // A pipeline's errors: the first one gives `kind()`, any may be a
        // redirection.
        || err
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, error)| error.kind().is_some_and(temporary_server_error)));
    if temporary {
        BackendError::Unavailable(format!("redis: {err}"))
    } else {
        BackendError::Internal(format!("redis: {err}"))
    }
}

/// Whether a server error reply says "not now" rather than "never": a
/// cluster redirection the client did not follow in its retries (`MOVED`,
/// `ASK`), a cluster in a failover (`TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`,
/// `READONLY` from a demoted master), or a server still loading its data.
/// These are the kinds redis-rs itself retries (`RetryMethod` other than
/// `NoRetry`).
fn temporary_server_error(kind: ServerErrorKind) -> bool {
    matches!(
        kind,
        ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::BusyLoading
    )
}

/// A reply of unexpected shape.
pub(super) fn unexpected(what: &str, value: &impl std::fmt::Debug) -> BackendError {
    BackendError::Internal(format!("redis: unexpected reply to {what}: {value:?}"))
}

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, RedisError, Value};

    use super::*;

    /// A server error reply as redis-rs parses it off the wire.
    fn reply(line: &str) -> RedisError {
        let mut parser = redis::Parser::new();
        match parser.parse_value(format!("-{line}\r\n").as_bytes()) {
            Ok(Value::ServerError(error)) => error.into(),
            other => panic!("not a server error: {other:?}"),
        }
    }

    fn unavailable(err: RedisError) -> bool {
        matches!(backend_error(err), BackendError::Unavailable(_))
    }

    /// Redirections and failover replies of a Redis Cluster are temporary:
    /// `SERVICE_UNAVAILABLE`, never `INTERNAL_ERROR`.
    #[test]
    fn cluster_redirections_and_failovers_are_unavailable() {
        for line in [
            "MOVED 3999 127.0.0.1:6381",
            "ASK 3999 127.0.0.1:6381",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "MASTERDOWN Link with MASTER is down",
            "READONLY You can't write against a read only replica.",
            "LOADING Redis is loading the dataset in memory",
            "NOAUTH Authentication required.",
        ] {
            assert!(unavailable(reply(line)), "{line}");
        }
    }

    #[test]
    fn io_failures_are_unavailable() {
        for kind in [
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::TimedOut,
        ] {
            assert!(unavailable(std::io::Error::from(kind).into()), "{kind:?}");
        }
        assert!(unavailable(RedisError::from((
            ErrorKind::ClusterConnectionNotFound,
            "no connection"
        ))));
    }

    /// Mistakes stay `INTERNAL_ERROR`: retrying would not help.
    #[test]
    fn mistakes_are_internal() {
        for line in [
            "ERR wrong number of arguments for 'get' command",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "CROSSSLOT Keys in request don't hash to the same slot",
            "NOSCRIPT No matching script.",
        ] {
            assert!(!unavailable(reply(line)), "{line}");
        }
        assert!(!unavailable(RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not an integer"
        ))));
    }
}
