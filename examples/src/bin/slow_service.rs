//! Wraps a slow service in the cache and prints what the cache did.
//!
//! `cargo run -p examples --bin slow_service`
//!
//! The inner service stands for any slow upstream (a REST API, a database): it takes 150 ms per call
//! and counts its calls. The program reads through the cache sequentially, in a concurrent burst, after a
//! tag invalidation, after a write and after TTL expiry, and prints the calls saved at each step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::{
    AfterWrite, CacheConfig, CacheLayer, EntryUpdate, Policy, StalePeriods, WriteEffects,
};
use tower::{service_fn, BoxError, ServiceBuilder, ServiceExt};
use tower_cache::EnvStore;

/// Requests of the slow service.
#[derive(Debug, Clone)]
enum Request {
    /// Read a user's profile.
    Profile(u64),
    /// Rename a user; answers with the new profile.
    Rename(u64, String),
}

const LATENCY: Duration = Duration::from_millis(150);
const TTL: Duration = Duration::from_secs(1);

fn key(request: &Request) -> Option<String> {
    match request {
        Request::Profile(id) => Some(format!("profile:{id}")),
        Request::Rename(..) => None,
    }
}

fn tags(key: &str, _profile: &String) -> Vec<String> {
    vec![key.replace("profile:", "user:")]
}

fn writes(request: &Request) -> Option<AfterWrite<String>> {
    let Request::Rename(id, _) = request else {
        return None;
    };
    let id = *id;
    Some(Box::new(move |profile: &String| {
        WriteEffects::none().update(EntryUpdate::Put {
            key: format!("profile:{id}"),
            value: profile.clone(),
            ttl: TTL,
            tags: vec![format!("user:{id}")],
            stale: StalePeriods::NONE,
        })
    }))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream_calls = Arc::clone(&calls);
    let slow = service_fn(move |request: Request| {
        let calls = Arc::clone(&upstream_calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(LATENCY).await;
            Ok::<_, BoxError>(match request {
                Request::Profile(id) => format!("user {id}"),
                Request::Rename(id, name) => format!("user {id} ({name})"),
            })
        }
    });

    let config = CacheConfig::from_env()?;
    let layer = CacheLayer::new(
        EnvStore::from_env()?,
        Policy::new(key).tags(tags).ttl(TTL).writes(writes),
    )
    .config(&config);
    let stats = layer.stats();
    let handle = layer.handle();
    let service = ServiceBuilder::new().layer(layer).service(slow);

    let step = |name: &str, started: Instant, calls_before: usize| {
        let made = calls.load(Ordering::SeqCst) - calls_before;
        println!(
            "{name:<44} {:>6.1} ms  upstream calls: {made}",
            started.elapsed().as_secs_f64() * 1e3
        );
    };

    let (started, before) = (Instant::now(), calls.load(Ordering::SeqCst));
    service.clone().oneshot(Request::Profile(1)).await?;
    step("first read of user 1 (miss)", started, before);

    let (started, before) = (Instant::now(), calls.load(Ordering::SeqCst));
    for _ in 0..100 {
        service.clone().oneshot(Request::Profile(1)).await?;
    }
    step("100 sequential reads of user 1 (hits)", started, before);

    let (started, before) = (Instant::now(), calls.load(Ordering::SeqCst));
    let burst: Vec<_> = (0..500)
        .map(|_| tokio::spawn(service.clone().oneshot(Request::Profile(2))))
        .collect();
    for reply in burst {
        reply.await??;
    }
    step(
        "500 concurrent reads of user 2 (single flight)",
        started,
        before,
    );

    let (started, before) = (Instant::now(), calls.load(Ordering::SeqCst));
    handle.invalidate_tags(["user:1"]).await?;
    service.clone().oneshot(Request::Profile(1)).await?;
    step("read of user 1 after invalidating user:1", started, before);

    let (started, before) = (Instant::now(), calls.load(Ordering::SeqCst));
    service
        .clone()
        .oneshot(Request::Rename(2, "ada".into()))
        .await?;
    let renamed = service.clone().oneshot(Request::Profile(2)).await?;
    step(
        &format!("rename user 2, then read: {renamed:?}"),
        started,
        before,
    );

    tokio::time::sleep(TTL).await;
    let (started, before) = (Instant::now(), calls.load(Ordering::SeqCst));
    service.clone().oneshot(Request::Profile(1)).await?;
    step("read of user 1 after its TTL", started, before);

    let s = stats.snapshot();
    println!(
        "{{\"requests\":{},\"upstream_calls\":{},\"hits\":{},\"misses\":{},\"dedupes\":{},\"invalidations\":{},\"store_errors\":{}}}",
        s.hits + s.misses + s.dedupes + s.passthrough,
        calls.load(Ordering::SeqCst),
        s.hits,
        s.misses,
        s.dedupes,
        s.invalidations,
        s.store_errors
    );
    Ok(())
}
