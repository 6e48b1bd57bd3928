//! The operator and app-backend surfaces, end to end against chatgate running
//! in-process: the server API (`/api/v1`, every route, its key check, its
//! deliveries to the real npm `socket.io-client`), `/metrics`, `/status`, the
//! demo page's assets, and `docs/openapi.yaml` against the routes served.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use chatgate::api::v1::ROUTES;
use chatgate::config::{AuthConfig, Config, JwtSettings, Secret};
use chatgate::server::RunningServer;
use serde_json::{Value, json};
use support::chat::{ack, as_user, next_one, spawn_chatgate};
use support::{ConnectOptions, HttpResponse, NodeBridge, default_timeout, http_request};

/// The API key of the test servers.
const KEY: &str = "test-api-key-0123456789abcdef";

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// A chatgate server on a random loopback port with the API key set,
/// configured further by `tweak`.
async fn start(tweak: impl FnOnce(&mut Config)) -> RunningServer {
    spawn_chatgate(|config| {
        config.api_key = Some(Secret::new(KEY.to_owned()));
        tweak(config);
    })
    .await
}

/// One API call with `key` (none when `None`); the body is sent as JSON.
async fn call_with(
    server: &RunningServer,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> HttpResponse {
    let authorization = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("accept", "application/json")];
    if let Some(value) = &authorization {
        headers.push(("authorization", value.as_str()));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    http_request(
        server.addr(),
        method,
        path,
        &headers,
        body.unwrap_or_default(),
    )
    .await
}

/// An API call with the right key; returns the status and the JSON body.
async fn call(
    server: &RunningServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes());
    let response = call_with(server, Some(KEY), method, path, bytes.as_deref()).await;
    (response.status, json_of(&response))
}

fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.text()))
}

/// A successful call's body.
async fn ok(server: &RunningServer, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = call(server, method, path, body).await;
    assert_eq!(status, 200, "{method} {path}: {reply}");
    assert_eq!(reply["status"], "ok", "{method} {path}: {reply}");
    reply
}

fn assert_failure(status: u16, reply: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{reply}");
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["code"], code, "{reply}");
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a failure has a human message: {reply}"
    );
}

/// Calls `check` until it returns true, within the harness deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + default_timeout();
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A concrete path for a route template (`{channelId}` -> `general`, ...).
fn concrete(template: &str) -> String {
    template
        .replace("{channelId}", "general")
        .replace("{userId}", "alice")
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_wrong_key() {
    let server = start(|_| {}).await;
    let mut paths: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), concrete(r.path)))
        .collect();
    // Unknown routes too: the key is needed to learn which routes exist.
    paths.push(("GET".into(), "/api/v1/no-such-route".into()));
    paths.push(("GET".into(), "/api/v1".into()));
    for (method, path) in &paths {
        let body = (method == "POST").then_some(br#"{"text":"hi"}"#.as_slice());
        for key in [
            None,
            Some("wrong-key"),
            Some("test-api-key-0123456789abcdeX"),
        ] {
            let response = call_with(&server, key, method, path, body).await;
            assert_failure(response.status, &json_of(&response), 401, "UNAUTHORIZED");
            assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        }
    }
    // A basic-auth header with the key is not a bearer token.
    let response = http_request(
        server.addr(),
        "GET",
        "/api/v1/online-users",
        &[("authorization", &format!("Basic {KEY}"))],
        &[],
    )
    .await;
    assert_eq!(response.status, 401);

    // Unknown routes and methods answer in the API's shape.
    let (status, reply) = call(&server, "GET", "/api/v1/no-such-route", None).await;
    assert_failure(status, &reply, 404, "INVALID_PAYLOAD");
    let (status, reply) = call(&server, "PATCH", "/api/v1/online-users", None).await;
    assert_failure(status, &reply, 405, "INVALID_PAYLOAD");
}

