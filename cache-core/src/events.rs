//! Hooks for users who wire their own metrics or logs.
//!
//! The layer's [`Stats`](crate::Stats) and its `tracing` events are always there; a [`CacheEvents`]
//! implementation set with [`CacheLayer::events`](crate::CacheLayer::events) is called as well, on the
//! request path: keep it cheap (an atomic add, a channel send), never blocking.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use cache_core::{CacheEvents, CacheLayer, Policy};
//! use cache_memory::MemoryStore;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! #[derive(Default)]
//! struct CountMisses(AtomicU64);
//!
//! impl CacheEvents for CountMisses {
//!     fn on_miss(&self, _key: &str) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! let misses = Arc::new(CountMisses::default());
//! let layer = CacheLayer::new(MemoryStore::new(100), Policy::new(|n: &u32| Some(n.to_string())))
//!     .events(Arc::clone(&misses));
//! let service = layer.layer(service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n + 1) }));
//! service.clone().oneshot(1).await?;
//! service.oneshot(1).await?;
//! assert_eq!(misses.0.load(Ordering::Relaxed), 1);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::{BoxError, Error, StaleReason};

/// What the cache did with one request, reported as it happens. Every method does nothing by default.
pub trait CacheEvents: Send + Sync + 'static {
    /// A read was answered from the store with a fresh entry.
    fn on_hit(&self, key: &str) {
        let _ = key;
    }

    /// A read found nothing usable and calls the inner service (it leads the key's flight).
    fn on_miss(&self, key: &str) {
        let _ = key;
    }

    /// A read joined the flight of a caller already fetching the key.
    fn on_dedupe(&self, key: &str) {
        let _ = key;
    }

    /// A read was answered with an entry past its TTL.
    fn on_stale_served(&self, key: &str, reason: StaleReason) {
        let _ = (key, reason);
    }

    /// A background refresh failed; the stale entry stays until its stale period ends.
    fn on_refresh_failed(&self, key: &str, error: &BoxError) {
        let _ = (key, error);
    }

    /// A store operation failed; the request went on without the store.
    fn on_store_error(&self, key: &str, error: &Error) {
        let _ = (key, error);
    }
}

impl<E: CacheEvents + ?Sized> CacheEvents for Arc<E> {
    fn on_hit(&self, key: &str) {
        (**self).on_hit(key);
    }

    fn on_miss(&self, key: &str) {
        (**self).on_miss(key);
    }

    fn on_dedupe(&self, key: &str) {
        (**self).on_dedupe(key);
    }

    fn on_stale_served(&self, key: &str, reason: StaleReason) {
        (**self).on_stale_served(key, reason);
    }

    fn on_refresh_failed(&self, key: &str, error: &BoxError) {
        (**self).on_refresh_failed(key, error);
    }

    fn on_store_error(&self, key: &str, error: &Error) {
        (**self).on_store_error(key, error);
    }
}

/// Both hooks, the first then the second: hooks of your own and `cache_core::metrics::MetricsEvents`
/// (feature `metrics`), say, on one layer with `.events((mine, metrics))`. Nest pairs for more:
/// `(a, (b, c))`.
impl<A: CacheEvents, B: CacheEvents> CacheEvents for (A, B) {
    fn on_hit(&self, key: &str) {
        self.0.on_hit(key);
        self.1.on_hit(key);
    }

    fn on_miss(&self, key: &str) {
        self.0.on_miss(key);
        self.1.on_miss(key);
    }

    fn on_dedupe(&self, key: &str) {
        self.0.on_dedupe(key);
        self.1.on_dedupe(key);
    }

    fn on_stale_served(&self, key: &str, reason: StaleReason) {
        self.0.on_stale_served(key, reason);
        self.1.on_stale_served(key, reason);
    }

    fn on_refresh_failed(&self, key: &str, error: &BoxError) {
        self.0.on_refresh_failed(key, error);
        self.1.on_refresh_failed(key, error);
    }

    fn on_store_error(&self, key: &str, error: &Error) {
        self.0.on_store_error(key, error);
        self.1.on_store_error(key, error);
    }
}
