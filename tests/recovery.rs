//! Connection state recovery (wire contract v1.2, "History and recovery"),
//! driven by the real `socket.io-client` and its own recovery code: the
//! client keeps the `pid` of the CONNECT reply and the offset of the last
//! `message:new`, and sends both when it reconnects. On one in-memory node,
//! and across three chatgate processes on one Redis or a Redis Cluster
//! behind a balancer (another node, and a node killed with `kill -9`).

mod cluster_support;
mod support;

use std::time::{Duration, Instant};

use serde_json::json;

use cluster_support::{Balancer, Node, PersistentRedis, RedisCluster};
use support::chat::{ack, as_user, spawn_chatgate};
use support::{ConnectOptions, NodeBridge, RedisServer, SioClient, default_timeout};

/// A client that reconnects by itself, after a pause long enough for the
/// test to send while it is away.
fn reconnecting(user: &str) -> ConnectOptions {
    let mut options = as_user(user).with_reconnection(true);
    options.extra = json!({
        "reconnectionDelay": 400,
        "reconnectionDelayMax": 400,
        "randomizationFactor": 0,
    });
    options
}

async fn join(client: &SioClient, channel: &str) {
    let reply = ack(client, "channel:join", json!({ "channelId": channel })).await;
    assert_eq!(reply["status"], "ok", "join {channel}: {reply}");
}

async fn send(client: &SioClient, channel: &str, text: &str) -> u64 {
    let reply = ack(
        client,
        "message:send",
        json!({ "channelId": channel, "text": text }),
    )
    .await;
    assert_eq!(reply["status"], "ok", "send {text}: {reply}");
    reply["id"].as_u64().expect("id")
}

/// Texts of the `message:new` events `client` receives until `last` comes
/// (or the deadline), in order.
async fn texts_until(client: &SioClient, last: &str) -> Vec<String> {
    let deadline = Instant::now() + default_timeout();
    let mut texts = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = client.next_event_full("message:new", remaining).await;
        let text = event.args[0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let done = text == last;
        texts.push(text);
        if done {
            return texts;
        }
    }
}

/// A message while the client is connected, a cut, two while it is away
/// (in two channels: one offset covers both), then it recovers: same id,
/// `recovered`, exactly the two it missed, then live messages again.
async fn recovers_what_it_missed(
    bridge: &NodeBridge,
    bob_url: &str,
    alice_url: &str,
    cut: impl AsyncFnOnce(&SioClient),
) {
    let alice = bridge.connect_ok(alice_url, as_user("alice")).await;
    let bob = bridge.connect_ok(bob_url, reconnecting("bob")).await;
    for channel in ["room", "side"] {
        join(&alice, channel).await;
        join(&bob, channel).await;
    }
    send(&alice, "room", "before").await;
    assert_eq!(texts_until(&bob, "before").await, ["before"]);
    let sid = bob.id().to_owned();

    cut(&bob).await;
    bob.next_disconnect().await;
    send(&alice, "room", "away 1").await;
    send(&alice, "side", "away 2").await;

    let resumed = bob.next_connect().await;
    assert_eq!(resumed.as_deref(), Some(sid.as_str()), "the same socket id");
    assert!(bob.recovered().await, "socket.recovered");
    assert_eq!(texts_until(&bob, "away 2").await, ["away 1", "away 2"]);
    send(&alice, "room", "after").await;
    assert_eq!(texts_until(&bob, "after").await, ["after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_recovers_on_one_node() {
    let server = spawn_chatgate(|_| {}).await;
    let url = format!("http://{}", server.addr());
    let bridge = NodeBridge::spawn().await;
    recovers_what_it_missed(&bridge, &url, &url, async |bob| bob.close().await).await;
}

/// A client that had received no `message:new` sends only its `pid`: it is
/// owed everything since its session began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_messages_recovers_from_its_start() {
    let server = spawn_chatgate(|_| {}).await;
    let url = format!("http://{}", server.addr());
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&url, as_user("alice")).await;
    let bob = bridge.connect_ok(&url, reconnecting("bob")).await;
    join(&alice, "room").await;
    join(&bob, "room").await;
    bob.close().await;
    bob.next_disconnect().await;
    send(&alice, "room", "first").await;
    bob.next_connect().await;
    assert!(bob.recovered().await);
    assert_eq!(texts_until(&bob, "first").await, ["first"]);
}

