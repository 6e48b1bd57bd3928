//! Raw Engine.IO/Socket.IO test helpers shared by the engine crates' tests
//! (included with `#[path]`): HTTP/1.1 requests on a raw TcpStream, the
//! polling handshake, WebSocket connections, and waiting for a condition
//! with a deadline (no fixed sleeps).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for anything in these tests.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

/// A client WebSocket.
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    timeout(DEADLINE, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub(crate) fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) async fn poll_handshake(addr: SocketAddr, path: &str) -> (String, Value) {
    let (status, _, body) = http(
        addr,
        "GET",
        &format!("{path}?EIO=4&transport=polling"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with('0'), "{body}");
    let v: Value = serde_json::from_str(&body[1..]).unwrap();
    (v["sid"].as_str().unwrap().to_owned(), v)
}

pub(crate) async fn ws_connect(addr: SocketAddr, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket{query}"
    ))
    .await
    .unwrap();
    ws
}

/// Next text frame, skipping pings (answered) when `answer_pings`.
pub(crate) async fn next_text(ws: &mut Ws, answer_pings: bool) -> Option<String> {
    loop {
        match timeout(DEADLINE, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) if answer_pings && t.as_str() == "2" => {
                ws.send(Message::text("3")).await.ok()?
            }
            Ok(Message::Text(t)) => return Some(t.as_str().to_owned()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

pub(crate) async fn eventually(mut cond: impl FnMut() -> bool) {
    timeout(DEADLINE, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition not reached before the deadline");
}
