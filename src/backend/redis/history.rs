//! Message history on Redis: one ZSET per channel (message JSON scored by
//! id) and its floor, both in the channel's slot, written and read by the
//! `record_message`, `history_since` and `history_before` scripts (one
//! request each). On a Redis Cluster, also the recovery log in the shard
//! channel's slot (`send_sharded`, `log_since`). `docs/redis.md` says why a ZSET and what it costs.

use async_trait::async_trait;

use super::conn::{backend_error, unexpected};
use super::{RedisBackend, scripts};
use crate::backend::{
    Appended, BackendError, BackendResult, HistoryPage, HistoryPolicy, HistoryStore, Missed,
    PublishTemplate, finish_before, finish_since,
};
use crate::protocol::Message;

/// Parses stored message JSON, newest first as the scripts return them.
fn parse_messages(entries: impl IntoIterator<Item = String>) -> BackendResult<Vec<Message>> {
    entries
        .into_iter()
        .map(|json| serde_json::from_str(&json).map_err(|err| unexpected("stored message", &err)))
        .collect()
}

/// How a message's JSON starts: its id is the first field.
const JSON_ID_PREFIX: &str = "{\"id\":";

/// A draft message's JSON (its id 0).
fn draft_json(draft: &Message) -> BackendResult<String> {
    serde_json::to_string(draft).map_err(|err| unexpected("message to store", &err))
}

/// `{"id":0,...}` without `{"id":0`: the ordered scripts write the id in
/// front of the rest.
fn json_after_id(json: &str) -> BackendResult<&str> {
    json.strip_prefix(JSON_ID_PREFIX)
        .and_then(|r| r.strip_prefix('0'))
        .ok_or_else(|| BackendError::Internal("a message's JSON does not start with its id".into()))
}

