//! [`DiscordRateLimitLayer`]: the limits, their state and the counters, shared by every service built
//! from the layer and its clones.

use std::sync::Arc;

use cache_core::config::env::{Environment, ProcessEnv};
use tower_layer::Layer;

use super::limiter::Limiter;
use super::{DiscordRateLimit, RateLimitConfig, RateLimitStats};
use crate::Error;

/// A tower layer keeping an `http` client under Discord's rate limits. Cheap to clone: clones (and
/// every service they build) share one budget, what was learned of the buckets, and the counters.
/// See the [module docs](super).
#[derive(Clone)]
pub struct DiscordRateLimitLayer {
    limiter: Arc<Limiter>,
}

impl DiscordRateLimitLayer {
    /// A layer keeping `config`'s limits in this process.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            limiter: Arc::new(Limiter::new(config)),
        }
    }

    /// A layer with the `CACHE_DISCORD_*` rate-limit settings of the process environment.
    ///
    /// # Errors
    /// [`Error::Cache`] naming a variable whose value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env`.
    ///
    /// # Errors
    /// [`Error::Cache`] naming a variable whose value is invalid.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        Ok(Self::new(RateLimitConfig::from_env_source(env)?))
    }

    /// The same limits, kept in Redis through `scripts` (from
    /// [`RedisStore::scripts`](cache_redis::RedisStore::scripts)), so every process using that Redis
    /// and key prefix shares one budget per token. While Redis cannot be asked, each process paces
    /// itself with its share of the limits ([`RateLimitConfig::instances`]). The result is a new
    /// budget: make it before cloning the layer.
    #[cfg(feature = "redis")]
    pub fn shared(self, scripts: cache_redis::RedisScripts) -> Self {
        Self {
            limiter: Arc::new(Limiter::shared(self.limiter.config.clone(), scripts)),
        }
    }

    /// Whether the budget lives in Redis.
    pub fn is_shared(&self) -> bool {
        self.limiter.is_shared()
    }

    /// The limits and bounds.
    pub fn config(&self) -> &RateLimitConfig {
        &self.limiter.config
    }

    /// The counters.
    pub fn stats(&self) -> RateLimitStats {
        self.limiter.stats.clone()
    }
}

impl<S> Layer<S> for DiscordRateLimitLayer {
    type Service = DiscordRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DiscordRateLimit::new(inner, Arc::clone(&self.limiter))
    }
}

impl std::fmt::Debug for DiscordRateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordRateLimitLayer")
            .field("config", &self.limiter.config)
            .field("shared", &self.is_shared())
            .finish()
    }
}
