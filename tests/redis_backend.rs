//! The Redis backend against real `redis-server` processes.
//!
//! - The behaviour suite of `tests/backend_suite`, on the in-memory backend
//!   (`memory::*`), on Redis (`on_redis::*`) and on a one-node Redis Cluster
//!   (`on_redis_cluster::*`, which refuses cross-slot scripts), each Redis
//!   case on its own server and key prefix.
//! - What only Redis has: several nodes sharing presence, membership and rate
//!   limits; a chatgate restart keeping membership; Redis down at startup,
//!   killed and restarted (with and without persistence); password and TLS;
//!   the round trips each event costs; two whole chatgate servers on one
//!   Redis agreeing on `users:online`, membership, `channel:list` and rate
//!   limits.
//!
//! `redis-server` must be installed (`./scripts/test` installs it): without
//! it these tests fail, they never skip.

mod backend_suite;
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chatgate::auth::Identity;
use chatgate::backend::redis::{RedisBackend, RedisOptions};
use chatgate::backend::{
    BackendError, Backends, ConnectOutcome, HistoryPolicy, JoinOutcome, RateQuota,
};
use chatgate::clock::now_ms;
use chatgate::config::{Config, RedisSettings, Secret};
use chatgate::domain::{ChatService, Limits, RatePolicy};
use chatgate::protocol::{
    HistoryRequest, JoinRequest, Message, PresenceStatus, SendMessageRequest, UsersOnlineRequest,
};
use chatgate::server::{RunningServer, Server};
use serde_json::{Value, json};

use backend_suite::record;
use backend_suite::redis_proc::{RedisProc, free_port, make_tls_material};
use support::{ConnectOptions, NodeBridge, RedisServer, SioClient, default_timeout, http_get};

/// A key prefix no other test uses.
fn unique_prefix(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Backends on a fresh one-node Redis Cluster (all 16384 slots on one
/// server): Redis then refuses any script or command whose keys span slots
/// (`CROSSSLOT`), and the backend uses its cluster client.
async fn cluster_backends(name: &str) -> (RedisProc, Backends) {
    let redis = RedisProc::start(
        None,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ],
    )
    .await;
    let url = format!("redis://{}", redis.addr());
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the cluster node");
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query_async(&mut conn)
        .await
        .expect("assign every slot");
    wait_for("the one-node cluster to be ok", || {
        let mut conn = conn.clone();
        async move {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            info.contains("cluster_state:ok")
        }
    })
    .await;
    let mut cluster = settings(&url, &unique_prefix(name));
    cluster.cluster = true;
    let backend = RedisBackend::connect(&cluster, options("n1")).expect("usable settings");
    (redis, ready(backend).await.into_backends())
}

fn settings(url: &str, prefix: &str) -> RedisSettings {
    RedisSettings {
        url: Secret::new(url.to_owned()),
        cluster: false,
        tls: url.starts_with("rediss://"),
        key_prefix: prefix.to_owned(),
    }
}

/// Options for tests: a fast health check, so recoveries show quickly.
fn options(node: &str) -> RedisOptions {
    RedisOptions::new(node).with_health_interval(Duration::from_millis(50))
}

fn connect(url: &str, prefix: &str, options: RedisOptions) -> RedisBackend {
    RedisBackend::connect(&settings(url, prefix), options).expect("usable Redis settings")
}

/// Waits until `condition` holds (checked every 10 ms), failing after the
/// harness timeout.
async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + default_timeout();
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {:?} waiting for: {what}",
            default_timeout()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ready(backend: RedisBackend) -> RedisBackend {
    let probe = backend.clone();
    wait_for("the Redis backend to become ready", || {
        let ready = probe.is_ready();
        async move { ready }
    })
    .await;
    backend
}

/// Backends on a fresh Redis server (kept alive by the returned guard).
async fn redis_backends(name: &str) -> (RedisServer, Backends) {
    let server = RedisServer::start().await;
    let backend = ready(connect(&server.url(), &unique_prefix(name), options("n1"))).await;
    (server, backend.into_backends())
}

fn is_unavailable<T: std::fmt::Debug>(result: &Result<T, BackendError>) -> bool {
    matches!(result, Err(BackendError::Unavailable(_)))
}

/// Runs every case of the behaviour suite on both backends.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::backend_suite::$case(chatgate::backend::Backends::in_memory()).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test]
                async fn $case() {
                    let (_server, backends) = crate::redis_backends(stringify!($case)).await;
                    crate::backend_suite::$case(backends).await;
                }
            )*
        }
        mod on_redis_cluster {
            $(
                #[tokio::test]
                async fn $case() {
                    let (_server, backends) = crate::cluster_backends(stringify!($case)).await;
                    crate::backend_suite::$case(backends).await;
                }
            )*
        }
    };
}

