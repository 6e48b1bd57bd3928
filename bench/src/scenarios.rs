//! The scenarios (`idle`, `fanout`, `rooms`, and `cluster`, which is `rooms`
//! spread over several nodes) and the fleet of client tasks they drive.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

use crate::client::{ClientOutcome, ClientSpec, Phase, Schedule, Shared, Target, run_client};
use crate::server::{CpuTimes, RedisProcess, ServerProcess, own_cpu_time, run_delay};

/// Knobs shared by all scenarios.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// Connections set up concurrently.
    pub(crate) connect_concurrency: usize,
    /// Limit for one connection's setup and for the whole setup phase.
    pub(crate) setup_timeout: Duration,
    /// How long to wait for missing deliveries after the last send.
    pub(crate) drain: Duration,
    /// Bytes of filler in each message text.
    pub(crate) padding: usize,
    /// Prefix of channel names (unique per run against a shared server).
    pub(crate) channel_prefix: String,
    /// How long a send may wait for its ack before it counts as timed out.
    pub(crate) ack_timeout: Duration,
}

/// Result of the `idle` scenario.
#[derive(Debug, Clone)]
pub(crate) struct IdleResult {
    /// Connections asked for.
    pub(crate) requested: u64,
    /// Connections that completed the Socket.IO handshake.
    pub(crate) connected: u64,
    /// First failure reasons.
    pub(crate) failure_reasons: Vec<String>,
    /// Time to set up all connections.
    pub(crate) setup: Duration,
    /// Server RSS before connecting, KiB.
    pub(crate) rss_before_kib: Option<u64>,
    /// Server RSS with all connections open, KiB.
    pub(crate) rss_after_kib: Option<u64>,
}

impl IdleResult {
    /// `(after - before) / connected`, KiB.
    pub(crate) fn rss_per_conn_kib(&self) -> Option<f64> {
        let (b, a) = (self.rss_before_kib?, self.rss_after_kib?);
        (self.connected > 0).then(|| (a as f64 - b as f64) / self.connected as f64)
    }
}

/// Result of the `fanout`, `rooms` and `cluster` scenarios.
#[derive(Debug, Clone)]
pub(crate) struct TrafficResult {
    /// Servers the clients were spread over (1 but for `cluster`).
    pub(crate) nodes: u64,
    /// Clients asked for.
    pub(crate) clients: u64,
    /// Clients that completed setup.
    pub(crate) connected: u64,
    /// Rooms used.
    pub(crate) rooms: u64,
    /// First failure reasons.
    pub(crate) failure_reasons: Vec<String>,
    /// Messages sent.
    pub(crate) sent: u64,
    /// Deliveries expected.
    pub(crate) expected: u64,
    /// Unique deliveries received.
    pub(crate) delivered: u64,
    /// Deliveries received twice.
    pub(crate) duplicates: u64,
    /// `error` events received.
    pub(crate) error_events: u64,
    /// Connections lost during the run.
    pub(crate) disconnects: u64,
    /// First send to last delivery.
    pub(crate) span: Duration,
    /// Latency p50, p99, max in microseconds.
    pub(crate) latency_us: [u64; 3],
    /// Sends answered by an `ok` ack.
    pub(crate) acked: u64,
    /// Sends answered by an error ack.
    pub(crate) ack_errors: u64,
    /// Sends without an ack within the ack timeout (or by the end).
    pub(crate) ack_timeouts: u64,
    /// First few error acks.
    pub(crate) ack_error_examples: Vec<String>,
    /// Send → ack latency p50, p99, max in microseconds.
    pub(crate) ack_latency_us: [u64; 3],
    /// Sends a sender kept outstanding at most (`None`: no limit).
    pub(crate) in_flight: Option<u32>,
    /// Offered rate per sender (`None`: as fast as the window allows).
    pub(crate) rate: Option<f64>,
    /// Deliveries expected from a sender on another node.
    pub(crate) cross_expected: u64,
    /// Unique deliveries received from a sender on another node.
    pub(crate) cross_delivered: u64,
    /// Latency p50, p99, max of the cross-node deliveries, microseconds.
    pub(crate) cross_latency_us: [u64; 3],
    /// Server CPU time during the run (summed over the nodes).
    pub(crate) server_cpu: Option<CpuTimes>,
    /// CPU time of the shared `redis-server` during the run (`cluster`).
    pub(crate) redis_cpu: Option<CpuTimes>,
    /// Wall time of the CPU window.
    pub(crate) window: Duration,
    /// Load generator CPU during the window.
    pub(crate) generator_cpu: Option<CpuTimes>,
    /// Largest delay of a send behind its schedule.
    pub(crate) max_send_lag: Duration,
    /// Server threads' time waiting for a CPU during the window.
    pub(crate) server_wait: Option<Duration>,
    /// Generator's time waiting for a CPU during the window.
    pub(crate) generator_wait: Option<Duration>,
}

