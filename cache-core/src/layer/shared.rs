use std::sync::Arc;
use std::time::Duration;

use crate::single_flight::SingleFlight;
use crate::{BoxError, CacheEvents, Error, StaleReason, Stats, Store, StoreFuture};

/// State shared by every clone of one cache service.
pub(crate) struct Shared<St: Store, P> {
    pub(crate) store: St,
    pub(crate) policy: Arc<P>,
    pub(crate) flights: Arc<SingleFlight<St::Value>>,
    pub(crate) stats: Stats,
    pub(crate) events: Option<Arc<dyn CacheEvents>>,
    /// `None` when the store bounds its own operations.
    pub(crate) store_timeout: Option<Duration>,
    pub(crate) timeouts: InnerTimeouts,
    /// With shared single flight, how long a process's claim on a fill lasts.
    pub(crate) fill_lease: Option<Duration>,
}

/// Limits on the inner call of a cacheable read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InnerTimeouts {
    /// With a stale value to answer with, answer after this long; the call goes on in the background.
    pub(crate) soft: Option<Duration>,
    /// Give up on the call after this long.
    pub(crate) hard: Option<Duration>,
}

impl<St: Store, P> Shared<St, P> {
    /// Awaits a store operation, failing it after the store timeout.
    pub(crate) async fn bounded<T>(
        &self,
        operation: &'static str,
        future: StoreFuture<Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.store_timeout {
            Some(timeout) => bounded(operation, future, timeout).await,
            None => future.await,
        }
    }

    pub(crate) fn hit(&self, key: &str) {
        self.stats.hit();
        tracing::trace!(cache.key = key, "cache hit");
        if let Some(events) = &self.events {
            events.on_hit(key);
        }
    }

    pub(crate) fn miss(&self, key: &str) {
        self.stats.miss();
        if let Some(events) = &self.events {
            events.on_miss(key);
        }
    }

    pub(crate) fn dedupe(&self, key: &str) {
        self.stats.dedupe();
        tracing::trace!(
            cache.key = key,
            "cache dedupe: waiting for the call in flight"
        );
        if let Some(events) = &self.events {
            events.on_dedupe(key);
        }
    }

    pub(crate) fn stale_served(&self, key: &str, reason: StaleReason) {
        self.stats.stale_served();
        tracing::debug!(
            cache.key = key,
            reason = reason.as_str(),
            "cache answered with a stale entry"
        );
        if let Some(events) = &self.events {
            events.on_stale_served(key, reason);
        }
    }

    pub(crate) fn refresh_failed(&self, key: &str, error: &BoxError) {
        self.stats.refresh_failed();
        tracing::debug!(cache.key = key, error = %error, "cache background refresh failed; the stale entry stays");
        if let Some(events) = &self.events {
            events.on_refresh_failed(key, error);
        }
    }

    /// Counts and traces a store failure; the request carries on without the store.
    pub(crate) fn store_failed(&self, key: &str, error: &Error) {
        self.stats.store_error();
        tracing::warn!(cache.key = key, error = %error, "cache store failed; answering from the inner service");
        if let Some(events) = &self.events {
            events.on_store_error(key, error);
        }
    }
}

pub(crate) async fn bounded<T>(
    operation: &'static str,
    future: StoreFuture<Result<T, Error>>,
    timeout: Duration,
) -> Result<T, Error> {
    match future {
        StoreFuture::Ready(_) => future.await,
        StoreFuture::Pending(_) => {
            tokio::time::timeout(timeout, future)
                .await
                .unwrap_or(Err(Error::StoreTimeout {
                    operation,
                    after: timeout,
                }))
        }
    }
}
