//! A caching, rate-limiting proxy for Discord's REST API, for bots whose HTTP client is not a tower
//! service: discord.js, twilight, serenity point their REST client at it.
//!
//! ```text
//! bot -> proxy (hyper 1) -> Discord cache -> rate limiter -> HTTPS client -> Discord
//!        control routes (own listener, token)
//! ```
//!
//! - **Relays to its upstream and nowhere else.** Only paths under `/api/` go, to `DISCORD_API_URL`
//!   (default `https://discord.com`) with the request's path and query; absolute-form URIs and `Host`
//!   headers are ignored; dotted or percent-encoded dot, slash and backslash paths are refused with
//!   400; other paths get Discord's 404. Hop-by-hop headers are dropped both ways; every end-to-end
//!   header, the status and the bodies pass as they are, streamed.
//! - **Caches the Discord policy's reads** ([`cache_discord`]), applies writes' effects, and paces what
//!   still goes to Discord ([`cache_discord::ratelimit`]); a request the limiter will not send is
//!   answered as Discord would (429 with `retry_after`, or 401 for a rejected token).
//! - **Cached answers only to accepted credentials**: a token's reads come from the cache only after
//!   Discord answered that exact token with a success in the last five minutes, on a route where
//!   Discord checks tokens; until then they go to Discord, so a forged token claiming a bot's id gets
//!   Discord's 401, never the bot's data. A bot's newly accepted token retires its previous one.
//! - **Cached answers a client's own limiter is happy with**: a cached read's `X-RateLimit-*` headers
//!   are dropped (they describe an old window), so a burst of hits is not slowed by the client.
//!
//! - **Bounded connections**: a client that does not send its request head within
//!   `CACHE_PROXY_HEADER_TIMEOUT_MS` is disconnected; idle HTTP/2 peers are pinged; past
//!   `CACHE_PROXY_MAX_CONNECTIONS` open connections, new ones wait to be accepted; the upstream
//!   connection has 10 s to open.
//!
//! Settings: [`ProxySettings`] (`CACHE_PROXY_*`, `DISCORD_API_URL`), the store's (`REDIS_URL` or
//! `REDIS_CLUSTER_URLS`, ...), the cache's and the rate limiter's (`CACHE_DISCORD_*`). The control
//! routes are in [`admin`].

pub mod admin;

mod client;
mod credentials;
mod error;
mod relay;
mod server;
mod service;
mod settings;

pub use credentials::ACCEPTED_FOR;
pub use error::Error;
pub use server::{Proxy, RunningProxy};
pub use settings::{
    LogFormat, ProxySettings, CACHE_PROXY_ADDR, CACHE_PROXY_ADMIN_ADDR, CACHE_PROXY_ADMIN_TOKEN,
    CACHE_PROXY_CA_FILE, CACHE_PROXY_HEADER_TIMEOUT_MS, CACHE_PROXY_LOG_FORMAT,
    CACHE_PROXY_MAX_CONNECTIONS, CACHE_PROXY_SHUTDOWN_GRACE_MS, DISCORD_API_URL,
};