#[tokio::test]
async fn the_api_is_off_without_a_key() {
    let server = start(|c| c.api_key = None).await;
    let response = call_with(&server, Some(KEY), "GET", "/api/v1/online-users", None).await;
    assert_failure(response.status, &json_of(&response), 404, "INVALID_PAYLOAD");
    assert!(
        json_of(&response)["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_KEY"))
    );
    // The status view stays open in dev mode without a key...
    let response = call_with(&server, None, "GET", "/status", None).await;
    assert_eq!(response.status, 200);

    // ...and is absent in production mode without one.
    let production = start(|c| {
        c.api_key = None;
        c.auth = AuthConfig::Jwt(JwtSettings::hs256(b"a-test-secret-0123456789abcdef0123"));
        c.frontend_origins = Some(vec!["https://chat.example.com".to_owned()]);
        c.demo_page = false;
    })
    .await;
    assert_eq!(
        call_with(&production, None, "GET", "/status", None)
            .await
            .status,
        404
    );
    assert_eq!(
        call_with(&production, None, "GET", "/", None).await.status,
        404
    );
    assert_eq!(
        call_with(&production, None, "GET", "/metrics", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn publish_reaches_socket_io_clients_like_a_client_message() {
    let server = start(|c| c.max_message_length = 20).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    assert_eq!(
        ack(&alice, "channel:join", json!("general")).await["status"],
        "ok"
    );

    let published = ok(
        &server,
        "POST",
        "/api/v1/channels/general/messages",
        Some(json!({ "text": "deploy done" })),
    )
    .await;
    assert_eq!(published["userId"], "system");
    assert_eq!(published["channelId"], "general");
    let delivered = next_one(&alice, "message:new").await;
    assert_eq!(
        delivered,
        json!({
            "id": published["id"],
            "channelId": "general",
            "userId": "system",
            "text": "deploy done",
            "ts": published["ts"],
        })
    );

    // As a given user, with a client id; ids keep increasing with clients' own.
    let as_bob = ok(
        &server,
        "POST",
        "/api/v1/channels/general/messages",
        Some(json!({ "text": "from the backend", "userId": "bob", "clientMsgId": "c-1" })),
    )
    .await;
    let delivered = next_one(&alice, "message:new").await;
    assert_eq!(delivered["userId"], "bob");
    assert_eq!(delivered["clientMsgId"], "c-1");
    assert_eq!(delivered["id"], as_bob["id"]);
    assert!(as_bob["id"].as_u64() > published["id"].as_u64());
    let sent = ack(
        &alice,
        "message:send",
        json!({ "channelId": "general", "text": "mine" }),
    )
    .await;
    assert!(sent["id"].as_u64() > as_bob["id"].as_u64(), "{sent}");

    // The client's validation rules, with HTTP statuses.
    let path = "/api/v1/channels/general/messages";
    let (status, reply) = call(
        &server,
        "POST",
        path,
        Some(json!({ "text": "x".repeat(21) })),
    )
    .await;
    assert_failure(status, &reply, 413, "PAYLOAD_TOO_LARGE");
    let (status, reply) = call(&server, "POST", path, Some(json!({ "text": "  " }))).await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    let (status, reply) = call(&server, "POST", path, Some(json!({ "txt": "typo" }))).await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    let (status, reply) = call(
        &server,
        "POST",
        path,
        Some(json!({ "text": "a", "user_id": "x" })),
    )
    .await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    let (status, reply) = call(
        &server,
        "POST",
        path,
        Some(json!({ "text": "a", "userId": "" })),
    )
    .await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    let (status, reply) = call(
        &server,
        "POST",
        "/api/v1/channels/bad%20id/messages",
        Some(json!({ "text": "a" })),
    )
    .await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    let broken = call_with(
        &server,
        Some(KEY),
        "POST",
        path,
        Some(b"{not json".as_slice()),
    )
    .await;
    assert_failure(broken.status, &json_of(&broken), 400, "INVALID_PAYLOAD");
    let huge = vec![b'x'; 70 * 1024];
    let too_big = call_with(&server, Some(KEY), "POST", path, Some(&huge)).await;
    assert_failure(too_big.status, &json_of(&too_big), 413, "PAYLOAD_TOO_LARGE");
    // Nothing of the refused calls was delivered.
    alice.expect_no_event("message:new", QUIET).await;
}

#[tokio::test]
async fn membership_changes_subscribe_every_live_connection() {
    let server = start(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    assert_eq!(
        ack(&alice, "channel:join", json!("general")).await["status"],
        "ok"
    );
    let bob_tab1 = bridge.connect_ok(&server.url(), as_user("bob")).await;
    let bob_tab2 = bridge.connect_ok(&server.url(), as_user("bob")).await;

    let added = ok(&server, "PUT", "/api/v1/channels/general/members/bob", None).await;
    assert_eq!(added["joined"], true);
    assert_eq!(added["members"], json!(["alice", "bob"]));
    assert_eq!(added["online"], json!(["alice", "bob"]));
    let joined = json!({ "channelId": "general", "userId": "bob" });
    assert_eq!(next_one(&alice, "channel:member-joined").await, joined);
    assert_eq!(next_one(&bob_tab1, "channel:member-joined").await, joined);
    assert_eq!(next_one(&bob_tab2, "channel:member-joined").await, joined);

    // Both of bob's tabs are subscribed, and the membership is real.
    ok(
        &server,
        "POST",
        "/api/v1/channels/general/messages",
        Some(json!({ "text": "welcome" })),
    )
    .await;
    for client in [&alice, &bob_tab1, &bob_tab2] {
        assert_eq!(next_one(client, "message:new").await["text"], "welcome");
    }
    let sent = ack(
        &bob_tab1,
        "message:send",
        json!({ "channelId": "general", "text": "thanks" }),
    )
    .await;
    assert_eq!(sent["status"], "ok", "{sent}");
    assert_eq!(next_one(&alice, "message:new").await["text"], "thanks");
    // The sender's other tab gets it too.
    assert_eq!(next_one(&bob_tab2, "message:new").await["text"], "thanks");

    // Adding again changes nothing and announces nothing.
    let again = ok(&server, "PUT", "/api/v1/channels/general/members/bob", None).await;
    assert_eq!(again["joined"], false);
    alice.expect_no_event("channel:member-joined", QUIET).await;

    let members = ok(&server, "GET", "/api/v1/channels/general/members", None).await;
    assert_eq!(members["members"], json!(["alice", "bob"]));
    assert_eq!(members["online"], json!(["alice", "bob"]));
    let online = ok(&server, "GET", "/api/v1/channels/general/online", None).await;
    let users: Vec<&str> = online["users"]
        .as_array()
        .map(|u| u.iter().filter_map(|p| p["userId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(online["users"][0]["status"], "online");

    // Removing: announced to the channel and to bob's tabs, then unsubscribed.
    let removed = ok(
        &server,
        "DELETE",
        "/api/v1/channels/general/members/bob",
        None,
    )
    .await;
    assert_eq!(
        removed,
        json!({ "status": "ok", "channelId": "general", "userId": "bob" })
    );
    assert_eq!(next_one(&alice, "channel:member-left").await, joined);
    assert_eq!(next_one(&bob_tab1, "channel:member-left").await, joined);
    assert_eq!(next_one(&bob_tab2, "channel:member-left").await, joined);
    ok(
        &server,
        "POST",
        "/api/v1/channels/general/messages",
        Some(json!({ "text": "after" })),
    )
    .await;
    assert_eq!(next_one(&alice, "message:new").await["text"], "after");
    bob_tab1.expect_no_event("message:new", QUIET).await;
    bob_tab2
        .expect_no_event("message:new", Duration::ZERO)
        .await;
    let refused = ack(
        &bob_tab2,
        "message:send",
        json!({ "channelId": "general", "text": "still here?" }),
    )
    .await;
    assert_eq!(refused["code"], "NOT_IN_CHANNEL");

    let (status, reply) = call(
        &server,
        "DELETE",
        "/api/v1/channels/general/members/bob",
        None,
    )
    .await;
    assert_failure(status, &reply, 404, "NOT_IN_CHANNEL");
    let (status, reply) = call(
        &server,
        "PUT",
        "/api/v1/channels/no%20spaces/members/bob",
        None,
    )
    .await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    let (status, reply) = call(&server, "GET", "/api/v1/channels/x%00y/members", None).await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
}

#[tokio::test]
async fn the_membership_cap_applies_to_the_api() {
    let server = start(|c| c.max_channels_per_user = 1).await;
    ok(&server, "PUT", "/api/v1/channels/one/members/carol", None).await;
    let (status, reply) = call(&server, "PUT", "/api/v1/channels/two/members/carol", None).await;
    assert_failure(status, &reply, 409, "TOO_MANY_CHANNELS");
    // Re-adding at the cap is fine.
    ok(&server, "PUT", "/api/v1/channels/one/members/carol", None).await;
}

#[tokio::test]
async fn user_status_online_users_and_channel_lists() {
    let server = start(|_| {}).await;
    let bridge = NodeBridge::spawn().await;

    let nobody = ok(&server, "GET", "/api/v1/users/carol", None).await;
    assert_eq!(
        nobody,
        json!({
            "status": "ok", "userId": "carol", "presence": "offline", "lastSeen": null,
            "connections": 0, "channels": [],
        })
    );

    let carol1 = bridge.connect_ok(&server.url(), as_user("carol")).await;
    let carol2 = bridge.connect_ok(&server.url(), as_user("carol")).await;
    assert_eq!(
        ack(&carol1, "channel:join", json!("a")).await["status"],
        "ok"
    );
    assert_eq!(
        ack(&carol1, "channel:join", json!("b")).await["status"],
        "ok"
    );
    let away = ack(&carol2, "presence:update", json!({ "status": "away" })).await;
    assert_eq!(away["status"], "ok");

    let carol = ok(&server, "GET", "/api/v1/users/carol", None).await;
    assert_eq!(carol["presence"], "away");
    assert_eq!(carol["connections"], 2);
    assert_eq!(carol["channels"], json!(["a", "b"]));
    assert!(carol["lastSeen"].as_u64().is_some(), "{carol}");

    let online = ok(&server, "GET", "/api/v1/online-users", None).await;
    assert_eq!(
        online["users"].as_array().map(Vec::len),
        Some(1),
        "{online}"
    );
    assert_eq!(online["users"][0]["userId"], "carol");
    assert_eq!(online["users"][0]["status"], "away");

    // "a" gets the newest activity: it comes first.
    ok(
        &server,
        "POST",
        "/api/v1/channels/a/messages",
        Some(json!({ "text": "bump" })),
    )
    .await;
    let listed = ok(&server, "GET", "/api/v1/users/carol/channels", None).await;
    let ids: Vec<&str> = listed["channels"]
        .as_array()
        .map(|c| c.iter().filter_map(|s| s["channelId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(listed["channels"][0]["members"], 1);
    assert_eq!(listed["channels"][0]["online"], 1);
    // Same as the user's own channel:list.
    let own = carol1.emit_with_ack("channel:list", vec![]).await;
    assert_eq!(own[0]["channels"], listed["channels"]);

    let all = ok(&server, "GET", "/api/v1/channels", None).await;
    assert_eq!(all["channels"], listed["channels"]);
    let one = ok(&server, "GET", "/api/v1/channels?limit=1", None).await;
    assert_eq!(one["channels"].as_array().map(Vec::len), Some(1));
    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?other=1"] {
        let (status, reply) = call(&server, "GET", &format!("/api/v1/channels{bad}"), None).await;
        assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    }
    let long = "u".repeat(129);
    let (status, reply) = call(&server, "GET", &format!("/api/v1/users/{long}"), None).await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
}

#[tokio::test]
async fn disconnect_user_closes_every_connection_of_that_user_only() {
    let server = start(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let dave1 = bridge.connect_ok(&server.url(), as_user("dave")).await;
    let dave2 = bridge
        .connect_ok(
            &server.url(),
            ConnectOptions::polling().with_auth(json!({ "userId": "dave" })),
        )
        .await;
    let eve = bridge.connect_ok(&server.url(), as_user("eve")).await;
    assert_eq!(
        ack(&eve, "channel:join", json!("general")).await["status"],
        "ok"
    );
    assert_eq!(
        ack(&dave1, "channel:join", json!("general")).await["status"],
        "ok"
    );
    next_one(&eve, "channel:member-joined").await;

    let reply = ok(&server, "POST", "/api/v1/users/dave/disconnect", None).await;
    assert_eq!(
        reply,
        json!({ "status": "ok", "userId": "dave", "disconnected": 2 })
    );
    // "io server disconnect": socket.io-client does not reconnect by itself.
    assert_eq!(dave1.next_disconnect().await, "io server disconnect");
    assert_eq!(dave2.next_disconnect().await, "io server disconnect");
    // Eve hears dave go offline, and is still connected herself.
    let offline = next_one(&eve, "presence:update").await;
    assert_eq!(offline["userId"], "dave");
    assert_eq!(offline["status"], "offline");
    assert!(eve.connected().await);
    eventually("dave offline in the API", || async {
        let status = ok(&server, "GET", "/api/v1/users/dave", None).await;
        status["presence"] == "offline" && status["connections"] == 0
    })
    .await;
    // Membership stays.
    let dave = ok(&server, "GET", "/api/v1/users/dave", None).await;
    assert_eq!(dave["channels"], json!(["general"]));

    let none = ok(&server, "POST", "/api/v1/users/nobody/disconnect", None).await;
    assert_eq!(none["disconnected"], 0);
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let server = start(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    for client in [&alice, &bob] {
        assert_eq!(
            ack(client, "channel:join", json!("general")).await["status"],
            "ok"
        );
    }
    let sent = ack(
        &alice,
        "message:send",
        json!({ "channelId": "general", "text": "hi" }),
    )
    .await;
    assert_eq!(sent["status"], "ok");
    // A delivery happened: deliveries and their queue latency are recorded.
    bob.next_event("message:new").await;
    let refused = ack(&alice, "channel:leave", json!("elsewhere")).await;
    assert_eq!(refused["code"], "NOT_IN_CHANNEL");
    ok(&server, "GET", "/api/v1/online-users", None).await;
    let refused_handshake = bridge
        .connect(&server.url(), ConnectOptions::websocket())
        .await;
    assert!(refused_handshake.is_err());

    let response = http_request(server.addr(), "GET", "/metrics", &[], &[]).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.header("content-type")
    );
    let text = response.text();
    // The recorder is per process (tests share it): check names, not values.
    for expected in [
        "# TYPE chatgate_events_total counter",
        "chatgate_events_total{event=\"message:send\",outcome=\"ok\"}",
        "chatgate_events_total{event=\"channel:leave\",outcome=\"NOT_IN_CHANNEL\"}",
        "chatgate_handshakes_refused_total{code=\"UNAUTHORIZED\"}",
        "# TYPE chatgate_messages_total counter",
        "# TYPE chatgate_engine_broadcast_deliveries_total counter",
        "# TYPE chatgate_engine_delivery_latency_seconds histogram",
        "chatgate_engine_delivery_latency_seconds_count",
        "# TYPE chatgate_engine_connections gauge",
        "chatgate_engine_connections_opened_total",
        "# TYPE chatgate_users_online gauge",
        "# TYPE chatgate_sockets gauge",
        "# TYPE chatgate_channels_with_subscribers gauge",
        "chatgate_nodes 1",
        "chatgate_build_info{version=",
        "chatgate_api_requests_total{route=\"/api/v1/online-users\",method=\"GET\",status=\"200\"}",
        "# TYPE chatgate_api_request_duration_seconds histogram",
        "chatgate_api_request_duration_seconds_bucket{route=\"/api/v1/online-users\",le=\"0.005\"}",
        "# HELP chatgate_events_total",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    alice.close().await;
    eventually("the engine connection is closed and counted", || async {
        let text = http_request(server.addr(), "GET", "/metrics", &[], &[])
            .await
            .text();
        text.contains("chatgate_engine_connections_closed_total{reason=")
    })
    .await;
}

/// `/metrics` carries the process metrics (CPU, memory, open files,
/// threads) under their standard Prometheus names.
#[tokio::test]
async fn metrics_include_process_cpu_memory_and_open_files() {
    let server = start(|_| {}).await;
    let text = http_request(server.addr(), "GET", "/metrics", &[], &[])
        .await
        .text();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert!(value("process_virtual_memory_bytes") > 0.0);
    assert!(value("process_open_fds") > 0.0);
    assert!(value("process_max_fds") > 0.0);
    assert!(value("process_threads") >= 1.0);
    assert!(value("process_start_time_seconds") > 0.0);
}

/// `docs/metrics.md` lists exactly the metrics of `chatgate::metrics::METRICS`.
#[test]
fn metrics_doc_lists_every_metric() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .unwrap_or_else(|e| panic!("docs/metrics.md: {e}"));
    let documented: BTreeSet<String> = doc
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("chatgate_"))
        .map(|word| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word)
                .to_owned()
        })
        .collect();
    let exported: BTreeSet<String> = chatgate::metrics::METRICS
        .iter()
        .map(|m| m.name.to_owned())
        .collect();
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&exported).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/metrics.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "documented but not exported: {unknown:?}"
    );
}

#[tokio::test]
async fn status_shows_nodes_users_channels_and_rates() {
    let server = start(|_| {}).await;
    let response = call_with(&server, None, "GET", "/status", None).await;
    assert_failure(response.status, &json_of(&response), 401, "UNAUTHORIZED");

    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    for client in [&alice, &bob] {
        assert_eq!(
            ack(client, "channel:join", json!("busy")).await["status"],
            "ok"
        );
    }
    assert_eq!(
        ack(&alice, "channel:join", json!("quiet")).await["status"],
        "ok"
    );

    let status = ok(&server, "GET", "/status", None).await;
    assert_eq!(status["nodesAlive"], 1);
    assert_eq!(status["usersOnline"], 2);
    let node = &status["nodes"][0];
    assert_eq!(node["self"], true);
    assert_eq!(node["sockets"], 2);
    assert_eq!(node["engineConnections"], 2);
    assert_eq!(node["usersConnected"], 2);
    assert_eq!(node["channelsWithSubscribers"], 2);
    assert_eq!(status["topChannels"][0]["channelId"], "busy");
    assert_eq!(status["topChannels"][0]["subscribers"], 2);
    assert_eq!(status["topChannels"][0]["members"], 2);
    assert_eq!(status["topChannels"][1]["channelId"], "quiet");
    // Rates need two readings a second apart.
    assert!(status["eventRates"].is_null(), "{status}");

    let page = call_with(&server, None, "GET", "/status.html", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/status.js"));
    assert_eq!(
        call_with(&server, None, "GET", "/status.js", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_demo_page_is_served_and_can_be_switched_off() {
    let server = start(|_| {}).await;
    let page = http_request(server.addr(), "GET", "/", &[], &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'self'"))
    );
    let html = page.text();
    for asset in ["/socket.io-client.js", "/demo/app.js", "/demo/style.css"] {
        assert!(html.contains(asset), "{asset}");
        let response = http_request(server.addr(), "GET", asset, &[], &[]).await;
        assert_eq!(response.status, 200, "{asset}");
    }
    let config = http_request(server.addr(), "GET", "/demo/config.json", &[], &[]).await;
    let config = json_of(&config);
    assert_eq!(config["devMode"], true);
    // The real client is bundled when demo/node_modules was installed at build
    // time (scripts/test and build.rs do that).
    if config["clientBundled"] == true {
        let client = http_request(server.addr(), "GET", "/socket.io-client.js", &[], &[]).await;
        assert!(
            client.text().contains("Socket.IO"),
            "not the socket.io-client bundle"
        );
    }

    let off = start(|c| c.demo_page = false).await;
    assert_eq!(
        http_request(off.addr(), "GET", "/", &[], &[]).await.status,
        404
    );
    assert_eq!(
        http_request(off.addr(), "GET", "/socket.io-client.js", &[], &[])
            .await
            .status,
        404
    );
}

/// `docs/openapi.yaml` documents exactly the routes served, and every call
/// made from its examples answers with a status it lists.
#[tokio::test]
async fn openapi_file_matches_the_routes_served() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .unwrap_or_else(|e| panic!("docs/openapi.yaml: {e}"));
    let spec: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("openapi.yaml: {e}"));
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    let paths = spec["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths"));

    let mut documented = BTreeSet::new();
    let mut operations = Vec::new();
    for (path, item) in paths {
        let item = item.as_object().unwrap_or_else(|| panic!("{path}"));
        for (method, operation) in item {
            let method = method.to_ascii_uppercase();
            if path.starts_with("/api/v1") {
                documented.insert((method.clone(), path.clone()));
            }
            operations.push((method, path.clone(), operation.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "served but not in openapi.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in openapi.yaml but not served: {extra:?}"
    );

    let server = start(|_| {}).await;
    // The examples name alice in general: make her a member, so that both
    // adding and removing her succeed in whichever order they run.
    ok(
        &server,
        "PUT",
        "/api/v1/channels/general/members/alice",
        None,
    )
    .await;
    let parameters = &spec["components"]["parameters"];
    for (method, path, operation) in &operations {
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}: no responses"));
        let documented_status = |status: u16| responses.contains_key(&status.to_string());
        // Fill path parameters and the query from the examples.
        let mut concrete_path = path.clone();
        let mut query = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let parameter = match parameter["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    &parameters[name]
                }
                None => parameter,
            };
            let name = parameter["name"].as_str().unwrap_or_default();
            let example = match &parameter["example"] {
                Value::String(s) => s.clone(),
                Value::Null => panic!("{method} {path}: parameter {name} has no example"),
                other => other.to_string(),
            };
            match parameter["in"].as_str() {
                Some("path") => {
                    concrete_path = concrete_path.replace(&format!("{{{name}}}"), &example)
                }
                Some("query") => query.push(format!("{name}={example}")),
                other => panic!("{method} {path}: parameter in {other:?}"),
            }
        }
        assert!(
            !concrete_path.contains('{'),
            "{method} {path}: unfilled parameter"
        );
        if !query.is_empty() {
            concrete_path = format!("{concrete_path}?{}", query.join("&"));
        }
        let body = operation["requestBody"]["content"]["application/json"]["example"].clone();
        let body = (!body.is_null()).then(|| body.to_string().into_bytes());
        let secured = operation
            .get("security")
            .is_none_or(|s| s.as_array().is_none_or(|a| !a.is_empty()));

        let response = call_with(&server, Some(KEY), method, &concrete_path, body.as_deref()).await;
        assert!(
            documented_status(response.status),
            "{method} {concrete_path} answered {}, not listed in openapi.yaml: {}",
            response.status,
            response.text()
        );
        assert!(
            (200..300).contains(&response.status),
            "{method} {concrete_path}: the documented example fails: {} {}",
            response.status,
            response.text()
        );
        if secured {
            assert!(
                documented_status(401),
                "{method} {path}: 401 not documented"
            );
            let refused = call_with(&server, None, method, &concrete_path, body.as_deref()).await;
            assert_eq!(
                refused.status, 401,
                "{method} {concrete_path} without a key"
            );
        }
    }
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One log line per API call, with the route template and the status; never
/// the key, a body or the ids in the path.
#[tokio::test]
async fn every_api_call_logs_one_line_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test: the server's tasks run on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start(|_| {}).await;
    ok(
        &server,
        "POST",
        "/api/v1/channels/secret-channel-id/messages",
        Some(json!({ "text": "a-private-message-body", "userId": "someone-private" })),
    )
    .await;
    let refused = call_with(
        &server,
        Some("a-guessed-wrong-key"),
        "GET",
        "/api/v1/users/someone-private",
        None,
    )
    .await;
    assert_eq!(refused.status, 401);

    let logs = String::from_utf8_lossy(&captured.0.lock()).into_owned();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("api call")).collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(
        lines[0].contains(r#"route="/api/v1/channels/{channelId}/messages""#)
            && lines[0].contains("status=200")
            && lines[0].contains("method=POST"),
        "{logs}"
    );
    assert!(
        lines[1].contains(r#"route="/api/v1/users/{userId}""#) && lines[1].contains("status=401"),
        "{logs}"
    );
    for secret in [
        KEY,
        "a-guessed-wrong-key",
        "a-private-message-body",
        "someone-private",
        "secret-channel-id",
    ] {
        assert!(!logs.contains(secret), "{secret:?} logged:\n{logs}");
    }
}

/// `GET /api/v1/channels/{channelId}/messages` pages through the history
/// like `channel:history`, including messages sent by clients, and refuses
/// bad `before` and `limit` with `INVALID_PAYLOAD`.
#[tokio::test]
async fn channel_messages_page_through_history() {
    let server = start(|_| {}).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let published = ok(
            &server,
            "POST",
            "/api/v1/channels/news/messages",
            Some(json!({ "text": format!("item {i}"), "userId": "bot", "clientMsgId": format!("m{i}") })),
        )
        .await;
        ids.push(published["id"].as_u64().expect("id"));
    }
    let page = ok(
        &server,
        "GET",
        "/api/v1/channels/news/messages?limit=2",
        None,
    )
    .await;
    assert_eq!(page["channelId"], "news");
    assert_eq!(page["hasMore"], true);
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(
        messages
            .iter()
            .map(|m| m["id"].as_u64())
            .collect::<Vec<_>>(),
        vec![Some(ids[3]), Some(ids[4])],
        "the newest, oldest first"
    );
    assert_eq!(messages[1]["text"], "item 4");
    assert_eq!(messages[1]["userId"], "bot");
    assert_eq!(messages[1]["clientMsgId"], "m4");
    assert_eq!(messages[1]["channelId"], "news");
    assert!(messages[1]["ts"].as_u64().is_some());
    let older = ok(
        &server,
        "GET",
        &format!("/api/v1/channels/news/messages?before={}&limit=10", ids[3]),
        None,
    )
    .await;
    assert_eq!(older["hasMore"], false);
    assert_eq!(older["messages"].as_array().map(Vec::len), Some(3));
    let default = ok(&server, "GET", "/api/v1/channels/news/messages", None).await;
    assert_eq!(default["messages"].as_array().map(Vec::len), Some(5));
    let empty = ok(&server, "GET", "/api/v1/channels/nothing/messages", None).await;
    assert_eq!(empty["messages"], json!([]));
    assert_eq!(empty["hasMore"], false);
    for bad in [
        "before=abc",
        "before=-1",
        "limit=0",
        "limit=101",
        "limit=x",
        "unknown=1",
    ] {
        let (status, reply) = call(
            &server,
            "GET",
            &format!("/api/v1/channels/news/messages?{bad}"),
            None,
        )
        .await;
        assert_failure(status, &reply, 400, "INVALID_PAYLOAD");
    }
    let (status, reply) = call(&server, "GET", "/api/v1/channels/bad%20id/messages", None).await;
    assert_failure(status, &reply, 400, "INVALID_PAYLOAD");

    // With history off, nothing is kept.
    let off = start(|config| config.history_size = 0).await;
    ok(
        &off,
        "POST",
        "/api/v1/channels/news/messages",
        Some(json!({ "text": "gone" })),
    )
    .await;
    let page = ok(&off, "GET", "/api/v1/channels/news/messages", None).await;
    assert_eq!(page["messages"], json!([]));
    assert_eq!(page["hasMore"], false);
}

/// Refusals an operator needs to see: a foreign `Origin` (403 on polling and
/// on WebSocket) names the origin, and a refused handshake logs the reason
/// the client was given, not only its code.
#[tokio::test]
async fn refused_origins_and_handshakes_are_logged_with_the_reason() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test: the server's tasks run on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start(|c| c.frontend_origins = Some(vec!["http://app.example".to_owned()])).await;
    let polling = http_request(
        server.addr(),
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://evil-polling.example")],
        b"",
    )
    .await;
    assert_eq!(polling.status, 403);
    let hijack = support::RawWs::connect_with(
        server.addr(),
        "/socket.io/?EIO=4&transport=websocket",
        &[("Origin", "http://evil-ws.example")],
    )
    .await;
    assert!(hijack.is_err(), "a foreign origin must be refused");

    let (mut ws, _open) = support::RawWs::open(server.addr()).await;
    ws.send_text(r#"40{"userId":5}"#).await;
    let refused = ws.recv_text().await;
    assert!(refused.starts_with("44"), "{refused}");

    let logs = String::from_utf8_lossy(&captured.0.lock()).into_owned();
    let origins: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("origin refused"))
        .collect();
    assert_eq!(origins.len(), 2, "{logs}");
    assert!(
        origins[0].contains("http://evil-polling.example") && origins[0].contains("polling"),
        "{logs}"
    );
    assert!(
        origins[1].contains("http://evil-ws.example") && origins[1].contains("websocket"),
        "{logs}"
    );
    let handshake = logs
        .lines()
        .find(|l| l.contains("handshake refused"))
        .unwrap_or_else(|| panic!("no handshake line: {logs}"));
    assert!(
        handshake.contains("UNAUTHORIZED") && handshake.contains("auth.userId must be a string"),
        "{handshake}"
    );
}
