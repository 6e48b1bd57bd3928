//! A whole chatgate server (in-process, default settings) through Redis
//! outages, with the real `socket.io-client` (issue #11, "Every ok ack
//! kept"):
//!
//! - after a Redis restart, requests succeed again within about a second,
//!   however many requests failed meanwhile;
//! - a CONNECT during an outage is held, never answered with
//!   `connect_error`; when the outage outlasts the hold, the transport is
//!   closed and the client's own reconnection gets it in;
//! - after a restart without persistence, the memberships of connected
//!   users are restored from their live subscriptions.
//!
//! `redis-server` must be installed; these tests never skip.

mod support;

#[path = "backend_suite/redis_proc.rs"]
#[allow(dead_code)]
mod redis_proc;

use std::time::Duration;

use chatgate::config::{Config, RedisSettings, Secret};
use chatgate::server::{RunningServer, Server};
use serde_json::{Value, json};
use tokio::time::Instant;

use redis_proc::RedisProc;
use support::chat::{ack, ack_bare, as_user};
use support::{NodeBridge, SioClient, default_timeout, http_get};

/// A chatgate server on the Redis at `port`, once `/readyz` says 200.
async fn chatgate_on(port: u16) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = Config {
        bind: listener.local_addr().expect("addr"),
        redis: Some(RedisSettings {
            url: Secret::new(format!("redis://127.0.0.1:{port}")),
            cluster: false,
            tls: false,
            key_prefix: format!("outage{}", std::process::id()),
        }),
        ..Config::default()
    };
    let (server, _task) = Server::spawn(config, listener).expect("spawn");
    let addr = server.addr();
    wait_for("/readyz to answer 200", default_timeout(), || async move {
        http_get(addr, "/readyz", &[]).await.status == 200
    })
    .await;
    server
}

