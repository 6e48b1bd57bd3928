//! The wire contract (`docs/wire-contract.md`), driven end to end with the
//! real npm `socket.io-client` against chatgate running in-process on
//! 127.0.0.1:0, on the in-memory backend.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatgate::config::{AuthConfig, JwtSettings, RateLimits};
use serde_json::{Value, json};
use support::chat::{ack, ack_bare, as_user, assert_code, assert_ok, next_one, spawn_chatgate};
use support::{ConnectOptions, NodeBridge, http_get};

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test]
async fn two_users_chat_over_websocket_and_polling() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    // Bob uses the client's default: polling first, then upgrade.
    let bob = bridge
        .connect_ok(
            &server.url(),
            ConnectOptions::default().with_auth(json!({ "userId": "bob" })),
        )
        .await;

    let joined = ack(&alice, "channel:join", json!("general")).await;
    assert_ok(&joined);
    assert_eq!(joined["channelId"], "general");
    assert_eq!(joined["members"], json!(["alice"]));
    assert_eq!(joined["online"], json!(["alice"]));

    let joined = ack(&bob, "channel:join", json!({ "channelId": "general" })).await;
    assert_eq!(joined["members"], json!(["alice", "bob"]));
    assert_eq!(joined["online"], json!(["alice", "bob"]));
    let member = next_one(&alice, "channel:member-joined").await;
    assert_eq!(member, json!({ "channelId": "general", "userId": "bob" }));
    // The joining connection has its ack instead of the event.
    bob.expect_no_event("channel:member-joined", QUIET).await;

    let sent = ack(
        &alice,
        "message:send",
        json!({ "channelId": "general", "text": "hello bob", "clientMsgId": "m-1" }),
    )
    .await;
    assert_ok(&sent);
    assert_eq!(sent["channelId"], "general");
    let id = sent["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("numeric id: {sent}"));
    let ts = sent["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("numeric ts: {sent}"));
    assert!(
        ts / 1000 + 5 >= now_secs(),
        "ts is milliseconds since the epoch"
    );

    let message = next_one(&bob, "message:new").await;
    assert_eq!(
        message,
        json!({
            "id": id, "channelId": "general", "userId": "alice",
            "text": "hello bob", "ts": ts, "clientMsgId": "m-1"
        })
    );
    // Bob answers without clientMsgId: the field is absent, not null.
    ack(
        &bob,
        "message:send",
        json!({ "channelId": "general", "text": "hi alice" }),
    )
    .await;
    let reply = next_one(&alice, "message:new").await;
    assert_eq!(reply["text"], "hi alice");
    assert!(reply.get("clientMsgId").is_none(), "{reply}");
    assert!(
        reply["id"].as_u64() > Some(id),
        "ids increase within a channel"
    );
    // The sender's own connection does not get its message back.
    alice.expect_no_event("message:new", QUIET).await;
    assert_eq!(
        bob.transport().await,
        "websocket",
        "bob upgraded from polling"
    );
}

#[tokio::test]
async fn polling_only_client_gets_the_whole_flow() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge
        .connect_ok(
            &server.url(),
            ConnectOptions::polling().with_auth(json!({ "userId": "bob" })),
        )
        .await;
    assert_eq!(bob.initial_transport(), "polling");
    assert_ok(&ack(&alice, "channel:join", json!("room")).await);
    assert_ok(&ack(&bob, "channel:join", json!("room")).await);
    for n in 0..5 {
        ack(
            &alice,
            "message:send",
            json!({ "channelId": "room", "text": format!("m{n}") }),
        )
        .await;
    }
    for n in 0..5 {
        assert_eq!(next_one(&bob, "message:new").await["text"], format!("m{n}"));
    }
    ack(
        &bob,
        "message:send",
        json!({ "channelId": "room", "text": "from polling" }),
    )
    .await;
    assert_eq!(
        next_one(&alice, "message:new").await["text"],
        "from polling"
    );
    assert_eq!(bob.transport().await, "polling");
}

