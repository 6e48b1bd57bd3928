//! Hostile clients against a running chatgate (in-process on 127.0.0.1:0,
//! in-memory backend): malformed frames, wrong types for every field of
//! every event, huge and deeply nested payloads, invalid UTF-8 and odd
//! unicode, binary where text is expected, unknown events, events before
//! CONNECT, floods, never-authenticating and slow-reading connections,
//! connection storms, and attempts to act as or spy on another user.
//!
//! The invariant behind every test: the hostile connection gets an error
//! answer or is closed, and nobody else notices. Most clients here are raw
//! WebSockets speaking Engine.IO/Socket.IO frames by hand ([`Raw`]), so a
//! test can send what no well-behaved client would. Waits are bounded by
//! deadlines; nothing sleeps for a fixed time.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatgate::config::{AuthConfig, Config, JwtSettings, Rate, RateLimits};
use chatgate::server::RunningServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::chat::spawn_chatgate;
use support::{ConnectOptions, NodeBridge, http_get, http_post, http_request};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one expected frame, ack or close may take.
const WAIT: Duration = Duration::from_secs(10);

/// Rate limits that never get in the way of a test that is not about them.
const UNLIMITED: &str = "message:send=1000000/min,channel:join=1000000/min,default=1000000/min";

/// A chatgate server on a random loopback port, configured by `tweak`.
async fn start(tweak: impl FnOnce(&mut Config)) -> RunningServer {
    spawn_chatgate(|config| {
        config.rate_limits = RateLimits::parse(UNLIMITED).unwrap_or_else(|e| panic!("{e:?}"));
        tweak(config);
    })
    .await
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
}

/// A raw WebSocket client writing Engine.IO/Socket.IO frames by hand.
/// Answers server pings; keeps events that arrive while it waits for
/// something else.
struct Raw {
    ws: Ws,
    next_ack: u64,
    /// `42[...]` packets received and not yet consumed, as JSON arrays.
    events: Vec<Value>,
}

impl Raw {
    /// Opens an Engine.IO session (reads the OPEN packet).
    async fn open(addr: SocketAddr) -> Raw {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url(addr)))
            .await
            .unwrap_or_else(|_| panic!("handshake to {addr} timed out"))
            .unwrap_or_else(|e| panic!("handshake to {addr}: {e}"));
        Raw::after_handshake(ws).await
    }

    async fn after_handshake(ws: Ws) -> Raw {
        let mut raw = Raw {
            ws,
            next_ack: 0,
            events: Vec::new(),
        };
        let open = raw.next_text().await;
        assert!(open.starts_with("0{"), "expected OPEN, got {open:?}");
        raw
    }

    /// Opens a session and joins `/` as `user` (dev mode).
    async fn connect(addr: SocketAddr, user: &str) -> Raw {
        let mut raw = Raw::open(addr).await;
        raw.handshake(user).await;
        raw
    }

    /// Sends the Socket.IO CONNECT for `user` and waits for the reply.
    async fn handshake(&mut self, user: &str) {
        self.send(&format!("40{}", json!({ "userId": user }))).await;
        let reply = self.next_text().await;
        assert!(reply.starts_with("40{"), "CONNECT refused: {reply:?}");
    }

    async fn send(&mut self, text: &str) {
        if let Err(e) = self.ws.send(Message::text(text)).await {
            panic!("send {:.80?}: {e}", text);
        }
    }

    async fn send_binary(&mut self, bytes: &[u8]) {
        if let Err(e) = self.ws.send(Message::binary(bytes.to_vec())).await {
            panic!("send binary: {e}");
        }
    }

    /// The next text frame (answering Engine.IO pings on the way).
    async fn next_text(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => self.send("3").await,
                Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!("expected a text frame, got {other:?}"),
                Err(_) => panic!("no text frame within {WAIT:?}"),
            }
        }
    }

    /// Emits `event` with `payload` (raw JSON text) and an ack id; returns
    /// the single argument of the ack.
    async fn ack(&mut self, event: &str, payload: &str) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let event = Value::from(event);
        let packet = if payload.is_empty() {
            format!("42{id}[{event}]")
        } else {
            format!("42{id}[{event},{payload}]")
        };
        self.send(&packet).await;
        self.wait_ack(id).await
    }

    /// Waits for the ack `id`, keeping events that arrive before it.
    async fn wait_ack(&mut self, id: u64) -> Value {
        let prefix = format!("43{id}[");
        loop {
            let text = self.next_text().await;
            if let Some(rest) = text.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(&format!("[{rest}"))
                    .unwrap_or_else(|e| panic!("bad ack {text:?}: {e}"));
                return args[0].clone();
            }
            self.keep(&text);
        }
    }

    fn keep(&mut self, text: &str) {
        if let Some(json) = text.strip_prefix("42")
            && let Ok(event) = serde_json::from_str::<Value>(json)
        {
            self.events.push(event);
        }
    }

    /// The next event called `name` (its first argument).
    async fn next_event(&mut self, name: &str) -> Value {
        loop {
            if let Some(i) = self.events.iter().position(|e| e[0] == name) {
                return self.events.remove(i)[1].clone();
            }
            let text = self.next_text().await;
            self.keep(&text);
        }
    }

    /// Waits until the server closes the connection (frames before are skipped).
    async fn expect_closed(&mut self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => return,
                Ok(Some(Ok(_))) => {}
                Err(_) => panic!("{what}: the server did not close the connection"),
            }
        }
    }
}

