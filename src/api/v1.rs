//! The server HTTP API, version 1, for app backends: `/api/v1/...`.
//!
//! JSON in and out; every answer is `{ "status": "ok", ...fields }` or the
//! contract's failure object `{ "status": "error", "code", "message" }` with
//! a matching HTTP status (see [`super::error::http_status`]). Deliveries are
//! the gateway's, through [`crate::delivery`]: a published message reaches the channel's connections as
//! `message:new`, membership changes subscribe or unsubscribe every live
//! connection of the user and are announced with `channel:member-joined` /
//! `channel:member-left`.
//!
//! [`ROUTES`] is the one list of routes: the router is built from it and a
//! test checks it against `docs/openapi.yaml`.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::require_api_key;
use super::context::Context;
use super::error::ApiError;
use super::snapshot::NodeSnapshot;
use crate::delivery::{self, user_room};
use crate::domain::admin::Publish;
use crate::error::ErrorCode;
use crate::protocol::PresenceStatus;

/// The prefix of every route of this version.
pub const PREFIX: &str = "/api/v1";

/// One route of the API: method and path template (`{name}` parameters, as in
/// OpenAPI), relative to nothing (the full path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: &'static str,
    /// The full path template, e.g. `/api/v1/channels/{channelId}/messages`.
    pub path: &'static str,
}

const fn route(method: &'static str, path: &'static str) -> RouteInfo {
    RouteInfo { method, path }
}

/// Every route of the API.
pub const ROUTES: &[RouteInfo] = &[
    route("GET", "/api/v1/channels"),
    route("POST", "/api/v1/channels/{channelId}/messages"),
    route("GET", "/api/v1/channels/{channelId}/messages"),
    route("GET", "/api/v1/channels/{channelId}/members"),
    route("PUT", "/api/v1/channels/{channelId}/members/{userId}"),
    route("DELETE", "/api/v1/channels/{channelId}/members/{userId}"),
    route("GET", "/api/v1/channels/{channelId}/online"),
    route("GET", "/api/v1/online-users"),
    route("GET", "/api/v1/users/{userId}"),
    route("GET", "/api/v1/users/{userId}/channels"),
    route("POST", "/api/v1/users/{userId}/disconnect"),
];

/// The handler of each entry of [`ROUTES`], in the same order.
fn handler(info: &RouteInfo) -> Option<MethodRouter<Context>> {
    Some(match (info.method, info.path) {
        ("GET", "/api/v1/channels") => get(list_channels),
        ("POST", "/api/v1/channels/{channelId}/messages") => post(publish),
        ("GET", "/api/v1/channels/{channelId}/messages") => get(channel_messages),
        ("GET", "/api/v1/channels/{channelId}/members") => get(channel_members),
        ("PUT", "/api/v1/channels/{channelId}/members/{userId}") => put(add_member),
        ("DELETE", "/api/v1/channels/{channelId}/members/{userId}") => delete(remove_member),
        ("GET", "/api/v1/channels/{channelId}/online") => get(channel_online),
        ("GET", "/api/v1/online-users") => get(online_users),
        ("GET", "/api/v1/users/{userId}") => get(user_status),
        ("GET", "/api/v1/users/{userId}/channels") => get(user_channels),
        ("POST", "/api/v1/users/{userId}/disconnect") => post(disconnect_user),
        _ => return None,
    })
}

/// The API, behind the key check and the per-call log line.
pub(crate) fn router(context: &Context) -> Router<Context> {
    let mut router = Router::new();
    for info in ROUTES {
        match handler(info) {
            Some(method_router) => router = router.route(info.path, method_router),
            None => tracing::error!(path = info.path, "API route without a handler"),
        }
    }
    // Unknown paths under the prefix answer in the API's shape, after the key
    // check (so the key is needed to learn which routes exist).
    // The key check wraps every route, 404 and 405 answers included (route
    // layers: the app's fallback for other paths stays untouched); the log
    // line wraps the key check, so refused calls are logged too.
    router
        .method_not_allowed_fallback(method_not_allowed)
        .route(&format!("{PREFIX}/{{*rest}}"), axum::routing::any(no_route))
        .route(PREFIX, axum::routing::any(no_route))
        .route_layer(middleware::from_fn_with_state(
            context.clone(),
            require_api_key,
        ))
        .route_layer(middleware::from_fn(log_call))
}

/// `/api/v1` when no `API_KEY` is configured: 404, saying how to turn it on.
pub(crate) fn disabled_router() -> Router<Context> {
    async fn disabled() -> ApiError {
        ApiError::not_found("the server API is off: set API_KEY to turn it on")
    }
    Router::new()
        .route(PREFIX, axum::routing::any(disabled))
        .route(&format!("{PREFIX}/{{*rest}}"), axum::routing::any(disabled))
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such API route (see docs/api.md)")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        error: crate::error::GatewayError::invalid_payload("method not allowed on this route"),
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
    }
}