#[tokio::test]
async fn every_tab_of_a_user_follows_membership() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let tab1 = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let tab2 = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    assert_ok(&ack(&bob, "channel:join", json!("team")).await);

    // Joining in one tab subscribes the other one.
    assert_ok(&ack(&tab1, "channel:join", json!("team")).await);
    ack(
        &bob,
        "message:send",
        json!({ "channelId": "team", "text": "to both tabs" }),
    )
    .await;
    assert_eq!(next_one(&tab1, "message:new").await["text"], "to both tabs");
    assert_eq!(next_one(&tab2, "message:new").await["text"], "to both tabs");

    // A message from one tab reaches the user's other tab, not the sending one.
    ack(
        &tab1,
        "message:send",
        json!({ "channelId": "team", "text": "from tab1" }),
    )
    .await;
    assert_eq!(next_one(&tab2, "message:new").await["text"], "from tab1");
    assert_eq!(next_one(&bob, "message:new").await["text"], "from tab1");

    // A new tab is subscribed before it is told it is connected.
    let tab3 = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let list = ack_bare(&tab3, "channel:list").await;
    assert_eq!(list["channels"][0]["channelId"], "team");
    ack(
        &bob,
        "message:send",
        json!({ "channelId": "team", "text": "to tab3" }),
    )
    .await;
    for tab in [&tab1, &tab2, &tab3] {
        assert_eq!(next_one(tab, "message:new").await["text"], "to tab3");
    }

    // Leaving in one tab unsubscribes all of them, and they all hear it.
    let left = ack(&tab2, "channel:leave", json!({ "channelId": "team" })).await;
    assert_eq!(left, json!({ "status": "ok", "channelId": "team" }));
    for tab in [&tab1, &tab3] {
        let member = next_one(tab, "channel:member-left").await;
        assert_eq!(member, json!({ "channelId": "team", "userId": "alice" }));
    }
    // The leaving connection has its ack instead.
    tab2.expect_no_event("channel:member-left", QUIET).await;
    assert_eq!(
        next_one(&bob, "channel:member-left").await,
        json!({ "channelId": "team", "userId": "alice" })
    );
    ack(
        &bob,
        "message:send",
        json!({ "channelId": "team", "text": "after leave" }),
    )
    .await;
    for tab in [&tab1, &tab2, &tab3] {
        tab.expect_no_event("message:new", QUIET).await;
    }
    let reply = ack(
        &tab1,
        "message:send",
        json!({ "channelId": "team", "text": "x" }),
    )
    .await;
    assert_code(&reply, "NOT_IN_CHANNEL");
}

