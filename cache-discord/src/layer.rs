//! [`DiscordCacheLayer`]: the Discord policy, a store and the helpers, assembled from the environment.

use std::sync::Arc;
use std::time::Duration;

use cache_core::config::env::{Environment, ProcessEnv};
use cache_core::{CacheConfig, CacheEvents, CacheHandle, CacheLayer, Stats, Store};
use serde_json::Value;
use tower_layer::Layer;

use crate::buffer::DEFAULT_MAX_BODY;
use crate::credential::UserKey;
use crate::gateway::gateway_event_tags;
use crate::keys::tags;
use crate::route::Snowflake;
use crate::{
    BufferResponseLayer, CachedResponse, DiscordCacheService, DiscordPolicy, DiscordTtls, Error,
};

/// How long a process's claim on filling a Discord entry lasts before another process may take the
/// fill over: longer than a slow Discord answer, short enough that a crashed instance costs little.
pub const DEFAULT_FILL_LEASE: Duration = Duration::from_secs(5);

/// Entries of the near tier the Discord proxy and demo keep in process in front of Redis when
/// `CACHE_NEAR_SIZE` is unset: Discord entries are read far more often than they change, and a near hit
/// costs no round trip. A store without Redis has no near tier.
pub const DEFAULT_NEAR_SIZE: u64 = 10_000;

/// A tower layer caching Discord reads in `St` over any `http` client, with the invalidation helpers.
/// Cheap to clone; clones share the store, the policy and the counters.
///
/// Its service ([`DiscordCacheService`]) takes `http::Request<B>` and answers `http::Response` with a
/// [`DiscordBody`](crate::DiscordBody): it buffers what the cache needs and streams the rest. To stack
/// the core layer over a service that already answers [`CachedResponse`] (below a
/// [`BufferResponseLayer`]), use [`cache_layer`](Self::cache_layer).
///
/// ```
/// use bytes::Bytes;
/// use cache_discord::DiscordCacheLayer;
/// use cache_memory::MemoryStore;
/// use http_body_util::{BodyExt, Full};
/// use serde_json::json;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cache_core::BoxError> {
/// // CACHE_ENABLED and the CACHE_DISCORD_*_TTL variables; the store is your choice (memory or Redis).
/// let discord = DiscordCacheLayer::from_env(MemoryStore::from_env()?)?;
/// let http_client = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
///     Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(b"[]"))))
/// });
/// let client = tower::ServiceBuilder::new().layer(discord.clone()).service(http_client);
///
/// let roles = http::Request::get("https://discord.com/api/v10/guilds/81384788765712384/roles")
///     .header("authorization", "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl")
///     .body(Full::default())?;
/// let response: http::Response<_> = client.oneshot(roles).await?;
/// assert_eq!(response.into_body().collect().await?.to_bytes(), "[]");
///
/// // From the dashboard, the bot's gateway handler, an admin endpoint:
/// discord.invalidate_discord_guild_cache(81384788765712384).await?;
/// discord.apply_gateway_event("GUILD_ROLE_UPDATE", &json!({"guild_id": "81384788765712384"})).await?;
/// # Ok(())
/// # }
/// ```
pub struct DiscordCacheLayer<St> {
    layer: CacheLayer<St, Arc<DiscordPolicy>>,
    handle: CacheHandle<St>,
    policy: Arc<DiscordPolicy>,
    max_body: usize,
}

