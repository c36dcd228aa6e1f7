//! Redis's clock, as seen from this process: the local wall clock corrected by an offset measured with
//! `TIME`, so that an entry's fresh period means the same to every process, whatever their clocks say.
//!
//! The offset is measured when an entry with stale periods is first written or read, then again once it
//! is [`RESYNC`] old: one `TIME` round trip per process per minute at most, and none at all for entries
//! without stale periods (they are fresh for as long as Redis keeps them). Its error is half a round
//! trip: well under a millisecond on a LAN.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::RedisResult;

use crate::connection::Conn;

/// How old a measured offset may grow before it is measured again.
pub(crate) const RESYNC: Duration = Duration::from_secs(60);

/// Redis's time in Unix milliseconds, estimated locally.
pub(crate) struct ServerClock {
    /// Server time minus local time, in milliseconds.
    offset_ms: AtomicI64,
    /// Local Unix milliseconds of the last measurement; 0 before the first.
    measured_at_ms: AtomicU64,
    measuring: AtomicBool,
}

impl ServerClock {
    pub(crate) fn new() -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            measured_at_ms: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
        }
    }

    /// Redis's time now, in Unix milliseconds (the local clock until a first measurement).
    pub(crate) fn now_ms(&self) -> u64 {
        local_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }

    /// True when no measurement is recent and nobody is taking one: the caller should [`sync`](Self::sync).
    pub(crate) fn wants_sync(&self) -> bool {
        let last = self.measured_at_ms.load(Ordering::Relaxed);
        let stale = last == 0 || local_ms().saturating_sub(last) >= RESYNC.as_millis() as u64;
        stale && !self.measuring.load(Ordering::Relaxed)
    }

    /// Measures the offset with one `TIME`. On failure the previous offset stays.
    ///
    /// # Cancel safety
    /// Cancel safe: the offset changes only once the answer is in.
    pub(crate) async fn sync(&self, conn: &mut Conn) -> RedisResult<()> {
        if self.measuring.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _done = Reset(&self.measuring);
        let before = local_ms();
        let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
        let after = local_ms();
        let server = seconds.saturating_mul(1_000).saturating_add(micros / 1_000);
        self.record(server, before / 2 + after / 2);
        Ok(())
    }

    /// Records that Redis read `server_ms` when the local clock read `local_ms`.
    fn record(&self, server_ms: u64, local_ms: u64) {
        let offset = i64::try_from(i128::from(server_ms) - i128::from(local_ms)).unwrap_or(0);
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.measured_at_ms
            .store(local_ms.max(1), Ordering::Relaxed);
        tracing::debug!(offset_ms = offset, "Redis clock offset measured");
    }
}

struct Reset<'a>(&'a AtomicBool);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn local_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_behind_redis_reads_redis_time_once_measured() {
        let clock = ServerClock::new();
        assert!(clock.wants_sync());
        let local = local_ms();
        // Redis says ten seconds later than this process.
        clock.record(local + 10_000, local);
        assert!(!clock.wants_sync());
        let now = clock.now_ms();
        assert!((local + 10_000..local + 11_000).contains(&now), "{now}");
    }

    #[test]
    fn a_clock_ahead_of_redis_is_corrected_too() {
        let clock = ServerClock::new();
        let local = local_ms();
        clock.record(local - 30_000, local);
        let now = clock.now_ms();
        assert!((local - 30_000..local - 29_000).contains(&now), "{now}");
    }
}
