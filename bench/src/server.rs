//! Starting the servers under test and reading their resource use from `/proc`.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The servers the bench knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ServerKind {
    /// The Rust gateway (`target/release/chatgate`).
    Chatgate,
    /// The Node/Socket.IO reference server in `bench/node`.
    Node,
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Chatgate => "chatgate",
            Self::Node => "node",
        })
    }
}

/// How to start the servers.
#[derive(Debug, Clone)]
pub(crate) struct LaunchOptions {
    /// Path of the chatgate binary.
    pub(crate) chatgate_bin: PathBuf,
    /// Node executable.
    pub(crate) node_bin: String,
    /// Directory holding `server.js` and its `node_modules`.
    pub(crate) node_dir: PathBuf,
    /// CPU list for `taskset -c`, or `None` to leave the server unpinned.
    pub(crate) core: Option<String>,
    /// Directory for the server logs.
    pub(crate) log_dir: PathBuf,
    /// Extra environment for the servers (`--server-env`), applied last.
    pub(crate) extra_env: Vec<(String, String)>,
    /// `redis-server` executable (the `cluster` scenario).
    pub(crate) redis_bin: String,
}

/// A running server process, killed when dropped.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    /// Which server this is.
    pub(crate) kind: ServerKind,
    /// Address it listens on.
    pub(crate) addr: SocketAddr,
    /// Its process id (`taskset` execs, so this is the server itself).
    pub(crate) pid: u32,
    child: Child,
    log: PathBuf,
}

/// Asks the kernel for a free loopback port.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind probe: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl ServerProcess {
    /// Starts `kind` on a fresh port and waits until it accepts connections.
    pub(crate) fn start(
        kind: ServerKind,
        opts: &LaunchOptions,
        label: &str,
    ) -> Result<Self, String> {
        Self::start_with_env(kind, opts, label, &[])
    }

    /// [`Self::start`] with extra environment (`REDIS_URL` for a cluster
    /// node), applied before `--server-env`.
    pub(crate) fn start_with_env(
        kind: ServerKind,
        opts: &LaunchOptions,
        label: &str,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (program, args, dir): (PathBuf, Vec<String>, Option<&Path>) = match kind {
            ServerKind::Chatgate => (
                opts.chatgate_bin.clone(),
                vec!["--bind".into(), addr.to_string()],
                None,
            ),
            ServerKind::Node => (
                PathBuf::from(&opts.node_bin),
                vec!["server.js".into()],
                Some(opts.node_dir.as_path()),
            ),
        };
        if kind == ServerKind::Chatgate && !program.exists() {
            return Err(format!(
                "chatgate binary not found at {} (cargo build --release -p chatgate)",
                program.display()
            ));
        }
        let mut cmd = match &opts.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(&args);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env(
                "RATE_LIMITS",
                "message:send=1000000/s,channel:join=1000000/s,default=1000000/s",
            )
            .env("MAX_CHANNELS_PER_USER", "1000000")
            .env("MAX_CONNECTIONS_PER_USER", "1000000")
            // Every run ends with SIGKILL; a long drain limit keeps builds
            // whose shutdown timer also bounds the serving up (see
            // docs/benchmarks.md) running for the whole scenario.
            .env("SHUTDOWN_TIMEOUT_MS", "3600000")
            .env("RUST_LOG", "warn")
            .env("NODE_ENV", "production")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .envs(opts.extra_env.iter().map(|(k, v)| (k, v)));
        let log = opts.log_dir.join(format!("{kind}-{label}.log"));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let pid = child.id();
        let mut server = Self {
            kind,
            addr,
            pid,
            child,
            log,
        };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited during startup ({status}); log {}:\n{}",
                    self.kind,
                    self.log.display(),
                    self.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                // Let the process finish its startup work before the baseline.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {} within {limit:?}; log:\n{}",
                    self.kind,
                    self.addr,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Last lines of the server log.
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Kills the process with SIGKILL (`kill -9`: no shutdown, no goodbye
    /// to anyone) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident set size in KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// CPU time consumed so far.
    pub(crate) fn cpu_time(&self) -> Option<CpuTimes> {
        cpu_time(self.pid)
    }

    /// Time its threads spent runnable but waiting for a CPU.
    pub(crate) fn run_delay(&self) -> Option<Duration> {
        run_delay(&format!("/proc/{}/task", self.pid))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway `redis-server` (no persistence), killed when dropped.
#[derive(Debug)]
pub(crate) struct RedisProcess {
    /// Address it listens on.
    pub(crate) addr: SocketAddr,
    /// Its process id (`taskset` execs, so this is `redis-server` itself).
    pub(crate) pid: u32,
    child: Child,
    log: PathBuf,
}

impl RedisProcess {
    /// Starts `redis-server` on a free loopback port, pinned like the servers,
    /// and waits until it answers `PING`.
    pub(crate) fn start(opts: &LaunchOptions, label: &str) -> Result<Self, String> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = match &opts.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core).arg(&opts.redis_bin);
                c
            }
            None => Command::new(&opts.redis_bin),
        };
        cmd.args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&opts.log_dir);
        let log = opts.log_dir.join(format!("redis-{label}.log"));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {} ({e}); is redis-server installed?", opts.redis_bin))?;
        let pid = child.id();
        let mut redis = Self {
            addr,
            pid,
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!(
                    "redis-server exited during startup ({status}); log {}:\n{}",
                    redis.log.display(),
                    tail(&redis.log)
                ));
            }
            if ping(addr) {
                return Ok(redis);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on {addr} did not answer PING within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// CPU time consumed so far (all its threads).
    pub(crate) fn cpu_time(&self) -> Option<CpuTimes> {
        cpu_time(self.pid)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a Redis at `addr` answers `PING` within half a second.
fn ping(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
        s.write_all(b"PING\r\n")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(buf[..n].starts_with(b"+PONG"))
    };
    attempt().unwrap_or(false)
}

/// Last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `nodes` servers of one kind on one fresh Redis (`REDIS_URL`): chatgate's
/// own cluster mode, or the Node reference with `@socket.io/redis-adapter`.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// The nodes, in the order clients are spread over them.
    pub(crate) nodes: Vec<ServerProcess>,
    /// The Redis they share (declared last: dropped after the nodes).
    pub(crate) redis: RedisProcess,
}

