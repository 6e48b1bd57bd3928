//! chatgate's HTTP surfaces besides Socket.IO: the server API for app
//! backends, the operator views and the demo chat page.
//!
//! | path | what | access |
//! |---|---|---|
//! | `/api/v1/...` ([`v1`]) | server API: publish, membership, presence, disconnect | `Authorization: Bearer <API_KEY>`; 404 without `API_KEY` |
//! | `/metrics` ([`metrics`]) | Prometheus text format | open |
//! | `/status`, `/status.html` ([`status`]) | node, users, top channels, event rates | the API key when set; open in dev mode without one; 404 otherwise |
//! | `/` ([`demo`]) | demo chat page | `DEMO_PAGE` (on in dev mode) |
//!
//! Every call of `/api/v1` logs one line (method, route template, status,
//! duration), never the key, a body or the path's values.
//!
//! Besides one file per surface: [`context`] holds what they all act on,
//! [`snapshot`] the one walk over this node's sockets they share, and
//! [`rates`] the event rates of `/status`. This file only assembles the
//! routes, so every surface imports downward.

pub mod auth;
pub mod context;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod rates;
pub mod snapshot;
pub mod status;
pub mod v1;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use chatgate_sio::{Io, Namespace};

pub use self::context::Context;
use crate::config::Config;
use crate::domain::ChatService;

/// Largest request body the API reads (a message of 4000 characters of up to
/// 4 bytes each, with room for the rest of the JSON).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The routes of every surface of this module for `config`, to be merged into
/// the server's app. Also installs the metrics recorder (once per process).
pub fn routes(config: &Config, io: &Io, namespace: Namespace, chat: ChatService) -> Router {
    crate::metrics::install();
    let context = Context::new(config, io.clone(), namespace, chat);
    let mut router = Router::new()
        .route("/metrics", get(metrics::metrics_endpoint))
        .merge(status::routes(&context));
    router = match context.api_key() {
        Some(_) => router.merge(v1::router(&context)),
        None => router.merge(v1::disabled_router()),
    };
    if config.demo_page {
        router = router.merge(demo::router(config));
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(context)
}