fn assert_ok(reply: &Value) {
    assert_eq!(reply["status"], "ok", "expected success, got {reply}");
}

fn assert_code(reply: &Value, code: &str, what: &str) {
    assert_eq!(reply["status"], "error", "{what}: {reply}");
    assert_eq!(reply["code"], code, "{what}: {reply}");
}

/// A client that must be unaffected by whatever the test did to others:
/// still connected, still served, still receiving.
async fn assert_healthy(bystander: &mut Raw) {
    assert_ok(&bystander.ack("channel:list", "").await);
}

// ---- malformed input ----------------------------------------------------------

/// Wrong types for every field of every client event answer INVALID_PAYLOAD
/// on the same, still open connection, and change nothing.
#[tokio::test]
async fn wrong_types_for_every_field_of_every_event_are_invalid_payload() {
    let server = start(|_| {}).await;
    let addr = server.addr();
    let mut alice = Raw::connect(addr, "alice").await;
    let mut bob = Raw::connect(addr, "bob").await;
    assert_ok(&alice.ack("channel:join", r#""ok""#).await);
    assert_ok(&bob.ack("channel:join", r#""ok""#).await);

    let placeholder = json!({ "_placeholder": true, "num": 0 });
    let not_string = [
        json!(1),
        json!(-1.5),
        json!(true),
        json!([]),
        json!(["ok"]),
        json!({}),
        placeholder.clone(),
    ];
    let not_bool = [json!("yes"), json!(1), json!(null), json!([]), json!({})];
    let valid_send = json!({ "channelId": "ok", "text": "hi", "clientMsgId": "c" });
    // (event, a valid payload, field to spoil (None: the whole payload), wrong values)
    let mut cases: Vec<(&str, Value, Option<&str>, Vec<Value>)> = vec![
        (
            "channel:join",
            json!({ "channelId": "ok" }),
            Some("channelId"),
            [&not_string[..], &[json!(null)]].concat(),
        ),
        (
            "channel:leave",
            json!({ "channelId": "ok" }),
            Some("channelId"),
            [&not_string[..], &[json!(null)]].concat(),
        ),
        (
            "message:send",
            valid_send.clone(),
            Some("channelId"),
            [&not_string[..], &[json!(null)]].concat(),
        ),
        (
            "message:send",
            valid_send.clone(),
            Some("text"),
            [&not_string[..], &[json!(null)]].concat(),
        ),
        (
            "message:send",
            valid_send.clone(),
            Some("clientMsgId"),
            not_string.to_vec(),
        ),
        (
            "presence:update",
            json!({ "status": "away" }),
            Some("status"),
            [
                &not_string[..],
                &[json!(null), json!("offline"), json!("AWAY"), json!("")],
            ]
            .concat(),
        ),
        (
            "typing",
            json!({ "channelId": "ok", "typing": true }),
            Some("channelId"),
            [&not_string[..], &[json!(null)]].concat(),
        ),
        (
            "typing",
            json!({ "channelId": "ok", "typing": true }),
            Some("typing"),
            not_bool.to_vec(),
        ),
        (
            "users:online",
            json!({ "channelId": "ok" }),
            Some("channelId"),
            not_string.to_vec(),
        ),
    ];
    // The whole payload of the wrong type.
    for event in [
        "channel:join",
        "channel:leave",
        "message:send",
        "presence:update",
        "typing",
    ] {
        cases.push((
            event,
            Value::Null,
            None,
            vec![
                json!(1),
                json!(true),
                json!([]),
                json!(["ok", "hi"]),
                json!(null),
            ],
        ));
    }
    cases.push((
        "users:online",
        Value::Null,
        None,
        vec![json!(1), json!("ok"), json!(["ok"])],
    ));

    let mut checked = 0;
    for (event, valid, field, wrong_values) in cases {
        for wrong in wrong_values {
            let payload = match field {
                Some(field) => {
                    let mut payload = valid.clone();
                    payload[field] = wrong.clone();
                    payload
                }
                None => wrong.clone(),
            };
            let reply = alice.ack(event, &payload.to_string()).await;
            assert_code(&reply, "INVALID_PAYLOAD", &format!("{event} {payload}"));
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} cases");
    // A binary attachment where text is expected is a wrong type too.
    alice
        .send(r#"451-0["message:send",{"channelId":"ok","text":{"_placeholder":true,"num":0}}]"#)
        .await;
    alice.send_binary(b"\x00\xffnot text").await;
    assert_code(&alice.wait_ack(0).await, "INVALID_PAYLOAD", "binary text");
    // Nothing took effect, nobody heard anything, both are still served.
    let list = alice.ack("channel:list", "").await;
    assert_eq!(list["channels"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["channels"][0]["channelId"], "ok");
    assert_eq!(list["channels"][0]["members"], 2, "{list}");
    assert_healthy(&mut bob).await;
    assert!(
        !bob.events.iter().any(|e| e[0] == "message:new"),
        "a refused message was delivered: {:?}",
        bob.events
    );
}

/// Unknown event names, whatever they look like, answer INVALID_PAYLOAD and
/// share one rate-limit budget (a client cannot mint rate-limit keys).
#[tokio::test]
async fn unknown_events_are_invalid_and_share_one_budget() {
    let server = start(|c| {
        c.rate_limits = RateLimits::parse("default=6/min").unwrap_or_else(|e| panic!("{e:?}"));
    })
    .await;
    let mut alice = Raw::connect(server.addr(), "alice").await;
    let long = "x".repeat(50_000);
    let names: Vec<Value> = vec![
        json!(""),
        json!("__proto__"),
        json!(long),
        json!("message:send "),
        json!("\u{202e}dnes:egassem"),
        json!(42),
    ];
    for name in &names {
        alice.send(&format!("420[{name},{{}}]")).await;
        let reply = alice.wait_ack(0).await;
        assert_code(&reply, "INVALID_PAYLOAD", &format!("{name:.40}"));
        assert!(
            reply["message"].as_str().is_some_and(|m| m.len() < 200),
            "the error does not echo a huge name: {reply:.200}"
        );
    }
    // Six different names used the one "unknown" budget of 6/min.
    assert_code(
        &alice.ack("yet:another", "{}").await,
        "RATE_LIMITED",
        "7th unknown event",
    );
    // Known events keep their own budget.
    assert_ok(&alice.ack("channel:list", "").await);
}

/// Frames that are not valid Engine.IO/Socket.IO close only the connection
/// that sent them; an event before CONNECT is such a frame.
#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let server = start(|_| {}).await;
    let addr = server.addr();
    let mut bystander = Raw::connect(addr, "bystander").await;
    let malformed: &[&str] = &[
        "",
        "7",
        "4",
        "x42[\"channel:list\"]",
        "42",
        "42[",
        "42{}",
        "42[]",
        "42[{}]",
        "42[null]",
        "4299999999999999999999[\"channel:list\"]",
        "44{\"message\":\"clients do not send this\"}",
        "41{}",
        "451000000-[\"channel:list\"]",
        "0{\"sid\":\"spoofed\"}",
        "1x",
        "2probe-not",
        "42[\"channel:list\",\"\\ud800\\u\"]",
    ];
    for frame in malformed {
        let mut hostile = Raw::connect(addr, "hostile").await;
        hostile.send(frame).await;
        hostile.expect_closed(&format!("{frame:?}")).await;
    }
    // Harmless oddities are ignored: a stray ack, a noop, an unsolicited
    // pong, a client ping (answered, for protocol v3 clients).
    let mut odd = Raw::connect(addr, "odd").await;
    for frame in ["43[\"not asked\"]", "4399[1]", "6", "3", "5"] {
        odd.send(frame).await;
    }
    odd.send("2").await;
    assert_eq!(odd.next_text().await, "3");
    assert_healthy(&mut odd).await;
    // CONNECT twice on one namespace, a text packet while attachments are
    // due, binary data outside a binary packet.
    let mut twice = Raw::connect(addr, "hostile").await;
    twice.send("40{\"userId\":\"again\"}").await;
    twice.expect_closed("second CONNECT").await;
    let mut interrupted = Raw::connect(addr, "hostile").await;
    interrupted
        .send("451-[\"channel:list\",{\"_placeholder\":true,\"num\":0}]")
        .await;
    interrupted.send("42[\"channel:list\"]").await;
    interrupted
        .expect_closed("text instead of an attachment")
        .await;
    let mut stray = Raw::connect(addr, "hostile").await;
    stray.send_binary(b"stray").await;
    stray.expect_closed("binary outside a binary packet").await;
    // An event before CONNECT.
    let mut early = Raw::open(addr).await;
    early.send("420[\"channel:list\"]").await;
    early.expect_closed("event before CONNECT").await;
    // An unknown namespace is answered, not hung, and the session stays usable.
    let mut lost = Raw::open(addr).await;
    lost.send("40/nope,").await;
    let reply = lost.next_text().await;
    assert!(reply.starts_with("44/nope,"), "{reply:?}");
    lost.handshake("found").await;
    assert_healthy(&mut lost).await;
    assert_healthy(&mut bystander).await;
}

/// Invalid UTF-8 in a WebSocket text frame or a polling body closes that
/// connection; odd but valid unicode is delivered exactly, lone surrogates
/// (which JavaScript strings may hold) arrive as U+FFFD.
#[tokio::test]
async fn invalid_utf8_closes_and_odd_unicode_round_trips() {
    let server = start(|_| {}).await;
    let addr = server.addr();
    let mut alice = Raw::connect(addr, "alice").await;
    let mut bob = Raw::connect(addr, "bob").await;
    assert_ok(&alice.ack("channel:join", r#""u""#).await);
    assert_ok(&bob.ack("channel:join", r#""u""#).await);

    // A text frame whose bytes are not UTF-8.
    let mut hostile = Raw::connect(addr, "hostile").await;
    let mut bytes = b"42[\"channel:list\",\"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    bytes.extend_from_slice(b"\"]");
    let frame = Frame::message(
        bytes::Bytes::from(bytes.clone()),
        OpCode::Data(Data::Text),
        true,
    );
    // The client may refuse to send it or the server may close first.
    let _ = hostile.ws.send(Message::Frame(frame)).await;
    hostile.expect_closed("invalid UTF-8 text frame").await;

    // The same bytes as a polling POST body.
    let open = http_get(addr, "/socket.io/?EIO=4&transport=polling", &[]).await;
    let sid =
        serde_json::from_str::<Value>(&open.text()[1..]).unwrap_or_else(|e| panic!("{e}"))["sid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let post = http_post(addr, &path, &[], &bytes[..]).await;
    assert_eq!(post.status, 400, "{}", post.text());
    let after = http_get(addr, &path, &[]).await;
    assert!(
        after.status == 400 || after.text() == "1",
        "the session is closed: {} {:?}",
        after.status,
        after.text()
    );

    for text in [
        "emoji 😀👩‍👩‍👧‍👦",
        "\u{202e}right to left\u{202c}",
        "zero\u{200b}width\u{feff}",
        "e\u{301}\u{301}\u{301} combining",
        "nul \u{0} inside",
        "\u{fffd}\u{10ffff}",
    ] {
        let payload = json!({ "channelId": "u", "text": text });
        assert_ok(&alice.ack("message:send", &payload.to_string()).await);
        assert_eq!(bob.next_event("message:new").await["text"], text);
    }
    // `JSON.stringify` writes a lone surrogate as an escape.
    let lone = r#"{"channelId":"u","text":"half \ud83d of an emoji"}"#;
    assert_ok(&alice.ack("message:send", lone).await);
    assert_eq!(
        bob.next_event("message:new").await["text"],
        "half \u{fffd} of an emoji"
    );
    // 4000 astral characters are 8000 JavaScript characters: too long.
    let astral = json!({ "channelId": "u", "text": "😀".repeat(4000) });
    assert_code(
        &alice.ack("message:send", &astral.to_string()).await,
        "PAYLOAD_TOO_LARGE",
        "astral",
    );
    assert_healthy(&mut bob).await;
}

/// Over `MAX_PAYLOAD_BYTES` (WebSocket message or polling body) only that
/// connection closes; deeply nested JSON is refused by the decoder (serde's
/// recursion limit) without a stack overflow, in events and in CONNECT.
#[tokio::test]
async fn huge_and_deeply_nested_payloads() {
    let server = start(|c| c.max_payload_bytes = 1_000_000).await;
    let addr = server.addr();
    let mut bystander = Raw::connect(addr, "bystander").await;

    let mut huge = Raw::connect(addr, "huge").await;
    let text = "x".repeat(1_100_000);
    let frame = format!(r#"42["message:send",{{"channelId":"a","text":"{text}"}}]"#);
    let _ = huge.ws.send(Message::text(frame.clone())).await;
    huge.expect_closed("over max payload").await;

    let open = http_get(addr, "/socket.io/?EIO=4&transport=polling", &[]).await;
    let sid =
        serde_json::from_str::<Value>(&open.text()[1..]).unwrap_or_else(|e| panic!("{e}"))["sid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let post = http_post(addr, &path, &[], frame.as_bytes()).await;
    assert_eq!(post.status, 413);

    for depth in [129, 10_000, 400_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut deep = Raw::connect(addr, "deep").await;
        deep.send(&format!("420[\"message:send\",{nested}]")).await;
        deep.expect_closed(&format!("nesting {depth}")).await;
        let mut deep_auth = Raw::open(addr).await;
        deep_auth.send(&format!("40{{\"userId\":{nested}}}")).await;
        deep_auth
            .expect_closed(&format!("nesting {depth} in CONNECT"))
            .await;
    }
    // Nesting the decoder accepts reaches the gateway, which refuses it.
    let mut deep = Raw::connect(addr, "deep").await;
    let nested = format!("{}1{}", "{\"channelId\":".repeat(100), "}".repeat(100));
    assert_code(
        &deep.ack("channel:join", &nested).await,
        "INVALID_PAYLOAD",
        "100 nested objects",
    );
    assert_healthy(&mut bystander).await;
}

// ---- floods and resource exhaustion -------------------------------------------

/// The p-th percentile of `samples` (sorted in place).
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64) * p).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Round-trip times of `n` sequential `channel:list` acks.
async fn ack_latencies(client: &mut Raw, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let began = Instant::now();
        let reply = client.ack("users:online", r#"{"channelId":"room"}"#).await;
        samples.push(began.elapsed());
        assert_ok(&reply);
    }
    samples
}

/// A flood of `message:send` from one user: the rate limit holds (at most
/// the burst is accepted and delivered, the rest is RATE_LIMITED), and a
/// well-behaved client's p99 ack latency during the flood stays within
/// 10x its latency without the flood, or under 100 ms (whichever is
/// larger: on an idle machine the baseline is a fraction of a millisecond).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_and_does_not_slow_others() {
    const SAMPLES: usize = 200;
    let server = start(|c| {
        c.rate_limits = RateLimits::parse("message:send=60/min,default=1000000/min")
            .unwrap_or_else(|e| panic!("{e:?}"));
    })
    .await;
    let addr = server.addr();
    let mut calm = Raw::connect(addr, "calm").await;
    assert_ok(&calm.ack("channel:join", r#""room""#).await);
    let mut flooder = Raw::connect(addr, "flooder").await;
    assert_ok(&flooder.ack("channel:join", r#""room""#).await);

    // Warm up, then the baseline.
    ack_latencies(&mut calm, 20).await;
    let mut baseline = ack_latencies(&mut calm, SAMPLES).await;

    // The flood: one writer as fast as the socket takes it, one reader
    // counting the answers, until the measurement is done.
    let (mut sink, mut stream) = flooder.ws.split();
    // At most 256 events in flight: as fast as the server answers, without
    // the flooder being cut off as a slow consumer of its own answers
    // (which is what happens to a flooder that does not read them).
    let window = Arc::new(tokio::sync::Semaphore::new(256));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, sent, window) = (stop.clone(), sent.clone(), window.clone());
        tokio::spawn(async move {
            for n in 0..100_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match window.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => break,
                }
                let packet =
                    format!(r#"42{n}["message:send",{{"channelId":"room","text":"flood {n}"}}]"#);
                if sink.send(Message::text(packet)).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            sink
        })
    };
    let reader = {
        let (stop, sent, window) = (stop.clone(), sent.clone(), window.clone());
        tokio::spawn(async move {
            // Every flood event has an ack id: read until each is answered,
            // so nothing accepted is left in flight when the counts are used.
            let (mut ok, mut limited, mut answered) = (0usize, 0usize, 0usize);
            while !(stop.load(Ordering::Relaxed) && answered >= sent.load(Ordering::Relaxed)) {
                let Ok(Some(Ok(message))) = tokio::time::timeout(WAIT, stream.next()).await else {
                    break;
                };
                if let Message::Text(text) = message
                    && text.starts_with("43")
                {
                    answered += 1;
                    window.add_permits(1);
                    if text.contains(r#""status":"ok""#) {
                        ok += 1;
                    } else if text.contains("RATE_LIMITED") {
                        limited += 1;
                    }
                }
            }
            (ok, limited, answered)
        })
    };
    // Measure only once the flood is on.
    let flood_on = Instant::now() + WAIT;
    while sent.load(Ordering::Relaxed) < 1000 && Instant::now() < flood_on {
        tokio::task::yield_now().await;
    }
    let flood_began = Instant::now();
    let mut flooded = ack_latencies(&mut calm, SAMPLES).await;
    stop.store(true, Ordering::Relaxed);
    let _sink = writer.await.unwrap_or_else(|e| panic!("{e}"));
    let (ok, limited, answered) = reader.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answered,
        sent.load(Ordering::Relaxed),
        "flood events unanswered"
    );

    let base_p99 = percentile(&mut baseline, 0.99);
    let flood_p99 = percentile(&mut flooded, 0.99);
    let bound = (base_p99 * 10).max(Duration::from_millis(100));
    eprintln!(
        "p99 ack latency: {base_p99:?} alone, {flood_p99:?} during a flood of {} events \
         ({ok} accepted, {limited} rate limited); bound {bound:?}",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        flood_p99 <= bound,
        "the flood slowed a well-behaved client: p99 {flood_p99:?} > {bound:?}"
    );
    assert!(limited > 0, "the flood was never rate limited");
    // A burst of 60, then one per second (the GCRA refill).
    let refills = usize::try_from(flood_began.elapsed().as_secs()).unwrap_or(usize::MAX);
    assert!(
        ok <= 61 + refills,
        "{ok} flood messages accepted; the burst is 60"
    );
    // What was accepted is all that was delivered.
    for _ in 0..ok {
        calm.next_event("message:new").await;
    }
    assert_ok(&calm.ack("channel:list", "").await);
    let stray = calm.events.iter().filter(|e| e[0] == "message:new").count();
    assert_eq!(stray, 0, "refused flood messages were delivered");
}

/// Thousands of sessions that never CONNECT, or whose CONNECT is refused,
/// are closed by the server after the connect timeout; the server keeps
/// serving meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_authenticating_connections_are_closed_after_the_connect_timeout() {
    const SESSIONS: usize = 1000;
    let server = start(|c| c.connect_timeout = Duration::from_millis(700)).await;
    let addr = server.addr();
    let began = Instant::now();
    let mut opened = Vec::with_capacity(SESSIONS);
    for batch in 0..SESSIONS / 100 {
        let clients = futures_util::future::join_all((0..100).map(|n| async move {
            let mut raw = Raw::open(addr).await;
            if (batch * 100 + n) % 4 == 0 {
                // A refused CONNECT does not keep the session alive either.
                raw.send("40{\"userId\":\"\"}").await;
                let refused = raw.next_text().await;
                assert!(refused.starts_with("44{"), "{refused:?}");
            }
            raw
        }))
        .await;
        opened.extend(clients);
    }
    let opened_in = began.elapsed();
    // Polling sessions that never come back.
    let mut polling = Vec::new();
    for _ in 0..50 {
        let open = http_get(addr, "/socket.io/?EIO=4&transport=polling", &[]).await;
        let handshake: Value =
            serde_json::from_str(&open.text()[1..]).unwrap_or_else(|e| panic!("{e}"));
        polling.push(handshake["sid"].as_str().unwrap_or_default().to_owned());
    }
    // A real client is served while they linger.
    let mut real = Raw::connect(addr, "real").await;
    assert_healthy(&mut real).await;

    futures_util::future::join_all(
        opened
            .iter_mut()
            .map(|raw| raw.expect_closed("a session without CONNECT")),
    )
    .await;
    eprintln!(
        "{SESSIONS} sessions opened in {opened_in:?}, all closed {:?} after the first",
        began.elapsed()
    );
    for sid in polling {
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let poll = http_get(addr, &path, &[]).await;
        assert!(
            poll.status == 400 || poll.text().ends_with('1'),
            "polling session {sid} still open: {} {:?}",
            poll.status,
            poll.text()
        );
    }
    // The real client, confirmed in time, was not closed.
    assert_healthy(&mut real).await;
}

/// A client that stops reading is disconnected once its outbound queue
/// bound (`MAX_QUEUED_PACKETS`) is hit: the server does not buffer without
/// limit, and the other members of the channel get every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_disconnected_not_buffered() {
    const MAX_MESSAGES: usize = 20_000;
    let server = start(|c| c.max_queued_packets = 64).await;
    let addr = server.addr();

    // The slow reader: a small receive buffer, then it never reads again.
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = socket.connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let (ws, _) = tokio_tungstenite::client_async(ws_url(addr), MaybeTlsStream::Plain(stream))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut slow = Raw::after_handshake(ws).await;
    slow.handshake("slow").await;
    assert_ok(&slow.ack("channel:join", r#""firehose""#).await);

    let mut watcher = Raw::connect(addr, "watcher").await;
    assert_ok(&watcher.ack("channel:join", r#""firehose""#).await);
    let mut loud = Raw::connect(addr, "loud").await;
    assert_ok(&loud.ack("channel:join", r#""firehose""#).await);

    // The watcher reads everything and notices when `slow` goes offline.
    let (mut watcher_sink, mut watcher_stream) = watcher.ws.split();
    let slow_gone = Arc::new(AtomicBool::new(false));
    let watched = {
        let slow_gone = slow_gone.clone();
        tokio::spawn(async move {
            let mut received = 0usize;
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(WAIT, watcher_stream.next()).await
            {
                let Message::Text(text) = message else {
                    continue;
                };
                if text.as_str() == "2" {
                    let _ = watcher_sink.send(Message::text("3")).await;
                } else if text.starts_with("42[\"message:new\"") {
                    received += 1;
                    if text.contains("\"text\":\"last\"") {
                        break;
                    }
                } else if text.contains(r#""userId":"slow","status":"offline""#) {
                    slow_gone.store(true, Ordering::Relaxed);
                }
            }
            received
        })
    };

    let text = "m".repeat(4000);
    let mut sent = 0;
    while sent < MAX_MESSAGES && !slow_gone.load(Ordering::Relaxed) {
        for _ in 0..50 {
            let payload = json!({ "channelId": "firehose", "text": text });
            // No ack id: the sender has nothing to read either.
            loud.send(&format!("42[\"message:send\",{payload}]")).await;
            sent += 1;
        }
        assert_ok(&loud.ack("channel:list", "").await);
    }
    assert!(
        slow_gone.load(Ordering::Relaxed),
        "{sent} messages of 4 KB were queued for a client that never reads"
    );
    eprintln!(
        "the slow reader was disconnected after {sent} messages of {} bytes",
        text.len()
    );
    assert_ok(
        &loud
            .ack("message:send", r#"{"channelId":"firehose","text":"last"}"#)
            .await,
    );
    let received = watched.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(received, sent + 1, "the watcher missed messages");
}

/// A storm of handshakes from one address: past the configured per-IP rate
/// (`CONNECTION_RATE_PER_IP`) they get HTTP 429 with `Retry-After`, for
/// polling and WebSocket alike; a socket.io-client that lost its connection
/// meanwhile is refused (`connect_error`) and gets in with its own retry.
#[tokio::test]
async fn a_connection_storm_from_one_ip_is_refused_then_clients_retry() {
    let server = start(|c| {
        // A burst of 6, then one every 5 s.
        c.connection_rate_per_ip = Some(Rate::new(6, Duration::from_secs(30)));
        c.max_payload_bytes = 2000;
    })
    .await;
    let addr = server.addr();
    let bridge = NodeBridge::spawn().await;
    let options = ConnectOptions::websocket()
        .with_auth(json!({ "userId": "patient" }))
        .with_reconnection(true);
    let options = ConnectOptions {
        extra: json!({ "reconnectionDelay": 100, "reconnectionDelayMax": 300 }),
        ..options
    };
    let patient = bridge.connect_ok(&server.url(), options).await;

    // The storm: 5 more handshakes are allowed, the rest refused.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let open = http_get(addr, "/socket.io/?EIO=4&transport=polling", &[]).await;
        if open.status == 429 {
            assert!(
                open.header("retry-after")
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| (1..=30).contains(&s)),
                "{:?}",
                open.headers
            );
            assert!(
                open.text().contains("TOO_MANY_CONNECTIONS"),
                "{}",
                open.text()
            );
        }
        statuses.push(open.status);
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (5..=6).contains(&allowed) && statuses[..allowed].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
    let refused_ws = tokio_tungstenite::connect_async(ws_url(addr)).await;
    assert!(
        refused_ws.is_err(),
        "WebSocket handshake over the limit accepted"
    );

    // Knock the client off (an over-sized packet); its reconnection is
    // refused at first, then succeeds once the budget refills.
    patient
        .emit("message:send", vec![json!({ "text": "x".repeat(5000) })])
        .await;
    assert_eq!(patient.next_disconnect().await, "transport close");
    let refused = patient.next_connect_error().await;
    eprintln!("reconnection refused with {refused}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut back = None;
    while back.is_none() && Instant::now() < deadline {
        back = tokio::time::timeout(Duration::from_millis(500), patient.next_connect())
            .await
            .ok();
    }
    assert!(back.is_some(), "the client never got back in");
    assert!(patient.connected().await);
}

// ---- identity and access ------------------------------------------------------

const SECRET: &[u8] = b"a-hostile-test-secret-32-bytes-long!";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn token(algorithm: jsonwebtoken::Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap_or_else(|e| panic!("encode: {e}"))
}

/// Production mode: tokens not yet valid (`nbf`), signed with another
/// algorithm (HS384/HS512 with the right secret, or a header lying about
/// the algorithm) are refused; a `userId` next to a valid token is ignored.
#[tokio::test]
async fn jwt_edge_cases_are_refused_and_user_id_is_ignored() {
    use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
    let server = start(|c| c.auth = AuthConfig::Jwt(JwtSettings::hs256(SECRET))).await;
    let bridge = NodeBridge::spawn().await;
    let exp = now_secs() + 600;
    let with = |auth: Value| ConnectOptions::websocket().with_auth(auth);
    let lying_header = {
        use base64::Engine as _;
        let valid = token(HS256, SECRET, &json!({ "sub": "x", "exp": exp }));
        let mut parts: Vec<&str> = valid.split('.').collect();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        parts[0] = &header;
        parts.join(".")
    };
    let refused = [
        (
            "nbf in the future",
            with(
                json!({ "token": token(HS256, SECRET, &json!({ "sub": "x", "exp": exp, "nbf": now_secs() + 300 })) }),
            ),
        ),
        (
            "HS384",
            with(json!({ "token": token(HS384, SECRET, &json!({ "sub": "x", "exp": exp })) })),
        ),
        (
            "HS512",
            with(json!({ "token": token(HS512, SECRET, &json!({ "sub": "x", "exp": exp })) })),
        ),
        ("header says RS256", with(json!({ "token": lying_header }))),
        (
            "sub not a string",
            with(json!({ "token": token(HS256, SECRET, &json!({ "sub": 7, "exp": exp })) })),
        ),
        (
            "token not a string",
            with(json!({ "token": { "sub": "x" } })),
        ),
    ];
    for (case, options) in refused {
        let error = bridge
            .connect(&server.url(), options)
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(error.message, "UNAUTHORIZED", "{case}");
        assert!(
            !error.data.to_string().contains("eyJ"),
            "{case}: the refusal quotes the token: {}",
            error.data
        );
    }
    // A valid token wins over a forged userId.
    let carol = bridge
        .connect_ok(
            &server.url(),
            with(json!({
                "token": token(HS256, SECRET, &json!({ "sub": "carol", "exp": exp })),
                "userId": "admin",
            })),
        )
        .await;
    let joined = carol.emit_with_ack("channel:join", vec![json!("c")]).await;
    assert_eq!(joined[0]["members"], json!(["carol"]));
}

/// A user cannot send as someone else (a `userId` in the payload is
/// ignored), leave someone else's membership, or see channels and messages
/// of channels they are not in.
#[tokio::test]
async fn users_cannot_act_as_or_spy_on_others() {
    let server = start(|_| {}).await;
    let addr = server.addr();
    let mut alice = Raw::connect(addr, "alice").await;
    let mut bob = Raw::connect(addr, "bob").await;
    let mut mallory = Raw::connect(addr, "mallory").await;
    assert_ok(&alice.ack("channel:join", r#""shared""#).await);
    assert_ok(&bob.ack("channel:join", r#""shared""#).await);
    assert_ok(&bob.ack("channel:join", r#""bob-private""#).await);
    assert_ok(&mallory.ack("channel:join", r#""shared""#).await);

    // Sending with someone else's userId (and other spoofed fields).
    let spoof = json!({
        "channelId": "shared", "text": "I am bob", "userId": "bob",
        "id": 1, "ts": 0, "user": "bob",
    });
    let sent = mallory.ack("message:send", &spoof.to_string()).await;
    assert_ok(&sent);
    let seen = alice.next_event("message:new").await;
    assert_eq!(seen["userId"], "mallory", "{seen}");
    assert_ne!(seen["id"], 1);
    assert_eq!(seen["id"], sent["id"]);

    // Leaving bob's membership on his behalf.
    for payload in [
        json!({ "channelId": "bob-private", "userId": "bob" }),
        json!("bob-private"),
    ] {
        assert_code(
            &mallory.ack("channel:leave", &payload.to_string()).await,
            "NOT_IN_CHANNEL",
            "leave for bob",
        );
    }
    let left = mallory
        .ack("channel:leave", r#"{"channelId":"shared","userId":"bob"}"#)
        .await;
    assert_ok(&left);
    let bobs = bob.ack("channel:list", "").await;
    let names: Vec<&str> = bobs["channels"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["channelId"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"shared") && names.contains(&"bob-private"),
        "bob lost a membership: {bobs}"
    );

    // Spying: another user's channel list, presence of a private channel,
    // typing into it, messages in it.
    let list = mallory.ack("channel:list", "").await;
    assert_eq!(list["channels"], json!([]), "{list}");
    for (event, payload) in [
        ("users:online", r#"{"channelId":"bob-private"}"#),
        ("typing", r#"{"channelId":"bob-private","typing":true}"#),
        (
            "message:send",
            r#"{"channelId":"bob-private","text":"peek"}"#,
        ),
    ] {
        assert_code(&mallory.ack(event, payload).await, "NOT_IN_CHANNEL", event);
    }
    assert_ok(
        &bob.ack(
            "message:send",
            r#"{"channelId":"bob-private","text":"secret"}"#,
        )
        .await,
    );
    assert_ok(&mallory.ack("channel:list", "").await);
    assert!(
        !mallory
            .events
            .iter()
            .any(|e| e.to_string().contains("secret")),
        "a non-member received a private message: {:?}",
        mallory.events
    );
}

/// With `FRONTEND_URL` set, a foreign origin gets no CORS grant on the
/// preflight and cannot ride an existing session: neither its polling
/// requests nor a WebSocket upgrade of it are accepted.
#[tokio::test]
async fn foreign_origins_cannot_use_existing_sessions() {
    let server = start(|c| c.frontend_origins = Some(vec!["http://app.example".to_owned()])).await;
    let addr = server.addr();
    let evil = [("Origin", "http://evil.example")];
    let preflight = http_request(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        &[],
    )
    .await;
    assert_eq!(preflight.header("access-control-allow-origin"), None);

    let open = http_get(
        addr,
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://app.example")],
    )
    .await;
    let sid =
        serde_json::from_str::<Value>(&open.text()[1..]).unwrap_or_else(|e| panic!("{e}"))["sid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let post = http_post(addr, &path, &evil, b"40{\"userId\":\"x\"}").await;
    assert_eq!(post.status, 403);
    assert_eq!(post.header("access-control-allow-origin"), None);
    let get = http_get(addr, &path, &evil).await;
    assert_eq!(get.status, 403);
    let upgrade = support::RawWs::connect_with(
        addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
        &evil,
    )
    .await;
    assert!(upgrade.is_err(), "foreign origin upgraded a session");
}
