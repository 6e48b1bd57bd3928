//! The Socket.IO face of chatgate: authenticates handshakes, dispatches client
//! events to the [`ChatService`], answers with acks (or `error` events) and
//! delivers server events through the engine's rooms.
//!
//! Rooms: a channel's room is named exactly as the channel (as in the seed, so
//! an app backend emitting to a room reaches the channel), and every socket of
//! a user is in the user's room, [`user_room`], which a channel id can never
//! equal. Membership operations act on the user's room, so all tabs of a user
//! join or leave together.

use std::sync::Arc;

use chatgate_sio::{
    BoxFuture, ConnectError, DisconnectReason, Event, Namespace, NamespaceHandler, Socket,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::{Authenticator, Identity};
use crate::domain::ChatService;
use crate::error::{GatewayError, GatewayResult};
use crate::protocol::{
    JoinRequest, LeaveRequest, MemberEvent, PresenceInfo, PresenceUpdateRequest,
    SendMessageRequest, TypingRequest, UsersOnlineRequest, events, parse_request,
};

/// The room holding every socket of `user_id`. `@` is not allowed in channel
/// ids, so this never names a channel's room.
pub fn user_room(user_id: &str) -> String {
    format!("@{user_id}")
}

/// What a confirmed socket carries: who it is.
#[derive(Debug)]
struct Session {
    identity: Identity,
}

/// The namespace handler of `/`.
pub struct Gateway {
    chat: ChatService,
    authenticator: Authenticator,
}

impl Gateway {
    /// A gateway serving `chat`, admitting users through `authenticator`.
    pub fn new(chat: ChatService, authenticator: Authenticator) -> Arc<Self> {
        Arc::new(Gateway {
            chat,
            authenticator,
        })
    }

    async fn connect(&self, socket: &Socket, auth: &Value) -> GatewayResult<()> {
        let identity = self.authenticator.authenticate(auth)?;
        let user_id = identity.user_id.clone();
        // Join the user's room before reading memberships: a join made
        // concurrently by another tab then reaches this socket one way or the other.
        socket.join(user_room(&user_id));
        let connected = self.chat.connect(&user_id, socket.id()).await?;
        for channel in &connected.channels {
            socket.join(channel.as_str());
        }
        socket.set_data(Session { identity });
        tracing::info!(
            user_id,
            sid = socket.id(),
            channels = connected.channels.len(),
            "connected"
        );
        if let Some(presence) = connected.came_online {
            announce_presence(
                &socket.namespace(),
                &connected.channels,
                &presence,
                Some(socket.id()),
            );
        }
        Ok(())
    }

    /// Runs one client event; `Ok` carries the fields of the success ack.
    async fn dispatch(
        &self,
        socket: &Socket,
        identity: &Identity,
        event: &Event,
        label: &'static str,
    ) -> GatewayResult<Option<Value>> {
        let user_id = identity.user_id.as_str();
        self.chat.check_rate(user_id, label).await?;
        let payload = event.args.first().unwrap_or(&Value::Null);
        let namespace = socket.namespace();
        match event.name.as_str() {
            events::CHANNEL_JOIN => {
                let joined = self
                    .chat
                    .join(identity, JoinRequest::parse(payload)?)
                    .await?;
                // Subscribe every tab of the user, also on re-join (repairs drift).
                namespace
                    .to(user_room(user_id))
                    .sockets_join(joined.channel_id.as_str());
                if joined.newly_joined {
                    let member = MemberEvent {
                        channel_id: joined.channel_id.clone(),
                        user_id: user_id.to_owned(),
                    };
                    // The joining connection has its ack; everyone else hears it.
                    emit_logged(
                        namespace
                            .to(joined.channel_id.as_str())
                            .except_socket(socket.id())
                            .emit(events::CHANNEL_MEMBER_JOINED, &member),
                    );
                }
                Ok(Some(json!({
                    "channelId": joined.channel_id,
                    "members": joined.members,
                    "online": joined.online,
                })))
            }
            events::CHANNEL_LEAVE => {
                let channel_id = self
                    .chat
                    .leave(user_id, LeaveRequest::parse(payload)?)
                    .await?;
                let member = MemberEvent {
                    channel_id: channel_id.clone(),
                    user_id: user_id.to_owned(),
                };
                // Announce before unsubscribing, so the user's other tabs hear
                // it too; the leaving connection has its ack.
                emit_logged(
                    namespace
                        .to(channel_id.as_str())
                        .to(user_room(user_id))
                        .except_socket(socket.id())
                        .emit(events::CHANNEL_MEMBER_LEFT, &member),
                );
                namespace
                    .to(user_room(user_id))
                    .sockets_leave(channel_id.as_str());
                Ok(Some(json!({ "channelId": channel_id })))
            }
            events::MESSAGE_SEND => {
                let request: SendMessageRequest = parse_request(events::MESSAGE_SEND, payload)?;
                let message = self.chat.send_message(user_id, request).await?;
                emit_logged(
                    namespace
                        .to(message.channel_id.as_str())
                        .except_socket(socket.id())
                        .emit(events::MESSAGE_NEW, &message),
                );
                metrics::counter!("chatgate_messages_total").increment(1);
                Ok(Some(json!({
                    "id": message.id,
                    "channelId": message.channel_id,
                    "ts": message.ts,
                })))
            }
            events::PRESENCE_UPDATE => {
                let request: PresenceUpdateRequest =
                    parse_request(events::PRESENCE_UPDATE, payload)?;
                let (presence, channels) = self.chat.set_presence(user_id, request.status).await?;
                announce_presence(&namespace, &channels, &presence, None);
                Ok(None)
            }
            events::TYPING => {
                let request: TypingRequest = parse_request(events::TYPING, payload)?;
                let typing = self.chat.typing(user_id, request).await?;
                emit_logged(
                    namespace
                        .to(typing.channel_id.as_str())
                        .except_socket(socket.id())
                        .emit(events::TYPING, &typing),
                );
                Ok(None)
            }
            events::USERS_ONLINE => {
                let users = self
                    .chat
                    .users_online(user_id, UsersOnlineRequest::parse(payload)?)
                    .await?;
                Ok(Some(json!({ "users": users })))
            }
            events::CHANNEL_LIST => {
                let channels = self.chat.channel_list(user_id).await?;
                Ok(Some(json!({ "channels": channels })))
            }
            other => Err(GatewayError::invalid_payload(format!(
                "unknown event '{}'",
                truncate(other, 64)
            ))),
        }
    }
}

/// Sends `presence` to every channel in `channels` (each socket once),
/// optionally leaving out one socket.
fn announce_presence(
    namespace: &Namespace,
    channels: &[String],
    presence: &PresenceInfo,
    except: Option<&str>,
) {
    let Some((first, rest)) = channels.split_first() else {
        return;
    };
    let mut operator = namespace.to(first.as_str());
    for channel in rest {
        operator = operator.to(channel.as_str());
    }
    if let Some(sid) = except {
        operator = operator.except_socket(sid);
    }
    emit_logged(operator.emit(events::PRESENCE_UPDATE, presence));
}

/// The name of a client event as a static label (rate-limit key, metric
/// label); every unknown name shares `"unknown"`, so a client cannot create
/// unbounded keys.
fn event_label(name: &str) -> &'static str {
    events::CLIENT_EVENTS
        .iter()
        .copied()
        .find(|known| *known == name)
        .unwrap_or("unknown")
}