#[tokio::test]
async fn presence_counts_connections_and_membership_survives() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    assert_ok(&ack(&bob, "channel:join", json!("lobby")).await);

    let tab1 = bridge.connect_ok(&server.url(), as_user("alice")).await;
    assert_ok(&ack(&tab1, "channel:join", json!("lobby")).await);
    next_one(&bob, "channel:member-joined").await;

    let tab2 = bridge.connect_ok(&server.url(), as_user("alice")).await;
    // A second tab is not a new arrival.
    bob.expect_no_event("presence:update", QUIET).await;
    tab1.disconnect().await;
    bob.expect_no_event("presence:update", QUIET).await;
    let online = ack(&bob, "users:online", json!({ "channelId": "lobby" })).await;
    let ids: Vec<&str> = online["users"]
        .as_array()
        .map(|users| users.iter().filter_map(|u| u["userId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["alice", "bob"]);

    // The last connection going makes the user offline, without leaving.
    tab2.disconnect().await;
    let offline = next_one(&bob, "presence:update").await;
    assert_eq!(offline["userId"], "alice");
    assert_eq!(offline["status"], "offline");
    assert!(
        offline["lastSeen"]
            .as_u64()
            .is_some_and(|ms| ms / 1000 + 5 >= now_secs())
    );
    bob.expect_no_event("channel:member-left", QUIET).await;

    // Back online: bob hears it, and alice is still a member.
    let back = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let online = next_one(&bob, "presence:update").await;
    assert_eq!(
        (online["userId"].as_str(), online["status"].as_str()),
        (Some("alice"), Some("online"))
    );
    let list = ack_bare(&back, "channel:list").await;
    assert_eq!(list["channels"][0]["channelId"], "lobby");
    assert_eq!(list["channels"][0]["members"], 2);
    assert_eq!(list["channels"][0]["online"], 2);

    // Status changes reach the channel.
    assert_eq!(
        ack(&back, "presence:update", json!({ "status": "away" })).await,
        json!({ "status": "ok" })
    );
    let away = next_one(&bob, "presence:update").await;
    assert_eq!(
        (away["userId"].as_str(), away["status"].as_str()),
        (Some("alice"), Some("away"))
    );
    let all = ack_bare(&bob, "users:online").await;
    let alice = all["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["userId"] == "alice").cloned());
    assert_eq!(alice.map(|a| a["status"].clone()), Some(json!("away")));
    let refused = ack(&back, "presence:update", json!({ "status": "offline" })).await;
    assert_code(&refused, "INVALID_PAYLOAD");
    let refused = ack(&back, "presence:update", json!({ "status": "sleeping" })).await;
    assert_code(&refused, "INVALID_PAYLOAD");
}

#[tokio::test]
async fn typing_reaches_the_channel_but_not_the_sender() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    ack(&alice, "channel:join", json!("dev")).await;
    ack(&bob, "channel:join", json!("dev")).await;
    alice
        .emit(
            "typing",
            vec![json!({ "channelId": "dev", "typing": true })],
        )
        .await;
    let typing = next_one(&bob, "typing").await;
    assert_eq!(
        typing,
        json!({ "channelId": "dev", "userId": "alice", "typing": true })
    );
    alice.expect_no_event("typing", QUIET).await;
    // Typing in a channel one is not in fails, as an `error` event without ack.
    alice
        .emit(
            "typing",
            vec![json!({ "channelId": "elsewhere", "typing": true })],
        )
        .await;
    let error = next_one(&alice, "error").await;
    assert_code(&error, "NOT_IN_CHANNEL");
}

#[tokio::test]
async fn channel_list_is_newest_activity_first() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let empty = ack_bare(&alice, "channel:list").await;
    assert_eq!(empty, json!({ "status": "ok", "channels": [] }));
    for channel in ["a", "b", "c"] {
        ack(&alice, "channel:join", json!(channel)).await;
    }
    // Activity needs distinct milliseconds to order: wait for the clock to move.
    let mut last_ts = 0;
    for channel in ["b", "c", "a"] {
        loop {
            let sent = ack(
                &alice,
                "message:send",
                json!({ "channelId": channel, "text": "x" }),
            )
            .await;
            let ts = sent["ts"].as_u64().unwrap_or_default();
            if ts > last_ts {
                last_ts = ts;
                break;
            }
        }
    }
    let list = ack_bare(&alice, "channel:list").await;
    let order: Vec<&str> = list["channels"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["channelId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(order, ["a", "c", "b"]);
    assert_eq!(list["channels"][0]["lastActivity"], last_ts);
}

#[tokio::test]
async fn invalid_payloads_are_refused_without_effect() {
    let server = spawn_chatgate(|c| c.max_message_length = 10).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    ack(&alice, "channel:join", json!("ok")).await;
    let bad = [
        ("channel:join", json!(42)),
        ("channel:join", json!("has space")),
        ("channel:join", json!("x".repeat(129))),
        ("channel:join", json!({ "channelId": ["nested"] })),
        ("channel:leave", json!(null)),
        ("message:send", json!("just text")),
        ("message:send", json!({ "channelId": "ok" })),
        ("message:send", json!({ "channelId": "ok", "text": 5 })),
        ("message:send", json!({ "channelId": "ok", "text": "" })),
        ("message:send", json!({ "channelId": "ok", "text": "   " })),
        (
            "message:send",
            json!({ "channelId": "ok", "text": "t", "clientMsgId": 7 }),
        ),
        ("typing", json!({ "channelId": "ok", "typing": "yes" })),
        ("presence:update", json!({})),
        ("users:online", json!({ "channelId": 3 })),
        ("no:such:event", json!({})),
    ];
    for (event, payload) in bad {
        let reply = ack(&alice, event, payload.clone()).await;
        assert_code(&reply, "INVALID_PAYLOAD");
        assert!(reply.get("retryAfterMs").is_none());
    }
    let too_long = ack(
        &alice,
        "message:send",
        json!({ "channelId": "ok", "text": "12345678901" }),
    )
    .await;
    assert_code(&too_long, "PAYLOAD_TOO_LARGE");
    let exactly = ack(
        &alice,
        "message:send",
        json!({ "channelId": "ok", "text": "1234567890" }),
    )
    .await;
    assert_ok(&exactly);
    // Nothing of the refused events took effect.
    let list = ack_bare(&alice, "channel:list").await;
    assert_eq!(list["channels"].as_array().map(Vec::len), Some(1));
    // Without an ack callback, the failure comes as an `error` event.
    alice
        .emit("message:send", vec![json!({ "channelId": "ok" })])
        .await;
    let error = next_one(&alice, "error").await;
    assert_code(&error, "INVALID_PAYLOAD");
    // Several arguments or none: the first one counts.
    let reply = alice.emit_with_ack("channel:join", vec![]).await;
    assert_code(&reply[0], "INVALID_PAYLOAD");
}

#[tokio::test]
async fn not_in_channel_cases() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    ack(&bob, "channel:join", json!("private")).await;
    for (event, payload) in [
        (
            "message:send",
            json!({ "channelId": "private", "text": "hi" }),
        ),
        ("channel:leave", json!("private")),
        ("users:online", json!({ "channelId": "private" })),
    ] {
        assert_code(&ack(&alice, event, payload).await, "NOT_IN_CHANNEL");
    }
    // Alice's attempts did not touch bob's membership.
    let list = ack_bare(&bob, "channel:list").await;
    assert_eq!(list["channels"][0]["members"], 1);
    bob.expect_no_event("message:new", QUIET).await;
}

#[tokio::test]
async fn the_61st_message_in_a_minute_is_rate_limited_by_default() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    ack(&alice, "channel:join", json!("busy")).await;
    ack(&bob, "channel:join", json!("busy")).await;
    for n in 0..60 {
        let reply = ack(
            &alice,
            "message:send",
            json!({ "channelId": "busy", "text": format!("{n}") }),
        )
        .await;
        assert_ok(&reply);
    }
    let refused = ack(
        &alice,
        "message:send",
        json!({ "channelId": "busy", "text": "61" }),
    )
    .await;
    assert_code(&refused, "RATE_LIMITED");
    let retry = refused["retryAfterMs"].as_u64().unwrap_or_default();
    assert!(
        retry > 0 && retry <= 1000,
        "one message per second refills: {refused}"
    );
    for n in 0..60 {
        assert_eq!(next_one(&bob, "message:new").await["text"], format!("{n}"));
    }
    // The refused message was not delivered.
    bob.expect_no_event("message:new", QUIET).await;
    // Other users and other events keep their own budget.
    assert_ok(
        &ack(
            &bob,
            "message:send",
            json!({ "channelId": "busy", "text": "bob" }),
        )
        .await,
    );
    assert_ok(&ack_bare(&alice, "channel:list").await);
}

#[tokio::test]
async fn configured_rate_limits_apply_per_event() {
    let server = spawn_chatgate(|c| {
        c.rate_limits = RateLimits::parse("channel:join=2/min,default=3/min")
            .unwrap_or_else(|e| panic!("{e:?}"));
    })
    .await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    assert_ok(&ack(&alice, "channel:join", json!("a")).await);
    assert_ok(&ack(&alice, "channel:join", json!("b")).await);
    let refused = ack(&alice, "channel:join", json!("c")).await;
    assert_code(&refused, "RATE_LIMITED");
    assert!(
        refused["retryAfterMs"]
            .as_u64()
            .is_some_and(|ms| ms > 20_000)
    );
    for _ in 0..3 {
        assert_ok(&ack_bare(&alice, "channel:list").await);
    }
    assert_code(&ack_bare(&alice, "channel:list").await, "RATE_LIMITED");
    // Without an ack callback the refusal arrives as an `error` event.
    alice.emit("channel:list", vec![]).await;
    assert_code(&next_one(&alice, "error").await, "RATE_LIMITED");
}

#[tokio::test]
async fn connection_and_channel_caps() {
    let server = spawn_chatgate(|c| {
        c.max_connections_per_user = 2;
        c.max_channels_per_user = 2;
    })
    .await;
    let bridge = NodeBridge::spawn().await;
    let first = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let _second = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let third = bridge
        .connect(&server.url(), as_user("alice"))
        .await
        .err()
        .unwrap_or_else(|| panic!("a third connection was accepted"));
    assert_eq!(third.message, "TOO_MANY_CONNECTIONS");
    assert_eq!(third.data["code"], "TOO_MANY_CONNECTIONS");
    // Another user is not affected; a freed slot can be reused.
    bridge.connect_ok(&server.url(), as_user("bob")).await;
    first.disconnect().await;
    let mut reconnected = None;
    for _ in 0..50 {
        // The server may not have processed the disconnect yet: retry briefly.
        if let Ok(client) = bridge.connect(&server.url(), as_user("alice")).await {
            reconnected = Some(client);
            break;
        }
    }
    let alice = reconnected.unwrap_or_else(|| panic!("slot never freed"));

    assert_ok(&ack(&alice, "channel:join", json!("one")).await);
    assert_ok(&ack(&alice, "channel:join", json!("two")).await);
    assert_code(
        &ack(&alice, "channel:join", json!("three")).await,
        "TOO_MANY_CHANNELS",
    );
    assert_ok(&ack(&alice, "channel:join", json!("one")).await);
    assert_ok(&ack(&alice, "channel:leave", json!("two")).await);
    assert_ok(&ack(&alice, "channel:join", json!("three")).await);
}

#[tokio::test]
async fn dev_mode_requires_a_user_id() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    for auth in [
        Value::Null,
        json!({}),
        json!({ "userId": "" }),
        json!({ "userId": 5 }),
        json!({ "userId": "a\u{0}b" }),
    ] {
        let refused = bridge
            .connect(
                &server.url(),
                ConnectOptions::websocket().with_auth(auth.clone()),
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted auth {auth}"));
        assert_eq!(refused.message, "UNAUTHORIZED", "auth {auth}");
    }
}

fn token(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap_or_else(|e| panic!("encode: {e}"))
}

fn unsigned_token(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

#[tokio::test]
async fn jwt_identity_and_channel_patterns() {
    const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-32b";
    let server = spawn_chatgate(|c| c.auth = AuthConfig::Jwt(JwtSettings::hs256(SECRET))).await;
    let bridge = NodeBridge::spawn().await;
    let exp = now_secs() + 600;
    let with_token = |t: String| ConnectOptions::websocket().with_auth(json!({ "token": t }));

    let good = token(
        SECRET,
        &json!({ "sub": "carol", "exp": exp, "name": "Carol", "channels": ["team-*"] }),
    );
    let carol = bridge.connect_ok(&server.url(), with_token(good)).await;
    let joined = ack(&carol, "channel:join", json!("team-red")).await;
    assert_eq!(joined["members"], json!(["carol"]), "sub is the user id");
    assert_code(
        &ack(&carol, "channel:join", json!("general")).await,
        "FORBIDDEN",
    );

    let refused = [
        (
            "expired",
            with_token(token(
                SECRET,
                &json!({ "sub": "x", "exp": now_secs() - 600 }),
            )),
        ),
        (
            "forged",
            with_token(token(
                b"another-secret-another-secret-xx",
                &json!({ "sub": "x", "exp": exp }),
            )),
        ),
        (
            "alg none",
            with_token(unsigned_token(&json!({ "sub": "x", "exp": exp }))),
        ),
        ("no exp", with_token(token(SECRET, &json!({ "sub": "x" })))),
        ("no sub", with_token(token(SECRET, &json!({ "exp": exp })))),
        ("garbage", with_token("not.a.jwt".to_owned())),
        (
            "userId claim",
            ConnectOptions::websocket().with_auth(json!({ "userId": "mallory" })),
        ),
        ("nothing", ConnectOptions::websocket()),
    ];
    for (case, options) in refused {
        let error = bridge
            .connect(&server.url(), options)
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(error.message, "UNAUTHORIZED", "{case}");
    }
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let server =
        spawn_chatgate(|c| c.frontend_origins = Some(vec!["http://app.example".to_owned()])).await;
    let addr: SocketAddr = server.addr();
    let path = "/socket.io/?EIO=4&transport=polling";
    let allowed = http_get(addr, path, &[("Origin", "http://app.example")]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let foreign = http_get(addr, path, &[("Origin", "http://evil.example")]).await;
    assert_eq!(foreign.header("access-control-allow-origin"), None);

    let bridge = NodeBridge::spawn().await;
    let mut hijack = as_user("alice");
    hijack.extra_headers = vec![("Origin".to_owned(), "http://evil.example".to_owned())];
    assert!(
        bridge.connect(&server.url(), hijack).await.is_err(),
        "foreign WebSocket origin accepted"
    );
    let mut legit = as_user("alice");
    legit.extra_headers = vec![("Origin".to_owned(), "http://app.example".to_owned())];
    bridge.connect_ok(&server.url(), legit).await;
}

#[tokio::test]
async fn health_endpoints_answer_plain_http() {
    let server = spawn_chatgate(|_| {}).await;
    let health = http_get(server.addr(), "/healthz", &[]).await;
    assert_eq!((health.status, health.text()), (200, "ok".to_owned()));
    let ready = http_get(server.addr(), "/readyz", &[]).await;
    assert_eq!(ready.status, 200);
}

#[tokio::test]
async fn shutdown_makes_clients_reconnect_not_give_up() {
    let mut server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    server.stop();
    // "transport close" (not "io server disconnect") is the reason the
    // client reconnects on.
    assert_eq!(alice.next_disconnect().await, "transport close");
}

#[tokio::test]
async fn reconnecting_client_keeps_its_channels() {
    let server = spawn_chatgate(|c| c.max_payload_bytes = 2000).await;
    let bridge = NodeBridge::spawn().await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    let alice = bridge
        .connect_ok(&server.url(), as_user("alice").with_reconnection(true))
        .await;
    ack(&alice, "channel:join", json!("stay")).await;
    ack(&bob, "channel:join", json!("stay")).await;
    // An over-sized packet closes only alice's connection...
    alice
        .emit(
            "message:send",
            vec![json!({ "channelId": "stay", "text": "x".repeat(5000) })],
        )
        .await;
    assert_eq!(alice.next_disconnect().await, "transport close");
    // ...bob is untouched, and alice comes back subscribed.
    alice.next_connect().await;
    ack(
        &bob,
        "message:send",
        json!({ "channelId": "stay", "text": "welcome back" }),
    )
    .await;
    assert_eq!(
        next_one(&alice, "message:new").await["text"],
        "welcome back"
    );
}

#[tokio::test]
async fn socket_io_client_v3_works_too() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let v3 = bridge
        .connect_ok(&server.url(), as_user("old-app").with_version(3))
        .await;
    let v4 = bridge.connect_ok(&server.url(), as_user("new-app")).await;
    ack(&v3, "channel:join", json!("mixed")).await;
    ack(&v4, "channel:join", json!("mixed")).await;
    ack(
        &v4,
        "message:send",
        json!({ "channelId": "mixed", "text": "hi v3" }),
    )
    .await;
    assert_eq!(next_one(&v3, "message:new").await["text"], "hi v3");
    let refused = bridge
        .connect(&server.url(), ConnectOptions::websocket().with_version(3))
        .await
        .err()
        .unwrap_or_else(|| panic!("v3 without auth accepted"));
    assert_eq!(refused.message, "UNAUTHORIZED");
}

/// The ids in a list of messages.
fn message_ids(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap_or_else(|| panic!("a list of messages: {messages}"))
        .iter()
        .map(|m| m["id"].as_u64().unwrap_or_else(|| panic!("an id: {m}")))
        .collect()
}

/// Sends `count` messages from `client` into `channel`; returns their ids.
async fn send_many(client: &support::SioClient, channel: &str, count: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..count {
        let sent = ack(
            client,
            "message:send",
            json!({ "channelId": channel, "text": format!("message {i}"), "clientMsgId": format!("c{i}") }),
        )
        .await;
        assert_ok(&sent);
        ids.push(sent["id"].as_u64().unwrap_or_else(|| panic!("id: {sent}")));
    }
    ids
}

/// v1.2 history: a user who comes back (a reload, a new connection) joins
/// with `since` and gets what it missed, exactly as `message:new` carried
/// it; `missedAll` tells whether that is everything. Also on a re-join.
#[tokio::test]
async fn join_with_since_returns_missed_messages() {
    let server = spawn_chatgate(|c| {
        c.history_size = 120;
        c.rate_limits = RateLimits::parse("message:send=1000/min,default=1000/min")
            .unwrap_or_else(|e| panic!("{e:?}"));
    })
    .await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    assert_ok(&ack(&alice, "channel:join", json!("general")).await);
    assert_ok(&ack(&bob, "channel:join", json!("general")).await);
    let first = send_many(&alice, "general", 1).await[0];
    let seen = next_one(&bob, "message:new").await;
    // Bob's tab goes away; alice goes on talking.
    bob.close().await;
    let later = send_many(&alice, "general", 3).await;

    // Bob reloads: a new connection, a re-join with the last id he saw.
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    let joined = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": first }),
    )
    .await;
    assert_ok(&joined);
    assert_eq!(joined["members"], json!(["alice", "bob"]));
    assert_eq!(message_ids(&joined["missed"]), later);
    assert_eq!(joined["missedAll"], true);
    assert_eq!(
        joined["missed"][0],
        json!({
            "id": later[0], "channelId": "general", "userId": "alice",
            "text": "message 0", "ts": joined["missed"][0]["ts"], "clientMsgId": "c0"
        }),
        "a missed message is the message:new payload"
    );
    assert!(joined["missed"][0]["ts"].as_u64().is_some());
    // `since` as a string of digits; up to date: nothing missed.
    let last = later[2];
    let joined = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": last.to_string() }),
    )
    .await;
    assert_eq!(
        (joined["missed"].clone(), joined["missedAll"].clone()),
        (json!([]), json!(true))
    );
    // The first message as delivered live equals the one kept in history.
    let all = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": first - 1 }),
    )
    .await;
    assert_eq!(all["missed"][0], seen);
    assert_eq!(
        all["missedAll"], true,
        "the channel's whole history is kept"
    );
    // `since` 0 reaches back before the TTL window: what was said then may
    // have expired, so chatgate cannot promise there is no gap.
    let from_zero = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": 0 }),
    )
    .await;
    assert_eq!(from_zero["missed"][0], seen);
    assert_eq!(from_zero["missedAll"], false);
    // Without `since`, no history fields.
    let plain = ack(&bob, "channel:join", json!({ "channelId": "general" })).await;
    assert!(
        plain.get("missed").is_none() && plain.get("missedAll").is_none(),
        "{plain}"
    );

    // More than 100 missed: the newest 100, and missedAll false.
    let burst = send_many(&alice, "general", 101).await;
    let joined = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": last }),
    )
    .await;
    assert_eq!(message_ids(&joined["missed"]), burst[1..].to_vec());
    assert_eq!(joined["missedAll"], false);
    // HISTORY_SIZE (120) trimmed the oldest: a `since` before them has a gap.
    let joined = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": burst[0] }),
    )
    .await;
    assert_eq!(message_ids(&joined["missed"]), burst[1..].to_vec());
    assert_eq!(joined["missedAll"], true);
    let joined = ack(
        &bob,
        "channel:join",
        json!({ "channelId": "general", "since": first }),
    )
    .await;
    assert_eq!(joined["missed"].as_array().map(Vec::len), Some(100));
    assert_eq!(joined["missedAll"], false, "trimmed and cut");
}

