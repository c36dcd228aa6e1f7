//! Load with faults: 10,000 requests from 64 connections through the proxy (Redis store, shared rate
//! limiter) while Discord goes through a 429 storm and a 5xx storm and Redis is killed and restarted.
//! Every request is answered, and every write Discord processed was sent once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordRateLimitLayer, RateLimitConfig};
use cache_discord_proxy::{Proxy, ProxySettings};
use cache_redis::{RedisOptions, RedisStore};
use discord_test_server::{DiscordServer, Outage, RateLimits, ServerConfig};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use redis_test_server::RedisServer;
use tokio::sync::Mutex;
use tower_cache::EnvStore;

const CONNECTIONS: usize = 64;
const REQUESTS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_through_a_429_storm_a_5xx_storm_and_a_redis_kill() {
    let redis = Arc::new(Mutex::new(RedisServer::start()));
    let server = Arc::new(
        DiscordServer::start(ServerConfig {
            latency: Duration::from_millis(1),
            rate_limits: RateLimits {
                global_per_second: 20_000,
                bucket_limit: 1_000,
                bucket_window: Duration::from_secs(1),
                route_buckets: Vec::new(),
            },
            ..ServerConfig::default()
        })
        .await
        .unwrap(),
    );
    let url = redis.lock().await.url();
    let options = RedisOptions::default()
        .key_prefix("faults")
        .unwrap()
        .timeout(Duration::from_millis(100));
    let store = EnvStore::Redis(RedisStore::<CachedResponse>::connect(&url, options).unwrap());
    let discord =
        DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")]).unwrap();
    let limits = DiscordRateLimitLayer::new(
        RateLimitConfig::default()
            .global_limit(20_000)
            .max_wait(Duration::from_secs(2)),
    )
    .shared(store.redis_scripts().unwrap());
    let settings = ProxySettings::new(
        "127.0.0.1:0".parse().unwrap(),
        &format!("http://{}", server.addr()),
    )
    .unwrap();
    let proxy = Proxy::new(settings, store, discord, limits.clone())
        .start()
        .await
        .unwrap();
    let base = format!("http://{}/api/v10", proxy.addr());
    let bot = server.bot().bot_authorization();
    let guilds = server.guilds();

    // The faults, on a schedule, while the load runs.
    let faults = {
        let (server, redis) = (Arc::clone(&server), Arc::clone(&redis));
        tokio::spawn(async move {
            let at = |ms| tokio::time::sleep(Duration::from_millis(ms));
            at(300).await;
            server.start_outage(Outage::route_rate_limit(Duration::from_millis(200)));
            at(300).await;
            server.end_outage();
            server.start_outage(Outage::server_error(StatusCode::SERVICE_UNAVAILABLE));
            at(300).await;
            server.end_outage();
            redis.lock().await.kill();
            at(400).await;
            redis.lock().await.restart();
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..CONNECTIONS {
        let (base, bot, guilds) = (base.clone(), bot.clone(), guilds.clone());
        tasks.spawn(async move {
            // One connection per task, kept alive.
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http::<Full<Bytes>>();
            let mut answers = Vec::new();
            for i in (connection..REQUESTS).step_by(CONNECTIONS) {
                let guild = &guilds[i % guilds.len()];
                let member = guild.members[i % guild.members.len()];
                let write = i % 10 == 0;
                let request = if write {
                    http::Request::patch(format!("{base}/guilds/{}/members/{member}", guild.id))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(format!("{{\"nick\":\"n{i}\"}}"))))
                } else {
                    let path = match i % 3 {
                        0 => format!("/guilds/{}/roles", guild.id),
                        1 => format!("/guilds/{}/channels", guild.id),
                        _ => format!("/guilds/{}/members/{member}", guild.id),
                    };
                    http::Request::get(format!("{base}{path}")).body(Full::default())
                };
                let mut request = request.unwrap();
                request
                    .headers_mut()
                    .insert("authorization", bot.parse().unwrap());
                let answer = match client.request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let whole = response.into_body().collect().await.is_ok();
                        whole.then_some(status)
                    }
                    Err(_) => None,
                };
                answers.push((write, answer));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answers
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.extend(done.unwrap());
    }
    faults.await.unwrap();

    assert_eq!(answers.len(), REQUESTS);
    let unanswered = answers.iter().filter(|(_, a)| a.is_none()).count();
    assert_eq!(unanswered, 0, "every request answered");
    let writes_done = answers
        .iter()
        .filter(|(write, a)| *write && a.is_some_and(|s| s.is_success()))
        .count() as u64;
    let stats = server.stats();
    let processed = stats.processed_by("PATCH /guilds/{guild.id}/members/{user.id}");
    assert_eq!(
        processed, writes_done,
        "each write Discord processed was answered with its success, and none went twice"
    );
    let by_status = answers
        .iter()
        .fold(std::collections::BTreeMap::new(), |mut m, (_, a)| {
            *m.entry(a.map_or(0, |s| s.as_u16())).or_insert(0) += 1;
            m
        });
    eprintln!(
        "answers by status {by_status:?}; upstream {} requests, {} outage answers; rate limiter {:?}",
        stats.requests,
        stats.outage_answers,
        limits.stats().snapshot()
    );
    assert!(
        stats.outage_answers > 0,
        "the storms happened during the load"
    );
    assert!(
        limits.stats().snapshot().fallbacks > 0,
        "the Redis kill happened during the load"
    );
    proxy.shutdown().await;
}
