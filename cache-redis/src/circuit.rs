//! Fail fast while Redis is unreachable.
//!
//! bb8 keeps a checkout waiting until its timeout when no connection can be opened, so during an outage
//! every request would pay the full store timeout before going to the inner service. After a failure at the
//! connection level the circuit opens for [`RETRY_AFTER`]: reads and writes of entries fail at once (still
//! counted as store errors by the layer); then one operation probes Redis while the others keep failing
//! fast, and its success closes the circuit. Invalidations always try Redis.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long operations fail fast after Redis could not be reached.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

pub(crate) struct Circuit {
    origin: Instant,
    /// Microseconds since `origin` until which the circuit is open; 0 when closed.
    open_until: AtomicU64,
}

impl Circuit {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            open_until: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether an operation may try Redis now. While open, no; once the window is over, exactly one
    /// caller is let through to probe (the window is renewed for the others), and its outcome closes or
    /// re-opens the circuit.
    pub(crate) fn allows(&self) -> bool {
        let until = self.open_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        let now = self.now();
        if now < until {
            return false;
        }
        let renewed = now + u64::try_from(RETRY_AFTER.as_micros()).unwrap_or(u64::MAX);
        self.open_until
            .compare_exchange(until, renewed, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Opens the circuit after `error`; the first trip of an outage (a Redis unreachable at startup
    /// included) is logged at warn level, with the error.
    pub(crate) fn trip(&self, error: &dyn std::fmt::Display) {
        let until = self.now() + u64::try_from(RETRY_AFTER.as_micros()).unwrap_or(u64::MAX);
        if self.open_until.swap(until, Ordering::Relaxed) == 0 {
            tracing::warn!(retry_after = ?RETRY_AFTER, %error, "Redis unreachable: the cache passes requests through");
        }
    }

    pub(crate) fn close(&self) {
        if self.open_until.load(Ordering::Relaxed) != 0
            && self.open_until.swap(0, Ordering::Relaxed) != 0
        {
            tracing::info!("Redis reachable again: caching resumes");
        }
    }
}
