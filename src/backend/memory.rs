//! In-memory backends: the default, for a single node that needs no outside
//! service. State lives in one process and is lost on restart.
//!
//! All presence and channel state sits behind one mutex: every operation is a
//! handful of map updates, so one lock keeps each operation atomic (as the
//! traits require) at no measurable cost. The lock is never held across an
//! `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;

use super::{
    BackendError, BackendHealth, BackendResult, ChannelOverview, ChannelStore, ConnectOutcome,
    ConnectionRecord, HistoryPage, HistoryPolicy, HistoryStore, JoinOutcome, Missed, PresenceStore,
    RateLimitStore, RateQuota, SessionRecord, SessionStore, finish_before, finish_since,
};
use crate::protocol::{Message, PresenceInfo, PresenceStatus};

/// Presence, membership and channel activity of one node, in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Online users and their connections; a user without connections is removed.
    online: HashMap<String, OnlineUser>,
    /// channel -> members.
    members: HashMap<String, BTreeSet<String>>,
    /// user -> channels, the reverse index (for the per-user channel cap and lists).
    memberships: HashMap<String, BTreeSet<String>>,
    /// channel -> last activity (ms). Kept while the channel has members.
    activity: HashMap<String, u64>,
    /// The last message id handed out (ids are global, so unique across channels).
    last_message_id: u64,
    /// channel -> its message history; removed when the channel goes quiet
    /// for longer than the TTL, as the Redis keys expire.
    history: HashMap<String, ChannelHistory>,
    /// pid -> a recoverable session and when it expires; expired entries
    /// are dropped as sessions are opened.
    sessions: HashMap<String, (SessionRecord, Instant)>,
}

/// One channel's history in memory.
#[derive(Debug, Default)]
struct ChannelHistory {
    /// The kept messages by id.
    messages: BTreeMap<u64, Message>,
    /// The highest id this history may have lost (see [`HistoryStore`]).
    floor: u64,
    /// When (ms) the whole history is gone: the TTL after the last record.
    expires_at: u64,
}

impl ChannelHistory {
    /// Drops messages past the TTL (by id, which is never below
    /// `ts * 1000`) and beyond the size, raising the floor.
    fn trim(&mut self, policy: HistoryPolicy, now_ms: u64) {
        let keep = self.messages.split_off(&policy.cutoff_id(now_ms));
        let expired = std::mem::replace(&mut self.messages, keep);
        if let Some((&id, _)) = expired.last_key_value() {
            self.floor = self.floor.max(id);
        }
        while self.messages.len() > policy.size {
            if let Some((id, _)) = self.messages.pop_first() {
                self.floor = self.floor.max(id);
            }
        }
    }
}

