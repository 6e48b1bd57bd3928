//! Connection state recovery (Socket.IO >= 4.6, wire contract v1.2): a
//! client that lost its connection reconnects, to any node, within the
//! recovery window, sends back its session's private id (`pid`) and the
//! offset of the last `message:new` it received, and continues its session:
//! same socket id, channels subscribed, and every `message:new` it missed
//! delivered before the CONNECT reply.
//!
//! Why one offset is enough: every connection receives the messages of all
//! its channels in id order (Redis publishes them in id order from inside
//! the script that assigns the ids, on one Redis and, through the sharded
//! channel's slot, on a Redis Cluster; one process takes turns), so the id
//! of the last message received says that everything below it arrived and
//! nothing above it did. The missed messages are then those of the user's
//! channels with a higher id, read from history (on a Redis Cluster from
//! the recovery log, which has a message before anyone receives it; see
//! [`ChatService::replay`]). Nothing about the
//! session lives only in one node's memory: the session record is in the
//! backend, membership is the user's, messages are in history, so a crashed
//! node's clients recover on the others.

use std::time::Duration;

use super::{ChatService, backend_failure};
use crate::backend::SessionRecord;
use crate::clock::now_ms;
use crate::error::GatewayResult;
use crate::protocol::Message;

/// How far the clocks of nodes and Redis may disagree (ms).
const CLOCK_MARGIN_MS: u64 = 1000;

/// A session continued by [`ChatService::recover_session`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The session, as kept.
    pub record: SessionRecord,
    /// What the connection missed, in id order.
    pub missed: Vec<Message>,
}

impl ChatService {
    /// Turns connection state recovery on for `window` after a connection
    /// is lost (zero: off). It needs history: recovery replays from it.
    pub fn with_recovery(mut self, window: Duration) -> Self {
        self.recovery_window = window;
        self
    }

    /// Whether lost connections can be recovered.
    pub fn recovery_enabled(&self) -> bool {
        !self.recovery_window.is_zero() && !self.history.is_off()
    }

    /// How long a live session is kept between two refreshes by its node:
    /// a third longer than the window, refreshed every third of it, so a
    /// session whose node crashed stays recoverable for at least the window.
    pub fn live_session_ttl(&self) -> Duration {
        self.recovery_window + self.session_refresh_interval()
    }

    /// How often a node refreshes its live sessions.
    pub fn session_refresh_interval(&self) -> Duration {
        (self.recovery_window / 3).max(Duration::from_millis(1))
    }

    /// Whether sessions outlive this process (Redis): then they are kept in
    /// the backend while live, and refreshed by their node.
    pub fn sessions_durable(&self) -> bool {
        self.backends.sessions.durable()
    }

    /// A new session `pid` of `user_id` on the connection `sid`, owed every
    /// message sent from now on. Returns its record (the caller keeps it
    /// while the connection lives).
    pub async fn open_session(
        &self,
        pid: &str,
        sid: &str,
        user_id: &str,
    ) -> GatewayResult<SessionRecord> {
        // Every message handed out from now on has an id of at least its
        // time times 1000 (the node's or Redis's clock, whichever is later),
        // so none below this bound is owed; the margin covers clocks of
        // nodes that disagree. The bound keeps a young session within what
        // history holds, even where no message was sent yet.
        let start = now_ms().saturating_sub(CLOCK_MARGIN_MS) * 1000;
        let record = SessionRecord {
            sid: sid.to_owned(),
            user_id: user_id.to_owned(),
            start,
            joined: Default::default(),
        };
        self.backends
            .sessions
            .open(pid, record, self.live_session_ttl())
            .await
            .map_err(backend_failure)
    }

    /// Continues the session `pid` for `user_id`, whose last received
    /// message is `offset` (none: it received none), with `channels` the
    /// user's channels. `None` when the session cannot be recovered: unknown
    /// or expired `pid`, another user's, or history no longer holds all
    /// that was missed. `live` is the session as its still open (half-open)
    /// connection on this node keeps it, for a backend that keeps only lost
    /// sessions. A refused identity never gets here, and an attempt that
    /// fails leaves the session as it was.
    pub async fn recover_session(
        &self,
        pid: &str,
        user_id: &str,
        offset: Option<u64>,
        channels: &[String],
        live: Option<SessionRecord>,
    ) -> GatewayResult<Option<Recovered>> {
        if !self.recovery_enabled() {
            return Ok(None);
        }
        let kept = self
            .backends
            .sessions
            .load(pid)
            .await
            .map_err(backend_failure)?;
        let Some(record) = kept.or(live) else {
            return Ok(None);
        };
        if record.user_id != user_id {
            return Ok(None);
        }
        let after = offset.unwrap_or(record.start);
        // A channel joined during the session owes nothing from before.
        let from: Vec<(String, u64)> = channels
            .iter()
            .map(|channel| {
                let joined = record.joined.get(channel).copied().unwrap_or(0);
                (channel.clone(), after.max(joined))
            })
            .collect();
        let missed = self.replay_from(&from, None).await?;
        if !missed.complete {
            return Ok(None);
        }
        if self.sessions_durable() {
            self.backends
                .sessions
                .keep(pid, &record, self.live_session_ttl())
                .await
                .map_err(backend_failure)?;
        }
        Ok(Some(Recovered {
            record,
            missed: missed.messages,
        }))
    }

    /// The session `pid` joined `channel_id`: when recovered, it is owed
    /// that channel's messages from now on only.
    /// Returns the last message id handed out now (for the caller's own
    /// copy of the session), `None` when it could not be read.
    pub async fn note_session_join(&self, pid: &str, channel_id: &str) -> Option<u64> {
        match self.backends.sessions.note_join(pid, channel_id).await {
            Ok(last) => Some(last),
            Err(err) => {
                tracing::warn!(%err, "a session's join could not be noted");
                None
            }
        }
    }

    /// The connection of session `pid` (as `record` says) is gone: it may
    /// be recovered for the window from now.
    pub async fn lose_session(&self, pid: &str, record: &SessionRecord) {
        let kept = if self.sessions_durable() {
            self.backends
                .sessions
                .refresh(&[pid.to_owned()], self.recovery_window)
                .await
        } else {
            self.backends
                .sessions
                .keep(pid, record, self.recovery_window)
                .await
        };
        if let Err(err) = kept {
            tracing::warn!(%err, "a lost session's recovery window could not be started");
        }
    }

    /// Keeps this node's live sessions `pids` for another
    /// [`live_session_ttl`](Self::live_session_ttl).
    pub async fn refresh_sessions(&self, pids: &[String]) {
        if let Err(err) = self
            .backends
            .sessions
            .refresh(pids, self.live_session_ttl())
            .await
        {
            tracing::warn!(%err, sessions = pids.len(), "live sessions could not be refreshed");
        }
    }
}
