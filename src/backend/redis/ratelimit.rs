//! Rate limiting on Redis: one GCRA script per check (`rate_limit.lua`), so
//! a user's quota is shared by every node and every connection.

use std::time::Duration;

use async_trait::async_trait;

use super::conn::{backend_error, unexpected};
use super::{RedisBackend, scripts};
use crate::backend::{BackendError, BackendResult, RateLimitStore, RateQuota};

#[async_trait]
impl RateLimitStore for RedisBackend {
    async fn check(
        &self,
        user_id: &str,
        event: &str,
        quota: RateQuota,
    ) -> BackendResult<Option<Duration>> {
        if quota.count == 0 {
            return Err(BackendError::Internal("rate quota of zero events".into()));
        }
        let interval_us =
            u64::try_from(quota.period.as_micros() / u128::from(quota.count)).unwrap_or(u64::MAX);
        if interval_us == 0 {
            return Err(BackendError::Internal(
                "rate quota with a zero period".into(),
            ));
        }
        let inner = &self.inner;
        let result = async {
            let link = inner.link()?;
            let wait_us: i64 = scripts::RATE_LIMIT
                .key(inner.keys.rate_limit(user_id, event))
                .arg(interval_us)
                .arg(quota.count)
                .invoke_async(&mut link.clone())
                .await
                .map_err(backend_error)?;
            match u64::try_from(wait_us) {
                Ok(0) => Ok(None),
                Ok(wait) => Ok(Some(Duration::from_micros(wait))),
                Err(_) => Err(unexpected("rate_limit", &wait_us)),
            }
        }
        .await;
        match inner.observe(result) {
            Err(BackendError::Unavailable(detail)) if inner.options.rate_limit_fail_open => {
                tracing::debug!(%detail, user_id, event, "rate limit not checked (fail open)");
                Ok(None)
            }
            other => other,
        }
    }
}
