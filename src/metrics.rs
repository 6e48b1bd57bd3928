//! Prometheus metrics: the list of every metric chatgate exports, the
//! recorder, and reading counters back from rendered text. No HTTP here:
//! `GET /metrics` is served by [`crate::api::metrics`], with the other HTTP
//! surfaces, so that everything may record metrics without importing them.
//!
//! Metrics are recorded through the `metrics` crate facade everywhere (the
//! engine, the gateway, the API) and rendered in the Prometheus text format
//! by `metrics-exporter-prometheus`, without its own HTTP listener: chatgate
//! serves `/metrics` on its main port. The recorder is process-global and
//! installed once, by the first server built in the process; later servers
//! (tests start many in one process) share its handle. Gauges that describe
//! current state (users online, channels with subscribers, sockets) are
//! computed when `/metrics` is scraped rather than tracked on the hot path.
//!
//! [`METRICS`] lists every metric; `docs/metrics.md` documents the same list
//! and a test keeps the two in step.

use std::sync::{LazyLock, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The kind of a metric, as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; rendered with the `_total` suffix in its name.
    Counter,
    /// A current value.
    Gauge,
    /// A distribution in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// `counter`, `gauge` or `histogram`, as in a `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric chatgate exports.
#[derive(Debug, Clone, Copy)]
pub struct MetricInfo {
    /// The full metric name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its label names (each with a bounded set of values).
    pub labels: &'static [&'static str],
    /// What it measures (the `# HELP` text).
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        help,
    }
}

/// `chatgate_nodes`: chatgate nodes alive, counted from their heartbeats in Redis (1 on memory).
pub const NODES: &str = "chatgate_nodes";
/// `chatgate_users_online`: users with at least one connection, cluster-wide.
pub const USERS_ONLINE: &str = "chatgate_users_online";
/// `chatgate_sockets`: confirmed Socket.IO connections on this node.
pub const SOCKETS: &str = "chatgate_sockets";
/// `chatgate_channels_with_subscribers`: channels with a subscribed connection on this node.
pub const CHANNELS_WITH_SUBSCRIBERS: &str = "chatgate_channels_with_subscribers";
/// `chatgate_build_info{version}`: always 1; carries the version as a label.
pub const BUILD_INFO: &str = "chatgate_build_info";
/// `chatgate_api_requests_total{route,method,status}`: server API calls.
pub const API_REQUESTS: &str = "chatgate_api_requests_total";
/// `chatgate_api_request_duration_seconds{route}`: server API call durations.
pub const API_REQUEST_DURATION: &str = "chatgate_api_request_duration_seconds";
/// `chatgate_api_messages_published_total`: messages published through the server API.
pub const API_MESSAGES_PUBLISHED: &str = "chatgate_api_messages_published_total";

/// Every metric chatgate exports: the engine's, the gateway's and the
/// operator surface's. `docs/metrics.md` lists the same names.
pub const METRICS: &[MetricInfo] = &[
    // Engine (chatgate-engine).
    metric(
        "chatgate_engine_connections",
        Kind::Gauge,
        &[],
        "Engine.IO connections open on this node",
    ),
    metric(
        "chatgate_engine_connections_opened_total",
        Kind::Counter,
        &[],
        "Engine.IO connections opened on this node",
    ),
    metric(
        "chatgate_engine_connections_closed_total",
        Kind::Counter,
        &["reason"],
        "Engine.IO connections closed on this node, by reason",
    ),
    metric(
        "chatgate_engine_slow_consumer_disconnects_total",
        Kind::Counter,
        &[],
        "Connections closed because their outbound queue was full",
    ),
    metric(
        "chatgate_engine_packets_sent_total",
        Kind::Counter,
        &[],
        "Packets queued to clients (deliveries, acks, pings)",
    ),
    // Gateway.
    metric(
        "chatgate_events_total",
        Kind::Counter,
        &["event", "outcome"],
        "Client events handled, by event and outcome (ok or the error code)",
    ),
    metric(
        "chatgate_messages_total",
        Kind::Counter,
        &[],
        "Messages sent by clients and delivered to their channel",
    ),
    metric(
        "chatgate_handshakes_refused_total",
        Kind::Counter,
        &["code"],
        "Refused handshakes, by error code",
    ),
    metric(
        "chatgate_handshakes_held_total",
        Kind::Counter,
        &[],
        "Handshake attempts that met an unreachable backend and were held, waiting for it",
    ),
    metric(
        "chatgate_handshakes_closed_total",
        Kind::Counter,
        &[],
        "Held handshakes whose transport was closed (backend still unreachable) so the client retries",
    ),
    // Computed when scraped.
    metric(
        NODES,
        Kind::Gauge,
        &[],
        "chatgate nodes alive (1 until nodes share state through Redis)",
    ),
    metric(
        USERS_ONLINE,
        Kind::Gauge,
        &[],
        "Users with at least one connection, cluster-wide",
    ),
    metric(
        SOCKETS,
        Kind::Gauge,
        &[],
        "Confirmed Socket.IO connections on this node",
    ),
    metric(
        CHANNELS_WITH_SUBSCRIBERS,
        Kind::Gauge,
        &[],
        "Channels with at least one subscribed connection on this node",
    ),
    metric(
        BUILD_INFO,
        Kind::Gauge,
        &["version"],
        "Always 1; the version label names the running build",
    ),
    // Server HTTP API.
    metric(
        API_REQUESTS,
        Kind::Counter,
        &["route", "method", "status"],
        "Server API calls, by route template, method and HTTP status",
    ),
    metric(
        API_REQUEST_DURATION,
        Kind::Histogram,
        &["route"],
        "Server API call durations in seconds, by route template",
    ),
    metric(
        API_MESSAGES_PUBLISHED,
        Kind::Counter,
        &[],
        "Messages published into channels through the server API",
    ),
    // Deliveries (chatgate-engine).
    metric(
        "chatgate_engine_broadcast_deliveries_total",
        Kind::Counter,
        &[],
        "Packets of broadcasts (messages, presence, typing, membership events) queued to recipient connections",
    ),
    metric(
        "chatgate_engine_delivery_latency_seconds",
        Kind::Histogram,
        &[],
        "Seconds a batch of packets waited in its connection's outbound queue before a writer took it",
    ),
    // Redis backend.
    metric(
        "chatgate_redis_request_duration_seconds",
        Kind::Histogram,
        &[],
        "Round-trip seconds of each request to Redis (a pipeline is one request)",
    ),
    metric(
        "chatgate_redis_request_errors_total",
        Kind::Counter,
        &[],
        "Requests to Redis that failed (I/O, timeout, error reply)",
    ),
    // Cluster (src/cluster): cross-node pub/sub through Redis.
    metric(
        "chatgate_cluster_published_total",
        Kind::Counter,
        &[],
        "Cross-node messages (broadcasts, membership changes, disconnects) published to Redis",
    ),
    metric(
        "chatgate_cluster_publish_dropped_total",
        Kind::Counter,
        &[],
        "Cross-node messages dropped: publish queue full or Redis unreachable",
    ),
    metric(
        "chatgate_cluster_gaps_total",
        Kind::Counter,
        &[],
        "Gaps in the ordered messages a node received, filled from history",
    ),
    metric(
        "chatgate_sessions_recovered_total",
        Kind::Counter,
        &[],
        "Connections that continued their session (Socket.IO connection state recovery)",
    ),
];

