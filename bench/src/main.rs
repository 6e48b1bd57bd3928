//! `chatgate-bench`: load generator and benchmark harness for chatgate.
//!
//! Speaks raw Engine.IO v4 / Socket.IO v5 over WebSocket, starts the servers
//! under test itself (chatgate and the Node reference in `bench/node`), pinned
//! to one core while the generator runs on another, and measures four
//! scenarios: `idle` (RSS per connection), `fanout` (one sender, one big room,
//! at most `--fanout-in-flight` sends without an ack; every send of every
//! scenario asks for an ack, and the report gives send → ack latency),
//! `rooms` (many small chatty rooms) and `cluster` (rooms spanning three nodes
//! on one Redis: cross-node delivery), plus a check, `chaos` (nodes behind
//! a TCP balancer in the bench, connection cuts, `kill -9` of a node, a
//! Redis restart: acknowledged messages lost or duplicated; exit status 2
//! when one was lost). Results go to stdout and to
//! `bench/results/<timestamp>/report.md` plus `plot.svg`.
//! See `docs/benchmarks.md`.

mod chaos;
mod client;
mod plot;
mod report;
mod scenarios;
mod server;

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};

use crate::chaos::{ChaosPlan, Topology};
use crate::client::Target;
use crate::report::{Header, Outcome, Run};
use crate::scenarios::{RunOptions, TrafficPlan};
use crate::server::{Cluster, LaunchOptions, ServerKind, ServerProcess};

/// Environment variable marking the re-executed, pinned generator.
const PINNED_ENV: &str = "CHATGATE_BENCH_PINNED";

/// Which servers to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerChoice {
    /// Only chatgate.
    Chatgate,
    /// Only the Node reference server.
    Node,
    /// Both, one after the other, with Node/chatgate ratios.
    Both,
}

/// A scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N silent connections; server RSS per connection.
    Idle,
    /// One sender, one room of N receivers; throughput, latency, CPU, losses.
    Fanout,
    /// Many rooms, every client sends; latency, CPU, losses.
    Rooms,
    /// `rooms` over several nodes sharing one Redis, each room's members
    /// spread over the nodes; cross-node throughput, latency, server and
    /// Redis CPU, losses.
    Cluster,
    /// chatgate nodes behind a TCP balancer under faults (connection cuts,
    /// `kill -9` of a node, Redis restart): acknowledged messages lost,
    /// duplicated, sessions recovered. Not part of the default set.
    Chaos,
}

/// `chaos`: what a client does after a session that was not recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fallback {
    /// Re-join every channel with `since` and take `missed`.
    Since,
    /// Nothing: connection state recovery alone.
    None,
}

/// Load generator and benchmark harness for chatgate (and the Node reference).
#[derive(Debug, Parser)]
#[command(name = "chatgate-bench", version, about)]
struct Cli {
    /// Servers to start and measure.
    #[arg(long, value_enum, default_value_t = ServerChoice::Both)]
    server: ServerChoice,
    /// Measure an already running server instead (e.g. ws://127.0.0.1:3000);
    /// no RSS or CPU numbers then.
    #[arg(long)]
    url: Option<String>,
    /// Scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scenario::Idle, Scenario::Fanout, Scenario::Rooms, Scenario::Cluster])]
    scenarios: Vec<Scenario>,

    /// idle: number of connections.
    #[arg(long, default_value_t = 10_000)]
    idle_conns: u32,
    /// idle: seconds to wait after the last connection before reading RSS.
    #[arg(long, default_value_t = 3.0)]
    idle_settle: f64,

    /// fanout: receivers in the room (plus one sender).
    #[arg(long, default_value_t = 1000)]
    fanout_receivers: u32,
    /// fanout: messages sent.
    #[arg(long, default_value_t = 1000)]
    fanout_messages: u32,
    /// fanout: messages per second [default: none, as fast as
    /// `--fanout-in-flight` allows].
    #[arg(long)]
    fanout_rate: Option<f64>,
    /// fanout: sends the sender keeps outstanding without an ack at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    fanout_in_flight: u32,