/// Past the window the session is gone: a new one (`recovered` false, a new
/// id), and `since` on the join fills the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_window_a_new_session_and_since_fills_the_gap() {
    let server = spawn_chatgate(|config| config.recovery_window = Duration::from_millis(1)).await;
    let url = format!("http://{}", server.addr());
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&url, as_user("alice")).await;
    let bob = bridge.connect_ok(&url, reconnecting("bob")).await;
    join(&alice, "room").await;
    join(&bob, "room").await;
    let seen = send(&alice, "room", "seen").await;
    texts_until(&bob, "seen").await;
    bob.close().await;
    bob.next_disconnect().await;
    send(&alice, "room", "missed").await;
    let resumed = bob.next_connect().await;
    assert_ne!(resumed.as_deref(), Some(bob.id()), "a new session");
    assert!(!bob.recovered().await);
    bob.expect_no_event("message:new", Duration::from_millis(200))
        .await;
    let reply = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "room", "since": seen }),
    )
    .await;
    assert_eq!(reply["missedAll"], true, "{reply}");
    let texts: Vec<&str> = reply["missed"]
        .as_array()
        .expect("missed")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["missed"]);
}

/// A pid is honoured only for the user who owns it; an unknown one opens a
/// new session; with recovery off there is no pid at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unknown_pids_get_a_session_of_their_own() {
    let server = spawn_chatgate(|_| {}).await;
    let url = format!("http://{}", server.addr());
    let bridge = NodeBridge::spawn().await;
    let bob = bridge.connect_ok(&url, as_user("bob")).await;
    join(&bob, "secret").await;
    let pid = bob.pid().await.expect("a pid in the CONNECT reply");
    let mallory = bridge
        .connect_ok(
            &url,
            as_user("mallory").with_auth(
                json!({ "userId": "mallory", "pid": pid, "offset": "0000000000000000" }),
            ),
        )
        .await;
    assert_ne!(mallory.id(), bob.id());
    assert!(!mallory.recovered().await);
    let unknown = bridge
        .connect_ok(
            &url,
            as_user("carol")
                .with_auth(json!({ "userId": "carol", "pid": "AAAAAAAAAAAAAAAAAAAAAA" })),
        )
        .await;
    assert!(!unknown.recovered().await);
    assert!(unknown.pid().await.is_some(), "a new session of its own");
    let reply = ack(
        &bob,
        "message:send",
        json!({ "channelId": "secret", "text": "x" }),
    )
    .await;
    assert_eq!(reply["status"], "ok");
    mallory
        .expect_no_event("message:new", Duration::from_millis(200))
        .await;

    let off = spawn_chatgate(|config| config.recovery_window = Duration::ZERO).await;
    let plain = bridge
        .connect_ok(&format!("http://{}", off.addr()), as_user("dave"))
        .await;
    assert_eq!(plain.pid().await, None, "recovery off: no pid");
}

async fn three_nodes(url: &str, env: &[(&str, &str)]) -> [Node; 3] {
    let (a, b, c) = tokio::join!(
        Node::start(url, env),
        Node::start(url, env),
        Node::start(url, env)
    );
    [a, b, c]
}

/// The environment of nodes on a Redis Cluster.
const ON_A_CLUSTER: &[(&str, &str)] = &[("REDIS_CLUSTER", "true")];

/// Cut on node A, reconnected through the balancer to node B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_recovers_on_another_node() {
    let redis = RedisServer::start().await;
    recovers_on_another_node(&redis.url(), &[]).await;
}

/// The same on a Redis Cluster (recovered from its recovery log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_cut_connection_recovers_on_another_node() {
    let cluster = RedisCluster::start().await;
    recovers_on_another_node(&cluster.url(), ON_A_CLUSTER).await;
}

async fn recovers_on_another_node(url: &str, env: &[(&str, &str)]) {
    let nodes = three_nodes(url, env).await;
    let balancer = Balancer::start(vec![nodes[0].addr()]).await;
    let bridge = NodeBridge::spawn().await;
    recovers_what_it_missed(&bridge, &balancer.url(), &nodes[2].url(), async |bob| {
        balancer.set_backends(vec![nodes[1].addr()]);
        bob.close().await;
    })
    .await;
}

/// Its node killed with `kill -9`: the client reconnects to another node and
/// gets every message acked meanwhile (a copy of one it had may come again,
/// with the same id; none may be missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_node_recovers_on_another() {
    let redis = RedisServer::start().await;
    killed_node_recovery(&redis.url(), &[]).await;
}

