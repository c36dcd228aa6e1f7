//! Discord REST API policy for [`cache_core`]: keys, tags and TTLs for the reads a bot and its dashboard
//! repeat, a write flow that keeps them fresh, and helpers to invalidate a guild, a user or what a
//! gateway event changed.
//!
//! Discord rate-limits clients (50 requests per second globally, per-route buckets, a temporary ban
//! after too many invalid requests). The same few reads are made over and over by many processes:
//! [`DiscordCacheLayer`] answers them from a store (in process or shared, such as Redis) and sends one
//! request upstream for any number of concurrent identical reads.
//!
//! ```
//! use bytes::Bytes;
//! use cache_discord::DiscordCacheLayer;
//! use cache_memory::MemoryStore;
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! // Any HTTP client service will do; hyper-util's legacy client is the usual one.
//! let http_client = service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     let body = Full::new(Bytes::from_static(br#"[{"id":"41771983423143936","name":"@everyone"}]"#));
//!     Ok::<_, std::io::Error>(http::Response::new(body))
//! });
//!
//! let discord = DiscordCacheLayer::from_env(MemoryStore::from_env()?)?;
//! let client = ServiceBuilder::new().layer(discord.clone()).service(http_client);
//!
//! let roles = || {
//!     http::Request::get("https://discord.com/api/v10/guilds/41771983423143936/roles")
//!         .header("authorization", "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl")
//!         .body(Full::default())
//!         .unwrap()
//! };
//! let first = client.clone().oneshot(roles()).await?; // an http::Response
//! let second = client.oneshot(roles()).await?; // answered from the cache
//! assert_eq!(first.status(), second.status());
//! assert_eq!(first.into_body().collect().await?.to_bytes(), second.into_body().collect().await?.to_bytes());
//! assert_eq!((discord.stats().snapshot().misses, discord.stats().snapshot().hits), (1, 1));
//! # Ok(())
//! # }
//! ```
//!
//! # What is cached
//!
//! `GET` requests, with a `Bot` or `Bearer` token, whose path is exactly one of these (after an optional
//! `/api/v10` or `/api/v9` prefix; full URLs work, the host is ignored; reads on unversioned `/api/`
//! pass through, since Discord answers them with an older version's shapes):
//!
//! | read | key | tags | TTL (variable, default) |
//! |---|---|---|---|
//! | `GET /users/@me/guilds`, user token | `discord:userGuilds:{userKey}{query}` | `discord:user:{userKey}` | `CACHE_DISCORD_USER_GUILDS_TTL`, 60 s |
//! | `GET /users/@me/guilds`, bot token | `discord:botGuilds:{botId}{query}` | `discord:bot:{botId}`, `discord:botGuilds` | `CACHE_DISCORD_BOT_GUILDS_TTL`, 300 s |
//! | `GET /guilds/{g}/channels` | `discord:guildChannels:{g}:{scope}` | `discord:guild:{g}`, `discord:guild:{g}:channels`, `discord:channels` | `CACHE_DISCORD_CHANNELS_TTL`, 60 s |
//! | `GET /guilds/{g}/roles` | `discord:guildRoles:{g}:{scope}` | `discord:guild:{g}`, `discord:guild:{g}:roles` | `CACHE_DISCORD_ROLES_TTL`, 60 s |
//! | `GET /guilds/{g}/members/{u}` | `discord:guildMember:{g}:{u}:{scope}` | `discord:guild:{g}`, `discord:guild:{g}:member:{u}`, `discord:guild:{g}:members` | `CACHE_DISCORD_MEMBERS_TTL`, 30 s |
//!
//! - `{scope}` is the credential that fetched the entry: `bot:{botId}` or `user:{userKey}`; guild data
//!   fetched with a user token also carries the tag `discord:user:{userKey}`. A response fetched with
//!   one credential is never served to another ([`credential`] explains how tokens become ids without
//!   ever appearing in a key, a log or a trace).
//! - `{query}` is empty or the parameters that change the answer of `/users/@me/guilds` (`after`,
//!   `before`, `limit`, `with_counts`) in that canonical order, such as `?after=1&limit=50`. Any other
//!   parameter, a repeated one or a malformed value makes the read pass through uncached: it might
//!   change the answer, and an uncached read is never wrong. The other reads take no parameters.
//! - Only exact shapes are cached. Look-alikes pass straight through: `/guilds/{g}/roles/member-counts`,
//!   `/guilds/{g}/members/@me`, `/guilds/{g}/members/search`, percent-encoded or `.`/`..` segments,
//!   empty segments, trailing slashes or junk, non-canonical ids (`01`, `@me`), other API versions,
//!   other methods. See [`route`].
//! - Only 2xx answers are stored. 4xx (429 included) and 5xx answers reach the caller with their status,
//!   kept headers and body exactly as received, and are never cached; concurrent identical reads still
//!   share the one upstream call that produced them. Kept headers: `content-type`,
//!   `content-encoding`, `retry-after` and `x-ratelimit-*` ([`CachedResponse`]).
//! - Reads and recognised writes go to Discord with `Accept-Encoding: identity` in place of the
//!   caller's: an entry answers every caller of its scope, whatever compression each accepts, and a
//!   write's answer must be readable JSON to update entries; a compressed answer is not stored.
//!   Requests that pass through keep theirs.
//! - Serving through trouble, off by default: `CACHE_DISCORD_STALE_WHILE_REVALIDATE` (seconds) answers
//!   with an entry past its TTL at once and refreshes it in the background; `CACHE_DISCORD_STALE_IF_ERROR`
//!   (seconds) answers with it when Discord fails. The policy counts 429 and 5xx answers as failures
//!   ([`CachePolicy::is_failure`](cache_core::CachePolicy::is_failure)); 4xx answers such as 403 and 404
//!   are Discord's word and pass through. See [`cache_core::stale`].
//!
//! # Writes
//!
//! Requests that are not cached reads go to Discord. When one of these succeeds (2xx), the cache
//! changes as follows. A write Discord refused (4xx, 429), or that the rate limiter never sent, changes
//! nothing; one whose outcome is unknown (a 5xx answer, a timeout, a connection lost after sending)
//! invalidates every entry it could have changed.
//!
//! | write | Discord answers | cache |
//! |---|---|---|
//! | `PATCH /guilds/{g}/members/{u}` (modify member) | the member | every copy of the member invalidated; the writer's entry replaced by the answer |
//! | `PATCH /guilds/{g}/members/@me` (modify current member) | the member | same, for the user id in the answer |
//! | `PUT`/`DELETE /guilds/{g}/members/{u}/roles/{r}` (member role add/remove) | 204 | `discord:guild:{g}:member:{u}` |
//! | `DELETE /guilds/{g}/members/{u}` (kick) | 204 | `discord:guild:{g}:member:{u}` |
//! | `PUT /guilds/{g}/bans/{u}` (ban) | 204 | `discord:guild:{g}:member:{u}` |
//! | `POST /guilds/{g}/roles` (create role) | the role | the role added to the writer's cached role list |
//! | `PATCH /guilds/{g}/roles/{r}` (modify role) | the role | the role replaced in the writer's cached role list |
//! | `PATCH /guilds/{g}/roles` (reorder roles) | every role | every copy invalidated; the writer's list replaced by the answer |
//! | `DELETE /guilds/{g}/roles/{r}` (delete role) | 204 | `discord:guild:{g}:roles`, `discord:guild:{g}:members` (members lose the role) |
//! | `POST /guilds/{g}/channels` (create channel) | the channel | the channel added to the writer's cached channel list |
//! | `PATCH /channels/{c}` (modify channel) | the channel | the channel replaced in the writer's list of its `guild_id` (threads and DMs: nothing) |
//! | `DELETE /channels/{c}` (delete channel) | the channel | the channel removed from the writer's list of its `guild_id` |
//! | `PATCH /guilds/{g}/channels` (reorder channels) | 204 | `discord:guild:{g}:channels` |
//! | `PUT`/`DELETE /channels/{c}/permissions/{o}` (permission overwrites) | 204 | `discord:guild:{g}:channels` for the channel's guild, or `discord:channels` when this process has not seen the channel ([`ChannelIndex`]) |
//! | `DELETE /users/@me/guilds/{g}` (leave guild), user token | 204 | `discord:user:{userKey}` |
//! | `DELETE /users/@me/guilds/{g}` (leave guild), bot token | 204 | `discord:bot:{botId}`, `discord:guild:{g}` |
//!
//! An entry edited in place is the writer's own copy; it keeps its tags and starts a fresh TTL (the
//! store does not tell how much of the old one was left). Another credential's copy of the same list
//! is refreshed by its TTL or by the gateway event Discord sends for the change. Entries built from a write's answer carry `content-type` only (not the write's
//! rate-limit headers). A write that cannot be applied in place (an answer that is not the expected
//! JSON) invalidates instead. A write sent on unversioned `/api/` or on another API version has the same
//! effects, except that the entries it would edit in place are removed (its answer may have another
//! version's shape).
//!
//! What a write cannot reach: a kicked, banned or re-roled user's own guild list (the cache cannot map
//! a Discord user id to a token's [`UserKey`]) keeps its entry until its TTL or
//! [`DiscordCacheLayer::invalidate_discord_user_cache`].
//!
//! # Helpers and gateway events
//!
//! - [`DiscordCacheLayer::invalidate_discord_guild_cache`]: channels, roles and members of a guild.
//! - [`DiscordCacheLayer::invalidate_discord_user_cache`]: everything fetched with a user's token, the user
//!   being identified by the [`UserKey`] of their access token.
//! - [`DiscordCacheLayer::apply_gateway_event`]: `GUILD_ROLE_*`, `CHANNEL_*`, `GUILD_MEMBER_*`,
//!   `GUILD_CREATE`/`UPDATE`/`DELETE` (table in [`gateway`]). Events can be missed; TTLs stay.
//!
//! # Configuration
//!
//! [`DiscordCacheLayer::from_env`] reads `CACHE_ENABLED` (`false`: pass-through) and the TTL variables above,
//! in whole seconds (`0`: deduplicate concurrent reads, store nothing). A bad value is an error naming
//! the variable. The store is chosen by the caller: `cache_memory::MemoryStore` in process,
//! `cache_redis::RedisStore` shared by every process, or `tower_cache::EnvStore::from_env()` for Redis
//! when `REDIS_URL` is set and memory otherwise.
//!
//! The tests and the demo run against `discord-test-server`, a local Discord-like REST server (a crate
//! of its own in this workspace).

