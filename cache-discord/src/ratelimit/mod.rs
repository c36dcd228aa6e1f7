//! Discord's rate limits, kept rather than hit: a tower layer that paces what still goes to Discord,
//! for one process or for every process of a bot.
//!
//! Stack it below the cache, right above the HTTP client: `DiscordCacheLayer` -> [`DiscordRateLimitLayer`]
//! -> client. Hits never reach it, and the cache never waits for it on a hit.
//!
//! ```
//! use bytes::Bytes;
//! use cache_discord::ratelimit::{DiscordRateLimitLayer, RateLimitConfig};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! // Any HTTP client service; Discord's answers carry the headers the layer learns from.
//! let http_client = tower::service_fn(|_: http::Request<cache_discord::DiscordBody>| async {
//!     let answer = http::Response::builder()
//!         .header("x-ratelimit-bucket", "80c17d2f203122d936070c88c8d10f33")
//!         .header("x-ratelimit-limit", "5")
//!         .header("x-ratelimit-remaining", "4")
//!         .header("x-ratelimit-reset-after", "1.000")
//!         .body(Full::new(Bytes::from_static(b"[]")))?;
//!     Ok::<_, http::Error>(answer)
//! });
//! // CACHE_DISCORD_GLOBAL_LIMIT, CACHE_DISCORD_MAX_WAIT_MS, ...; `.shared(redis_store.scripts())`
//! // keeps the budget in Redis for every process of the bot.
//! let limits = DiscordRateLimitLayer::new(RateLimitConfig::default());
//! let client = ServiceBuilder::new().layer(limits.clone()).service(http_client);
//!
//! let roles = http::Request::get("https://discord.com/api/v10/guilds/81384788765712384/roles")
//!     .header("authorization", "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl")
//!     .body(Full::new(Bytes::new()))?;
//! let answer = client.oneshot(roles).await?;
//! assert_eq!(answer.status(), 200);
//! assert_eq!(limits.stats().snapshot().admitted, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # What it keeps
//!
//! - **Buckets as Discord defines them.** A request's route is its method and path with ids replaced,
//!   except the major parameter (guild, channel, webhook id and token, interaction); the first answers
//!   to a route teach its bucket (`X-RateLimit-Bucket`), its limit and its window (the longest
//!   `X-RateLimit-Reset-After` seen), and routes that answer the same bucket hash share its budget.
//!   Until a route's bucket is known, one request at a time (per token, route and major parameter,
//!   in each process) goes and finds out, and requests of known buckets of that major parameter leave
//!   room for it. An answer with nothing remaining holds its bucket until Discord's reset.
//! - **The global limit per token**: [`RateLimitConfig::global_limit`] requests per second (50; set
//!   more for a bot Discord granted more); interaction callbacks are exempt, as on Discord, from the
//!   limit and from global holds.
//! - **At most the limit in any window.** Each budget is a log of its last grants: a request goes when
//!   fewer than `limit` were granted in the last `window + offset`. Unlike pacing one request per
//!   `window / limit`, a burst up to the limit goes at once; unlike counting fixed windows of its own,
//!   it never sends a window's worth just before Discord's window ends and another just after. One
//!   gap is Discord's own: a route's bucket is told only in its answers, so the first requests of two
//!   routes that turn out to share a bucket may together exceed it once (the 429 then holds the bucket
//!   and the request is retried).
//! - **Waiting, not failing.** A request over a limit waits its turn, in arrival order per bucket (one
//!   line per bucket per process). Its wait is bounded ([`RateLimitConfig::max_wait`], or a
//!   [`MaxWait`] extension on the request): a turn that would come later fails at once with
//!   [`RateLimitError::WouldWait`], and nothing is sent. A 429 that still arrives (another client of
//!   the token, a shared resource limit, the CDN in front of Discord) holds its bucket, its token for
//!   a global 429, or every request for a 429 without Discord's headers, for its `Retry-After`; the
//!   request is sent once more after the hold when the hold fits its bound and its body was small
//!   enough to keep ([`MAX_REPLAY_BODY`]), since Discord did not process it. Otherwise, or when the
//!   retry's turn would come past the bound, the 429 reaches the caller as Discord sent it.
//! - **Invalid-request guard.** Discord bans an address for an hour after 10,000 invalid answers (401,
//!   403, 429 but shared-scope ones) in 10 minutes. The layer counts them over a sliding window of 10
//!   minutes (in 10 s steps, so an answer counts for 10 to 10⅙ minutes) and, at [`RateLimitConfig::invalid_request_limit`] (9,000), refuses every new request
//!   locally ([`RateLimitError::InvalidRequestGuard`]) until the count drops. The count covers every
//!   token going through the budget, since the ban is per address. A 401 marks its token rejected (a
//!   401 on a route with a token in its path, a webhook's or an interaction's, marks nothing): its
//!   requests fail locally ([`RateLimitError::TokenRejected`]) for
//!   [`RateLimitConfig::invalid_token_backoff`], then one request probes (for at most 10 s), and
//!   any answer but another 401 clears the mark.
//! - **One budget for every process** with [`DiscordRateLimitLayer::shared`]: grants, holds, rejected
//!   tokens and invalid answers live in Redis under the store's key prefix (`{prefix}:rl:*`), decided
//!   by one script per admission on Redis's clock. Answers that change nothing (a success with budget
//!   left) cost no further round trip. When Redis cannot be asked, each process paces itself in
//!   memory with its share of every limit, the guard's count included
//!   ([`RateLimitConfig::instances`]): a request never fails because Redis is down.
//! - **Tokens stay secret.** A token is known by a one-way fingerprint of its `Authorization` value;
//!   tracing names a request's bucket by route and major parameter, and webhook and interaction
//!   tokens in paths never appear in either. Two tokens, even claiming one bot id, never share a
//!   budget, a hold or a rejection.
//!
//! # Cancel safety
//!
//! A caller that drops its future leaves the line; a request admitted but not yet handed to the
//! client gives its grant back, also when it is dropped while Redis decides (each grant has an id; the
//! refund runs on the current tokio runtime, and this process's next admission waits for it); a
//! request handed to the client keeps its grant (Discord may have seen it).
//!
//! # Counters
//!
//! [`RateLimitStats`]: admitted, waited and the time waited, 429s received, retries, local refusals,
//! and admissions decided without Redis. With the `metrics` feature, the same as
//! `discord_rate_limit_*_total` counters.

mod budget;
mod config;
mod error;
mod headers;
mod layer;
mod limiter;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod route;
mod service;
mod stats;

pub use config::{
    RateLimitConfig, CACHE_DISCORD_GLOBAL_LIMIT, CACHE_DISCORD_INVALID_REQUEST_LIMIT,
    CACHE_DISCORD_INVALID_TOKEN_BACKOFF, CACHE_DISCORD_MAX_WAIT_MS,
    CACHE_DISCORD_RATE_LIMIT_INSTANCES, CACHE_DISCORD_RATE_LIMIT_OFFSET_MS, INVALID_REQUEST_WINDOW,
};
pub use error::RateLimitError;
pub use layer::DiscordRateLimitLayer;
pub use service::{DiscordRateLimit, MaxWait, RateLimitFuture, MAX_REPLAY_BODY};
pub use stats::{RateLimitStats, RateLimitStatsSnapshot};
