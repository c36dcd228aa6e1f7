//! What the Discord cache saves a bot and its dashboard, measured against a local Discord-like API.
//!
//! `cargo run --release -p examples --bin discord_demo`
//!
//! No token and no network: the program starts `discord_test_server` on 127.0.0.1 (realistic JSON,
//! a few ms of latency, Discord's rate-limit headers, 50 requests/s global limit per account, per-route
//! buckets, 429 with `retry_after`) and talks to it through hyper-util's HTTP client, a tower service.
//! The cached run stacks the Discord cache over the rate-limit layer (`DiscordRateLimitLayer`), which
//! paces what still goes to Discord; both keep their state in Redis when `REDIS_URL` is set.
//!
//! The workload is a dashboard morning: users arrive over a few seconds, each loads their guild list
//! (with their own OAuth2 token), then opens one of their guilds, picked with a Zipf skew towards the
//! popular ones, and the backend reads that guild's channels, roles and the user's member with the bot
//! token. Some users are far more active than others (Zipf again), announcements send bursts of users
//! at once, admins make edits (nicknames, roles, channels) and the bot polls its own guild list. From 3 s
//! to 5 s Discord has an outage: every request is answered 429 for a second, then 503 for a second. The
//! same workload, on the same schedule and with the same outage, runs twice against a fresh server:
//! first straight to the API, then through the Discord cache, whose expired entries answer in Discord's
//! place during the outage (stale-if-error) and at once while they refresh (stale-while-revalidate).
//! The cache's settings come from the environment, with the demo's defaults (short TTLs, both stale
//! periods on) where it has none: see `settings.rs`.
//!
//! Progress goes to stderr; stdout gets one JSON line:
//! `{"requests":N,"upstream_calls":N,"upstream_calls_without_cache":N,"rate_limited":N,
//! "rate_limited_without_cache":N,"rate_limited_outside_outage":N,"rate_limited_outside_outage_without_cache":N,
//! "paced_requests":N,"pacing_wait_ms":F,"upstream_429s":N,"hits":N,"misses":N,"dedupes":N,"p50_ms":F,"p99_ms":F,"p99_ms_outside_outage":F,"backend":"memory|redis",
//! "requests_during_outage":N,"failed_during_outage":N,"failed_during_outage_without_cache":N,"stale_served":N}`
//! where `requests` is the number of requests the workload sends in each run, `rate_limited` counts the
//! 429 answers callers received (`rate_limited_outside_outage`: those to requests released outside
//! the outage, which pacing must keep at 0), `paced_requests` the requests the rate limiter made wait
//! (for `pacing_wait_ms` in all), `upstream_429s` the 429s it received from Discord, and the latency
//! percentiles are those of the cached run.
//! `requests_during_outage` counts the requests of the actions released during the outage,
//! `failed_during_outage` those of them that failed (a 429, a 5xx or no answer), and `stale_served` the
//! answers the cache gave from entries past their TTL, during the outage or not.

mod outage;
mod random;
mod run;
mod settings;
mod workload;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{BoxError, Store};
use cache_discord::{
    BufferResponseLayer, CachedResponse, DiscordBody, DiscordCacheLayer, DiscordRateLimitLayer,
};
use discord_test_server::{DiscordServer, ServerConfig, ServerStats};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::util::BoxCloneSyncService;
use tower::Layer;
use tower_cache::EnvStore;

use run::{run, RunResult};
use settings::DemoEnv;
use workload::{Action, Plan, RUN};

/// Seed of the server's data and of the workload: every run of the demo sends the same requests.
const SEED: u64 = 0x00D1_5C0D;

fn server_config() -> ServerConfig {
    ServerConfig {
        seed: SEED,
        guilds: 40,
        users: 120,
        guilds_per_user: 6,
        latency: Duration::from_millis(4),
        ..ServerConfig::default()
    }
}

