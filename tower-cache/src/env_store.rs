//! The store the environment asks for: Redis when `REDIS_URL` is set, a Redis Cluster when
//! `REDIS_CLUSTER_URLS` is, in process otherwise.

use cache_core::config::env::{Environment, ProcessEnv};
use cache_core::{
    CacheKey, Error, FillClaim, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store,
    StoreFuture,
};
use cache_memory::MemoryStore;
use cache_redis::{RedisOptions, RedisStore, REDIS_CLUSTER_URLS, REDIS_URL};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Either store, chosen at startup by [`EnvStore::from_env`].
///
/// ```
/// use tower_cache::EnvStore;
///
/// // No REDIS_URL: the in-process store, sized by CACHE_MEMORY_SIZE.
/// let store = EnvStore::<String>::from_env_source(&[("CACHE_MEMORY_SIZE", "500")])?;
/// assert_eq!(store.backend(), "memory");
/// # Ok::<(), tower_cache::Error>(())
/// ```
pub enum EnvStore<V> {
    /// In process (`cache-memory`).
    Memory(MemoryStore<V>),
    /// Shared, in Redis.
    Redis(RedisStore<V>),
}

impl<V> Clone for EnvStore<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Memory(store) => Self::Memory(store.clone()),
            Self::Redis(store) => Self::Redis(store.clone()),
        }
    }
}

impl<V> std::fmt::Debug for EnvStore<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(store) => f.debug_tuple("Memory").field(store).finish(),
            Self::Redis(store) => f.debug_tuple("Redis").field(store).finish(),
        }
    }
}

impl<V> EnvStore<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Redis at `REDIS_URL` (settings from [`RedisOptions::from_env_source`], a near tier in front of
    /// it when `CACHE_NEAR_SIZE` is above 0) when it is set and not empty; the Redis Cluster whose seed
    /// nodes `REDIS_CLUSTER_URLS` lists (comma-separated) when that is set instead; otherwise memory
    /// (`CACHE_MEMORY_SIZE`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first variable whose value is bad.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first variable whose value is bad.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        match (env.var(REDIS_URL)?, cache_redis::cluster_urls(env)?) {
            (Some(_), Some(_)) => Err(cache_core::config::env::invalid(
                REDIS_CLUSTER_URLS,
                "<set>",
                format!(
                    "set {REDIS_URL} (one server) or {REDIS_CLUSTER_URLS} (a cluster), not both"
                ),
            )),
            (Some(url), None) => {
                let options = RedisOptions::from_env_source(env)?;
                Ok(Self::Redis(RedisStore::connect(url.trim(), options)?))
            }
            (None, Some(seeds)) => {
                let options = RedisOptions::from_env_source(env)?;
                Ok(Self::Redis(RedisStore::connect_cluster(&seeds, options)?))
            }
            (None, None) => Ok(Self::Memory(MemoryStore::from_env_source(env)?)),
        }
    }

    /// Whether the store can be reached now: always for memory, one `PING` for Redis
    /// ([`RedisStore::ping`]).
    ///
    /// # Errors
    /// The Redis store's error when it does not answer.
    pub async fn ping(&self) -> Result<(), Error> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(store) => store.ping().await,
        }
    }

    /// The Redis store's [`RedisScripts`](cache_redis::RedisScripts), to keep other state beside the
    /// entries (the Discord rate limiter's shared budget); `None` for memory.
    pub fn redis_scripts(&self) -> Option<cache_redis::RedisScripts> {
        match self {
            Self::Memory(_) => None,
            Self::Redis(store) => Some(store.scripts()),
        }
    }

    /// `"memory"` or `"redis"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }
}

impl<V> Invalidate for EnvStore<V>
where
    V: Clone + Send + Sync + 'static,
{
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        match self {
            Self::Memory(store) => store.remove(key),
            Self::Redis(store) => store.remove(key),
        }
    }

    fn invalidate_tags(&self, tags: &[String]) -> StoreFuture<Result<(), Error>> {
        match self {
            Self::Memory(store) => store.invalidate_tags(tags),
            Self::Redis(store) => store.invalidate_tags(tags),
        }
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        match self {
            Self::Memory(store) => store.clear(),
            Self::Redis(store) => store.clear(),
        }
    }

    fn bounds_its_operations(&self) -> bool {
        match self {
            Self::Memory(store) => store.bounds_its_operations(),
            Self::Redis(store) => store.bounds_its_operations(),
        }
    }
}

impl<V> Store for EnvStore<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Value = V;

    fn claim_fill(
        &self,
        key: &CacheKey,
        token: u64,
        lease: std::time::Duration,
    ) -> StoreFuture<Result<FillClaim, Error>> {
        match self {
            Self::Memory(store) => store.claim_fill(key, token, lease),
            Self::Redis(store) => store.claim_fill(key, token, lease),
        }
    }

    fn release_fill(&self, key: &CacheKey, token: u64) -> StoreFuture<Result<(), Error>> {
        match self {
            Self::Memory(store) => store.release_fill(key, token),
            Self::Redis(store) => store.release_fill(key, token),
        }
    }

    fn invalidated_since(&self, key: &CacheKey, tags: &[String], stamp: FillStamp) -> bool {
        match self {
            Self::Memory(store) => store.invalidated_since(key, tags, stamp),
            Self::Redis(store) => store.invalidated_since(key, tags, stamp),
        }
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<V>, Error>> {
        match self {
            Self::Memory(store) => store.get(key),
            Self::Redis(store) => store.get(key),
        }
    }

    fn put(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        match self {
            Self::Memory(store) => store.put(key, entry),
            Self::Redis(store) => store.put(key, entry),
        }
    }

    fn update(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        match self {
            Self::Memory(store) => store.update(key, entry),
            Self::Redis(store) => store.update(key, entry),
        }
    }
}
