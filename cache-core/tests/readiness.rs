//! A hit never waits for the inner service's readiness; a miss does.

mod support;

use std::time::Duration;

use cache_core::{CacheLayer, Policy};
use cache_memory::MemoryStore;
use futures_util::FutureExt;
use support::Upstream;
use tower::{Layer, ServiceExt};

#[tokio::test]
async fn a_hit_is_served_while_the_inner_service_is_not_ready() {
    let upstream = Upstream::new();
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}"))).ttl(Duration::from_secs(60));
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream.clone());
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");

    // A rate limiter below the cache is now saturated.
    upstream.set_ready(false);

    let hit = service.clone().oneshot(1).now_or_never();
    assert_eq!(
        hit.expect("a hit completes without waiting").unwrap(),
        "value 1 #1"
    );

    // A miss has to wait for readiness, and proceeds once it returns.
    let mut miss = Box::pin(service.clone().oneshot(2));
    assert!(
        (&mut miss).now_or_never().is_none(),
        "a miss waits for the inner service"
    );
    upstream.set_ready(true);
    assert_eq!(miss.await.unwrap(), "value 2 #2");
}

#[tokio::test]
async fn a_disabled_cache_forwards_readiness() {
    let upstream = Upstream::new();
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}")));
    let mut service = CacheLayer::new(MemoryStore::new(100), policy)
        .enabled(false)
        .layer(upstream.clone());
    upstream.set_ready(false);
    assert!(service.ready().now_or_never().is_none());
    upstream.set_ready(true);
    assert!(service.ready().now_or_never().is_some());
}