impl State {
    /// The live history of `channel_id`, trimmed at `now_ms`; `None` when
    /// there is none (never written, or expired as a whole).
    fn history(
        &mut self,
        channel_id: &str,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> Option<&mut ChannelHistory> {
        if self
            .history
            .get(channel_id)
            .is_some_and(|history| history.expires_at <= now_ms)
        {
            self.history.remove(channel_id);
        }
        let history = self.history.get_mut(channel_id)?;
        history.trim(policy, now_ms);
        Some(history)
    }
}

#[derive(Debug)]
struct OnlineUser {
    connections: Vec<ConnectionRecord>,
    status: PresenceStatus,
    last_seen: u64,
}

impl OnlineUser {
    fn info(&self, user_id: &str) -> PresenceInfo {
        PresenceInfo {
            user_id: user_id.to_owned(),
            status: self.status,
            last_seen: self.last_seen,
        }
    }
}

/// Message ids are `max(previous + 1, now_ms * 1000)`: unique and increasing
/// like a counter, yet still increasing after a restart (the clock moved on),
/// and below 2^53 so JavaScript reads them exactly until the year 2255.
pub fn next_message_id(previous: u64, now_ms: u64) -> u64 {
    previous.saturating_add(1).max(now_ms.saturating_mul(1000))
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn add_connection(
        &self,
        user_id: &str,
        connection: ConnectionRecord,
        max_connections: usize,
        now_ms: u64,
    ) -> BackendResult<ConnectOutcome> {
        let mut state = self.state.lock();
        match state.online.get_mut(user_id) {
            Some(user) => {
                if user
                    .connections
                    .iter()
                    .any(|c| c.connection_id == connection.connection_id)
                {
                    return Ok(ConnectOutcome::Registered {
                        first: false,
                        status: user.status,
                    });
                }
                if user.connections.len() >= max_connections {
                    return Ok(ConnectOutcome::TooManyConnections);
                }
                user.connections.push(connection);
                user.last_seen = now_ms;
                Ok(ConnectOutcome::Registered {
                    first: false,
                    status: user.status,
                })
            }
            None => {
                if max_connections == 0 {
                    return Ok(ConnectOutcome::TooManyConnections);
                }
                state.online.insert(
                    user_id.to_owned(),
                    OnlineUser {
                        connections: vec![connection],
                        status: PresenceStatus::Online,
                        last_seen: now_ms,
                    },
                );
                Ok(ConnectOutcome::Registered {
                    first: true,
                    status: PresenceStatus::Online,
                })
            }
        }
    }

    async fn remove_connection(
        &self,
        user_id: &str,
        connection_id: &str,
        now_ms: u64,
    ) -> BackendResult<Option<u64>> {
        let mut state = self.state.lock();
        let Some(user) = state.online.get_mut(user_id) else {
            return Ok(None);
        };
        let before = user.connections.len();
        user.connections
            .retain(|c| c.connection_id != connection_id);
        if user.connections.len() == before {
            return Ok(None);
        }
        user.last_seen = now_ms;
        if user.connections.is_empty() {
            state.online.remove(user_id);
            return Ok(Some(now_ms));
        }
        Ok(None)
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: PresenceStatus,
        now_ms: u64,
    ) -> BackendResult<Option<PresenceInfo>> {
        let mut state = self.state.lock();
        Ok(state.online.get_mut(user_id).map(|user| {
            user.status = status;
            user.last_seen = now_ms;
            user.info(user_id)
        }))
    }

    async fn online_among(&self, user_ids: &[String]) -> BackendResult<Vec<PresenceInfo>> {
        let state = self.state.lock();
        Ok(user_ids
            .iter()
            .filter_map(|id| state.online.get(id).map(|user| user.info(id)))
            .collect())
    }

    async fn connection_count(&self, user_id: &str) -> BackendResult<usize> {
        let state = self.state.lock();
        Ok(state
            .online
            .get(user_id)
            .map_or(0, |user| user.connections.len()))
    }

    async fn online_users(&self) -> BackendResult<Vec<PresenceInfo>> {
        let state = self.state.lock();
        let mut users: Vec<PresenceInfo> = state
            .online
            .iter()
            .map(|(id, user)| user.info(id))
            .collect();
        users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(users)
    }
}

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn join(
        &self,
        user_id: &str,
        channel_id: &str,
        max_channels: usize,
        now_ms: u64,
    ) -> BackendResult<JoinOutcome> {
        let mut state = self.state.lock();
        let State {
            members,
            memberships,
            activity,
            ..
        } = &mut *state;
        let channels = memberships.entry(user_id.to_owned()).or_default();
        if channels.contains(channel_id) {
            return Ok(JoinOutcome::AlreadyMember);
        }
        if channels.len() >= max_channels {
            if channels.is_empty() {
                memberships.remove(user_id);
            }
            return Ok(JoinOutcome::TooManyChannels);
        }
        channels.insert(channel_id.to_owned());
        members
            .entry(channel_id.to_owned())
            .or_default()
            .insert(user_id.to_owned());
        activity.entry(channel_id.to_owned()).or_insert(now_ms);
        Ok(JoinOutcome::Joined)
    }

    async fn leave(&self, user_id: &str, channel_id: &str) -> BackendResult<bool> {
        let mut state = self.state.lock();
        let was_member = match state.memberships.get_mut(user_id) {
            Some(channels) => {
                let removed = channels.remove(channel_id);
                if channels.is_empty() {
                    state.memberships.remove(user_id);
                }
                removed
            }
            None => false,
        };
        if was_member && let Some(members) = state.members.get_mut(channel_id) {
            members.remove(user_id);
            if members.is_empty() {
                // An empty channel is forgotten, activity included, so memory
                // follows live channels only.
                state.members.remove(channel_id);
                state.activity.remove(channel_id);
            }
        }
        Ok(was_member)
    }

