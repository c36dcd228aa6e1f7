//! Manual cache operations, outside the request path.

use std::time::Duration;

use crate::layer::shared::bounded;
use crate::{CacheKey, Error, Invalidate, Stats};

/// Invalidates, removes and clears on behalf of application code (an event handler, an admin endpoint).
///
/// Obtained from [`CacheLayer::handle`](crate::CacheLayer::handle); cheap to clone. Unlike the request
/// path, these operations return store failures to the caller, who asked for them explicitly; they are
/// also counted.
///
/// ```
/// use cache_core::{CacheLayer, Policy};
/// use cache_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cache_core::Error> {
/// let layer = CacheLayer::new(MemoryStore::<String>::new(100), Policy::new(|k: &String| Some(k.clone())));
/// let handle = layer.handle();
/// handle.invalidate_tags(["guild:42"]).await?;
/// handle.remove("discord:botGuilds").await?;
/// assert_eq!(handle.stats().snapshot().invalidations, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CacheHandle<St> {
    store: St,
    stats: Stats,
    timeout: Duration,
}

impl<St: Invalidate> CacheHandle<St> {
    pub(crate) fn new(store: St, stats: Stats, timeout: Duration) -> Self {
        Self {
            store,
            stats,
            timeout,
        }
    }

    /// Invalidates every entry carrying one of `tags`, on every process sharing the store, including fills
    /// still in flight.
    ///
    /// # Errors
    /// The store's failure or timeout.
    pub async fn invalidate_tags<I>(&self, tags: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        if tags.is_empty() {
            return Ok(());
        }
        tracing::debug!(tags = ?tags, "invalidating tags");
        let result = bounded(
            "invalidate",
            self.store.invalidate_tags(&tags),
            self.timeout,
        )
        .await;
        self.count(result, tags.len())
    }

    /// Removes `key`, including a fill of it still in flight.
    ///
    /// # Errors
    /// The store's failure or timeout.
    pub async fn remove(&self, key: impl Into<CacheKey>) -> Result<(), Error> {
        let key = key.into();
        tracing::debug!(cache.key = %key, "removing key");
        let result = bounded("remove", self.store.remove(&key), self.timeout).await;
        self.count(result, 1)
    }

    /// Removes every entry of the store (within its prefix, for a shared store).
    ///
    /// # Errors
    /// The store's failure or timeout.
    pub async fn clear(&self) -> Result<(), Error> {
        tracing::debug!("clearing the cache");
        let result = bounded("clear", self.store.clear(), self.timeout).await;
        self.count(result, 0)
    }

    /// The layer's counters (live; [`Stats::snapshot`] reads them).
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    fn count(&self, result: Result<(), Error>, invalidations: usize) -> Result<(), Error> {
        match &result {
            Ok(()) => self.stats.invalidations(invalidations),
            Err(error) => {
                self.stats.store_error();
                tracing::warn!(error = %error, "cache operation failed");
            }
        }
        result
    }
}

impl<St> std::fmt::Debug for CacheHandle<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheHandle")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
