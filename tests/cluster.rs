//! Many nodes: real `chatgate` processes on one Redis, with the real
//! `socket.io-client` spread across them (issue 5). Each test starts and
//! stops its own `redis-server` and nodes on free ports.

mod cluster_support;
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cluster_support::{
    API_KEY, Balancer, Node, OfflineWatch, PersistentRedis, RedisCluster, eventually,
};
use support::chat::{ack, as_user};
use support::{
    ConnectOptions, NodeBridge, RedisServer, SioClient, default_timeout, http_get, http_post,
};

async fn join(client: &SioClient, channel: &str) {
    let reply = ack(client, "channel:join", json!({ "channelId": channel })).await;
    assert_eq!(reply["status"], "ok", "join {channel}: {reply}");
}

async fn send(client: &SioClient, channel: &str, text: &str) {
    let reply = ack(
        client,
        "message:send",
        json!({ "channelId": channel, "text": text }),
    )
    .await;
    assert_eq!(reply["status"], "ok", "send: {reply}");
}

/// Waits for `message:new` with `text` (skipping others).
async fn expect_message(client: &SioClient, text: &str) {
    let deadline = Instant::now() + default_timeout();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = client.next_event_full("message:new", remaining).await;
        if event.args[0]["text"] == text {
            return;
        }
    }
}

/// Waits for `presence:update` of `user` with `status` (skipping others).
async fn expect_presence(client: &SioClient, user: &str, status: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = client.next_event_full("presence:update", remaining).await;
        if event.args[0]["userId"] == user && event.args[0]["status"] == status {
            return;
        }
    }
}

/// Whether an event called `name` arrives within `within` (drains the
/// client's buffered events).
async fn poll_event(client: &SioClient, name: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if client.take_events().iter().any(|e| e.name == name) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn online_users(client: &SioClient) -> Vec<String> {
    let reply = ack(client, "users:online", json!({})).await;
    let mut users: Vec<String> = reply["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userId"].as_str().map(str::to_owned))
        .collect();
    users.sort();
    users
}

