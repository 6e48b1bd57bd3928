//! The status view for operators: `GET /status` (JSON) and `GET /status.html`
//! (a small page that polls it).
//!
//! It shows the nodes alive (this one, until nodes share state through
//! Redis), connections per node, users online, the channels with the most
//! subscribed connections and the event rates of the last minute.
//!
//! Access: with an `API_KEY` configured, `/status` needs
//! `Authorization: Bearer <API_KEY>` (the page asks for it); without one it
//! is open in dev mode and absent (404) otherwise, because channel ids may
//! be private.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::auth::bearer_matches;
use super::context::Context;
use super::demo::asset;
use super::error::ApiError;
use super::snapshot::NodeSnapshot;

/// How many channels `/status` lists.
pub const TOP_CHANNELS: usize = 10;

/// The routes of the status view, when it is enabled (see the module docs).
pub(crate) fn routes(context: &Context) -> Router<Context> {
    if !context.status_enabled() {
        return Router::new();
    }
    Router::new()
        .route("/status", get(status_json))
        .route(
            "/status.html",
            get(|| page(STATUS_HTML, "text/html; charset=utf-8")),
        )
        .route(
            "/status.js",
            get(|| page(STATUS_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/status.css",
            get(|| page(STYLE_CSS, "text/css; charset=utf-8")),
        )
}

const STATUS_HTML: &str = include_str!("../../demo/status.html");
const STATUS_JS: &str = include_str!("../../demo/status.js");
const STYLE_CSS: &str = include_str!("../../demo/style.css");

async fn page(body: &'static str, content_type: &'static str) -> Response {
    asset(body, content_type)
}

/// `GET /status`.
async fn status_json(State(context): State<Context>, headers: HeaderMap) -> Response {
    if let Some(key) = context.api_key()
        && !bearer_matches(&headers, key)
    {
        return ApiError::unauthorized().into_response();
    }
    let snapshot = NodeSnapshot::take(&context);
    let users_online = match context.chat.online_users().await {
        Ok(users) => users.len(),
        Err(err) => return ApiError::from(err).into_response(),
    };
    let mut top: Vec<(String, usize)> = snapshot.channels.clone().into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_CHANNELS);
    let ids: Vec<String> = top.iter().map(|(id, _)| id.clone()).collect();
    let stats = match context.chat.channel_stats(&ids).await {
        Ok(stats) => stats,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let top_channels: Vec<_> = top
        .into_iter()
        .zip(stats)
        .map(|((channel_id, subscribers), (last_activity, members))| {
            json!({
                "channelId": channel_id,
                "subscribers": subscribers,
                "members": members,
                "lastActivity": last_activity,
            })
        })
        .collect();
    let text = crate::metrics::install().render();
    let rates = context.rates.lock().observe(Instant::now(), &text);
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": context.started.elapsed().as_secs(),
        "nodesAlive": context.chat.live_nodes(),
        "nodes": [{
            "nodeId": context.chat.node_id(),
            "self": true,
            "engineConnections": snapshot.engine_connections,
            "sockets": snapshot.sockets,
            "usersConnected": snapshot.users_connected,
            "channelsWithSubscribers": snapshot.channels.len(),
        }],
        "usersOnline": users_online,
        "topChannels": top_channels,
        "eventRates": rates,
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
