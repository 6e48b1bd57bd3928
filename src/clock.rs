//! The wall clock, in the unit every timestamp of chatgate uses.
//!
//! Its own module because both the domain and the Redis backend read it,
//! and the domain sits above the backend: neither may import it from the other.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
