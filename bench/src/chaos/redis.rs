//! The Redis the chaos nodes share: one `redis-server`, or a local Redis
//! Cluster of three masters, each restartable on the same port and data
//! directory with append-only persistence (memberships survive a restart).
//!
//! Starting and waiting block the calling thread: the scenario runs them on
//! `spawn_blocking`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `redis-server` that can be killed (SIGKILL) and started again.
#[derive(Debug)]
pub(crate) struct RedisNode {
    /// Loopback port, the same across restarts.
    pub(crate) port: u16,
    /// Data directory (AOF, `nodes.conf`), the same across restarts.
    dir: PathBuf,
    /// Log file (appended to across restarts).
    log: PathBuf,
    /// Extra arguments (cluster mode).
    extra: Vec<String>,
    /// `redis-server` executable.
    bin: String,
    /// CPU list for `taskset -c`, if pinned.
    core: Option<String>,
    /// The process while it runs.
    child: Option<Child>,
}

impl RedisNode {
    /// A node on a fresh port with its data in `dir` (created); not started.
    fn new(
        dir: PathBuf,
        log: PathBuf,
        extra: Vec<String>,
        bin: &str,
        core: Option<String>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind probe: {e}"))?;
            probe.local_addr().map_err(|e| e.to_string())?.port()
        };
        Ok(Self {
            port,
            dir,
            log,
            extra,
            bin: bin.to_string(),
            core,
            child: None,
        })
    }

    fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Starts the server and waits until it answers `PING` (after loading
    /// its append-only file).
    fn start(&mut self) -> Result<(), String> {
        self.kill();
        let mut cmd = match &self.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "yes"])
            // An ok ack promises the message is stored: on disk before the
            // reply, so a kill -9 of Redis loses no acknowledged write.
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra);
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {} ({e}); is redis-server installed?", self.bin))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "redis-server on port {} exited during startup ({status}); log {}",
                    self.port,
                    self.log.display()
                ));
            }
            if command(self.addr(), "PING").is_some_and(|r| r.starts_with("+PONG")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {} did not answer PING within 20 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no goodbye, no final write.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one inline command and returns the first reply chunk as text.
fn command(addr: SocketAddr, cmd: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Which Redis the nodes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Topology {
    /// One `redis-server`.
    Single,
    /// A local Redis Cluster of three masters, no replicas.
    Cluster,
}

impl Topology {
    /// Short name for labels and reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Cluster => "cluster",
        }
    }
}

/// The running Redis of one chaos run.
#[derive(Debug)]
pub(crate) struct RedisSetup {
    /// Which topology.
    pub(crate) topology: Topology,
    /// Its servers (one, or the three masters).
    nodes: Vec<RedisNode>,
    /// Parent of the data directories, removed on drop.
    root: PathBuf,
}

impl RedisSetup {
    /// Starts the topology with data under `root` (created, removed on
    /// drop) and logs in `log_dir`.
    pub(crate) fn start(
        topology: Topology,
        root: PathBuf,
        log_dir: &std::path::Path,
        bin: &str,
        core: Option<String>,
    ) -> Result<Self, String> {
        let count = match topology {
            Topology::Single => 1,
            Topology::Cluster => 3,
        };
        let extra: Vec<String> = match topology {
            Topology::Single => Vec::new(),
            Topology::Cluster => ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                .map(String::from)
                .to_vec(),
        };
        let mut nodes = Vec::new();
        for i in 0..count {
            nodes.push(RedisNode::new(
                root.join(format!("n{i}")),
                log_dir.join(format!("redis-chaos-{}-{i}.log", topology.name())),
                extra.clone(),
                bin,
                core.clone(),
            )?);
        }
        let mut setup = Self {
            topology,
            nodes,
            root,
        };
        for node in &mut setup.nodes {
            node.start()?;
        }
        if topology == Topology::Cluster {
            let mut create = Command::new("redis-cli");
            create.arg("--cluster").arg("create");
            for node in &setup.nodes {
                create.arg(format!("127.0.0.1:{}", node.port));
            }
            let output = create
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "redis-cli --cluster create failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            setup.wait_cluster_ok()?;
        }
        Ok(setup)
    }

    /// The URL the nodes get and whether it is a cluster (`REDIS_CLUSTER`).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let first = self.nodes.first().map_or(0, |n| n.port);
        let mut env = vec![("REDIS_URL".into(), format!("redis://127.0.0.1:{first}"))];
        if self.topology == Topology::Cluster {
            env.push(("REDIS_CLUSTER".into(), "true".into()));
        }
        env
    }

    /// Kills every server (SIGKILL).
    pub(crate) fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Starts every server again on its port and data; for a cluster, waits
    /// until every master says `cluster_state:ok`.
    pub(crate) fn restart_all(&mut self) -> Result<(), String> {
        for node in &mut self.nodes {
            node.start()?;
        }
        if self.topology == Topology::Cluster {
            self.wait_cluster_ok()?;
        }
        Ok(())
    }

    /// A description of a server that is not running, if any.
    pub(crate) fn dead(&mut self) -> Option<String> {
        self.nodes.iter_mut().find_map(|n| {
            (!n.alive()).then(|| format!("redis-server on port {} is not running", n.port))
        })
    }

    fn wait_cluster_ok(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &self.nodes {
            loop {
                if command(node.addr(), "CLUSTER INFO")
                    .is_some_and(|info| info.contains("cluster_state:ok"))
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "Redis Cluster node on port {} not ok within 30 s",
                        node.port
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for RedisSetup {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
