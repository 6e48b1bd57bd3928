//! Presence on Redis: one entry per connection in the user's slot, an index
//! of online users in its own key.
//!
//! The user's slot decides, atomically (Lua), whether a connection made the
//! user come online or was their last one; only then is the global index
//! (`P:online`) updated, with a separate command (another slot). That
//! cross-slot step is safe because the index is only a list of *candidates*:
//! readers check each candidate against the user's presence hash (in the
//! same round trip that fetches status and last seen), so a stale entry is
//! never reported. The one harmful race, a removal's `ZREM` landing after a
//! new connection's `ZADD`, is closed by the remover: after its `ZREM` it
//! checks whether the user is online again and, if so, adds them back.

use async_trait::async_trait;
use redis::{Value, cmd};

use super::conn::{Link, backend_error, unexpected};
use super::{Inner, PendingRemoval, RedisBackend, scripts};
use crate::backend::{
    BackendError, BackendResult, ConnectOutcome, ConnectionRecord, PresenceStore,
};
use crate::protocol::{PresenceInfo, PresenceStatus};

/// A stored status; anything unknown reads as `online` (the user is connected).
fn parse_status(text: &str) -> PresenceStatus {
    match text {
        "away" => PresenceStatus::Away,
        "busy" => PresenceStatus::Busy,
        _ => PresenceStatus::Online,
    }
}

/// Runs `add_connection.lua` (and, at the same time, records the connection
/// in its node's set, for sweeping a dead node) and, when the user came
/// online, adds them to the online index. A refused or failed registration
/// is undone (best effort) so it leaves nothing behind.
#[allow(clippy::too_many_arguments)]
pub(super) async fn register(
    inner: &Inner,
    link: &Link,
    user_id: &str,
    connection_id: &str,
    node_id: &str,
    max_connections: usize,
    now_ms: u64,
    status: PresenceStatus,
) -> BackendResult<ConnectOutcome> {
    let keys = &inner.keys;
    let mut script_link = link.clone();
    let mut script = scripts::ADD_CONNECTION.key(keys.connections(user_id));
    script
        .key(keys.presence(user_id))
        .arg(connection_id)
        .arg(node_id)
        .arg(max_connections)
        .arg(now_ms)
        .arg(status.as_str());
    let node_entry = cmd("HSET")
        .arg(keys.node_connections(node_id))
        .arg(connection_id)
        .arg(user_id)
        .clone();
    let (registered, noted) = tokio::join!(
        script.invoke_async::<(i64, String)>(&mut script_link),
        link.query::<Value>(node_entry),
    );
    let forget_node_entry = || async {
        let undo = cmd("HDEL")
            .arg(keys.node_connections(node_id))
            .arg(connection_id)
            .clone();
        if let Err(err) = link.query::<Value>(undo).await {
            tracing::debug!(%err, "node entry of a refused connection not removed");
        }
    };
    let (code, stored) = match (registered.map_err(backend_error), noted) {
        (Ok(reply), Ok(_)) => reply,
        (Ok((code, _)), Err(err)) => {
            if code >= 0 {
                undo_registration(inner, link, user_id, connection_id, node_id, now_ms).await;
            }
            return Err(err);
        }
        (Err(err), _) => {
            forget_node_entry().await;
            return Err(err);
        }
    };
    match code {
        -1 => {
            forget_node_entry().await;
            Ok(ConnectOutcome::TooManyConnections)
        }
        0 => Ok(ConnectOutcome::Registered {
            first: false,
            status: parse_status(&stored),
        }),
        1 => {
            let indexed = link
                .query::<Value>(
                    cmd("ZADD")
                        .arg(keys.online_index())
                        .arg(0)
                        .arg(user_id)
                        .clone(),
                )
                .await;
            if let Err(err) = indexed {
                undo_registration(inner, link, user_id, connection_id, node_id, now_ms).await;
                return Err(err);
            }
            Ok(ConnectOutcome::Registered {
                first: true,
                status: parse_status(&stored),
            })
        }
        other => Err(unexpected("add_connection", &other)),
    }
}

