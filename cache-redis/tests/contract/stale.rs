//! Stale-while-revalidate and stale-if-error over Redis: entries outlive their TTL by their stale
//! periods, in Redis and for every process sharing it. Real time, with short TTLs.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cache_core::{CacheLayer, Policy};
use cache_redis::RedisStore;
use tower::{service_fn, BoxError, Layer, Service, ServiceExt};

use crate::backend::TestRedis;

const TTL: Duration = Duration::from_millis(300);

/// An upstream answering `value {id} #{call}` after `delay_ms`, or failing while `down` holds.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

impl Upstream {
    fn service(
        &self,
    ) -> impl Service<u64, Response = String, Error = BoxError, Future: Send> + Clone {
        let (calls, down) = (Arc::clone(&self.calls), Arc::clone(&self.down));
        let delay_ms = Arc::clone(&self.delay_ms);
        service_fn(move |id: u64| {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let down = down.load(Ordering::SeqCst);
            let delay = Duration::from_millis(delay_ms.load(Ordering::SeqCst));
            async move {
                tokio::time::sleep(delay).await;
                if down {
                    Err::<String, BoxError>(format!("upstream down (call #{call})").into())
                } else {
                    Ok(format!("value {id} #{call}"))
                }
            }
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn store(server: &TestRedis) -> RedisStore<String> {
    server.connect(crate::options_under_test().timeout(Duration::from_secs(2)))
}

fn key(id: &u64) -> Option<String> {
    Some(format!("item:{id}"))
}

async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_hit_answers_at_once_and_one_refresh_updates_redis() {
    let server = TestRedis::start();
    let upstream = Upstream::default();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(30));
    let layer = CacheLayer::new(store(&server), policy);
    let stats = layer.stats();
    let service = layer.layer(upstream.service());

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    // The refresh takes a while; stale hits do not wait for it.
    upstream.delay_ms.store(500, Ordering::SeqCst);
    let stale = futures_util::future::join_all((0..50).map(|_| service.clone().oneshot(1))).await;
    assert!(stale
        .iter()
        .all(|answer| answer.as_deref().unwrap() == "value 1 #1"));
    assert_eq!(stats.snapshot().stale_served, 50);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(upstream.calls(), 2, "one refresh for the fifty stale hits");

    eventually("the refresh to be stored", async || {
        service.clone().oneshot(1).await.unwrap() == "value 1 #2"
    })
    .await;

    // Another process sharing Redis sees the refreshed entry as fresh.
    let other = CacheLayer::new(store(&server), Policy::new(key).ttl(TTL));
    let other_stats = other.stats();
    let other = other.layer(Upstream::default().service());
    assert_eq!(other.oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(other_stats.snapshot().hits, 1);

    // Each process read Redis's clock once, to judge fresh and stale in Redis's time.
    assert_eq!(time_calls(&server), 2);
}

/// How many `TIME` commands the server (every node of a cluster) ran.
fn time_calls(server: &TestRedis) -> u64 {
    server.calls_of("time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_answers_from_the_shared_stale_entry_while_the_upstream_fails() {
    let server = TestRedis::start();
    let writer = Upstream::default();
    let stale_if_error = Duration::from_millis(1_500);
    let policy = || Policy::new(key).ttl(TTL).stale_if_error(stale_if_error);
    let filler = CacheLayer::new(store(&server), policy()).layer(writer.service());
    assert_eq!(filler.oneshot(7).await.unwrap(), "value 7 #1");

    let upstream = Upstream::default();
    upstream.set_down(true);
    let layer = CacheLayer::new(store(&server), policy());
    let stats = layer.stats();
    let reader = layer.layer(upstream.service());
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert_eq!(reader.clone().oneshot(7).await.unwrap(), "value 7 #1");
    assert_eq!(
        upstream.calls(),
        1,
        "an expired entry calls the upstream first"
    );
    assert_eq!(stats.snapshot().stale_served, 1);

    // Redis drops the entry at the end of its grace period; then the failure reaches the caller.
    tokio::time::sleep(stale_if_error).await;
    assert!(reader.oneshot(7).await.is_err());
}
