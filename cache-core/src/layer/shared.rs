use std::sync::Arc;
use std::time::Duration;

use crate::single_flight::SingleFlight;
use crate::{Error, Stats, Store, StoreFuture};

/// State shared by every clone of one cache service.
pub(crate) struct Shared<St: Store, P> {
    pub(crate) store: St,
    pub(crate) policy: Arc<P>,
    pub(crate) flights: Arc<SingleFlight<St::Value>>,
    pub(crate) stats: Stats,
    /// `None` when the store bounds its own operations.
    pub(crate) store_timeout: Option<Duration>,
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

    /// Counts and traces a store failure; the request carries on without the store.
    pub(crate) fn store_failed(&self, key: &str, error: &Error) {
        self.stats.store_error();
        tracing::warn!(cache.key = key, error = %error, "cache store failed; answering from the inner service");
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
