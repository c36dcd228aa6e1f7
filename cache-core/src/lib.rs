//! A caching layer for any [`tower`](https://docs.rs/tower) service.
//!
//! Wrap a service in [`CacheLayer`] and it gets: a cache keyed by what each request asks for, one inner
//! call for any number of concurrent identical requests (single flight), a TTL per entry, tags that
//! invalidate every entry depending on one object, and a choice of [`Store`]: in process
//! (`cache-memory`) or shared (`cache-redis`).
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{CacheLayer, Policy};
//! use cache_memory::MemoryStore;
//! use tower::{service_fn, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! // The slow thing to cache: a profile lookup by user id.
//! let profiles = service_fn(|id: u64| async move { Ok::<_, std::io::Error>(format!("user {id}")) });
//!
//! let layer = CacheLayer::new(
//!     MemoryStore::new(10_000),
//!     Policy::new(|id: &u64| Some(format!("profile:{id}")))
//!         .ttl(Duration::from_secs(30))
//!         .tags(|key: &str, _profile: &String| vec![key.to_owned()]),
//! );
//! let handle = layer.handle();
//! let mut service = tower::ServiceBuilder::new().layer(layer).service(profiles);
//!
//! assert_eq!(service.ready().await?.call(7).await?, "user 7");
//! handle.invalidate_tags(["profile:7"]).await?; // the next read of user 7 calls the inner service
//! # Ok(())
//! # }
//! ```
//!
//! # What the layer guarantees
//!
//! - **Single flight.** Concurrent reads of one key run the inner service once; the others wait for its
//!   result. Nothing stays in the in-flight map once calls settle.
//! - **Errors are not cached.** Waiters of a failing call receive its error ([`SharedError`]); the next
//!   read calls the inner service again. A leader that is cancelled or panics leaves no waiter hanging.
//! - **Hits never wait for the inner service's readiness**: readiness is driven on the miss path only.
//! - **TTL per entry**, fixed or computed from the response; zero means "dedupe only, never stored".
//! - **Tags** invalidate every carrier in constant time, and a fill that started before an invalidation is
//!   never served after it (see [`store`] for the model).
//! - **A store failure is never a request failure**: the request goes to the inner service and the
//!   failure is counted in [`Stats`]; every store operation has a timeout.
//! - **Serving through trouble**, off by default: stale-while-revalidate, stale-if-error (fail-safe),
//!   failure responses, soft and hard timeouts on the inner call ([`stale`], [`CacheLayer`]), and
//!   [`CacheEvents`] hooks for your own metrics.
//! - **`CACHE_ENABLED=false`** turns the layer into a pass-through ([`CacheConfig`]).
//!
//! # Cargo features
//!
//! The codecs (bincode 2 in serde mode, MessagePack) are always built. Off by default:
//!
//! - **`metrics`**: the module `metrics` and its `MetricsEvents`, a [`CacheEvents`] implementation that
//!   counts through the [`metrics`](https://docs.rs/metrics) facade, for any exporter (Prometheus,
//!   OpenTelemetry). Set it with `CacheLayer::new(..).events(MetricsEvents::new("profiles"))`, after
//!   installing the recorder: the counters are registered with the recorder in force when `new` runs.
//!   To keep hooks of your own as well, pass a pair: `.events((mine, metrics))`.
//!
//!   | Metric | Labels |
//!   | --- | --- |
//!   | `cache_requests_total` | `cache`, `outcome` = `hit`, `miss`, `dedupe` or `stale` |
//!   | `cache_stale_served_total` | `cache`, `reason` = [`StaleReason::as_str`] |
//!   | `cache_refresh_failures_total` | `cache` |
//!   | `cache_store_errors_total` | `cache` |

pub mod codec;
pub mod config;
mod error;
pub mod events;
mod handle;
mod key;
pub mod layer;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod policy;
mod single_flight;
pub mod stale;
mod stats;
pub mod store;

pub use config::CacheConfig;
pub use error::{upstream_error, BoxError, Error, SharedError};
pub use events::CacheEvents;
pub use handle::CacheHandle;
pub use key::CacheKey;
pub use layer::{Cache, CacheLayer};
pub use policy::{
    AfterWrite, CachePolicy, Classified, EntryUpdate, FillPlan, KeyExtractor, NoTags, NoWrites,
    Policy, TagExtractor, TtlPolicy, WriteEffects, WriteHook,
};
pub use stale::{StalePeriods, StaleReason};
pub use stats::{Stats, StatsSnapshot};
pub use store::{
    FillClaim, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store, StoreFuture,
};
