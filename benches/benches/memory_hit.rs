//! A hit through the cache layer on the in-process store, against a raw mini-moka `get` of the same key
//! and value (a 190-byte `String`, cloned out by both).
//!
//! Every variant is a hand-written loop over the same 1,000 keys inside one `block_on` of a
//! current-thread runtime (`iter_custom`), so the harness costs the subject and the baseline the same.
//!
//! - `baseline/mini_moka_get`: the raw `get`, handed a key built beforehand.
//! - `reference/mini_moka_get_building_key`: the raw `get` after `format!`ing the key, as the policy does.
//! - `layer/call`: `ready().await` then `call` on one service.
//! - `layer/oneshot_on_clone`: `clone().oneshot(id)`, as a handler holding a shared service does.

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use benches::workload::{key_of, keys, tagged_policy, value, KEYS};
use cache_core::CacheLayer;
use cache_memory::MemoryStore;
use criterion::Criterion;
use mini_moka::sync::Cache as MiniMoka;
use tower::{service_fn, Layer, Service, ServiceExt};

fn memory_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let inner_calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&inner_calls);
    let inner = service_fn(move |_: u64| -> Ready<Result<String, Infallible>> {
        counted.fetch_add(1, Ordering::Relaxed);
        ready(Ok(value()))
    });
    let layer = CacheLayer::new(MemoryStore::<String>::new(KEYS * 2), tagged_policy());
    let stats = layer.stats();
    let service = layer.layer(inner);
    runtime.block_on(async {
        for id in 0..KEYS {
            service.clone().oneshot(id).await.expect("fill");
        }
    });
    let raw: MiniMoka<String, String> = MiniMoka::new(KEYS * 2);
    for id in 0..KEYS {
        raw.insert(key_of(id), value());
    }
    let keys = keys();

    let mut group = c.benchmark_group("memory_hit");
    group.bench_function("baseline/mini_moka_get", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (raw, keys) = (&raw, &keys);
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    let found = raw.get(&keys[(i % KEYS) as usize]);
                    black_box(found.expect("present"));
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("reference/mini_moka_get_building_key", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let raw = &raw;
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    let found = raw.get(&key_of(black_box(i % KEYS)));
                    black_box(found.expect("present"));
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("layer/call", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut service = service.clone();
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    let ready = service.ready().await.expect("ready");
                    black_box(ready.call(black_box(i % KEYS)).await.expect("hit"));
                }
                started.elapsed()
            }
        });
    });
    group.bench_function("layer/oneshot_on_clone", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let service = &service;
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    let answer = service.clone().oneshot(black_box(i % KEYS)).await;
                    black_box(answer.expect("hit"));
                }
                started.elapsed()
            }
        });
    });
    group.finish();

    // Honesty check: every timed call above was a hit.
    assert_eq!(
        inner_calls.load(Ordering::Relaxed),
        KEYS as usize,
        "the inner service ran after the fill: some timed calls were misses"
    );
    assert_eq!(stats.snapshot().misses, KEYS);
}

fn main() {
    common::run(memory_hit);
}
