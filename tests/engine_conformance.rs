//! Conformance of `chatgate-engine` with the REAL npm `socket.io-client` (4.x,
//! and 3.x where noted), driven through the Node bridge (`tests/js/bridge.mjs`).
//!
//! Every test starts its own engine on `127.0.0.1:0` with the test namespace
//! handler below ([`TestHandler`]) on `/` and `/custom`, and its own bridge.
//! These tests are the engine's specification as seen from a browser: when one
//! fails, the engine is wrong, not the test.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chatgate_sio::{
    BoxFuture, ConnectError, DisconnectReason, EngineConfig, Event, Io, NamespaceHandler, Socket,
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{
    ConnectOptions, NodeBridge, SioClient, TestServer, as_binary, binary, default_timeout,
    wait_until,
};

/// How long the server waits for the client's ack in the `ask-client` event.
const SERVER_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// A socket the server saw go away.
#[derive(Clone, Debug)]
struct ServerDisconnect {
    /// Its Socket.IO id.
    sid: String,
    /// Its namespace.
    namespace: String,
    /// The reason given to `on_disconnect`.
    reason: DisconnectReason,
}

/// The namespace handler of the conformance server (the same on `/` and `/custom`):
///
/// - CONNECT: refused with `UNAUTHORIZED` (data `{"reason": "bad token"}`) when
///   `auth.token == "bad"`; else joins a room named after its sid and emits
///   `welcome` `{namespace, sid, auth}` (before the CONNECT reply is even sent).
/// - `echo`: emits `echo` back with the first argument.
/// - `ack`: acks with exactly the received arguments and binary attachments.
/// - `binary-info`: acks `{args, sizes}`: the arguments as the server sees them
///   (placeholders) and the sizes of the attachments.
/// - `disconnect-me`: `socket.disconnect()`.
/// - `disconnect-me-close`: disconnects the socket and closes its transport.
/// - `ask-client`: emits `question` (first argument) with an ack request, then
///   emits `client-answered` with the client's ack arguments (or `{error}`).
/// - every disconnect is recorded for the test ([`Fixture::server_disconnect`]).
struct TestHandler {
    /// Disconnects seen by `on_disconnect`, oldest first.
    disconnects: Arc<Mutex<Vec<ServerDisconnect>>>,
}

impl NamespaceHandler for TestHandler {
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>> {
        Box::pin(async move {
            if auth.get("token").and_then(Value::as_str) == Some("bad") {
                return Err(ConnectError {
                    message: "UNAUTHORIZED".to_owned(),
                    data: Some(json!({ "reason": "bad token" })),
                });
            }
            socket.join(socket.id().to_owned());
            let welcome = json!({
                "namespace": socket.namespace().path(),
                "sid": socket.id(),
                "auth": auth,
            });
            socket
                .emit("welcome", &welcome)
                .expect("emit welcome during on_connect");
            Ok(())
        })
    }

    fn on_event<'a>(&'a self, socket: &'a Socket, event: Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let first = event.args.first().cloned().unwrap_or(Value::Null);
            match event.name.as_str() {
                "echo" => {
                    let _ = socket.emit("echo", &first);
                }
                "ack" => {
                    if let Some(ack) = event.ack {
                        let _ = ack.send_raw(event.args, event.attachments);
                    }
                }
                "binary-info" => {
                    if let Some(ack) = event.ack {
                        let sizes: Vec<usize> = event.attachments.iter().map(|a| a.len()).collect();
                        let _ = ack.send(&json!({ "args": event.args, "sizes": sizes }));
                    }
                }
                "disconnect-me" => socket.disconnect(),
                "disconnect-me-close" => {
                    socket
                        .namespace()
                        .to(socket.id().to_owned())
                        .disconnect_sockets(true);
                }
                "ask-client" => {
                    // Events of one connection are handled one at a time: waiting
                    // for the client's ack here would block reading that ack.
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        let answer = match socket
                            .emit_with_ack("question", &first, SERVER_ACK_TIMEOUT)
                            .await
                        {
                            Ok(args) => Value::Array(args),
                            Err(e) => json!({ "error": e.to_string() }),
                        };
                        let _ = socket.emit("client-answered", &answer);
                    });
                }
                _ => {}
            }
        })
    }

    fn on_disconnect<'a>(
        &'a self,
        socket: &'a Socket,
        reason: DisconnectReason,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.disconnects.lock().push(ServerDisconnect {
                sid: socket.id().to_owned(),
                namespace: socket.namespace().path().to_owned(),
                reason,
            });
        })
    }
}