/// Waits until `condition` holds (checked every 10 ms), failing after `timeout`.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of counter `name` on the server's `/metrics` (0 when absent).
async fn counter(server: &RunningServer, name: &str) -> u64 {
    let text = http_get(server.addr(), "/metrics", &[]).await.text();
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

async fn send(client: &SioClient, channel: &str, text: &str) -> Value {
    ack(
        client,
        "message:send",
        json!({ "channelId": channel, "text": text }),
    )
    .await
}

/// Kills Redis and waits until the server reports it unready.
async fn outage(redis: &mut RedisProc, server: &RunningServer) {
    redis.kill();
    let addr = server.addr();
    wait_for("/readyz to answer 503", default_timeout(), || async move {
        http_get(addr, "/readyz", &[]).await.status == 503
    })
    .await;
}

/// The defect: the health check's backoff doubled on every check, also on
/// the checks failing requests brought forward, so after a 1.1 s outage
/// requests kept failing for 2.3-5.5 s after Redis was back.
#[tokio::test]
async fn requests_succeed_within_a_second_and_a_half_of_redis_coming_back() {
    let mut redis = RedisProc::start(None, &["--appendonly", "yes"]).await;
    let server = chatgate_on(redis.port()).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let joined = ack(&alice, "channel:join", json!("general")).await;
    assert_eq!(joined["status"], "ok", "{joined}");

    let killed = Instant::now();
    outage(&mut redis, &server).await;
    // Requests keep failing during the outage (at least 1.1 s of them).
    let mut failed = 0;
    while killed.elapsed() < Duration::from_millis(1100) {
        let reply = send(&alice, "general", "during").await;
        assert_eq!(reply["code"], "SERVICE_UNAVAILABLE", "{reply}");
        failed += 1;
    }
    assert!(failed > 0);

    redis.restart().await;
    let back = Instant::now();
    let limit = Duration::from_millis(1500);
    loop {
        let reply = send(&alice, "general", "after").await;
        if reply["status"] == "ok" {
            break;
        }
        assert_eq!(reply["code"], "SERVICE_UNAVAILABLE", "{reply}");
        assert!(
            back.elapsed() < limit,
            "requests still fail {:?} after Redis came back",
            back.elapsed()
        );
    }
    println!(
        "requests succeed {:?} after Redis came back",
        back.elapsed()
    );
    assert_eq!(http_get(server.addr(), "/readyz", &[]).await.status, 200);
}

/// A CONNECT during a short outage is held until Redis answers: the client
/// is connected on its first try, with no `connect_error`.
#[tokio::test]
async fn a_connect_during_an_outage_is_held_until_redis_answers() {
    let mut redis = RedisProc::start(None, &["--appendonly", "yes"]).await;
    let server = chatgate_on(redis.port()).await;
    let bridge = NodeBridge::spawn().await;
    outage(&mut redis, &server).await;

    let url = server.url();
    let connecting = bridge.connect(&url, as_user("carol").with_reconnection(true));
    let restore = async {
        wait_for("the CONNECT to be held", default_timeout(), || {
            let server = &server;
            async move { counter(server, "chatgate_handshakes_held_total").await > 0 }
        })
        .await;
        redis.restart().await;
    };
    let (connected, ()) = tokio::join!(connecting, restore);
    let carol = connected.unwrap_or_else(|e| panic!("a held CONNECT must not fail: {e}"));
    let list = ack_bare(&carol, "channel:list").await;
    assert_eq!(list["status"], "ok", "{list}");
    assert_eq!(
        counter(&server, "chatgate_handshakes_closed_total").await,
        0
    );
    assert_eq!(
        counter(&server, "chatgate_handshakes_refused_total").await,
        0
    );
}

/// A CONNECT during an outage longer than the hold: the server closes the
/// transport (never `connect_error`, after which socket.io-client would give
/// up), the client reconnects by itself and gets in once Redis is back.
#[tokio::test]
async fn a_connect_outlasting_the_hold_is_closed_and_the_client_gets_in_later() {
    let mut redis = RedisProc::start(None, &["--appendonly", "yes"]).await;
    let server = chatgate_on(redis.port()).await;
    let bridge = NodeBridge::spawn().await;
    outage(&mut redis, &server).await;

    let mut options = as_user("dave").with_reconnection(true);
    options.extra = json!({ "reconnectionDelay": 100, "randomizationFactor": 0 });
    let url = server.url();
    let connecting = bridge.connect(&url, options);
    let restore = async {
        wait_for(
            "the held CONNECT's transport to be closed",
            default_timeout(),
            || {
                let server = &server;
                async move { counter(server, "chatgate_handshakes_closed_total").await > 0 }
            },
        )
        .await;
        redis.restart().await;
    };
    let (connected, ()) = tokio::join!(connecting, restore);
    let dave = connected.unwrap_or_else(|e| panic!("no connect_error for an outage: {e}"));
    let list = ack_bare(&dave, "channel:list").await;
    assert_eq!(list["status"], "ok", "{list}");
    assert_eq!(
        counter(&server, "chatgate_handshakes_refused_total").await,
        0
    );
}

/// Redis restarted without persistence forgets every membership; the node
/// writes back those of its connected users from their subscriptions, so
/// they can still send where they receive.
#[tokio::test]
async fn memberships_of_connected_users_survive_a_restart_without_persistence() {
    let mut redis = RedisProc::start(None, &[]).await;
    let server = chatgate_on(redis.port()).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    for (client, channel) in [(&alice, "general"), (&alice, "random"), (&bob, "general")] {
        let joined = ack(client, "channel:join", json!(channel)).await;
        assert_eq!(joined["status"], "ok", "{joined}");
    }

    outage(&mut redis, &server).await;
    redis.restart().await;
    // Redis is empty now; until the node restored them, sends may be refused.
    let back = Instant::now();
    for channel in ["general", "random"] {
        loop {
            let reply = send(&alice, channel, "still here").await;
            if reply["status"] == "ok" {
                break;
            }
            assert!(
                reply["code"] == "SERVICE_UNAVAILABLE" || reply["code"] == "NOT_IN_CHANNEL",
                "{reply}"
            );
            assert!(
                back.elapsed() < default_timeout(),
                "alice still cannot send to {channel}: {reply}"
            );
        }
    }
    let event = bob.next_event("message:new").await;
    assert_eq!(event[0]["channelId"], "general");
    let reply = send(&bob, "general", "me too").await;
    assert_eq!(reply["status"], "ok", "{reply}");

    // A fresh connection of alice is subscribed to both channels again.
    let alice2 = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let list = ack_bare(&alice2, "channel:list").await;
    let mut channels: Vec<&str> = list["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["channelId"].as_str())
        .collect();
    channels.sort_unstable();
    assert_eq!(channels, ["general", "random"], "{list}");
    send(&bob, "general", "to the new tab").await;
    loop {
        let event = alice2.next_event("message:new").await;
        if event[0]["text"] == "to the new tab" {
            break;
        }
    }
}
