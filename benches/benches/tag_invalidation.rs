//! Invalidating a tag carried by 1,000 entries, and the misses that follow, against one raw store write.
//!
//! Every entry is filled through the layer with two tags: one shared by all 1,000 (`all`) and its own key.
//!
//! In process (`tag_invalidation`, current-thread runtime):
//! - `baseline/mini_moka_insert`: one raw mini-moka `insert` of a key and a 190-byte value.
//! - `invalidate/tag_of_1000_entries`: `CacheHandle::invalidate_tags(["all"])`. The store records the
//!   invalidation's time instead of visiting the carriers, so the first call kills the 1,000 entries and
//!   the later ones do the same work again on their (dead) carriers.
//! - `invalidate_then_reread_1000`: that invalidation, then the 1,000 keys read again through the layer:
//!   every read is a miss that calls the inner service and stores the entry anew, which leaves the store
//!   as the next iteration needs it. Checked: the inner service runs 1,000 times per iteration.
//! - `reference/reread_1000_hits`: the same 1,000 reads without the invalidation: all hits.
//!
//! On a private Redis started for the bench (`tag_invalidation_redis`, two-worker runtime; `redis-server`
//! must be on `PATH`):
//! - `baseline/raw_set`: one raw `SET` on a multiplexed connection.
//! - `invalidate/tag_of_1000_entries`: as above, on the Redis store.
//! - `reference/raw_set_1000_concurrently`: 1,000 raw `SET`s joined in one task.
//! - `invalidate_then_reread_1000_concurrently`: the invalidation, then the 1,000 keys read again through
//!   the layer from 1,000 futures joined in one task (misses that store their entries anew).

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::workload::{keys, tagged_policy, value, KEYS, SHARED_TAG};
use cache_core::CacheLayer;
use cache_memory::MemoryStore;
use cache_redis::{RedisOptions, RedisStore};
use criterion::Criterion;
use futures_util::future::join_all;
use mini_moka::sync::Cache as MiniMoka;
use redis_test_server::RedisServer;
use tower::{service_fn, Layer, Service, ServiceExt};

/// The inner service: answers at once, counting its calls.
fn no_op(
    calls: &Arc<AtomicUsize>,
) -> impl Service<
    u64,
    Response = String,
    Error = Infallible,
    Future = Ready<Result<String, Infallible>>,
> + Clone
       + Send
       + 'static {
    let calls = Arc::clone(calls);
    let value = value();
    service_fn(move |_: u64| {
        calls.fetch_add(1, Ordering::Relaxed);
        ready(Ok(value.clone()))
    })
}

fn memory(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(MemoryStore::<String>::new(KEYS * 2), tagged_policy());
    let handle = layer.handle();
    let service = layer.layer(no_op(&calls));
    let read_all = || {
        let service = service.clone();
        async move {
            for id in 0..KEYS {
                black_box(service.clone().oneshot(id).await.expect("answer"));
            }
        }
    };
    runtime.block_on(read_all());
    assert_eq!(calls.load(Ordering::Relaxed), KEYS as usize, "filled");

    let raw: MiniMoka<String, String> = MiniMoka::new(KEYS * 2);
    let (keys, value) = (keys(), value());

    let mut group = c.benchmark_group("tag_invalidation");
    group.bench_function("baseline/mini_moka_insert", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (raw, keys, value) = (&raw, &keys, &value);
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    raw.insert(keys[(i % KEYS) as usize].clone(), value.clone());
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("invalidate/tag_of_1000_entries", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let handle = &handle;
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    handle
                        .invalidate_tags([SHARED_TAG])
                        .await
                        .expect("invalidate");
                }
                started.elapsed()
            }
        });
    });
    // The previous bench left the entries dead: fill them again, untimed.
    runtime.block_on(read_all());
    // An iteration takes about a millisecond: fewer samples keep to the measurement time.
    group.sample_size(30);
    group.bench_function("invalidate_then_reread_1000", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (handle, read_all, calls) = (&handle, &read_all, &calls);
            async move {
                let before = calls.load(Ordering::Relaxed);
                let started = Instant::now();
                for _ in 0..iters {
                    handle
                        .invalidate_tags([SHARED_TAG])
                        .await
                        .expect("invalidate");
                    read_all().await;
                }
                let took = started.elapsed();
                let ran = calls.load(Ordering::Relaxed) - before;
                assert_eq!(
                    ran as u64,
                    iters * KEYS,
                    "every reread after the invalidation is a miss"
                );
                took
            }
        });
    });
    group.bench_function("reference/reread_1000_hits", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (read_all, calls) = (&read_all, &calls);
            async move {
                let before = calls.load(Ordering::Relaxed);
                let started = Instant::now();
                for _ in 0..iters {
                    read_all().await;
                }
                let took = started.elapsed();
                assert_eq!(calls.load(Ordering::Relaxed), before, "every read is a hit");
                took
            }
        });
    });
    group.finish();
}