suite!(
    presence_is_per_connection,
    connection_cap,
    connection_cap_is_atomic,
    status_and_online_lists,
    membership,
    channel_cap_is_atomic,
    channel_activity,
    message_ids,
    rate_limits,
    readiness,
    history_keeps_the_newest,
    history_expires_and_can_be_off,
    history_under_concurrent_sends,
    ordered_send_and_log,
);

#[tokio::test]
async fn two_nodes_share_presence_membership_and_rate_limits() {
    let server = RedisServer::start().await;
    let prefix = unique_prefix("two-nodes");
    let a = ready(connect(&server.url(), &prefix, options("node-a")))
        .await
        .into_backends();
    let b = ready(connect(&server.url(), &prefix, options("node-b")))
        .await
        .into_backends();
    let t = now_ms();

    // One user, one tab on each node: online until the last one ends.
    let on_a = a
        .presence
        .add_connection("alice", record("a1", "node-a"), 5, t)
        .await
        .expect("add on a");
    assert!(matches!(
        on_a,
        ConnectOutcome::Registered { first: true, .. }
    ));
    let on_b = b
        .presence
        .add_connection("alice", record("b1", "node-b"), 5, t)
        .await
        .expect("add on b");
    assert!(matches!(
        on_b,
        ConnectOutcome::Registered { first: false, .. }
    ));
    assert_eq!(
        a.presence
            .remove_connection("alice", "a1", t)
            .await
            .expect("rm"),
        None
    );
    let seen_from_a = a.presence.online_users().await.expect("online");
    assert_eq!(seen_from_a.len(), 1);
    assert_eq!(seen_from_a[0].user_id, "alice");
    // The connection cap counts connections on every node.
    let capped = a
        .presence
        .add_connection("alice", record("a2", "node-a"), 1, t)
        .await
        .expect("add");
    assert_eq!(capped, ConnectOutcome::TooManyConnections);

    // Membership made on one node is seen on the other.
    assert_eq!(
        a.channels
            .join("alice", "general", 10, t)
            .await
            .expect("join"),
        JoinOutcome::Joined
    );
    assert!(
        b.channels
            .is_member("alice", "general")
            .await
            .expect("member")
    );
    assert_eq!(
        b.channels
            .join("alice", "general", 10, t)
            .await
            .expect("join"),
        JoinOutcome::AlreadyMember
    );

    // A user on both nodes gets the quota once, not twice.
    let quota = RateQuota {
        count: 6,
        period: Duration::from_secs(60),
    };
    let mut allowed = 0;
    for i in 0..12 {
        let node = if i % 2 == 0 { &a } else { &b };
        if node
            .rate_limits
            .check("alice", "message:send", quota)
            .await
            .expect("check")
            .is_none()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 6);
}

#[tokio::test]
async fn the_connections_of_a_crashed_node_are_swept() {
    let server = RedisServer::start().await;
    let prefix = unique_prefix("sweep");
    let quick = |node: &str| options(node).with_node_timeout(Duration::from_millis(300));
    let survivor = ready(connect(&server.url(), &prefix, quick("alive")))
        .await
        .into_backends();
    {
        let doomed = ready(connect(&server.url(), &prefix, quick("doomed")))
            .await
            .into_backends();
        let t = now_ms();
        for (user, conn) in [("alice", "a1"), ("bob", "b1")] {
            doomed
                .presence
                .add_connection(user, record(conn, "doomed"), 1, t)
                .await
                .expect("add on the doomed node");
        }
        survivor
            .presence
            .add_connection("bob", record("b2", "alive"), 5, t)
            .await
            .expect("add on the survivor");
        // Dropped without removing anything: its heartbeats stop, as if it crashed.
    }
    wait_for("the dead node's users to go offline", || {
        let survivor = survivor.clone();
        async move {
            let online = survivor.presence.online_users().await.expect("online");
            online.iter().all(|u| u.user_id != "alice")
        }
    })
    .await;
    // bob still has his connection on the live node.
    let online = survivor.presence.online_users().await.expect("online");
    assert_eq!(online.len(), 1, "{online:?}");
    assert_eq!(online[0].user_id, "bob");
    // alice's swept connection no longer counts against her cap of 1.
    let back = survivor
        .presence
        .add_connection("alice", record("a2", "alive"), 1, now_ms())
        .await
        .expect("add");
    assert!(matches!(
        back,
        ConnectOutcome::Registered { first: true, .. }
    ));
}

