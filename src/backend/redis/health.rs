//! The health task: checks Redis every `health_interval` (sooner when a
//! request saw it fail; backing off while it is down), keeps `/readyz` honest, and re-registers this node's
//! live connections when Redis comes back.
//!
//! Each check writes the node's heartbeat key with `SET .. PX .. GET`. The
//! previous value tells whether Redis kept its data: when the key is gone (a
//! restart without persistence, a flush, a failover that lost writes), or
//! when Redis was unreachable before, the node replays its registry: first
//! the removals Redis missed, then every live connection (idempotent: a
//! connection still registered is left as it is).

use std::collections::HashMap;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::cmd;

use super::conn::unexpected;
use super::presence::{register, unregister};
use super::{Inner, STATE_DOWN, STATE_UP, scripts};
use crate::backend::BackendResult;
use crate::clock::now_ms;

/// How many re-registrations run at once.
const REPLAY_BATCH: usize = 64;

/// Longest pause between two checks while Redis is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until the backend is dropped. While Redis is down, the pause between
/// checks doubles (from `health_interval` up to 5 s).
pub(super) async fn run(inner: Weak<Inner>) {
    let mut failures: u32 = 0;
    loop {
        let (pause, wake) = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            check(&inner).await;
            let interval = inner.options.health_interval;
            let pause = if inner.state.load(Ordering::SeqCst) == STATE_DOWN {
                failures = failures.saturating_add(1);
                interval
                    .saturating_mul(1 << failures.min(16).saturating_sub(1))
                    .min(MAX_BACKOFF.max(interval))
            } else {
                failures = 0;
                interval
            };
            (pause, inner.wake.clone())
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {
                // Do not hammer a failing Redis: at most one early check per 100 ms.
                tokio::time::sleep(pause.min(Duration::from_millis(100))).await;
            }
        }
    }
}

/// One health check, and the replay when needed.
async fn check(inner: &Inner) {
    let before = inner.state.load(Ordering::SeqCst);
    match heartbeat(inner).await {
        Ok(kept) if kept && before == STATE_UP => {
            if let Err(err) = sweep(inner).await {
                tracing::debug!(%err, "sweeping dead nodes failed; will retry");
            }
        }
        Ok(kept) => match reconnected(inner).await {
            Ok(count) => {
                if before == STATE_DOWN {
                    tracing::info!(reregistered = count, "Redis is reachable again");
                } else if !kept && count > 0 {
                    tracing::warn!(
                        reregistered = count,
                        "Redis lost this node's presence; re-registered"
                    );
                }
                inner.state.store(STATE_UP, Ordering::SeqCst);
            }
            Err(err) => {
                tracing::warn!(%err, "re-registering presence in Redis failed; will retry");
                inner.state.store(STATE_DOWN, Ordering::SeqCst);
            }
        },
        Err(err) => {
            if before != STATE_DOWN {
                tracing::warn!(%err, "Redis is unreachable; requests answer SERVICE_UNAVAILABLE");
            }
            inner.state.store(STATE_DOWN, Ordering::SeqCst);
        }
    }
}

/// Redis was (re)reached or lost data: load the scripts, replay presence.
async fn reconnected(inner: &Inner) -> BackendResult<usize> {
    let link = inner.connector.ensure_link().await?;
    scripts::load_all(&link).await?;
    replay(inner).await
}

/// Writes the heartbeat (key and entry in the node index); returns whether
/// the previous heartbeat was still there.
async fn heartbeat(inner: &Inner) -> BackendResult<bool> {
    let link = inner.connector.ensure_link().await?;
    let ttl_ms = u64::try_from(inner.options.node_timeout.as_millis()).unwrap_or(u64::MAX);
    let now = now_ms();
    let replies = link
        .batch(vec![
            cmd("SET")
                .arg(inner.keys.node(&inner.options.node_id))
                .arg(now)
                .arg("PX")
                .arg(ttl_ms)
                .arg("GET")
                .clone(),
            cmd("ZADD")
                .arg(inner.keys.nodes())
                .arg(now.saturating_add(ttl_ms))
                .arg(&inner.options.node_id)
                .clone(),
            // Nodes whose heartbeat has not run out (this one included).
            cmd("ZCOUNT")
                .arg(inner.keys.nodes())
                .arg(now)
                .arg("+inf")
                .clone(),
        ])
        .await?;
    if let Some(count) = replies
        .get(2)
        .and_then(|v| redis::from_redis_value::<usize>(v.clone()).ok())
    {
        inner.live_nodes.store(count.max(1), Ordering::Relaxed);
    }
    let previous: Option<String> = replies
        .into_iter()
        .next()
        .map(redis::from_redis_value)
        .transpose()
        .map_err(|err| unexpected("SET GET", &err))?
        .flatten();
    Ok(previous.is_some())
}

/// How many dead nodes one check sweeps at most.
const SWEEP_NODES: isize = 4;

