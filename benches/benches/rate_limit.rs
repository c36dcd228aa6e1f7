//! What the Discord rate limiter costs a request that does not have to wait, beside an unlimited
//! pass-through in the same run:
//!
//! - `baseline/pass_through`: the request's body made a `DiscordBody` and handed to the client, which
//!   is all the limiter adds when it admits at once;
//! - `memory/admission`: `DiscordRateLimitLayer` with its budget in the process;
//! - `redis/raw_get`: one plain `GET` on a private Redis, the floor of any shared state;
//! - `redis/admission`: the layer with its budget in that Redis (one script per admission).
//!
//! The client answers at once with a bucket's headers (a million requests per second, never
//! exhausted), and the global limit is a million per second: nothing waits, so the figures are the
//! bookkeeping alone. Requests go to 1,000 guilds' role lists, one bucket each.

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_discord::ratelimit::RateLimitConfig;
use cache_discord::{DiscordBody, DiscordRateLimitLayer};
use cache_redis::{RedisOptions, RedisStore};
use criterion::Criterion;
use http_body_util::Full;
use redis_test_server::RedisServer;
use tower::{service_fn, Layer, Service, ServiceExt};

const GUILDS: u64 = 1_000;
const BOT: &str = "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl";

fn roles_request(i: u64) -> http::Request<Full<Bytes>> {
    let guild = 81_384_788_765_712_384 + i % GUILDS;
    http::Request::get(format!("/api/v10/guilds/{guild}/roles"))
        .header("authorization", BOT)
        .body(Full::default())
        .expect("a request")
}

fn answer() -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .header("x-ratelimit-bucket", "b2f4c1d0e9a8")
        .header("x-ratelimit-limit", "1000000")
        .header("x-ratelimit-remaining", "999999")
        .header("x-ratelimit-reset-after", "1.000")
        .body(Full::new(Bytes::from_static(b"[]")))
        .expect("an answer")
}

/// Times `iters` requests through `service`, each answer read down to its status.
async fn time_calls<S>(mut service: S, iters: u64) -> Duration
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for i in 0..iters {
        let ready = service.ready().await.expect("ready");
        let response = ready.call(roles_request(i)).await.expect("answered");
        black_box(response.status());
    }
    started.elapsed()
}

fn rate_limit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = service_fn(
        |_: http::Request<DiscordBody>| -> Ready<Result<http::Response<Full<Bytes>>, Infallible>> {
            ready(Ok(answer()))
        },
    );
    let pass_through = service_fn(move |request: http::Request<Full<Bytes>>| {
        let (parts, _) = request.into_parts();
        client.oneshot(http::Request::from_parts(
            parts,
            DiscordBody::full(Bytes::new()),
        ))
    });
    let config = RateLimitConfig::default().global_limit(1_000_000);
    let memory = DiscordRateLimitLayer::new(config.clone());
    let redis = RedisServer::start();
    let store = RedisStore::<()>::connect(&redis.url(), RedisOptions::default()).expect("a store");
    let shared = DiscordRateLimitLayer::new(config).shared(store.scripts());
    let raw = runtime.block_on(async {
        redis::Client::open(redis.url())
            .expect("a client")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection")
    });

    let mut group = c.benchmark_group("rate_limit");
    group.bench_function("baseline/pass_through", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| time_calls(pass_through, iters));
    });
    group.bench_function("memory/admission", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| time_calls(memory.layer(client), iters));
    });
    group.bench_function("redis/raw_get", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut connection = raw.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let value: Option<Vec<u8>> = redis::cmd("GET")
                        .arg("{cache:}:rl:none")
                        .query_async(&mut connection)
                        .await
                        .expect("GET");
                    black_box(value);
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("redis/admission", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| time_calls(shared.layer(client), iters));
    });
    group.finish();

    // Honesty check: every admission above was decided where it says, and none waited.
    let (memory, shared) = (memory.stats().snapshot(), shared.stats().snapshot());
    assert_eq!((memory.waited, memory.refused), (0, 0), "{memory:?}");
    assert_eq!(
        (shared.waited, shared.refused, shared.fallbacks),
        (0, 0, 0),
        "{shared:?}"
    );
}

fn main() {
    common::run(rate_limit);
}