/// Logs one line per call and records the API metrics. Only the route
/// template is logged: ids in the path, bodies and keys never are.
async fn log_call(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    tracing::info!(
        method = %method,
        route,
        status,
        duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "api call"
    );
    metrics::counter!(
        crate::metrics::API_REQUESTS,
        "route" => route.clone(),
        "method" => method.as_str().to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(crate::metrics::API_REQUEST_DURATION, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// The success answer: `{ "status": "ok", ...fields }`.
fn ok(fields: Value) -> Json<Value> {
    let mut object = json!({ "status": "ok" });
    if let (Value::Object(extra), Some(map)) = (fields, object.as_object_mut()) {
        map.extend(extra);
    }
    Json(object)
}

fn path<T>(extracted: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    extracted
        .map(|Path(value)| value)
        .map_err(|rejection| ApiError::from_path(&rejection))
}

fn body<T: DeserializeOwned>(extracted: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = extracted.map_err(|rejection| ApiError::from_body(&rejection))?;
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidPayload,
            format!("the body is not the expected JSON: {err}"),
        )
    })
}

/// The body of `POST /api/v1/channels/{channelId}/messages`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PublishBody {
    /// The message text, validated like a client's.
    text: String,
    /// The sender shown to clients; `"system"` when absent.
    #[serde(default)]
    user_id: Option<String>,
    /// Echoed in `message:new`.
    #[serde(default)]
    client_msg_id: Option<String>,
}

/// How long a publish waits for the cross-node publisher (which retries a
/// failing Redis) before answering `SERVICE_UNAVAILABLE`.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `POST /api/v1/channels/{channelId}/messages`: publish into a channel:
/// 200 only once the message went out to the other nodes too.
async fn publish(
    State(context): State<Context>,
    channel: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let channel_id = path(channel)?;
    let request: PublishBody = body(raw)?;
    let sent = context
        .chat
        .publish(Publish {
            channel_id,
            sender: request.user_id,
            text: request.text,
            client_msg_id: request.client_msg_id,
        })
        .await?;
    // Nobody got an ack: the sender's own connections get it too.
    // Published by Redis already (in id order), or delivered here and
    // queued for the other nodes: never 200 for a message they did not get.
    if !sent.published {
        let (emitted, published) = crate::cluster::confirming(|| {
            delivery::deliver_message(&context.namespace, &sent.message, None)
        });
        if let Err(err) = emitted {
            tracing::error!(%err, "emit failed");
            return Err(crate::error::GatewayError::internal().into());
        }
        if !published.wait(PUBLISH_TIMEOUT).await {
            tracing::warn!(
                channel_id = sent.message.channel_id,
                "message not published to other nodes; answering SERVICE_UNAVAILABLE"
            );
            return Err(crate::error::GatewayError::service_unavailable().into());
        }
    }
    let message = sent.message;
    metrics::counter!(crate::metrics::API_MESSAGES_PUBLISHED).increment(1);
    Ok(ok(json!({
        "id": message.id,
        "channelId": message.channel_id,
        "userId": message.user_id,
        "ts": message.ts,
    })))
}

/// `PUT /api/v1/channels/{channelId}/members/{userId}`: make a user a member.
async fn add_member(
    State(context): State<Context>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (channel_id, user_id) = path(ids)?;
    let joined = context.chat.add_member(&user_id, &channel_id).await?;
    // Nobody got an ack: the user's own connections hear it too. The answer
    // promises their subscription on every node, as a join ack does.
    if !delivery::member_joined(&context.namespace, &user_id, &joined, None).await {
        return Err(crate::error::GatewayError::service_unavailable().into());
    }
    Ok(ok(json!({
        "channelId": joined.channel_id,
        "userId": user_id,
        "joined": joined.newly_joined,
        "members": joined.members,
        "online": joined.online,
    })))
}

/// `DELETE /api/v1/channels/{channelId}/members/{userId}`: end a membership.
async fn remove_member(
    State(context): State<Context>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (channel_id, user_id) = path(ids)?;
    let channel_id = context.chat.remove_member(&user_id, &channel_id).await?;
    // Nobody got an ack: the user's own connections hear it too.
    delivery::member_left(&context.namespace, &user_id, &channel_id, None);
    Ok(ok(json!({ "channelId": channel_id, "userId": user_id })))
}

/// `GET /api/v1/channels/{channelId}/members`: members and who of them is online.
async fn channel_members(
    State(context): State<Context>,
    channel: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let channel_id = path(channel)?;
    let (members, online) = context.chat.channel_members(&channel_id).await?;
    let online: Vec<String> = online.into_iter().map(|p| p.user_id).collect();
    Ok(ok(json!({
        "channelId": channel_id,
        "members": members,
        "online": online,
    })))
}

