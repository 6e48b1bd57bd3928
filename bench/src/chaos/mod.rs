//! The `chaos` scenario: chatgate nodes on one Redis or a Redis Cluster,
//! behind a small TCP load balancer in the bench, with hundreds of clients
//! sending acknowledged messages while the run cuts random connections
//! (mobile drops), kills a node with SIGKILL (and starts it again) and
//! kills and restarts Redis (append-only, so memberships survive).
//!
//! Clients reconnect through the balancer and get their messages back by
//! Socket.IO connection state recovery when the server offers it, else by
//! re-joining with `since` ([`client`]). At the end every acknowledged
//! message is checked against every member of its channel: owed,
//! received, lost, duplicates.
//!
//! Layout: [`rng`] (seeded choices), [`balancer`] (the TCP balancer and its
//! cuts), [`redis`] (restartable Redis, single or cluster), [`client`] (one
//! reconnecting client), this file (the run and its accounting).

mod balancer;
mod client;
mod redis;
mod rng;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant as TokioInstant;

use self::balancer::{Balancer, Cut};
use self::client::{ChaosClientSpec, ChaosPhase, ChaosShared, SendPlan, run_chaos_client};
use self::redis::RedisSetup;
pub(crate) use self::redis::Topology;
use self::rng::Rng;
use crate::server::{LaunchOptions, ServerKind, ServerProcess};

/// What a chaos run does.
#[derive(Debug, Clone)]
pub(crate) struct ChaosPlan {
    /// Which Redis the nodes share.
    pub(crate) topology: Topology,
    /// chatgate nodes behind the balancer.
    pub(crate) nodes: u32,
    /// Clients (one user and one connection each).
    pub(crate) clients: u32,
    /// Channels each client joins.
    pub(crate) channels_per_client: u32,
    /// Members per channel (sets the number of channels).
    pub(crate) channel_size: u32,
    /// Messages per second per client.
    pub(crate) rate: f64,
    /// Length of the send window; every fault happens inside it.
    pub(crate) duration: Duration,
    /// Random connection cuts per second (Poisson arrivals).
    pub(crate) cut_rate: f64,
    /// Share of cuts that leave the server side silently open.
    pub(crate) silent_share: f64,
    /// When (after the start of the sends) one node is killed, if ever.
    pub(crate) kill_at: Option<Duration>,
    /// How long the killed node stays down before it is started again.
    pub(crate) node_down: Duration,
    /// When Redis is killed, if ever.
    pub(crate) redis_restart_at: Option<Duration>,
    /// How long Redis stays down.
    pub(crate) redis_down: Duration,
    /// Longest wait after the sends for reconnects and missed messages.
    pub(crate) settle: Duration,
    /// Seed of every random choice.
    pub(crate) seed: u64,
    /// Clients re-join with `since` when a session is not recovered.
    pub(crate) since_fallback: bool,
    /// Connections set up concurrently.
    pub(crate) connect_concurrency: usize,
    /// Limit of the setup phase and of one client's setup.
    pub(crate) setup_timeout: Duration,
}