/// A failed emit is an encoding bug, not a client's fault: log it.
fn emit_logged<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(err) = result {
        tracing::error!(%err, "emit failed");
    }
}

fn truncate(text: &str, max_chars: usize) -> &str {
    text.char_indices()
        .nth(max_chars)
        .map_or(text, |(at, _)| &text[..at])
}

/// The success ack: `{ "status": "ok", ...fields }`.
fn success_object(fields: Option<Value>) -> Value {
    let mut object = json!({ "status": "ok" });
    if let (Some(Value::Object(extra)), Some(map)) = (fields, object.as_object_mut()) {
        map.extend(extra);
    }
    object
}

fn reply<T: Serialize>(socket: &Socket, event: Event, outcome: &T, is_failure: bool) {
    match event.ack {
        Some(ack) => emit_logged(ack.send(outcome)),
        None if is_failure => emit_logged(socket.emit(events::ERROR, outcome)),
        None => {}
    }
}

impl NamespaceHandler for Gateway {
    fn on_connect<'a>(
        &'a self,
        socket: &'a Socket,
        auth: &'a Value,
    ) -> BoxFuture<'a, Result<(), ConnectError>> {
        Box::pin(async move {
            self.connect(socket, auth).await.map_err(|err| {
                tracing::info!(code = %err.code, sid = socket.id(), "handshake refused");
                metrics::counter!("chatgate_handshakes_refused_total", "code" => err.code.as_str())
                    .increment(1);
                ConnectError {
                    message: err.code.as_str().to_owned(),
                    data: Some(json!({ "code": err.code.as_str(), "message": err.message })),
                }
            })
        })
    }

    fn on_event<'a>(&'a self, socket: &'a Socket, event: Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(session) = socket.data::<Session>() else {
                // Only confirmed sockets get events; nothing to answer for.
                return;
            };
            let event_label = event_label(&event.name);
            let outcome = self
                .dispatch(socket, &session.identity, &event, event_label)
                .await;
            match outcome {
                Ok(fields) => {
                    metrics::counter!("chatgate_events_total", "event" => event_label, "outcome" => "ok").increment(1);
                    reply(socket, event, &success_object(fields), false);
                }
                Err(err) => {
                    metrics::counter!("chatgate_events_total", "event" => event_label, "outcome" => err.code.as_str()).increment(1);
                    tracing::info!(
                        user_id = session.identity.user_id,
                        event = event_label,
                        code = %err.code,
                        "event refused"
                    );
                    reply(socket, event, &err.to_failure_object(), true);
                }
            }
        })
    }

    fn on_disconnect<'a>(
        &'a self,
        socket: &'a Socket,
        reason: DisconnectReason,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(session) = socket.data::<Session>() else {
                return;
            };
            let user_id = session.identity.user_id.as_str();
            tracing::info!(
                user_id,
                sid = socket.id(),
                reason = reason.as_str(),
                "disconnected"
            );
            if let Some(offline) = self.chat.disconnect(user_id, socket.id()).await {
                // Membership outlives connections: announce, do not leave.
                match self.chat.user_channels(user_id).await {
                    Ok(channels) => {
                        announce_presence(&socket.namespace(), &channels, &offline, None)
                    }
                    Err(err) => tracing::warn!(user_id, %err, "offline presence not announced"),
                }
            }
        })
    }
}