    /// rooms: number of clients.
    #[arg(long, default_value_t = 5000)]
    rooms_clients: u32,
    /// rooms: clients per room.
    #[arg(long, default_value_t = 10)]
    room_size: u32,
    /// rooms: messages per second per client.
    #[arg(long, default_value_t = 1.0)]
    rooms_rate: f64,
    /// rooms: seconds each client sends for.
    #[arg(long, default_value_t = 20.0)]
    rooms_duration: f64,

    /// cluster: server processes sharing one Redis.
    #[arg(long, default_value_t = 3)]
    cluster_nodes: u32,
    /// cluster: number of clients (client i connects to node i % nodes).
    #[arg(long, default_value_t = 5000)]
    cluster_clients: u32,
    /// cluster: clients per room (consecutive clients, so on different nodes).
    #[arg(long, default_value_t = 10)]
    cluster_room_size: u32,
    /// cluster: messages per second per client.
    #[arg(long, default_value_t = 1.1)]
    cluster_rate: f64,
    /// cluster: seconds each client sends for.
    #[arg(long, default_value_t = 20.0)]
    cluster_duration: f64,
    /// redis-server executable (cluster, chaos).
    #[arg(long, default_value = "redis-server")]
    redis_bin: String,

    /// chaos: chatgate nodes behind the bench's TCP balancer.
    #[arg(long, default_value_t = 3)]
    chaos_nodes: u32,
    /// chaos: clients (one user and one connection each).
    #[arg(long, default_value_t = 300)]
    chaos_clients: u32,
    /// chaos: channels each client joins.
    #[arg(long, default_value_t = 3)]
    chaos_channels_per_client: u32,
    /// chaos: members per channel.
    #[arg(long, default_value_t = 20)]
    chaos_channel_size: u32,
    /// chaos: messages per second per client, each with an ack callback.
    #[arg(long, default_value_t = 0.5)]
    chaos_rate: f64,
    /// chaos: seconds of sending; every fault happens inside this window.
    #[arg(long, default_value_t = 60.0)]
    chaos_duration: f64,
    /// chaos: random connection cuts per second (by the balancer).
    #[arg(long, default_value_t = 2.0)]
    chaos_cut_rate: f64,
    /// chaos: share of the cuts that leave the server side open and silent
    /// (a phone losing its network) instead of resetting both sides.
    #[arg(long, default_value_t = 0.5)]
    chaos_silent_share: f64,
    /// chaos: second of the sends at which one node is killed with SIGKILL
    /// (negative: never).
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    chaos_kill_at: f64,
    /// chaos: seconds the killed node stays down before it starts again.
    #[arg(long, default_value_t = 3.0)]
    chaos_node_down: f64,
    /// chaos: second of the sends at which Redis (every master of a
    /// cluster) is killed with SIGKILL and restarted on its append-only file
    /// (negative: never).
    #[arg(long, default_value_t = 40.0, allow_hyphen_values = true)]
    chaos_redis_restart_at: f64,
    /// chaos: seconds Redis stays down.
    #[arg(long, default_value_t = 2.0)]
    chaos_redis_down: f64,
    /// chaos: Redis topologies to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Topology::Single, Topology::Cluster])]
    chaos_topology: Vec<Topology>,
    /// chaos: longest wait after the sends for reconnects and missed
    /// messages.
    #[arg(long, default_value_t = 20.0)]
    chaos_settle: f64,
    /// chaos: what a client does when its session is not recovered:
    /// `since` re-joins each channel with `since` (the history API), `none`
    /// relies on connection state recovery alone (an unmodified
    /// socket.io-client app).
    #[arg(long, value_enum, default_value_t = Fallback::Since)]
    chaos_fallback: Fallback,
    /// chaos: seed of the random choices [default: from the clock].
    #[arg(long)]
    chaos_seed: Option<u64>,

    /// Filler bytes in each message text (after the timestamp marker).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds a send may wait for its ack (every send asks for one) before
    /// it counts as timed out and frees its place in the window.
    #[arg(long, default_value_t = 10.0)]
    ack_timeout: f64,
    /// Seconds to wait for missing deliveries after the last send.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Connections set up concurrently.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Seconds allowed for the setup phase (and for one connection's setup).
    #[arg(long, default_value_t = 180.0)]
    setup_timeout: f64,

