//! Single flight through the layer: one inner call per key, shared errors, cancelled and panicking leaders.

mod support;

use std::time::Duration;

use cache_core::{upstream_error, Cache, CacheLayer, Policy};
use cache_memory::MemoryStore;
use support::{dedupes_reach, eventually, Mode, Upstream, UpstreamDown};
use tower::{Layer, ServiceExt};

type Service = Cache<Upstream, MemoryStore<String>, Policy<fn(&u64) -> Option<String>>>;

fn key(id: &u64) -> Option<String> {
    Some(format!("item:{id}"))
}

fn cached(upstream: &Upstream, ttl: Duration) -> Service {
    let policy = Policy::new(key as fn(&u64) -> Option<String>);
    CacheLayer::new(MemoryStore::new(1_000), policy.ttl(ttl)).layer(upstream.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_make_one_inner_call() {
    let upstream = Upstream::gated();
    let service = cached(&upstream, Duration::from_secs(60));
    let tasks: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(service.clone().oneshot(7)))
        .collect();

    dedupes_reach(&service.stats(), 999).await;
    // The leader may not have reached the inner service yet (its thread can be descheduled between
    // joining and calling); wait for its call, then check it is the only one.
    eventually("the leader calls upstream", || upstream.calls() >= 1).await;
    assert_eq!(
        upstream.calls(),
        1,
        "only the leader calls the inner service"
    );
    upstream.release(1);

    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "value 7 #1");
    }
    let stats = service.stats().snapshot();
    assert_eq!((stats.misses, stats.dedupes), (1, 999));
    assert_eq!(upstream.calls(), 1);
    assert_eq!(
        service.in_flight(),
        0,
        "the in-flight map is empty once calls settle"
    );

    // And the value is now cached.
    assert_eq!(service.clone().oneshot(7).await.unwrap(), "value 7 #1");
    assert_eq!((upstream.calls(), service.stats().snapshot().hits), (1, 1));
}

#[tokio::test]
async fn different_keys_fly_separately() {
    let upstream = Upstream::new();
    let service = cached(&upstream, Duration::from_secs(60));
    let (a, b) = tokio::join!(service.clone().oneshot(1), service.clone().oneshot(2));
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        ("value 1 #1".to_owned(), "value 2 #2".to_owned())
    );
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_shared_by_the_waiters_then_retried() {
    let upstream = Upstream::gated();
    upstream.set_mode(Mode::Fail);
    let service = cached(&upstream, Duration::from_secs(60));
    let tasks: Vec<_> = (0..10)
        .map(|_| tokio::spawn(service.clone().oneshot(3)))
        .collect();
    dedupes_reach(&service.stats(), 9).await;
    upstream.release(1);

    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "upstream down (call #1)");
        assert_eq!(
            upstream_error::<UpstreamDown>(&*error),
            Some(&UpstreamDown(1))
        );
    }
    assert_eq!(upstream.calls(), 1);
    assert_eq!(service.in_flight(), 0);

    // Not cached: the next request calls the inner service again, and succeeds.
    upstream.set_mode(Mode::Answer);
    upstream.release(1);
    assert_eq!(service.clone().oneshot(3).await.unwrap(), "value 3 #2");
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_the_flight_to_a_waiter() {
    let upstream = Upstream::gated();
    let service = cached(&upstream, Duration::from_secs(60));

    let leader = tokio::spawn(service.clone().oneshot(5));
    eventually("the leader calls upstream", || upstream.calls() == 1).await;
    let waiters: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(5)))
        .collect();
    dedupes_reach(&service.stats(), 5).await;

    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());

    // One waiter takes over and calls upstream again; the others wait for it.
    eventually("a waiter leads the retry", || upstream.calls() == 2).await;
    upstream.release(2);
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), "value 5 #2");
    }
    assert_eq!(upstream.calls(), 2);
    assert_eq!(service.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_leader_fails_its_waiters_and_the_next_request_retries() {
    let upstream = Upstream::gated();
    upstream.set_mode(Mode::Panic);
    let service = cached(&upstream, Duration::from_secs(60));

    let leader = tokio::spawn(service.clone().oneshot(9));
    eventually("the leader calls upstream", || upstream.calls() == 1).await;
    let waiters: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(9)))
        .collect();
    dedupes_reach(&service.stats(), 5).await;
    upstream.release(1);

    assert!(
        leader.await.unwrap_err().is_panic(),
        "the panic is not swallowed"
    );
    for waiter in waiters {
        let error = waiter.await.unwrap().unwrap_err();
        assert!(error.to_string().contains("panicked"), "{error}");
    }
    assert_eq!(
        upstream.calls(),
        1,
        "waiters do not rerun a call that panicked"
    );
    assert_eq!(service.in_flight(), 0, "no key is stuck");

    upstream.set_mode(Mode::Answer);
    upstream.release(1);
    assert_eq!(service.clone().oneshot(9).await.unwrap(), "value 9 #2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_ttl_dedupes_concurrent_callers_but_stores_nothing() {
    let upstream = Upstream::gated();
    let service = cached(&upstream, Duration::ZERO);
    let tasks: Vec<_> = (0..50)
        .map(|_| tokio::spawn(service.clone().oneshot(4)))
        .collect();
    dedupes_reach(&service.stats(), 49).await;
    upstream.release(1);
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "value 4 #1");
    }
    assert_eq!(upstream.calls(), 1);

    upstream.release(1);
    assert_eq!(
        service.clone().oneshot(4).await.unwrap(),
        "value 4 #2",
        "nothing was stored"
    );
}