/// Removes a half-made registration, or queues its removal for when Redis is back.
async fn undo_registration(
    inner: &Inner,
    link: &Link,
    user_id: &str,
    connection_id: &str,
    node_id: &str,
    now_ms: u64,
) {
    if let Err(undo) = unregister(inner, link, user_id, connection_id, node_id, now_ms).await {
        tracing::warn!(%undo, user_id, "could not undo a half-made registration");
        inner.live.lock().pending_removals.push(PendingRemoval {
            user_id: user_id.to_owned(),
            connection_id: connection_id.to_owned(),
            node_id: node_id.to_owned(),
        });
    }
}

/// Runs `remove_connection.lua` (and drops the connection from its node's
/// set at the same time); when it was the user's last connection, removes
/// them from the online index, then re-adds them if a connection came in
/// meanwhile. Returns whether the user went offline.
pub(super) async fn unregister(
    inner: &Inner,
    link: &Link,
    user_id: &str,
    connection_id: &str,
    node_id: &str,
    now_ms: u64,
) -> BackendResult<bool> {
    let keys = &inner.keys;
    let mut script_link = link.clone();
    let mut script = scripts::REMOVE_CONNECTION.key(keys.connections(user_id));
    script
        .key(keys.presence(user_id))
        .arg(connection_id)
        .arg(now_ms);
    let node_entry = cmd("HDEL")
        .arg(keys.node_connections(node_id))
        .arg(connection_id)
        .clone();
    let (removed, forgotten) = tokio::join!(
        script.invoke_async::<i64>(&mut script_link),
        link.query::<Value>(node_entry),
    );
    let code = removed.map_err(backend_error)?;
    forgotten?;
    match code {
        0 | 2 => Ok(false),
        1 => {
            // The user is offline in their own slot, which is what counts;
            // the index is tidied best effort (readers ignore stale entries).
            let tidy = async {
                link.query::<Value>(cmd("ZREM").arg(keys.online_index()).arg(user_id).clone())
                    .await?;
                let back: bool = link
                    .query(cmd("EXISTS").arg(keys.presence(user_id)).clone())
                    .await?;
                if back {
                    link.query::<Value>(
                        cmd("ZADD")
                            .arg(keys.online_index())
                            .arg(0)
                            .arg(user_id)
                            .clone(),
                    )
                    .await?;
                }
                Ok::<(), BackendError>(())
            };
            if let Err(err) = tidy.await {
                tracing::debug!(%err, user_id, "online index not tidied");
            }
            Ok(true)
        }
        other => Err(unexpected("remove_connection", &other)),
    }
}

/// Status and last seen of each user that is online, in the order given:
/// one batch of `HMGET`s.
async fn presence_of(
    link: &Link,
    inner: &Inner,
    user_ids: &[String],
) -> BackendResult<Vec<PresenceInfo>> {
    let cmds = user_ids
        .iter()
        .map(|user_id| {
            cmd("HMGET")
                .arg(inner.keys.presence(user_id))
                .arg("status")
                .arg("last_seen")
                .clone()
        })
        .collect();
    let replies = link.batch(cmds).await?;
    let mut online = Vec::new();
    for (user_id, reply) in user_ids.iter().zip(replies) {
        let (status, last_seen): (Option<String>, Option<u64>) =
            redis::from_redis_value(reply).map_err(|err| unexpected("HMGET presence", &err))?;
        if let Some(status) = status {
            online.push(PresenceInfo {
                user_id: user_id.clone(),
                status: parse_status(&status),
                last_seen: last_seen.unwrap_or(0),
            });
        }
    }
    Ok(online)
}