    /// chatgate binary [default: $CARGO_TARGET_DIR/release/chatgate or target/release/chatgate].
    #[arg(long)]
    chatgate_bin: Option<PathBuf>,
    /// Node executable.
    #[arg(long, default_value = "node")]
    node_bin: String,
    /// Directory of the Node reference server.
    #[arg(long, default_value = "bench/node")]
    node_dir: PathBuf,
    /// CPU list the servers are pinned to (taskset -c).
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// CPU list the generator pins itself to (taskset -c, by re-exec).
    #[arg(long, default_value = "1")]
    client_cpu: String,
    /// Extra environment variable for the servers, KEY=VALUE (repeatable).
    #[arg(long, value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// Do not pin anything.
    #[arg(long)]
    no_pin: bool,
    /// Parent directory of the per-run result folders.
    #[arg(long, default_value = "bench/results")]
    results_dir: PathBuf,
}

/// Parses `KEY=VALUE`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Re-executes this binary under `taskset -c <cpu>` unless already done.
/// Returns the child's exit code when it did.
fn pin_self(cpu: &str) -> Option<ExitCode> {
    if std::env::var_os(PINNED_ENV).is_some() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = Command::new("taskset")
        .arg("-c")
        .arg(cpu)
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(PINNED_ENV, cpu)
        .status();
    match status {
        Ok(s) => Some(ExitCode::from(
            s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1),
        )),
        Err(e) => {
            eprintln!("warning: cannot re-exec under taskset ({e}); generator not pinned");
            None
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) and `YYYYMMDD-HHMMSS` for now.
fn now_utc() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (H. Hinnant), valid for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}"),
        format!("{y:04}{mo:02}{d:02}-{h:02}{m:02}{s:02}"),
    )
}

/// CPU count and model from `/proc/cpuinfo`.
fn machine() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    (cpus.to_string(), model)
}

/// Turns `--url` into a client target.
fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("--url must start with ws:// or http:// (got {url})"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    let mut target = Target::for_addr(addr);
    if path.contains("socket.io") {
        target.url = format!("ws://{authority}{path}");
    } else {
        target.url = format!("ws://{authority}/socket.io/?EIO=4&transport=websocket");
    }
    Ok(target)
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Idle => "idle",
        Scenario::Fanout => "fanout",
        Scenario::Rooms => "rooms",
        Scenario::Cluster => "cluster",
        Scenario::Chaos => "chaos",
    }
}

/// Runs one scenario against `target` (one server; `cluster` against an
/// already running server measures the `rooms` load through one node).
async fn run_scenario(
    cli: &Cli,
    scenario: Scenario,
    target: &Target,
    server: Option<&ServerProcess>,
    opts: &RunOptions,
) -> Outcome {
    let targets = std::slice::from_ref(target);
    let servers = server.as_slice();
    match scenario {
        Scenario::Idle => Outcome::Idle(
            scenarios::idle(
                target,
                server,
                cli.idle_conns,
                Duration::from_secs_f64(cli.idle_settle),
                opts,
            )
            .await,
        ),
        Scenario::Fanout => Outcome::Fanout(
            scenarios::traffic(
                targets,
                servers,
                None,
                TrafficPlan {
                    clients: cli.fanout_receivers + 1,
                    room_size: cli.fanout_receivers + 1,
                    everyone_sends: false,
                    messages: cli.fanout_messages,
                    rate: cli.fanout_rate,
                    in_flight: Some(cli.fanout_in_flight),
                },
                opts,
            )
            .await,
        ),
        Scenario::Rooms => Outcome::Rooms(
            scenarios::traffic(
                targets,
                servers,
                None,
                TrafficPlan {
                    clients: cli.rooms_clients,
                    room_size: cli.room_size,
                    everyone_sends: true,
                    messages: (cli.rooms_duration * cli.rooms_rate).round().max(1.0) as u32,
                    rate: Some(cli.rooms_rate),
                    in_flight: None,
                },
                opts,
            )
            .await,
        ),
        Scenario::Cluster => Outcome::Cluster(
            scenarios::traffic(targets, servers, None, cluster_plan(cli), opts).await,
        ),
        Scenario::Chaos => Outcome::Failed(
            "chaos starts its own nodes and Redis; it does not run against --url".into(),
        ),
    }
}

