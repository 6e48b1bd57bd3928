//! The chat rules on the in-memory backend, without sockets.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::auth::{ChannelAccess, Identity};
use crate::backend::Backends;
use crate::protocol::{
    JoinRequest, LeaveRequest, SendMessageRequest, TypingRequest, UsersOnlineRequest,
};

fn service_with(limits: Limits) -> ChatService {
    ChatService::new(Backends::in_memory(), limits, "node-a")
}

fn limits() -> Limits {
    let per_minute = |count| RateQuota {
        count,
        period: Duration::from_secs(60),
    };
    Limits {
        max_message_length: 10,
        max_connections_per_user: 2,
        max_channels_per_user: 2,
        rate_limits: RatePolicy {
            default: per_minute(100),
            per_event: HashMap::from([("message:send".to_owned(), per_minute(3))]),
        },
    }
}

fn join(channel: &str) -> JoinRequest {
    JoinRequest {
        channel_id: channel.to_owned(),
        since: None,
    }
}

fn send(channel: &str, text: &str) -> SendMessageRequest {
    SendMessageRequest {
        channel_id: channel.to_owned(),
        text: text.to_owned(),
        client_msg_id: None,
    }
}

fn code<T: std::fmt::Debug>(result: GatewayResult<T>) -> ErrorCode {
    match result {
        Err(err) => err.code,
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

#[tokio::test]
async fn presence_follows_the_last_connection() -> GatewayResult<()> {
    let chat = service_with(limits());
    let first = chat.connect("alice", "s1").await?;
    assert_eq!(
        first.came_online.map(|p| p.status),
        Some(PresenceStatus::Online)
    );
    let second = chat.connect("alice", "s2").await?;
    assert_eq!(
        second.came_online, None,
        "a second tab is not a new arrival"
    );
    assert_eq!(
        code(chat.connect("alice", "s3").await),
        ErrorCode::TooManyConnections
    );
    assert_eq!(chat.disconnect("alice", "s1").await, None);
    let offline = chat.disconnect("alice", "s2").await;
    assert_eq!(offline.map(|p| p.status), Some(PresenceStatus::Offline));
    Ok(())
}

#[tokio::test]
async fn membership_survives_reconnects_and_caps() -> GatewayResult<()> {
    let chat = service_with(limits());
    let alice = Identity::new("alice");
    chat.connect("alice", "s1").await?;
    let joined = chat.join(&alice, join("general")).await?;
    assert!(joined.newly_joined);
    assert_eq!(joined.members, vec!["alice".to_owned()]);
    assert_eq!(joined.online, vec!["alice".to_owned()]);
    chat.join(&alice, join("random")).await?;
    assert_eq!(
        code(chat.join(&alice, join("third")).await),
        ErrorCode::TooManyChannels
    );
    // Re-joining at the cap is fine and changes nothing.
    assert!(!chat.join(&alice, join("general")).await?.newly_joined);
    chat.disconnect("alice", "s1").await;
    let back = chat.connect("alice", "s2").await?;
    assert_eq!(
        back.channels,
        vec!["general".to_owned(), "random".to_owned()]
    );
    Ok(())
}

#[tokio::test]
async fn join_checks_channel_id_and_token_patterns() {
    let chat = service_with(limits());
    let mut limited = Identity::new("bob");
    limited.channels = ChannelAccess::patterns(["team-*"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(chat.join(&limited, join("general")).await),
        ErrorCode::Forbidden
    );
    assert!(chat.join(&limited, join("team-a")).await.is_ok());
    assert_eq!(
        code(chat.join(&limited, join("bad id")).await),
        ErrorCode::InvalidPayload
    );
}

#[tokio::test]
async fn sending_needs_membership_and_valid_text() -> GatewayResult<()> {
    let chat = service_with(limits());
    let alice = Identity::new("alice");
    assert_eq!(
        code(
            chat.send_message("alice", send("general", "hi"), None)
                .await
        ),
        ErrorCode::NotInChannel
    );
    chat.join(&alice, join("general")).await?;
    assert_eq!(
        code(chat.send_message("alice", send("general", ""), None).await),
        ErrorCode::InvalidPayload
    );
    assert_eq!(
        code(
            chat.send_message("alice", send("general", "01234567890"), None)
                .await
        ),
        ErrorCode::PayloadTooLarge
    );
    let first = chat
        .send_message("alice", send("general", "hi"), None)
        .await?;
    let second = chat
        .send_message("alice", send("general", "again"), None)
        .await?;
    assert!(second.id > first.id, "ids increase within a channel");
    assert_eq!(first.user_id, "alice");
    Ok(())
}

#[tokio::test]
async fn leave_ends_membership_once() -> GatewayResult<()> {
    let chat = service_with(limits());
    let alice = Identity::new("alice");
    chat.join(&alice, join("general")).await?;
    let leave = || LeaveRequest {
        channel_id: "general".to_owned(),
    };
    assert_eq!(chat.leave("alice", leave()).await?, "general");
    assert_eq!(
        code(chat.leave("alice", leave()).await),
        ErrorCode::NotInChannel
    );
    assert_eq!(
        code(
            chat.send_message("alice", send("general", "hi"), None)
                .await
        ),
        ErrorCode::NotInChannel
    );
    Ok(())
}

#[tokio::test]
async fn rate_limit_per_user_and_event() -> GatewayResult<()> {
    let chat = service_with(limits());
    for _ in 0..3 {
        chat.check_rate("alice", "message:send").await?;
    }
    let refused = chat.check_rate("alice", "message:send").await;
    match refused {
        Err(err) => {
            assert_eq!(err.code, ErrorCode::RateLimited);
            // 3 per minute refill one every 20 s.
            assert!(
                err.retry_after_ms
                    .is_some_and(|ms| ms > 19_000 && ms <= 20_000)
            );
        }
        Ok(()) => panic!("fourth message allowed"),
    }
    chat.check_rate("bob", "message:send").await?;
    chat.check_rate("alice", "typing").await?;
    Ok(())
}

#[tokio::test]
async fn lists_presence_and_typing() -> GatewayResult<()> {
    let chat = service_with(limits());
    let alice = Identity::new("alice");
    let bob = Identity::new("bob");
    chat.connect("alice", "a1").await?;
    chat.connect("bob", "b1").await?;
    chat.join(&alice, join("old")).await?;
    chat.join(&alice, join("new")).await?;
    chat.join(&bob, join("new")).await?;
    let _ = chat.send_message("alice", send("old", "x"), None).await?;
    // Make "new" strictly newer even on a coarse clock.
    let later = chat.send_message("bob", send("new", "y"), None).await?;
    let list = chat.channel_list("alice").await?;
    let order: Vec<&str> = list.iter().map(|c| c.channel_id.as_str()).collect();
    if list[0].last_activity != list[1].last_activity {
        assert_eq!(order, ["new", "old"]);
    }
    let new = list
        .iter()
        .find(|c| c.channel_id == "new")
        .map(|c| (c.members, c.online, c.last_activity));
    assert_eq!(new, Some((2, 2, later.ts)));

    let (presence, channels) = chat.set_presence("bob", PresenceStatus::Busy).await?;
    assert_eq!(presence.status, PresenceStatus::Busy);
    assert_eq!(channels, vec!["new".to_owned()]);
    assert_eq!(
        code(chat.set_presence("bob", PresenceStatus::Offline).await),
        ErrorCode::InvalidPayload
    );

    let all = chat
        .users_online("alice", UsersOnlineRequest::default())
        .await?;
    assert_eq!(all.len(), 2);
    let in_old = chat
        .users_online(
            "bob",
            UsersOnlineRequest {
                channel_id: Some("old".into()),
            },
        )
        .await;
    assert_eq!(code(in_old), ErrorCode::NotInChannel);

    let typing = chat
        .typing(
            "bob",
            TypingRequest {
                channel_id: "new".into(),
                typing: true,
            },
        )
        .await?;
    assert!(typing.typing);
    assert_eq!(
        code(
            chat.typing(
                "bob",
                TypingRequest {
                    channel_id: "old".into(),
                    typing: true
                }
            )
            .await
        ),
        ErrorCode::NotInChannel
    );
    Ok(())
}
