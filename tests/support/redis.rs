//! [`RedisServer`]: a throwaway `redis-server` for tests that need Redis.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::default_timeout;

/// How many times a start is retried when the free port was taken in between.
const START_ATTEMPTS: u32 = 3;

/// A `redis-server` on `127.0.0.1:<free port>`, without persistence, in its own
/// temporary directory; killed (and its directory removed) on drop.
pub(crate) struct RedisServer {
    /// The process.
    child: Child,
    /// Its address.
    addr: SocketAddr,
    /// Its working directory (`--dir`), removed on drop.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Whether `redis-server` can be started (it is on the `PATH`).
    pub(crate) fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Starts one and waits until it answers `PING`. Panics if `redis-server` is
    /// missing (install it, or run `./scripts/test`, which does) or never answers.
    pub(crate) async fn start() -> RedisServer {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start().await {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("cannot start redis-server: {last_error}");
    }

    /// One attempt: pick a free port, spawn, wait for `PING`.
    async fn try_start() -> Result<RedisServer, String> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            probe.local_addr().map_err(|e| e.to_string())?.port()
        };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run redis-server ({e}); install it (e.g. `apt-get install redis-server`) or run ./scripts/test"))?;
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + default_timeout();
        loop {
            if ping(server.addr).await {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server on port {port} exited: {status}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer PING within {:?}",
                    default_timeout()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `PING` and checks for `+PONG`.
async fn ping(addr: SocketAddr) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0_u8; 7];
        stream.read_exact(&mut reply).await.ok()?;
        Some(&reply == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), exchange).await,
        Ok(Some(true))
    )
}
