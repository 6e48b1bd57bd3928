//! The chat domain: what each client event means, independent of sockets.
//!
//! [`ChatService`] implements the use cases of the wire contract (join, leave,
//! send, presence, typing, lists) over the [`Backends`] and returns what
//! happened; the gateway turns that into acks and deliveries. Nothing here
//! knows the Socket.IO engine, so every rule is unit-testable.

pub mod admin;
pub mod recovery;
pub mod validate;

use crate::auth::Identity;
use crate::backend::{
    Appended, BackendError, Backends, ConnectOutcome, ConnectionRecord, HistoryPage, HistoryPolicy,
    JoinOutcome, Missed, PublishTemplate, RateQuota,
};
use crate::clock::now_ms;
use crate::error::{ErrorCode, GatewayError, GatewayResult};
use crate::protocol::{
    ChannelSummary, HistoryRequest, JoinRequest, LeaveRequest, MISSED_LIMIT, Message, PresenceInfo,
    PresenceStatus, SendMessageRequest, TypingEvent, TypingRequest, UsersOnlineRequest,
};
use std::collections::HashMap;

/// The most messages one replay reads from an ordered log (the Redis
/// Cluster's recovery log keeps no more than this by default).
const RECOVERY_LOG_LIMIT: usize = 100_000;

/// The limits the domain enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum message text length (UTF-16 units, as JavaScript counts).
    pub max_message_length: usize,
    /// Maximum live connections per user, cluster-wide.
    pub max_connections_per_user: usize,
    /// Maximum channel memberships per user.
    pub max_channels_per_user: usize,
    /// Rate limits per client event.
    pub rate_limits: RatePolicy,
}

/// Which rate applies to which client event.
#[derive(Debug, Clone)]
pub struct RatePolicy {
    /// Applies to every event without its own entry.
    pub default: RateQuota,
    /// Per-event quotas, by event name.
    pub per_event: HashMap<String, RateQuota>,
}

impl RatePolicy {
    /// The quota for `event`.
    pub fn quota_for(&self, event: &str) -> RateQuota {
        self.per_event.get(event).copied().unwrap_or(self.default)
    }
}

/// A connection accepted by [`ChatService::connect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Connected {
    /// Channels the user is a member of: the connection subscribes to all.
    pub channels: Vec<String>,
    /// Set when this is the user's first connection: the user came online.
    pub came_online: Option<PresenceInfo>,
}

/// A successful `channel:join`.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The channel.
    pub channel_id: String,
    /// False when the user was a member already (no `member-joined` then).
    pub newly_joined: bool,
    /// All members, sorted.
    pub members: Vec<String>,
    /// The members online now, sorted.
    pub online: Vec<String>,
    /// With `since`: the messages after it (the ack's `missed` and
    /// `missedAll`); `None` without `since`.
    pub missed: Option<Missed>,
}

/// The chat use cases. Cheap to clone.
#[derive(Clone)]
pub struct ChatService {
    backends: Backends,
    limits: std::sync::Arc<Limits>,
    node_id: std::sync::Arc<str>,
    /// How much history channels keep (`HISTORY_SIZE`, `HISTORY_TTL_MS`).
    history: HistoryPolicy,
    /// How a message travels to every node when the backend publishes it
    /// itself, in id order ([`ChatService::with_publish_format`]).
    publish_format: Option<std::sync::Arc<PublishFormat>>,
    /// One process, in memory: sends take turns from id to delivery, so
    /// deliveries are in id order ([`ChatService::with_local_order`]).
    local_order: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// How long a lost connection can be recovered (`RECOVERY_WINDOW_MS`);
    /// zero: off. See [`recovery`].
    recovery_window: std::time::Duration,
}

/// Builds how a message (its id not yet known) is published to every node,
/// except to the connection given (the sender's); `None` when it cannot be.
pub type PublishFormat = dyn Fn(&Message, Option<&str>) -> Option<PublishTemplate> + Send + Sync;

/// An accepted message, and what its delivery still needs.
#[must_use = "deliver the message unless it was published"]
#[derive(Debug)]
pub struct Sent {
    /// The message, with its id and time.
    pub message: Message,
    /// The backend published it to every node already (in id order): the
    /// caller must not deliver it again.
    pub published: bool,
    /// Held until the caller has delivered the message, so that no later
    /// message of this process is delivered before it.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for Sent {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.message
    }
}

