//! `GET /metrics`: every metric in the Prometheus text format, after
//! refreshing the gauges that describe current state (computed when scraped
//! rather than tracked on the hot path). The names and the recorder are
//! [`crate::metrics`]'s.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::context::Context;
use super::snapshot::NodeSnapshot;
use crate::metrics as metrics_names;

/// The current text of every metric (Prometheus text format 0.0.4), after
/// refreshing the gauges computed at scrape time.
pub async fn render(context: &Context) -> String {
    let handle = crate::metrics::install();
    let snapshot = NodeSnapshot::take(context);
    metrics::gauge!(metrics_names::NODES).set(context.chat.live_nodes() as f64);
    metrics::gauge!(metrics_names::SOCKETS).set(snapshot.sockets as f64);
    metrics::gauge!(metrics_names::CHANNELS_WITH_SUBSCRIBERS).set(snapshot.channels.len() as f64);
    // On a backend failure (logged by the domain) the gauge keeps its last value.
    if let Ok(users) = context.chat.online_users().await {
        metrics::gauge!(metrics_names::USERS_ONLINE).set(users.len() as f64);
    }
    crate::metrics::collect_process_metrics();
    handle.run_upkeep();
    handle.render()
}

/// `GET /metrics`.
pub(crate) async fn metrics_endpoint(State(context): State<Context>) -> Response {
    let text = render(&context).await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
