//! Use cases of the server HTTP API (`src/api/`) and the operator views
//! (`/metrics`, `/status`): acting on behalf of a user or of the system,
//! without a connection and without the per-user rate limits, which guard
//! against clients, not against the app's own backend.
//!
//! The same validation as for client events applies (channel ids, text
//! length), so what the API stores is indistinguishable from what clients
//! send.

use super::{ChatService, Joined, Sent, backend_failure, validate};
use crate::auth::{Identity, user_id_problem};
use crate::backend::JoinOutcome;
use crate::clock::now_ms;
use crate::error::{GatewayError, GatewayResult};
use crate::protocol::{JoinRequest, LeaveRequest, PresenceInfo, SendMessageRequest};

/// The sender shown in `message:new` for a message the app backend publishes
/// without naming a user.
pub const SYSTEM_SENDER: &str = "system";

/// Checks a user id named by the API: 1 to [`MAX_USER_ID_CHARS`](crate::auth::MAX_USER_ID_CHARS) characters,
/// no control characters (the rule handshakes follow).
pub fn validate_user_id(user_id: &str) -> GatewayResult<()> {
    match user_id_problem(user_id) {
        None => Ok(()),
        Some(problem) => Err(GatewayError::invalid_payload(format!(
            "the user id {problem}"
        ))),
    }
}

/// A message the app backend publishes into a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The channel.
    pub channel_id: String,
    /// The sender shown to clients; [`SYSTEM_SENDER`] when `None`.
    pub sender: Option<String>,
    /// The text, validated like a client's.
    pub text: String,
    /// An id of the caller's choosing, echoed in `message:new`.
    pub client_msg_id: Option<String>,
}

impl ChatService {
    /// The id of the node this service runs on.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Live chatgate nodes sharing this node's backends (1 on memory).
    pub fn live_nodes(&self) -> usize {
        self.backends.health.live_nodes()
    }

    /// Writes back memberships the backend lost (Redis restarted without
    /// persistence) from what this node's live connections are subscribed
    /// to: `(user id, channel ids)` pairs. The channel cap does not apply
    /// (they were admitted). Returns how many memberships were missing and
    /// are back; a failure stops the restore (the next loss report retries).
    pub async fn restore_memberships(
        &self,
        memberships: &[(String, Vec<String>)],
    ) -> GatewayResult<usize> {
        let mut restored = 0;
        for (user_id, channels) in memberships {
            for channel_id in channels {
                let outcome = self
                    .backends
                    .channels
                    .join(user_id, channel_id, usize::MAX, now_ms())
                    .await
                    .map_err(backend_failure)?;
                if outcome == JoinOutcome::Joined {
                    restored += 1;
                }
            }
        }
        Ok(restored)
    }

    /// After a `SERVICE_UNAVAILABLE`: returns once the backends answer
    /// again (see [`crate::backend::BackendHealth::recovered`]); unbounded,
    /// callers bound it.
    pub async fn backend_recovered(&self) {
        self.backends.health.recovered().await;
    }

    /// Publishes a message as `publish.sender` (or the system): same
    /// validation, id and timestamp as `message:send`, but no membership is
    /// needed, since the app backend speaks for its users.
    pub async fn publish(&self, publish: Publish) -> GatewayResult<Sent> {
        let sender = match publish.sender {
            Some(user_id) => {
                validate_user_id(&user_id)?;
                user_id
            }
            None => SYSTEM_SENDER.to_owned(),
        };
        let request = SendMessageRequest {
            channel_id: publish.channel_id,
            text: publish.text,
            client_msg_id: publish.client_msg_id,
        };
        self.validate_message(&request)?;
        self.stamp_message(sender, request, None, false).await
    }

    /// Makes `user_id` a member of `channel_id`, as `channel:join` does, but
    /// without token patterns (the app backend decides) or rate limits. The
    /// membership cap still applies.
    pub async fn add_member(&self, user_id: &str, channel_id: &str) -> GatewayResult<Joined> {
        validate_user_id(user_id)?;
        self.join(
            &Identity::new(user_id),
            JoinRequest {
                channel_id: channel_id.to_owned(),
                since: None,
            },
        )
        .await
    }

    /// Ends the membership of `user_id` in `channel_id`; `NOT_IN_CHANNEL`
    /// when there was none.
    pub async fn remove_member(&self, user_id: &str, channel_id: &str) -> GatewayResult<String> {
        validate_user_id(user_id)?;
        self.leave(
            user_id,
            LeaveRequest {
                channel_id: channel_id.to_owned(),
            },
        )
        .await
    }

