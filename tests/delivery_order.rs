//! Per-channel delivery order and the join race (wire contract v1.2,
//! "Delivery guarantees"): every connection receives a channel's messages in
//! id order whichever nodes the senders are on, and a message sent after a
//! `channel:join` ack reaches every tab of the user on every node. With the
//! real `socket.io-client`, on one in-memory node and on three chatgate
//! processes sharing one Redis or a Redis Cluster.

mod cluster_support;
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cluster_support::{Node, RedisCluster};
use support::chat::{ack, as_user, spawn_chatgate};
use support::{NodeBridge, RedisServer, SioClient, default_timeout};

/// Generous limits: these tests send fast on purpose.
const RATES: &str = "message:send=6000/min,channel:join=6000/min,default=6000/min";

async fn join(client: &SioClient, channel: &str) {
    let reply = ack(client, "channel:join", json!({ "channelId": channel })).await;
    assert_eq!(reply["status"], "ok", "join {channel}: {reply}");
}

/// Sends `count` messages from `client` without waiting for one ack before
/// the next (pipelined, as a busy app does), then checks every ack.
async fn send_burst(client: &SioClient, channel: &str, tag: String, count: usize) {
    let sends = (0..count).map(|n| {
        client.emit_with_ack(
            "message:send",
            vec![json!({ "channelId": channel, "text": format!("{tag}-{n}") })],
        )
    });
    for reply in futures_util::future::join_all(sends).await {
        assert_eq!(reply[0]["status"], "ok", "send: {reply:?}");
    }
}

/// The next `count` `message:new` ids of `client`, in arrival order.
async fn receive_ids(client: &SioClient, count: usize) -> Vec<u64> {
    let deadline = Instant::now() + default_timeout();
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = client.next_event_full("message:new", remaining).await;
        ids.push(event.args[0]["id"].as_u64().expect("numeric id"));
    }
    ids
}

fn assert_in_id_order(ids: &[u64], expected: usize) {
    assert_eq!(ids.len(), expected);
    let late: Vec<(u64, u64)> = ids
        .windows(2)
        .filter(|w| w[1] <= w[0])
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(
        late.is_empty(),
        "messages after a higher id: {late:?} in {ids:?}"
    );
}

/// Three senders pipelining into one channel on one in-memory node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_delivers_concurrent_senders_in_id_order() {
    let server = spawn_chatgate(|_| {}).await;
    let url = format!("http://{}", server.addr());
    let bridge = NodeBridge::spawn().await;
    let receiver = bridge.connect_ok(&url, as_user("reader")).await;
    join(&receiver, "busy").await;
    let mut senders = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let sender = bridge.connect_ok(&url, as_user(name)).await;
        join(&sender, "busy").await;
        senders.push(sender);
    }
    receiver.take_events();
    let bursts = senders
        .iter()
        .enumerate()
        .map(|(n, s)| send_burst(s, "busy", format!("s{n}"), 30));
    tokio::join!(futures_util::future::join_all(bursts), async {
        let ids = receive_ids(&receiver, 90).await;
        assert_in_id_order(&ids, 90);
    });
}

async fn three_nodes(url: &str, env: &[(&str, &str)]) -> [Node; 3] {
    let mut env = env.to_vec();
    env.push(("RATE_LIMITS", RATES));
    let (a, b, c) = tokio::join!(
        Node::start(url, &env),
        Node::start(url, &env),
        Node::start(url, &env)
    );
    [a, b, c]
}

/// Senders on three nodes pipelining into one channel; a reader on each
/// node receives all of them, in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_channel_in_id_order() {
    let redis = RedisServer::start().await;
    in_id_order_suite(&redis.url(), &[]).await;
}

/// The same on a Redis Cluster (sharded pub/sub).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_a_redis_cluster_deliver_every_channel_in_id_order() {
    let cluster = RedisCluster::start().await;
    in_id_order_suite(&cluster.url(), &[("REDIS_CLUSTER", "true")]).await;
}