/// Removes the connections of nodes whose heartbeat ran out (crashed or
/// cut off): their users go offline unless connected elsewhere. Any node
/// may sweep; the one whose `ZREM` of the dead node succeeds does it. A node
/// that was only paused re-registers its connections when it sees its
/// heartbeat gone. Returns how many connections were removed.
async fn sweep(inner: &Inner) -> BackendResult<usize> {
    let link = inner.connector.ensure_link().await?;
    let dead: Vec<String> = link
        .query(
            cmd("ZRANGEBYSCORE")
                .arg(inner.keys.nodes())
                .arg("-inf")
                .arg(now_ms())
                .arg("LIMIT")
                .arg(0)
                .arg(SWEEP_NODES)
                .clone(),
        )
        .await?;
    let mut removed = 0;
    for node in dead {
        if node == inner.options.node_id {
            continue;
        }
        let claimed: i64 = link
            .query(cmd("ZREM").arg(inner.keys.nodes()).arg(&node).clone())
            .await?;
        if claimed == 0 {
            continue; // another node sweeps it
        }
        let connections: HashMap<String, String> = link
            .query(
                cmd("HGETALL")
                    .arg(inner.keys.node_connections(&node))
                    .clone(),
            )
            .await?;
        let entries: Vec<(String, String)> = connections.into_iter().collect();
        for chunk in entries.chunks(REPLAY_BATCH) {
            let now = now_ms();
            let results = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|(conn, user)| unregister(inner, &link, user, conn, &node, now)),
            )
            .await;
            for ((_, user), result) in chunk.iter().zip(results) {
                if result? {
                    // This node claimed the dead node: it alone reports.
                    if let Some(sink) = &inner.options.presence_changes {
                        let _ = sink.send(crate::protocol::PresenceInfo {
                            user_id: user.clone(),
                            status: crate::protocol::PresenceStatus::Offline,
                            last_seen: now,
                        });
                    }
                }
                removed += 1;
            }
        }
        link.query::<redis::Value>(cmd("DEL").arg(inner.keys.node_connections(&node)).clone())
            .await?;
        tracing::warn!(node = %node, connections = entries.len(), "swept the connections of a node that stopped answering");
    }
    Ok(removed)
}

/// Replays the removals Redis missed and re-registers every live connection
/// of this node. Returns how many connections were re-registered.
async fn replay(inner: &Inner) -> BackendResult<usize> {
    let link = inner.connector.ensure_link().await?;
    let removals = std::mem::take(&mut inner.live.lock().pending_removals);
    for (index, chunk) in removals.chunks(REPLAY_BATCH).enumerate() {
        let now = now_ms();
        let results = futures_util::future::join_all(chunk.iter().map(|gone| {
            unregister(
                inner,
                &link,
                &gone.user_id,
                &gone.connection_id,
                &gone.node_id,
                now,
            )
        }))
        .await;
        if let Some(Err(err)) = results.into_iter().find(Result::is_err) {
            // Removing twice is harmless: keep them all for the next try.
            inner
                .live
                .lock()
                .pending_removals
                .extend_from_slice(&removals[index * REPLAY_BATCH..]);
            return Err(err);
        }
    }
    let snapshot: Vec<(String, String, String, crate::protocol::PresenceStatus)> = {
        let live = inner.live.lock();
        live.connections
            .iter()
            .map(|(conn, owner)| {
                let status = live
                    .users
                    .get(&owner.user_id)
                    .map_or(crate::protocol::PresenceStatus::Online, |user| user.1);
                (
                    owner.user_id.clone(),
                    conn.clone(),
                    owner.node_id.clone(),
                    status,
                )
            })
            .collect()
    };
    for chunk in snapshot.chunks(REPLAY_BATCH) {
        let now = now_ms();
        let results =
            futures_util::future::join_all(chunk.iter().map(|(user, conn, node_id, status)| {
                // Live connections come back whatever the cap: they were admitted.
                register(inner, &link, user, conn, node_id, usize::MAX, now, *status)
            }))
            .await;
        for ((user, _, _, _), result) in chunk.iter().zip(results) {
            if let crate::backend::ConnectOutcome::Registered {
                first: true,
                status,
            } = result?
                && let Some(sink) = &inner.options.presence_changes
            {
                // The user came back online here: this node was swept while
                // alive (paused, cut off) or Redis lost its data. Say so, or
                // others would keep the offline the sweep announced.
                let _ = sink.send(crate::protocol::PresenceInfo {
                    user_id: user.clone(),
                    status,
                    last_seen: now,
                });
            }
        }
    }
    // Connections that ended while the replay ran may have been re-added.
    let ended: Vec<(String, String, String)> = {
        let live = inner.live.lock();
        snapshot
            .iter()
            .filter(|(_, conn, _, _)| !live.connections.contains_key(conn))
            .map(|(user, conn, node, _)| (user.clone(), conn.clone(), node.clone()))
            .collect()
    };
    for (user, conn, node) in &ended {
        unregister(inner, &link, user, conn, node, now_ms()).await?;
    }
    Ok(snapshot.len())
}