#[tokio::test]
async fn membership_survives_a_chatgate_restart() {
    let server = RedisServer::start().await;
    let prefix = unique_prefix("restart");
    {
        let first = ready(connect(&server.url(), &prefix, options("before")))
            .await
            .into_backends();
        for channel in ["general", "random"] {
            first
                .channels
                .join("alice", channel, 10, now_ms())
                .await
                .expect("join");
        }
        first
            .channels
            .join("bob", "general", 10, now_ms())
            .await
            .expect("join");
        first
            .presence
            .add_connection("alice", record("gone", "before"), 5, now_ms())
            .await
            .expect("add");
    }
    // A new process (new Backends, new node id) on the same Redis.
    let second = ready(connect(&server.url(), &prefix, options("after")))
        .await
        .into_backends();
    assert_eq!(
        second
            .channels
            .user_channels("alice")
            .await
            .expect("channels"),
        vec!["general".to_owned(), "random".to_owned()]
    );
    assert_eq!(
        second.channels.members("general").await.expect("members"),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
}

#[tokio::test]
async fn unreachable_at_startup_then_serves_once_redis_is_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let backend = connect(&url, &unique_prefix("late"), options("n1"));
    let backends = backend.clone().into_backends();
    // Nothing listens: the backend exists, is not ready, and calls fail softly.
    assert!(!backend.is_ready());
    let refused = backends
        .presence
        .add_connection("alice", record("c1", "n1"), 5, now_ms())
        .await;
    assert!(is_unavailable(&refused), "{refused:?}");
    assert!(is_unavailable(
        &backends
            .rate_limits
            .check(
                "alice",
                "typing",
                RateQuota {
                    count: 1,
                    period: Duration::from_secs(1),
                }
            )
            .await
    ));
    let _redis = RedisProc::start(Some(port), &[]).await;
    let backend = ready(backend).await;
    let added = backends
        .presence
        .add_connection("alice", record("c1", "n1"), 5, now_ms())
        .await
        .expect("add once Redis is up");
    assert!(matches!(
        added,
        ConnectOutcome::Registered { first: true, .. }
    ));
    assert_eq!(backend.live_connections(), 1);
}

/// `RATE_LIMIT_FAIL_OPEN`: with Redis unreachable, rate-limit checks answer
/// `Unavailable` (fail closed, the default) or let the event through.
#[tokio::test]
async fn rate_limits_fail_closed_or_open_while_redis_is_unreachable() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let quota = RateQuota {
        count: 1,
        period: Duration::from_secs(60),
    };
    let closed = connect(&url, &unique_prefix("closed"), options("n1")).into_backends();
    for _ in 0..2 {
        let check = closed.rate_limits.check("alice", "typing", quota).await;
        assert!(is_unavailable(&check), "{check:?}");
    }
    let open = connect(
        &url,
        &unique_prefix("open"),
        options("n2").with_rate_limit_fail_open(true),
    )
    .into_backends();
    // Over the quota of 1, and still allowed: nothing can count while Redis is gone.
    for _ in 0..2 {
        let check = open.rate_limits.check("alice", "typing", quota).await;
        assert!(matches!(check, Ok(None)), "{check:?}");
    }
}

