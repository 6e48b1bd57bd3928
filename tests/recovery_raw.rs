//! Connection state recovery at the packet level: what socket.io-client
//! cannot easily be made to do. A client whose old connection still looks
//! open to the server (half-open: its network vanished without a close)
//! reconnects and recovers; the old connection is closed. An expired token
//! is refused on recovery without ending the session, and a valid one
//! recovers it afterwards.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use chatgate::config::{AuthConfig, JwtSettings};
use serde_json::{Value, json};

use support::RawWs;
use support::chat::spawn_chatgate;

/// Sends `40{auth}` and returns the CONNECT reply's JSON (`sid`, `pid`).
async fn connect(ws: &mut RawWs, auth: &Value) -> Value {
    ws.send_text(&format!("40{auth}")).await;
    loop {
        let text = ws.recv_text().await;
        if let Some(reply) = text.strip_prefix("40") {
            return serde_json::from_str(reply).expect("CONNECT reply JSON");
        }
        if let Some(refused) = text.strip_prefix("44") {
            return json!({ "refused": serde_json::from_str::<Value>(refused).expect("JSON") });
        }
        assert!(text.starts_with('2') || text.starts_with("42"), "{text}");
    }
}

/// Emits `event` with `payload` and ack id `id`; returns the ack's object.
async fn ack(ws: &mut RawWs, id: u64, event: &str, payload: Value) -> Value {
    ws.send_text(&format!("42{id}{}", json!([event, payload])))
        .await;
    let prefix = format!("43{id}");
    loop {
        let text = ws.recv_text().await;
        if let Some(args) = text.strip_prefix(&prefix) {
            let args: Vec<Value> = serde_json::from_str(args).expect("ack JSON");
            return args.into_iter().next().unwrap_or(Value::Null);
        }
    }
}

/// The next `message:new` as `(payload, offset)`.
async fn message_new(ws: &mut RawWs) -> (Value, String) {
    loop {
        let text = ws.recv_text().await;
        if let Some(args) = text.strip_prefix("42") {
            let args: Vec<Value> = serde_json::from_str(args).expect("event JSON");
            if args[0] == "message:new" {
                let offset = args[2].as_str().expect("offset").to_owned();
                return (args[1].clone(), offset);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_is_taken_over_by_its_recovered_session() {
    let server = spawn_chatgate(|_| {}).await;
    let addr = server.addr();
    let (mut alice, _) = RawWs::open(addr).await;
    connect(&mut alice, &json!({ "userId": "alice" })).await;
    let (mut old, _) = RawWs::open(addr).await;
    let session = connect(&mut old, &json!({ "userId": "bob" })).await;
    let (sid, pid) = (session["sid"].clone(), session["pid"].clone());
    assert!(pid.is_string(), "a pid in the CONNECT reply: {session}");
    assert_eq!(
        ack(&mut alice, 1, "channel:join", json!("room")).await["status"],
        "ok"
    );
    assert_eq!(
        ack(&mut old, 1, "channel:join", json!("room")).await["status"],
        "ok"
    );
    let reply = ack(
        &mut alice,
        2,
        "message:send",
        json!({ "channelId": "room", "text": "seen" }),
    )
    .await;
    assert_eq!(reply["status"], "ok");
    let (_, offset) = message_new(&mut old).await;

    // The old connection stays open, but its client is gone: what is sent
    // now goes to a connection nobody reads.
    let reply = ack(
        &mut alice,
        3,
        "message:send",
        json!({ "channelId": "room", "text": "lost in the air" }),
    )
    .await;
    assert_eq!(reply["status"], "ok");

    let (mut new, _) = RawWs::open(addr).await;
    new.send_text(&format!(
        "40{}",
        json!({ "userId": "bob", "pid": pid, "offset": offset })
    ))
    .await;
    // The missed message comes before the CONNECT reply.
    let first = new.recv_text().await;
    assert!(first.starts_with("42[\"message:new\""), "{first}");
    assert!(first.contains("lost in the air"), "{first}");
    let reply = new.recv_text().await;
    let reply: Value =
        serde_json::from_str(reply.strip_prefix("40").expect("CONNECT reply")).expect("JSON");
    assert_eq!(reply["sid"], sid, "the same socket id");
    assert_eq!(reply["pid"], pid, "the same session");
    // The half-open connection is closed.
    old.expect_closed().await;
    // And the new one is the channel's now.
    let reply = ack(
        &mut alice,
        4,
        "message:send",
        json!({ "channelId": "room", "text": "after" }),
    )
    .await;
    assert_eq!(reply["status"], "ok");
    let (message, _) = message_new(&mut new).await;
    assert_eq!(message["text"], "after");
}

fn token(secret: &[u8], sub: &str, exp: u64) -> String {
    let claims = json!({ "sub": sub, "exp": exp });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_on_recovery_and_a_fresh_one_recovers() {
    let secret = b"a-recovery-test-secret-long-enough-32b";
    let server =
        spawn_chatgate(|config| config.auth = AuthConfig::Jwt(JwtSettings::hs256(secret))).await;
    let addr = server.addr();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (mut first, _) = RawWs::open(addr).await;
    let session = connect(
        &mut first,
        &json!({ "token": token(secret, "bob", now + 600) }),
    )
    .await;
    let pid = session["pid"].clone();
    first.close().await;

    let (mut expired, _) = RawWs::open(addr).await;
    let refused = connect(
        &mut expired,
        &json!({ "token": token(secret, "bob", now - 600), "pid": pid }),
    )
    .await;
    assert_eq!(refused["refused"]["message"], "UNAUTHORIZED", "{refused}");

    let (mut fresh, _) = RawWs::open(addr).await;
    let reply = connect(
        &mut fresh,
        &json!({ "token": token(secret, "bob", now + 600), "pid": pid }),
    )
    .await;
    assert_eq!(reply["sid"], session["sid"], "{reply}");
    assert_eq!(reply["pid"], pid, "recovered after the refused attempt");
}