/// The HTTP client every run uses: hyper-util's client, buffered, maybe cached, type-erased.
type DiscordClient = BoxCloneSyncService<http::Request<Full<Bytes>>, CachedResponse, BoxError>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    let plan_server = DiscordServer::start(server_config()).await?;
    let plan = Plan::generate(&plan_server.users(), &plan_server.guilds(), SEED);
    drop(plan_server);
    eprintln!(
        "discord demo: {} requests per run over {:?} ({} page loads, {} edits, {} bot polls)",
        plan.requests(),
        RUN,
        plan.count(|a| matches!(a, Action::PageLoad { .. })),
        plan.count(|a| matches!(a, Action::Edit(_))),
        plan.count(|a| matches!(a, Action::BotGuilds)),
    );

    // Run 1: straight to the API.
    let server = DiscordServer::start(server_config()).await?;
    let uncached = run("without cache", buffered_client(), &server, &plan).await;
    let without = server.stats();
    drop(server);

    // Run 2: the same workload through the Discord cache.
    let (cached, with, cache_stats, pacing, backend) = cached_run(&plan).await?;

    let report = json!({
        "requests": cached.samples.len(),
        "upstream_calls": with.requests,
        "upstream_calls_without_cache": without.requests,
        "rate_limited": cached.rate_limited(),
        "rate_limited_without_cache": uncached.rate_limited(),
        "rate_limited_outside_outage": cached.rate_limited_outside_outage(),
        "rate_limited_outside_outage_without_cache": uncached.rate_limited_outside_outage(),
        "paced_requests": pacing.waited,
        "pacing_wait_ms": round3(pacing.wait_time.as_secs_f64() * 1000.0),
        "upstream_429s": pacing.rate_limited,
        "hits": cache_stats.hits,
        "misses": cache_stats.misses,
        "dedupes": cache_stats.dedupes,
        "p50_ms": round3(cached.percentile(0.50)),
        "p99_ms": round3(cached.percentile(0.99)),
        "p99_ms_outside_outage": round3(cached.percentile_outside_outage(0.99)),
        "backend": backend,
        "requests_during_outage": cached.during_outage(),
        "failed_during_outage": cached.failed_during_outage(),
        "failed_during_outage_without_cache": uncached.failed_during_outage(),
        "stale_served": cache_stats.stale_served,
    });
    eprintln!(
        "without cache: p50 {:.2} ms, p99 {:.2} ms; server saw {} route and {} global 429s; \
         {} of {} requests failed during the outage",
        uncached.percentile(0.50),
        uncached.percentile(0.99),
        without.route_rate_limited,
        without.global_rate_limited,
        uncached.failed_during_outage(),
        uncached.during_outage(),
    );
    eprintln!(
        "with cache:    p50 {:.2} ms, p99 {:.2} ms; server saw {} route and {} global 429s; \
         {} of {} requests failed during the outage, {} stale answers, {} failed refreshes; \
         {} requests paced ({:.0} ms in all)",
        cached.percentile(0.50),
        cached.percentile(0.99),
        with.route_rate_limited,
        with.global_rate_limited,
        cached.failed_during_outage(),
        cached.during_outage(),
        cache_stats.stale_served,
        cache_stats.refresh_failures,
        pacing.waited,
        pacing.wait_time.as_secs_f64() * 1000.0,
    );
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    println!("{report}");
    Ok(())
}

/// What the cached run reports: its results, the server's counters, the cache's, the rate limiter's,
/// and the backend name.
type CachedRun = (
    RunResult,
    ServerStats,
    cache_core::StatsSnapshot,
    cache_discord::ratelimit::RateLimitStatsSnapshot,
    &'static str,
);

// ─── Backend selection: the one place that picks the store. ───────────────────────────────────────
// Redis when REDIS_URL is set (two demo processes on one Redis share entries and one rate-limit
// budget), in process otherwise.
async fn cached_run(plan: &Plan) -> Result<CachedRun, BoxError> {
    let store = EnvStore::<CachedResponse>::from_env_source(&DemoEnv)?;
    let backend = store.backend();
    // The CACHE_DISCORD_* rate-limit variables apply.
    let limits = DiscordRateLimitLayer::from_env_source(&DemoEnv)?;
    let limits = match store.redis_scripts() {
        Some(scripts) => limits.shared(scripts),
        None => limits,
    };
    run_with_store(store, limits, backend, plan).await
}

async fn run_with_store<St>(
    store: St,
    limits: DiscordRateLimitLayer,
    backend: &'static str,
    plan: &Plan,
) -> Result<CachedRun, BoxError>
where
    St: Store<Value = CachedResponse> + Clone,
{
    // CACHE_ENABLED and the CACHE_DISCORD_* variables apply, with the demo's defaults where unset.
    let discord = DiscordCacheLayer::from_env_source(store, &DemoEnv)?;
    let server = DiscordServer::start(server_config()).await?;
    // Cache -> buffered answers -> rate limit -> HTTP client.
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http::<DiscordBody>();
    let paced = BufferResponseLayer::new().layer(limits.layer(http));
    let client = BoxCloneSyncService::new(discord.cache_layer().layer(paced));
    let result = run("with cache", client, &server, plan).await;
    let pacing = limits.stats().snapshot();
    Ok((
        result,
        server.stats(),
        discord.stats().snapshot(),
        pacing,
        backend,
    ))
}

fn buffered_client() -> DiscordClient {
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http::<Full<Bytes>>();
    BoxCloneSyncService::new(BufferResponseLayer::new().layer(http))
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
