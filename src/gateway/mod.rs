//! The Socket.IO face of chatgate: authenticates handshakes, dispatches client
//! events to the [`ChatService`], one function per event, and answers with
//! acks (or `error` events). What an event changes for other connections is
//! delivered by [`crate::delivery`], which also names the rooms.

mod origin;

use std::sync::Arc;

use chatgate_sio::{
    BoxFuture, BroadcastOptions, ConnectError, DisconnectReason, Event, Namespace,
    NamespaceHandler, Socket,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::{Authenticator, Identity};
use crate::backend::SessionRecord;
use crate::delivery::{self, emit_logged, user_room};
use crate::domain::ChatService;
use crate::error::{ErrorCode, GatewayError, GatewayResult};
pub(crate) use origin::log_refused_origin;

use crate::protocol::{
    HistoryRequest, JoinRequest, LeaveRequest, PresenceUpdateRequest, SendMessageRequest,
    TypingRequest, UsersOnlineRequest, events, offset_of, parse_offset, parse_request,
};

/// What a client event answers: the fields of the success ack (`None`: a
/// bare `{ "status": "ok" }`), or the error.
type Answer = GatewayResult<Option<Value>>;

/// How long a CONNECT that met a temporary backend failure (Redis
/// unreachable) is held, waiting for the backend, before its transport is
/// closed: socket.io-client stops reconnecting after a `connect_error`, but
/// reconnects (with its backoff) after a closed transport.
const CONNECT_HOLD: std::time::Duration = std::time::Duration::from_secs(3);

/// Metric: CONNECTs held because the backend was unavailable (counted per
/// failed attempt).
const HANDSHAKES_HELD_METRIC: &str = "chatgate_handshakes_held_total";

/// What this node's confirmed sockets are subscribed to, by user: `(user
/// id, channel ids)` (each channel once per user). After Redis lost its
/// data, this is what the memberships were.
pub fn live_memberships(namespace: &chatgate_sio::Namespace) -> Vec<(String, Vec<String>)> {
    let mut by_user: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for socket in namespace
        .adapter()
        .local_sockets(&BroadcastOptions::default())
    {
        let Some(session) = socket.data::<Session>() else {
            continue; // not confirmed: subscribed to nothing yet
        };
        let channels = by_user.entry(session.identity.user_id.clone()).or_default();
        for room in socket.rooms() {
            if *room != *socket.id() && !delivery::is_user_room(&room) {
                channels.insert(room.to_string());
            }
        }
    }
    by_user
        .into_iter()
        .filter(|(_, channels)| !channels.is_empty())
        .map(|(user, channels)| (user, channels.into_iter().collect()))
        .collect()
}

/// What a confirmed socket carries: who it is, and its recoverable session.
#[derive(Debug)]
struct Session {
    identity: Identity,
    /// Its recoverable session (recovery on).
    recovery: Option<Recovery>,
}

/// A connection's recoverable session, as the connection keeps it: enough
/// to write the session down when the connection is lost, or to recover it
/// while the connection is half-open.
#[derive(Debug)]
struct Recovery {
    /// The session's private id.
    pid: Box<str>,
    /// See [`SessionRecord::start`].
    start: u64,
    /// See [`SessionRecord::joined`]; allocated at the first join. Boxed:
    /// 8 bytes on every idle connection instead of an empty map's 24.
    #[allow(clippy::box_collection)]
    joined: parking_lot::Mutex<Option<Box<std::collections::BTreeMap<String, u64>>>>,
}

impl Recovery {
    fn new(pid: &str, record: &SessionRecord) -> Recovery {
        let joined = (!record.joined.is_empty()).then(|| Box::new(record.joined.clone()));
        Recovery {
            pid: pid.into(),
            start: record.start,
            joined: parking_lot::Mutex::new(joined),
        }
    }

    /// The session's record, for the connection `socket` of `user_id`.
    fn record(&self, socket: &Socket, user_id: &str) -> SessionRecord {
        SessionRecord {
            sid: socket.id().to_owned(),
            user_id: user_id.to_owned(),
            start: self.start,
            joined: self.joined.lock().as_deref().cloned().unwrap_or_default(),
        }
    }
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
        // Presence counts connections: by this connection's own id, which a
        // recovered session's id is not.
        let connected = self.chat.connect(&user_id, socket.instance_id()).await?;
        for channel in &connected.channels {
            socket.join(channel.as_str());
        }
        let (recovery, recovered) = match self
            .session(socket, auth, &user_id, &connected.channels)
            .await
        {
            Ok(session) => session,
            Err(err) => {
                self.chat.disconnect(&user_id, socket.instance_id()).await;
                return Err(err);
            }
        };
        socket.set_data(Session { identity, recovery });
        tracing::info!(
            user_id,
            sid = socket.id(),
            channels = connected.channels.len(),
            recovered,
            "connected"
        );
        if let Some(presence) = connected.came_online {
            delivery::announce_presence(
                &socket.namespace(),
                &connected.channels,
                &presence,
                Some(socket.id()),
            );
        }
        Ok(())
    }

    /// Connection state recovery at CONNECT: continues the session the
    /// client names (`auth.pid`, `auth.offset`) when it can, else opens a
    /// new one. The socket has joined its rooms already, so what is
    /// published meanwhile waits for the CONNECT reply; the missed messages
    /// go before the reply, and waiting ones they cover are dropped.
    /// Returns the session (recovery on) and whether it was recovered.
    async fn session(
        &self,
        socket: &Socket,
        auth: &Value,
        user_id: &str,
        channels: &[String],
    ) -> GatewayResult<(Option<Recovery>, bool)> {
        if !self.chat.recovery_enabled() {
            return Ok((None, false));
        }
        let asked = auth
            .get("pid")
            .and_then(Value::as_str)
            .filter(|pid| is_session_id(pid));
        if let Some(pid) = asked {
            let offset = auth
                .get("offset")
                .and_then(Value::as_str)
                .and_then(parse_offset);
            // A backend that keeps only lost sessions: a half-open previous
            // connection on this node still holds it.
            let live = (!self.chat.sessions_durable())
                .then(|| live_session(&socket.namespace(), pid))
                .flatten();
            if let Some(recovered) = self
                .chat
                .recover_session(pid, user_id, offset, channels, live)
                .await?
            {
                // The session's previous connection may still be half-open,
                // here or on another node: it goes now.
                socket
                    .namespace()
                    .to(recovered.record.sid.as_str())
                    .disconnect_sockets(true);
                socket.restore_id(&recovered.record.sid);
                let last = recovered
                    .missed
                    .last()
                    .map(|m| m.id)
                    .or(offset)
                    .unwrap_or(recovered.record.start);
                for message in &recovered.missed {
                    emit_logged(socket.emit_before_connect_reply(
                        events::MESSAGE_NEW,
                        message,
                        &offset_of(message.id),
                    ));
                }
                socket.skip_held(move |text| message_new_offset(text).is_some_and(|id| id <= last));
                socket.set_pid(pid);
                metrics::counter!("chatgate_sessions_recovered_total").increment(1);
                return Ok((Some(Recovery::new(pid, &recovered.record)), true));
            }
        }
        let pid = chatgate_sio::random_id();
        let record = self.chat.open_session(&pid, socket.id(), user_id).await?;
        socket.set_pid(&pid);
        Ok((Some(Recovery::new(&pid, &record)), false))
    }

    /// Runs one client event, after counting it against the user's rate limit.
    async fn dispatch(
        &self,
        socket: &Socket,
        identity: &Identity,
        event: &Event,
        label: &'static str,
    ) -> Answer {
        let user_id = identity.user_id.as_str();
        self.chat.check_rate(user_id, label).await?;
        let payload = event.args.first().unwrap_or(&Value::Null);
        match event.name.as_str() {
            events::CHANNEL_JOIN => self.channel_join(socket, identity, payload).await,
            events::CHANNEL_LEAVE => self.channel_leave(socket, user_id, payload).await,
            events::MESSAGE_SEND => self.message_send(socket, user_id, payload).await,
            events::PRESENCE_UPDATE => self.presence_update(socket, user_id, payload).await,
            events::TYPING => self.typing(socket, user_id, payload).await,
            events::USERS_ONLINE => self.users_online(user_id, payload).await,
            events::CHANNEL_LIST => self.channel_list(user_id).await,
            events::CHANNEL_HISTORY => self.channel_history(user_id, payload).await,
            other => Err(GatewayError::invalid_payload(format!(
                "unknown event '{}'",
                truncate(other, 64)
            ))),
        }
    }

    /// `channel:join`: the joining connection gets the members in its ack;
    /// everyone else hears `channel:member-joined`.
    async fn channel_join(&self, socket: &Socket, identity: &Identity, payload: &Value) -> Answer {
        let joined = self
            .chat
            .join(identity, JoinRequest::parse(payload)?)
            .await?;
        // The ack promises that every tab of the user, on every node, gets
        // what is sent after it.
        let subscribed = delivery::member_joined(
            &socket.namespace(),
            &identity.user_id,
            &joined,
            Some(socket.id()),
        )
        .await;
        if !subscribed {
            return Err(GatewayError::service_unavailable());
        }
        if let Some(recovery) = socket.data::<Session>().and_then(|s| s.recovery.as_ref())
            && let Some(last) = self
                .chat
                .note_session_join(&recovery.pid, &joined.channel_id)
                .await
        {
            recovery
                .joined
                .lock()
                .get_or_insert_with(Box::default)
                .insert(joined.channel_id.clone(), last);
        }
        let mut ack = json!({
            "channelId": joined.channel_id,
            "members": joined.members,
            "online": joined.online,
        });
        if let (Some(missed), Some(fields)) = (joined.missed, ack.as_object_mut()) {
            fields.insert("missed".into(), json!(missed.messages));
            fields.insert("missedAll".into(), json!(missed.complete));
        }
        Ok(Some(ack))
    }

    /// `channel:leave`: the leaving connection has its ack; the channel and
    /// the user's other tabs hear `channel:member-left`.
    async fn channel_leave(&self, socket: &Socket, user_id: &str, payload: &Value) -> Answer {
        let channel_id = self
            .chat
            .leave(user_id, LeaveRequest::parse(payload)?)
            .await?;
        delivery::member_left(&socket.namespace(), user_id, &channel_id, Some(socket.id()));
        Ok(Some(json!({ "channelId": channel_id })))
    }

    /// `message:send`: the sender gets id and time in its ack; the rest of
    /// the channel gets `message:new`.
    async fn message_send(&self, socket: &Socket, user_id: &str, payload: &Value) -> Answer {
        let request: SendMessageRequest = parse_request(events::MESSAGE_SEND, payload)?;
        let sent = self
            .chat
            .send_message(user_id, request, Some(socket.id()))
            .await?;
        if !sent.published {
            emit_logged(delivery::deliver_message(
                &socket.namespace(),
                &sent.message,
                Some(socket.id()),
            ));
        }
        let message = sent.message;
        metrics::counter!("chatgate_messages_total").increment(1);
        Ok(Some(json!({
            "id": message.id,
            "channelId": message.channel_id,
            "ts": message.ts,
        })))
    }

    /// `presence:update`: announced in every channel of the user, to all of
    /// its connections too.
    async fn presence_update(&self, socket: &Socket, user_id: &str, payload: &Value) -> Answer {
        let request: PresenceUpdateRequest = parse_request(events::PRESENCE_UPDATE, payload)?;
        let (presence, channels) = self.chat.set_presence(user_id, request.status).await?;
        delivery::announce_presence(&socket.namespace(), &channels, &presence, None);
        Ok(None)
    }

    /// `typing`: relayed to the rest of the channel.
    async fn typing(&self, socket: &Socket, user_id: &str, payload: &Value) -> Answer {
        let request: TypingRequest = parse_request(events::TYPING, payload)?;
        let typing = self.chat.typing(user_id, request).await?;
        delivery::deliver_typing(&socket.namespace(), &typing, Some(socket.id()));
        Ok(None)
    }

    /// `users:online`: answered in the ack only.
    async fn users_online(&self, user_id: &str, payload: &Value) -> Answer {
        let users = self
            .chat
            .users_online(user_id, UsersOnlineRequest::parse(payload)?)
            .await?;
        Ok(Some(json!({ "users": users })))
    }

    /// `channel:list`: answered in the ack only.
    async fn channel_list(&self, user_id: &str) -> Answer {
        let channels = self.chat.channel_list(user_id).await?;
        Ok(Some(json!({ "channels": channels })))
    }

    /// `channel:history` (v1.2): a page of the channel's history, for members.
    async fn channel_history(&self, user_id: &str, payload: &Value) -> Answer {
        let request = HistoryRequest::parse(payload)?;
        let channel_id = request.channel_id.clone();
        let page = self.chat.history(user_id, request).await?;
        Ok(Some(json!({
            "channelId": channel_id,
            "messages": page.messages,
            "hasMore": page.has_more,
        })))
    }
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
            let held_until = tokio::time::Instant::now() + CONNECT_HOLD;
            loop {
                let err = match self.connect(socket, auth).await {
                    Ok(()) => return Ok(()),
                    Err(err) if err.code == ErrorCode::ServiceUnavailable => err,
                    Err(err) => {
                        tracing::info!(
                            code = %err.code,
                            reason = %err.message,
                            sid = socket.id(),
                            "handshake refused"
                        );
                        metrics::counter!("chatgate_handshakes_refused_total", "code" => err.code.as_str())
                            .increment(1);
                        return Err(ConnectError {
                            message: err.code.as_str().to_owned(),
                            data: Some(
                                json!({ "code": err.code.as_str(), "message": err.message }),
                            ),
                        });
                    }
                };
                // Temporary: hold the CONNECT until the backend answers again.
                tracing::debug!(code = %err.code, sid = socket.id(), "handshake held: backend unavailable");
                metrics::counter!(HANDSHAKES_HELD_METRIC).increment(1);
                let recovered =
                    tokio::time::timeout_at(held_until, self.chat.backend_recovered()).await;
                if recovered.is_err() {
                    tracing::info!(
                        sid = socket.id(),
                        "backend still unavailable: closing the transport so the client retries"
                    );
                    metrics::counter!("chatgate_handshakes_closed_total").increment(1);
                    socket.close_transport();
                    // The engine sees its connection closing: no CONNECT
                    // reply, no connect_error.
                    return Ok(());
                }
            }
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
            if let Some(recovery) = &session.recovery {
                let record = recovery.record(socket, user_id);
                self.chat.lose_session(&recovery.pid, &record).await;
            }
            if let Some(offline) = self.chat.disconnect(user_id, socket.instance_id()).await {
                // Membership outlives connections: announce, do not leave.
                delivery::announce_presence_change(&socket.namespace(), &self.chat, offline).await;
            }
        })
    }
}

