//! Self-tests of the integration-test harness (`tests/support`): the Node
//! bridge survives bad input, and the throwaway Redis server starts.

mod support;

use serde_json::json;
use support::{NodeBridge, RedisServer, TestServer, as_binary, binary, http_get};

#[tokio::test]
async fn bridge_survives_bad_commands_and_unreachable_servers() {
    let bridge = NodeBridge::spawn().await;
    for bad in [
        json!({ "cmd": "no-such-command" }),
        json!({ "cmd": "emit", "client": "ghost", "event": "x" }),
        json!({ "cmd": "connect", "client": "c", "url": "http://127.0.0.1:9", "version": 2 }),
        json!({}),
    ] {
        let answer = bridge.command(bad.clone()).await;
        assert!(answer.is_err(), "{bad} must be refused, got {answer:?}");
    }
    // Nothing listens there: a transport error ends in connect_error, not a hang.
    let url = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
        format!("http://{}", probe.local_addr().expect("probe address"))
    };
    for version in [4, 3] {
        let refused = bridge
            .connect(
                &url,
                support::ConnectOptions::websocket().with_version(version),
            )
            .await
            .expect_err("nothing serves Socket.IO there");
        assert!(!refused.message.is_empty(), "{refused}");
    }
}

#[tokio::test]
async fn test_server_serves_and_swaps_routers() {
    let server =
        TestServer::start(axum::Router::new().route("/v", axum::routing::get(|| async { "one" })))
            .await;
    assert_eq!(http_get(server.addr(), "/v", &[]).await.text(), "one");
    server.replace_router(axum::Router::new().route("/v", axum::routing::get(|| async { "two" })));
    assert_eq!(http_get(server.addr(), "/v", &[]).await.text(), "two");
    assert_eq!(http_get(server.addr(), "/missing", &[]).await.status, 404);
}

#[test]
fn binary_markers_round_trip() {
    let value = binary(&[0, 1, 254, 255]);
    assert_eq!(value, json!({ "$binary": "AAH+/w==" }));
    assert_eq!(as_binary(&value), Some(vec![0, 1, 254, 255]));
    assert_eq!(as_binary(&json!({ "$binary": "AA==", "x": 1 })), None);
}

#[tokio::test]
async fn redis_server_starts_and_answers() {
    if !RedisServer::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is required in CI (scripts/test installs it)"
        );
        eprintln!("skipped: redis-server is not installed (./scripts/test installs it)");
        return;
    }
    let first = RedisServer::start().await;
    let second = RedisServer::start().await;
    assert_ne!(first.addr(), second.addr(), "each test gets its own server");
    assert!(
        first.url().starts_with("redis://127.0.0.1:"),
        "{}",
        first.url()
    );
    let addr = first.addr();
    drop(first);
    support::wait_until(
        "redis-server gone after drop",
        support::default_timeout(),
        || std::net::TcpStream::connect(addr).is_err(),
    )
    .await;
}
