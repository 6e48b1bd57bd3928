//! Shared harness for chatgate's integration tests (`mod support;` in each test file).
//!
//! # Layout
//!
//! - [`bridge`]: [`NodeBridge`] and [`SioClient`]: the REAL npm `socket.io-client`
//!   (4.x, and 3.x on request) driven from Rust through `tests/js/bridge.mjs`.
//! - [`raw`]: [`RawWs`] (raw Engine.IO frames over WebSocket) and a minimal
//!   HTTP/1.1 client ([`http_get`], [`http_post`], [`http_request`]) for polling.
//! - [`server`]: [`TestServer`], an axum router served in-process on `127.0.0.1:0`.
//! - [`redis`]: [`RedisServer`], a throwaway `redis-server` on a free port.
//!
//! # Waiting
//!
//! Nothing here sleeps for a fixed time: every wait is for a condition, bounded by
//! a deadline ([`default_timeout`], 5 s unless `CHATGATE_TEST_TIMEOUT_MS` says
//! otherwise). The one inherent time window is [`SioClient::expect_no_event`],
//! which checks that something is *not* delivered.
//!
//! Each test binary uses only part of this module, hence the `dead_code` and `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

pub(crate) mod bridge;
pub(crate) mod chat;
pub(crate) mod raw;
pub(crate) mod redis;
pub(crate) mod server;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

pub(crate) use bridge::{ConnectErrorInfo, ConnectOptions, NodeBridge, ReceivedEvent, SioClient};
pub(crate) use raw::{HttpResponse, RawWs, http_get, http_post, http_request};
pub(crate) use redis::RedisServer;
pub(crate) use server::TestServer;

/// How long a harness wait lasts before the test fails: 5 s, or
/// `CHATGATE_TEST_TIMEOUT_MS` milliseconds when that variable is set (slow machines).
pub(crate) fn default_timeout() -> Duration {
    std::env::var("CHATGATE_TEST_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// A binary argument for [`SioClient::emit`]: the bridge turns it into a Node `Buffer`.
pub(crate) fn binary(bytes: &[u8]) -> Value {
    json!({ "$binary": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// The bytes of a binary value received from the bridge (`{"$binary": ...}`), if it is one.
pub(crate) fn as_binary(value: &Value) -> Option<Vec<u8>> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let encoded = object.get("$binary")?.as_str()?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

/// Waits until `condition` holds, checking every few milliseconds, and panics
/// with `what` once `timeout` has passed. For state that has no event to wait on
/// (a counter on the server, a socket count).
pub(crate) async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