/// The same on a Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_client_of_a_killed_node_recovers_on_another() {
    let cluster = RedisCluster::start().await;
    killed_node_recovery(&cluster.url(), ON_A_CLUSTER).await;
}

async fn killed_node_recovery(url: &str, env: &[(&str, &str)]) {
    let mut nodes = three_nodes(url, env).await;
    let balancer = Balancer::start(vec![nodes[0].addr()]).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&nodes[2].url(), as_user("alice")).await;
    let bob = bridge
        .connect_ok(&balancer.url(), reconnecting("bob"))
        .await;
    join(&alice, "room").await;
    join(&bob, "room").await;
    send(&alice, "room", "before").await;
    texts_until(&bob, "before").await;
    let sid = bob.id().to_owned();

    balancer.set_backends(vec![nodes[1].addr()]);
    nodes[0].kill9();
    bob.next_disconnect().await;
    send(&alice, "room", "away").await;
    let resumed = bob.next_connect().await;
    assert_eq!(resumed.as_deref(), Some(sid.as_str()));
    assert!(bob.recovered().await);
    let texts = texts_until(&bob, "away").await;
    assert_eq!(texts.last().map(String::as_str), Some("away"));
    assert!(
        texts.iter().all(|t| t == "before" || t == "away"),
        "{texts:?}"
    );
}

/// A channel joined during the session owes nothing from before the join:
/// recovery replays only what was sent after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_joined_during_the_session_replays_only_from_the_join() {
    let server = spawn_chatgate(|_| {}).await;
    let url = format!("http://{}", server.addr());
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&url, as_user("alice")).await;
    let bob = bridge.connect_ok(&url, reconnecting("bob")).await;
    join(&alice, "room").await;
    send(&alice, "room", "before bob").await;
    join(&bob, "room").await;
    bob.close().await;
    bob.next_disconnect().await;
    send(&alice, "room", "while away").await;
    bob.next_connect().await;
    assert!(bob.recovered().await);
    assert_eq!(texts_until(&bob, "while away").await, ["while away"]);
}

/// A drain (SIGTERM): the node closes its connections as "going away", the
/// client reconnects to another node and recovers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_draining_node_recovers_on_another() {
    let redis = RedisServer::start().await;
    let mut nodes = three_nodes(&redis.url(), &[]).await;
    let balancer = Balancer::start(vec![nodes[0].addr()]).await;
    let bridge = NodeBridge::spawn().await;
    recovers_what_it_missed(&bridge, &balancer.url(), &nodes[2].url(), async |_| {
        balancer.set_backends(vec![nodes[1].addr()]);
        nodes[0].sigterm();
    })
    .await;
    assert!(nodes[0].wait_exit(Duration::from_secs(15)).await);
}

/// Redis restarts (with its AOF) while the client is away: the session and
/// the messages were persisted, so it recovers, on another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_redis_restart() {
    let mut redis = PersistentRedis::start().await;
    let nodes = three_nodes(&redis.url(), &[]).await;
    let balancer = Balancer::start(vec![nodes[0].addr()]).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&nodes[2].url(), as_user("alice")).await;
    let bob = bridge
        .connect_ok(&balancer.url(), reconnecting("bob"))
        .await;
    join(&alice, "room").await;
    join(&bob, "room").await;
    send(&alice, "room", "before").await;
    texts_until(&bob, "before").await;
    let sid = bob.id().to_owned();

    balancer.set_backends(vec![nodes[1].addr()]);
    bob.close().await;
    bob.next_disconnect().await;
    send(&alice, "room", "away").await;
    redis.restart().await;
    // Until the nodes see Redis again a send may be refused (nothing sent).
    let deadline = Instant::now() + default_timeout();
    loop {
        let reply = ack(
            &alice,
            "message:send",
            json!({ "channelId": "room", "text": "after the restart" }),
        )
        .await;
        if reply["status"] == "ok" {
            break;
        }
        assert_eq!(reply["code"], "SERVICE_UNAVAILABLE", "{reply}");
        assert!(Instant::now() < deadline, "Redis never came back");
    }
    let resumed = bob.next_connect().await;
    assert_eq!(resumed.as_deref(), Some(sid.as_str()));
    assert!(bob.recovered().await);
    assert_eq!(
        texts_until(&bob, "after the restart").await,
        ["away", "after the restart"]
    );
}
