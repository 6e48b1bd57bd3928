//! The health task: checks Redis every `health_interval` (sooner when a
//! request saw it fail; every 100-500 ms while it is down, so a Redis that
//! answers again serves requests within about a second), keeps `/readyz`
//! honest, and re-registers this node's live connections when Redis comes
//! back.
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

/// First pause between two checks once Redis is found down.
const DOWN_PAUSE_MIN: Duration = Duration::from_millis(100);

/// Longest pause between two checks while Redis is down: a Redis that
/// answers again is noticed within about this long (plus one check).
const DOWN_PAUSE_MAX: Duration = Duration::from_millis(500);

/// A failed heartbeat quicker than this reported an earlier connection
/// attempt rather than trying now (see [`check`]).
const STALE_FAILURE: Duration = Duration::from_millis(50);

/// How often a request that saw Redis fail may bring a check forward.
const EARLY_CHECK_GAP: Duration = Duration::from_millis(100);

/// The pause after the `down_checks`-th failed check in a row (counting
/// from 0): doubles from 100 ms up to 500 ms, never beyond `interval`.
fn down_pause(interval: Duration, down_checks: u32) -> Duration {
    DOWN_PAUSE_MIN
        .saturating_mul(1 << down_checks.min(8))
        .min(DOWN_PAUSE_MAX)
        .min(interval)
}

/// Runs until the backend is dropped. While Redis is up it is checked every
/// `health_interval`; while it is down, the pause between checks backs off
/// from 100 ms to at most 500 ms (see [`down_pause`]). Only the timed checks
/// count towards the backoff: a request that sees Redis fail may bring a
/// check forward (at most one per 100 ms), never push the next one back.
pub(super) async fn run(inner: Weak<Inner>) {
    let mut down_checks: u32 = 0;
    let mut woken = false;
    loop {
        let (pause, wake) = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            check(&inner).await;
            let interval = inner.options.health_interval;
            let pause = if inner.state.load(Ordering::SeqCst) == STATE_DOWN {
                let pause = down_pause(interval, down_checks);
                if !woken {
                    down_checks = down_checks.saturating_add(1);
                }
                pause
            } else {
                down_checks = 0;
                interval
            };
            (pause, inner.wake.clone())
        };
        woken = tokio::select! {
            () = tokio::time::sleep(pause) => false,
            () = wake.notified() => {
                // Do not hammer a failing Redis.
                tokio::time::sleep(pause.min(EARLY_CHECK_GAP)).await;
                true
            }
        };
    }
}

/// One health check, and the replay when needed.
async fn check(inner: &Inner) {
    let before = inner.state.load(Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let mut beat = heartbeat(inner).await;
    if beat.is_err() && started.elapsed() < STALE_FAILURE {
        // A failure this quick is the connection's last reconnection attempt,
        // made before this check; the failure started a new one: wait for it,
        // so that a Redis answering again is noticed by this check.
        beat = heartbeat(inner).await;
    }
    match beat {
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
                if !kept
                    && count > 0
                    && let Some(sink) = &inner.options.data_lost
                {
                    // Memberships went with it: the node restores them.
                    let _ = sink.send(());
                }
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
    if inner.state.load(Ordering::SeqCst) == STATE_UP {
        inner.answered.notify_waiters();
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
