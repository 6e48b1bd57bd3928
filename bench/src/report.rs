//! Markdown report of a bench invocation.

use std::fmt::Write as _;

use crate::chaos::ChaosResult;
use crate::scenarios::{IdleResult, TrafficResult};

/// Result of one scenario against one server.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// `idle` finished.
    Idle(IdleResult),
    /// `fanout` finished.
    Fanout(TrafficResult),
    /// `rooms` finished.
    Rooms(TrafficResult),
    /// `cluster` finished.
    Cluster(TrafficResult),
    /// `chaos` finished.
    Chaos(Box<ChaosResult>),
    /// The scenario could not run (server did not start, ...).
    Failed(String),
}

/// One row of the report.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Scenario name.
    pub(crate) scenario: &'static str,
    /// Server label (`chatgate`, `node`, or the URL).
    pub(crate) server: String,
    /// What happened.
    pub(crate) outcome: Outcome,
}

/// Context printed above the tables.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// Command line.
    pub(crate) command: String,
    /// UTC date and time.
    pub(crate) date: String,
    /// `nproc --all`.
    pub(crate) cpus: String,
    /// CPU model name.
    pub(crate) model: String,
    /// How processes were pinned.
    pub(crate) pinning: String,
    /// `/proc/loadavg` when the run started (other load skews latencies).
    pub(crate) loadavg: String,
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn ratio(node: Option<f64>, chatgate: Option<f64>) -> String {
    match (node, chatgate) {
        (Some(n), Some(c)) if c.abs() > f64::EPSILON => format!("{:.1}x", n / c),
        _ => "n/a".into(),
    }
}

fn find<'a>(runs: &'a [Run], scenario: &str, server: &str) -> Option<&'a Outcome> {
    runs.iter()
        .find(|r| r.scenario == scenario && r.server == server)
        .map(|r| &r.outcome)
}

fn traffic_of<'a>(runs: &'a [Run], scenario: &str, server: &str) -> Option<&'a TrafficResult> {
    match find(runs, scenario, server)? {
        Outcome::Fanout(t) | Outcome::Rooms(t) | Outcome::Cluster(t) => Some(t),
        _ => None,
    }
}

fn idle_of<'a>(runs: &'a [Run], server: &str) -> Option<&'a IdleResult> {
    match find(runs, "idle", server)? {
        Outcome::Idle(i) => Some(i),
        _ => None,
    }
}