/// The session `pid` as a live connection of this node keeps it (a scan:
/// only for a recovery attempt while the previous connection seems open).
fn live_session(namespace: &Namespace, pid: &str) -> Option<SessionRecord> {
    namespace.all().local_sockets().iter().find_map(|socket| {
        let session = socket.data::<Session>()?;
        let recovery = session.recovery.as_ref()?;
        (*recovery.pid == *pid).then(|| recovery.record(socket, &session.identity.user_id))
    })
}

/// Whether `pid` could be a session id this server handed out (22
/// base64url characters); anything else is not looked up.
fn is_session_id(pid: &str) -> bool {
    pid.len() == 22
        && pid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The recovery offset of a `message:new` packet (Socket.IO packet text
/// `2["message:new",{...},"<offset>"]`), `None` for any other packet.
fn message_new_offset(text: &str) -> Option<u64> {
    let args = text
        .strip_prefix("2[\"message:new\",")?
        .strip_suffix("\"]")?;
    let (_, offset) = args.rsplit_once('"')?;
    parse_offset(offset)
}

/// Live sessions are refreshed by their node every third of the recovery
/// window, so a session outlives a crash of its node by the whole window
/// and no more than a third longer.
pub fn spawn_session_refresher(namespace: Namespace, chat: ChatService) {
    if !chat.recovery_enabled() || !chat.sessions_durable() {
        return;
    }
    let every = chat.session_refresh_interval();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let pids: Vec<String> = namespace
                .all()
                .local_sockets()
                .iter()
                .filter_map(|socket| {
                    let recovery = socket.data::<Session>()?.recovery.as_ref()?;
                    Some(recovery.pid.to_string())
                })
                .collect();
            if !pids.is_empty() {
                chat.refresh_sessions(&pids).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_held_message_packets() {
        assert_eq!(
            message_new_offset(r#"2["message:new",{"id":5,"text":"a\"]"},"0000000000000005"]"#),
            Some(5)
        );
        assert_eq!(message_new_offset(r#"2["typing",{"x":1}]"#), None);
        assert_eq!(message_new_offset(r#"2["message:new",{"id":5}]"#), None);
        assert!(is_session_id("abcdefghijklmnopqrstuv"));
        assert!(!is_session_id("../../etc/passwd"));
    }
}
