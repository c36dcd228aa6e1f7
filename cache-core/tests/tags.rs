//! Tags and keys: invalidation removes every carrier and nothing else, and beats fills in flight.

mod support;

use std::time::Duration;

use cache_core::{Cache, CacheHandle, CacheLayer, Policy};
use cache_memory::MemoryStore;
use support::{eventually, Upstream};
use tower::{Layer, ServiceExt};

type Tags = fn(&str, &String) -> Vec<String>;
type Service = Cache<Upstream, MemoryStore<String>, Policy<fn(&u64) -> Option<String>, Tags>>;

fn key(id: &u64) -> Option<String> {
    Some(format!("item:{id}"))
}

/// Item n carries `item:n` and `parity:even|odd`.
fn tags(key: &str, _value: &String) -> Vec<String> {
    let id: u64 = key.trim_start_matches("item:").parse().unwrap();
    vec![
        key.to_owned(),
        format!(
            "parity:{}",
            if id.is_multiple_of(2) { "even" } else { "odd" }
        ),
    ]
}

fn cached(upstream: &Upstream) -> (Service, CacheHandle<MemoryStore<String>>) {
    let policy = Policy::new(key as fn(&u64) -> Option<String>)
        .tags(tags as Tags)
        .ttl(Duration::from_secs(600));
    let layer = CacheLayer::new(MemoryStore::new(1_000), policy);
    let handle = layer.handle();
    (layer.layer(upstream.clone()), handle)
}

/// Which of `ids` the inner service had to answer again.
async fn refetched(
    service: &Service,
    upstream: &Upstream,
    ids: impl IntoIterator<Item = u64>,
) -> Vec<u64> {
    let mut again = Vec::new();
    for id in ids {
        let before = upstream.calls();
        service.clone().oneshot(id).await.unwrap();
        if upstream.calls() > before {
            again.push(id);
        }
    }
    again
}

#[tokio::test]
async fn a_tag_invalidates_every_carrier_and_nothing_else() {
    let upstream = Upstream::new();
    let (service, handle) = cached(&upstream);
    assert_eq!(
        refetched(&service, &upstream, 1..=10).await,
        (1..=10).collect::<Vec<_>>()
    );

    handle.invalidate_tags(["parity:even"]).await.unwrap();
    assert_eq!(
        refetched(&service, &upstream, 1..=10).await,
        [2, 4, 6, 8, 10]
    );

    handle.invalidate_tags(["item:3", "item:5"]).await.unwrap();
    assert_eq!(refetched(&service, &upstream, 1..=10).await, [3, 5]);

    handle.invalidate_tags(["no-such-tag"]).await.unwrap();
    assert_eq!(
        refetched(&service, &upstream, 1..=10).await,
        Vec::<u64>::new()
    );
    assert_eq!(handle.stats().snapshot().invalidations, 4);
}

