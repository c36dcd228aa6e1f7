//! A Discord read answered from the in-process store, through the two ways of stacking the Discord
//! layer over an HTTP client:
//!
//! - `baseline/cache_layer_into_response`: the core layer over a `BufferResponseLayer`, its
//!   `CachedResponse` turned into an `http::Response` by hand, as HTTP users had to before the layer
//!   spoke HTTP;
//! - `reference/cache_layer`: the same without the conversion (what a caller that keeps
//!   `CachedResponse` pays);
//! - `http/discord_cache_service`: `DiscordCacheLayer` itself, `http::Request` in and
//!   `http::Response<DiscordBody>` out.
//!
//! Each iteration builds the request (method, URI, `Authorization`), calls, and reads the status: the
//! same work for every variant. 1,000 guilds' role lists are cached first.

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_discord::{BufferResponseLayer, CachedResponse, DiscordCacheLayer, DiscordPolicy};
use cache_memory::MemoryStore;
use criterion::Criterion;
use http_body_util::Full;
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

/// Times `iters` reads through `service` (`ready` then `call`), each answer read down to its status.
async fn time_hits<S, R>(mut service: S, iters: u64, status: impl Fn(R) -> u16) -> Duration
where
    S: Service<http::Request<Full<Bytes>>, Response = R>,
    S::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for i in 0..iters {
        let ready = service.ready().await.expect("ready");
        let answer = ready.call(roles_request(i)).await.expect("hit");
        black_box(status(answer));
    }
    started.elapsed()
}

fn discord_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let roles = Bytes::from(
        r#"[{"id":"41771983423143936","name":"@everyone","permissions":"104324673","position":0}]"#,
    );
    let inner_calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&inner_calls);
    let client = service_fn(
        move |_: http::Request<Full<Bytes>>| -> Ready<Result<http::Response<Full<Bytes>>, Infallible>> {
            counted.fetch_add(1, Ordering::Relaxed);
            let mut response = http::Response::new(Full::new(roles.clone()));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().expect("a value"));
            ready(Ok(response))
        },
    );
    let discord = DiscordCacheLayer::new(
        MemoryStore::<CachedResponse>::new(GUILDS * 2),
        DiscordPolicy::default(),
    );
    let stacked = discord
        .cache_layer()
        .layer(BufferResponseLayer::new().layer(client.clone()));
    let http = discord.layer(client);
    runtime.block_on(async {
        for i in 0..GUILDS {
            stacked
                .clone()
                .oneshot(roles_request(i))
                .await
                .expect("fill");
        }
    });

    let mut group = c.benchmark_group("discord_hit");
    group.bench_function("baseline/cache_layer_into_response", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            time_hits(stacked.clone(), iters, |cached: CachedResponse| {
                cached.into_response().status().as_u16()
            })
        });
    });
    group.bench_function("reference/cache_layer", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            time_hits(stacked.clone(), iters, |cached: CachedResponse| {
                cached.status()
            })
        });
    });
    group.bench_function("http/discord_cache_service", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            time_hits(http.clone(), iters, |response: http::Response<_>| {
                response.status().as_u16()
            })
        });
    });
    group.finish();

    // Honesty check: every timed call above was a hit.
    assert_eq!(
        inner_calls.load(Ordering::Relaxed),
        GUILDS as usize,
        "the client ran after the fill: some timed calls were misses"
    );
    assert_eq!(discord.stats().snapshot().misses, GUILDS);
}

fn main() {
    common::run(discord_hit);
}
