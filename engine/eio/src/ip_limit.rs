//! Per-IP rate limit of new engine connections (handshakes).
//!
//! A GCRA (generic cell rate algorithm) per client address: an address may
//! open up to `count` sessions at once, after which one more is allowed every
//! `period / count`. Only new sessions count: polling requests of an open
//! session and its WebSocket upgrade do not.
//!
//! Memory is bounded: an entry whose budget is full again is equivalent to no
//! entry and is pruned; at most [`MAX_TRACKED`] addresses are tracked, and
//! an address beyond that (only possible with that many distinct addresses
//! within one period) is let through rather than refused (fail open: the
//! limit is a guard against one noisy address, not against a botnet). IPv6
//! addresses are keyed by their /64 prefix, which one host usually owns
//! whole.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::ConnectionRateLimit;

/// Most addresses tracked at once (about 48 bytes each).
pub(crate) const MAX_TRACKED: usize = 100_000;

/// The limiter state: per address, the GCRA "theoretical arrival time".
pub(crate) struct IpLimiter {
    /// Time between two refills of one connection.
    interval: Duration,
    /// `interval * count`: how far ahead of now an address's TAT may be.
    window: Duration,
    tats: Mutex<HashMap<IpKey, Instant>>,
}

/// An IPv4 address, or the /64 prefix of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => IpKey::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

impl IpLimiter {
    /// A limiter for `limit` (a count of zero is treated as one).
    pub(crate) fn new(limit: ConnectionRateLimit) -> IpLimiter {
        let count = limit.count.max(1);
        let interval = (limit.period / count).max(Duration::from_nanos(1));
        IpLimiter {
            interval,
            window: interval.saturating_mul(count),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one new connection of `ip` at `now`: `Ok` when allowed,
    /// `Err(retry_after)` when refused (nothing is counted then).
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = IpKey::from(ip);
        let mut tats = self.tats.lock();
        let tat = tats.get(&key).copied().unwrap_or(now).max(now);
        let new_tat = tat + self.interval;
        let ahead = new_tat - now;
        if ahead > self.window {
            return Err(ahead - self.window);
        }
        if tats.len() >= MAX_TRACKED && !tats.contains_key(&key) {
            // Entries at or behind `now` carry no state: drop them.
            tats.retain(|_, tat| *tat > now);
            if tats.len() >= MAX_TRACKED {
                return Ok(()); // fail open, see the module docs
            }
        }
        tats.insert(key, new_tat);
        Ok(())
    }

    /// Addresses currently tracked (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.tats.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn limiter(count: u32, period_ms: u64) -> IpLimiter {
        IpLimiter::new(ConnectionRateLimit {
            count,
            period: Duration::from_millis(period_ms),
        })
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn burst_then_even_refill() {
        let l = limiter(3, 3000);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(A, t0), Ok(()));
        }
        let retry = l.check(A, t0).expect_err("4th refused");
        assert_eq!(retry, Duration::from_secs(1));
        // Another address has its own budget.
        assert_eq!(l.check(B, t0), Ok(()));
        // One refill after the interval, not two.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.check(A, t1), Ok(()));
        assert!(l.check(A, t1).is_err());
    }

    #[test]
    fn ipv6_is_keyed_by_prefix_and_mapped_v4_by_v4() {
        let l = limiter(1, 60_000);
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8::1"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let same_prefix: IpAddr = "2001:db8::ffff:1".parse().unwrap_or(one);
        assert_eq!(l.check(one, t0), Ok(()));
        assert!(l.check(same_prefix, t0).is_err());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or(one);
        assert_eq!(l.check(A, t0), Ok(()));
        assert!(l.check(mapped, t0).is_err());
    }

    #[test]
    fn stale_entries_are_pruned_when_full() {
        let l = limiter(1, 10);
        let t0 = Instant::now();
        for n in 0..MAX_TRACKED as u32 {
            assert_eq!(l.check(IpAddr::V4(Ipv4Addr::from(n)), t0), Ok(()));
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(l.check(IpAddr::V4(Ipv4Addr::from(u32::MAX)), later), Ok(()));
        assert_eq!(l.tracked(), 1);
    }
}