/// `GET /api/v1/channels/{channelId}/online`: presence of the online members.
async fn channel_online(
    State(context): State<Context>,
    channel: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let channel_id = path(channel)?;
    let (_, online) = context.chat.channel_members(&channel_id).await?;
    Ok(ok(json!({ "channelId": channel_id, "users": online })))
}

/// `GET /api/v1/online-users`: every online user, cluster-wide.
async fn online_users(State(context): State<Context>) -> Result<Json<Value>, ApiError> {
    let users = context.chat.online_users().await?;
    Ok(ok(json!({ "users": users })))
}

/// `GET /api/v1/users/{userId}`: presence, connections and channels of a user.
async fn user_status(
    State(context): State<Context>,
    user: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user_id = path(user)?;
    let presence = context.chat.user_presence(&user_id).await?;
    let channels = context.chat.user_channels(&user_id).await?;
    let connections = context.chat.connection_count(&user_id).await?;
    let (status, last_seen) = match &presence {
        Some(p) => (p.status, Some(p.last_seen)),
        None => (PresenceStatus::Offline, None),
    };
    Ok(ok(json!({
        "userId": user_id,
        "presence": status,
        "lastSeen": last_seen,
        "connections": connections,
        "channels": channels,
    })))
}

/// `GET /api/v1/users/{userId}/channels`: the user's channels, newest activity first.
async fn user_channels(
    State(context): State<Context>,
    user: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user_id = path(user)?;
    crate::domain::admin::validate_user_id(&user_id)?;
    let channels = context.chat.channel_list(&user_id).await?;
    Ok(ok(json!({ "userId": user_id, "channels": channels })))
}

/// `POST /api/v1/users/{userId}/disconnect`: close every connection of a user.
async fn disconnect_user(
    State(context): State<Context>,
    user: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user_id = path(user)?;
    crate::domain::admin::validate_user_id(&user_id)?;
    let sockets = context.namespace.to(user_room(&user_id));
    let disconnected = sockets.local_sockets().len();
    // A Socket.IO DISCONNECT first: clients see "io server disconnect" and
    // do not reconnect by themselves.
    sockets.disconnect_sockets(true);
    tracing::info!(user_id, disconnected, "api: user disconnected");
    Ok(ok(
        json!({ "userId": user_id, "disconnected": disconnected }),
    ))
}

/// Query of `GET /api/v1/channels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// At most this many channels (default 100, at most 1000).
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/v1/channels`: channels with subscribed connections on this
/// node, newest activity first, with member and online counts.
async fn list_channels(
    State(context): State<Context>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidPayload,
            format!("bad query: {}", rejection.body_text()),
        )
    })?;
    let limit = match query.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidPayload,
                "limit must be between 1 and 1000",
            ));
        }
    };
    let snapshot = NodeSnapshot::take(&context);
    let ids: Vec<String> = snapshot.channels.into_keys().collect();
    let mut channels = context.chat.channel_summaries(ids).await?;
    channels.truncate(limit);
    Ok(ok(json!({ "channels": channels })))
}

/// Query of `GET /api/v1/channels/{channelId}/messages`, checked like a
/// `channel:history` payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesQuery {
    /// Only messages with a lower id (decimal digits); absent: the newest.
    #[serde(default)]
    before: Option<String>,
    /// At most this many (1 to 100, default 50).
    #[serde(default)]
    limit: Option<String>,
}

/// `GET /api/v1/channels/{channelId}/messages`: a page of the channel's
/// history, as `channel:history` answers it (no membership needed).
async fn channel_messages(
    State(context): State<Context>,
    channel: Result<Path<String>, PathRejection>,
    query: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let channel_id = path(channel)?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidPayload,
            format!("bad query: {}", rejection.body_text()),
        )
    })?;
    let request = crate::protocol::HistoryRequest::from_parts(
        channel_id,
        query.before.map(Value::String).as_ref(),
        query.limit.map(Value::String).as_ref(),
    )?;
    let channel_id = request.channel_id.clone();
    let page = context.chat.channel_messages(request).await?;
    Ok(ok(json!({
        "channelId": channel_id,
        "messages": page.messages,
        "hasMore": page.has_more,
    })))
}

/// Makes [`Method`] and [`RouteInfo::method`] comparable in tests and docs.
pub fn method_of(info: &RouteInfo) -> Option<Method> {
    Method::from_bytes(info.method.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn every_route_has_a_handler_and_the_prefix() {
        for info in ROUTES {
            assert!(handler(info).is_some(), "{info:?}");
            assert!(info.path.starts_with(PREFIX), "{info:?}");
            assert!(method_of(info).is_some(), "{info:?}");
        }
    }

    #[test]
    fn unmatched_routes_are_refused_in_the_api_shape() {
        let response = ApiError::not_found("x").into_response();
        assert_eq!(response.status(), axum::http::StatusCode::NOT_FOUND);
    }
}