/// One test's world: an engine with the test handler, served on `127.0.0.1:0`,
/// and a Node bridge to drive clients.
struct Fixture {
    /// The engine.
    io: Io,
    /// Serves `io.router()`.
    server: TestServer,
    /// The socket.io-client processes.
    bridge: NodeBridge,
    /// Disconnects recorded by the handler.
    disconnects: Arc<Mutex<Vec<ServerDisconnect>>>,
}

/// An engine with the test handler on `/` and `/custom`; the handler records into `disconnects`.
fn test_engine(config: EngineConfig, disconnects: &Arc<Mutex<Vec<ServerDisconnect>>>) -> Io {
    let io = Io::new(config);
    let handler = Arc::new(TestHandler {
        disconnects: Arc::clone(disconnects),
    });
    io.add_namespace("/", handler.clone());
    io.add_namespace("/custom", handler);
    io
}

impl Fixture {
    /// Starts the engine with `config` and a bridge.
    async fn start(config: EngineConfig) -> Fixture {
        let disconnects = Arc::new(Mutex::new(Vec::new()));
        let io = test_engine(config, &disconnects);
        let server = TestServer::start(io.router()).await;
        let bridge = NodeBridge::spawn().await;
        Fixture {
            io,
            server,
            bridge,
            disconnects,
        }
    }

    /// Starts with the default configuration.
    async fn default() -> Fixture {
        Self::start(EngineConfig::default()).await
    }

    /// Connects a client to namespace `/`, panicking when refused.
    async fn connect(&self, options: ConnectOptions) -> SioClient {
        self.bridge.connect_ok(&self.server.url(), options).await
    }

    /// Waits until the handler saw socket `sid` disconnect; returns the reason.
    async fn server_disconnect(&self, sid: &str) -> DisconnectReason {
        let find = || {
            self.disconnects
                .lock()
                .iter()
                .find(|d| d.sid == sid)
                .cloned()
        };
        wait_until(
            &format!("server-side disconnect of {sid}"),
            default_timeout(),
            || find().is_some(),
        )
        .await;
        find().expect("found by wait_until").reason
    }

    /// Asserts the server has not seen socket `sid` disconnect (so far).
    fn assert_server_connected(&self, sid: &str) {
        let seen: Vec<ServerDisconnect> = self.disconnects.lock().clone();
        assert!(
            seen.iter().all(|d| d.sid != sid),
            "server saw {sid} disconnect: {seen:?}"
        );
    }
}

/// A config whose heartbeat fails fast: ping every 300 ms, pong due within 200 ms.
fn fast_heartbeat() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    }
}

