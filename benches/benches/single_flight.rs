//! 1,000 concurrent callers of one key, on an inner service that yields once before answering: the time
//! until every caller has its answer.
//!
//! Each iteration asks for a key no earlier iteration used, so it starts from a miss; the setup checks
//! (untimed, panicking otherwise) that the inner service ran exactly once for the 1,000 callers and that
//! the in-flight map is empty once they settle.
//!
//! - `one_task/*`: the callers are 1,000 futures joined in one task (`join_all`) on a current-thread
//!   runtime: the cost of the layer's single flight itself.
//!   - `baseline/shared_future`: the smallest hand-made single flight, 1,000 clones of one
//!     `futures::future::Shared` of the inner call (the inner service runs once).
//!   - `reference/bare_calls`: 1,000 calls of the bare inner service (it runs 1,000 times).
//!   - `layer`: 1,000 `oneshot`s through the layer on the in-process store.
//! - `spawned/*`: the callers are 1,000 `tokio::spawn`ed tasks on a two-worker runtime, as in a server.
//!   - `baseline/shared_future` and `layer` as above.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::workload::{tagged_policy, value};
use cache_core::CacheLayer;
use cache_memory::MemoryStore;
use criterion::Criterion;
use futures_util::future::{join_all, BoxFuture, FutureExt};
use tokio::runtime::Runtime;
use tower::{service_fn, Layer, Service, ServiceExt};

const CALLERS: usize = 1_000;

/// The inner service: counts its calls, yields once to the scheduler, then answers.
fn yielding(
    calls: &Arc<AtomicUsize>,
) -> impl Service<
    u64,
    Response = String,
    Error = Infallible,
    Future = BoxFuture<'static, Result<String, Infallible>>,
> + Clone
       + Send
       + 'static {
    let calls = Arc::clone(calls);
    let value = value();
    service_fn(move |_: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        let value = value.clone();
        async move {
            tokio::task::yield_now().await;
            Ok(value)
        }
        .boxed()
    })
}

/// Runs `iters` rounds of `round` (given a fresh request id), timing each round only (the callers' futures
/// are built inside the timed part), and checks after each round that the inner service ran
/// `expected_calls` times and that no flight is left.
fn rounds<F>(
    runtime: &Runtime,
    calls: &AtomicUsize,
    next_id: &AtomicU64,
    iters: u64,
    expected_calls: usize,
    in_flight: impl Fn() -> usize,
    mut round: F,
) -> Duration
where
    F: FnMut(u64) -> BoxFuture<'static, ()>,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let before = calls.load(Ordering::SeqCst);
        total += runtime.block_on(async {
            let started = Instant::now();
            round(id).await;
            started.elapsed()
        });
        let ran = calls.load(Ordering::SeqCst) - before;
        assert_eq!(
            ran, expected_calls,
            "{CALLERS} callers of one key ran the inner service {ran} times, expected {expected_calls}"
        );
        assert_eq!(in_flight(), 0, "a flight outlived its callers");
    }
    total
}

/// Awaits every caller: joined in this task, or each spawned as a task of its own.
fn settle<F, E>(callers: Vec<F>, spawn: bool) -> BoxFuture<'static, ()>
where
    F: Future<Output = Result<String, E>> + Send + 'static,
    E: std::fmt::Debug + Send + 'static,
{
    if spawn {
        async move {
            let tasks: Vec<_> = callers.into_iter().map(tokio::spawn).collect();
            for task in tasks {
                black_box(task.await.expect("caller").expect("answer"));
            }
        }
        .boxed()
    } else {
        async move {
            for answer in join_all(callers).await {
                black_box(answer.expect("answer"));
            }
        }
        .boxed()
    }
}

fn single_flight(c: &mut Criterion) {
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let two_workers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let calls = Arc::new(AtomicUsize::new(0));
    let next_id = AtomicU64::new(0);
    let bare = yielding(&calls);
    let layer = CacheLayer::new(MemoryStore::<String>::new(10_000), tagged_policy());
    let service = layer.layer(yielding(&calls));

    // Each makes a round of 1,000 callers of request `id`; the callers' futures are built inside it.
    let shared_future = |spawn: bool| {
        let bare = bare.clone();
        move |id: u64| {
            let call = bare.clone().oneshot(id).shared();
            settle((0..CALLERS).map(|_| call.clone()).collect(), spawn)
        }
    };
    let through_layer = |spawn: bool| {
        let service = service.clone();
        move |id: u64| {
            settle(
                (0..CALLERS).map(|_| service.clone().oneshot(id)).collect(),
                spawn,
            )
        }
    };

    let no_flights = || 0;
    let layer_flights = || service.in_flight();

    let mut group = c.benchmark_group("single_flight");
    // A round takes about a millisecond: fewer samples keep to the measurement time.
    group.sample_size(30);
    group.bench_function("one_task/baseline/shared_future", |b| {
        b.iter_custom(|iters| {
            let round = shared_future(false);
            rounds(
                &current_thread,
                &calls,
                &next_id,
                iters,
                1,
                no_flights,
                round,
            )
        });
    });
    group.bench_function("one_task/reference/bare_calls", |b| {
        b.iter_custom(|iters| {
            let round = |id: u64| {
                settle(
                    (0..CALLERS).map(|_| bare.clone().oneshot(id)).collect(),
                    false,
                )
            };
            rounds(
                &current_thread,
                &calls,
                &next_id,
                iters,
                CALLERS,
                no_flights,
                round,
            )
        });
    });
    group.bench_function("one_task/layer", |b| {
        b.iter_custom(|iters| {
            let round = through_layer(false);
            rounds(
                &current_thread,
                &calls,
                &next_id,
                iters,
                1,
                layer_flights,
                round,
            )
        });
    });
    group.bench_function("spawned/baseline/shared_future", |b| {
        b.iter_custom(|iters| {
            let round = shared_future(true);
            rounds(&two_workers, &calls, &next_id, iters, 1, no_flights, round)
        });
    });
    group.bench_function("spawned/layer", |b| {
        b.iter_custom(|iters| {
            let round = through_layer(true);
            rounds(
                &two_workers,
                &calls,
                &next_id,
                iters,
                1,
                layer_flights,
                round,
            )
        });
    });
    group.finish();

    assert_eq!(
        service.in_flight(),
        0,
        "the in-flight map is empty once calls settle"
    );
    let stats = layer.stats().snapshot();
    assert_eq!(stats.store_errors, 0);
}

fn main() {
    common::run(single_flight);
}