#[tokio::test]
async fn removing_a_key_and_clearing() {
    let upstream = Upstream::new();
    let (service, handle) = cached(&upstream);
    refetched(&service, &upstream, 1..=4).await;

    handle.remove("item:2").await.unwrap();
    assert_eq!(refetched(&service, &upstream, 1..=4).await, [2]);

    handle.clear().await.unwrap();
    assert_eq!(refetched(&service, &upstream, 1..=4).await, [1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_a_fill_is_not_undone_by_the_fill() {
    let upstream = Upstream::gated();
    let (service, handle) = cached(&upstream);

    let fill = tokio::spawn(service.clone().oneshot(4));
    eventually("the fill calls upstream", || upstream.calls() == 1).await;
    // The object changes upstream while the old version is on its way back.
    handle.invalidate_tags(["parity:even"]).await.unwrap();
    upstream.release(1);
    assert_eq!(
        fill.await.unwrap().unwrap(),
        "value 4 #1",
        "the caller still gets its answer"
    );

    upstream.release(1);
    assert_eq!(
        service.clone().oneshot(4).await.unwrap(),
        "value 4 #2",
        "the late fill was not served"
    );
    assert_eq!(
        service.clone().oneshot(4).await.unwrap(),
        "value 4 #2",
        "the fresh fill is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_key_during_its_fill_is_not_undone_by_the_fill() {
    let upstream = Upstream::gated();
    let (service, handle) = cached(&upstream);

    let fill = tokio::spawn(service.clone().oneshot(7));
    eventually("the fill calls upstream", || upstream.calls() == 1).await;
    handle.remove("item:7").await.unwrap();
    upstream.release(1);
    fill.await.unwrap().unwrap();

    upstream.release(1);
    assert_eq!(service.clone().oneshot(7).await.unwrap(), "value 7 #2");
}

#[tokio::test]
async fn a_fill_that_starts_after_an_invalidation_is_cached() {
    let upstream = Upstream::new();
    let (service, handle) = cached(&upstream);
    handle
        .invalidate_tags(["parity:odd", "item:1"])
        .await
        .unwrap();
    assert_eq!(refetched(&service, &upstream, [1, 1, 1]).await, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_after_an_invalidation_is_not_answered_by_a_flight_from_before_it() {
    let upstream = Upstream::gated();
    let (service, handle) = cached(&upstream);

    let early = tokio::spawn(service.clone().oneshot(4));
    eventually("the early fill calls upstream", || upstream.calls() == 1).await;
    handle.invalidate_tags(["item:4"]).await.unwrap();
    // Starts after the invalidation returned: it waits for the early fill, finds that the invalidation
    // concerns that value, and fetches again. It is never handed the early fill's value.
    let late = tokio::spawn(service.clone().oneshot(4));
    eventually("the late request joins the flight", || {
        service.stats().snapshot().dedupes == 1
    })
    .await;
    upstream.release(1);
    eventually("the late request calls upstream itself", || {
        upstream.calls() == 2
    })
    .await;
    upstream.release(1);
    assert_eq!(early.await.unwrap().unwrap(), "value 4 #1");
    assert_eq!(late.await.unwrap().unwrap(), "value 4 #2");
    assert_eq!(
        service.clone().oneshot(4).await.unwrap(),
        "value 4 #2",
        "the late fill is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrelated_invalidations_do_not_split_a_flight() {
    let upstream = Upstream::gated();
    let (service, handle) = cached(&upstream);

    let mut callers = vec![tokio::spawn(service.clone().oneshot(4))];
    eventually("the first fill calls upstream", || upstream.calls() == 1).await;
    for i in 0..20u64 {
        // Item 4 carries `item:4` and `parity:even`; these tags are other items'.
        handle
            .invalidate_tags([format!("item:{}", 101 + 2 * i), "parity:odd".to_owned()])
            .await
            .unwrap();
        callers.push(tokio::spawn(service.clone().oneshot(4)));
    }
    eventually("every later caller joins the flight", || {
        service.stats().snapshot().dedupes == 20
    })
    .await;
    upstream.release(1);
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "value 4 #1");
    }
    assert_eq!(upstream.calls(), 1, "one inner call for all 21 callers");
    let stats = service.stats().snapshot();
    assert_eq!(
        (stats.dedupes, stats.hits),
        (20, 0),
        "the flight's value answered them: none looked the entry up again"
    );
    assert_eq!(
        service.clone().oneshot(4).await.unwrap(),
        "value 4 #1",
        "and its value is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_lookup_failed_does_not_join_a_flight_from_before_an_invalidation() {
    use std::sync::atomic::Ordering;
    use support::stores::Flaky;

    let upstream = Upstream::gated();
    let store = Flaky::new(MemoryStore::<String>::new(100));
    let policy = Policy::new(key as fn(&u64) -> Option<String>)
        .tags(tags as Tags)
        .ttl(Duration::from_secs(600));
    let layer = CacheLayer::new(store.clone(), policy);
    let handle = layer.handle();
    let service = layer.layer(upstream.clone());

    let early = tokio::spawn(service.clone().oneshot(4));
    eventually("the early fill calls upstream", || upstream.calls() == 1).await;
    handle.invalidate_tags(["item:4"]).await.unwrap();
    // The store now fails lookups: this caller has no stamp to compare with the flight's.
    store.fail_gets.store(true, Ordering::SeqCst);
    let late = tokio::spawn(service.clone().oneshot(4));
    eventually("the late request calls upstream itself", || {
        upstream.calls() == 2
    })
    .await;
    upstream.release(2);
    assert_eq!(early.await.unwrap().unwrap(), "value 4 #1");
    assert_eq!(late.await.unwrap().unwrap(), "value 4 #2");
}
