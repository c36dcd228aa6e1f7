//! twilight's REST client (twilight-http from crates.io) pointed at the proxy with
//! `ClientBuilder::proxy`, its own rate limiter on (its global limit lifted), in front of the
//! Discord-like server.

use std::time::{Duration, Instant};

use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordRateLimitLayer, RateLimitConfig};
use cache_discord_proxy::{Proxy, ProxySettings, RunningProxy};
use cache_memory::MemoryStore;
use discord_test_server::{DiscordServer, RateLimits, ServerConfig};
use tower_cache::EnvStore;
use twilight_model::id::Id;

async fn start(rate_limits: RateLimits) -> (DiscordServer, RunningProxy) {
    let server = DiscordServer::start(ServerConfig {
        latency: Duration::from_millis(2),
        rate_limits,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let settings = ProxySettings::new(
        "127.0.0.1:0".parse().unwrap(),
        &format!("http://{}", server.addr()),
    )
    .unwrap();
    let store = EnvStore::Memory(MemoryStore::<CachedResponse>::new(10_000));
    let discord =
        DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")]).unwrap();
    let limits = DiscordRateLimitLayer::new(RateLimitConfig::default());
    let proxy = Proxy::new(settings, store, discord, limits)
        .start()
        .await
        .unwrap();
    (server, proxy)
}

fn twilight(proxy: &RunningProxy, token: String) -> twilight_http::Client {
    twilight_http::Client::builder()
        .proxy(proxy.addr().to_string(), true)
        .token(token)
        // Its bucket pacing stays on; its own global pacing (50/s) is lifted, since the proxy paces
        // what reaches Discord.
        .ratelimiter(Some(twilight_http_ratelimiting::RateLimiter::new(u16::MAX)))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_and_read_your_writes_through_twilight() {
    // Two per window: the answer that fills the cache is the window's last (nothing remaining), the
    // answer a client's limiter would wait on if hits replayed its headers.
    let limits = RateLimits {
        global_per_second: 50,
        bucket_limit: 2,
        bucket_window: Duration::from_secs(1),
        route_buckets: Vec::new(),
    };
    let (server, proxy) = start(limits).await;
    let bot = server.bot();
    let guild = &server.guilds()[0];
    let client = twilight(&proxy, format!("Bot {}", bot.token));
    let guild_id = Id::new(guild.id);

    let started = Instant::now();
    for _ in 0..200 {
        let roles = client
            .roles(guild_id)
            .await
            .expect("answered")
            .model()
            .await
            .expect("roles");
        assert_eq!(roles.len(), guild.roles.len());
    }
    let elapsed = started.elapsed();
    assert_eq!(server.stats().calls_to("GET /guilds/{guild.id}/roles"), 2);
    // Paced by the first answer's bucket (5 per second), 200 reads would take 39 s or more.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    eprintln!("200 cached reads through twilight-http: {elapsed:?}");

    let role = Id::new(guild.roles[1]);
    client
        .update_role(guild_id, role)
        .name(Some("renamed by twilight"))
        .await
        .expect("the write goes through");
    let roles = client.roles(guild_id).await.unwrap().model().await.unwrap();
    assert!(
        roles.iter().any(|r| r.name == "renamed by twilight"),
        "read your write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_token_through_twilight_gets_discords_401() {
    let (server, proxy) = start(RateLimits::unlimited()).await;
    let bot = server.bot();
    let guild_id = Id::new(server.guilds()[0].id);
    let real = twilight(&proxy, format!("Bot {}", bot.token));
    for _ in 0..3 {
        real.roles(guild_id).await.expect("the bot reads");
    }
    let forged = format!(
        "Bot {}.Zm9yZ2Vk.c2lnbmF0dXJl",
        bot.token.split('.').next().unwrap()
    );
    let error = twilight(&proxy, forged)
        .roles(guild_id)
        .await
        .expect_err("refused");
    assert!(
        matches!(error.kind(), twilight_http::error::ErrorType::Response { status, .. } if status.get() == 401),
        "{error:?}"
    );
}
