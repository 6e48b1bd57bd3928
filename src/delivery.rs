//! Deliveries: the one place where a domain outcome becomes room operations
//! and emits on the chat namespace.
//!
//! Client events (the gateway), the server API, presence changes found by
//! the Redis backend (sweeps of dead nodes, re-registrations) and the end of
//! a drain all deliver the same outcomes, so the rules live here once:
//!
//! - Rooms: a channel's room is named exactly as the channel (so an app
//!   backend emitting to a room reaches the channel), and every socket of a
//!   user is in the user's room, [`user_room`], which a channel id can never
//!   equal.
//! - Membership changes act on the user's room, so all tabs of a user join
//!   or leave together. A join subscribes every tab even when the user was a
//!   member already (that repairs drift) and is announced only when new; a
//!   leave is announced before the tabs unsubscribe, so they hear it too.
//! - `except`: the connection that asked (a client event) has its ack and is
//!   left out of the announcement; calls of the server API got no ack on any
//!   connection and pass `None`.
//!
//! With the cross-node adapter on the namespace, every operation here reaches
//! the sockets of every node. The domain never imports this module: it
//! returns outcomes, and its callers hand them here.

use chatgate_sio::{
    BoxFuture, BroadcastOperator, BroadcastOptions, BroadcastPacket, EmitError, Namespace, Room,
};
use tokio::sync::mpsc;

use std::sync::Arc;

use crate::backend::PublishTemplate;
use crate::cluster::{ClusterAdapter, GapFiller};
use crate::domain::{ChatService, Joined, PublishFormat};
use crate::protocol::{MemberEvent, Message, PresenceInfo, TypingEvent, events, offset_of};

/// What starts the name of every user room. `@` is not allowed in channel
/// ids, so a user room never names a channel's room.
const USER_ROOM_PREFIX: char = '@';

/// The room holding every socket of `user_id`.
pub fn user_room(user_id: &str) -> String {
    format!("{USER_ROOM_PREFIX}{user_id}")
}

/// Whether `room` is a user room (see [`user_room`]) rather than a channel's.
pub fn is_user_room(room: &str) -> bool {
    room.starts_with(USER_ROOM_PREFIX)
}

/// Unsubscribes every socket of `user_id` from the room of `channel_id`.
pub fn unsubscribe_user(namespace: &Namespace, user_id: &str, channel_id: &str) {
    namespace.to(user_room(user_id)).sockets_leave(channel_id);
}

/// A membership of `user_id` (new or repeated): subscribes every socket of
/// the user and, when new, announces `channel:member-joined` to the channel
/// (except to the socket `except`). Resolves once every node will have
/// subscribed the user's sockets before anything sent later reaches them
/// (the ack of `channel:join` waits for it); false when that could not be
/// made certain (Redis unreachable; the join may still have reached some
/// nodes).
pub async fn member_joined(
    namespace: &Namespace,
    user_id: &str,
    joined: &Joined,
    except: Option<&str>,
) -> bool {
    let subscribed = namespace
        .to(user_room(user_id))
        .sockets_join_confirmed(joined.channel_id.as_str())
        .await;
    announce_joined(namespace, user_id, joined, except);
    subscribed
}

/// `channel:member-joined` for a new membership.
fn announce_joined(namespace: &Namespace, user_id: &str, joined: &Joined, except: Option<&str>) {
    if joined.newly_joined {
        let member = MemberEvent {
            channel_id: joined.channel_id.clone(),
            user_id: user_id.to_owned(),
        };
        let to = excepting(namespace.to(joined.channel_id.as_str()), except);
        emit_logged(to.emit(events::CHANNEL_MEMBER_JOINED, &member));
    }
}

/// An ended membership: announces `channel:member-left` to the channel and
/// to every socket of the user (except to the socket `except`), then
/// unsubscribes the user's sockets.
pub fn member_left(namespace: &Namespace, user_id: &str, channel_id: &str, except: Option<&str>) {
    let member = MemberEvent {
        channel_id: channel_id.to_owned(),
        user_id: user_id.to_owned(),
    };
    // Announce before unsubscribing, so the user's other tabs hear it too.
    let to = excepting(namespace.to(channel_id).to(user_room(user_id)), except);
    emit_logged(to.emit(events::CHANNEL_MEMBER_LEFT, &member));
    unsubscribe_user(namespace, user_id, channel_id);
}

/// Delivers `message` as `message:new` to its channel (except to the socket
/// `except`). The error is returned, not only logged: the server API answers
/// it, while a client's sender has its ack already.
pub fn deliver_message(
    namespace: &Namespace,
    message: &Message,
    except: Option<&str>,
) -> Result<(), EmitError> {
    excepting(namespace.to(message.channel_id.as_str()), except).emit_with_offset(
        events::MESSAGE_NEW,
        message,
        &offset_of(message.id),
    )
}

