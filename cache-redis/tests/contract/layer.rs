//! The layer over the Redis store: shared entries between "processes", single flight, environment
//! selection, corrupt values as misses.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cache_core::codec::MessagePack;
use cache_core::{CacheKey, CacheLayer, Invalidate, Policy, PutEntry, Store};
use cache_redis::RedisStore;
use tower::{service_fn, BoxError, Layer, Service, ServiceExt};

use crate::backend::TestRedis;

type Calls = Arc<AtomicUsize>;

fn upstream(
    calls: &Calls,
    delay: Duration,
) -> impl Service<u64, Response = String, Error = BoxError, Future: Send> + Clone {
    let calls = Arc::clone(calls);
    service_fn(move |id: u64| {
        let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            tokio::time::sleep(delay).await;
            Ok::<_, BoxError>(format!("value {id} #{call}"))
        }
    })
}

fn policy() -> Policy<fn(&u64) -> Option<String>> {
    Policy::new((|id: &u64| Some(format!("item:{id}"))) as fn(&u64) -> Option<String>)
        .ttl(Duration::from_secs(60))
}

fn options() -> cache_redis::RedisOptions {
    crate::options_under_test().timeout(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_entries_and_flights_stay_single() {
    let server = TestRedis::start();
    let calls = Calls::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (counted, held) = (Arc::clone(&calls), Arc::clone(&gate));
    // The leader's call waits at the gate until every other caller has joined its flight.
    let gated = service_fn(move |id: u64| {
        let call = counted.fetch_add(1, Ordering::SeqCst) + 1;
        let gate = Arc::clone(&held);
        async move {
            gate.acquire().await.expect("gate").forget();
            Ok::<_, BoxError>(format!("value {id} #{call}"))
        }
    });
    let first = CacheLayer::new(server.connect::<String>(options()), policy());
    let first_stats = first.stats();
    let first = first.layer(gated);
    let second = CacheLayer::new(server.connect::<String>(options()), policy());
    let second_stats = second.stats();
    let second = second.layer(upstream(&calls, Duration::ZERO));

    let burst: Vec<_> = (0..200)
        .map(|_| tokio::spawn(first.clone().oneshot(1)))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while first_stats.snapshot().dedupes < 199 {
        assert!(
            std::time::Instant::now() < deadline,
            "callers did not all join the flight"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    gate.add_permits(1);
    for reply in burst {
        assert_eq!(reply.await.unwrap().unwrap(), "value 1 #1");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one inner call for the burst"
    );

    assert_eq!(
        second.clone().oneshot(1).await.unwrap(),
        "value 1 #1",
        "the other process hits"
    );
    assert_eq!(second_stats.snapshot().hits, 1);
}

#[tokio::test]
async fn a_write_update_supersedes_a_fill_in_flight_in_another_process() {
    use cache_core::{Lookup, PutOutcome};

    let server = TestRedis::start();
    let reader = server.connect::<String>(options());
    let writer = server.connect::<String>(options());
    let key = CacheKey::from("item:1");
    let entry = |value: &str, stamp| PutEntry {
        value: value.to_owned(),
        ttl: Duration::from_secs(60),
        stale: cache_core::StalePeriods::NONE,
        tags: vec!["item:1".to_owned()],
        stamp,
    };
    // The reader misses and fetches the old value...
    let Lookup::Miss { stamp } = reader.get(&key).await.unwrap() else {
        panic!("empty")
    };
    // ...the writer stores the write's answer...
    assert_eq!(
        writer.update(&key, entry("new", None)).await.unwrap(),
        PutOutcome::Stored
    );
    // ...and the reader's late fill is refused.
    assert_eq!(
        reader.put(&key, entry("old", Some(stamp))).await.unwrap(),
        PutOutcome::Superseded
    );
    let Lookup::Hit { value, stamp: base } = reader.get(&key).await.unwrap() else {
        panic!("cached")
    };
    assert_eq!(value, "new");

    // Edits based on that entry: the first lands, a second based on the same read is refused.
    assert_eq!(
        writer
            .update(&key, entry("edit one", Some(base)))
            .await
            .unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        reader
            .update(&key, entry("edit two", Some(base)))
            .await
            .unwrap(),
        PutOutcome::Superseded
    );
    let Lookup::Hit { value, .. } = reader.get(&key).await.unwrap() else {
        panic!("cached")
    };
    assert_eq!(value, "edit one");

    // A later invalidation of its tag still removes an updated entry.
    writer
        .invalidate_tags(&["item:1".to_owned()])
        .await
        .unwrap();
    assert!(matches!(
        reader.get(&key).await.unwrap(),
        Lookup::Miss { .. }
    ));
}

#[tokio::test]
async fn an_entry_of_another_codec_is_a_counted_miss_through_the_layer() {
    let server = TestRedis::start();
    let calls = Calls::default();
    let writer = server.with_codec::<String, _>(options(), MessagePack);
    let entry = PutEntry {
        value: "from another codec".to_owned(),
        ttl: Duration::from_secs(60),
        stale: cache_core::StalePeriods::NONE,
        tags: vec![],
        stamp: None,
    };
    writer.put(&CacheKey::from("item:1"), entry).await.unwrap();

    let layer = CacheLayer::new(server.connect::<String>(options()), policy());
    let stats = layer.stats();
    let service = layer.layer(upstream(&calls, Duration::ZERO));
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(
        service.clone().oneshot(1).await.unwrap(),
        "value 1 #1",
        "replaced, then hit"
    );
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.store_errors, snapshot.misses, snapshot.hits),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrelated_invalidations_do_not_split_a_flight() {
    let server = TestRedis::start();
    let calls = Calls::default();
    let layer = CacheLayer::new(
        server.connect::<String>(options()),
        policy().tags(|key: &str, _: &String| vec![key.to_owned()]),
    );
    let handle = layer.handle();
    let stats = layer.stats();
    let service = layer.layer(upstream(&calls, Duration::from_millis(300)));

    // Other tags are invalidated every millisecond while 1,000 callers of one key arrive.
    let churn = tokio::spawn(async move {
        for i in 0u64.. {
            handle
                .invalidate_tags([format!("item:other-{i}")])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let mut callers = Vec::new();
    for _ in 0..1_000 {
        callers.push(tokio::spawn(service.clone().oneshot(1)));
        tokio::task::yield_now().await;
    }
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "value 1 #1");
    }
    churn.abort();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one inner call for 1,000 callers"
    );
    let stats = stats.snapshot();
    assert!(stats.invalidations > 10, "the churn ran: {stats:?}");
    assert_eq!(
        (stats.misses, stats.dedupes + stats.hits),
        (1, 999),
        "{stats:?}"
    );
}

/// Where the claim on filling item 1 lives.
fn claim_of_item_1(server: &TestRedis) -> String {
    server
        .connect::<String>(options())
        .claim_key(&CacheKey::from("item:1"))
}

type ItemLayer = CacheLayer<RedisStore<String>, Policy<fn(&u64) -> Option<String>>>;

/// One process's layer over the shared Redis, with shared single flight.
fn shared_flight_layer(server: &TestRedis, lease: Duration) -> ItemLayer {
    CacheLayer::new(server.connect::<String>(options()), policy()).shared_single_flight(lease)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_single_flight_makes_one_call_across_processes() {
    let server = TestRedis::start();
    let calls = Calls::default();
    let first = shared_flight_layer(&server, Duration::from_secs(5))
        .layer(upstream(&calls, Duration::from_millis(200)));
    let second = shared_flight_layer(&server, Duration::from_secs(5))
        .layer(upstream(&calls, Duration::from_millis(200)));
    let mut callers = Vec::new();
    for _ in 0..500 {
        callers.push(tokio::spawn(first.clone().oneshot(1)));
        callers.push(tokio::spawn(second.clone().oneshot(1)));
    }
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "value 1 #1");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one inner call for both processes"
    );
    assert_eq!(
        server.command(&["EXISTS", &claim_of_item_1(&server)]),
        "0",
        "the claim was given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_claim_whose_holder_hangs_is_taken_over_when_its_lease_lapses() {
    let server = TestRedis::start();
    let lease = Duration::from_millis(300);
    // The first process claims the fill and never finishes it, nor gives the claim back: to Redis, a
    // process killed mid-fill looks the same.
    let hung = service_fn(|_: u64| std::future::pending::<Result<String, BoxError>>());
    let first = shared_flight_layer(&server, lease).layer(hung);
    let stuck = tokio::spawn(first.oneshot(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let claim = claim_of_item_1(&server);
    while server.command(&["EXISTS", &claim]) != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the first process never claimed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let calls = Calls::default();
    let fill = Duration::from_millis(100);
    let second = shared_flight_layer(&server, lease).layer(upstream(&calls, fill));
    let started = std::time::Instant::now();
    let callers: Vec<_> = (0..500)
        .map(|_| tokio::spawn(second.clone().oneshot(1)))
        .collect();
    for caller in callers {
        let answer = tokio::time::timeout(Duration::from_secs(10), caller)
            .await
            .expect("no caller of the second process waits for ever");
        assert_eq!(answer.unwrap().unwrap(), "value 1 #1");
    }
    let took = started.elapsed();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "it took the fill over, once"
    );
    // The bound: the lease, then one fill (a second of slack for a loaded machine).
    assert!(
        took < lease + fill + Duration::from_secs(1),
        "took {took:?}"
    );
    stuck.abort();
}

#[tokio::test]
async fn with_redis_unreachable_shared_single_flight_still_answers() {
    let calls = Calls::default();
    // A lease far longer than the guard below: answering must not wait for it.
    let layer = CacheLayer::new(TestRedis::unreachable(options()), policy())
        .shared_single_flight(Duration::from_secs(60));
    let stats = layer.stats();
    let service = layer.layer(upstream(&calls, Duration::ZERO));
    let answers = tokio::time::timeout(Duration::from_secs(20), async {
        let first = service.clone().oneshot(1).await.unwrap();
        let second = service.oneshot(1).await.unwrap();
        (first, second)
    })
    .await
    .expect("answered without waiting for the lease");
    assert_eq!(answers, ("value 1 #1".to_owned(), "value 1 #2".to_owned()));
    assert!(stats.snapshot().store_errors > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_fill_gives_its_claim_back() {
    let server = TestRedis::start();
    // A lease far longer than the guard below: only the give-back can clear the claim in time.
    let hung = service_fn(|_: u64| std::future::pending::<Result<String, BoxError>>());
    let layer = shared_flight_layer(&server, Duration::from_secs(60)).layer(hung);
    let caller = tokio::spawn(layer.oneshot(1));
    let claim = claim_of_item_1(&server);
    let claimed = |server: &TestRedis| server.command(&["EXISTS", &claim]) == "1";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !claimed(&server) {
        assert!(std::time::Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    caller.abort();
    while claimed(&server) {
        assert!(
            std::time::Instant::now() < deadline,
            "the claim outlived its cancelled fill"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