/// Renders the whole report.
pub(crate) fn render(header: &Header, runs: &[Run]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# chatgate-bench report\n");
    let _ = writeln!(s, "- date (UTC): {}", header.date);
    let _ = writeln!(s, "- command: `{}`", header.command);
    let _ = writeln!(s, "- machine: {} CPUs, {}", header.cpus, header.model);
    let _ = writeln!(s, "- pinning: {}", header.pinning);
    let _ = writeln!(s, "- load average at start: {}\n", header.loadavg);

    let idle: Vec<&Run> = runs.iter().filter(|r| r.scenario == "idle").collect();
    if !idle.is_empty() {
        let _ = writeln!(
            s,
            "## idle: connected, Socket.IO-handshaken, silent connections\n"
        );
        let _ = writeln!(
            s,
            "| server | connections | failed | setup s | RSS before MiB | RSS after MiB | RSS/conn KiB |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for r in &idle {
            match &r.outcome {
                Outcome::Idle(i) => {
                    let _ = writeln!(
                        s,
                        "| {} | {}/{} | {} | {:.1} | {} | {} | {} |",
                        r.server,
                        i.connected,
                        i.requested,
                        i.requested - i.connected,
                        i.setup.as_secs_f64(),
                        opt(i.rss_before_kib.map(|k| k as f64 / 1024.0), 1),
                        opt(i.rss_after_kib.map(|k| k as f64 / 1024.0), 1),
                        opt(i.rss_per_conn_kib(), 2),
                    );
                }
                Outcome::Failed(e) => {
                    let _ = writeln!(s, "| {} | FAILED: {} | | | | | |", r.server, one_line(e));
                }
                _ => {}
            }
        }
        if let (Some(n), Some(c)) = (idle_of(runs, "node"), idle_of(runs, "chatgate")) {
            let _ = writeln!(
                s,
                "| **node/chatgate** | | | | | | **{}** |",
                ratio(n.rss_per_conn_kib(), c.rss_per_conn_kib())
            );
        }
        failure_notes(&mut s, &idle);
        s.push('\n');
    }

    for (scenario, title) in [
        ("fanout", "fanout: one sender, one room of N receivers"),
        ("rooms", "rooms: every client sends, rooms of K"),
    ] {
        let rows: Vec<&Run> = runs.iter().filter(|r| r.scenario == scenario).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "## {title}\n");
        let _ = writeln!(
            s,
            "| server | clients | rooms | sent | delivered | missing | dup | errors | disc. | deliveries/s | p50 ms | p99 ms | max ms | acked | ack err | ack timeouts | ack p50 ms | ack p99 ms | server CPU % | CPU/delivery us | of which user us | gen CPU % | max send lag ms | srv runq wait % | gen runq wait % |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &rows {
            match &r.outcome {
                Outcome::Fanout(t) | Outcome::Rooms(t) => {
                    let _ = writeln!(
                        s,
                        "| {} | {}/{} | {} | {} | {}/{} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
                        r.server,
                        t.connected,
                        t.clients,
                        t.rooms,
                        t.sent,
                        t.delivered,
                        t.expected,
                        t.missing(),
                        t.duplicates,
                        t.error_events,
                        t.disconnects,
                        t.deliveries_per_sec(),
                        ms(t.latency_us[0]),
                        ms(t.latency_us[1]),
                        ms(t.latency_us[2]),
                        t.acked,
                        t.sent,
                        t.ack_errors,
                        t.ack_timeouts,
                        ms(t.ack_latency_us[0]),
                        ms(t.ack_latency_us[1]),
                        opt(t.server_cpu_pct(), 0),
                        opt(t.cpu_per_delivery_us(), 3),
                        opt(t.user_cpu_per_delivery_us(), 3),
                        opt(t.generator_cpu_pct(), 0),
                        t.max_send_lag.as_secs_f64() * 1000.0,
                        opt(t.server_wait_pct(), 0),
                        opt(t.generator_wait_pct(), 0),
                    );
                }
                Outcome::Failed(e) => {
                    let _ = writeln!(
                        s,
                        "| {} | FAILED: {} |{}",
                        r.server,
                        one_line(e),
                        " |".repeat(23)
                    );
                }
                Outcome::Idle(_) | Outcome::Cluster(_) | Outcome::Chaos(_) => {}
            }
        }
        if let (Some(n), Some(c)) = (
            traffic_of(runs, scenario, "node"),
            traffic_of(runs, scenario, "chatgate"),
        ) {
            let _ = writeln!(
                s,
                "| **node/chatgate** | | | | | | | | | {} | {} | **{}** | {} | | | | {} | **{}** | {} | **{}** | {} | | | | |",
                ratio(Some(n.deliveries_per_sec()), Some(c.deliveries_per_sec())),
                ratio(Some(n.latency_us[0] as f64), Some(c.latency_us[0] as f64)),
                ratio(Some(n.latency_us[1] as f64), Some(c.latency_us[1] as f64)),
                ratio(Some(n.latency_us[2] as f64), Some(c.latency_us[2] as f64)),
                ratio(
                    Some(n.ack_latency_us[0] as f64),
                    Some(c.ack_latency_us[0] as f64)
                ),
                ratio(
                    Some(n.ack_latency_us[1] as f64),
                    Some(c.ack_latency_us[1] as f64)
                ),
                ratio(n.server_cpu_pct(), c.server_cpu_pct()),
                ratio(n.cpu_per_delivery_us(), c.cpu_per_delivery_us()),
                ratio(n.user_cpu_per_delivery_us(), c.user_cpu_per_delivery_us()),
            );
        }
        if scenario == "fanout" {
            pacing_note(&mut s, &rows);
        }
        failure_notes(&mut s, &rows);
        s.push('\n');
    }
    cluster_section(&mut s, runs);
    chaos_section(&mut s, runs);
    s
}