/// How a `message:new` travels when Redis publishes it itself (see
/// [`crate::domain::ChatService::with_publish_format`]): to the channel's
/// room, except the sender's connection, with the id and the recovery
/// offset filled in by Redis.
pub fn publish_format(adapter: Arc<ClusterAdapter>) -> Arc<PublishFormat> {
    Arc::new(move |draft: &Message, except: Option<&str>| {
        let serde_json::Value::Object(payload) = serde_json::to_value(draft).ok()? else {
            return None;
        };
        let (channel, parts) = adapter.ordered_event_parts(
            &draft.channel_id,
            except,
            events::MESSAGE_NEW,
            &payload,
            "id",
        )?;
        Some(PublishTemplate {
            channel,
            parts,
            member: None,
        })
    })
}

/// How a node fills a gap in the ordered messages it received: the missed
/// messages of the given rooms' channels, from history (on a Redis Cluster
/// from the recovery log: [`ChatService::replay`]), as `message:new`
/// packets for the local sockets (see [`ClusterAdapter::set_gap_filler`]).
/// The sender's own connection may get its message then too (history does
/// not say which connection sent it).
pub fn gap_filler(chat: ChatService) -> Arc<GapFiller> {
    Arc::new(move |after: u64, before: u64, rooms: Vec<Room>| {
        let chat = chat.clone();
        Box::pin(async move {
            let channels: Vec<String> = rooms
                .iter()
                .filter(|room| !is_user_room(room))
                .map(|room| room.to_string())
                .collect();
            let missed = match chat.replay(&channels, after, Some(before)).await {
                Ok(missed) => missed,
                Err(err) => {
                    tracing::warn!(code = ?err.code, "a gap in the ordered messages could not be filled");
                    return Vec::new();
                }
            };
            missed
                .messages
                .iter()
                .filter_map(|message| {
                    let text = serde_json::to_string(&serde_json::json!([
                        events::MESSAGE_NEW,
                        message,
                        offset_of(message.id)
                    ]))
                    .ok()?;
                    let packet = BroadcastPacket::from_parts(&format!("2{text}"), Vec::new());
                    let opts = BroadcastOptions {
                        rooms: vec![Room::from(message.channel_id.as_str())],
                        except: Vec::new(),
                    };
                    Some((packet, opts))
                })
                .collect()
        }) as BoxFuture<'static, _>
    })
}

/// Delivers a `typing` event to its channel (except to the socket `except`).
pub fn deliver_typing(namespace: &Namespace, typing: &TypingEvent, except: Option<&str>) {
    let to = excepting(namespace.to(typing.channel_id.as_str()), except);
    emit_logged(to.emit(events::TYPING, typing));
}

/// Sends `presence` as `presence:update` to every channel in `channels`
/// (each socket once, however many of the channels it is in), except to the
/// socket `except`.
pub fn announce_presence(
    namespace: &Namespace,
    channels: &[String],
    presence: &PresenceInfo,
    except: Option<&str>,
) {
    let Some((first, rest)) = channels.split_first() else {
        return;
    };
    let mut to = namespace.to(first.as_str());
    for channel in rest {
        to = to.to(channel.as_str());
    }
    emit_logged(excepting(to, except).emit(events::PRESENCE_UPDATE, presence));
}

/// Announces `presence` in every channel of its user, read from `chat`: for
/// changes known without the user's channels at hand (a last disconnect,
/// users swept off a dead node, removed at the end of a drain, or back after
/// a re-registration). A failure to read the channels is logged.
pub async fn announce_presence_change(
    namespace: &Namespace,
    chat: &ChatService,
    presence: PresenceInfo,
) {
    match chat.user_channels(&presence.user_id).await {
        Ok(channels) => announce_presence(namespace, &channels, &presence, None),
        Err(err) => {
            tracing::warn!(user_id = presence.user_id, %err, "presence change not announced");
        }
    }
}

/// Announces the presence changes the Redis backend reports (see
/// `RedisOptions::with_presence_changes`), each through
/// [`announce_presence_change`]. The task ends when the sender is dropped.
pub fn spawn_presence_announcer(
    mut changes: mpsc::UnboundedReceiver<PresenceInfo>,
    namespace: Namespace,
    chat: ChatService,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(presence) = changes.recv().await {
            announce_presence_change(&namespace, &chat, presence).await;
        }
    })
}

/// Leaves the socket `except` out of `to`, when there is one.
fn excepting(to: BroadcastOperator, except: Option<&str>) -> BroadcastOperator {
    match except {
        Some(sid) => to.except_socket(sid),
        None => to,
    }
}

/// A failed emit (or ack) is an encoding bug, not a client's fault: log it.
pub(crate) fn emit_logged<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(err) = result {
        tracing::error!(%err, "emit failed");
    }
}