/// socket.io-client options that reconnect quickly (and deterministically).
fn quick_reconnection(transports: &[&'static str]) -> ConnectOptions {
    ConnectOptions {
        reconnection: true,
        extra: json!({ "reconnectionDelay": 50, "reconnectionDelayMax": 100, "randomizationFactor": 0 }),
        ..ConnectOptions::transports(transports)
    }
}

/// The `welcome` event, echo and ack work on a connected client.
async fn assert_basic_exchange(client: &SioClient, namespace: &str) {
    let welcome = client.next_event("welcome").await;
    assert_eq!(welcome[0]["namespace"], namespace, "welcome: {welcome:?}");
    assert_eq!(welcome[0]["sid"], client.id(), "welcome: {welcome:?}");

    client
        .emit("echo", vec![json!({ "text": "héllo ✓", "n": 1 })])
        .await;
    assert_eq!(
        client.next_event("echo").await,
        vec![json!({ "text": "héllo ✓", "n": 1 })]
    );

    let reply = client
        .emit_with_ack(
            "ack",
            vec![json!(1), json!("two"), json!({ "three": [3] }), Value::Null],
        )
        .await;
    assert_eq!(
        reply,
        vec![json!(1), json!("two"), json!({ "three": [3] }), Value::Null]
    );
}

#[tokio::test]
async fn websocket_only_client_connects_and_exchanges_events() {
    let t = Fixture::default().await;
    let client = t.connect(ConnectOptions::websocket()).await;
    assert_eq!(client.initial_transport(), "websocket");
    assert_basic_exchange(&client, "/").await;
    assert_eq!(client.transport().await, "websocket");
    assert_eq!(t.io.of("/").expect("namespace /").socket_count(), 1);
}

#[tokio::test]
async fn polling_only_client_connects_and_exchanges_events() {
    let t = Fixture::default().await;
    let client = t.connect(ConnectOptions::polling()).await;
    assert_eq!(client.initial_transport(), "polling");
    assert_basic_exchange(&client, "/").await;

    // Many packets at once: they travel batched in polling payloads, in order.
    for i in 0..50 {
        client.emit("echo", vec![json!(i)]).await;
    }
    for i in 0..50 {
        assert_eq!(client.next_event("echo").await, vec![json!(i)]);
    }
    assert_eq!(client.transport().await, "polling");
}

#[tokio::test]
async fn polling_client_upgrades_to_websocket() {
    let t = Fixture::default().await;
    let client = t
        .connect(ConnectOptions::transports(&["polling", "websocket"]))
        .await;
    assert_eq!(client.next_upgrade().await, "websocket");
    assert_eq!(client.transport().await, "websocket");
    assert_basic_exchange(&client, "/").await;
    assert_eq!(
        t.io.engine_connection_count(),
        1,
        "the upgrade reuses the engine connection"
    );
}

#[tokio::test]
async fn binary_payloads_travel_both_ways() {
    const FILE: &[u8] = b"\x00\x01\x02 binary \xff";
    let t = Fixture::default().await;
    for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
        let client = t.connect(options.clone()).await;
        let all_bytes: Vec<u8> = (0..=255).collect();
        let args = vec![
            json!({
                "file": binary(FILE),
                "nested": { "list": [binary(&all_bytes), "text", binary(b"")] },
            }),
            binary(b"second"),
            json!("plain"),
        ];

        // client -> server: the server sees placeholders and the attachments.
        let info = client.emit_with_ack("binary-info", args.clone()).await;
        assert_eq!(
            info[0]["sizes"],
            json!([FILE.len(), 256, 0, 6]),
            "{options:?}: attachment sizes seen by the server: {info:?}"
        );
        assert_eq!(
            info[0]["args"][0]["file"],
            json!({ "_placeholder": true, "num": 0 }),
            "{info:?}"
        );
        assert_eq!(info[0]["args"][2], json!("plain"), "{info:?}");

        // server -> client (BINARY_ACK): the same Buffers come back, nested as sent.
        let reply = client.emit_with_ack("ack", args.clone()).await;
        assert_eq!(reply, args, "{options:?}: binary round trip");
        assert_eq!(as_binary(&reply[0]["nested"]["list"][0]), Some(all_bytes));
    }
}

#[tokio::test]
async fn acks_work_both_ways() {
    let t = Fixture::default().await;
    let client = t.connect(ConnectOptions::websocket()).await;

    // client -> server, with zero and several arguments.
    assert_eq!(
        client.emit_with_ack("ack", vec![]).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        client
            .emit_with_ack("ack", vec![json!({ "a": [1, 2] }), json!(false)])
            .await,
        vec![json!({ "a": [1, 2] }), json!(false)]
    );

    // server -> client: the server's emit_with_ack gets the client's ack arguments.
    client
        .set_ack_reply("question", vec![json!({ "answer": 42 }), json!("extra")])
        .await;
    client.emit("ask-client", vec![json!("what?")]).await;
    let question = client.next_event_full("question", default_timeout()).await;
    assert!(question.ack, "the server asked for an ack");
    assert_eq!(question.args, vec![json!("what?")]);
    assert_eq!(
        client.next_event("client-answered").await,
        vec![json!([{ "answer": 42 }, "extra"])]
    );
}

#[tokio::test]
async fn custom_namespace_connects_and_unknown_namespace_is_refused() {
    let t = Fixture::default().await;
    let custom = t
        .bridge
        .connect_ok(&t.server.url_of("/custom"), ConnectOptions::websocket())
        .await;
    assert_basic_exchange(&custom, "/custom").await;
    assert_eq!(
        t.io.of("/custom")
            .expect("namespace /custom")
            .socket_count(),
        1
    );
    assert_eq!(t.io.of("/").expect("namespace /").socket_count(), 0);

    for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
        let refused = t
            .bridge
            .connect(&t.server.url_of("/nope"), options)
            .await
            .expect_err("unknown namespace must be refused");
        assert_eq!(refused.message, "Invalid namespace");
    }
}