#[tokio::test]
async fn redis_killed_and_restarted_empty_presence_is_reregistered() {
    let mut redis = RedisProc::start(None, &[]).await;
    let url = format!("redis://{}", redis.addr());
    let backend = ready(connect(&url, &unique_prefix("kill"), options("n1"))).await;
    let b = backend.clone().into_backends();
    let t = now_ms();
    b.presence
        .add_connection("alice", record("a1", "n1"), 5, t)
        .await
        .expect("add");
    b.presence
        .add_connection("alice", record("a2", "n1"), 5, t)
        .await
        .expect("add");
    b.presence
        .add_connection("bob", record("b1", "n1"), 5, t)
        .await
        .expect("add");
    b.presence
        .set_status("alice", PresenceStatus::Away, t)
        .await
        .expect("status");

    redis.kill();
    wait_for("calls to fail with Unavailable", || {
        let b = b.clone();
        async move { is_unavailable(&b.presence.online_users().await) }
    })
    .await;
    wait_for("readiness to drop", || {
        let ready = backend.is_ready();
        async move { !ready }
    })
    .await;
    // A connection that ends while Redis is down is not brought back later.
    assert!(is_unavailable(
        &b.presence.remove_connection("bob", "b1", now_ms()).await
    ));
    assert!(is_unavailable(
        &b.channels.join("alice", "general", 10, now_ms()).await
    ));

    // Redis comes back empty (no persistence): the node re-registers its
    // live connections, with their status.
    redis.restart().await;
    let backend = ready(backend).await;
    let online = b
        .presence
        .online_users()
        .await
        .expect("online after restart");
    assert_eq!(online.len(), 1, "{online:?}");
    assert_eq!(online[0].user_id, "alice");
    assert_eq!(online[0].status, PresenceStatus::Away);
    assert_eq!(backend.live_connections(), 2);
    // Both of alice's connections are registered again: the last one to end
    // takes her offline, not the first.
    assert_eq!(
        b.presence
            .remove_connection("alice", "a1", now_ms())
            .await
            .expect("rm"),
        None
    );
    assert!(
        b.presence
            .remove_connection("alice", "a2", now_ms())
            .await
            .expect("rm")
            .is_some()
    );
    // And service simply resumes.
    assert_eq!(
        b.channels
            .join("alice", "general", 10, now_ms())
            .await
            .expect("join"),
        JoinOutcome::Joined
    );
}

#[tokio::test]
async fn redis_restart_with_persistence_replays_missed_removals() {
    let mut redis =
        RedisProc::start(None, &["--appendonly", "yes", "--appendfsync", "always"]).await;
    let url = format!("redis://{}", redis.addr());
    let backend = ready(connect(&url, &unique_prefix("aof"), options("n1"))).await;
    let b = backend.clone().into_backends();
    let t = now_ms();
    b.presence
        .add_connection("alice", record("a1", "n1"), 2, t)
        .await
        .expect("add");
    b.presence
        .add_connection("alice", record("a2", "n1"), 2, t)
        .await
        .expect("add");
    b.channels
        .join("alice", "general", 10, t)
        .await
        .expect("join");

    redis.kill();
    wait_for("readiness to drop", || {
        let ready = backend.is_ready();
        async move { !ready }
    })
    .await;
    assert!(is_unavailable(
        &b.presence.remove_connection("alice", "a2", now_ms()).await
    ));

    // Redis comes back with its data, a2 included: the node removes it.
    redis.restart().await;
    let _backend = ready(backend).await;
    assert!(
        b.channels
            .is_member("alice", "general")
            .await
            .expect("membership kept")
    );
    let third = b
        .presence
        .add_connection("alice", record("a3", "n1"), 2, now_ms())
        .await
        .expect("add");
    assert!(
        matches!(third, ConnectOutcome::Registered { first: false, .. }),
        "a2 was removed, so a3 fits under the cap of 2: {third:?}"
    );
}