async fn in_id_order_suite(url: &str, env: &[(&str, &str)]) {
    let nodes = three_nodes(url, env).await;
    let bridge = NodeBridge::spawn().await;
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let reader = bridge
            .connect_ok(&node.url(), as_user(&format!("reader{n}")))
            .await;
        join(&reader, "busy").await;
        readers.push(reader);
        let sender = bridge
            .connect_ok(&node.url(), as_user(&format!("sender{n}")))
            .await;
        join(&sender, "busy").await;
        senders.push(sender);
    }
    for reader in &readers {
        reader.take_events();
    }
    let bursts = senders
        .iter()
        .enumerate()
        .map(|(n, s)| send_burst(s, "busy", format!("n{n}"), 30));
    let reads = readers.iter().map(|r| receive_ids(r, 90));
    let ((), all_ids) = tokio::join!(
        async {
            futures_util::future::join_all(bursts).await;
        },
        futures_util::future::join_all(reads)
    );
    for ids in &all_ids {
        assert_in_id_order(ids, 90);
    }
    assert!(
        all_ids.windows(2).all(|w| w[0] == w[1]),
        "every reader saw the same sequence"
    );
}

/// A `channel:join` ack on one node means the user's tabs on the other
/// nodes are subscribed: a message sent at once, from a third node, reaches
/// them. Repeated on fresh channels and fresh nodes' first publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_right_after_the_join_ack_reaches_every_tab() {
    let redis = RedisServer::start().await;
    join_race_suite(&redis.url(), &[]).await;
}

/// The same on a Redis Cluster (sharded pub/sub).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_message_right_after_the_join_ack_reaches_every_tab() {
    let cluster = RedisCluster::start().await;
    join_race_suite(&cluster.url(), &[("REDIS_CLUSTER", "true")]).await;
}

async fn join_race_suite(url: &str, env: &[(&str, &str)]) {
    let nodes = three_nodes(url, env).await;
    let bridge = NodeBridge::spawn().await;
    let bob_here = bridge.connect_ok(&nodes[0].url(), as_user("bob")).await;
    let bob_there = bridge.connect_ok(&nodes[1].url(), as_user("bob")).await;
    let alice = bridge.connect_ok(&nodes[2].url(), as_user("alice")).await;
    for round in 0..40 {
        let channel = format!("race{round}");
        join(&alice, &channel).await;
        join(&bob_here, &channel).await;
        let reply = ack(
            &alice,
            "message:send",
            json!({ "channelId": channel, "text": "right after" }),
        )
        .await;
        assert_eq!(reply["status"], "ok");
        let event: Value = bob_there
            .next_event_full("message:new", Duration::from_secs(5))
            .await
            .args[0]
            .clone();
        assert_eq!(event["channelId"], channel.as_str(), "round {round}");
        bob_here.take_events();
    }
}

/// On one Redis the send's own script checks the membership (no round trip
/// of its own): a non-member is refused and nothing is stored or sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_send_is_refused_by_the_ordered_step() {
    let redis = RedisServer::start().await;
    let nodes = three_nodes(&redis.url(), &[]).await;
    let bridge = NodeBridge::spawn().await;
    let reader = bridge.connect_ok(&nodes[0].url(), as_user("reader")).await;
    let stranger = bridge
        .connect_ok(&nodes[1].url(), as_user("stranger"))
        .await;
    join(&reader, "club").await;
    let reply = ack(
        &stranger,
        "message:send",
        json!({ "channelId": "club", "text": "let me in" }),
    )
    .await;
    assert_eq!(reply["code"], "NOT_IN_CHANNEL", "{reply}");
    reader
        .expect_no_event("message:new", Duration::from_millis(300))
        .await;
    let history = ack(&reader, "channel:history", json!({ "channelId": "club" })).await;
    assert_eq!(history["messages"], json!([]), "{history}");
    join(&stranger, "club").await;
    let reply = ack(
        &stranger,
        "message:send",
        json!({ "channelId": "club", "text": "now a member" }),
    )
    .await;
    assert_eq!(reply["status"], "ok", "{reply}");
    let ids = receive_ids(&reader, 1).await;
    assert_eq!(ids, [reply["id"].as_u64().expect("id")]);
}
