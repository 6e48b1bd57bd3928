//! Membership, channel activity and message ids on Redis.
//!
//! Membership lives twice: in the user's slot (`P:{u:..}:channels`, the
//! source of truth, where the per-user cap is enforced atomically) and in the
//! channel's slot (`P:{c:..}:members`, for member lists). A join or leave
//! runs the user's half first, then the channel's half; if the second half
//! fails, the first is undone (best effort) and the call fails, and a
//! re-join always re-runs the (idempotent) channel half, which repairs a
//! join whose second half was lost.

use async_trait::async_trait;
use redis::{Value, cmd};

use super::conn::{Link, backend_error, unexpected};
use super::{Inner, RedisBackend, scripts};
use crate::backend::{BackendResult, ChannelOverview, ChannelStore, JoinOutcome};

/// The sorted members of a `SMEMBERS` reply.
fn sorted(reply: Value, what: &str) -> BackendResult<Vec<String>> {
    let mut items: Vec<String> =
        redis::from_redis_value(reply).map_err(|err| unexpected(what, &err))?;
    items.sort();
    Ok(items)
}

/// The activity field of a `HGET` reply (0 when the channel has none).
fn activity(reply: Value) -> BackendResult<u64> {
    let value: Option<u64> =
        redis::from_redis_value(reply).map_err(|err| unexpected("HGET activity", &err))?;
    Ok(value.unwrap_or(0))
}

async fn add_member(
    inner: &Inner,
    link: &Link,
    user_id: &str,
    channel_id: &str,
    now_ms: u64,
) -> BackendResult<()> {
    scripts::CHANNEL_ADD_MEMBER
        .key(inner.keys.members(channel_id))
        .key(inner.keys.channel_meta(channel_id))
        .arg(user_id)
        .arg(now_ms)
        .invoke_async::<Value>(&mut link.clone())
        .await
        .map_err(backend_error)?;
    Ok(())
}

#[async_trait]
impl ChannelStore for RedisBackend {
    async fn join(
        &self,
        user_id: &str,
        channel_id: &str,
        max_channels: usize,
        now_ms: u64,
    ) -> BackendResult<JoinOutcome> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let code: i64 = scripts::JOIN_USER
                .key(inner.keys.user_channels(user_id))
                .arg(channel_id)
                .arg(max_channels)
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            let outcome = match code {
                1 => JoinOutcome::Joined,
                0 => JoinOutcome::AlreadyMember,
                -1 => return Ok(JoinOutcome::TooManyChannels),
                other => return Err(unexpected("join_user", &other)),
            };
            if let Err(err) = add_member(inner, &link, user_id, channel_id, now_ms).await {
                if outcome == JoinOutcome::Joined {
                    let undo = cmd("SREM")
                        .arg(inner.keys.user_channels(user_id))
                        .arg(channel_id)
                        .clone();
                    if let Err(undo) = link.query::<Value>(undo).await {
                        tracing::warn!(%undo, user_id, channel_id, "half-made join not undone; a re-join repairs it");
                    }
                }
                return Err(err);
            }
            Ok(outcome)
        }
        .await;
        inner.observe(result)
    }

    async fn leave(&self, user_id: &str, channel_id: &str) -> BackendResult<bool> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let removed: i64 = link
                .query(
                    cmd("SREM")
                        .arg(inner.keys.user_channels(user_id))
                        .arg(channel_id)
                        .clone(),
                )
                .await?;
            if removed == 0 {
                return Ok(false);
            }
            let channel_half = scripts::CHANNEL_REMOVE_MEMBER
                .key(inner.keys.members(channel_id))
                .key(inner.keys.channel_meta(channel_id))
                .arg(user_id)
                .invoke_async::<Value>(&mut link.clone())
                .await
                .map_err(backend_error);
            if let Err(err) = channel_half {
                let undo = cmd("SADD")
                    .arg(inner.keys.user_channels(user_id))
                    .arg(channel_id)
                    .clone();
                if let Err(undo) = link.query::<Value>(undo).await {
                    tracing::warn!(%undo, user_id, channel_id, "half-made leave not undone");
                }
                return Err(err);
            }
            Ok(true)
        }
        .await;
        inner.observe(result)
    }

    async fn is_member(&self, user_id: &str, channel_id: &str) -> BackendResult<bool> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            link.query(
                cmd("SISMEMBER")
                    .arg(inner.keys.user_channels(user_id))
                    .arg(channel_id)
                    .clone(),
            )
            .await
        }
        .await;
        inner.observe(result)
    }

    async fn members(&self, channel_id: &str) -> BackendResult<Vec<String>> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let reply: Value = link
                .query(cmd("SMEMBERS").arg(inner.keys.members(channel_id)).clone())
                .await?;
            sorted(reply, "SMEMBERS members")
        }
        .await;
        inner.observe(result)
    }

    async fn user_channels(&self, user_id: &str) -> BackendResult<Vec<String>> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let reply: Value = link
                .query(
                    cmd("SMEMBERS")
                        .arg(inner.keys.user_channels(user_id))
                        .clone(),
                )
                .await?;
            sorted(reply, "SMEMBERS channels")
        }
        .await;
        inner.observe(result)
    }

    async fn next_message_id(&self, now_ms: u64) -> BackendResult<u64> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let id: String = scripts::NEXT_MESSAGE_ID
                .key(inner.counter_key())
                .arg(now_ms)
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            id.parse::<u64>()
                .map_err(|_| unexpected("next_message_id", &id))
        }
        .await;
        inner.observe(result)
    }

    async fn channel_stats(&self, channel_ids: &[String]) -> BackendResult<Vec<(u64, usize)>> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let mut cmds = Vec::with_capacity(channel_ids.len() * 2);
            for channel_id in channel_ids {
                cmds.push(
                    cmd("HGET")
                        .arg(inner.keys.channel_meta(channel_id))
                        .arg("activity")
                        .clone(),
                );
                cmds.push(cmd("SCARD").arg(inner.keys.members(channel_id)).clone());
            }
            let mut replies = link.batch(cmds).await?.into_iter();
            let mut stats = Vec::with_capacity(channel_ids.len());
            while let (Some(last), Some(count)) = (replies.next(), replies.next()) {
                let count: usize =
                    redis::from_redis_value(count).map_err(|err| unexpected("SCARD", &err))?;
                stats.push((activity(last)?, count));
            }
            Ok(stats)
        }
        .await;
        inner.observe(result)
    }

    async fn channel_overview(
        &self,
        channel_ids: &[String],
    ) -> BackendResult<Vec<ChannelOverview>> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let mut cmds = Vec::with_capacity(channel_ids.len() * 2);
            for channel_id in channel_ids {
                cmds.push(
                    cmd("HGET")
                        .arg(inner.keys.channel_meta(channel_id))
                        .arg("activity")
                        .clone(),
                );
                cmds.push(cmd("SMEMBERS").arg(inner.keys.members(channel_id)).clone());
            }
            let mut replies = link.batch(cmds).await?.into_iter();
            let mut overview = Vec::with_capacity(channel_ids.len());
            while let (Some(last), Some(members)) = (replies.next(), replies.next()) {
                overview.push(ChannelOverview {
                    last_activity: activity(last)?,
                    members: sorted(members, "SMEMBERS members")?,
                });
            }
            Ok(overview)
        }
        .await;
        inner.observe(result)
    }
}