/// What a chaos run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChaosResult {
    /// `single` or `cluster`.
    pub(crate) topology: &'static str,
    /// chatgate nodes.
    pub(crate) nodes: u32,
    /// Clients asked for.
    pub(crate) clients: u32,
    /// Clients set up (members owed messages).
    pub(crate) members: u64,
    /// Channels.
    pub(crate) channels: u64,
    /// Seed.
    pub(crate) seed: u64,
    /// Whether clients re-joined with `since` after an unrecovered session.
    pub(crate) since_fallback: bool,
    /// Send window.
    pub(crate) duration: Duration,
    /// Faults in order, with their times.
    pub(crate) timeline: Vec<String>,
    /// Connections cut (reset, silent).
    pub(crate) cuts: (u64, u64),
    /// Client connections the balancer dropped for want of a live node.
    pub(crate) balancer_refused: u64,
    /// `message:send` emitted.
    pub(crate) sent: u64,
    /// Acknowledged `ok`.
    pub(crate) acked: u64,
    /// Error acks by code.
    pub(crate) ack_errors: BTreeMap<String, u64>,
    /// Sends whose connection was lost before the ack.
    pub(crate) unacked_lost: u64,
    /// Sends with no ack within 15 s.
    pub(crate) ack_timeouts: u64,
    /// Scheduled sends skipped while offline.
    pub(crate) skipped_offline: u64,
    /// (member, message) pairs owed: every member of the channel but the
    /// sender, for every acknowledged message.
    pub(crate) owed: u64,
    /// Owed pairs received (by `message:new`, replay or `missed`).
    pub(crate) received: u64,
    /// Owed pairs never received.
    pub(crate) lost: u64,
    /// Clients with at least one lost message.
    pub(crate) lost_clients: u64,
    /// Of the lost pairs, those of clients not connected at the end.
    pub(crate) lost_offline: u64,
    /// A few lost pairs, for a first look.
    pub(crate) lost_examples: Vec<String>,
    /// Deliveries of messages whose send was not acknowledged `ok`.
    pub(crate) unacked_delivered: u64,
    /// Same `message:new` id twice at one client.
    pub(crate) duplicates: u64,
    /// Of those, after the node kill.
    pub(crate) duplicates_after_kill: u64,
    /// Copies both in `missed` and in `message:new` (not duplicates).
    pub(crate) missed_overlap: u64,
    /// New messages replayed by recovered sessions.
    pub(crate) via_replay: u64,
    /// New messages taken from `missed`.
    pub(crate) via_missed: u64,
    /// `missedAll: false` answers to a `since` above 0.
    pub(crate) gaps: u64,
    /// `missedAll: false` answers to `since` 0 (nothing received yet).
    pub(crate) gaps_since_zero: u64,
    /// Clients that got a `connect_error` (socket.io-client would have
    /// stopped reconnecting them).
    pub(crate) connect_error_clients: u64,
    /// `since` joins answered `ok` / with an error (then retried).
    pub(crate) rejoins: (u64, u64),
    /// Reconnects (new sessions after a loss).
    pub(crate) reconnects: u64,
    /// Of those, offering a `pid`.
    pub(crate) pid_offered: u64,
    /// Of those, recovered (same `pid` back).
    pub(crate) recovered: u64,
    /// Failed connection attempts.
    pub(crate) attempt_failures: u64,
    /// `connect_error` answers by message.
    pub(crate) connect_errors: BTreeMap<String, u64>,
    /// Server-initiated disconnects.
    pub(crate) server_disconnects: u64,
    /// Reconnect time p50, p99, max (loss to CONNECT reply, with backoff), ms.
    pub(crate) reconnect_ms: [u64; 3],
    /// Clients connected when the run ended.
    pub(crate) connected_at_end: u64,
    /// Time spent settling after the sends.
    pub(crate) settle: Duration,
    /// Setup failures and unexpected process deaths.
    pub(crate) problems: Vec<String>,
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("blocking task: {e}"))
}

/// Channel indices of client `i`: consecutive clients share channels, each
/// channel gets about `size` members.
fn memberships(clients: u32, per_client: u32, size: u32) -> (u32, Vec<Vec<u32>>) {
    let per_client = per_client.max(1);
    let total = u64::from(clients) * u64::from(per_client);
    let channels = u32::try_from(total.div_ceil(u64::from(size.max(1))))
        .unwrap_or(u32::MAX)
        .max(1);
    let lists = (0..clients)
        .map(|i| {
            let mut list: Vec<u32> = (0..per_client)
                .map(|j| {
                    ((u64::from(i) * u64::from(per_client) + u64::from(j)) % u64::from(channels))
                        as u32
                })
                .collect();
            list.sort_unstable();
            list.dedup();
            list
        })
        .collect();
    (channels, lists)
}

/// The running chatgate nodes; `None` while one is down.
type Nodes = Rc<RefCell<Vec<Option<ServerProcess>>>>;

/// Starts chatgate node `index` with the Redis `env`.
async fn start_node(
    launch: &LaunchOptions,
    label: String,
    env: Vec<(String, String)>,
) -> Result<ServerProcess, String> {
    let launch = launch.clone();
    blocking(move || ServerProcess::start_with_env(ServerKind::Chatgate, &launch, &label, &env))
        .await?
}

/// Seconds since `t0`, for the timeline.
fn at(t0: TokioInstant) -> String {
    format!(
        "{:.1} s",
        TokioInstant::now()
            .saturating_duration_since(t0)
            .as_secs_f64()
    )
}

