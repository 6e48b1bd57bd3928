//! Harness of the multi-process tests (`tests/cluster.rs`): real `chatgate`
//! processes, a persistent `redis-server` that can be restarted on the same
//! port, a tiny TCP load balancer, and a pub/sub watcher of `offline`
//! presence broadcasts.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::default_timeout;

/// A free port on 127.0.0.1 (free when probed).
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address").port()
}

/// Waits for an async condition, checking every 20 ms, up to `timeout`.
pub(crate) async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `chatgate` process on `127.0.0.1:<port>`; killed (`SIGKILL`) on drop.
pub(crate) struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    /// Starts `chatgate` on Redis `redis_url` with extra environment and
    /// waits until `/readyz` answers 200.
    pub(crate) async fn start(redis_url: &str, env: &[(&str, &str)]) -> Node {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(env!("CARGO_BIN_EXE_chatgate"));
            command
                .env_clear()
                .args(["--bind", &format!("127.0.0.1:{port}")])
                .env("REDIS_URL", redis_url)
                .env("RUST_LOG", "warn,chatgate=info")
                .env("API_KEY", API_KEY)
                .stderr(Stdio::inherit());
            // Logs go to stdout: shown only when asked for.
            if std::env::var_os("CHATGATE_TEST_NODE_LOGS").is_some() {
                command.stdout(Stdio::inherit());
            } else {
                command.stdout(Stdio::null());
            }
            for (k, v) in env {
                command.env(k, v);
            }
            let child = command.spawn().expect("spawn chatgate");
            let mut node = Node {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match node.wait_ready().await {
                Ok(()) => return node,
                Err(e) => last = e,
            }
        }
        panic!("chatgate did not start: {last}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + default_timeout() * 2;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited: {status}"));
            }
            if ready(self.addr).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err("not ready in time".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `kill -9`.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `SIGTERM` (graceful drain).
    pub(crate) fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Sends a signal, e.g. `-STOP` or `-CONT`.
    pub(crate) fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit, up to `timeout`; whether it did.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /readyz` answers 200 (no panic when nothing listens yet).
async fn ready(addr: SocketAddr) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        Some(raw.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), exchange).await,
        Ok(Some(true))
    )
}

/// The API key every test node accepts.
pub(crate) const API_KEY: &str = "cluster-test-api-key-0123456789";

/// A `redis-server` with an append-only file in its own directory, so it
/// can be stopped and started again on the same port with its data.
pub(crate) struct PersistentRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PersistentRedis {
    /// Starts one on a free port.
    pub(crate) async fn start() -> PersistentRedis {
        let mut redis = PersistentRedis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        redis.spawn().await;
        redis
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let url = self.url();
        eventually("redis-server answers PING", default_timeout(), || {
            let url = url.clone();
            async move { ping(&url).await }
        })
        .await;
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (data kept on disk).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether Redis at `url` answers `PING`.
pub(crate) async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(_))
    )
}

/// A TCP load balancer on 127.0.0.1: each new connection goes to the next
/// backend (round robin) that accepts it. Backends can be changed at any time.
pub(crate) struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: JoinHandle<()>,
}

impl Balancer {
    /// Starts one in front of `backends`.
    pub(crate) async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let backends = Arc::new(Mutex::new(backends));
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            let mut next = 0_usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let candidates = shared.lock().clone();
                next = next.wrapping_add(1);
                tokio::spawn(async move {
                    for i in 0..candidates.len() {
                        let target = candidates[(next + i) % candidates.len()];
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Balancer {
            addr,
            backends,
            task,
        }
    }

    /// `http://<addr>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the backends.
    pub(crate) fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock() = backends;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches every broadcast on Redis and records the users announced
/// `offline` by `presence:update` (the msgpack payload holds both strings
/// and the user id in clear).
pub(crate) struct OfflineWatch {
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl OfflineWatch {
    /// Subscribes to `socket.io#/#*` on `url`, looking for `users`.
    pub(crate) async fn start(url: &str, users: &[&str]) -> OfflineWatch {
        let client = redis::Client::open(url).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
        pubsub
            .psubscribe("socket.io#/#*")
            .await
            .expect("psubscribe");
        let users: Vec<String> = users.iter().map(|u| (*u).to_owned()).collect();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = pubsub.on_message();
            while let Some(message) = stream.next().await {
                let payload = message.get_payload_bytes().to_vec();
                if !contains(&payload, b"presence:update") || !contains(&payload, b"offline") {
                    continue;
                }
                for user in &users {
                    let mut quoted = vec![0xa0 | user.len() as u8];
                    quoted.extend_from_slice(user.as_bytes());
                    if contains(&payload, &quoted) {
                        record.lock().push(user.clone());
                    }
                }
            }
        });
        OfflineWatch { seen, task }
    }

    /// Users announced offline so far, in order.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().clone()
    }
}

impl Drop for OfflineWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A local Redis Cluster of three masters (no replicas), each a
/// `redis-server --cluster-enabled yes` on a free port; all killed on drop.
pub(crate) struct RedisCluster {
    servers: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the three servers, joins them with `redis-cli --cluster
    /// create` and waits until every node reports `cluster_state:ok`.
    pub(crate) async fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = RedisCluster {
            servers: Vec::new(),
            ports: Vec::new(),
            _dir: dir,
        };
        for index in 0..3 {
            let port = free_port();
            let node_dir = cluster._dir.path().join(format!("n{index}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-node-timeout", "2000"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("redis-server runs");
            cluster.servers.push(child);
            cluster.ports.push(port);
        }
        for port in cluster.ports.clone() {
            let url = format!("redis://127.0.0.1:{port}");
            eventually("cluster node answers PING", default_timeout(), || {
                let url = url.clone();
                async move { ping(&url).await }
            })
            .await;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let status = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster create failed");
        for port in cluster.ports.clone() {
            let url = format!("redis://127.0.0.1:{port}");
            eventually("cluster_state:ok", default_timeout() * 2, || {
                let url = url.clone();
                async move { cluster_ok(&url).await }
            })
            .await;
        }
        cluster
    }

    /// The seed URL chatgate is given (`REDIS_CLUSTER=true` with it).
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }

    /// Every node's URL.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the node at `url` says `cluster_state:ok`.
async fn cluster_ok(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(info)) if info.contains("cluster_state:ok")
    )
}