/// `name=count, ...` of a map, or `none`.
fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `chaos` table (one row per Redis topology) and, per run, the fault
/// timeline and the details behind the numbers.
fn chaos_section(s: &mut String, runs: &[Run]) {
    let rows: Vec<&Run> = runs.iter().filter(|r| r.scenario == "chaos").collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## chaos: messages lost under faults (cuts, kill -9 of a node, Redis restart)\n"
    );
    let _ = writeln!(
        s,
        "| Redis | fallback | nodes | clients | channels | sent | acked | send errors | unacked (conn. lost) | owed | received | **lost** | clients with losses | dup | dup after kill | reconnects | recovered | via replay | via missed | gaps | reconnect p50 ms | p99 ms | max ms | cuts reset/silent |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &rows {
        match &r.outcome {
            Outcome::Chaos(c) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
                    c.topology,
                    if c.since_fallback { "since" } else { "none" },
                    c.nodes,
                    c.members,
                    c.clients,
                    c.channels,
                    c.sent,
                    c.acked,
                    c.ack_errors.values().sum::<u64>(),
                    c.unacked_lost,
                    c.owed,
                    c.received,
                    c.lost,
                    c.lost_clients,
                    c.duplicates,
                    c.duplicates_after_kill,
                    c.reconnects,
                    c.recovered,
                    c.via_replay,
                    c.via_missed,
                    c.gaps,
                    c.reconnect_ms[0],
                    c.reconnect_ms[1],
                    c.reconnect_ms[2],
                    c.cuts.0,
                    c.cuts.1,
                );
            }
            Outcome::Failed(e) => {
                let _ = writeln!(
                    s,
                    "| {} | FAILED: {} |{}",
                    r.server,
                    one_line(e),
                    " |".repeat(22)
                );
            }
            _ => {}
        }
    }
    for r in &rows {
        let Outcome::Chaos(c) = &r.outcome else {
            continue;
        };
        let _ = writeln!(
            s,
            "\n**{}** (seed {}, fallback after an unrecovered session: {}, {:.0} s of sends, settled {:.1} s):\n",
            c.topology,
            c.seed,
            if c.since_fallback {
                "re-join with since"
            } else {
                "none (recovery only)"
            },
            c.duration.as_secs_f64(),
            c.settle.as_secs_f64()
        );
        for event in &c.timeline {
            let _ = writeln!(s, "- {event}");
        }
        let _ = writeln!(s, "- send errors by code: {}", counts(&c.ack_errors));
        let _ = writeln!(
            s,
            "- acks timed out: {}; sends skipped while offline: {}; deliveries of unacknowledged sends: {}",
            c.ack_timeouts, c.skipped_offline, c.unacked_delivered
        );
        let _ = writeln!(
            s,
            "- reconnects offering a pid: {}/{}; recovered: {}; failed attempts: {}; balancer refusals (no live node): {}; connect_error: {}; server disconnects: {}",
            c.pid_offered,
            c.reconnects,
            c.recovered,
            c.attempt_failures,
            c.balancer_refused,
            counts(&c.connect_errors),
            c.server_disconnects
        );
        let _ = writeln!(
            s,
            "- since re-joins ok/refused: {}/{}; missedAll false for since 0 (nothing received yet in the channel; not counted as gaps): {}; copies both in missed and message:new (not duplicates): {}",
            c.rejoins.0, c.rejoins.1, c.gaps_since_zero, c.missed_overlap
        );
        let _ = writeln!(
            s,
            "- clients that got a connect_error (socket.io-client stops reconnecting after one; this client goes on): {}",
            c.connect_error_clients
        );
        let _ = writeln!(
            s,
            "- connected at the end: {}/{}; lost by clients offline at the end: {}",
            c.connected_at_end, c.members, c.lost_offline
        );
        for example in &c.lost_examples {
            let _ = writeln!(s, "- lost: {example}");
        }
        for problem in &c.problems {
            let _ = writeln!(s, "- problem: {}", one_line(problem));
        }
    }
    failure_notes(s, &rows);
    s.push('\n');
}

