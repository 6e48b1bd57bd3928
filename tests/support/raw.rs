//! Low-level clients for protocol tests: raw Engine.IO frames over WebSocket
//! ([`RawWs`]) and a minimal HTTP/1.1 client for long-polling ([`http_request`]).
//! Both wait with a deadline ([`default_timeout`]) and panic readably.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::default_timeout;

/// A raw WebSocket to the engine: Engine.IO packets are sent and received as
/// text frames (`"4..."` messages, `"2"` pings, ...) exactly as written.
pub(crate) struct RawWs {
    /// The WebSocket, after the HTTP upgrade.
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawWs {
    /// Opens `ws://addr/socket.io/?EIO=4&transport=websocket&{query}` (`query` may be
    /// empty, e.g. `"sid=..."` to upgrade an existing polling session).
    pub(crate) async fn connect(addr: SocketAddr, query: &str) -> RawWs {
        let path = engine_path("websocket", query);
        match Self::connect_with(addr, &path, &[]).await {
            Ok(ws) => ws,
            Err(e) => panic!("WebSocket handshake to {addr}{path} failed: {e}"),
        }
    }

    /// Opens `ws://addr{path_and_query}` with extra request headers (e.g. `Origin`);
    /// Err when the server refuses the handshake (the error holds the HTTP response).
    pub(crate) async fn connect_with(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<RawWs, tungstenite::Error> {
        let mut request = format!("ws://{addr}{path_and_query}").into_client_request()?;
        for (name, value) in headers {
            let name: tungstenite::http::HeaderName = name.parse().map_err(|_| {
                tungstenite::Error::Url(tungstenite::error::UrlError::UnableToConnect(
                    (*name).to_owned(),
                ))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                tungstenite::Error::Url(tungstenite::error::UrlError::UnableToConnect(
                    (*value).to_owned(),
                ))
            })?;
            request.headers_mut().insert(name, value);
        }
        let connecting = tokio_tungstenite::connect_async(request);
        match tokio::time::timeout(default_timeout(), connecting).await {
            Ok(Ok((ws, _response))) => Ok(RawWs { ws }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(tungstenite::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "WebSocket handshake timed out",
            ))),
        }
    }

    /// Connects and reads the Engine.IO OPEN packet (`0{...}`); returns its JSON
    /// (`sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`).
    pub(crate) async fn open(addr: SocketAddr) -> (RawWs, Value) {
        let mut ws = Self::connect(addr, "").await;
        let open = ws.recv_text().await;
        let Some(json) = open.strip_prefix('0') else {
            panic!("expected an Engine.IO OPEN packet, got {open:?}");
        };
        let handshake = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("OPEN packet is not JSON ({e}): {open:?}"));
        (ws, handshake)
    }

    /// Sends one text frame.
    pub(crate) async fn send_text(&mut self, text: &str) {
        if let Err(e) = self.ws.send(Message::text(text)).await {
            panic!("cannot send {text:?}: {e}");
        }
    }

    /// Sends one binary frame (a binary attachment).
    pub(crate) async fn send_binary(&mut self, bytes: &[u8]) {
        if let Err(e) = self.ws.send(Message::binary(bytes.to_vec())).await {
            panic!("cannot send {} binary bytes: {e}", bytes.len());
        }
    }

    /// The next frame, whatever its kind; None when the connection is closed
    /// (after a Close frame, at end of stream or on a protocol error).
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        self.recv_within(default_timeout()).await
    }

    /// Like [`recv`](Self::recv) with an explicit deadline; panics when it passes.
    pub(crate) async fn recv_within(&mut self, timeout: Duration) -> Option<Message> {
        match tokio::time::timeout(timeout, self.ws.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no WebSocket frame within {timeout:?}"),
        }
    }

    /// The next text frame (skipping WebSocket-level ping/pong frames); panics on
    /// anything else or when nothing arrives in time.
    pub(crate) async fn recv_text(&mut self) -> String {
        loop {
            match self.recv().await {
                Some(Message::Text(text)) => return text.as_str().to_owned(),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next binary frame (skipping WebSocket-level ping/pong frames).
    pub(crate) async fn recv_binary(&mut self) -> Vec<u8> {
        loop {
            match self.recv().await {
                Some(Message::Binary(bytes)) => return bytes.to_vec(),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// Waits until the server closes the connection, skipping any frames before;
    /// returns the Close frame if the server sent one.
    pub(crate) async fn expect_closed(&mut self) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + default_timeout();
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!(
                    "the server did not close the WebSocket within {:?}",
                    default_timeout()
                ),
            }
        }
    }

    /// Closes from the client side (Close frame, then waits for the server's reply).
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(default_timeout(), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// `/socket.io/?EIO=4&transport={transport}` plus `&{query}` when not empty.
pub(crate) fn engine_path(transport: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/socket.io/?EIO=4&transport={transport}")
    } else {
        format!("/socket.io/?EIO=4&transport={transport}&{query}")
    }
}

/// An HTTP response read by [`http_request`].
#[derive(Clone, Debug)]
pub(crate) struct HttpResponse {
    /// The status code.
    pub(crate) status: u16,
    /// Header names (lower-cased) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` with extra headers.
pub(crate) async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    http_request(addr, "GET", path, headers, &[]).await
}

/// `POST path` with `body` (as `text/plain;charset=UTF-8`, what socket.io-client sends) and extra headers.
pub(crate) async fn http_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut all = vec![("content-type", "text/plain;charset=UTF-8")];
    all.extend_from_slice(headers);
    http_request(addr, "POST", path, &all, body).await
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the
/// end within [`default_timeout`]. Enough for polling requests and health checks.
pub(crate) async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(default_timeout(), exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => panic!("{method} http://{addr}{path} failed: {e}"),
        Err(_) => panic!(
            "{method} http://{addr}{path}: no complete response within {:?}",
            default_timeout()
        ),
    };
    parse_response(&raw).unwrap_or_else(|e| {
        panic!(
            "{method} http://{addr}{path}: bad response ({e}): {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Parses a complete HTTP/1.1 response (status line, headers, body, chunked or not).
fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}