/// Logs a backend failure and turns it into what the client may see.
fn backend_failure(err: BackendError) -> GatewayError {
    match err {
        BackendError::Unavailable(detail) => {
            tracing::warn!(%detail, "backend unavailable");
            GatewayError::service_unavailable()
        }
        BackendError::Internal(detail) => {
            tracing::error!(%detail, "backend error");
            GatewayError::internal()
        }
    }
}

fn not_in_channel(channel_id: &str) -> GatewayError {
    GatewayError::new(
        ErrorCode::NotInChannel,
        format!("you are not a member of channel '{channel_id}'"),
    )
}

impl ChatService {
    /// A service on `backends`, enforcing `limits`, for the node `node_id`.
    pub fn new(
        backends: Backends,
        limits: Limits,
        node_id: impl Into<std::sync::Arc<str>>,
    ) -> Self {
        ChatService {
            backends,
            limits: std::sync::Arc::new(limits),
            node_id: node_id.into(),
            history: HistoryPolicy::default(),
            publish_format: None,
            local_order: None,
            recovery_window: std::time::Duration::ZERO,
        }
    }

    /// Lets the backend assign, store and publish each message in one
    /// atomic step ([`HistoryStore::append_and_publish`]), with `format`
    /// saying how it travels: every node then delivers the messages of all
    /// channels in id order. Where the backend cannot, messages take the
    /// two steps (id, then record) and the caller delivers them.
    pub fn with_publish_format(mut self, format: std::sync::Arc<PublishFormat>) -> Self {
        self.publish_format = Some(format);
        self
    }

    /// One process serves every connection (the in-memory backends): sends
    /// take turns from their id to their delivery ([`Sent`] holds the turn),
    /// so every connection receives messages in id order.
    pub fn with_local_order(mut self) -> Self {
        self.local_order = Some(std::sync::Arc::new(tokio::sync::Mutex::new(())));
        self
    }

    /// Keeps message history as `policy` says (default
    /// [`HistoryPolicy::default`]: 500 messages per channel, one day).
    pub fn with_history(mut self, policy: HistoryPolicy) -> Self {
        self.history = policy;
        self
    }

