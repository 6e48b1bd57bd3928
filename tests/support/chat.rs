//! Helpers for tests of the chat gateway itself: a chatgate server
//! in-process on 127.0.0.1:0, dev-mode users, and the one-object acks and
//! events of the wire contract.

use chatgate::config::Config;
use chatgate::server::{RunningServer, Server};
use serde_json::{Value, json};

use super::{ConnectOptions, SioClient};

/// A chatgate server on a random loopback port: `Config::default()` (dev
/// mode, in-memory) changed by `tweak`.
pub(crate) async fn spawn_chatgate(tweak: impl FnOnce(&mut Config)) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let mut config = Config {
        bind: listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}")),
        ..Config::default()
    };
    tweak(&mut config);
    let (server, _task) = Server::spawn(config, listener).unwrap_or_else(|e| panic!("spawn: {e}"));
    server
}

/// WebSocket-only options of a dev-mode user (`auth: { userId }`).
pub(crate) fn as_user(user: &str) -> ConnectOptions {
    ConnectOptions::websocket().with_auth(json!({ "userId": user }))
}

/// Emits `event` with one payload and returns the ack's single object.
pub(crate) async fn ack(client: &SioClient, event: &str, payload: Value) -> Value {
    single(client.emit_with_ack(event, vec![payload]).await, event)
}

/// Emits `event` without a payload and returns the ack's single object.
pub(crate) async fn ack_bare(client: &SioClient, event: &str) -> Value {
    single(client.emit_with_ack(event, vec![]).await, event)
}

/// Waits for the next `event` and returns its single object.
pub(crate) async fn next_one(client: &SioClient, event: &str) -> Value {
    single(client.next_event(event).await, event)
}

/// The contract sends every ack and server event with exactly one object;
/// `message:new` adds its connection state recovery offset (a string) as
/// its last argument, and no other event ends with a string.
fn single(mut args: Vec<Value>, event: &str) -> Value {
    if event == "message:new" {
        assert_eq!(
            args.len(),
            2,
            "{event} carries an object and an offset: {args:?}"
        );
        assert!(
            args[1]
                .as_str()
                .is_some_and(|o| o.len() == 16 && o.bytes().all(|b| b.is_ascii_digit())),
            "{event}'s offset is 16 digits: {args:?}"
        );
        assert_eq!(
            args[1].as_str().and_then(|o| o.parse::<u64>().ok()),
            args[0]["id"].as_u64(),
            "{event}'s offset names its id: {args:?}"
        );
        args.truncate(1);
    }
    assert_eq!(
        args.len(),
        1,
        "{event} carries exactly one object: {args:?}"
    );
    args.remove(0)
}

/// Asserts a success ack.
pub(crate) fn assert_ok(reply: &Value) {
    assert_eq!(reply["status"], "ok", "expected success, got {reply}");
}

/// Asserts a failure object with `code` and a human message.
pub(crate) fn assert_code(reply: &Value, code: &str) {
    assert_eq!(
        reply["status"], "error",
        "expected failure {code}, got {reply}"
    );
    assert_eq!(reply["code"], code, "{reply}");
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a failure has a human message: {reply}"
    );
}