/// Runs one chaos scenario.
pub(crate) async fn chaos(launch: &LaunchOptions, plan: &ChaosPlan) -> Result<ChaosResult, String> {
    let label = format!("chaos-{}", plan.topology.name());
    let root = launch.log_dir.join(format!("{label}-redis-data"));
    let redis = {
        let (topology, log_dir, bin, core) = (
            plan.topology,
            launch.log_dir.clone(),
            launch.redis_bin.clone(),
            launch.core.clone(),
        );
        blocking(move || RedisSetup::start(topology, root, &log_dir, &bin, core)).await??
    };
    let redis_env = redis.env();
    let redis = Rc::new(RefCell::new(Some(redis)));
    let nodes: Nodes = Rc::new(RefCell::new(Vec::new()));
    for n in 0..plan.nodes.max(1) {
        let node = start_node(launch, format!("{label}-{n}"), redis_env.clone()).await?;
        nodes.borrow_mut().push(Some(node));
    }
    let addrs: Vec<SocketAddr> = nodes.borrow().iter().flatten().map(|n| n.addr).collect();
    let lb = Rc::new(Balancer::start(addrs).await?);

    let (channel_count, lists) =
        memberships(plan.clients, plan.channels_per_client, plan.channel_size);
    let names: Vec<Rc<str>> = (0..channel_count)
        .map(|k| Rc::from(format!("chaos-room-{k}")))
        .collect();
    let shared = Rc::new(ChaosShared::new(lb.addr, names, lists));
    let (phase, _) = watch::channel(ChaosPhase::Setup);
    let gate = Rc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let period = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
    let handles: Vec<_> = (0..plan.clients)
        .map(|index| {
            let spec = ChaosClientSpec {
                index,
                plan: SendPlan {
                    period,
                    offset: period.mul_f64(f64::from(index) / f64::from(plan.clients.max(1))),
                },
                seed: plan.seed ^ (u64::from(index) << 20),
                setup_timeout: plan.setup_timeout,
                since_fallback: plan.since_fallback,
            };
            tokio::task::spawn_local(run_chaos_client(
                spec,
                Rc::clone(&shared),
                Rc::clone(&gate),
                phase.subscribe(),
            ))
        })
        .collect();

    // Setup: every client connected and joined, or failed.
    let c = &shared.c;
    let t_setup = Instant::now();
    let mut last_print = t_setup;
    while c.ready.get() + c.setup_failed.get() < u64::from(plan.clients)
        && t_setup.elapsed() < plan.setup_timeout
    {
        if last_print.elapsed() > Duration::from_secs(3) {
            last_print = Instant::now();
            eprintln!(
                "  setup: {}/{} ready, {} failed",
                c.ready.get(),
                plan.clients,
                c.setup_failed.get()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Members: the clients joined before the sends start.
    let joined: Vec<bool> = shared.records.iter().map(|r| r.borrow().joined).collect();
    let members = joined.iter().filter(|&&j| j).count() as u64;
    eprintln!(
        "  setup: {members}/{} clients joined {channel_count} channels; sending for {:?}",
        plan.clients, plan.duration
    );

    let start = TokioInstant::now() + Duration::from_millis(100);
    let end = start + plan.duration;
    let _ = phase.send(ChaosPhase::Send { start, end });
    let timeline = Rc::new(RefCell::new(Vec::<String>::new()));
    let mut problems: Vec<String> = Vec::new();

    // Node kill and Redis restart run beside the cuts.
    let kill_task = plan.kill_at.filter(|t| *t < plan.duration).map(|kill_at| {
        let (nodes, lb, shared, timeline) = (
            Rc::clone(&nodes),
            Rc::clone(&lb),
            Rc::clone(&shared),
            Rc::clone(&timeline),
        );
        let (launch, env, label, down) = (
            launch.clone(),
            redis_env.clone(),
            label.clone(),
            plan.node_down,
        );
        let victim = (Rng::new(plan.seed ^ 0x4b11).below(u64::from(plan.nodes.max(1)))) as usize;
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(start + kill_at).await;
            let taken = nodes.borrow_mut().get_mut(victim).and_then(Option::take);
            let Some(mut node) = taken else {
                return Err(format!("node {victim} was not running at the kill"));
            };
            lb.set_backend(victim, None);
            shared.node_killed.set(true);
            node.kill();
            timeline.borrow_mut().push(format!(
                "{}: kill -9 node {victim} (pid {})",
                at(start),
                node.pid
            ));
            drop(node);
            tokio::time::sleep(down).await;
            let node = start_node(&launch, format!("{label}-{victim}-restarted"), env).await?;
            lb.set_backend(victim, Some(node.addr));
            timeline
                .borrow_mut()
                .push(format!("{}: node {victim} started again", at(start)));
            if let Some(slot) = nodes.borrow_mut().get_mut(victim) {
                *slot = Some(node);
            }
            Ok(())
        })
    });
    let redis_task = plan
        .redis_restart_at
        .filter(|t| *t < plan.duration)
        .map(|restart_at| {
            let (redis, timeline, down) =
                (Rc::clone(&redis), Rc::clone(&timeline), plan.redis_down);
            tokio::task::spawn_local(async move {
                tokio::time::sleep_until(start + restart_at).await;
                let taken = redis.borrow_mut().take();
                let Some(mut setup) = taken else {
                    return Err("Redis was not running at the restart".to_string());
                };
                setup.kill_all();
                timeline.borrow_mut().push(format!(
                    "{}: kill -9 Redis ({})",
                    at(start),
                    setup.topology.name()
                ));
                tokio::time::sleep(down).await;
                let (back, result) = blocking(move || {
                    let result = setup.restart_all();
                    (setup, result)
                })
                .await?;
                *redis.borrow_mut() = Some(back);
                result?;
                timeline
                    .borrow_mut()
                    .push(format!("{}: Redis up again (AOF reloaded)", at(start)));
                Ok(())
            })
        });

    // Random cuts until the end of the sends.
    let mut rng = Rng::new(plan.seed ^ 0xc07);
    let (mut resets, mut silents) = (0u64, 0u64);
    let mut last_print = Instant::now();
    if plan.cut_rate > 0.0 {
        let mut next = start + Duration::from_secs_f64(rng.exp(1.0 / plan.cut_rate));
        while next < end {
            tokio::time::sleep_until(next).await;
            let how = if rng.unit() < plan.silent_share {
                Cut::Silent
            } else {
                Cut::Reset
            };
            if lb.cut_random(&mut rng, how) {
                match how {
                    Cut::Reset => resets += 1,
                    Cut::Silent => silents += 1,
                }
            }
            next += Duration::from_secs_f64(rng.exp(1.0 / plan.cut_rate));
            if last_print.elapsed() > Duration::from_secs(5) {
                last_print = Instant::now();
                eprintln!(
                    "  {}: sent {} acked {} connected {}/{members} (balancer: {} spliced) reconnects {} (recovered {}) cuts {}",
                    at(start),
                    c.sent.get(),
                    shared.acked.borrow().len(),
                    c.connected.get(),
                    lb.live(),
                    c.reconnects.get(),
                    c.recovered.get(),
                    resets + silents
                );
            }
        }
    }
    tokio::time::sleep_until(end).await;
    for (name, task) in [("node kill", kill_task), ("Redis restart", redis_task)] {
        if let Some(task) = task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("{name}: {e}")),
                Err(e) => problems.push(format!("{name}: task failed: {e}")),
            }
        }
    }

    // Settle: every member back, every `since` join done, nothing new for
    // a while (or the limit).
    let t_settle = Instant::now();
    loop {
        let quiet = shared
            .last_new
            .get()
            .is_none_or(|t| t.elapsed() > Duration::from_secs(3));
        if (c.connected.get() >= members
            && c.pending_since.get() == 0
            && quiet
            && t_settle.elapsed() > Duration::from_secs(2))
            || t_settle.elapsed() > plan.settle
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let settle = t_settle.elapsed();
    let connected_at_end = c.connected.get();
    let online: Vec<bool> = shared
        .records
        .iter()
        .map(|r| r.borrow().connected)
        .collect();
    let _ = phase.send(ChaosPhase::Stop);
    for h in handles {
        let abort = h.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    lb.shutdown();

    for (i, slot) in nodes.borrow_mut().iter_mut().enumerate() {
        match slot {
            Some(node) => {
                if !node.alive() {
                    problems.push(format!(
                        "node {i} died on its own; log:\n{}",
                        node.log_tail()
                    ));
                }
            }
            None => problems.push(format!("node {i} was not running at the end")),
        }
    }
    match redis.borrow_mut().as_mut() {
        Some(r) => {
            if let Some(dead) = r.dead() {
                problems.push(dead);
            }
        }
        None => problems.push("Redis was not running at the end".into()),
    }
    problems.extend(
        shared
            .failures
            .borrow()
            .iter()
            .map(|f| format!("client setup: {f}")),
    );

    let mut result = account(&shared, &joined, &online);
    let hist = shared.reconnect_ms.borrow();
    result.reconnect_ms = [
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max(),
    ];
    result.topology = plan.topology.name();
    result.nodes = plan.nodes;
    result.clients = plan.clients;
    result.members = members;
    result.channels = u64::from(channel_count);
    result.seed = plan.seed;
    result.since_fallback = plan.since_fallback;
    result.duration = plan.duration;
    result.timeline = timeline.borrow().clone();
    result.cuts = (resets, silents);
    result.balancer_refused = lb.refused();
    result.sent = c.sent.get();
    result.acked = shared.acked.borrow().len() as u64;
    result.ack_errors = shared.ack_errors.borrow().clone();
    result.unacked_lost = c.unacked_lost.get();
    result.ack_timeouts = c.ack_timeouts.get();
    result.skipped_offline = c.skipped_offline.get();
    result.duplicates = c.duplicates.get();
    result.duplicates_after_kill = c.duplicates_after_kill.get();
    result.missed_overlap = c.missed_overlap.get();
    result.via_replay = c.via_replay.get();
    result.via_missed = c.via_missed.get();
    result.gaps = c.gaps.get();
    result.gaps_since_zero = c.gaps_since_zero.get();
    result.connect_error_clients = c.connect_error_clients.get();
    result.rejoins = (c.rejoins.get(), c.rejoin_errors.get());
    result.reconnects = c.reconnects.get();
    result.pid_offered = c.pid_offered.get();
    result.recovered = c.recovered.get();
    result.attempt_failures = c.attempt_failures.get();
    result.connect_errors = shared.connect_errors.borrow().clone();
    result.server_disconnects = c.server_disconnects.get();
    result.connected_at_end = connected_at_end;
    result.settle = settle;
    result.problems = problems;
    Ok(result)
}

/// Checks every acknowledged message against every member of its channel
/// (`joined[i]`: client `i` joined before the sends; `online[i]`: it was
/// connected when the run ended).
fn account(shared: &ChaosShared, joined: &[bool], online: &[bool]) -> ChaosResult {
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); shared.channel_names.len()];
    for (i, rec) in shared.records.iter().enumerate() {
        if joined.get(i).copied().unwrap_or(false) {
            for &ch in &rec.borrow().channels {
                members[ch as usize].push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
    }
    let records: Vec<_> = shared.records.iter().map(RefCell::borrow).collect();
    let mut r = ChaosResult::default();
    let mut lost_by_client = vec![0u64; records.len()];
    for m in shared.acked.borrow().iter() {
        for &member in &members[m.channel as usize] {
            if member == m.sender {
                continue;
            }
            let rec = &records[member as usize];
            r.owed += 1;
            let got = rec
                .channels
                .iter()
                .position(|&c| c == m.channel)
                .is_some_and(|slot| rec.received[slot].contains_key(&m.id));
            if got {
                r.received += 1;
            } else {
                r.lost += 1;
                lost_by_client[member as usize] += 1;
                if !online.get(member as usize).copied().unwrap_or(false) {
                    r.lost_offline += 1;
                }
                if r.lost_examples.len() < 5 {
                    r.lost_examples.push(format!(
                        "chaos-{member} never got {} of {} (sent by chaos-{})",
                        m.id, shared.channel_names[m.channel as usize], m.sender
                    ));
                }
            }
        }
    }
    r.lost_clients = lost_by_client.iter().filter(|&&n| n > 0).count() as u64;
    let unique: u64 = records
        .iter()
        .enumerate()
        .filter(|(i, _)| joined.get(*i).copied().unwrap_or(false))
        .map(|(_, rec)| rec.received.iter().map(|s| s.len() as u64).sum::<u64>())
        .sum();
    r.unacked_delivered = unique.saturating_sub(r.received);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_fill_channels_evenly() {
        let (channels, lists) = memberships(60, 3, 20);
        assert_eq!(channels, 9);
        let mut size = vec![0; channels as usize];
        for list in &lists {
            assert_eq!(list.len(), 3);
            for &ch in list {
                size[ch as usize] += 1;
            }
        }
        assert!(size.iter().all(|&s| s == 20), "{size:?}");
        // More channels per client than channels: no duplicates.
        let (channels, lists) = memberships(2, 5, 100);
        assert_eq!(channels, 1);
        assert_eq!(lists[0], vec![0]);
    }
}