    /// The history policy in force.
    pub fn history_policy(&self) -> HistoryPolicy {
        self.history
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts one `event` of `user_id` against its rate limit.
    pub async fn check_rate(&self, user_id: &str, event: &str) -> GatewayResult<()> {
        let quota = self.limits.rate_limits.quota_for(event);
        match self
            .backends
            .rate_limits
            .check(user_id, event, quota)
            .await
            .map_err(backend_failure)?
        {
            None => Ok(()),
            Some(wait) => {
                let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                Err(GatewayError::rate_limited(ms))
            }
        }
    }

    /// Registers a new connection of `user_id` (refused with
    /// `TOO_MANY_CONNECTIONS` over the cap) and lists the channels it must
    /// subscribe to.
    pub async fn connect(&self, user_id: &str, connection_id: &str) -> GatewayResult<Connected> {
        let now = now_ms();
        let record = ConnectionRecord {
            connection_id: connection_id.to_owned(),
            node_id: self.node_id.to_string(),
        };
        let outcome = self
            .backends
            .presence
            .add_connection(user_id, record, self.limits.max_connections_per_user, now)
            .await
            .map_err(backend_failure)?;
        let first = match outcome {
            ConnectOutcome::TooManyConnections => {
                return Err(GatewayError::new(
                    ErrorCode::TooManyConnections,
                    format!(
                        "at most {} connections per user",
                        self.limits.max_connections_per_user
                    ),
                ));
            }
            ConnectOutcome::Registered { first, .. } => first,
        };
        let channels = match self.backends.channels.user_channels(user_id).await {
            Ok(channels) => channels,
            Err(err) => {
                // Undo the registration: the connection is refused.
                self.disconnect(user_id, connection_id).await;
                return Err(backend_failure(err));
            }
        };
        Ok(Connected {
            channels,
            came_online: first.then(|| PresenceInfo {
                user_id: user_id.to_owned(),
                status: PresenceStatus::Online,
                last_seen: now,
            }),
        })
    }

    /// Unregisters a connection. Returns the `offline` presence when it was
    /// the user's last connection. Failures are logged, not returned: the
    /// connection is gone whatever the backend says.
    pub async fn disconnect(&self, user_id: &str, connection_id: &str) -> Option<PresenceInfo> {
        match self
            .backends
            .presence
            .remove_connection(user_id, connection_id, now_ms())
            .await
        {
            Ok(last_seen) => last_seen.map(|last_seen| PresenceInfo {
                user_id: user_id.to_owned(),
                status: PresenceStatus::Offline,
                last_seen,
            }),
            Err(err) => {
                backend_failure(err);
                None
            }
        }
    }

    /// `channel:join`.
    pub async fn join(&self, identity: &Identity, request: JoinRequest) -> GatewayResult<Joined> {
        let channel_id = request.channel_id;
        validate::channel_id(&channel_id)?;
        if !identity.may_join(&channel_id) {
            return Err(GatewayError::forbidden(format!(
                "your token does not allow joining channel '{channel_id}'"
            )));
        }
        let outcome = self
            .backends
            .channels
            .join(
                &identity.user_id,
                &channel_id,
                self.limits.max_channels_per_user,
                now_ms(),
            )
            .await
            .map_err(backend_failure)?;
        let newly_joined = match outcome {
            JoinOutcome::Joined => true,
            JoinOutcome::AlreadyMember => false,
            JoinOutcome::TooManyChannels => {
                return Err(GatewayError::new(
                    ErrorCode::TooManyChannels,
                    format!(
                        "at most {} channels per user",
                        self.limits.max_channels_per_user
                    ),
                ));
            }
        };
        // Members and missed messages are independent reads: both at once.
        let (members_and_online, missed) = tokio::join!(
            self.members_and_online(&channel_id),
            self.missed(&channel_id, request.since),
        );
        let (members, online) = members_and_online?;
        let online = online.into_iter().map(|p| p.user_id).collect();
        Ok(Joined {
            channel_id,
            newly_joined,
            members,
            online,
            missed: missed?,
        })
    }

    /// The messages of `channel_id` after `since` (at most [`MISSED_LIMIT`],
    /// the newest), for a join with `since`. With history off there are
    /// none, and whether any were missed is unknown, so `complete` is false.
    async fn missed(&self, channel_id: &str, since: Option<u64>) -> GatewayResult<Option<Missed>> {
        let Some(since) = since else {
            return Ok(None);
        };
        if self.history.is_off() {
            return Ok(Some(Missed {
                messages: Vec::new(),
                complete: false,
            }));
        }
        self.backends
            .history
            .since(channel_id, since, MISSED_LIMIT, self.history, now_ms())
            .await
            .map(Some)
            .map_err(backend_failure)
    }

    /// The kept messages of all `channels` with an id above `after` (and
    /// below `before`, when given), in id order: what a connection that
    /// received everything up to `after` has missed, since every connection
    /// receives the messages of all its channels in id order. `complete` is
    /// false when history no longer holds some of them (trimmed, expired, or
    /// history off).
    pub async fn replay(
        &self,
        channels: &[String],
        after: u64,
        before: Option<u64>,
    ) -> GatewayResult<Missed> {
        let from: Vec<(String, u64)> = channels.iter().map(|c| (c.clone(), after)).collect();
        self.replay_from(&from, before).await
    }

    /// [`replay`](Self::replay) with a starting id per channel.
    pub async fn replay_from(
        &self,
        from: &[(String, u64)],
        before: Option<u64>,
    ) -> GatewayResult<Missed> {
        if self.history.is_off() {
            return Ok(Missed {
                messages: Vec::new(),
                complete: from.is_empty(),
            });
        }
        let now = now_ms();
        if let Some(logged) = self.replay_log(from, before, now).await? {
            return Ok(logged);
        }
        let reads = from.iter().map(|(channel, after)| {
            self.backends
                .history
                .since(channel, *after, self.history.size, self.history, now)
        });
        let mut messages = Vec::new();
        let mut complete = true;
        for read in futures_util::future::join_all(reads).await {
            let missed = read.map_err(backend_failure)?;
            complete &= missed.complete;
            messages.extend(
                missed
                    .messages
                    .into_iter()
                    .filter(|m| before.is_none_or(|before| m.id < before)),
            );
        }
        messages.sort_by_key(|m| m.id);
        Ok(Missed { messages, complete })
    }

    /// [`replay`](Self::replay) from the backend's ordered log, where it
    /// keeps one ([`HistoryStore::log_since`]): the log's messages of
    /// `channels`, under the limits history has (at most
    /// [`HistoryPolicy::size`] per channel, none past the TTL; beyond them
    /// the replay is incomplete, as from history).
    async fn replay_log(
        &self,
        from: &[(String, u64)],
        before: Option<u64>,
        now: u64,
    ) -> GatewayResult<Option<Missed>> {
        let Some(first) = from.iter().map(|(_, after)| *after).min() else {
            return Ok(None);
        };
        let Some(logged) = self
            .backends
            .history
            .log_since(first, RECOVERY_LOG_LIMIT)
            .await
            .map_err(backend_failure)?
        else {
            return Ok(None);
        };
        let wanted: HashMap<&str, u64> = from
            .iter()
            .map(|(channel, after)| (channel.as_str(), *after))
            .collect();
        let cutoff_ms = self.history.cutoff_ms(now);
        let mut per_channel: HashMap<&str, usize> = HashMap::new();
        let mut complete = logged.complete;
        let mut messages = Vec::new();
        for message in logged.messages {
            if before.is_some_and(|before| message.id >= before) {
                break;
            }
            let Some((&channel, &after)) = wanted.get_key_value(message.channel_id.as_str()) else {
                continue;
            };
            if message.id <= after {
                continue;
            }
            let count = per_channel.entry(channel).or_default();
            *count += 1;
            if message.ts < cutoff_ms || *count > self.history.size {
                complete = false;
                continue;
            }
            messages.push(message);
        }
        Ok(Some(Missed { messages, complete }))
    }

    /// `channel:history`: a page of a channel's history; needs membership.
    pub async fn history(
        &self,
        user_id: &str,
        request: HistoryRequest,
    ) -> GatewayResult<HistoryPage> {
        validate::channel_id(&request.channel_id)?;
        // Membership and the page at once; the page is dropped for a non-member.
        let (member, page) = tokio::join!(
            self.require_member(user_id, &request.channel_id),
            self.read_history(&request),
        );
        member?;
        page
    }

    /// A page of a channel's history for the server API: no membership
    /// needed, the app backend speaks for its users.
    pub async fn channel_messages(&self, request: HistoryRequest) -> GatewayResult<HistoryPage> {
        validate::channel_id(&request.channel_id)?;
        self.read_history(&request).await
    }

    async fn read_history(&self, request: &HistoryRequest) -> GatewayResult<HistoryPage> {
        if self.history.is_off() {
            return Ok(HistoryPage {
                messages: Vec::new(),
                has_more: false,
            });
        }
        self.backends
            .history
            .before(
                &request.channel_id,
                request.before,
                request.limit,
                self.history,
                now_ms(),
            )
            .await
            .map_err(backend_failure)
    }

    /// `channel:leave`: ends the membership, `NOT_IN_CHANNEL` if there was none.
    pub async fn leave(&self, user_id: &str, request: LeaveRequest) -> GatewayResult<String> {
        let channel_id = request.channel_id;
        validate::channel_id(&channel_id)?;
        let was_member = self
            .backends
            .channels
            .leave(user_id, &channel_id)
            .await
            .map_err(backend_failure)?;
        if was_member {
            Ok(channel_id)
        } else {
            Err(not_in_channel(&channel_id))
        }
    }

    /// `message:send`: validates, checks membership, assigns id and time,
    /// and stores the message in history before returning (so before the
    /// `ok` ack). `except` is the sending connection, which gets the ack
    /// instead of the message.
    pub async fn send_message(
        &self,
        user_id: &str,
        request: SendMessageRequest,
        except: Option<&str>,
    ) -> GatewayResult<Sent> {
        self.validate_message(&request)?;
        if self.publish_format.is_some() {
            // One Redis checks the membership in the send's own step.
            if !self.backends.history.checks_membership() {
                self.require_member(user_id, &request.channel_id).await?;
            }
            return self
                .stamp_message(user_id.to_owned(), request, except, true)
                .await;
        }
        let turn = self.take_turn().await;
        let now = now_ms();
        // The membership check and the id at once (one round trip of
        // latency on Redis); a refused send leaves an unused id, a harmless gap.
        let (member, id) = tokio::join!(
            self.require_member(user_id, &request.channel_id),
            self.next_id(now),
        );
        member?;
        let message = self
            .record_message(user_id.to_owned(), request, id?, now)
            .await?;
        Ok(Sent {
            message,
            published: false,
            _turn: turn,
        })
    }

    /// This process's turn to assign and deliver a message, when it keeps
    /// the order itself.
    async fn take_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.local_order {
            Some(order) => Some(order.clone().lock_owned().await),
            None => None,
        }
    }