    /// The members of a channel (sorted) and the presence of those online.
    pub async fn channel_members(
        &self,
        channel_id: &str,
    ) -> GatewayResult<(Vec<String>, Vec<PresenceInfo>)> {
        validate::channel_id(channel_id)?;
        self.members_and_online(channel_id).await
    }

    /// Every online user, cluster-wide.
    pub async fn online_users(&self) -> GatewayResult<Vec<PresenceInfo>> {
        self.backends
            .presence
            .online_users()
            .await
            .map_err(backend_failure)
    }

    /// The presence of `user_id`, `None` when offline.
    pub async fn user_presence(&self, user_id: &str) -> GatewayResult<Option<PresenceInfo>> {
        validate_user_id(user_id)?;
        let found = self
            .backends
            .presence
            .online_among(&[user_id.to_owned()])
            .await
            .map_err(backend_failure)?;
        Ok(found.into_iter().next())
    }

    /// How many live connections `user_id` holds, on every node.
    pub async fn connection_count(&self, user_id: &str) -> GatewayResult<usize> {
        validate_user_id(user_id)?;
        self.backends
            .presence
            .connection_count(user_id)
            .await
            .map_err(backend_failure)
    }

    /// For each channel: (last activity ms, member count), in the order given.
    pub async fn channel_stats(&self, channel_ids: &[String]) -> GatewayResult<Vec<(u64, usize)>> {
        self.backends
            .channels
            .channel_stats(channel_ids)
            .await
            .map_err(backend_failure)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::backend::{Backends, RateQuota};
    use crate::domain::{Limits, RatePolicy};
    use crate::error::ErrorCode;

    fn service() -> ChatService {
        let quota = RateQuota {
            count: 1,
            period: Duration::from_secs(60),
        };
        ChatService::new(
            Backends::in_memory(),
            Limits {
                max_message_length: 10,
                max_connections_per_user: 2,
                max_channels_per_user: 1,
                rate_limits: RatePolicy {
                    default: quota,
                    per_event: HashMap::new(),
                },
            },
            "node-a",
        )
    }

    fn publish(channel: &str, sender: Option<&str>, text: &str) -> Publish {
        Publish {
            channel_id: channel.to_owned(),
            sender: sender.map(str::to_owned),
            text: text.to_owned(),
            client_msg_id: None,
        }
    }

    #[tokio::test]
    async fn publish_validates_and_needs_no_membership() {
        let chat = service();
        let first = chat
            .publish(publish("general", None, "hi"))
            .await
            .expect("published");
        assert_eq!(first.user_id, SYSTEM_SENDER);
        let second = chat
            .publish(publish("general", Some("alice"), "hi"))
            .await
            .expect("published");
        assert_eq!(second.user_id, "alice");
        assert!(second.id > first.id);
        let refused = |r: GatewayResult<Sent>| r.err().map(|e| e.code);
        assert_eq!(
            refused(chat.publish(publish("bad id", None, "hi")).await),
            Some(ErrorCode::InvalidPayload)
        );
        assert_eq!(
            refused(chat.publish(publish("general", None, "far too long")).await),
            Some(ErrorCode::PayloadTooLarge)
        );
        assert_eq!(
            refused(chat.publish(publish("general", Some(""), "hi")).await),
            Some(ErrorCode::InvalidPayload)
        );
    }

    #[tokio::test]
    async fn membership_by_the_backend() {
        let chat = service();
        let joined = chat.add_member("bob", "general").await.expect("joined");
        assert!(joined.newly_joined);
        assert_eq!(joined.members, ["bob"]);
        let again = chat.add_member("bob", "general").await.expect("re-join");
        assert!(!again.newly_joined);
        // The cap applies to the API too.
        let capped = chat.add_member("bob", "random").await;
        assert_eq!(
            capped.err().map(|e| e.code),
            Some(ErrorCode::TooManyChannels)
        );
        let (members, online) = chat.channel_members("general").await.expect("members");
        assert_eq!(members, ["bob"]);
        assert!(online.is_empty());
        assert_eq!(chat.user_presence("bob").await.ok(), Some(None));
        chat.connect("bob", "sid-1").await.expect("connected");
        let presence = chat.user_presence("bob").await.expect("presence");
        assert!(presence.is_some());
        assert_eq!(chat.online_users().await.map(|u| u.len()).ok(), Some(1));
        assert_eq!(
            chat.remove_member("bob", "general").await.ok().as_deref(),
            Some("general")
        );
        assert_eq!(
            chat.remove_member("bob", "general")
                .await
                .err()
                .map(|e| e.code),
            Some(ErrorCode::NotInChannel)
        );
        assert_eq!(chat.node_id(), "node-a");
    }
}