async fn three_nodes(url: &str, env: &[(&str, &str)]) -> [Node; 3] {
    let (a, b, c) = tokio::join!(
        Node::start(url, env),
        Node::start(url, env),
        Node::start(url, env)
    );
    [a, b, c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behave_as_one() {
    let redis = RedisServer::start().await;
    behave_as_one(&redis.url(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_three_nodes_behave_as_one() {
    let cluster = RedisCluster::start().await;
    behave_as_one(&cluster.url(), &[("REDIS_CLUSTER", "true")]).await;
}

/// Messages, membership, presence, `users:online`, rate limits and
/// disconnect-user across three nodes.
async fn behave_as_one(url: &str, env: &[(&str, &str)]) {
    let mut env = env.to_vec();
    env.push(("RATE_LIMITS", "typing=4/min,default=100/min"));
    let nodes = three_nodes(url, &env).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&nodes[0].url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&nodes[1].url(), as_user("bob")).await;
    let carol = bridge.connect_ok(&nodes[2].url(), as_user("carol")).await;

    join(&alice, "general").await;
    join(&bob, "general").await;
    // A join on node 2 is announced on node 1.
    let joined = alice.next_event("channel:member-joined").await;
    assert_eq!(joined[0]["userId"], "bob");
    join(&carol, "general").await;
    bob.next_event("channel:member-joined").await;

    // Messages cross every node, and the sender's other tab (on node 2) too.
    let alice_tab2 = bridge.connect_ok(&nodes[1].url(), as_user("alice")).await;
    send(&alice, "general", "hello from node 1").await;
    for client in [&bob, &carol, &alice_tab2] {
        expect_message(client, "hello from node 1").await;
    }

    // Membership: dave has tabs on nodes 1 and 3; a join on node 1 makes
    // the tab on node 3 receive the channel.
    let dave1 = bridge.connect_ok(&nodes[0].url(), as_user("dave")).await;
    let dave3 = bridge.connect_ok(&nodes[2].url(), as_user("dave")).await;
    join(&dave1, "general").await;
    send(&bob, "general", "for dave everywhere").await;
    expect_message(&dave1, "for dave everywhere").await;
    expect_message(&dave3, "for dave everywhere").await;
    // Leaving on node 3 unsubscribes the tab on node 1.
    let reply = ack(&dave3, "channel:leave", json!({ "channelId": "general" })).await;
    assert_eq!(reply["status"], "ok");
    dave1.next_event("channel:member-left").await;
    send(&bob, "general", "after dave left").await;
    expect_message(&alice, "after dave left").await;
    dave1
        .expect_no_event("message:new", Duration::from_millis(300))
        .await;
    dave3
        .expect_no_event("message:new", Duration::from_millis(10))
        .await;

    // Presence and users:online agree on every node.
    let expected = vec!["alice", "bob", "carol", "dave"];
    for client in [&alice, &bob, &carol] {
        assert_eq!(online_users(client).await, expected);
    }
    let busy = json!({ "status": "busy" });
    carol.emit("presence:update", vec![busy]).await;
    expect_presence(&alice, "carol", "busy", default_timeout()).await;
    expect_presence(&bob, "carol", "busy", default_timeout()).await;

    // Rate limits: alice's quota is shared by her tabs on nodes 1 and 2.
    let mut refused = 0;
    for i in 0..6 {
        let tab = if i % 2 == 0 { &alice } else { &alice_tab2 };
        let reply = tab
            .emit_with_ack(
                "typing",
                vec![json!({ "channelId": "general", "typing": true })],
            )
            .await;
        if reply.first().is_some_and(|r| r["code"] == "RATE_LIMITED") {
            refused += 1;
        }
    }
    assert_eq!(refused, 2, "4 of 6 typing events pass cluster-wide");

    // The API counts a user's connections on every node: node 3 holds none
    // of alice's two tabs (nodes 1 and 2) and still sees both.
    let auth = format!("Bearer {API_KEY}");
    let status = http_get(
        nodes[2].addr(),
        "/api/v1/users/alice",
        &[("authorization", auth.as_str())],
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.text());
    let status: Value = serde_json::from_str(&status.text()).expect("JSON");
    assert_eq!(status["connections"], 2, "{status}");

    // Disconnecting a user through the API of node 1 closes their tab on node 3.
    let response = http_post(
        nodes[0].addr(),
        "/api/v1/users/dave/disconnect",
        &[("authorization", auth.as_str())],
        b"",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(dave3.next_disconnect().await, "io server disconnect");
    assert_eq!(dave1.next_disconnect().await, "io server disconnect");

    // A user whose last connection closes goes offline everywhere.
    carol.close().await;
    expect_presence(&alice, "carol", "offline", default_timeout()).await;
    expect_presence(&bob, "carol", "offline", default_timeout()).await;
    eventually(
        "dave and carol gone from users:online",
        default_timeout(),
        || async { online_users(&bob).await == vec!["alice", "bob"] },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_emitter_reaches_chatgate_rooms() {
    let redis = RedisServer::start().await;
    emitter_suite(&redis.url(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_emitter_reaches_chatgate_rooms() {
    let cluster = RedisCluster::start().await;
    emitter_suite(&cluster.url(), &[("REDIS_CLUSTER", "true")]).await;
}

/// The real `@socket.io/redis-emitter` emits into chatgate rooms.
async fn emitter_suite(url: &str, env: &[(&str, &str)]) {
    let redis_url = url.to_owned();
    let (n1, n2) = tokio::join!(Node::start(url, env), Node::start(url, env));
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&n1.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&n2.url(), as_user("bob")).await;
    join(&alice, "general").await;
    join(&bob, "general").await;

    emit_ops(
        &redis_url,
        json!([
            { "op": "emit", "to": ["general"], "event": "announcement",
              "args": [{ "text": "from the app backend" }, 2] },
            { "op": "emit", "to": ["@bob"], "event": "notice", "args": ["only bob"] },
            { "op": "emit", "to": ["general"], "except": ["@alice"], "event": "notice",
              "args": ["not alice"] },
            { "op": "emit", "to": ["@alice"], "event": "file",
              "args": [{ "$binary": "AQID" }] },
        ]),
    )
    .await;
    for client in [&alice, &bob] {
        let args = client.next_event("announcement").await;
        assert_eq!(
            args,
            vec![json!({ "text": "from the app backend" }), json!(2)]
        );
    }
    assert_eq!(bob.next_event("notice").await, vec![json!("only bob")]);
    assert_eq!(bob.next_event("notice").await, vec![json!("not alice")]);
    let file = alice.next_event("file").await;
    assert_eq!(support::as_binary(&file[0]), Some(vec![1, 2, 3]));
    alice
        .expect_no_event("notice", Duration::from_millis(300))
        .await;

    // Room membership and disconnects requested by the emitter.
    emit_ops(
        &redis_url,
        json!([
            { "op": "socketsJoin", "in": ["@bob"], "rooms": ["news"] },
            { "op": "emit", "to": ["news"], "event": "headline", "args": ["joined"] },
            { "op": "disconnectSockets", "in": ["@alice"], "close": true },
        ]),
    )
    .await;
    assert_eq!(bob.next_event("headline").await, vec![json!("joined")]);
    assert_eq!(alice.next_disconnect().await, "io server disconnect");
}

/// Runs `tests/js/emit.mjs` with the real `@socket.io/redis-emitter`.
async fn emit_ops(redis_url: &str, ops: Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let run = tokio::process::Command::new("node")
        .arg(dir.join("emit.mjs"))
        .arg(redis_url)
        .arg(ops.to_string())
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(default_timeout(), run)
        .await
        .expect("emit.mjs finishes")
        .expect("node runs");
    assert!(
        output.status.success(),
        "emit.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `NODE_TIMEOUT_MS` of the crash tests: 3 s, or
/// `CHATGATE_CLUSTER_NODE_TIMEOUT_MS` (e.g. 8000, the default, to measure it).
fn test_node_timeout_ms() -> u64 {
    std::env::var("CHATGATE_CLUSTER_NODE_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(3000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_users_go_offline_once() {
    let redis = RedisServer::start().await;
    let watch = OfflineWatch::start(&redis.url(), &["alice", "bob", "carol", "dave"]).await;
    killed_node_suite(&redis.url(), &[]).await;
    assert_eq!(watch.seen(), vec!["carol".to_owned()], "announced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_killed_node_users_go_offline_once() {
    let cluster = RedisCluster::start().await;
    killed_node_suite(&cluster.url(), &[("REDIS_CLUSTER", "true")]).await;
}

/// `kill -9` of one of three nodes: its users go offline elsewhere within
/// the bound, once; a user with another connection stays online.
async fn killed_node_suite(url: &str, env: &[(&str, &str)]) {
    let node_timeout_ms = test_node_timeout_ms();
    let timeout = node_timeout_ms.to_string();
    let mut env = env.to_vec();
    env.push(("NODE_TIMEOUT_MS", &timeout));
    let mut nodes = three_nodes(url, &env).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&nodes[0].url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&nodes[1].url(), as_user("bob")).await;
    let carol = bridge.connect_ok(&nodes[2].url(), as_user("carol")).await;
    let _dave3 = bridge.connect_ok(&nodes[2].url(), as_user("dave")).await;
    let dave1 = bridge.connect_ok(&nodes[0].url(), as_user("dave")).await;
    for client in [&alice, &bob, &carol, &dave1] {
        join(client, "general").await;
    }
    alice.take_events();
    bob.take_events();

    let killed = Instant::now();
    nodes[2].kill9();
    // Documented bound: NODE_TIMEOUT_MS + the 1 s sweep interval (+ delivery).
    let bound = Duration::from_millis(node_timeout_ms) + Duration::from_secs(2);
    expect_presence(&alice, "carol", "offline", bound).await;
    let alice_saw = killed.elapsed();
    expect_presence(&bob, "carol", "offline", default_timeout()).await;
    println!("offline announced {alice_saw:?} after kill -9 (NODE_TIMEOUT_MS={node_timeout_ms})");
    assert!(
        alice_saw >= Duration::from_millis(node_timeout_ms) - Duration::from_millis(1100),
        "not before the node timeout"
    );

    // Exactly once, and dave (still on node 1) untouched.
    alice
        .expect_no_event("presence:update", Duration::from_millis(1500))
        .await;
    bob.expect_no_event("presence:update", Duration::from_millis(10))
        .await;
    assert!(dave1.connected().await);
    assert_eq!(online_users(&bob).await, vec!["alice", "bob", "dave"]);
    send(&dave1, "general", "still here").await;
    expect_message(&alice, "still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_is_swept_then_comes_back() {
    let redis = RedisServer::start().await;
    let env = [("NODE_TIMEOUT_MS", "2000")];
    let url = redis.url();
    let (n1, n2) = tokio::join!(Node::start(&url, &env), Node::start(&url, &env));
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&n1.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&n2.url(), as_user("bob")).await;
    join(&alice, "general").await;
    join(&bob, "general").await;

    // A node that stops (SIGSTOP: a long pause, a partition) looks dead...
    n2.signal("-STOP");
    expect_presence(&alice, "bob", "offline", Duration::from_secs(5)).await;
    assert_eq!(online_users(&alice).await, vec!["alice"]);
    // ...and when it resumes, it re-registers its connections and says so.
    n2.signal("-CONT");
    expect_presence(&alice, "bob", "online", Duration::from_secs(5)).await;
    assert_eq!(online_users(&alice).await, vec!["alice", "bob"]);
    send(&bob, "general", "back from the pause").await;
    expect_message(&alice, "back from the pause").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_redis_restart() {
    let mut redis = PersistentRedis::start().await;
    let url = redis.url();
    let (n1, n2) = tokio::join!(Node::start(&url, &[]), Node::start(&url, &[]));
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&n1.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&n2.url(), as_user("bob")).await;
    join(&alice, "general").await;
    join(&bob, "general").await;
    send(&alice, "general", "before").await;
    expect_message(&bob, "before").await;

    redis.restart().await;
    let restarted = Instant::now();
    // Each node notices on its own (health check, subscriber watchdog):
    // keep sending until a message crosses over, both ways.
    until_delivered(&alice, &bob, "a to b").await;
    println!(
        "delivery resumed {:?} after the Redis restart",
        restarted.elapsed()
    );
    until_delivered(&bob, &alice, "b to a").await;
    println!(
        "both ways {:?} after the Redis restart",
        restarted.elapsed()
    );
    // Now without retries.
    bob.take_events();
    alice.take_events();
    send(&bob, "general", "back").await;
    expect_message(&alice, "back").await;
    send(&alice, "general", "forth").await;
    expect_message(&bob, "forth").await;
}

/// The first message sent after a Redis restart (AOF, same port) crosses
/// over: the publisher's connection died with Redis, and its first publish
/// used to fail with a broken pipe and be dropped. Now a failed publish is
/// sent again on a fresh connection. The same holds for the server API,
/// which never answers 200 for a message other nodes did not get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_after_a_redis_restart_crosses_over() {
    let mut redis = PersistentRedis::start().await;
    let url = redis.url();
    let (n1, n2) = tokio::join!(Node::start(&url, &[]), Node::start(&url, &[]));
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&n1.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&n2.url(), as_user("bob")).await;
    join(&alice, "general").await;
    join(&bob, "general").await;
    send(&alice, "general", "before").await;
    expect_message(&bob, "before").await;
    let api = http_post(
        n1.addr(),
        "/api/v1/channels/general/messages",
        &[("Authorization", &format!("Bearer {API_KEY}"))],
        json!({ "text": "api before" }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.text());
    expect_message(&bob, "api before").await;

    redis.restart().await;
    // Both nodes listen again (each subscribes to the request channel once
    // it re-made its subscriptions) and node 1 serves requests again.
    let client = redis::Client::open(url.as_str()).expect("client");
    eventually("both nodes to subscribe again", default_timeout(), || {
        let client = client.clone();
        async move {
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("socket.io-request#/#")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            counts.first().is_some_and(|(_, n)| *n >= 2)
        }
    })
    .await;

    // The first message node 1 acks since the restart reaches node 2 (a
    // request that met the dead connection was answered
    // SERVICE_UNAVAILABLE: nothing was sent, the client may try again).
    let deadline = Instant::now() + default_timeout();
    let mut n = 0;
    let text = loop {
        n += 1;
        let text = format!("after {n}");
        let reply = ack(
            &alice,
            "message:send",
            json!({ "channelId": "general", "text": text }),
        )
        .await;
        if reply["status"] == "ok" {
            break text;
        }
        assert_eq!(reply["code"], "SERVICE_UNAVAILABLE", "{reply}");
        assert!(Instant::now() < deadline, "node 1 never served again");
    };
    expect_message(&bob, &text).await;
    // The server API never answers 200 for a message node 2 did not get.
    let api = http_post(
        n1.addr(),
        "/api/v1/channels/general/messages",
        &[("Authorization", &format!("Bearer {API_KEY}"))],
        json!({ "text": "api after" }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.text());
    expect_message(&bob, "api after").await;
}

/// Sends messages from `from` to channel `general` until one reaches `to`
/// (within 15 s); messages refused meanwhile (Redis not back yet) are retried.
async fn until_delivered(from: &SioClient, to: &SioClient, tag: &str) {
    let mut n = 0;
    eventually(
        &format!("a message crosses nodes again ({tag})"),
        Duration::from_secs(15),
        || {
            n += 1;
            let text = format!("{tag} {n}");
            async move {
                let reply = from
                    .try_emit_with_ack(
                        "message:send",
                        vec![json!({ "channelId": "general", "text": text })],
                        Duration::from_secs(3),
                    )
                    .await;
                if !matches!(&reply, Ok(r) if r.first().is_some_and(|r| r["status"] == "ok")) {
                    return false;
                }
                poll_event(to, "message:new", Duration::from_millis(300)).await
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_shows_no_offline_storm() {
    let redis = RedisServer::start().await;
    let watch =
        OfflineWatch::start(&redis.url(), &["u1", "u2", "u3", "u4", "u5", "u6", "gone"]).await;
    rolling_restart_suite(&redis.url(), &[]).await;
    // Seen on Redis itself: only the user who did not come back.
    assert_eq!(watch.seen(), vec!["gone".to_owned()], "no offline storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_rolling_restart_shows_no_offline_storm() {
    let cluster = RedisCluster::start().await;
    rolling_restart_suite(&cluster.url(), &[("REDIS_CLUSTER", "true")]).await;
}

/// Restarts all three nodes one after the other (SIGTERM, drain) behind a
/// load balancer while clients reconnect: nobody who kept a connection is
/// ever announced offline; the one client that does not reconnect is.
async fn rolling_restart_suite(url: &str, env: &[(&str, &str)]) {
    let mut env = env.to_vec();
    env.extend([("DRAIN_GRACE_MS", "3000"), ("SHUTDOWN_TIMEOUT_MS", "6000")]);
    let mut nodes: Vec<Node> = three_nodes(url, &env).await.into();
    let balancer = Balancer::start(nodes.iter().map(Node::addr).collect()).await;
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let bridge = NodeBridge::spawn().await;
    let mut clients = Vec::new();
    for user in users {
        let options = ConnectOptions {
            extra: json!({ "reconnectionDelay": 100, "reconnectionDelayMax": 300 }),
            ..as_user(user).with_reconnection(true)
        };
        let client = bridge.connect_ok(&balancer.url(), options).await;
        join(&client, "general").await;
        clients.push(client);
    }

    // One user's client does not reconnect: it goes offline once its
    // node's grace period is over, announced exactly once.
    let gone = bridge.connect_ok(&nodes[0].url(), as_user("gone")).await;
    join(&gone, "general").await;

    for i in 0..nodes.len() {
        let fresh = Node::start(url, &env).await;
        let mut live: Vec<_> = nodes.iter().map(Node::addr).collect();
        live[i] = fresh.addr();
        balancer.set_backends(live);
        let mut old = std::mem::replace(&mut nodes[i], fresh);
        old.sigterm();
        assert!(
            old.wait_exit(Duration::from_secs(10)).await,
            "node drained and exited"
        );
    }
    // Everyone is connected again, and nobody was ever announced offline.
    for client in &clients {
        eventually("client reconnected", default_timeout(), || {
            client.connected()
        })
        .await;
    }
    let reply_users = online_users(&clients[0]).await;
    assert_eq!(reply_users, users.to_vec());
    // The user who did not reconnect goes offline once the grace is over;
    // nobody else ever does.
    let mut gone_offline = 0;
    let deadline = Instant::now() + default_timeout();
    while gone_offline == 0 && Instant::now() < deadline {
        for client in &clients {
            for event in client.take_events() {
                if event.name != "presence:update" || event.args[0]["status"] != "offline" {
                    continue;
                }
                assert_eq!(event.args[0]["userId"], "gone", "{:?}", event.args);
                gone_offline += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        gone_offline >= 1,
        "the client that left is announced offline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_count_comes_from_heartbeats() {
    use chatgate::backend::redis::{RedisBackend, RedisOptions};
    use chatgate::config::{RedisSettings, Secret};
    let redis = RedisServer::start().await;
    let settings = RedisSettings {
        url: Secret::new(redis.url()),
        cluster: false,
        tls: false,
        key_prefix: "count".to_owned(),
    };
    let options = |node: &str| {
        RedisOptions::new(node)
            .with_health_interval(Duration::from_millis(100))
            .with_node_timeout(Duration::from_millis(1000))
    };
    let a = RedisBackend::connect(&settings, options("a")).expect("a");
    let b = RedisBackend::connect(&settings, options("b")).expect("b");
    support::wait_until("both count two nodes", default_timeout(), || {
        a.live_nodes() == 2 && b.live_nodes() == 2
    })
    .await;
    drop(b);
    support::wait_until("a counts itself alone", default_timeout(), || {
        a.live_nodes() == 1
    })
    .await;
}
