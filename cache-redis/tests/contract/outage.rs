//! Redis dies in the middle of a stream of requests: every request is still answered, by the inner
//! service, and caching resumes on its own once Redis is back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cache_core::{CacheLayer, Policy};
use cache_redis::RedisStore;
use redis_test_server::RedisServer;
use tower::{service_fn, BoxError, Layer, ServiceExt};

/// The layer over `store` and an upstream answering `value {id}`, with the upstream's call counter.
fn cached(
    store: RedisStore<String>,
) -> (
    impl tower::Service<u64, Response = String, Error = BoxError, Future: Send> + Clone,
    cache_core::Stats,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let upstream = service_fn(move |id: u64| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(format!("value {id}")) }
    });
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}"))).ttl(Duration::from_secs(60));
    let layer = CacheLayer::new(store, policy);
    let stats = layer.stats();
    (layer.layer(upstream), stats, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_survive_a_redis_crash_and_caching_resumes_after_restart() {
    let mut server = RedisServer::start();
    let options = crate::options_under_test().timeout(Duration::from_millis(500));
    let store = RedisStore::<String>::connect(&server.url(), options).unwrap();
    let (service, stats, calls) = cached(store.clone());
    let read = |id: u64| {
        let service = service.clone();
        async move {
            assert_eq!(
                service.oneshot(id).await.expect("never a failed request"),
                format!("value {id}")
            )
        }
    };

    // Healthy: ten keys filled, then served from Redis.
    for id in 0..10 {
        read(id).await;
        read(id).await;
    }
    assert_eq!(
        (calls.load(Ordering::SeqCst), stats.snapshot().hits),
        (10, 10)
    );

    server.kill();
    // With a near tier, copies made before the crash are served until the process learns of it (the
    // closed connection's notice, or any failed round trip; at most the near tier's silence bound):
    // by design, and racing with the reads below. A failed round trip makes it known first.
    assert!(store.ping().await.is_err(), "Redis is down");
    for round in 0..5 {
        for id in 0..10 {
            read(id).await;
        }
        assert!(
            calls.load(Ordering::SeqCst) >= 10 + 10 * (round + 1),
            "answered by the inner service"
        );
    }
    let errors_during_outage = stats.snapshot().store_errors;
    assert!(
        errors_during_outage >= 50,
        "failures are counted: {errors_during_outage}"
    );

    server.restart();
    // Within a few retry intervals the store is used again: a read is followed by a hit.
    let mut resumed = false;
    for _ in 0..100 {
        let hits = stats.snapshot().hits;
        read(42).await;
        read(42).await;
        if stats.snapshot().hits > hits {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "caching resumed after Redis came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_at_most_the_timeout_and_caching_resumes() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(100);
    let store =
        RedisStore::<String>::connect(&server.url(), crate::options_under_test().timeout(timeout))
            .unwrap();
    let (service, stats, _calls) = cached(store);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1");

    server.pause();
    // A near tier may answer from its copy for up to its silence bound (1 s): ask for 3 s at most, until
    // the hung Redis has cost a store error.
    let asking = std::time::Instant::now();
    let mut asked = 0;
    while asked < 20 || (stats.snapshot().store_errors == 0 && asking.elapsed().as_secs() < 3) {
        // Bounded by the store timeout: an unbounded wait would hang here until the test harness kills it.
        let answer =
            tokio::time::timeout(Duration::from_secs(30), service.clone().oneshot(1)).await;
        assert_eq!(answer.expect("no request hangs").unwrap(), "value 1");
        asked += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stats.snapshot().store_errors >= 1);
    server.resume();

    let mut resumed = false;
    for _ in 0..100 {
        let hits = stats.snapshot().hits;
        service.clone().oneshot(2).await.unwrap();
        service.clone().oneshot(2).await.unwrap();
        if stats.snapshot().hits > hits {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "caching resumed once Redis answered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_a_stream_of_slow_requests_fails_none_and_delays_none_past_the_timeout()
{
    let mut server = RedisServer::start();
    let store_timeout = Duration::from_millis(200);
    let inner_call = Duration::from_millis(100);
    let store = RedisStore::<String>::connect(
        &server.url(),
        crate::options_under_test().timeout(store_timeout),
    )
    .unwrap();
    let upstream = service_fn(move |id: u64| async move {
        tokio::time::sleep(inner_call).await;
        Ok::<_, std::convert::Infallible>(format!("value {id}"))
    });
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}")))
        .ttl(Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(store, policy);
    let stats = layer.stats();
    let service = layer.layer(upstream);

    // Four clients read 20 keys in turn; Redis dies a third of the way through and comes back at two
    // thirds. Each request is timed on its own.
    let reads_per_client = 60;
    let clients: Vec<_> = (0..4u64)
        .map(|client| {
            let service = service.clone();
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for n in 0..reads_per_client {
                    let id = (client * 7 + n) % 20;
                    let started = std::time::Instant::now();
                    let answer = service.clone().oneshot(id).await;
                    slowest = slowest.max(started.elapsed());
                    assert_eq!(
                        answer.expect("never a failed request"),
                        format!("value {id}")
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                slowest
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.restart();

    let mut slowest = Duration::ZERO;
    for client in clients {
        slowest = slowest.max(client.await.expect("client panicked"));
    }
    // A scheduling margin on top of the bound: this guards against waits that stack (a timeout per
    // store operation, or a retry loop), not against a slow machine.
    let bound = store_timeout + inner_call + Duration::from_millis(150);
    assert!(
        slowest <= bound,
        "slowest request {slowest:?}, bound {bound:?}"
    );
    assert!(stats.snapshot().store_errors > 0, "the outage was seen");

    // Caching resumes: a key read twice is a hit the second time.
    let mut resumed = false;
    for _ in 0..100 {
        let hits = stats.snapshot().hits;
        service.clone().oneshot(99).await.unwrap();
        service.clone().oneshot(99).await.unwrap();
        if stats.snapshot().hits > hits {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "caching resumed after Redis came back");
}