impl Cluster {
    /// Starts Redis, then the nodes one after the other.
    pub(crate) fn start(
        kind: ServerKind,
        opts: &LaunchOptions,
        nodes: u32,
        label: &str,
    ) -> Result<Self, String> {
        let redis = RedisProcess::start(opts, label)?;
        let env = [("REDIS_URL".to_string(), redis.url())];
        let nodes = (0..nodes.max(1))
            .map(|n| ServerProcess::start_with_env(kind, opts, &format!("{label}-{n}"), &env))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nodes, redis })
    }

    /// The first node that is no longer running, with its log.
    pub(crate) fn dead_node(&mut self) -> Option<String> {
        if !matches!(self.redis.child.try_wait(), Ok(None)) {
            return Some(format!(
                "redis-server died during the run; log:\n{}",
                tail(&self.redis.log)
            ));
        }
        self.nodes.iter_mut().enumerate().find_map(|(i, n)| {
            (!n.alive()).then(|| {
                format!(
                    "{} node {i} died during the run; log:\n{}",
                    n.kind,
                    n.log_tail()
                )
            })
        })
    }
}

/// `VmRSS` of a process, KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// User and system CPU time of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuTimes {
    /// utime.
    pub(crate) user: Duration,
    /// stime (for loopback TCP this includes the receiving side's network
    /// stack work, which runs in the sender's system call).
    pub(crate) system: Duration,
}

impl CpuTimes {
    /// user + system.
    pub(crate) fn total(&self) -> Duration {
        self.user + self.system
    }

    /// `self - earlier`, field by field.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// utime and stime of a process (all its threads, live and exited).
pub(crate) fn cpu_time(pid: u32) -> Option<CpuTimes> {
    cpu_time_of(&format!("/proc/{pid}/stat"))
}

/// utime and stime of this process.
pub(crate) fn own_cpu_time() -> Option<CpuTimes> {
    cpu_time_of("/proc/self/stat")
}

fn cpu_time_of(path: &str) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks();
    let to_duration = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks);
    Some(CpuTimes {
        user: to_duration(utime),
        system: to_duration(stime),
    })
}

/// Sum of `run_delay` (field 2 of `schedstat`: time spent on a run queue
/// waiting for a CPU) over the live threads under `task_dir`. A busy machine
/// shows up here: other processes took the pinned core.
pub(crate) fn run_delay(task_dir: &str) -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(task_dir).ok()?.flatten() {
        let stat = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_proc_entries() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(cpu_time(pid).is_some());
        assert!(own_cpu_time().is_some());
        assert!(run_delay("/proc/self/task").is_some());
    }
}
