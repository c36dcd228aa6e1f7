//! Cache counters through the [`metrics`](https://docs.rs/metrics) facade (cargo feature `metrics`).
//!
//! [`MetricsEvents`] is a [`CacheEvents`] implementation: set it on a layer with
//! [`CacheLayer::events`](crate::CacheLayer::events) and the cache's hits, misses, dedupes, stale
//! answers, failed refreshes and store errors are counted by whichever recorder the application installed
//! (`metrics-exporter-prometheus`, an OpenTelemetry bridge, a test's `DebuggingRecorder`).
//!
//! | Metric | Labels | Counts |
//! | --- | --- | --- |
//! | `cache_requests_total` | `cache`, `outcome="hit"` | reads answered with a fresh entry |
//! | `cache_requests_total` | `cache`, `outcome="miss"` | reads that called the inner service (the leader of the key's flight) |
//! | `cache_requests_total` | `cache`, `outcome="dedupe"` | reads that joined a call already in flight for their key |
//! | `cache_requests_total` | `cache`, `outcome="stale"` | reads answered at once with an entry in its stale-while-revalidate period (a refresh runs in the background) |
//! | `cache_stale_served_total` | `cache`, `reason` | every answer with an entry past its TTL; `reason` is [`StaleReason::as_str`]: `revalidating`, `inner_failed`, `soft_timeout`, `hard_timeout` |
//! | `cache_refresh_failures_total` | `cache` | background refreshes that failed (the stale entry stays) |
//! | `cache_store_errors_total` | `cache` | store operations that failed, timed out or returned an undecodable entry |
//!
//! `cache` is the name given to [`MetricsEvents::new`]. Every cacheable read is counted once in
//! `cache_requests_total` (a waiter whose flight was abandoned by its leader counts again when it
//! retries), so `hit / sum(cache_requests_total)` is the hit ratio. A stale answer after a failed or slow
//! inner call (`inner_failed`, `soft_timeout`, `hard_timeout`) was already counted there as a `miss` or
//! a `dedupe`, and is counted by reason in `cache_stale_served_total` only. Keys are never labels: their
//! number is unbounded. Pass-through requests and invalidations have no event; read them from
//! [`Stats`](crate::Stats).
//!
//! # Install the recorder first
//!
//! The counters are registered once, in [`MetricsEvents::new`], with the recorder in force at that
//! moment (a local one set by `metrics::with_local_recorder`, else the global one), so that a hit costs
//! one atomic add and no lookup. Install the recorder before building the events: built before any
//! recorder is installed, they count nothing, ever. Two `MetricsEvents` with the same name report to the
//! same series.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::metrics::MetricsEvents;
//! use cache_core::{CacheLayer, Policy};
//! use cache_memory::MemoryStore;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! // 1. Install the application's recorder, e.g. `PrometheusBuilder::new().install()?`.
//! let recorder = metrics_util::debugging::DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! recorder.install()?;
//!
//! // 2. Then build the layer: its counters are registered with that recorder here.
//! let layer = CacheLayer::new(MemoryStore::new(1_000), Policy::new(|id: &u64| Some(id.to_string())))
//!     .events(MetricsEvents::new("profiles"));
//! let service = layer.layer(service_fn(|id: u64| async move {
//!     Ok::<_, std::convert::Infallible>(format!("user {id}"))
//! }));
//! service.clone().oneshot(7).await?; // cache_requests_total{cache="profiles", outcome="miss"}
//! service.oneshot(7).await?; // cache_requests_total{cache="profiles", outcome="hit"}
//! # let hits = snapshotter.snapshot().into_vec().into_iter().find(|(key, ..)| {
//! #     key.key().labels().any(|label| label.value() == "hit")
//! # });
//! # assert!(matches!(hits, Some((.., metrics_util::debugging::DebugValue::Counter(1)))));
//! # Ok(())
//! # }
//! ```

use ::metrics::{counter, describe_counter, Counter, SharedString};

use crate::{BoxError, CacheEvents, Error, StaleReason};