impl TrafficResult {
    /// Expected deliveries that never arrived.
    pub(crate) fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    /// Deliveries per second over the traffic span.
    pub(crate) fn deliveries_per_sec(&self) -> f64 {
        let s = self.span.as_secs_f64();
        if s > 0.0 {
            self.delivered as f64 / s
        } else {
            0.0
        }
    }

    /// Server CPU (user + system) per delivery, microseconds.
    pub(crate) fn cpu_per_delivery_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?.total();
        (self.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.delivered as f64)
    }

    /// Server user-space CPU per delivery, microseconds.
    pub(crate) fn user_cpu_per_delivery_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?.user;
        (self.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.delivered as f64)
    }

    /// Server CPU use over the window, percent of one core.
    pub(crate) fn server_cpu_pct(&self) -> Option<f64> {
        pct(self.server_cpu?.total(), self.window)
    }

    /// Redis CPU use over the window, percent of one core.
    pub(crate) fn redis_cpu_pct(&self) -> Option<f64> {
        pct(self.redis_cpu?.total(), self.window)
    }

    /// Cross-node deliveries per second over the traffic span.
    pub(crate) fn cross_deliveries_per_sec(&self) -> f64 {
        let s = self.span.as_secs_f64();
        if s > 0.0 {
            self.cross_delivered as f64 / s
        } else {
            0.0
        }
    }

    /// Expected cross-node deliveries that never arrived.
    pub(crate) fn cross_missing(&self) -> u64 {
        self.cross_expected.saturating_sub(self.cross_delivered)
    }

    /// Servers' plus Redis' CPU (user + system) per delivery, microseconds.
    pub(crate) fn cluster_cpu_per_delivery_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?.total() + self.redis_cpu?.total();
        (self.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.delivered as f64)
    }

    /// Server run-queue wait over the window, percent.
    pub(crate) fn server_wait_pct(&self) -> Option<f64> {
        pct(self.server_wait?, self.window)
    }

    /// Generator run-queue wait over the window, percent.
    pub(crate) fn generator_wait_pct(&self) -> Option<f64> {
        pct(self.generator_wait?, self.window)
    }

    /// Generator CPU use over the window, percent of one core.
    pub(crate) fn generator_cpu_pct(&self) -> Option<f64> {
        let cpu = self.generator_cpu?.total();
        let w = self.window.as_secs_f64();
        (w > 0.0).then(|| cpu.as_secs_f64() * 100.0 / w)
    }
}

fn pct(part: Duration, whole: Duration) -> Option<f64> {
    let w = whole.as_secs_f64();
    (w > 0.0).then(|| part.as_secs_f64() * 100.0 / w)
}

/// All client tasks of one scenario run.
struct Fleet {
    shared: Rc<Shared>,
    phase: watch::Sender<Phase>,
    handles: Vec<JoinHandle<ClientOutcome>>,
    clients: u64,
    senders: u64,
}