impl<St> DiscordCacheLayer<St>
where
    St: Store<Value = CachedResponse> + Clone,
{
    /// A cache of `policy`'s reads in `store`, enabled, with single flight across every process that
    /// shares the store ([`DEFAULT_FILL_LEASE`]; [`CacheLayer::shared_single_flight`]): on Redis, the
    /// instances of the bot and the dashboard wait for one another's answer instead of each calling
    /// Discord (answers that are not stored, such as errors, are not shared).
    pub fn new(store: St, policy: DiscordPolicy) -> Self {
        let policy = Arc::new(policy);
        let layer =
            CacheLayer::new(store, Arc::clone(&policy)).shared_single_flight(DEFAULT_FILL_LEASE);
        let handle = layer.handle();
        Self {
            layer,
            handle,
            policy,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The largest answer buffered for the cache (reads and recognised writes; other answers stream);
    /// a larger one fails the request with [`Error::BodyTooLarge`]. [`DEFAULT_MAX_BODY`] by default.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Everything from the process environment: `CACHE_ENABLED` and the `CACHE_DISCORD_*_TTL`
    /// variables. The store is built by the caller (`MemoryStore::from_env`, or a Redis store when
    /// `REDIS_URL` is set), so it reads its own variables.
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is bad.
    pub fn from_env(store: St) -> Result<Self, Error> {
        Self::from_env_source(store, &ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env`.
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is bad.
    pub fn from_env_source(store: St, env: &impl Environment) -> Result<Self, Error> {
        let config = CacheConfig::from_env_source(env)?;
        let policy = DiscordPolicy::new(DiscordTtls::from_env_source(env)?);
        Ok(Self::new(store, policy).config(&config))
    }

    /// Changes the core layer: any [`CacheLayer`] setting (the store timeout, say) without a method of
    /// its own here. The methods below go through it.
    #[must_use]
    pub fn map_layer(
        mut self,
        change: impl FnOnce(CacheLayer<St, Arc<DiscordPolicy>>) -> CacheLayer<St, Arc<DiscordPolicy>>,
    ) -> Self {
        self.layer = change(self.layer);
        // The handle takes the store timeout from the layer.
        self.handle = self.layer.handle();
        self
    }

    /// Applies the layer's settings of `config` (`CACHE_ENABLED`, the soft and hard timeouts).
    #[must_use]
    pub fn config(self, config: &CacheConfig) -> Self {
        self.map_layer(|layer| layer.config(config))
    }

    /// With an expired entry at hand (within its stale-if-error period), answer with it when Discord
    /// takes longer than `timeout`; the call goes on and stores its answer. See
    /// [`CacheLayer::soft_timeout`]. Set it after [`config`](Self::config), which applies
    /// `CACHE_SOFT_TIMEOUT_MS` whether set or not.
    #[must_use]
    pub fn soft_timeout(self, timeout: Duration) -> Self {
        self.map_layer(|layer| layer.soft_timeout(timeout))
    }

    /// Gives up on Discord after `timeout` for a cached read: the caller gets the expired entry within
    /// its stale-if-error period, or an error. See [`CacheLayer::hard_timeout`]. Set it after
    /// [`config`](Self::config), which applies `CACHE_HARD_TIMEOUT_MS` whether set or not.
    #[must_use]
    pub fn hard_timeout(self, timeout: Duration) -> Self {
        self.map_layer(|layer| layer.hard_timeout(timeout))
    }

    /// Reports every hit, miss, dedupe, stale answer, failed refresh and store error to `events`, for
    /// your own metrics. See [`CacheLayer::events`].
    #[must_use]
    pub fn events(self, events: impl CacheEvents) -> Self {
        self.map_layer(|layer| layer.events(events))
    }

    /// Invalidates everything cached about one guild, for every credential: its channels, roles and
    /// members. Guild lists (which name the guild among others) keep their entries until their TTL,
    /// a gateway `GUILD_*` event or [`invalidate_discord_user_cache`](Self::invalidate_discord_user_cache).
    ///
    /// # Errors
    /// The store's failure or timeout.
    ///
    /// # Cancel safety
    /// One store operation: if dropped, it may or may not have applied.
    pub async fn invalidate_discord_guild_cache(&self, guild: Snowflake) -> Result<(), Error> {
        self.handle.invalidate_tags([tags::guild(guild)]).await?;
        Ok(())
    }

    /// Invalidates everything cached for one dashboard user: their guild lists (every query variant)
    /// and anything else fetched with their token.
    ///
    /// A user is identified by the [`UserKey`] of their OAuth2 access token
    /// ([`UserKey::from_access_token`]), never by the token itself and not by their Discord id: the
    /// cache cannot know which id a token belongs to. Compute the key when the user logs in, or from the
    /// token at hand when they log out or their guilds change.
    ///
    /// # Errors
    /// The store's failure or timeout.
    ///
    /// # Cancel safety
    /// One store operation: if dropped, it may or may not have applied.
    pub async fn invalidate_discord_user_cache(&self, user: &UserKey) -> Result<(), Error> {
        self.handle.invalidate_tags([tags::user(user)]).await?;
        Ok(())
    }

    /// Invalidates what the gateway event `event` (the dispatch's `t`) with payload `payload` (its `d`)
    /// changed, and returns the tags invalidated. See [`gateway`](crate::gateway) for the table.
    ///
    /// # Errors
    /// [`Error::EventPayload`] when the payload lacks an id the event always carries; the store's
    /// failure or timeout.
    ///
    /// # Cancel safety
    /// One store operation: if dropped, it may or may not have applied.
    pub async fn apply_gateway_event(
        &self,
        event: &str,
        payload: &Value,
    ) -> Result<Vec<String>, Error> {
        let tags = gateway_event_tags(event, payload, self.policy.channel_index())?;
        if !tags.is_empty() {
            tracing::debug!(event, tags = ?tags, "discord gateway event: invalidating");
            self.handle.invalidate_tags(tags.iter().cloned()).await?;
        }
        Ok(tags)
    }

    /// The core layer with the Discord policy, for a stack whose inner service already answers
    /// [`CachedResponse`] (a [`BufferResponseLayer`] over the client).
    pub fn cache_layer(&self) -> &CacheLayer<St, Arc<DiscordPolicy>> {
        &self.layer
    }

    /// The handle for removing keys, invalidating other tags and clearing.
    pub fn handle(&self) -> &CacheHandle<St> {
        &self.handle
    }

    /// The policy.
    pub fn policy(&self) -> &DiscordPolicy {
        &self.policy
    }

    /// Hits, misses, dedupes, invalidations and the rest, for every service built from this layer
    /// (live; [`Stats::snapshot`] reads them).
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }
}

impl<S, St> Layer<S> for DiscordCacheLayer<St>
where
    S: Clone,
    St: Store<Value = CachedResponse> + Clone,
{
    type Service = DiscordCacheService<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        let buffered = BufferResponseLayer::new()
            .max_body(self.max_body)
            .layer(inner.clone());
        let cache = self.layer.layer(buffered);
        let policy = Arc::clone(&self.policy);
        DiscordCacheService::new(cache, policy, inner, self.layer.is_enabled())
    }
}

impl<St: Clone> Clone for DiscordCacheLayer<St> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            handle: self.handle.clone(),
            policy: Arc::clone(&self.policy),
            max_body: self.max_body,
        }
    }
}

impl<St> std::fmt::Debug for DiscordCacheLayer<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordCacheLayer")
            .field("layer", &self.layer)
            .field("ttls", self.policy.ttls())
            .finish_non_exhaustive()
    }
}