    /// The next message id.
    async fn next_id(&self, now: u64) -> GatewayResult<u64> {
        self.backends
            .channels
            .next_message_id(now)
            .await
            .map_err(backend_failure)
    }

    /// Makes the message and records it: channel activity and history.
    async fn record_message(
        &self,
        sender: String,
        request: SendMessageRequest,
        id: u64,
        ts: u64,
    ) -> GatewayResult<Message> {
        let message = Message {
            id,
            channel_id: request.channel_id,
            user_id: sender,
            text: request.text,
            ts,
            client_msg_id: request.client_msg_id,
        };
        self.backends
            .history
            .record(&message, self.history, ts)
            .await
            .map_err(backend_failure)?;
        Ok(message)
    }

    /// The stateless rules of a message: channel id, text, `clientMsgId`.
    fn validate_message(&self, request: &SendMessageRequest) -> GatewayResult<()> {
        validate::channel_id(&request.channel_id)?;
        validate::message_text(&request.text, self.limits.max_message_length)?;
        if let Some(client_msg_id) = &request.client_msg_id {
            validate::client_msg_id(client_msg_id)?;
        }
        Ok(())
    }

    /// Assigns a validated message its id and time, and records it
    /// (channel activity and history).
    async fn stamp_message(
        &self,
        sender: String,
        request: SendMessageRequest,
        except: Option<&str>,
        member_only: bool,
    ) -> GatewayResult<Sent> {
        let now = now_ms();
        let draft = Message {
            id: 0,
            channel_id: request.channel_id,
            user_id: sender,
            text: request.text,
            ts: now,
            client_msg_id: request.client_msg_id,
        };
        if let Some(mut template) = self
            .publish_format
            .as_ref()
            .and_then(|format| format(&draft, except))
        {
            template.member = member_only.then(|| draft.user_id.clone());
            match self
                .backends
                .history
                .append_and_publish(&draft, &template, self.history, now)
                .await
                .map_err(backend_failure)?
            {
                Some(Appended::Published(message)) => {
                    return Ok(Sent {
                        message,
                        published: true,
                        _turn: None,
                    });
                }
                Some(Appended::NotMember) => return Err(not_in_channel(&draft.channel_id)),
                None if member_only && self.backends.history.checks_membership() => {
                    // Not published after all: check the membership here.
                    self.require_member(&draft.user_id, &draft.channel_id)
                        .await?;
                }
                None => {}
            }
        } else if member_only && self.backends.history.checks_membership() {
            self.require_member(&draft.user_id, &draft.channel_id)
                .await?;
        }
        let turn = self.take_turn().await;
        let id = self.next_id(now).await?;
        let request = SendMessageRequest {
            channel_id: draft.channel_id,
            text: draft.text,
            client_msg_id: draft.client_msg_id,
        };
        let message = self.record_message(draft.user_id, request, id, now).await?;
        Ok(Sent {
            message,
            published: false,
            _turn: turn,
        })
    }

