//! What the layer adds around an inner service that answers at once, against calling that service bare.
//!
//! The inner service returns a clone of a 190-byte `String` without waiting (`tower::service_fn` over
//! `std::future::ready`); so does the bare baseline, so the difference is the layer's own work.
//!
//! - `baseline/bare_service`: `ready().await` then `call` on the inner service.
//! - `layer/miss_dedupe_only`: a policy with TTL zero ("dedupe only, never stored"): every call builds
//!   its key, misses the in-process store, leads a single flight, calls the inner service through the
//!   miss path and publishes its value, and stores nothing. Checked before timing: every call runs the
//!   inner service and nothing is stored.
//! - `layer/pass_through`: a policy whose key extractor returns `None`: every call goes to the inner
//!   service through the layer's pass-through path.
//! - `layer/disabled`: `CacheLayer::enabled(false)` (`CACHE_ENABLED=false`), for comparison.
//!
//! Each is a hand-written loop inside one `block_on` of a current-thread runtime (`iter_custom`).

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::workload::{dedupe_only_policy, pass_through_policy, value, KeyFn, KEYS};
use cache_core::{CacheLayer, Policy};
use cache_memory::MemoryStore;
use criterion::Criterion;
use tokio::runtime::Runtime;
use tower::{service_fn, BoxError, Layer, Service, ServiceExt};

/// Times `iters` calls of `service`, each after `ready()`, on request ids cycling through the keys.
fn time_calls<S>(runtime: &Runtime, service: &S, iters: u64) -> Duration
where
    S: Service<u64, Response = String> + Clone,
    S::Error: Into<BoxError> + std::fmt::Debug,
{
    let mut service = service.clone();
    runtime.block_on(async move {
        let started = Instant::now();
        for i in 0..iters {
            let ready = service.ready().await.expect("ready");
            black_box(ready.call(black_box(i % KEYS)).await.expect("answer"));
        }
        started.elapsed()
    })
}

/// The no-op inner service, counting its calls.
fn no_op(
    calls: &Arc<AtomicUsize>,
) -> impl Service<
    u64,
    Response = String,
    Error = Infallible,
    Future = Ready<Result<String, Infallible>>,
> + Clone {
    let calls = Arc::clone(calls);
    let value = value();
    service_fn(move |_: u64| {
        calls.fetch_add(1, Ordering::Relaxed);
        ready(Ok(value.clone()))
    })
}

/// A layer over the no-op service with `policy`, checked (untimed) to send every one of 100 calls to
/// the inner service and to store nothing.
fn checked_layer(
    runtime: &Runtime,
    policy: Policy<KeyFn>,
    enabled: bool,
) -> impl Service<u64, Response = String, Error = BoxError> + Clone {
    let calls = Arc::new(AtomicUsize::new(0));
    let store = MemoryStore::<String>::new(KEYS * 2);
    let layer = CacheLayer::new(store.clone(), policy).enabled(enabled);
    let stats = layer.stats();
    let service = layer.layer(no_op(&calls));
    runtime.block_on(async {
        for _ in 0..100 {
            // One key, called again and again: had anything been stored, the later calls would hit.
            service.clone().oneshot(7).await.expect("answer");
        }
    });
    let snapshot = stats.snapshot();
    assert_eq!(
        calls.load(Ordering::Relaxed),
        100,
        "every call runs the inner service"
    );
    assert_eq!(
        (snapshot.hits, store.entry_count()),
        (0, 0),
        "nothing is stored"
    );
    service
}

fn layer_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bare = no_op(&Arc::new(AtomicUsize::new(0)));
    let miss = checked_layer(&runtime, dedupe_only_policy(), true);
    let pass = checked_layer(&runtime, pass_through_policy(), true);
    let disabled = checked_layer(&runtime, dedupe_only_policy(), false);

    let mut group = c.benchmark_group("layer_overhead");
    group.bench_function("baseline/bare_service", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &bare, iters));
    });
    group.bench_function("layer/miss_dedupe_only", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &miss, iters));
    });
    group.bench_function("layer/pass_through", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &pass, iters));
    });
    group.bench_function("layer/disabled", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &disabled, iters));
    });
    group.finish();
}

fn main() {
    common::run(layer_overhead);
}