    async fn is_member(&self, user_id: &str, channel_id: &str) -> BackendResult<bool> {
        let state = self.state.lock();
        Ok(state
            .memberships
            .get(user_id)
            .is_some_and(|channels| channels.contains(channel_id)))
    }

    async fn members(&self, channel_id: &str) -> BackendResult<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .members
            .get(channel_id)
            .map(|members| members.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn user_channels(&self, user_id: &str) -> BackendResult<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .memberships
            .get(user_id)
            .map(|channels| channels.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn next_message_id(&self, now_ms: u64) -> BackendResult<u64> {
        let mut state = self.state.lock();
        let id = next_message_id(state.last_message_id, now_ms);
        state.last_message_id = id;
        Ok(id)
    }

    async fn channel_stats(&self, channel_ids: &[String]) -> BackendResult<Vec<(u64, usize)>> {
        let state = self.state.lock();
        Ok(channel_ids
            .iter()
            .map(|id| {
                (
                    state.activity.get(id).copied().unwrap_or(0),
                    state.members.get(id).map_or(0, BTreeSet::len),
                )
            })
            .collect())
    }

    async fn channel_overview(
        &self,
        channel_ids: &[String],
    ) -> BackendResult<Vec<ChannelOverview>> {
        let state = self.state.lock();
        Ok(channel_ids
            .iter()
            .map(|id| ChannelOverview {
                last_activity: state.activity.get(id).copied().unwrap_or(0),
                members: state
                    .members
                    .get(id)
                    .map(|members| members.iter().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect())
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn record(
        &self,
        message: &Message,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<()> {
        let mut state = self.state.lock();
        let activity = state
            .activity
            .entry(message.channel_id.clone())
            .or_insert(message.ts);
        *activity = (*activity).max(message.ts);
        if policy.is_off() {
            return Ok(());
        }
        if state.history(&message.channel_id, policy, now_ms).is_none() {
            // A new history: whatever came before it may have existed and expired.
            state.history.insert(
                message.channel_id.clone(),
                ChannelHistory {
                    floor: policy.cutoff_id(now_ms),
                    ..ChannelHistory::default()
                },
            );
        }
        if let Some(history) = state.history.get_mut(&message.channel_id) {
            history.messages.insert(message.id, message.clone());
            history.expires_at = now_ms.saturating_add(policy.ttl_ms);
            history.trim(policy, now_ms);
        }
        Ok(())
    }

    async fn since(
        &self,
        channel_id: &str,
        since: u64,
        limit: usize,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<Missed> {
        let mut state = self.state.lock();
        let (newest_first, floor) = match state.history(channel_id, policy, now_ms) {
            Some(history) => (
                history
                    .messages
                    .range(since.saturating_add(1)..)
                    .rev()
                    .take(limit.saturating_add(1))
                    .map(|(_, message)| message.clone())
                    .collect(),
                history.floor,
            ),
            None => (Vec::new(), policy.cutoff_id(now_ms)),
        };
        Ok(finish_since(
            newest_first,
            floor,
            since,
            limit,
            policy.cutoff_ms(now_ms),
        ))
    }

    async fn before(
        &self,
        channel_id: &str,
        before: Option<u64>,
        limit: usize,
        policy: HistoryPolicy,
        now_ms: u64,
    ) -> BackendResult<HistoryPage> {
        let mut state = self.state.lock();
        let newest_first = match state.history(channel_id, policy, now_ms) {
            Some(history) => history
                .messages
                .range(..before.unwrap_or(u64::MAX))
                .rev()
                .take(limit.saturating_add(1))
                .map(|(_, message)| message.clone())
                .collect(),
            None => Vec::new(),
        };
        Ok(finish_before(newest_first, limit, policy.cutoff_ms(now_ms)))
    }
}

/// Memory is always there.
impl BackendHealth for MemoryStore {
    fn is_ready(&self) -> bool {
        true
    }

    /// In-memory state is one node's alone.
    fn live_nodes(&self) -> usize {
        1
    }
}

/// One keyed limiter per (event, quota).
type Limiters<C> = Mutex<HashMap<(String, RateQuota), Arc<KeyedLimiter<C>>>>;

type KeyedLimiter<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// GCRA rate limiting in memory, on `governor`: one keyed limiter per
/// (event, quota), keyed by user id.
///
/// Generic over the clock so tests can drive time by hand
/// (`governor::clock::FakeRelativeClock`) instead of sleeping.
pub struct MemoryRateLimiter<C: Clock = DefaultClock> {
    clock: C,
    limiters: Limiters<C>,
    /// Counts checks, to sweep idle keys every so often.
    checks: AtomicU64,
}

/// How many checks between two sweeps of idle rate-limit keys.
const SWEEP_EVERY: u64 = 4096;

impl Default for MemoryRateLimiter<DefaultClock> {
    fn default() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl<C: Clock> std::fmt::Debug for MemoryRateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter").finish_non_exhaustive()
    }
}

impl<C: Clock + Clone> MemoryRateLimiter<C> {
    /// A limiter reading time from `clock`.
    pub fn with_clock(clock: C) -> Self {
        MemoryRateLimiter {
            clock,
            limiters: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
        }
    }

    fn limiter(&self, event: &str, quota: RateQuota) -> BackendResult<Arc<KeyedLimiter<C>>> {
        let mut limiters = self.limiters.lock();
        if let Some(limiter) = limiters.get(&(event.to_owned(), quota)) {
            return Ok(limiter.clone());
        }
        let burst = NonZeroU32::new(quota.count)
            .ok_or_else(|| BackendError::Internal("rate quota of zero events".into()))?;
        let interval = quota.period / quota.count;
        let governor_quota = Quota::with_period(interval)
            .ok_or_else(|| BackendError::Internal("rate quota with a zero period".into()))?
            .allow_burst(burst);
        let limiter = Arc::new(RateLimiter::dashmap_with_clock(
            governor_quota,
            self.clock.clone(),
        ));
        limiters.insert((event.to_owned(), quota), limiter.clone());
        Ok(limiter)
    }
}

#[async_trait]
impl<C> RateLimitStore for MemoryRateLimiter<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    async fn check(
        &self,
        user_id: &str,
        event: &str,
        quota: RateQuota,
    ) -> BackendResult<Option<Duration>> {
        let limiter = self.limiter(event, quota)?;
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Keys whose bucket is full again carry no information: drop them.
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let key = user_id.to_owned();
        match limiter.check_key(&key) {
            Ok(()) => Ok(None),
            Err(not_until) => Ok(Some(not_until.wait_time_from(self.clock.now()))),
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn durable(&self) -> bool {
        false
    }

    async fn open(
        &self,
        _pid: &str,
        mut record: SessionRecord,
        _ttl: Duration,
    ) -> BackendResult<SessionRecord> {
        let mut st = self.state.lock();
        record.start = record.start.max(st.last_message_id);
        // Opening is as frequent as connecting: a fair moment to forget the
        // expired (lost) sessions.
        let now = Instant::now();
        st.sessions.retain(|_, (_, expires)| *expires > now);
        Ok(record)
    }

    async fn keep(&self, pid: &str, record: &SessionRecord, ttl: Duration) -> BackendResult<()> {
        self.state
            .lock()
            .sessions
            .insert(pid.to_owned(), (record.clone(), Instant::now() + ttl));
        Ok(())
    }

    async fn load(&self, pid: &str) -> BackendResult<Option<SessionRecord>> {
        let st = self.state.lock();
        Ok(st
            .sessions
            .get(pid)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(record, _)| record.clone()))
    }

    async fn note_join(&self, pid: &str, channel_id: &str) -> BackendResult<u64> {
        let mut st = self.state.lock();
        let last = st.last_message_id;
        if let Some((record, _)) = st.sessions.get_mut(pid) {
            record.joined.insert(channel_id.to_owned(), last);
        }
        Ok(last)
    }

    async fn refresh(&self, pids: &[String], ttl: Duration) -> BackendResult<()> {
        let mut st = self.state.lock();
        let expires = Instant::now() + ttl;
        for pid in pids {
            if let Some(entry) = st.sessions.get_mut(pid) {
                entry.1 = expires;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn record(id: &str) -> ConnectionRecord {
        ConnectionRecord {
            connection_id: id.to_owned(),
            node_id: "node".to_owned(),
        }
    }

    #[test]
    fn message_ids_are_unique_and_increasing() {
        assert_eq!(next_message_id(0, 5), 5000);
        assert_eq!(next_message_id(5000, 5), 5001);
        assert_eq!(next_message_id(5001, 6), 6000);
        assert_eq!(next_message_id(u64::MAX, 1), u64::MAX);
    }

    #[tokio::test]
    async fn rate_limiter_allows_burst_then_refuses_with_retry_after() -> BackendResult<()> {
        let clock = FakeRelativeClock::default();
        let limiter = MemoryRateLimiter::with_clock(clock.clone());
        let quota = RateQuota {
            count: 60,
            period: Duration::from_secs(60),
        };
        for _ in 0..60 {
            assert_eq!(limiter.check("alice", "message:send", quota).await?, None);
        }
        let retry = limiter.check("alice", "message:send", quota).await?;
        assert_eq!(retry, Some(Duration::from_secs(1)));
        // Other users and other events have their own budget.
        assert_eq!(limiter.check("bob", "message:send", quota).await?, None);
        assert_eq!(limiter.check("alice", "typing", quota).await?, None);
        // One interval later exactly one more event fits: no double burst.
        clock.advance(Duration::from_secs(1));
        assert_eq!(limiter.check("alice", "message:send", quota).await?, None);
        assert!(
            limiter
                .check("alice", "message:send", quota)
                .await?
                .is_some()
        );
        // After a whole period the full burst is back.
        clock.advance(Duration::from_secs(60));
        for _ in 0..60 {
            assert_eq!(limiter.check("alice", "message:send", quota).await?, None);
        }
        Ok(())
    }

    #[tokio::test]
    async fn presence_counts_connections() -> BackendResult<()> {
        let store = MemoryStore::default();
        let first = store.add_connection("alice", record("c1"), 2, 10).await?;
        assert_eq!(
            first,
            ConnectOutcome::Registered {
                first: true,
                status: PresenceStatus::Online
            }
        );
        let second = store.add_connection("alice", record("c2"), 2, 11).await?;
        assert!(matches!(
            second,
            ConnectOutcome::Registered { first: false, .. }
        ));
        assert_eq!(
            store.add_connection("alice", record("c3"), 2, 12).await?,
            ConnectOutcome::TooManyConnections
        );
        assert_eq!(store.remove_connection("alice", "c1", 20).await?, None);
        assert_eq!(store.online_users().await?.len(), 1);
        assert_eq!(store.remove_connection("alice", "c2", 21).await?, Some(21));
        // Removing twice is harmless and reports nothing.
        assert_eq!(store.remove_connection("alice", "c2", 22).await?, None);
        assert!(store.online_users().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn membership_cap_and_rejoin() -> BackendResult<()> {
        let store = MemoryStore::default();
        assert_eq!(store.join("u", "a", 2, 1).await?, JoinOutcome::Joined);
        assert_eq!(store.join("u", "b", 2, 1).await?, JoinOutcome::Joined);
        assert_eq!(
            store.join("u", "c", 2, 1).await?,
            JoinOutcome::TooManyChannels
        );
        assert_eq!(
            store.join("u", "a", 2, 1).await?,
            JoinOutcome::AlreadyMember
        );
        assert!(store.leave("u", "a").await?);
        assert!(!store.leave("u", "a").await?);
        assert_eq!(store.user_channels("u").await?, vec!["b".to_owned()]);
        assert_eq!(store.channel_stats(&["a".into()]).await?, vec![(0, 0)]);
        Ok(())
    }
}