#[async_trait]
impl PresenceStore for RedisBackend {
    async fn add_connection(
        &self,
        user_id: &str,
        connection: ConnectionRecord,
        max_connections: usize,
        now_ms: u64,
    ) -> BackendResult<ConnectOutcome> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let outcome = register(
                inner,
                &link,
                user_id,
                &connection.connection_id,
                &connection.node_id,
                max_connections,
                now_ms,
                PresenceStatus::Online,
            )
            .await?;
            if let ConnectOutcome::Registered { status, .. } = outcome {
                inner.live.lock().add(user_id, &connection, status);
            }
            Ok(outcome)
        }
        .await;
        inner.observe(result)
    }

    async fn remove_connection(
        &self,
        user_id: &str,
        connection_id: &str,
        now_ms: u64,
    ) -> BackendResult<Option<u64>> {
        // Draining: keep the presence until the grace period ends, so the
        // client can reconnect elsewhere first; the removal runs then, in the
        // background, and its outcome is collected by `finish_drain`.
        let drain_until = *self.inner.drain_until.lock();
        if let Some(until) = drain_until {
            let inner = self.inner.clone();
            let (user_id, connection_id) = (user_id.to_owned(), connection_id.to_owned());
            let removal = tokio::spawn(async move {
                tokio::time::sleep_until(until).await;
                match remove_now(&inner, &user_id, &connection_id, now_ms).await {
                    Ok(Some(last_seen)) => Some((user_id, last_seen)),
                    Ok(None) => None,
                    Err(err) => {
                        tracing::warn!(user_id, %err, "deferred presence removal failed");
                        None
                    }
                }
            });
            self.inner.drain_tasks.lock().push(removal);
            return Ok(None);
        }
        remove_now(&self.inner, user_id, connection_id, now_ms).await
    }
    async fn set_status(
        &self,
        user_id: &str,
        status: PresenceStatus,
        now_ms: u64,
    ) -> BackendResult<Option<PresenceInfo>> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let set: i64 = scripts::SET_STATUS
                .key(inner.keys.presence(user_id))
                .arg(status.as_str())
                .arg(now_ms)
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            if set == 0 {
                return Ok(None);
            }
            if let Some(entry) = inner.live.lock().users.get_mut(user_id) {
                entry.1 = status;
            }
            Ok(Some(PresenceInfo {
                user_id: user_id.to_owned(),
                status,
                last_seen: now_ms,
            }))
        }
        .await;
        inner.observe(result)
    }

    async fn online_among(&self, user_ids: &[String]) -> BackendResult<Vec<PresenceInfo>> {
        let inner = &self.inner;
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let result = async {
            let link = inner.link()?;
            presence_of(&link, inner, user_ids).await
        }
        .await;
        inner.observe(result)
    }

    async fn connection_count(&self, user_id: &str) -> BackendResult<usize> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            link.query(cmd("HLEN").arg(inner.keys.connections(user_id)).clone())
                .await
        }
        .await;
        inner.observe(result)
    }

    async fn online_users(&self) -> BackendResult<Vec<PresenceInfo>> {
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let candidates: Vec<String> = link
                .query(
                    cmd("ZRANGE")
                        .arg(inner.keys.online_index())
                        .arg(0)
                        .arg(-1)
                        .clone(),
                )
                .await?;
            presence_of(&link, inner, &candidates).await
        }
        .await;
        inner.observe(result)
    }
}

/// Removes a connection's presence now; `Some(last seen)` when the user went
/// offline.
async fn remove_now(
    inner: &Inner,
    user_id: &str,
    connection_id: &str,
    now_ms: u64,
) -> BackendResult<Option<u64>> {
    // Forget it first: a re-registration running meanwhile must not bring it back.
    let node_id = inner
        .live
        .lock()
        .remove(connection_id)
        .unwrap_or_else(|| inner.options.node_id.clone());
    let result = async {
        let link = inner.link()?;
        unregister(inner, &link, user_id, connection_id, &node_id, now_ms).await
    }
    .await;
    if let Err(BackendError::Unavailable(_)) = &result {
        // Redis still lists it (unless it lost everything): retry once it is back.
        inner.live.lock().pending_removals.push(PendingRemoval {
            user_id: user_id.to_owned(),
            connection_id: connection_id.to_owned(),
            node_id,
        });
    }
    Ok(inner.observe(result)?.then_some(now_ms))
}