impl Fleet {
    /// Spawns one task per client (must run inside a `LocalSet`); client `i`
    /// connects to `targets[i % targets.len()]`.
    fn spawn(targets: &[Target], specs: Vec<ClientSpec>, opts: &RunOptions) -> Self {
        assert!(!targets.is_empty(), "a fleet needs at least one target");
        let nodes = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        let shared = Rc::new(Shared::new(opts.padding, nodes));
        let (phase, _) = watch::channel(Phase::Setup);
        let gate = Rc::new(Semaphore::new(opts.connect_concurrency.max(1)));
        let targets: Vec<Rc<Target>> = targets.iter().cloned().map(Rc::new).collect();
        let clients = specs.len() as u64;
        let senders = specs.iter().filter(|s| s.schedule.is_some()).count() as u64;
        let handles = specs
            .into_iter()
            .map(|spec| {
                tokio::task::spawn_local(run_client(
                    Rc::clone(&targets[(spec.index % nodes) as usize]),
                    spec,
                    Rc::clone(&shared),
                    Rc::clone(&gate),
                    phase.subscribe(),
                    opts.setup_timeout,
                ))
            })
            .collect();
        Self {
            shared,
            phase,
            handles,
            clients,
            senders,
        }
    }

    /// Waits until every client is set up or failed.
    async fn wait_setup(&self, limit: Duration) -> Duration {
        let t0 = Instant::now();
        let mut last_print = t0;
        loop {
            let (ready, failed) = (self.shared.ready.get(), self.shared.failed.get());
            if ready + failed >= self.clients || t0.elapsed() > limit {
                break;
            }
            if last_print.elapsed() > Duration::from_secs(3) {
                last_print = Instant::now();
                eprintln!(
                    "  setup: {ready}/{} connected, {failed} failed",
                    self.clients
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t0.elapsed()
    }

    /// Starts the traffic `delay` from now.
    fn start(&self, delay: Duration) {
        let _ = self.phase.send(Phase::Run(TokioInstant::now() + delay));
    }

    /// Waits until every sender is done and every expected delivery arrived,
    /// or the drain time after the last send ran out.
    async fn wait_traffic(&self, drain: Duration, hard_limit: Duration) {
        let t0 = Instant::now();
        let mut last_print = t0;
        let mut senders_done_at: Option<Instant> = None;
        let s = &self.shared;
        loop {
            if s.senders_done.get() >= self.senders {
                let at = *senders_done_at.get_or_insert_with(Instant::now);
                if s.received.get() >= s.expected.get() || at.elapsed() > drain {
                    break;
                }
            }
            if t0.elapsed() > hard_limit {
                eprintln!("  traffic: hard time limit reached");
                break;
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                last_print = Instant::now();
                eprintln!(
                    "  traffic: sent {} delivered {}/{} expected so far",
                    s.sent.get(),
                    s.received.get(),
                    s.expected.get()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every task and collects the outcomes.
    async fn stop(self) -> (Rc<Shared>, Vec<ClientOutcome>) {
        let _ = self.phase.send(Phase::Stop);
        let mut outcomes = Vec::with_capacity(self.handles.len());
        for h in self.handles {
            let abort = h.abort_handle();
            match tokio::time::timeout(Duration::from_secs(5), h).await {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(_)) => {}
                Err(_) => abort.abort(),
            }
        }
        (self.shared, outcomes)
    }
}

/// CPU time of all `servers` together (`None` if one cannot be read or there
/// are none).
fn servers_cpu(servers: &[&ServerProcess]) -> Option<CpuTimes> {
    if servers.is_empty() {
        return None;
    }
    servers.iter().try_fold(CpuTimes::default(), |acc, s| {
        let t = s.cpu_time()?;
        Some(CpuTimes {
            user: acc.user + t.user,
            system: acc.system + t.system,
        })
    })
}

/// Run-queue wait of all `servers` together.
fn servers_run_delay(servers: &[&ServerProcess]) -> Option<Duration> {
    if servers.is_empty() {
        return None;
    }
    servers.iter().map(|s| s.run_delay()).sum()
}

/// Waits until the servers are quiet: at most one clock tick of CPU per
/// server in half a second (at most 15 s; a fixed second without a server to
/// watch).
async fn settle(servers: &[&ServerProcess]) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    if servers.is_empty() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return;
    }
    let quiet = Duration::from_millis(10) * u32::try_from(servers.len()).unwrap_or(u32::MAX);
    let t0 = Instant::now();
    let mut last = servers_cpu(servers);
    while t0.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = servers_cpu(servers);
        let used = now.zip(last).map(|(b, a)| b.since(&a).total());
        last = now;
        if used.is_none_or(|u| u <= quiet) {
            return;
        }
    }
    eprintln!("  server still busy after setup; measuring anyway");
}

/// `idle`: `conns` connections, Socket.IO-connected, then the server RSS.
pub(crate) async fn idle(
    target: &Target,
    server: Option<&ServerProcess>,
    conns: u32,
    settle: Duration,
    opts: &RunOptions,
) -> IdleResult {
    let rss_before_kib = server.and_then(ServerProcess::rss_kib);
    let specs = (0..conns)
        .map(|index| ClientSpec {
            index,
            channel: None,
            schedule: None,
        })
        .collect();
    let fleet = Fleet::spawn(std::slice::from_ref(target), specs, opts);
    let setup = fleet.wait_setup(opts.setup_timeout).await;
    tokio::time::sleep(settle).await;
    let rss_after_kib = server.and_then(ServerProcess::rss_kib);
    let connected = fleet.shared.ready.get();
    let (shared, _) = fleet.stop().await;
    IdleResult {
        requested: u64::from(conns),
        connected,
        failure_reasons: shared.failure_reasons.borrow().clone(),
        setup,
        rss_before_kib,
        rss_after_kib,
    }
}

/// Parameters of the traffic scenarios.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrafficPlan {
    /// Number of clients.
    pub(crate) clients: u32,
    /// Clients per room.
    pub(crate) room_size: u32,
    /// Senders: `true` = every client, `false` = only the first client.
    pub(crate) everyone_sends: bool,
    /// Messages per sender.
    pub(crate) messages: u32,
    /// Messages per second per sender (`None`: as fast as the window
    /// allows; only with a window).
    pub(crate) rate: Option<f64>,
    /// Sends a sender keeps outstanding without an ack at most (`None`: no
    /// limit).
    pub(crate) in_flight: Option<u32>,
}

/// Members of the room `members` (client indices) that are connected to
/// another node than client `index`, when client `i` is on node `i % nodes`.
fn cross_fanout(members: std::ops::Range<u32>, index: u32, nodes: u32) -> u32 {
    let nodes = nodes.max(1);
    let other = members.filter(|&j| j % nodes != index % nodes).count();
    u32::try_from(other).unwrap_or(u32::MAX)
}

/// `fanout` (one sender, one room), `rooms` (everyone sends in small rooms)
/// and `cluster` (`rooms` over several nodes: client `i` connects to
/// `targets[i % targets.len()]` and rooms hold consecutive clients, so each
/// room's members are spread round-robin over the nodes).
pub(crate) async fn traffic(
    targets: &[Target],
    servers: &[&ServerProcess],
    redis: Option<&RedisProcess>,
    plan: TrafficPlan,
    opts: &RunOptions,
) -> TrafficResult {
    let nodes = u32::try_from(targets.len()).unwrap_or(u32::MAX).max(1);
    let room_size = plan.room_size.max(1);
    let rooms = plan.clients.div_ceil(room_size);
    // Without a rate (and without a window, which `main` does not allow)
    // the sender would only be limited by the acks.
    let period = plan.rate.map_or(Duration::ZERO, |r| {
        Duration::from_secs_f64(1.0 / r.max(1e-3))
    });
    let channels: Vec<Rc<str>> = (0..rooms)
        .map(|k| Rc::from(format!("{}room-{k}", opts.channel_prefix)))
        .collect();
    let specs = (0..plan.clients)
        .map(|index| {
            let room = index / room_size;
            let first = room * room_size;
            let members = room_size.min(plan.clients - first);
            let cross_fanout = cross_fanout(first..first + members, index, nodes);
            let sends = plan.everyone_sends || index == 0;
            ClientSpec {
                index,
                channel: Some(Rc::clone(&channels[room as usize])),
                schedule: sends.then(|| Schedule {
                    // Spread the first sends evenly over one period.
                    offset: period.mul_f64(f64::from(index) / f64::from(plan.clients)),
                    period,
                    window: plan.in_flight,
                    ack_timeout: opts.ack_timeout,
                    count: plan.messages,
                    fanout: members - 1,
                    cross_fanout,
                }),
            }
        })
        .collect();
    let fleet = Fleet::spawn(targets, specs, opts);
    fleet.wait_setup(opts.setup_timeout).await;
    // Join broadcasts (chatgate announces every join to the room) must be
    // over before the CPU window opens.
    settle(servers).await;
    let cpu0 = servers_cpu(servers);
    let redis0 = redis.and_then(RedisProcess::cpu_time);
    let gen0 = own_cpu_time();
    let wait0 = servers_run_delay(servers);
    let gen_wait0 = run_delay("/proc/self/task");
    let t0 = Instant::now();
    fleet.start(Duration::from_millis(100));
    // Unpaced, assume at least 50 messages/s for the hard limit.
    let nominal = period
        .max(Duration::from_millis(20))
        .mul_f64(f64::from(plan.messages) + 1.0);
    fleet
        .wait_traffic(
            opts.drain,
            nominal * 3 + opts.drain + opts.ack_timeout + Duration::from_secs(30),
        )
        .await;
    let window = t0.elapsed();
    let cpu1 = servers_cpu(servers);
    let redis1 = redis.and_then(RedisProcess::cpu_time);
    let gen1 = own_cpu_time();
    let wait1 = servers_run_delay(servers);
    let gen_wait1 = run_delay("/proc/self/task");
    let connected = fleet.shared.ready.get();
    let (shared, outcomes) = fleet.stop().await;
    let delivered: u64 = outcomes.iter().map(|o| o.tracker.unique()).sum();
    let duplicates: u64 = outcomes.iter().map(|o| o.tracker.duplicates).sum();
    let span = match (shared.first_send.get(), shared.last_recv.get()) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let quantiles = |hist: &hdrhistogram::Histogram<u64>| {
        [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.max(),
        ]
    };
    let latency_us = quantiles(&shared.latency_us.borrow());
    let cross_latency_us = quantiles(&shared.cross_latency_us.borrow());
    let ack_latency_us = quantiles(&shared.ack_latency_us.borrow());
    TrafficResult {
        nodes: u64::from(nodes),
        clients: u64::from(plan.clients),
        connected,
        rooms: u64::from(rooms),
        failure_reasons: shared.failure_reasons.borrow().clone(),
        sent: shared.sent.get(),
        expected: shared.expected.get(),
        delivered,
        duplicates,
        error_events: shared.error_events.get(),
        disconnects: shared.disconnects.get(),
        span,
        latency_us,
        acked: shared.acked.get(),
        ack_errors: shared.ack_errors.get(),
        ack_timeouts: shared.ack_timeouts.get(),
        ack_error_examples: shared.ack_error_examples.borrow().clone(),
        ack_latency_us,
        in_flight: plan.in_flight,
        rate: plan.rate,
        cross_expected: shared.cross_expected.get(),
        cross_delivered: shared.cross_received.get(),
        cross_latency_us,
        server_cpu: cpu0.zip(cpu1).map(|(a, b)| b.since(&a)),
        redis_cpu: redis0.zip(redis1).map(|(a, b)| b.since(&a)),
        window,
        generator_cpu: gen0.zip(gen1).map(|(a, b)| b.since(&a)),
        max_send_lag: shared.max_send_lag.get(),
        server_wait: wait0.zip(wait1).map(|(a, b)| b.saturating_sub(a)),
        generator_wait: gen_wait0.zip(gen_wait1).map(|(a, b)| b.saturating_sub(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_fanout_counts_members_on_other_nodes() {
        // Room 0..10 over 3 nodes: node 0 holds 0,3,6,9; nodes 1 and 2 three each.
        assert_eq!(cross_fanout(0..10, 0, 3), 6);
        assert_eq!(cross_fanout(0..10, 1, 3), 7);
        assert_eq!(cross_fanout(0..10, 2, 3), 7);
        // One node: nothing crosses.
        assert_eq!(cross_fanout(0..10, 4, 1), 0);
        assert_eq!(cross_fanout(0..10, 4, 0), 0);
    }
}
