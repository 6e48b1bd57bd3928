//! The server's own lifetime: it serves until told to stop, and then stops
//! in bounded time. Time is virtual here (`start_paused`): an hour passes in
//! an instant, and only a timer that should not exist could end the server.

use std::time::Duration;

use chatgate::config::Config;
use chatgate::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `GET /healthz` over a fresh connection; the status code, or `None` when
/// nothing answers.
async fn health(addr: std::net::SocketAddr) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

async fn start(
    shutdown_timeout: Duration,
) -> (
    chatgate::server::RunningServer,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let config = Config {
        bind: listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}")),
        shutdown_timeout,
        ..Config::default()
    };
    Server::spawn(config, listener).unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// Regression: the shutdown deadline once wrapped the whole server, which
/// then stopped by itself `SHUTDOWN_TIMEOUT_MS` + 1 s after starting.
#[tokio::test(start_paused = true)]
async fn serves_long_past_the_shutdown_timeout() {
    let (server, task) = start(Duration::from_secs(1)).await;
    assert_eq!(health(server.addr()).await, Some(200));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(
        !task.is_finished(),
        "the server stopped without being told to"
    );
    assert_eq!(health(server.addr()).await, Some(200));
}

/// Told to stop, it stops, within the shutdown timeout.
#[tokio::test(start_paused = true)]
async fn stops_when_told_within_the_shutdown_timeout() {
    let (mut server, task) = start(Duration::from_secs(2)).await;
    assert_eq!(health(server.addr()).await, Some(200));
    server.stop();
    let stopped = tokio::time::timeout(Duration::from_secs(4), task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "did not stop cleanly in time: {stopped:?}"
    );
}