/// The `cluster` scenario's load.
fn cluster_plan(cli: &Cli) -> TrafficPlan {
    TrafficPlan {
        clients: cli.cluster_clients,
        room_size: cli.cluster_room_size,
        everyone_sends: true,
        messages: (cli.cluster_duration * cli.cluster_rate).round().max(1.0) as u32,
        rate: Some(cli.cluster_rate),
        in_flight: None,
    }
}

/// Runs `cluster` against `nodes` servers of `kind` on a fresh Redis.
async fn run_cluster(
    cli: &Cli,
    kind: ServerKind,
    launch: &LaunchOptions,
    opts: &RunOptions,
) -> Outcome {
    let mut cluster = match Cluster::start(kind, launch, cli.cluster_nodes, "cluster") {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let targets: Vec<Target> = cluster
        .nodes
        .iter()
        .map(|n| Target::for_addr(n.addr))
        .collect();
    let servers: Vec<&ServerProcess> = cluster.nodes.iter().collect();
    let result = scenarios::traffic(
        &targets,
        &servers,
        Some(&cluster.redis),
        cluster_plan(cli),
        opts,
    )
    .await;
    match cluster.dead_node() {
        Some(e) => Outcome::Failed(e),
        None => Outcome::Cluster(result),
    }
}

/// A seconds flag that a negative value turns off.
fn optional_secs(secs: f64) -> Option<Duration> {
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The `chaos` scenario's plan for one Redis topology.
fn chaos_plan(cli: &Cli, topology: Topology, seed: u64) -> ChaosPlan {
    ChaosPlan {
        topology,
        nodes: cli.chaos_nodes,
        clients: cli.chaos_clients,
        channels_per_client: cli.chaos_channels_per_client,
        channel_size: cli.chaos_channel_size,
        rate: cli.chaos_rate,
        duration: Duration::from_secs_f64(cli.chaos_duration.max(0.0)),
        cut_rate: cli.chaos_cut_rate,
        silent_share: cli.chaos_silent_share.clamp(0.0, 1.0),
        kill_at: optional_secs(cli.chaos_kill_at),
        node_down: Duration::from_secs_f64(cli.chaos_node_down.max(0.0)),
        redis_restart_at: optional_secs(cli.chaos_redis_restart_at),
        redis_down: Duration::from_secs_f64(cli.chaos_redis_down.max(0.0)),
        settle: Duration::from_secs_f64(cli.chaos_settle.max(0.0)),
        seed,
        since_fallback: cli.chaos_fallback == Fallback::Since,
        connect_concurrency: cli.connect_concurrency,
        setup_timeout: Duration::from_secs_f64(cli.setup_timeout),
    }
}

/// Runs `chaos` once per `--chaos-topology` (chatgate only: the Node
/// reference keeps no history).
async fn run_chaos(cli: &Cli, launch: &LaunchOptions, runs: &mut Vec<Run>) {
    let seed = cli.chaos_seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    for &topology in &cli.chaos_topology {
        eprintln!("== chaos against chatgate on {} Redis", topology.name());
        let outcome = match chaos::chaos(launch, &chaos_plan(cli, topology, seed)).await {
            Ok(result) => Outcome::Chaos(Box::new(result)),
            Err(e) => {
                eprintln!("  FAILED: {e}");
                Outcome::Failed(e)
            }
        };
        runs.push(Run {
            scenario: "chaos",
            server: format!("chatgate ({})", topology.name()),
            outcome,
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Whether every `chaos` run finished with nothing lost.
fn chaos_passed(runs: &[Run]) -> bool {
    runs.iter()
        .filter(|r| r.scenario == "chaos")
        .all(|r| matches!(&r.outcome, Outcome::Chaos(c) if c.lost == 0))
}

/// Runs the scenarios; `Ok(false)` when a `chaos` check failed.
async fn run(cli: Cli) -> Result<bool, String> {
    let (date, stamp) = now_utc();
    let out_dir = cli.results_dir.join(&stamp);
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let (cpus, model) = machine();
    let pinned = std::env::var(PINNED_ENV).ok();
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let header = Header {
        loadavg,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        date,
        cpus,
        model,
        pinning: match (&pinned, cli.no_pin || cli.url.is_some()) {
            (_, true) => "none".into(),
            (Some(c), false) => format!(
                "servers (and cluster's Redis) on CPU {}, generator on CPU {c}",
                cli.server_cpu
            ),
            (None, false) => format!(
                "servers (and cluster's Redis) on CPU {}, generator unpinned",
                cli.server_cpu
            ),
        },
    };
    let mut opts = RunOptions {
        connect_concurrency: cli.connect_concurrency,
        setup_timeout: Duration::from_secs_f64(cli.setup_timeout),
        drain: Duration::from_secs_f64(cli.drain),
        padding: cli.payload,
        channel_prefix: String::new(),
        ack_timeout: Duration::from_secs_f64(cli.ack_timeout.max(0.001)),
    };
    let mut runs = Vec::new();
    if let Some(url) = &cli.url {
        let target = parse_url(url)?;
        // Channels unique to this invocation: the server may keep memberships.
        opts.channel_prefix = format!("b{stamp}-");
        for &scenario in &cli.scenarios {
            eprintln!("== {} against {url}", scenario_name(scenario));
            let outcome = run_scenario(&cli, scenario, &target, None, &opts).await;
            runs.push(Run {
                scenario: scenario_name(scenario),
                server: url.clone(),
                outcome,
            });
        }
    } else {
        let kinds: &[ServerKind] = match cli.server {
            ServerChoice::Chatgate => &[ServerKind::Chatgate],
            ServerChoice::Node => &[ServerKind::Node],
            ServerChoice::Both => &[ServerKind::Node, ServerKind::Chatgate],
        };
        let launch = LaunchOptions {
            chatgate_bin: cli.chatgate_bin.clone().unwrap_or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                    .join("release/chatgate")
            }),
            node_bin: cli.node_bin.clone(),
            node_dir: cli.node_dir.clone(),
            core: (!cli.no_pin).then(|| cli.server_cpu.clone()),
            log_dir: out_dir.clone(),
            extra_env: cli.server_env.clone(),
            redis_bin: cli.redis_bin.clone(),
        };
        for &scenario in &cli.scenarios {
            let name = scenario_name(scenario);
            if scenario == Scenario::Chaos {
                run_chaos(&cli, &launch, &mut runs).await;
                continue;
            }
            for &kind in kinds {
                eprintln!("== {name} against {kind}");
                let outcome = if scenario == Scenario::Cluster {
                    run_cluster(&cli, kind, &launch, &opts).await
                } else {
                    match ServerProcess::start(kind, &launch, name) {
                        Ok(mut server) => {
                            let target = Target::for_addr(server.addr);
                            let outcome =
                                run_scenario(&cli, scenario, &target, Some(&server), &opts).await;
                            if !server.alive() {
                                Outcome::Failed(format!(
                                    "{kind} died during the run; log:\n{}",
                                    server.log_tail()
                                ))
                            } else {
                                outcome
                            }
                        }
                        Err(e) => Outcome::Failed(e),
                    }
                };
                if let Outcome::Failed(e) = &outcome {
                    eprintln!("  FAILED: {e}");
                }
                runs.push(Run {
                    scenario: name,
                    server: kind.to_string(),
                    outcome,
                });
                // Let the closed sockets drain before the next server starts.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let text = report::render(&header, &runs);
    println!("{text}");
    let report_path = out_dir.join("report.md");
    std::fs::write(&report_path, &text).map_err(|e| format!("{}: {e}", report_path.display()))?;
    let plot_path = out_dir.join("plot.svg");
    plot::write_svg(&plot_path, &runs)?;
    eprintln!(
        "wrote {} and {}",
        report_path.display(),
        plot_path.display()
    );
    Ok(chaos_passed(&runs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.no_pin
        && cli.url.is_none()
        && let Some(code) = pin_self(&cli.client_cpu)
    {
        return code;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("chaos: messages were lost (or a chaos run failed)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