/// v1.2 `channel:history`: pages back through a channel for its members
/// (a user who arrives later reads what was said before), refuses
/// non-members and bad ids or limits.
#[tokio::test]
async fn channel_history_pages_back() {
    let server = spawn_chatgate(|_| {}).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    assert_ok(&ack(&alice, "channel:join", json!("general")).await);
    let ids = send_many(&alice, "general", 5).await;

    // Bob connects later, joins, and reads the history.
    let bob = bridge.connect_ok(&server.url(), as_user("bob")).await;
    let history = ack(&bob, "channel:history", json!({ "channelId": "general" })).await;
    assert_code(&history, "NOT_IN_CHANNEL");
    assert_ok(&ack(&bob, "channel:join", json!("general")).await);
    let page = ack(
        &bob,
        "channel:history",
        json!({ "channelId": "general", "limit": 2 }),
    )
    .await;
    assert_ok(&page);
    assert_eq!(page["channelId"], "general");
    assert_eq!(message_ids(&page["messages"]), ids[3..].to_vec());
    assert_eq!(page["hasMore"], true);
    assert_eq!(page["messages"][1]["text"], "message 4");
    assert_eq!(page["messages"][1]["userId"], "alice");
    assert_eq!(page["messages"][1]["clientMsgId"], "c4");
    let page = ack(
        &bob,
        "channel:history",
        json!({ "channelId": "general", "before": ids[3], "limit": 2 }),
    )
    .await;
    assert_eq!(message_ids(&page["messages"]), ids[1..3].to_vec());
    assert_eq!(page["hasMore"], true);
    let page = ack(
        &bob,
        "channel:history",
        json!({ "channelId": "general", "before": ids[1].to_string() }),
    )
    .await;
    assert_eq!(message_ids(&page["messages"]), ids[..1].to_vec());
    assert_eq!(page["hasMore"], false);
    // The default page holds them all (50 by default).
    let page = ack(&bob, "channel:history", json!({ "channelId": "general" })).await;
    assert_eq!(message_ids(&page["messages"]), ids);

    for bad in [
        json!({ "channelId": "general", "before": "abc" }),
        json!({ "channelId": "general", "before": -1 }),
        json!({ "channelId": "general", "before": 1.5 }),
        json!({ "channelId": "general", "before": 9_007_199_254_740_993_u64 }),
        json!({ "channelId": "general", "limit": 0 }),
        json!({ "channelId": "general", "limit": 101 }),
        json!({ "channelId": "bad id" }),
        json!("general"),
    ] {
        let reply = ack(&bob, "channel:history", bad.clone()).await;
        assert_code(&reply, "INVALID_PAYLOAD");
    }
    // A bad `since` refuses the join (nothing of it takes effect).
    let carol = bridge.connect_ok(&server.url(), as_user("carol")).await;
    for since in [json!("12x"), json!(-5), json!(true), json!({})] {
        let reply = ack(
            &carol,
            "channel:join",
            json!({ "channelId": "general", "since": since }),
        )
        .await;
        assert_code(&reply, "INVALID_PAYLOAD");
    }
    let page = ack(&carol, "channel:history", json!({ "channelId": "general" })).await;
    assert_code(&page, "NOT_IN_CHANNEL");
}

/// `HISTORY_SIZE=0`: nothing is kept; `missed` is empty and, since chatgate
/// cannot tell, `missedAll` is false; `channel:history` is empty.
#[tokio::test]
async fn history_off_keeps_nothing() {
    let server = spawn_chatgate(|c| c.history_size = 0).await;
    let bridge = NodeBridge::spawn().await;
    let alice = bridge.connect_ok(&server.url(), as_user("alice")).await;
    assert_ok(&ack(&alice, "channel:join", json!("general")).await);
    let ids = send_many(&alice, "general", 2).await;
    let joined = ack(
        &alice,
        "channel:join",
        json!({ "channelId": "general", "since": ids[0] }),
    )
    .await;
    assert_ok(&joined);
    assert_eq!(joined["missed"], json!([]));
    assert_eq!(joined["missedAll"], false);
    let page = ack(&alice, "channel:history", json!({ "channelId": "general" })).await;
    assert_ok(&page);
    assert_eq!(page["messages"], json!([]));
    assert_eq!(page["hasMore"], false);
}