/// Histogram buckets of every `*_seconds` metric: 0.5 ms to 10 s.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_threads`...), under the
/// standard Prometheus names that process dashboards expect, so unprefixed.
static PROCESS: LazyLock<metrics_process::Collector> =
    LazyLock::new(metrics_process::Collector::default);

/// Reads the process metrics (CPU, memory, open files, threads) into the
/// recorder; called when `/metrics` is scraped.
pub fn collect_process_metrics() {
    PROCESS.collect();
}

/// Installs the Prometheus recorder as the process's `metrics` recorder, once;
/// later calls return the same handle.
///
/// When another recorder was installed first (an embedding app, a test), the
/// handle renders an empty registry and a warning is logged: chatgate never
/// replaces someone else's recorder.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
        {
            Ok(builder) => builder,
            Err(err) => {
                tracing::warn!(%err, "histogram buckets not set");
                PrometheusBuilder::new()
            }
        };
        match builder.install_recorder() {
            Ok(handle) => {
                describe_all();
                PROCESS.describe();
                handle
            }
            Err(err) => {
                tracing::warn!(%err, "a metrics recorder is already installed: /metrics stays empty");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// Registers the help text of every metric, and the unlabelled counters at 0
/// so that they appear (and `rate()` works) before their first event.
fn describe_all() {
    for info in METRICS {
        match info.kind {
            Kind::Counter => {
                metrics::describe_counter!(info.name, info.help);
                if info.labels.is_empty() {
                    metrics::counter!(info.name).increment(0);
                }
            }
            Kind::Gauge => metrics::describe_gauge!(info.name, info.help),
            Kind::Histogram => metrics::describe_histogram!(info.name, info.help),
        }
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Sums a counter in rendered Prometheus text, grouped by the value of
/// `label` (`""` when the series has no such label).
pub fn counter_by_label(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(inner) => match inner.split_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let key = label_value(labels, label).unwrap_or_default();
        match sums.iter_mut().find(|(k, _)| *k == key) {
            Some((_, sum)) => *sum += value,
            None => sums.push((key, value)),
        }
    }
    sums
}

/// The value of `label` in a Prometheus label list (`a="x",b="y"`).
fn label_value(labels: &str, label: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(match escaped {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = Some(at);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end?;
        if name.trim_start_matches(',').trim() == label {
            return Some(value);
        }
        rest = after.get(end + 1..)?.trim_start_matches(',');
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for info in METRICS {
            assert!(info.name.starts_with("chatgate_"), "{}", info.name);
            assert_eq!(
                info.kind == Kind::Counter,
                info.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                info.name
            );
        }
    }

    #[test]
    fn counters_are_summed_by_label() {
        let text = "# TYPE chatgate_events_total counter\n\
            chatgate_events_total{event=\"message:send\",outcome=\"ok\"} 3\n\
            chatgate_events_total{event=\"message:send\",outcome=\"RATE_LIMITED\"} 2\n\
            chatgate_events_total{outcome=\"ok\",event=\"typing\"} 1\n\
            chatgate_events_total_other 9\n\
            chatgate_messages_total 4\n";
        let by_event = counter_by_label(text, "chatgate_events_total", "event");
        assert_eq!(
            by_event,
            [("message:send".to_owned(), 5.0), ("typing".to_owned(), 1.0)]
        );
        let by_outcome = counter_by_label(text, "chatgate_events_total", "outcome");
        assert_eq!(
            by_outcome,
            [("ok".to_owned(), 4.0), ("RATE_LIMITED".to_owned(), 2.0)]
        );
        assert_eq!(
            counter_by_label(text, "chatgate_messages_total", "x"),
            [(String::new(), 4.0)]
        );
        assert_eq!(label_value(r#"a="x\"y",b="z""#, "b").as_deref(), Some("z"));
        assert_eq!(
            label_value(r#"a="x\"y",b="z""#, "a").as_deref(),
            Some("x\"y")
        );
    }
}