/// The `cluster` table: all deliveries, then the cross-node ones, then CPU of
/// the nodes (summed) and of Redis.
fn cluster_section(s: &mut String, runs: &[Run]) {
    let rows: Vec<&Run> = runs.iter().filter(|r| r.scenario == "cluster").collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## cluster: rooms spanning nodes on one Redis (client i on node i % nodes)\n"
    );
    let _ = writeln!(
        s,
        "| server | nodes | clients | rooms | sent | delivered | missing | dup | errors | disc. | deliveries/s | p50 ms | p99 ms | max ms | acked | ack err | ack timeouts | ack p50 ms | ack p99 ms | cross-node delivered | cross missing | cross deliveries/s | cross p50 ms | cross p99 ms | cross max ms | nodes CPU % | Redis CPU % | CPU/delivery us (nodes) | of which user us | CPU/delivery us (nodes + Redis) | gen CPU % | max send lag ms | srv runq wait % | gen runq wait % |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &rows {
        match &r.outcome {
            Outcome::Cluster(t) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {}/{} | {} | {} | {}/{} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {}/{} | {} | {} | {} | {} | {}/{} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
                    r.server,
                    t.nodes,
                    t.connected,
                    t.clients,
                    t.rooms,
                    t.sent,
                    t.delivered,
                    t.expected,
                    t.missing(),
                    t.duplicates,
                    t.error_events,
                    t.disconnects,
                    t.deliveries_per_sec(),
                    ms(t.latency_us[0]),
                    ms(t.latency_us[1]),
                    ms(t.latency_us[2]),
                    t.acked,
                    t.sent,
                    t.ack_errors,
                    t.ack_timeouts,
                    ms(t.ack_latency_us[0]),
                    ms(t.ack_latency_us[1]),
                    t.cross_delivered,
                    t.cross_expected,
                    t.cross_missing(),
                    t.cross_deliveries_per_sec(),
                    ms(t.cross_latency_us[0]),
                    ms(t.cross_latency_us[1]),
                    ms(t.cross_latency_us[2]),
                    opt(t.server_cpu_pct(), 0),
                    opt(t.redis_cpu_pct(), 0),
                    opt(t.cpu_per_delivery_us(), 3),
                    opt(t.user_cpu_per_delivery_us(), 3),
                    opt(t.cluster_cpu_per_delivery_us(), 3),
                    opt(t.generator_cpu_pct(), 0),
                    t.max_send_lag.as_secs_f64() * 1000.0,
                    opt(t.server_wait_pct(), 0),
                    opt(t.generator_wait_pct(), 0),
                );
            }
            Outcome::Failed(e) => {
                let _ = writeln!(
                    s,
                    "| {} | FAILED: {} |{}",
                    r.server,
                    one_line(e),
                    " |".repeat(32)
                );
            }
            _ => {}
        }
    }
    if let (Some(n), Some(c)) = (
        traffic_of(runs, "cluster", "node"),
        traffic_of(runs, "cluster", "chatgate"),
    ) {
        let _ = writeln!(
            s,
            "| **node/chatgate** | | | | | | | | | | {} | {} | **{}** | {} | | | | {} | **{}** | | | {} | {} | **{}** | {} | {} | {} | {} | {} | **{}** | | | | |",
            ratio(Some(n.deliveries_per_sec()), Some(c.deliveries_per_sec())),
            ratio(Some(n.latency_us[0] as f64), Some(c.latency_us[0] as f64)),
            ratio(Some(n.latency_us[1] as f64), Some(c.latency_us[1] as f64)),
            ratio(Some(n.latency_us[2] as f64), Some(c.latency_us[2] as f64)),
            ratio(
                Some(n.ack_latency_us[0] as f64),
                Some(c.ack_latency_us[0] as f64)
            ),
            ratio(
                Some(n.ack_latency_us[1] as f64),
                Some(c.ack_latency_us[1] as f64)
            ),
            ratio(
                Some(n.cross_deliveries_per_sec()),
                Some(c.cross_deliveries_per_sec())
            ),
            ratio(
                Some(n.cross_latency_us[0] as f64),
                Some(c.cross_latency_us[0] as f64)
            ),
            ratio(
                Some(n.cross_latency_us[1] as f64),
                Some(c.cross_latency_us[1] as f64)
            ),
            ratio(
                Some(n.cross_latency_us[2] as f64),
                Some(c.cross_latency_us[2] as f64)
            ),
            ratio(n.server_cpu_pct(), c.server_cpu_pct()),
            ratio(n.redis_cpu_pct(), c.redis_cpu_pct()),
            ratio(n.cpu_per_delivery_us(), c.cpu_per_delivery_us()),
            ratio(n.user_cpu_per_delivery_us(), c.user_cpu_per_delivery_us()),
            ratio(
                n.cluster_cpu_per_delivery_us(),
                c.cluster_cpu_per_delivery_us()
            ),
        );
    }
    failure_notes(s, &rows);
    s.push('\n');
}

/// How the `fanout` sender was paced (window, rate).
fn pacing_note(s: &mut String, rows: &[&Run]) {
    let Some(t) = rows.iter().find_map(|r| match &r.outcome {
        Outcome::Fanout(t) => Some(t),
        _ => None,
    }) else {
        return;
    };
    let window = t
        .in_flight
        .map_or_else(|| "no limit".into(), |w| w.to_string());
    let rate = t.rate.map_or_else(
        || "none (as fast as the window allows)".into(),
        |r| format!("{r} messages/s"),
    );
    let _ = writeln!(
        s,
        "\nEvery send asks for an ack; sends in flight (without an ack) at most: {window}; rate: {rate}."
    );
}

