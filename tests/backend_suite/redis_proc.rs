//! [`RedisProc`]: a `redis-server` that a test can kill and restart on the
//! same port and data directory, with extra arguments (`--requirepass`,
//! TLS, append-only persistence). For a plain throwaway server the shared
//! `support::RedisServer` is enough.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a start may take before the test fails.
fn start_timeout() -> Duration {
    std::env::var("CHATGATE_TEST_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// A free loopback port (free when probed; a start retries if taken meanwhile).
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    probe.local_addr().expect("probe address").port()
}

/// A `redis-server` child process, killed on drop.
pub(crate) struct RedisProc {
    /// The running process, `None` while killed.
    child: Option<Child>,
    /// The port it listens on (plain TCP, or TLS when `tls` is set).
    port: u16,
    /// Extra command-line arguments, reused on restart.
    args: Vec<String>,
    /// Working directory (persistence files), kept across restarts.
    dir: tempfile::TempDir,
}

impl RedisProc {
    /// Starts `redis-server` on `127.0.0.1:<port>` (a fresh port when `None`)
    /// with `args` added, and waits until the port accepts connections. For
    /// TLS, pass `--port 0 --tls-port <port>` and the certificate options.
    /// Panics (loudly, no skipping) when `redis-server` is missing.
    pub(crate) async fn start(port: Option<u16>, args: &[&str]) -> RedisProc {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut proc = RedisProc {
            child: None,
            port: port.unwrap_or_else(free_port),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            dir,
        };
        proc.restart().await;
        proc
    }

    /// The data directory (for TLS material, say).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (SIGKILL: no goodbye, no save) and waits for it to go.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again with the same port, arguments and directory.
    pub(crate) async fn restart(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        if !self.args.iter().any(|a| a == "--port") {
            command.args(["--port", &self.port.to_string()]);
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); install it (apt-get install redis-server) \
                     or run ./scripts/test, which does"
                )
            });
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + start_timeout();
        loop {
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server on port {} did not listen within {:?}",
                self.port,
                start_timeout()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A throwaway CA and a server certificate for `127.0.0.1`/`localhost`,
/// made with the `openssl` command in `dir`. Returns (CA cert, server cert,
/// server key) paths.
pub(crate) fn make_tls_material(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e}); install it"));
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=chatgate test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}
