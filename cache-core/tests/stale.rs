//! Serving through trouble: stale-while-revalidate, stale-if-error, soft and hard timeouts, and the event
//! hooks that report them. Time is tokio's paused clock.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::{
    upstream_error, AfterWrite, BoxError, CacheEvents, CacheLayer, EntryUpdate, Error, Policy,
    StalePeriods, StaleReason, WriteEffects,
};
use cache_memory::MemoryStore;
use futures_util::future::join_all;
use support::{eventually, Mode, Upstream, UpstreamDown};
use tokio::time::advance;
use tower::{service_fn, Layer, ServiceExt};

const TTL: Duration = Duration::from_secs(10);

fn key(id: &u64) -> Option<String> {
    Some(format!("item:{id}"))
}

/// Every event, in order, as `"kind key detail"`.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }
}

impl CacheEvents for Recorder {
    fn on_hit(&self, key: &str) {
        self.push(format!("hit {key}"));
    }

    fn on_miss(&self, key: &str) {
        self.push(format!("miss {key}"));
    }

    fn on_dedupe(&self, key: &str) {
        self.push(format!("dedupe {key}"));
    }

    fn on_stale_served(&self, key: &str, reason: StaleReason) {
        self.push(format!("stale {key} {}", reason.as_str()));
    }