    /// `presence:update`: sets the user's status. Returns the new presence
    /// and the channels to announce it in.
    pub async fn set_presence(
        &self,
        user_id: &str,
        status: PresenceStatus,
    ) -> GatewayResult<(PresenceInfo, Vec<String>)> {
        if status == PresenceStatus::Offline {
            return Err(GatewayError::invalid_payload(
                "status must be online, away or busy",
            ));
        }
        let presence = self
            .backends
            .presence
            .set_status(user_id, status, now_ms())
            .await
            .map_err(backend_failure)?
            .ok_or_else(|| {
                // The caller is connected, so its presence must exist.
                tracing::error!(user_id, "presence missing for a connected user");
                GatewayError::internal()
            })?;
        let channels = self.user_channels(user_id).await?;
        Ok((presence, channels))
    }

    /// `typing`: needs membership.
    pub async fn typing(
        &self,
        user_id: &str,
        request: TypingRequest,
    ) -> GatewayResult<TypingEvent> {
        validate::channel_id(&request.channel_id)?;
        self.require_member(user_id, &request.channel_id).await?;
        Ok(TypingEvent {
            channel_id: request.channel_id,
            user_id: user_id.to_owned(),
            typing: request.typing,
        })
    }

    /// `users:online`: every online user, or the online members of a channel
    /// the caller is a member of.
    pub async fn users_online(
        &self,
        user_id: &str,
        request: UsersOnlineRequest,
    ) -> GatewayResult<Vec<PresenceInfo>> {
        match request.channel_id {
            None => self
                .backends
                .presence
                .online_users()
                .await
                .map_err(backend_failure),
            Some(channel_id) => {
                validate::channel_id(&channel_id)?;
                self.require_member(user_id, &channel_id).await?;
                Ok(self.members_and_online(&channel_id).await?.1)
            }
        }
    }