#[tokio::test]
async fn password_auth() {
    let redis = RedisProc::start(None, &["--requirepass", "s3cret pass"]).await;
    let good = format!("redis://:s3cret%20pass@{}", redis.addr());
    let backend = ready(connect(&good, &unique_prefix("auth"), options("n1"))).await;
    let b = backend.into_backends();
    assert_eq!(
        b.channels
            .join("alice", "general", 10, now_ms())
            .await
            .expect("join"),
        JoinOutcome::Joined
    );

    let wrong = format!("redis://:nope@{}", redis.addr());
    let refused = connect(&wrong, &unique_prefix("auth-wrong"), options("n2"));
    let b = refused.clone().into_backends();
    wait_for(
        "calls with a wrong password to fail with Unavailable",
        || {
            let b = b.clone();
            async move { is_unavailable(&b.channels.is_member("alice", "general").await) }
        },
    )
    .await;
    assert!(!refused.is_ready());
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    let port = free_port();
    let material = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = make_tls_material(material.path());
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (ca_path, cert_path, key_path) = (path(&ca), path(&cert), path(&key));
    let port_text = port.to_string();
    let _redis = RedisProc::start(
        Some(port),
        &[
            "--port",
            "0",
            "--tls-port",
            &port_text,
            "--tls-cert-file",
            &cert_path,
            "--tls-key-file",
            &key_path,
            "--tls-ca-cert-file",
            &ca_path,
            "--tls-auth-clients",
            "no",
        ],
    )
    .await;
    let url = format!("rediss://127.0.0.1:{port}");
    let ca_pem = std::fs::read(&ca).expect("read CA");
    let backend = ready(connect(
        &url,
        &unique_prefix("tls"),
        options("n1").with_root_ca_pem(ca_pem),
    ))
    .await;
    let b = backend.into_backends();
    assert_eq!(
        b.channels
            .join("alice", "general", 10, now_ms())
            .await
            .expect("join over TLS"),
        JoinOutcome::Joined
    );
    // Without the CA the server's certificate is not trusted: not ready.
    let untrusted = connect(&url, &unique_prefix("tls-untrusted"), options("n2"));
    let ub = untrusted.clone().into_backends();
    let result = ub.channels.is_member("alice", "general").await;
    assert!(
        result.is_err(),
        "an untrusted certificate must not connect: {result:?}"
    );
    assert!(!untrusted.is_ready());
}

/// A channel's history keys carry the TTL: when the channel goes quiet they
/// expire by themselves (real time here: a 300 ms TTL, waited for with a
/// deadline), and a later `since` reports the loss.
#[tokio::test]
async fn history_keys_expire_when_the_channel_goes_quiet() {
    let server = RedisServer::start().await;
    let prefix = unique_prefix("history-ttl");
    let backends = ready(connect(&server.url(), &prefix, options("n1")))
        .await
        .into_backends();
    let policy = HistoryPolicy {
        size: 10,
        ttl_ms: 300,
    };
    let t = now_ms();
    let message = Message {
        id: t * 1000,
        channel_id: "quiet".into(),
        user_id: "alice".into(),
        text: "hello".into(),
        ts: t,
        client_msg_id: None,
    };
    backends
        .history
        .record(&message, policy, t)
        .await
        .expect("record");
    let keys = chatgate::backend::redis::keys::Keys::new(&prefix);
    let client = redis::Client::open(server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let exists = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let names = [keys.history("quiet"), keys.history_floor("quiet")];
        async move {
            let count: usize = redis::cmd("EXISTS")
                .arg(&names)
                .query_async(&mut conn)
                .await
                .expect("EXISTS");
            count
        }
    };
    assert_eq!(exists(&mut conn).await, 2, "history and floor are stored");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(keys.history("quiet"))
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    assert!(
        (1..=300).contains(&pttl),
        "history expires with the TTL: {pttl}"
    );
    wait_for("the history keys to expire", || {
        let mut conn = conn.clone();
        async move { exists(&mut conn).await == 0 }
    })
    .await;
    let missed = backends
        .history
        .since("quiet", t * 1000 - 1, 100, policy, now_ms())
        .await
        .expect("since");
    assert!(missed.messages.is_empty());
    assert!(!missed.complete, "an expired message after since is a gap");
}