/// Name of the counter of cacheable reads, labelled `cache` and `outcome`.
pub const REQUESTS_TOTAL: &str = "cache_requests_total";
/// Name of the counter of answers with an entry past its TTL, labelled `cache` and `reason`.
pub const STALE_SERVED_TOTAL: &str = "cache_stale_served_total";
/// Name of the counter of failed background refreshes, labelled `cache`.
pub const REFRESH_FAILURES_TOTAL: &str = "cache_refresh_failures_total";
/// Name of the counter of failed store operations, labelled `cache`.
pub const STORE_ERRORS_TOTAL: &str = "cache_store_errors_total";

/// A [`CacheEvents`] that counts through the `metrics` facade; see the [module docs](self) for the
/// metrics and their labels.
///
/// Its counter handles are registered once, by [`new`](Self::new), with the recorder installed at that
/// moment: install the recorder first. Clones share the handles.
#[derive(Clone)]
pub struct MetricsEvents {
    cache: SharedString,
    hits: Counter,
    misses: Counter,
    dedupes: Counter,
    stale_requests: Counter,
    stale_revalidating: Counter,
    stale_inner_failed: Counter,
    stale_soft_timeout: Counter,
    stale_hard_timeout: Counter,
    refresh_failures: Counter,
    store_errors: Counter,
}

impl MetricsEvents {
    /// Registers the counters of the cache named `cache` (the value of their `cache` label) with the
    /// current recorder, and describes them to it.
    pub fn new(cache: impl Into<SharedString>) -> Self {
        let cache = cache.into();
        describe_counter!(
            REQUESTS_TOTAL,
            "Cacheable reads, by outcome: hit, miss (called the inner service), dedupe (joined a call in \
             flight), stale (answered with a stale entry while it is refreshed)."
        );
        describe_counter!(
            STALE_SERVED_TOTAL,
            "Answers with an entry past its TTL, by reason."
        );
        describe_counter!(
            REFRESH_FAILURES_TOTAL,
            "Background refreshes of a stale entry that failed."
        );
        describe_counter!(
            STORE_ERRORS_TOTAL,
            "Store operations that failed, timed out or returned an undecodable entry."
        );
        let request = |outcome: &'static str| counter!(REQUESTS_TOTAL, "cache" => cache.clone(), "outcome" => outcome);
        let stale = |reason: StaleReason| counter!(STALE_SERVED_TOTAL, "cache" => cache.clone(), "reason" => reason.as_str());
        Self {
            hits: request("hit"),
            misses: request("miss"),
            dedupes: request("dedupe"),
            stale_requests: request("stale"),
            stale_revalidating: stale(StaleReason::Revalidating),
            stale_inner_failed: stale(StaleReason::InnerFailed),
            stale_soft_timeout: stale(StaleReason::SoftTimeout),
            stale_hard_timeout: stale(StaleReason::HardTimeout),
            refresh_failures: counter!(REFRESH_FAILURES_TOTAL, "cache" => cache.clone()),
            store_errors: counter!(STORE_ERRORS_TOTAL, "cache" => cache.clone()),
            cache,
        }
    }

    /// The value of the `cache` label.
    pub fn cache_name(&self) -> &str {
        &self.cache
    }
}

impl CacheEvents for MetricsEvents {
    fn on_hit(&self, _key: &str) {
        self.hits.increment(1);
    }

    fn on_miss(&self, _key: &str) {
        self.misses.increment(1);
    }

    fn on_dedupe(&self, _key: &str) {
        self.dedupes.increment(1);
    }

    fn on_stale_served(&self, _key: &str, reason: StaleReason) {
        // Exhaustive on purpose: a new reason needs its own series.
        let by_reason = match reason {
            StaleReason::Revalidating => {
                // The only stale answer that is the read's whole outcome; the others follow a miss or a
                // dedupe already counted.
                self.stale_requests.increment(1);
                &self.stale_revalidating
            }
            StaleReason::InnerFailed => &self.stale_inner_failed,
            StaleReason::SoftTimeout => &self.stale_soft_timeout,
            StaleReason::HardTimeout => &self.stale_hard_timeout,
        };
        by_reason.increment(1);
    }

    fn on_refresh_failed(&self, _key: &str, _error: &BoxError) {
        self.refresh_failures.increment(1);
    }

    fn on_store_error(&self, _key: &str, _error: &Error) {
        self.store_errors.increment(1);
    }
}

impl std::fmt::Debug for MetricsEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEvents")
            .field("cache", &self.cache_name())
            .finish_non_exhaustive()
    }
}
