//! The wire contract's vocabulary: event names and payload shapes.
//!
//! This is the only place where client-visible event names and payload field
//! names are spelled (see `docs/wire-contract.md`). Changing anything here is a
//! protocol change; `tests` at the bottom pin the names.
//!
//! Client payloads are parsed from `serde_json::Value` with [`parse_request`],
//! which turns every shape or type mistake into `INVALID_PAYLOAD` with a
//! message naming what was wrong. Unknown extra fields are ignored so that
//! newer clients keep working with this server.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{GatewayError, GatewayResult};

/// Event names of the wire contract.
pub mod events {
    /// Client -> server: join a channel.
    pub const CHANNEL_JOIN: &str = "channel:join";
    /// Client -> server: leave a channel.
    pub const CHANNEL_LEAVE: &str = "channel:leave";
    /// Client -> server: send a message to a channel.
    pub const MESSAGE_SEND: &str = "message:send";
    /// Client -> server: set one's presence status; server -> client: a user's presence changed.
    pub const PRESENCE_UPDATE: &str = "presence:update";
    /// Client -> server: typing started/stopped; server -> client: someone is typing.
    pub const TYPING: &str = "typing";
    /// Client -> server: list online users (all, or of one channel).
    pub const USERS_ONLINE: &str = "users:online";
    /// Client -> server: list one's channels, newest activity first.
    pub const CHANNEL_LIST: &str = "channel:list";
    /// Server -> client: a new message in a channel.
    pub const MESSAGE_NEW: &str = "message:new";
    /// Server -> client: a user became a member of a channel.
    pub const CHANNEL_MEMBER_JOINED: &str = "channel:member-joined";
    /// Server -> client: a user stopped being a member of a channel.
    pub const CHANNEL_MEMBER_LEFT: &str = "channel:member-left";
    /// Server -> client: a failure for a client event sent without an ack callback.
    pub const ERROR: &str = "error";

    /// Every client -> server event, for rate-limit keys and validation.
    pub const CLIENT_EVENTS: [&str; 7] = [
        CHANNEL_JOIN,
        CHANNEL_LEAVE,
        MESSAGE_SEND,
        PRESENCE_UPDATE,
        TYPING,
        USERS_ONLINE,
        CHANNEL_LIST,
    ];
}

/// A presence status a client may set for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Available.
    Online,
    /// Connected but away.
    Away,
    /// Connected, do not disturb.
    Busy,
    /// No live connection anywhere (server-assigned only; clients cannot set it).
    Offline,
}

impl PresenceStatus {
    /// The status as spelled on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Busy => "busy",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// Channel reference accepted by `channel:join` and `channel:leave`: either a
/// bare string or an object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum ChannelRef {
    Bare(String),
    Object {
        #[serde(rename = "channelId")]
        channel_id: String,
        #[serde(default)]
        since: Option<Value>,
    },
}

/// `channel:join` payload: `"general"` or `{ "channelId": "general", "since"?: msgId }`.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    /// The channel to join (validated later by the domain).
    pub channel_id: String,
    /// History recovery point; accepted and not used yet.
    pub since: Option<Value>,
}

/// `channel:leave` payload: `"general"` or `{ "channelId": "general" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaveRequest {
    /// The channel to leave.
    pub channel_id: String,
}

/// `message:send` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    /// Target channel.
    pub channel_id: String,
    /// Message text, 1..=max characters.
    pub text: String,
    /// The client's own id for the message, echoed back in `message:new`.
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

/// `presence:update` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PresenceUpdateRequest {
    /// New status; `offline` is refused (it is derived from connections).
    pub status: PresenceStatus,
}

/// `typing` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingRequest {
    /// The channel being typed in.
    pub channel_id: String,
    /// Typing started (`true`) or stopped (`false`).
    pub typing: bool,
}

/// `users:online` payload: none, or `{ "channelId" }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersOnlineRequest {
    /// Restrict to the online members of this channel.
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// Parses the first argument of a client event into `T`, or `INVALID_PAYLOAD`.
///
/// Every request type is a JSON object on the wire; serde would also accept
/// a struct as an array of its fields (`["general", "hi"]`), a shape the
/// contract does not have, so anything but an object is refused first.
pub fn parse_request<T: DeserializeOwned>(event: &str, payload: &Value) -> GatewayResult<T> {
    if !payload.is_object() {
        return Err(GatewayError::invalid_payload(format!(
            "invalid payload for '{event}': expected an object"
        )));
    }
    T::deserialize(payload).map_err(|err| {
        GatewayError::invalid_payload(format!("invalid payload for '{event}': {err}"))
    })
}

impl JoinRequest {
    /// Parses a `channel:join` payload.
    pub fn parse(payload: &Value) -> GatewayResult<Self> {
        match parse_channel_ref(events::CHANNEL_JOIN, payload)? {
            ChannelRef::Bare(channel_id) => Ok(JoinRequest {
                channel_id,
                since: None,
            }),
            ChannelRef::Object { channel_id, since } => Ok(JoinRequest { channel_id, since }),
        }
    }
}