    fn on_refresh_failed(&self, key: &str, error: &BoxError) {
        self.push(format!("refresh_failed {key} {error}"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_stale_hits_are_answered_at_once_and_refresh_once() {
    let upstream = Upstream::gated();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    advance(TTL + Duration::from_secs(1)).await;

    // The refresh is held at the upstream's gate: every caller is answered without waiting for it.
    let answers = join_all((0..1000).map(|_| service.clone().oneshot(1))).await;
    assert!(answers
        .iter()
        .all(|a| a.as_deref().unwrap() == "value 1 #1"));
    assert_eq!(stats.snapshot().stale_served, 1000);
    eventually("the refresh to call", || upstream.calls() == 2).await;
    assert_eq!(service.in_flight(), 1, "the refresh");

    upstream.release(1);
    eventually("the refresh to settle", || service.in_flight() == 0).await;
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(
        upstream.calls(),
        2,
        "one refresh; the refreshed entry is a fresh hit"
    );
    let snapshot = stats.snapshot();
    assert_eq!((snapshot.hits, snapshot.misses), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_stale_value_until_its_period_ends() {
    let upstream = Upstream::new();
    let events = Arc::new(Recorder::default());
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(30));
    let layer = CacheLayer::new(MemoryStore::new(100), policy).events(Arc::clone(&events));
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    upstream.set_mode(Mode::Fail);
    // Reads at 11 s, 25 s and 39 s after the fill.
    for (step, refreshes) in [(11, 1), (14, 2), (14, 3)] {
        advance(Duration::from_secs(step)).await;
        assert_eq!(
            service.clone().oneshot(1).await.unwrap(),
            "value 1 #1",
            "stale, refresh {refreshes}"
        );
        eventually("the refresh to fail", || {
            stats.snapshot().refresh_failures == refreshes
        })
        .await;
    }
    assert_eq!(
        events.take(),
        [
            "miss item:1",
            "stale item:1 revalidating",
            "refresh_failed item:1 upstream down (call #2)",
            "stale item:1 revalidating",
            "refresh_failed item:1 upstream down (call #3)",
            "stale item:1 revalidating",
            "refresh_failed item:1 upstream down (call #4)",
        ]
    );

    // TTL 10 s + 30 s of stale period: at 41 s the entry is gone and the failure reaches the caller.
    advance(Duration::from_secs(2)).await;
    let error = service.clone().oneshot(1).await.unwrap_err();
    assert_eq!(
        upstream_error::<UpstreamDown>(&*error),
        Some(&UpstreamDown(5))
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_entry_answers_within_its_grace_period_when_the_inner_service_fails() {
    let upstream = Upstream::new();
    let events = Arc::new(Recorder::default());
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy).events(Arc::clone(&events));
    let service = layer.layer(upstream.clone());

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    advance(TTL).await;
    upstream.set_mode(Mode::Fail);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(
        upstream.calls(),
        2,
        "an expired entry calls the inner service"
    );

    // Once the inner service answers again, its answer replaces the stale one.
    upstream.set_mode(Mode::Answer);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #3");
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #3");
    assert_eq!(
        events.take(),
        [
            "miss item:1",
            "miss item:1",
            "stale item:1 inner_failed",
            "miss item:1",
            "hit item:1",
        ]
    );

    // Past TTL and grace, the failure passes through.
    advance(TTL + Duration::from_secs(60)).await;
    upstream.set_mode(Mode::Fail);
    let error = service.clone().oneshot(1).await.unwrap_err();
    assert_eq!(
        upstream_error::<UpstreamDown>(&*error),
        Some(&UpstreamDown(4))
    );
}

#[tokio::test(start_paused = true)]
async fn waiters_of_a_failing_call_answer_stale_too() {
    let upstream = Upstream::gated();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    upstream.set_mode(Mode::Fail);
    let callers: Vec<_> = (0..10)
        .map(|_| tokio::spawn(service.clone().oneshot(1)))
        .collect();
    support::dedupes_reach(&stats, 9).await;
    upstream.release(1);
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "value 1 #1");
    }
    assert_eq!(upstream.calls(), 2);
    assert_eq!(stats.snapshot().stale_served, 10);
}

/// A service whose failures are responses: `"503"` while `down` holds.
fn status_service(
    down: Arc<Mutex<bool>>,
) -> impl tower::Service<u64, Response = String, Error = BoxError, Future: Send> + Clone {
    let calls = Arc::new(Mutex::new(0));
    service_fn(move |id: u64| {
        let down = *down.lock().unwrap();
        let call = {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        async move {
            Ok::<_, BoxError>(if down {
                "503".to_owned()
            } else {
                format!("value {id} #{call}")
            })
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_response_the_policy_calls_a_failure_is_never_cached_and_answers_stale_within_grace() {
    let down = Arc::new(Mutex::new(false));
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60))
        .failures(|answer: &String| answer.starts_with('5'));
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let stats = layer.stats();
    let service = layer.layer(status_service(Arc::clone(&down)));

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    advance(TTL).await;
    *down.lock().unwrap() = true;
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    // Without a stale entry the failure reaches the caller as it came, and is not stored.
    assert_eq!(service.clone().oneshot(2).await.unwrap(), "503");
    *down.lock().unwrap() = false;
    assert_eq!(service.clone().oneshot(2).await.unwrap(), "value 2 #4");
    assert_eq!(stats.snapshot().stale_served, 1);
}

#[tokio::test(start_paused = true)]
async fn a_soft_timeout_answers_stale_and_the_late_answer_still_lands_in_the_cache() {
    let upstream = Upstream::gated();
    let events = Arc::new(Recorder::default());
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy)
        .soft_timeout(Duration::from_millis(100))
        .events(Arc::clone(&events));
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;

    let started = tokio::time::Instant::now();
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(service.in_flight(), 1, "the call goes on");

    upstream.release(1);
    eventually("the late answer to be stored", || service.in_flight() == 0).await;
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(
        events.take(),
        [
            "miss item:1",
            "miss item:1",
            "stale item:1 soft_timeout",
            "hit item:1"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_soft_timeout_without_a_stale_value_waits_for_the_answer() {
    let upstream = Upstream::gated();
    let layer = CacheLayer::new(MemoryStore::new(100), Policy::new(key).ttl(TTL))
        .soft_timeout(Duration::from_millis(100));
    let service = layer.layer(upstream.clone());

    let caller = tokio::spawn(service.clone().oneshot(1));
    advance(Duration::from_secs(5)).await;
    assert!(!caller.is_finished());
    upstream.release(1);
    assert_eq!(caller.await.unwrap().unwrap(), "value 1 #1");
}

#[tokio::test(start_paused = true)]
async fn a_hard_timeout_fails_the_call_and_its_waiters() {
    let upstream = Upstream::gated();
    let layer = CacheLayer::new(MemoryStore::new(100), Policy::new(key).ttl(TTL))
        .hard_timeout(Duration::from_secs(2));
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    let callers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(service.clone().oneshot(1)))
        .collect();
    support::dedupes_reach(&stats, 2).await;
    let started = tokio::time::Instant::now();
    for caller in callers {
        let error = caller.await.unwrap().unwrap_err();
        assert!(
            matches!(
                upstream_error::<Error>(&*error),
                Some(Error::InnerTimeout { after }) if *after == Duration::from_secs(2)
            ),
            "{error}"
        );
    }
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(service.in_flight(), 0);

    // Nothing was cached: the next read calls again.
    upstream.release(1);
    assert_eq!(service.oneshot(1).await.unwrap(), "value 1 #2");
}

#[tokio::test(start_paused = true)]
async fn a_hard_timeout_answers_stale_within_grace() {
    let upstream = Upstream::gated();
    let events = Arc::new(Recorder::default());
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy)
        .hard_timeout(Duration::from_secs(2))
        .events(Arc::clone(&events));
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(
        events.take(),
        ["miss item:1", "miss item:1", "stale item:1 hard_timeout"]
    );
}

#[tokio::test(start_paused = true)]
async fn stale_periods_can_come_from_the_response() {
    let upstream = Upstream::new();
    // Item 1 may be served stale for a minute, others not at all.
    let grace = |answer: &String| {
        if answer.starts_with("value 1 ") {
            Duration::from_secs(60)
        } else {
            Duration::ZERO
        }
    };
    let policy = Policy::new(key).ttl(TTL).stale_if_error(grace);
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());

    service.clone().oneshot(1).await.unwrap();
    service.clone().oneshot(2).await.unwrap();
    advance(TTL).await;
    upstream.set_mode(Mode::Fail);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert!(service.clone().oneshot(2).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn without_stale_periods_nothing_is_served_after_the_ttl() {
    let upstream = Upstream::new();
    let layer = CacheLayer::new(MemoryStore::new(100), Policy::new(key).ttl(TTL))
        .soft_timeout(Duration::from_millis(1));
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    upstream.set_mode(Mode::Fail);
    assert!(service.oneshot(1).await.is_err());
    assert_eq!(stats.snapshot().stale_served, 0);
}

#[tokio::test(start_paused = true)]
async fn an_invalidated_entry_is_never_served_stale() {
    let upstream = Upstream::new();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(60))
        .tags(|key: &str, _: &String| vec![key.to_owned()]);
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let handle = layer.handle();
    let service = layer.layer(upstream.clone());

    service.clone().oneshot(1).await.unwrap();
    service.clone().oneshot(2).await.unwrap();
    advance(TTL).await;
    handle.invalidate_tags(["item:1"]).await.unwrap();
    handle.remove("item:2").await.unwrap();
    upstream.set_mode(Mode::Fail);
    assert!(service.clone().oneshot(1).await.is_err(), "invalidated tag");
    assert!(service.oneshot(2).await.is_err(), "removed key");
}

#[tokio::test(start_paused = true)]
async fn an_entry_a_write_updated_keeps_its_stale_periods() {
    // Even ids are reads; odd ids write the value of `id - 1`, which the upstream answers as a read would.
    let upstream = Upstream::new();
    let grace = StalePeriods {
        while_revalidate: Duration::ZERO,
        if_error: Duration::from_secs(60),
    };
    let policy = Policy::new(|id: &u64| id.is_multiple_of(2).then(|| format!("item:{id}")))
        .ttl(TTL)
        .writes(move |id: &u64| -> Option<AfterWrite<String>> {
            let read = id - 1;
            Some(Box::new(move |value: &String| {
                WriteEffects::none().update(EntryUpdate::Put {
                    key: format!("item:{read}"),
                    value: value.clone(),
                    ttl: TTL,
                    tags: Vec::new(),
                    stale: grace,
                })
            }))
        });
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());

    assert_eq!(service.clone().oneshot(3).await.unwrap(), "value 3 #1");
    advance(TTL).await;
    upstream.set_mode(Mode::Fail);
    assert_eq!(service.oneshot(2).await.unwrap(), "value 3 #1");
}

#[tokio::test(start_paused = true)]
async fn an_unrelated_invalidation_does_not_start_a_second_refresh() {
    let upstream = Upstream::gated();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let handle = layer.handle();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    service.clone().oneshot(1).await.unwrap();
    eventually("the refresh to call", || upstream.calls() == 2).await;
    // The store's clock moves on; the refresh held at the gate still stands for the key.
    handle.invalidate_tags(["another:tag"]).await.unwrap();
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(upstream.calls(), 2);
    upstream.release(1);
    eventually("the refresh to settle", || service.in_flight() == 0).await;
    assert_eq!(service.oneshot(1).await.unwrap(), "value 1 #2");
}

#[tokio::test(start_paused = true)]
async fn a_soft_timeout_too_long_to_represent_never_fires() {
    let upstream = Upstream::new();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60));
    let service = CacheLayer::new(MemoryStore::new(100), policy)
        .soft_timeout(Duration::MAX)
        .layer(upstream.clone());
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    advance(TTL).await;
    assert_eq!(service.oneshot(1).await.unwrap(), "value 1 #2");
}

#[tokio::test(start_paused = true)]
async fn a_stale_hit_does_not_wait_for_the_inner_services_readiness() {
    let upstream = Upstream::new();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(60));
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());

    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    upstream.set_ready(false);
    let answer = tokio::time::timeout(Duration::from_secs(1), service.clone().oneshot(1)).await;
    assert_eq!(
        answer.expect("answered without readiness").unwrap(),
        "value 1 #1"
    );
    assert_eq!(upstream.calls(), 1, "the refresh waits for readiness");

    upstream.set_ready(true);
    eventually("the refresh to settle", || {
        upstream.calls() == 2 && service.in_flight() == 0
    })
    .await;
    assert_eq!(service.oneshot(1).await.unwrap(), "value 1 #2");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_started_before_an_invalidation_is_not_stored() {
    let upstream = Upstream::gated();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(60))
        .tags(|key: &str, _: &String| vec![key.to_owned()]);
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let handle = layer.handle();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    eventually("the refresh to call", || upstream.calls() == 2).await;
    handle.invalidate_tags(["item:1"]).await.unwrap();
    upstream.release(1);
    eventually("the refresh to settle", || service.in_flight() == 0).await;

    // The refresh's answer predates the invalidation: the next read fetches again.
    upstream.release(1);
    assert_eq!(service.oneshot(1).await.unwrap(), "value 1 #3");
}

#[tokio::test(start_paused = true)]
async fn a_caller_dropped_while_its_fill_runs_under_a_soft_timeout_leaves_the_fill_to_finish() {
    let upstream = Upstream::gated();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy).soft_timeout(Duration::from_secs(5));
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    service.clone().oneshot(1).await.unwrap();
    advance(TTL).await;
    let caller = tokio::spawn(service.clone().oneshot(1));
    eventually("the fill to call", || upstream.calls() == 2).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());

    upstream.release(1);
    eventually("the fill to settle", || service.in_flight() == 0).await;
    assert_eq!(service.oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(upstream.calls(), 2);
    assert_eq!(stats.snapshot().refresh_failures, 0);
}
