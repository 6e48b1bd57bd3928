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
    /// Client -> server: page through a channel's message history (v1.2).
    pub const CHANNEL_HISTORY: &str = "channel:history";
    /// Server -> client: a new message in a channel.
    pub const MESSAGE_NEW: &str = "message:new";
    /// Server -> client: a user became a member of a channel.
    pub const CHANNEL_MEMBER_JOINED: &str = "channel:member-joined";
    /// Server -> client: a user stopped being a member of a channel.
    pub const CHANNEL_MEMBER_LEFT: &str = "channel:member-left";
    /// Server -> client: a failure for a client event sent without an ack callback.
    pub const ERROR: &str = "error";

    /// Every client -> server event, for rate-limit keys and validation.
    pub const CLIENT_EVENTS: [&str; 8] = [
        CHANNEL_JOIN,
        CHANNEL_LEAVE,
        MESSAGE_SEND,
        PRESENCE_UPDATE,
        TYPING,
        USERS_ONLINE,
        CHANNEL_LIST,
        CHANNEL_HISTORY,
    ];
}

/// Most messages in the `missed` of a `channel:join` ack (the newest ones).
pub const MISSED_LIMIT: usize = 100;

/// Most messages one `channel:history` page may ask for.
pub const HISTORY_LIMIT_MAX: usize = 100;

/// Messages in a `channel:history` page without `limit`.
pub const HISTORY_LIMIT_DEFAULT: usize = 50;

/// Message ids are below 2^53, exact in JavaScript.
const MAX_JSON_ID: u64 = 1 << 53;

/// Parses a message id given by a client (`since`, `before`): a JSON
/// integer below 2^53, or a string of decimal digits (as large as fits in
/// 64 bits). Anything else is `INVALID_PAYLOAD`.
pub fn parse_message_id(field: &str, value: &Value) -> GatewayResult<u64> {
    let parsed = match value {
        Value::Number(number) => number.as_u64().filter(|id| *id < MAX_JSON_ID),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse::<u64>().ok()
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        GatewayError::invalid_payload(format!(
            "'{field}' must be a message id: an integer below 2^53 or a string of decimal digits"
        ))
    })
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
    /// The last message id the client has of this channel: the ack then
    /// carries `missed` and `missedAll`. `null` counts as absent.
    pub since: Option<u64>,
}

/// `channel:history` payload: `{ "channelId", "before"?: msgId, "limit"?: 1..100 }`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    /// The channel (validated later by the domain).
    pub channel_id: String,
    /// Only messages with a lower id; `None`: the newest.
    pub before: Option<u64>,
    /// How many messages at most, 1..=[`HISTORY_LIMIT_MAX`]; default
    /// [`HISTORY_LIMIT_DEFAULT`].
    pub limit: usize,
}

/// The raw shape of a `channel:history` payload, checked by [`HistoryRequest::parse`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHistoryRequest {
    channel_id: String,
    #[serde(default)]
    before: Option<Value>,
    #[serde(default)]
    limit: Option<Value>,
}

impl HistoryRequest {
    /// Parses a `channel:history` payload; a bad `before` or `limit` is
    /// `INVALID_PAYLOAD`.
    pub fn parse(payload: &Value) -> GatewayResult<Self> {
        let raw: RawHistoryRequest = parse_request(events::CHANNEL_HISTORY, payload)?;
        Self::from_parts(raw.channel_id, raw.before.as_ref(), raw.limit.as_ref())
    }

    /// Builds a request from its parts as JSON values (`null` = absent),
    /// checking `before` and `limit` as [`HistoryRequest::parse`] does.
    pub fn from_parts(
        channel_id: String,
        before: Option<&Value>,
        limit: Option<&Value>,
    ) -> GatewayResult<Self> {
        let before = match before {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_message_id("before", value)?),
        };
        let limit = match limit {
            None | Some(Value::Null) => HISTORY_LIMIT_DEFAULT,
            Some(value) => parse_limit(value)?,
        };
        Ok(HistoryRequest {
            channel_id,
            before,
            limit,
        })
    }
}

/// A page size: an integer 1..=[`HISTORY_LIMIT_MAX`], or a string of such.
fn parse_limit(value: &Value) -> GatewayResult<usize> {
    let parsed = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        _ => None,
    };
    parsed
        .and_then(|limit| usize::try_from(limit).ok())
        .filter(|limit| (1..=HISTORY_LIMIT_MAX).contains(limit))
        .ok_or_else(|| {
            GatewayError::invalid_payload(format!(
                "'limit' must be a whole number from 1 to {HISTORY_LIMIT_MAX}"
            ))
        })
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
            ChannelRef::Object { channel_id, since } => Ok(JoinRequest {
                channel_id,
                since: match since {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(parse_message_id("since", &value)?),
                },
            }),
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

/// `message:new`: a message as delivered to channel subscribers, and as kept
/// in history (read back with `Deserialize`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// The connection state recovery offset of `message:new` with id `id`: its
/// last argument, which socket.io-client sends back when it reconnects.
/// Every connection receives the messages of all its channels in id order,
/// so the id of the last one received says what was missed. Always 16
/// digits (zero-padded; ids stay below 2^53), so Redis writes it in place.
pub fn offset_of(id: u64) -> String {
    format!("{id:016}")
}

/// The message id an offset names; `None` for anything else.
pub fn parse_offset(offset: &str) -> Option<u64> {
    if offset.is_empty() || offset.len() > 20 || !offset.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    offset.parse().ok()
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
                "channel:list",
                "channel:history"
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
        assert_eq!(with_since.map(|r| r.since).ok(), Some(Some(5)));
        let as_text = JoinRequest::parse(&json!({"channelId": "a", "since": "1733400000000001"}));
        assert_eq!(
            as_text.map(|r| r.since).ok(),
            Some(Some(1_733_400_000_000_001))
        );
        let null = JoinRequest::parse(&json!({"channelId": "a", "since": null}));
        assert_eq!(null.map(|r| r.since).ok(), Some(None));
        for bad in [
            json!(-1),
            json!(1.5),
            json!(9_007_199_254_740_992_u64),
            json!(""),
            json!("12a"),
            json!("-3"),
            json!(" 5"),
            json!("99999999999999999999999"),
            json!(true),
            json!([1]),
            json!({"id": 1}),
        ] {
            let err = JoinRequest::parse(&json!({"channelId": "a", "since": bad}))
                .err()
                .map(|e| e.code);
            assert_eq!(err, Some(ErrorCode::InvalidPayload), "since {bad}");
        }
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
    fn history_request_shape() {
        let parsed = |payload: Value| HistoryRequest::parse(&payload).map_err(|e| e.code);
        assert_eq!(
            parsed(json!({"channelId": "a"})),
            Ok(HistoryRequest {
                channel_id: "a".into(),
                before: None,
                limit: HISTORY_LIMIT_DEFAULT
            })
        );
        assert_eq!(
            parsed(json!({"channelId": "a", "before": "42", "limit": 100})),
            Ok(HistoryRequest {
                channel_id: "a".into(),
                before: Some(42),
                limit: 100
            })
        );
        for bad in [
            json!({"channelId": "a", "limit": 0}),
            json!({"channelId": "a", "limit": 101}),
            json!({"channelId": "a", "limit": 2.5}),
            json!({"channelId": "a", "limit": -1}),
            json!({"channelId": "a", "before": "x"}),
            json!({"channelId": "a", "before": 1.0e300}),
            json!({"before": 1}),
            json!("a"),
        ] {
            assert_eq!(
                parsed(bad.clone()).err(),
                Some(ErrorCode::InvalidPayload),
                "{bad}"
            );
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
