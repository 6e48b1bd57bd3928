//! Recoverable sessions on Redis: one JSON string per private id, with a
//! TTL (`P:{s:<pid>}:session`). Opening one reads the message counter
//! first (another slot, so two requests, not one script).

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::RedisBackend;
use super::conn::{backend_error, unexpected};
use crate::backend::{BackendResult, SessionRecord, SessionStore};

/// Milliseconds of `ttl`, at least one (Redis refuses a TTL of zero).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl SessionStore for RedisBackend {
    fn durable(&self) -> bool {
        true
    }

    async fn open(
        &self,
        pid: &str,
        mut record: SessionRecord,
        ttl: Duration,
    ) -> BackendResult<SessionRecord> {
        let inner = &self.inner;
        let result = async {
            let mut link = inner.link()?;
            let last: Option<String> =
                link.get(inner.counter_key()).await.map_err(backend_error)?;
            let last = match last {
                Some(text) => text
                    .parse()
                    .map_err(|err| unexpected("the message counter", &err))?,
                None => 0,
            };
            record.start = record.start.max(last);
            Ok(record)
        }
        .await;
        let record = inner.observe(result)?;
        self.keep(pid, &record, ttl).await?;
        Ok(record)
    }

    async fn keep(&self, pid: &str, record: &SessionRecord, ttl: Duration) -> BackendResult<()> {
        let inner = &self.inner;
        let result = async {
            let json =
                serde_json::to_string(record).map_err(|err| unexpected("a session", &err))?;
            let mut link = inner.link()?;
            let () = redis::cmd("SET")
                .arg(inner.keys.session(pid))
                .arg(json)
                .arg("PX")
                .arg(ttl_ms(ttl))
                .query_async(&mut link)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        .await;
        inner.observe(result)
    }

    async fn load(&self, pid: &str) -> BackendResult<Option<SessionRecord>> {
        let inner = &self.inner;
        let result = async {
            let mut link = inner.link()?;
            let json: Option<String> = link
                .get(inner.keys.session(pid))
                .await
                .map_err(backend_error)?;
            json.map(|json| {
                serde_json::from_str(&json).map_err(|err| unexpected("a stored session", &err))
            })
            .transpose()
        }
        .await;
        inner.observe(result)
    }

    async fn note_join(&self, pid: &str, channel_id: &str) -> BackendResult<u64> {
        let inner = &self.inner;
        let result = async {
            let mut link = inner.link()?;
            // Two slots: one non-atomic pipeline. Joins of one connection
            // come one at a time, so nothing else rewrites this session now.
            let (last, json): (Option<String>, Option<String>) = redis::pipe()
                .get(inner.keys.message_id())
                .get(inner.keys.session(pid))
                .query_async(&mut link)
                .await
                .map_err(backend_error)?;
            let last = last.and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
            let Some(json) = json else {
                return Ok(last);
            };
            let mut record: SessionRecord =
                serde_json::from_str(&json).map_err(|err| unexpected("a stored session", &err))?;
            record.joined.insert(channel_id.to_owned(), last);
            let json =
                serde_json::to_string(&record).map_err(|err| unexpected("a session", &err))?;
            redis::cmd("SET")
                .arg(inner.keys.session(pid))
                .arg(json)
                .arg("KEEPTTL")
                .arg("XX")
                .query_async::<Option<String>>(&mut link)
                .await
                .map_err(backend_error)?;
            Ok(last)
        }
        .await;
        inner.observe(result)
    }

    async fn refresh(&self, pids: &[String], ttl: Duration) -> BackendResult<()> {
        if pids.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let result = async {
            let mut link = inner.link()?;
            // Keys of many slots: a plain (non-atomic) pipeline, which a
            // cluster connection splits by slot.
            let mut pipe = redis::pipe();
            for pid in pids {
                pipe.cmd("PEXPIRE")
                    .arg(inner.keys.session(pid))
                    .arg(ttl_ms(ttl))
                    .ignore();
            }
            let () = pipe.query_async(&mut link).await.map_err(backend_error)?;
            Ok(())
        }
        .await;
        inner.observe(result)
    }
}