#[tokio::test]
async fn namespaces_multiplex_on_one_engine_connection() {
    let t = Fixture::default().await;
    // forceNew: false lets socket.io-client share one Manager (one Engine.IO connection).
    let shared = ConnectOptions {
        extra: json!({ "forceNew": false }),
        ..ConnectOptions::websocket()
    };
    let main = t.bridge.connect_ok(&t.server.url(), shared.clone()).await;
    let custom = t
        .bridge
        .connect_ok(&t.server.url_of("/custom"), shared)
        .await;
    assert_basic_exchange(&main, "/").await;
    assert_basic_exchange(&custom, "/custom").await;
    assert_eq!(t.io.engine_connection_count(), 1);

    // Leaving one namespace keeps the other (and the connection) alive.
    custom.disconnect().await;
    assert_eq!(
        t.server_disconnect(custom.id()).await,
        DisconnectReason::ClientNamespaceDisconnect
    );
    let namespace = t
        .disconnects
        .lock()
        .iter()
        .find(|d| d.sid == custom.id())
        .map(|d| d.namespace.clone());
    assert_eq!(namespace.as_deref(), Some("/custom"));
    main.emit("echo", vec![json!("still here")]).await;
    assert_eq!(main.next_event("echo").await, vec![json!("still here")]);
    assert_eq!(t.io.engine_connection_count(), 1);
}

#[tokio::test]
async fn refused_auth_reaches_connect_error() {
    let t = Fixture::default().await;
    for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
        let refused = t
            .bridge
            .connect(
                &t.server.url(),
                options.clone().with_auth(json!({ "token": "bad" })),
            )
            .await
            .expect_err("auth.token == bad must be refused");
        assert_eq!(refused.message, "UNAUTHORIZED");
        assert_eq!(refused.data, json!({ "reason": "bad token" }));
    }
    let refused = t
        .bridge
        .connect(
            &t.server.url_of("/custom"),
            ConnectOptions::websocket().with_auth(json!({ "token": "bad" })),
        )
        .await
        .expect_err("refused on /custom too");
    assert_eq!(refused.message, "UNAUTHORIZED");
    assert_eq!(t.io.of("/").expect("namespace /").socket_count(), 0);
    assert!(
        t.disconnects.lock().is_empty(),
        "refused sockets never get on_disconnect"
    );

    // The CONNECT payload reaches on_connect as sent.
    let client = t
        .connect(ConnectOptions::websocket().with_auth(json!({ "token": "good", "n": [1] })))
        .await;
    let welcome = client.next_event("welcome").await;
    assert_eq!(welcome[0]["auth"], json!({ "token": "good", "n": [1] }));
}

#[tokio::test]
async fn silent_client_is_closed_by_ping_timeout() {
    let t = Fixture::start(fast_heartbeat()).await;
    for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
        let silent = t.connect(options.clone()).await;
        let healthy = t.connect(options.clone()).await;
        silent.silence().await;

        let reason = silent.next_disconnect().await;
        assert!(
            reason == "transport close" || reason == "ping timeout",
            "{options:?}: silent client saw {reason:?}"
        );
        assert_eq!(
            t.server_disconnect(silent.id()).await,
            DisconnectReason::PingTimeout
        );

        // The healthy client keeps answering and survives several more heartbeats.
        healthy.forget_pings();
        for _ in 0..3 {
            healthy.next_ping().await;
        }
        t.assert_server_connected(healthy.id());
        healthy.emit("echo", vec![json!("alive")]).await;
        assert_eq!(healthy.next_event("echo").await, vec![json!("alive")]);
        healthy.disconnect().await;
    }
}

#[tokio::test]
async fn oversized_message_closes_only_its_connection() {
    let t = Fixture::start(EngineConfig {
        max_payload: 1_000,
        ..EngineConfig::default()
    })
    .await;
    for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
        let other = t.connect(options.clone()).await;
        let big = t.connect(options.clone()).await;
        big.emit("echo", vec![json!("x".repeat(5_000))]).await;

        let reason = big.next_disconnect().await;
        assert!(
            reason == "transport close" || reason == "transport error",
            "{options:?}: oversized sender saw {reason:?}"
        );
        let server_reason = t.server_disconnect(big.id()).await;
        assert!(
            matches!(
                server_reason,
                DisconnectReason::TransportError | DisconnectReason::TransportClose
            ),
            "{options:?}: server-side reason {server_reason:?}"
        );

        other.emit("echo", vec![json!("y".repeat(500))]).await;
        assert_eq!(other.next_event("echo").await, vec![json!("y".repeat(500))]);
        t.assert_server_connected(other.id());
        other.disconnect().await;
    }
}