fn redis(c: &mut Criterion) {
    let server = RedisServer::start();
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let options = RedisOptions::default()
        .key_prefix("bench:")
        .expect("prefix")
        .timeout(Duration::from_secs(1));
    // The store's connection pool starts its housekeeping on the current runtime.
    let store = {
        let _context = runtime.enter();
        RedisStore::<String>::connect(&url, options).expect("store")
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(store, tagged_policy());
    let handle = layer.handle();
    let stats = layer.stats();
    let service = layer.layer(no_op(&calls));
    let read_all = || {
        let service = service.clone();
        async move {
            let answers = join_all((0..KEYS).map(|id| service.clone().oneshot(id))).await;
            for answer in answers {
                black_box(answer.expect("answer"));
            }
        }
    };
    runtime.block_on(read_all());
    assert_eq!(calls.load(Ordering::Relaxed), KEYS as usize, "filled");
    let before = calls.load(Ordering::Relaxed);
    runtime.block_on(read_all());
    assert_eq!(
        calls.load(Ordering::Relaxed),
        before,
        "the fill is read back as hits"
    );

    let raw = runtime
        .block_on(async {
            redis::Client::open(url.as_str())?
                .get_multiplexed_async_connection()
                .await
        })
        .expect("raw connection");
    let (keys, value) = (
        Arc::new(
            keys()
                .into_iter()
                .map(|key| format!("raw:{key}"))
                .collect::<Vec<_>>(),
        ),
        value(),
    );
    let set = |key: &str| {
        let mut raw = raw.clone();
        let command = redis::cmd("SET").arg(key).arg(&value).to_owned();
        async move { command.query_async::<()>(&mut raw).await.expect("SET") }
    };

    let mut group = c.benchmark_group("tag_invalidation_redis");
    group.bench_function("baseline/raw_set", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (set, keys) = (&set, &keys);
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    set(&keys[(i % KEYS) as usize]).await;
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("invalidate/tag_of_1000_entries", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let handle = &handle;
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    handle
                        .invalidate_tags([SHARED_TAG])
                        .await
                        .expect("invalidate");
                }
                started.elapsed()
            }
        });
    });
    group.sample_size(10);
    group.bench_function("reference/raw_set_1000_concurrently", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (set, keys) = (&set, &keys);
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    join_all(keys.iter().map(|key| set(key))).await;
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("invalidate_then_reread_1000_concurrently", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (handle, read_all, calls) = (&handle, &read_all, &calls);
            async move {
                let before = calls.load(Ordering::Relaxed);
                let started = Instant::now();
                for _ in 0..iters {
                    handle
                        .invalidate_tags([SHARED_TAG])
                        .await
                        .expect("invalidate");
                    read_all().await;
                }
                let took = started.elapsed();
                let ran = calls.load(Ordering::Relaxed) - before;
                assert_eq!(
                    ran as u64,
                    iters * KEYS,
                    "every reread after the invalidation is a miss"
                );
                took
            }
        });
    });
    group.finish();
    assert_eq!(
        stats.snapshot().store_errors,
        0,
        "no store operation failed"
    );
    drop(server);
}

fn main() {
    common::run(|criterion| {
        memory(criterion);
        redis(criterion);
    });
}
