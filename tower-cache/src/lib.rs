//! A caching layer for any [`tower`](https://docs.rs/tower) service: the one crate to depend on.
//!
//! Wrap a service in [`CacheLayer`] and it gets a cache keyed by what each request asks for, one inner
//! call for any number of concurrent identical requests, a TTL per entry, tags that invalidate every entry
//! depending on one object, and a store: in process ([`MemoryStore`]) or shared by every process
//! ([`RedisStore`]), picked at startup by `REDIS_URL` ([`EnvStore`]).
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_cache::{CacheConfig, CacheLayer, EnvStore, Policy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_cache::BoxError> {
//! let profiles = service_fn(|id: u64| async move { Ok::<_, std::io::Error>(format!("user {id}")) });
//! let policy = Policy::new(|id: &u64| Some(format!("profile:{id}")))
//!     .ttl(Duration::from_secs(30))
//!     .tags(|key: &str, _: &String| vec![key.replace("profile:", "user:")]);
//! let store = EnvStore::from_env_source(&[("CACHE_MEMORY_SIZE", "1000")])?; // or EnvStore::from_env()
//! let layer = CacheLayer::new(store, policy).config(&CacheConfig::default());
//! let handle = layer.handle();
//! let service = ServiceBuilder::new().layer(layer).service(profiles);
//!
//! assert_eq!(service.clone().oneshot(7).await?, "user 7"); // miss: calls the service
//! assert_eq!(service.clone().oneshot(7).await?, "user 7"); // hit
//! handle.invalidate_tags(["user:7"]).await?; // the next read calls it again
//! # Ok(())
//! # }
//! ```
//!
//! # What is here, by audience
//!
//! - **Using the layer**: [`CacheLayer`] and its service [`Cache`], [`Policy`] (closures for key, TTL
//!   and tags) or your own [`CachePolicy`], [`CacheConfig`] (the `CACHE_*` variables), [`CacheHandle`]
//!   (invalidate outside requests), [`Stats`], [`CacheEvents`] hooks, [`Error`]. Serving through trouble:
//!   [`stale`].
//! - **Picking a store**: [`EnvStore`] (Redis when `REDIS_URL` is set, memory otherwise),
//!   [`MemoryStore`], [`RedisStore`] with [`RedisOptions`]; the whole store crates are [`memory`] and
//!   [`redis`].
//! - **Discord bots and dashboards** (feature `discord`): the module `discord`, the Discord REST API policy and
//!   its layer.
//! - **Writing a store**: the [`store`] module: the `Store` contract, stamps, codecs.
//!
//! # Cargo features
//!
//! `memory` and `redis` (default): the stores and [`EnvStore`], which needs both. `discord`: the Discord
//! policy, its cache layer and its rate-limit layer (with `redis`, a budget shared in Redis). `metrics`: `metrics::MetricsEvents`, counters through the `metrics` facade.

pub use cache_core::{
    stale, upstream_error, BoxError, Cache, CacheConfig, CacheEvents, CacheHandle, CacheLayer,
    CachePolicy, Classified, Error, FillPlan, Policy, SharedError, StalePeriods, StaleReason,
    Stats, StatsSnapshot, WriteEffects,
};

/// Policies: the closure-built [`Policy`] and the parts a [`CachePolicy`] is made of.
pub mod policy {
    pub use cache_core::policy::*;
}

/// What a store must do so the layer keeps its promises, for store authors.
pub mod store {
    pub use cache_core::codec;
    pub use cache_core::store::*;
    pub use cache_core::CacheKey;
}

#[cfg(feature = "metrics")]
pub use cache_core::metrics;

#[cfg(feature = "memory")]
pub use cache_memory::{self as memory, MemoryStore};

#[cfg(feature = "redis")]
pub use cache_redis::{self as redis, RedisOptions, RedisStore};

#[cfg(feature = "discord")]
pub use cache_discord as discord;

#[cfg(all(feature = "memory", feature = "redis"))]
mod env_store;
#[cfg(all(feature = "memory", feature = "redis"))]
pub use env_store::EnvStore;

/// The workspace README's examples, compiled as doctests so they stay true.
#[cfg(all(doctest, feature = "memory", feature = "redis"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