fn one_line(e: &str) -> String {
    e.lines().next().unwrap_or("").replace('|', "/")
}

fn failure_notes(s: &mut String, rows: &[&Run]) {
    for r in rows {
        let reasons = match &r.outcome {
            Outcome::Idle(i) => &i.failure_reasons,
            Outcome::Fanout(t) | Outcome::Rooms(t) | Outcome::Cluster(t) => &t.failure_reasons,
            Outcome::Failed(_) | Outcome::Chaos(_) => continue,
        };
        if let Outcome::Fanout(t) | Outcome::Rooms(t) | Outcome::Cluster(t) = &r.outcome {
            for example in &t.ack_error_examples {
                let _ = writeln!(
                    s,
                    "\n- {} {}: error ack: `{}`",
                    r.server,
                    r.scenario,
                    one_line(example)
                );
            }
        }
        for reason in reasons {
            let _ = writeln!(
                s,
                "\n- {} {}: client failure: `{}`",
                r.server,
                r.scenario,
                one_line(reason)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::CpuTimes;

    fn traffic(scale: u64) -> TrafficResult {
        let cpu = CpuTimes {
            user: Duration::from_millis(100 * scale),
            system: Duration::from_millis(50 * scale),
        };
        TrafficResult {
            nodes: 1,
            clients: 11,
            connected: 11,
            rooms: 1,
            failure_reasons: Vec::new(),
            sent: 10,
            expected: 100,
            delivered: 100,
            duplicates: 0,
            error_events: 0,
            disconnects: 0,
            span: Duration::from_secs(1),
            latency_us: [1000 * scale, 2000 * scale, 3000 * scale],
            acked: 9,
            ack_errors: 1,
            ack_timeouts: 0,
            ack_error_examples: vec!["43 3[{\"status\":\"error\"}]".into()],
            ack_latency_us: [500 * scale, 900 * scale, 1000 * scale],
            in_flight: Some(8),
            rate: None,
            cross_expected: 0,
            cross_delivered: 0,
            cross_latency_us: [0; 3],
            server_cpu: Some(cpu),
            redis_cpu: Some(cpu),
            window: Duration::from_secs(1),
            generator_cpu: Some(cpu),
            max_send_lag: Duration::ZERO,
            server_wait: Some(Duration::ZERO),
            generator_wait: Some(Duration::ZERO),
        }
    }

    fn header() -> Header {
        Header {
            command: "chatgate-bench".into(),
            date: "2026-12-06 03:00:00".into(),
            cpus: "2".into(),
            model: "test".into(),
            pinning: "none".into(),
            loadavg: "0 0 0".into(),
        }
    }

    /// Every table row of `text` has as many cells as its header.
    fn assert_tables_aligned(text: &str) {
        let mut width = None;
        for line in text.lines() {
            if !line.starts_with('|') {
                width = None;
                continue;
            }
            let cells = line.matches('|').count();
            match width {
                None => width = Some(cells),
                Some(w) => assert_eq!(cells, w, "row {line:?}"),
            }
        }
    }

    #[test]
    fn traffic_tables_show_acks_and_node_ratios() {
        let mut runs = Vec::new();
        for (scenario, make) in [
            ("fanout", Outcome::Fanout as fn(TrafficResult) -> Outcome),
            ("rooms", Outcome::Rooms),
            ("cluster", Outcome::Cluster),
        ] {
            runs.push(Run {
                scenario,
                server: "node".into(),
                outcome: make(traffic(4)),
            });
            runs.push(Run {
                scenario,
                server: "chatgate".into(),
                outcome: make(traffic(1)),
            });
        }
        runs.push(Run {
            scenario: "fanout",
            server: "other".into(),
            outcome: Outcome::Failed("no".into()),
        });
        let text = render(&header(), &runs);
        assert_tables_aligned(&text);
        assert!(text.contains("ack p99 ms"));
        assert_eq!(text.matches("| **node/chatgate** |").count(), 3);
        // p99 (delivery and ack) and CPU per delivery: Node's / chatgate's.
        assert!(text.contains("| **4.0x** |"));
        assert!(text.contains("in flight (without an ack) at most: 8"));
        assert!(text.contains("error ack"));
    }

    #[test]
    fn no_ratio_row_with_one_server() {
        let runs = vec![Run {
            scenario: "fanout",
            server: "chatgate".into(),
            outcome: Outcome::Fanout(traffic(1)),
        }];
        let text = render(&header(), &runs);
        assert_tables_aligned(&text);
        assert!(!text.contains("node/chatgate"));
    }
}
