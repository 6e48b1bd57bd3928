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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use crate::api::Context;
use crate::api::auth::bearer_matches;
use crate::api::error::ApiError;

/// How many channels `/status` lists.
pub const TOP_CHANNELS: usize = 10;

/// The window of the event rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What this node holds right now, read from the engine's rooms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// Engine.IO connections (transport level, authenticated or not).
    pub engine_connections: usize,
    /// Confirmed Socket.IO connections of the chat namespace.
    pub sockets: usize,
    /// Distinct users with a connection on this node.
    pub users_connected: usize,
    /// Channel id -> connections subscribed to it on this node.
    pub channels: HashMap<String, usize>,
}

impl NodeSnapshot {
    /// Walks the sockets of the chat namespace once (O(sockets + rooms)).
    pub fn take(context: &Context) -> NodeSnapshot {
        let sockets = context.namespace.all().local_sockets();
        let mut channels: HashMap<String, usize> = HashMap::new();
        let mut users = HashSet::new();
        for socket in &sockets {
            for room in socket.rooms() {
                if *room == *socket.id() {
                    continue;
                }
                if room.starts_with('@') {
                    // The user room (see `gateway::user_room`).
                    users.insert(room);
                } else {
                    *channels.entry(room.to_string()).or_default() += 1;
                }
            }
        }
        NodeSnapshot {
            engine_connections: context.io.engine_connection_count(),
            sockets: sockets.len(),
            users_connected: users.len(),
            channels,
        }
    }
}

/// Event rates over the last [`RATE_WINDOW`], per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRates {
    /// The seconds the rates are measured over (up to the window).
    pub window_seconds: f64,
    /// Client events of every kind.
    pub events_per_second: f64,
    /// Client messages (`message:send` accepted).
    pub messages_per_second: f64,
    /// Client events refused with an error code (rate limits included).
    pub refused_per_second: f64,
    /// Client events by event name.
    pub by_event: BTreeMap<String, f64>,
}

/// One reading of the counters.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    by_event: Vec<(String, f64)>,
    messages: f64,
    refused: f64,
}

impl Sample {
    fn read(at: Instant, text: &str) -> Sample {
        let by_event = crate::metrics::counter_by_label(text, "chatgate_events_total", "event");
        let refused = crate::metrics::counter_by_label(text, "chatgate_events_total", "outcome")
            .into_iter()
            .filter(|(outcome, _)| outcome != "ok")
            .map(|(_, n)| n)
            .sum();
        let messages = crate::metrics::counter_by_label(text, "chatgate_messages_total", "")
            .into_iter()
            .map(|(_, n)| n)
            .sum();
        Sample {
            at,
            by_event,
            messages,
            refused,
        }
    }

    fn events(&self) -> f64 {
        self.by_event.iter().map(|(_, n)| n).sum()
    }
}

/// Readings of the event counters taken at each `/status` call (at most one
/// per second, and none older than needed for [`RATE_WINDOW`]), from which
/// rates are derived without a background task.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<Sample>,
}

impl RateWindow {
    /// Records the counters in `metrics_text` (rendered Prometheus text) as
    /// read at `now`, and returns the rates since the oldest kept reading, or
    /// `None` while there is less than a second of history.
    pub fn observe(&mut self, now: Instant, metrics_text: &str) -> Option<EventRates> {
        let recent = self
            .samples
            .back()
            .is_some_and(|last| now.saturating_duration_since(last.at) < Duration::from_secs(1));
        if !recent {
            self.samples.push_back(Sample::read(now, metrics_text));
        }
        // Keep one reading at or beyond the window's start.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|s| now.saturating_duration_since(s.at) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let current = Sample::read(now, metrics_text);
        let oldest = self.samples.front()?;
        let seconds = now.saturating_duration_since(oldest.at).as_secs_f64();
        if seconds < 1.0 {
            return None;
        }
        let per_second =
            |now: f64, then: f64| ((now - then).max(0.0) / seconds * 100.0).round() / 100.0;
        let by_event = current
            .by_event
            .iter()
            .map(|(event, n)| {
                let then = oldest
                    .by_event
                    .iter()
                    .find(|(e, _)| e == event)
                    .map_or(0.0, |(_, n)| *n);
                (event.clone(), per_second(*n, then))
            })
            .collect();
        Some(EventRates {
            window_seconds: (seconds * 10.0).round() / 10.0,
            events_per_second: per_second(current.events(), oldest.events()),
            messages_per_second: per_second(current.messages, oldest.messages),
            refused_per_second: per_second(current.refused, oldest.refused),
            by_event,
        })
    }
}

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

const STATUS_HTML: &str = include_str!("../demo/status.html");
const STATUS_JS: &str = include_str!("../demo/status.js");
const STYLE_CSS: &str = include_str!("../demo/style.css");

async fn page(body: &'static str, content_type: &'static str) -> Response {
    crate::api::demo::asset(body, content_type)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(send_ok: u32, send_limited: u32, typing: u32, messages: u32) -> String {
        format!(
            "chatgate_events_total{{event=\"message:send\",outcome=\"ok\"}} {send_ok}\n\
             chatgate_events_total{{event=\"message:send\",outcome=\"RATE_LIMITED\"}} {send_limited}\n\
             chatgate_events_total{{event=\"typing\",outcome=\"ok\"}} {typing}\n\
             chatgate_messages_total {messages}\n"
        )
    }

    #[test]
    fn rates_need_a_second_then_follow_the_counters() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        assert_eq!(window.observe(start, &text(0, 0, 0, 0)), None);
        assert_eq!(
            window.observe(start + Duration::from_millis(500), &text(5, 0, 0, 5)),
            None
        );
        let rates = window
            .observe(start + Duration::from_secs(10), &text(20, 10, 30, 20))
            .expect("rates after 10 s");
        assert_eq!(rates.window_seconds, 10.0);
        assert_eq!(rates.events_per_second, 6.0);
        assert_eq!(rates.messages_per_second, 2.0);
        assert_eq!(rates.refused_per_second, 1.0);
        assert_eq!(rates.by_event.get("typing"), Some(&3.0));
        assert_eq!(rates.by_event.get("message:send"), Some(&3.0));
    }

    #[test]
    fn old_readings_leave_the_window() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        for second in 0..200u32 {
            window.observe(
                start + Duration::from_secs(u64::from(second)),
                &text(second, 0, 0, 0),
            );
        }
        assert!(window.samples.len() <= 62, "{}", window.samples.len());
        let rates = window
            .observe(start + Duration::from_secs(200), &text(200, 0, 0, 0))
            .expect("rates");
        assert!(rates.window_seconds <= 61.0);
        assert_eq!(rates.events_per_second, 1.0);
    }
}