impl LeaveRequest {
    /// Parses a `channel:leave` payload.
    pub fn parse(payload: &Value) -> GatewayResult<Self> {
        let channel_id = match parse_channel_ref(events::CHANNEL_LEAVE, payload)? {
            ChannelRef::Bare(channel_id) | ChannelRef::Object { channel_id, .. } => channel_id,
        };
        Ok(LeaveRequest { channel_id })
    }
}

impl UsersOnlineRequest {
    /// Parses a `users:online` payload; no payload (or `null`) means all users.
    pub fn parse(payload: &Value) -> GatewayResult<Self> {
        if payload.is_null() {
            return Ok(UsersOnlineRequest::default());
        }
        parse_request(events::USERS_ONLINE, payload)
    }
}

fn parse_channel_ref(event: &str, payload: &Value) -> GatewayResult<ChannelRef> {
    // Only a string or an object: serde would also take `["general"]` as
    // the object's fields in order.
    let shaped = payload.is_string() || payload.is_object();
    shaped
        .then_some(payload)
        .and_then(|payload| ChannelRef::deserialize(payload).ok())
        .ok_or_else(|| {
            GatewayError::invalid_payload(format!(
                "'{event}' expects a channel id string or {{ \"channelId\": string }}"
            ))
        })
}

/// `message:new`: a message as delivered to channel subscribers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Server-assigned id: unique, increasing within a channel.
    pub id: u64,
    /// The channel it was sent to.
    pub channel_id: String,
    /// The sender.
    pub user_id: String,
    /// The text as sent.
    pub text: String,
    /// Milliseconds since the Unix epoch, assigned by the server.
    pub ts: u64,
    /// The sender's own id for the message, if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// `channel:member-joined` / `channel:member-left` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberEvent {
    /// The channel.
    pub channel_id: String,
    /// The user who joined or left.
    pub user_id: String,
}

/// `presence:update` (server -> client) payload, and an entry of `users:online`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceInfo {
    /// The user.
    pub user_id: String,
    /// Current status.
    pub status: PresenceStatus,
    /// Milliseconds since the epoch when the user was last seen (connected, changed status or left).
    pub last_seen: u64,
}

/// `typing` (server -> client) payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingEvent {
    /// The channel.
    pub channel_id: String,
    /// Who is typing.
    pub user_id: String,
    /// Started or stopped.
    pub typing: bool,
}

/// An entry of the `channel:list` reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSummary {
    /// The channel.
    pub channel_id: String,
    /// Milliseconds since the epoch of the last message (or of the channel's creation).
    pub last_activity: u64,
    /// Number of members.
    pub members: usize,
    /// Number of members online now.
    pub online: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn event_names_are_pinned() {
        assert_eq!(
            events::CLIENT_EVENTS,
            [
                "channel:join",
                "channel:leave",
                "message:send",
                "presence:update",
                "typing",
                "users:online",
                "channel:list"
            ]
        );
        assert_eq!(events::MESSAGE_NEW, "message:new");
        assert_eq!(events::CHANNEL_MEMBER_JOINED, "channel:member-joined");
        assert_eq!(events::CHANNEL_MEMBER_LEFT, "channel:member-left");
        assert_eq!(events::ERROR, "error");
    }

    #[test]
    fn join_accepts_string_and_object() {
        assert_eq!(
            JoinRequest::parse(&json!("general"))
                .map(|r| r.channel_id)
                .ok(),
            Some("general".to_owned())
        );
        let with_since = JoinRequest::parse(&json!({"channelId": "a", "since": 5}));
        assert_eq!(with_since.map(|r| r.since).ok(), Some(Some(json!(5))));
        for bad in [
            json!(null),
            json!(5),
            json!({}),
            json!({"channelId": 1}),
            json!([]),
        ] {
            let err = JoinRequest::parse(&bad).err().map(|e| e.code);
            assert_eq!(err, Some(ErrorCode::InvalidPayload), "payload {bad}");
        }
    }

    #[test]
    fn send_message_shape() {
        let ok: SendMessageRequest = parse_request(
            "message:send",
            &json!({"channelId": "a", "text": "hi", "clientMsgId": "c1", "extra": true}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.client_msg_id.as_deref(), Some("c1"));
        let wrong_type = parse_request::<SendMessageRequest>(
            "message:send",
            &json!({"channelId": "a", "text": 5}),
        );
        assert_eq!(
            wrong_type.err().map(|e| e.code),
            Some(ErrorCode::InvalidPayload)
        );
    }

    #[test]
    fn presence_and_wire_names() {
        let req: Result<PresenceUpdateRequest, _> =
            parse_request("presence:update", &json!({"status": "busy"}));
        assert_eq!(req.map(|r| r.status).ok(), Some(PresenceStatus::Busy));
        let msg = Message {
            id: 1,
            channel_id: "a".into(),
            user_id: "u".into(),
            text: "t".into(),
            ts: 2,
            client_msg_id: None,
        };
        assert_eq!(
            serde_json::to_value(&msg).ok(),
            Some(json!({"id": 1, "channelId": "a", "userId": "u", "text": "t", "ts": 2}))
        );
        let summary = ChannelSummary {
            channel_id: "a".into(),
            last_activity: 3,
            members: 2,
            online: 1,
        };
        assert_eq!(
            serde_json::to_value(&summary).ok(),
            Some(json!({"channelId": "a", "lastActivity": 3, "members": 2, "online": 1}))
        );
    }
}