impl RedisBackend {
    /// The ordered send on a Redis Cluster, in two steps: `send_sharded`
    /// assigns the id, appends the message to the recovery log and
    /// publishes it on the shard channel (its slot, one request); then
    /// `record_message` writes the channel's history (the channel's slot,
    /// one request). A message whose second step fails was delivered and is
    /// in the log, but the send reports the failure.
    async fn append_and_publish_sharded(
        &self,
        draft: &Message,
        template: &PublishTemplate,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<Option<Message>> {
        let inner = &self.inner;
        let result = async {
            let json = draft_json(draft)?;
            let rest = json_after_id(&json)?;
            let link = inner.link()?;
            let shard = &template.channel;
            let mut invocation = scripts::SEND_SHARDED.prepare_invoke();
            invocation
                .key(inner.keys.shard_message_id(shard))
                .key(inner.keys.shard_log(shard))
                .key(inner.keys.shard_log_floor(shard))
                .arg(now_ms)
                .arg(rest)
                .arg(u64::try_from(inner.options.recovery_log_keep.as_millis()).unwrap_or(u64::MAX))
                .arg(inner.options.recovery_log_cap.max(1))
                .arg(shard);
            for part in &template.parts {
                invocation.arg(part.as_slice());
            }
            let id: String = invocation
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            id.parse::<u64>()
                .map_err(|err| unexpected("message id", &err))
        }
        .await;
        let id = inner.observe(result)?;
        let message = Message {
            id,
            ..draft.clone()
        };
        self.record(&message, policy, now_ms).await?;
        Ok(Some(message))
    }
}

#[async_trait]
impl HistoryStore for RedisBackend {
    async fn record(
        &self,
        message: &Message,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<()> {
        let inner = &self.inner;
        let result = async {
            let json = serde_json::to_string(message)
                .map_err(|err| unexpected("message to store", &err))?;
            let link = inner.link()?;
            scripts::RECORD_MESSAGE
                .key(inner.keys.channel_meta(&message.channel_id))
                .key(inner.keys.history(&message.channel_id))
                .key(inner.keys.history_floor(&message.channel_id))
                .arg(message.ts)
                .arg(message.id)
                .arg(json)
                .arg(policy.size)
                .arg(policy.ttl_ms)
                .arg(now_ms)
                .invoke_async::<redis::Value>(&mut link.clone())
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        .await;
        inner.observe(result)
    }

    async fn append_and_publish(
        &self,
        draft: &Message,
        template: &PublishTemplate,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<Option<Appended>> {
        let inner = &self.inner;
        if inner.cluster {
            return self
                .append_and_publish_sharded(draft, template, policy, now_ms)
                .await
                .map(|sent| sent.map(Appended::Published));
        }
        let result = async {
            let json = draft_json(draft)?;
            let rest = json_after_id(&json)?;
            let link = inner.link()?;
            let mut invocation = scripts::SEND_ORDERED.prepare_invoke();
            invocation
                .key(inner.keys.message_id())
                .key(inner.keys.channel_meta(&draft.channel_id))
                .key(inner.keys.history(&draft.channel_id))
                .key(inner.keys.history_floor(&draft.channel_id))
                // The membership to check, or (no check) a key of the channel.
                .key(match &template.member {
                    Some(user_id) => inner.keys.user_channels(user_id),
                    None => inner.keys.channel_meta(&draft.channel_id),
                })
                .arg(now_ms)
                .arg(draft.ts)
                .arg(rest)
                .arg(policy.size)
                .arg(policy.ttl_ms)
                .arg(&template.channel);
            for part in &template.parts {
                invocation.arg(part.as_slice());
            }
            invocation
                .arg(if template.member.is_some() { "1" } else { "0" })
                .arg(&draft.channel_id);
            let id: Option<String> = invocation
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            let Some(id) = id else {
                return Ok(Some(Appended::NotMember));
            };
            let id = id
                .parse::<u64>()
                .map_err(|err| unexpected("message id", &err))?;
            Ok(Some(Appended::Published(Message {
                id,
                ..draft.clone()
            })))
        }
        .await;
        inner.observe(result)
    }

    fn checks_membership(&self) -> bool {
        !self.inner.cluster
    }

    async fn log_since(&self, after: u64, limit: usize) -> BackendResult<Option<Missed>> {
        let inner = &self.inner;
        if !inner.cluster {
            return Ok(None);
        }
        let result = async {
            let link = inner.link()?;
            let shard = &inner.options.shard_channel;
            let reply: Vec<String> = scripts::LOG_SINCE
                .key(inner.keys.shard_log(shard))
                .key(inner.keys.shard_log_floor(shard))
                .key(inner.keys.shard_message_id(shard))
                .arg(after)
                .arg(limit.saturating_add(1))
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            let mut reply = reply.into_iter();
            let floor = reply.next().unwrap_or_default();
            let floor = floor
                .parse::<u64>()
                .map_err(|_| unexpected("recovery log floor", &floor))?;
            let mut messages = parse_messages(reply)?;
            let cut = messages.len() > limit;
            messages.truncate(limit);
            Ok(Some(Missed {
                messages,
                complete: !cut && floor <= after,
            }))
        }
        .await;
        inner.observe(result)
    }

    async fn since(
        &self,
        channel_id: &str,
        since: u64,
        limit: usize,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<Missed> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let reply: Vec<String> = scripts::HISTORY_SINCE
                .key(inner.keys.history(channel_id))
                .key(inner.keys.history_floor(channel_id))
                .arg(since)
                .arg(limit)
                .arg(policy.size)
                .arg(policy.ttl_ms)
                .arg(now_ms)
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            let mut reply = reply.into_iter();
            let floor = reply.next().unwrap_or_default();
            let floor = floor
                .parse::<u64>()
                .map_err(|_| unexpected("history floor", &floor))?;
            Ok(finish_since(
                parse_messages(reply)?,
                floor,
                since,
                limit,
                policy.cutoff_ms(now_ms),
            ))
        }
        .await;
        inner.observe(result)
    }

    async fn before(
        &self,
        channel_id: &str,
        before: Option<u64>,
        limit: usize,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<HistoryPage> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let reply: Vec<String> = scripts::HISTORY_BEFORE
                .key(inner.keys.history(channel_id))
                .key(inner.keys.history_floor(channel_id))
                .arg(before.map(|id| id.to_string()).unwrap_or_default())
                .arg(limit)
                .arg(policy.size)
                .arg(policy.ttl_ms)
                .arg(now_ms)
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            Ok(finish_before(
                parse_messages(reply)?,
                limit,
                policy.cutoff_ms(now_ms),
            ))
        }
        .await;
        inner.observe(result)
    }
}