/// Requests each chat event sends to Redis (a pipeline counts once).
#[tokio::test]
async fn round_trips_per_event() {
    let server = RedisServer::start().await;
    // A slow health check, so its heartbeats do not show in the counts.
    let backend = ready(connect(
        &server.url(),
        &unique_prefix("rtt"),
        options("n1").with_health_interval(Duration::from_secs(600)),
    ))
    .await;
    let limits = Limits {
        max_message_length: 4000,
        max_connections_per_user: 20,
        max_channels_per_user: 500,
        rate_limits: RatePolicy {
            default: RateQuota {
                count: 10_000,
                period: Duration::from_secs(60),
            },
            per_event: Default::default(),
        },
    };
    let chat = ChatService::new(backend.clone().into_backends(), limits, "n1");
    let alice = Identity::new("alice");
    let mut table = Vec::new();
    macro_rules! measure {
        ($name:expr, $call:expr) => {{
            let before = backend.requests_sent();
            let result = $call.await;
            let used = backend.requests_sent() - before;
            table.push(($name, used));
            (result, used)
        }};
    }
    let (r, connect_first) = measure!("connect (first connection)", chat.connect("alice", "s1"));
    r.expect("connect");
    let (r, connect_more) = measure!("connect (another connection)", chat.connect("alice", "s2"));
    r.expect("connect");
    let (r, _) = measure!(
        "rate-limit check (every event)",
        chat.check_rate("alice", "message:send")
    );
    r.expect("rate");
    for i in 0..20 {
        chat.join(&alice, join(&format!("c{i}")))
            .await
            .expect("join");
        chat.connect(&format!("u{i}"), &format!("t{i}"))
            .await
            .expect("connect");
        chat.join(&Identity::new(format!("u{i}")), join(&format!("c{i}")))
            .await
            .expect("join");
    }
    let (r, join_new) = measure!(
        "channel:join (new member)",
        chat.join(&alice, join("fresh"))
    );
    r.expect("join");
    let (r, _) = measure!(
        "channel:join (already a member)",
        chat.join(&alice, join("fresh"))
    );
    r.expect("join");
    let (r, send) = measure!(
        "message:send",
        chat.send_message(
            "alice",
            SendMessageRequest {
                channel_id: "fresh".into(),
                text: "hi".into(),
                client_msg_id: None,
            },
            None,
        )
    );
    let _ = r.expect("send");
    let (r, join_since) = measure!(
        "channel:join (with since)",
        chat.join(
            &alice,
            JoinRequest {
                channel_id: "fresh".into(),
                since: Some(0),
            }
        )
    );
    assert_eq!(r.expect("join").missed.map(|m| m.messages.len()), Some(1));
    let (r, history) = measure!(
        "channel:history",
        chat.history(
            "alice",
            HistoryRequest::from_parts("fresh".into(), None, None).expect("request")
        )
    );
    assert_eq!(r.expect("history").messages.len(), 1);
    let (r, _) = measure!(
        "presence:update",
        chat.set_presence("alice", PresenceStatus::Busy)
    );
    r.expect("presence");
    let (r, _) = measure!(
        "users:online (all)",
        chat.users_online("alice", UsersOnlineRequest { channel_id: None })
    );
    assert_eq!(r.expect("online").len(), 21);
    let (r, _) = measure!(
        "users:online (channel)",
        chat.users_online(
            "alice",
            UsersOnlineRequest {
                channel_id: Some("c3".into()),
            },
        )
    );
    r.expect("online");
    let (r, list_many) = measure!("channel:list (21 channels)", chat.channel_list("alice"));
    assert_eq!(r.expect("list").len(), 21);
    let (r, list_one) = measure!("channel:list (1 channel)", chat.channel_list("u1"));
    assert_eq!(r.expect("list").len(), 1);
    let (r, _) = measure!("typing", chat.typing("alice", typing("fresh")));
    r.expect("typing");
    let (r, _) = measure!("channel:leave", chat.leave("alice", leave("fresh")));
    r.expect("leave");
    let (_, disconnect_more) =
        measure!("disconnect (not the last)", chat.disconnect("alice", "s2"));
    let (_, disconnect_last) = measure!(
        "disconnect (last connection)",
        chat.disconnect("alice", "s1")
    );

    println!("| event | requests to Redis |\n|---|---|");
    for (name, used) in &table {
        println!("| {name} | {used} |");
    }
    // No request per channel or per member.
    assert_eq!(
        list_many, list_one,
        "channel:list must not grow with channels"
    );
    assert!(list_many <= 3, "channel:list used {list_many}");
    assert_eq!(connect_first, 4);
    assert_eq!(connect_more, 3);
    assert!(join_new <= 4, "join used {join_new}");
    assert_eq!(
        send, 3,
        "membership check and id at once, then activity + history"
    );
    assert!(join_since <= 5, "join with since used {join_since}");
    assert_eq!(history, 2, "membership check and page at once");
    assert_eq!(disconnect_more, 2);
    assert!(disconnect_last <= 5);
}

fn join(channel: &str) -> JoinRequest {
    JoinRequest {
        channel_id: channel.to_owned(),
        since: None,
    }
}