    /// `channel:list`: the user's channels, newest activity first.
    pub async fn channel_list(&self, user_id: &str) -> GatewayResult<Vec<ChannelSummary>> {
        let channels = self.user_channels(user_id).await?;
        self.channel_summaries(channels).await
    }

    /// Summaries of the given channels (activity, member and online counts),
    /// newest activity first, in a fixed number of backend round trips.
    pub async fn channel_summaries(
        &self,
        channel_ids: Vec<String>,
    ) -> GatewayResult<Vec<ChannelSummary>> {
        let overview = self
            .backends
            .channels
            .channel_overview(&channel_ids)
            .await
            .map_err(backend_failure)?;
        let mut everyone: Vec<String> = overview
            .iter()
            .flat_map(|channel| channel.members.iter().cloned())
            .collect();
        everyone.sort_unstable();
        everyone.dedup();
        let online: std::collections::HashSet<String> = self
            .backends
            .presence
            .online_among(&everyone)
            .await
            .map_err(backend_failure)?
            .into_iter()
            .map(|p| p.user_id)
            .collect();
        let mut summaries: Vec<ChannelSummary> = channel_ids
            .into_iter()
            .zip(overview)
            .map(|(channel_id, channel)| ChannelSummary {
                channel_id,
                last_activity: channel.last_activity,
                members: channel.members.len(),
                online: channel
                    .members
                    .iter()
                    .filter(|m| online.contains(*m))
                    .count(),
            })
            .collect();
        summaries.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then_with(|| a.channel_id.cmp(&b.channel_id))
        });
        Ok(summaries)
    }

    /// Channels `user_id` is a member of.
    pub async fn user_channels(&self, user_id: &str) -> GatewayResult<Vec<String>> {
        self.backends
            .channels
            .user_channels(user_id)
            .await
            .map_err(backend_failure)
    }

    /// The members of a channel (sorted) and the presence of those online.
    async fn members_and_online(
        &self,
        channel_id: &str,
    ) -> GatewayResult<(Vec<String>, Vec<PresenceInfo>)> {
        let members = self
            .backends
            .channels
            .members(channel_id)
            .await
            .map_err(backend_failure)?;
        let online = self
            .backends
            .presence
            .online_among(&members)
            .await
            .map_err(backend_failure)?;
        Ok((members, online))
    }

    async fn require_member(&self, user_id: &str, channel_id: &str) -> GatewayResult<()> {
        let member = self
            .backends
            .channels
            .is_member(user_id, channel_id)
            .await
            .map_err(backend_failure)?;
        if member {
            Ok(())
        } else {
            Err(not_in_channel(channel_id))
        }
    }
}

#[cfg(test)]
mod tests;
