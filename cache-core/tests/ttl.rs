//! TTLs, fixed and computed from the response, on tokio's paused clock.

mod support;

use std::time::Duration;

use cache_core::{CacheLayer, Policy};
use cache_memory::MemoryStore;
use support::Upstream;
use tokio::time::advance;
use tower::{Layer, ServiceExt};

#[tokio::test(start_paused = true)]
async fn an_entry_lives_for_its_ttl() {
    let upstream = Upstream::new();
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}"))).ttl(Duration::from_secs(60));
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    advance(Duration::from_secs(59)).await;
    assert_eq!(
        service.clone().oneshot(1).await.unwrap(),
        "value 1 #1",
        "still fresh at 59 s"
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        service.clone().oneshot(1).await.unwrap(),
        "value 1 #2",
        "expired at 60 s"
    );
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_ttl_can_come_from_the_response() {
    let upstream = Upstream::new();
    // Odd ids live 10 s, even ids 100 s: the response names the id.
    let ttl = |value: &String| {
        let id: u64 = value.split(' ').nth(1).unwrap().parse().unwrap();
        Duration::from_secs(if id % 2 == 1 { 10 } else { 100 })
    };
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}"))).ttl(ttl);
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());

    service.clone().oneshot(1).await.unwrap();
    service.clone().oneshot(2).await.unwrap();
    advance(Duration::from_secs(11)).await;
    assert_eq!(
        service.clone().oneshot(1).await.unwrap(),
        "value 1 #3",
        "the 10 s entry expired"
    );
    assert_eq!(
        service.clone().oneshot(2).await.unwrap(),
        "value 2 #2",
        "the 100 s entry lives"
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_from_the_response_keeps_it_out_of_the_cache() {
    let upstream = Upstream::new();
    // Stands for "HTTP 429": a response that must not be stored.
    let ttl = |value: &String| {
        if value.ends_with("#1") {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        }
    };
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}"))).ttl(ttl);
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(upstream.calls(), 2);
}