fn leave(channel: &str) -> chatgate::protocol::LeaveRequest {
    chatgate::protocol::LeaveRequest {
        channel_id: channel.to_owned(),
    }
}

fn typing(channel: &str) -> chatgate::protocol::TypingRequest {
    chatgate::protocol::TypingRequest {
        channel_id: channel.to_owned(),
        typing: true,
    }
}

/// A chatgate server on Redis, on a random loopback port.
async fn chatgate_on(redis: &RedisSettings) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = Config {
        bind: listener.local_addr().expect("addr"),
        redis: Some(redis.clone()),
        ..Config::default()
    };
    let (server, _task) = Server::spawn(config, listener).expect("spawn");
    let addr = server.addr();
    wait_for("/readyz to answer 200", || async move {
        http_get(addr, "/readyz", &[]).await.status == 200
    })
    .await;
    server
}

fn as_user(user: &str) -> ConnectOptions {
    ConnectOptions::websocket().with_auth(json!({ "userId": user }))
}

async fn ack(client: &SioClient, event: &str, args: Vec<Value>) -> Value {
    let reply = client.emit_with_ack(event, args).await;
    reply.into_iter().next().expect("an ack argument")
}

fn sorted_strings(value: &Value) -> Vec<String> {
    let mut items: Vec<String> = value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| {
            v.as_str()
                .or_else(|| v.get("userId").and_then(Value::as_str))
                .expect("a user id")
                .to_owned()
        })
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn two_chatgate_servers_on_one_redis_agree() {
    let redis = RedisServer::start().await;
    let redis_settings = settings(&redis.url(), &unique_prefix("servers"));
    let a = chatgate_on(&redis_settings).await;
    let b = chatgate_on(&redis_settings).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&a.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&b.url(), as_user("bob")).await;

    let joined = ack(&alice, "channel:join", vec![json!("general")]).await;
    assert_eq!(joined["status"], "ok", "{joined}");
    let joined = ack(
        &bob,
        "channel:join",
        vec![json!({ "channelId": "general" })],
    )
    .await;
    assert_eq!(joined["status"], "ok", "{joined}");
    assert_eq!(sorted_strings(&joined["members"]), ["alice", "bob"]);
    assert_eq!(sorted_strings(&joined["online"]), ["alice", "bob"]);

    for client in [&alice, &bob] {
        let online = ack(client, "users:online", vec![]).await;
        assert_eq!(
            sorted_strings(&online["users"]),
            ["alice", "bob"],
            "{online}"
        );
    }
    let list = ack(&bob, "channel:list", vec![]).await;
    let channels = list["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 1, "{list}");
    assert_eq!(channels[0]["channelId"], "general");
    assert_eq!(channels[0]["members"], 2);
    assert_eq!(channels[0]["online"], 2);

    // A second tab of alice on the other node: the join rate limit
    // (10/min by default) is shared, so the two tabs together get 10.
    let alice_b = bridge.connect_ok(&b.url(), as_user("alice")).await;
    let mut joined = 1; // "general" above
    let mut refused = None;
    for i in 0..12 {
        let tab = if i % 2 == 0 { &alice } else { &alice_b };
        let reply = ack(tab, "channel:join", vec![json!(format!("room-{i}"))]).await;
        if reply["status"] == "ok" {
            joined += 1;
        } else {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the shared limit refuses a join");
    assert_eq!(refused["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(joined, 10);

    // Restarting node a keeps alice's membership.
    drop(alice);
    drop(alice_b);
    drop(a);
    let a2 = chatgate_on(&redis_settings).await;
    let alice = bridge.connect_ok(&a2.url(), as_user("alice")).await;
    let list = ack(&alice, "channel:list", vec![]).await;
    assert_eq!(
        list["channels"].as_array().expect("channels").len(),
        10,
        "{list}"
    );
    let online = ack(
        &bob,
        "users:online",
        vec![json!({ "channelId": "general" })],
    )
    .await;
    assert_eq!(
        sorted_strings(&online["users"]),
        ["alice", "bob"],
        "{online}"
    );

    // Every request to Redis was timed for /metrics.
    let metrics = http_get(a2.addr(), "/metrics", &[]).await.text();
    for expected in [
        "# TYPE chatgate_redis_request_duration_seconds histogram",
        "chatgate_redis_request_duration_seconds_count",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in:\n{metrics}"
        );
    }
}
