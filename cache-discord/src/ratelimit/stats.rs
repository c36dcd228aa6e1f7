//! [`RateLimitStats`]: what the limiter did, as live counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The limiter's counters, shared by clones of the layer and its services. Cheap to clone; read them
/// with [`snapshot`](Self::snapshot). With the `metrics` feature they also go to the `metrics` facade
/// as `discord_rate_limit_*` counters.
#[derive(Debug, Clone, Default)]
pub struct RateLimitStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    admitted: AtomicU64,
    waited: AtomicU64,
    wait_micros: AtomicU64,
    rate_limited: AtomicU64,
    retried: AtomicU64,
    refused: AtomicU64,
    fallbacks: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitStatsSnapshot {
    /// Requests sent to Discord (a retry counts again).
    pub admitted: u64,
    /// Requests that waited for their turn.
    pub waited: u64,
    /// Time spent waiting, over all requests.
    pub wait_time: Duration,
    /// 429 answers received from Discord.
    pub rate_limited: u64,
    /// Requests sent again after a 429.
    pub retried: u64,
    /// Requests refused locally ([`RateLimitError`](super::RateLimitError)), never sent.
    pub refused: u64,
    /// Admissions decided by the process alone because Redis could not be asked.
    pub fallbacks: u64,
}

impl RateLimitStats {
    /// The counters now.
    pub fn snapshot(&self) -> RateLimitStatsSnapshot {
        let c = &self.0;
        RateLimitStatsSnapshot {
            admitted: c.admitted.load(Ordering::Relaxed),
            waited: c.waited.load(Ordering::Relaxed),
            wait_time: Duration::from_micros(c.wait_micros.load(Ordering::Relaxed)),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            fallbacks: c.fallbacks.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn admitted(&self) {
        self.0.admitted.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("discord_rate_limit_admitted_total").increment(1);
    }

    pub(crate) fn waited(&self, wait: Duration) {
        self.0.waited.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.0.wait_micros.fetch_add(micros, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("discord_rate_limit_waited_total").increment(1);
            metrics::counter!("discord_rate_limit_wait_microseconds_total").increment(micros);
        }
    }

    pub(crate) fn rate_limited(&self) {
        self.0.rate_limited.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("discord_rate_limit_429_total").increment(1);
    }

    pub(crate) fn retried(&self) {
        self.0.retried.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("discord_rate_limit_retried_total").increment(1);
    }

    pub(crate) fn refused(&self) {
        self.0.refused.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("discord_rate_limit_refused_total").increment(1);
    }

    #[cfg(feature = "redis")]
    pub(crate) fn fallback(&self) {
        self.0.fallbacks.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("discord_rate_limit_fallbacks_total").increment(1);
    }
}
