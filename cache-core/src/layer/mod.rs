//! The caching layer and its service.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{CacheLayer, Policy};
//! use cache_memory::MemoryStore;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! let layer = CacheLayer::new(
//!     MemoryStore::new(1_000),
//!     Policy::new(|id: &u64| Some(format!("square:{id}"))).ttl(Duration::from_secs(60)),
//! );
//! let stats = layer.stats();
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|id: u64| async move { Ok::<_, std::convert::Infallible>(id * id) }));
//!
//! assert_eq!(service.clone().oneshot(12).await?, 144); // miss: calls the inner service
//! assert_eq!(service.oneshot(12).await?, 144); // hit
//! assert_eq!((stats.snapshot().misses, stats.snapshot().hits), (1, 1));
//! # Ok(())
//! # }
//! ```

mod call;
mod future;
mod read;
mod service;
pub(crate) mod shared;
mod write;

pub use future::ResponseFuture;
pub use service::Cache;

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::single_flight::SingleFlight;
use crate::{CacheConfig, CacheEvents, CacheHandle, Invalidate, Stats, Store};
use shared::{InnerTimeouts, Shared};

/// How long the layer waits for one store operation before going on without the store.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(250);

/// Wraps a service in a cache: a [`Store`] holds the entries, a [`CachePolicy`](crate::CachePolicy)
/// decides what is cached.
///
/// Services built from one layer share its store, policy and counters. The single-flight map is per
/// wrapped service (and shared by that service's clones).
pub struct CacheLayer<St, P> {
    store: St,
    policy: Arc<P>,
    stats: Stats,
    enabled: bool,
    store_timeout: Duration,
    timeouts: InnerTimeouts,
    events: Option<Arc<dyn CacheEvents>>,
    fill_lease: Option<Duration>,
}

impl<St, P> CacheLayer<St, P> {
    /// A layer caching in `store` as `policy` says, enabled, with [`DEFAULT_STORE_TIMEOUT`].
    pub fn new(store: St, policy: P) -> Self {
        Self {
            store,
            policy: Arc::new(policy),
            stats: Stats::new(),
            enabled: true,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            timeouts: InnerTimeouts::default(),
            events: None,
            fill_lease: None,
        }
    }

    /// Applies the settings of `config` that concern the layer: `CACHE_ENABLED`, and the soft and hard
    /// timeouts when set (a zero turns a timeout off).
    #[must_use]
    pub fn config(mut self, config: &CacheConfig) -> Self {
        let pick = |configured: Option<Duration>, current| match configured {
            Some(timeout) => (!timeout.is_zero()).then_some(timeout),
            None => current,
        };
        self.timeouts = InnerTimeouts {
            soft: pick(config.soft_timeout, self.timeouts.soft),
            hard: pick(config.hard_timeout, self.timeouts.hard),
        };
        self.enabled(config.enabled)
    }

    /// With a stale value at hand (an entry within its stale-if-error period), answer with it when the
    /// inner call takes longer than `timeout`. The call goes on in the background and stores its result,
    /// so the next read is fresh. Without a stale value the caller waits as usual. Off by default (and
    /// with a zero).
    ///
    /// Use it when a slow answer is worse than a slightly old one: a dashboard over a rate-limited API.
    #[must_use]
    pub fn soft_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.soft = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Gives up on the inner call of a cacheable read after `timeout` (readiness included): the caller
    /// gets [`Error::InnerTimeout`](crate::Error::InnerTimeout), or a stale value within its
    /// stale-if-error period. Waiters of that call get the same. Off by default; writes and
    /// pass-through requests are not bounded (put a `tower::timeout` layer below the cache for those).
    #[must_use]
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.hard = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Calls `events` on every hit, miss, dedupe, stale answer, failed refresh and store error, besides
    /// the counters and tracing (see [`crate::events`]).
    #[must_use]
    pub fn events(mut self, events: impl CacheEvents) -> Self {
        self.events = Some(Arc::new(events));
        self
    }

    /// Single flight across processes: before calling the inner service for a miss, a process claims the
    /// key's fill in the store for at most `lease` ([`Store::claim_fill`]); a process that finds the
    /// claim held waits for the entry the holder stores instead of calling the inner service, and takes
    /// the fill over if the lease lapses first (the holder died or hung). Nobody waits much past
    /// `lease`; when the store cannot be asked, the fill goes ahead as with per-process single flight.
    /// Off by default (and with a zero). Pick a lease longer than a slow inner call.
    ///
    /// Only stored answers are shared: when the holder's answer is not stored (an error, a failure, a
    /// TTL of zero, a put superseded by an invalidation or failed), it gives the claim back and a
    /// waiting process calls the inner service itself; so does a holder whose call was cancelled. The
    /// wait is bounded by the lease (plus a store operation or two), not by
    /// [`hard_timeout`](Self::hard_timeout), which bounds the call. A caller answered by another
    /// process's fill counts as a miss.
    #[must_use]
    pub fn shared_single_flight(mut self, lease: Duration) -> Self {
        self.fill_lease = (!lease.is_zero()).then_some(lease);
        self
    }

    /// Turns caching on or off; off makes the layer a pass-through.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets how long one store operation may take before the request goes on without the store.
    ///
    /// Stores that enforce a timeout of their own (the Redis store does) are not wrapped in this one.
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The counters of every service built by this layer (live; [`Stats::snapshot`] reads them).
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Whether caching is on (off: the layer is a pass-through).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<St: Invalidate + Clone, P> CacheLayer<St, P> {
    /// A handle for invalidating, removing and clearing outside the request path.
    pub fn handle(&self) -> CacheHandle<St> {
        CacheHandle::new(self.store.clone(), self.stats.clone(), self.store_timeout)
    }
}

impl<S, St: Store + Clone, P> Layer<S> for CacheLayer<St, P> {
    type Service = Cache<S, St, P>;

    fn layer(&self, inner: S) -> Self::Service {
        let shared = Shared {
            store: self.store.clone(),
            policy: Arc::clone(&self.policy),
            flights: Arc::new(SingleFlight::new()),
            stats: self.stats.clone(),
            events: self.events.clone(),
            store_timeout: (!self.store.bounds_its_operations()).then_some(self.store_timeout),
            timeouts: self.timeouts,
            fill_lease: self.fill_lease,
        };
        Cache::new(inner, Arc::new(shared), self.enabled)
    }
}

impl<St: Clone, P> Clone for CacheLayer<St, P> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            policy: Arc::clone(&self.policy),
            stats: self.stats.clone(),
            enabled: self.enabled,
            store_timeout: self.store_timeout,
            timeouts: self.timeouts,
            events: self.events.clone(),
            fill_lease: self.fill_lease,
        }
    }
}

impl<St, P> std::fmt::Debug for CacheLayer<St, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLayer")
            .field("store", &std::any::type_name::<St>())
            .field("policy", &std::any::type_name::<P>())
            .field("enabled", &self.enabled)
            .field("store_timeout", &self.store_timeout)
            .field("soft_timeout", &self.timeouts.soft)
            .field("hard_timeout", &self.timeouts.hard)
            .field("events", &self.events.is_some())
            .field("shared_single_flight", &self.fill_lease)
            .finish()
    }
}