#[tokio::test]
async fn client_reconnects_after_server_closes_transport_on_shutdown() {
    for transports in [&["websocket"][..], &["polling"][..]] {
        let t = Fixture::default().await;
        let client = t.connect(quick_reconnection(transports)).await;
        client.next_event("welcome").await;

        // The engine shuts down (transports closed without a Socket.IO
        // DISCONNECT), then a second engine takes over the address, like a
        // restarted node. The swap comes after the shutdown so that the polling
        // client's pending requests still reach the first engine; reconnection
        // attempts in between are refused and retried.
        t.io.shutdown(default_timeout()).await;
        assert_eq!(
            t.io.engine_connection_count(),
            0,
            "shutdown waits for every connection"
        );
        let disconnects = Arc::new(Mutex::new(Vec::new()));
        let successor = test_engine(EngineConfig::default(), &disconnects);
        t.server.replace_router(successor.router());

        assert_eq!(
            client.next_disconnect().await,
            "transport close",
            "{transports:?}"
        );
        assert_eq!(
            t.server_disconnect(client.id()).await,
            DisconnectReason::ServerShutdown
        );

        let new_sid = client
            .next_connect()
            .await
            .expect("reconnected socket has an id");
        assert_ne!(new_sid, client.id(), "a reconnection is a new session");
        let welcome = client.next_event("welcome").await;
        assert_eq!(welcome[0]["sid"], new_sid);
        assert_eq!(successor.of("/").expect("namespace /").socket_count(), 1);

        client.emit("echo", vec![json!("after reconnect")]).await;
        assert_eq!(
            client.next_event("echo").await,
            vec![json!("after reconnect")]
        );
    }
}

#[tokio::test]
async fn server_namespace_disconnect_reaches_client() {
    let t = Fixture::default().await;
    for event in ["disconnect-me", "disconnect-me-close"] {
        for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
            let client = t.connect(options.clone()).await;
            client.emit(event, vec![]).await;
            assert_eq!(
                client.next_disconnect().await,
                "io server disconnect",
                "{event} over {options:?}"
            );
            assert_eq!(
                t.server_disconnect(client.id()).await,
                DisconnectReason::ServerNamespaceDisconnect,
                "{event} over {options:?}"
            );
        }
    }
    wait_until("every socket gone", default_timeout(), || {
        t.io.of("/").is_some_and(|ns| ns.socket_count() == 0)
    })
    .await;
}

#[tokio::test]
async fn client_disconnect_reaches_server() {
    let t = Fixture::default().await;
    for options in [ConnectOptions::websocket(), ConnectOptions::polling()] {
        let client = t.connect(options.clone()).await;
        client.disconnect().await;
        assert_eq!(client.next_disconnect().await, "io client disconnect");
        assert_eq!(
            t.server_disconnect(client.id()).await,
            DisconnectReason::ClientNamespaceDisconnect,
            "{options:?}"
        );
        let transport = t.connect(options.clone()).await;
        transport.close().await;
        let reason = t.server_disconnect(transport.id()).await;
        assert_eq!(reason, DisconnectReason::TransportClose, "{options:?}");
    }
}

#[tokio::test]
async fn socket_io_client_v3_is_supported() {
    let t = Fixture::default().await;
    for options in [
        ConnectOptions::websocket(),
        ConnectOptions::polling(),
        ConnectOptions::transports(&["polling", "websocket"]),
    ] {
        let options = options.with_version(3);
        let client = t
            .connect(options.clone().with_auth(json!({ "token": "v3" })))
            .await;
        let welcome = client.next_event("welcome").await;
        assert_eq!(welcome[0]["auth"], json!({ "token": "v3" }), "{options:?}");
        client.emit("echo", vec![json!([1, "two"])]).await;
        assert_eq!(client.next_event("echo").await, vec![json!([1, "two"])]);
        let args = vec![json!({ "bytes": binary(b"v3 bytes") }), json!(7)];
        assert_eq!(
            client.emit_with_ack("ack", args.clone()).await,
            args,
            "{options:?}"
        );

        let refused = t
            .bridge
            .connect(
                &t.server.url(),
                options.clone().with_auth(json!({ "token": "bad" })),
            )
            .await
            .expect_err("refused");
        assert_eq!(refused.message, "UNAUTHORIZED", "{options:?}");
        assert_eq!(
            refused.data,
            json!({ "reason": "bad token" }),
            "{options:?}"
        );
        let refused = t
            .bridge
            .connect(&t.server.url_of("/nope"), options.clone())
            .await
            .expect_err("refused");
        assert_eq!(refused.message, "Invalid namespace", "{options:?}");
    }
}
