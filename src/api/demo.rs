//! The demo chat page at `/` (`DEMO_PAGE`, on by default in dev mode).
//!
//! Its HTML, JavaScript and CSS live in `demo/` and are embedded at build
//! time. The page talks to chatgate with the real `socket.io-client` from
//! npm: `demo/package.json` pins it, and `build.rs` embeds its browser bundle
//! (`demo/node_modules/socket.io-client/dist/socket.io.min.js`, installed by
//! `npm ci --prefix demo`, which `build.rs` runs when npm is available). No
//! copy of the client is kept in the repository; a build without it serves a
//! page that says how to install it.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::context::Context;
use crate::config::Config;

const INDEX_HTML: &str = include_str!("../../demo/index.html");
const APP_JS: &str = include_str!("../../demo/app.js");
const STYLE_CSS: &str = include_str!("../../demo/style.css");

/// The browser bundle of socket.io-client, or empty when it was not
/// installed at build time (see `build.rs`).
const SOCKET_IO_CLIENT: &str = include_str!(concat!(env!("OUT_DIR"), "/socket.io.min.js"));

/// What `/socket.io-client.js` serves when the bundle is missing: the page
/// shows this instead of the chat.
const MISSING_CLIENT: &str = "window.CHATGATE_CLIENT_MISSING = \"socket.io-client was not \
installed when chatgate was built. Install Node.js and npm, run `npm ci --prefix demo` in the \
chatgate repository, then rebuild (cargo run --release).\";\n";

/// Only this origin's scripts, styles and connections (WebSocket included).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Whether the socket.io-client bundle was embedded at build time.
pub fn client_bundled() -> bool {
    !SOCKET_IO_CLIENT.is_empty()
}

/// A static asset with the headers every embedded file gets.
pub(crate) fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// The routes of the demo page.
pub(crate) fn router(config: &Config) -> Router<Context> {
    let dev_mode = config.is_dev_mode();
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/demo/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/demo/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/demo/config.json",
            get(move || async move {
                let mut response = axum::Json(json!({
                    "devMode": dev_mode,
                    "clientBundled": client_bundled(),
                }))
                .into_response();
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }),
        )
        .route(
            "/socket.io-client.js",
            get(|| async {
                let body = if client_bundled() {
                    SOCKET_IO_CLIENT
                } else {
                    MISSING_CLIENT
                };
                asset(body, "text/javascript; charset=utf-8")
            }),
        )
}