/// `get_ref`, `get_mut` and `into_inner` for a service whose inner service is its field `inner`.
macro_rules! define_inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service, unwrapped.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
pub(crate) use define_inner_service_accessors;

pub mod buffer;
pub mod channel_index;
pub mod credential;
pub mod gateway;
pub mod keys;
pub mod ratelimit;
pub mod route;

mod body;
mod error;
mod json_list;
mod layer;
mod policy;
mod response;
mod route_table;
mod service;
mod ttl;
mod write;

pub use body::DiscordBody;
pub use buffer::{BufferResponse, BufferResponseLayer};
pub use channel_index::ChannelIndex;
pub use credential::{Credential, UserKey};
pub use error::Error;
pub use layer::{DiscordCacheLayer, DEFAULT_FILL_LEASE, DEFAULT_NEAR_SIZE};
pub use policy::{DiscordPolicy, DiscordRead, DiscordWrite};
pub use ratelimit::{DiscordRateLimit, DiscordRateLimitLayer, RateLimitConfig, RateLimitError};
pub use response::{is_kept_header, CachedResponse};
pub use route::{Route, RouteQuery, Snowflake};
pub use service::{DiscordCacheService, DiscordResponseFuture};
pub use ttl::{
    DiscordTtls, CACHE_DISCORD_BOT_GUILDS_TTL, CACHE_DISCORD_CHANNELS_TTL,
    CACHE_DISCORD_MEMBERS_TTL, CACHE_DISCORD_ROLES_TTL, CACHE_DISCORD_STALE_IF_ERROR,
    CACHE_DISCORD_STALE_WHILE_REVALIDATE, CACHE_DISCORD_USER_GUILDS_TTL,
};
