//! `MetricsEvents` against a real recorder (`metrics-util`'s `DebuggingRecorder`): every series with its
//! labels, and its exact value after each step. Each test sets its recorder locally, when it builds the
//! events, so the tests run side by side; no test installs a global recorder.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cache_core::metrics::MetricsEvents;
use cache_core::{CacheEvents, CacheLayer, Policy};
use cache_memory::MemoryStore;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::stores::{Breakage, BrokenStore};
use support::{dedupes_reach, eventually, Mode, Upstream};
use tokio::time::advance;
use tower::{Layer, ServiceExt};

const TTL: Duration = Duration::from_secs(10);

const HIT: &str = "cache_requests_total{outcome=hit}";
const MISS: &str = "cache_requests_total{outcome=miss}";
const DEDUPE: &str = "cache_requests_total{outcome=dedupe}";
const STALE: &str = "cache_requests_total{outcome=stale}";
const REVALIDATING: &str = "cache_stale_served_total{reason=revalidating}";
const INNER_FAILED: &str = "cache_stale_served_total{reason=inner_failed}";
const SOFT_TIMEOUT: &str = "cache_stale_served_total{reason=soft_timeout}";
const HARD_TIMEOUT: &str = "cache_stale_served_total{reason=hard_timeout}";
const REFRESH_FAILURES: &str = "cache_refresh_failures_total{}";
const STORE_ERRORS: &str = "cache_store_errors_total{}";

/// Every series one `MetricsEvents` registers, without its `cache` label.
const SERIES: [&str; 10] = [
    HIT,
    MISS,
    DEDUPE,
    STALE,
    REVALIDATING,
    INNER_FAILED,
    SOFT_TIMEOUT,
    HARD_TIMEOUT,
    REFRESH_FAILURES,
    STORE_ERRORS,
];

fn key(id: &u64) -> Option<String> {
    Some(format!("item:{id}"))
}

/// Running totals of a recorder's counters, as `name{label=value,..}` (labels sorted) -> value.
///
/// The debugging recorder resets a counter when it is read, so the totals add up every reading.
struct Readings {
    snapshotter: Snapshotter,
    totals: BTreeMap<String, u64>,
}

impl Readings {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Self {
            snapshotter: recorder.snapshotter(),
            totals: BTreeMap::new(),
        }
    }

    fn totals(&mut self) -> BTreeMap<String, u64> {
        for (key, _unit, description, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            assert!(description.is_some(), "{} is described", key.name());
            let mut labels: Vec<_> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            let DebugValue::Counter(value) = value else {
                panic!("{} is not a counter", key.name());
            };
            let series = format!("{}{{{}}}", key.name(), labels.join(","));
            *self.totals.entry(series).or_default() += value;
        }
        self.totals.clone()
    }
}

/// Every series of the cache named `cache`, at zero but for `counts`.
fn expect(cache: &str, counts: &[(&str, u64)]) -> BTreeMap<String, u64> {
    SERIES
        .iter()
        .map(|series| {
            let value = counts
                .iter()
                .find(|(name, _)| name == series)
                .map_or(0, |(_, value)| *value);
            let (name, labels) = series.trim_end_matches('}').split_once('{').unwrap();
            let mut labels: Vec<_> = labels.split(',').filter(|l| !l.is_empty()).collect();
            let cache_label = format!("cache={cache}");
            labels.push(&cache_label);
            labels.sort();
            (format!("{name}{{{}}}", labels.join(",")), value)
        })
        .collect()
}

#[tokio::test]
async fn a_miss_a_hit_and_dedupes_are_counted_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let mut readings = Readings::new(&recorder);
    let events = metrics::with_local_recorder(&recorder, || MetricsEvents::new("profiles"));
    assert_eq!(
        readings.totals(),
        expect("profiles", &[]),
        "registered at zero"
    );

    let upstream = Upstream::gated();
    let layer = CacheLayer::new(MemoryStore::new(100), Policy::new(key).ttl(TTL)).events(events);
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(readings.totals(), expect("profiles", &[(MISS, 1)]));

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(
        readings.totals(),
        expect("profiles", &[(MISS, 1), (HIT, 1)])
    );

    // Three concurrent reads of another key: one leads the flight, two join it.
    let callers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(service.clone().oneshot(2)))
        .collect();
    dedupes_reach(&stats, 2).await;
    upstream.release(1);
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "value 2 #2");
    }
    assert_eq!(upstream.calls(), 2);
    assert_eq!(
        readings.totals(),
        expect("profiles", &[(MISS, 2), (HIT, 1), (DEDUPE, 2)])
    );
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.misses, snapshot.hits, snapshot.dedupes),
        (2, 1, 2),
        "the same counts as the layer's own counters"
    );
}

#[tokio::test(start_paused = true)]
async fn stale_answers_are_counted_by_reason_and_failed_refreshes_apart() {
    let recorder = DebuggingRecorder::new();
    let mut readings = Readings::new(&recorder);
    let events = metrics::with_local_recorder(&recorder, || MetricsEvents::new("guilds"));

    let upstream = Upstream::gated();
    let policy = Policy::new(key)
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(60));
    let layer = CacheLayer::new(MemoryStore::new(100), policy)
        .hard_timeout(Duration::from_secs(5))
        .events(events);
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    upstream.release(1);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    upstream.set_mode(Mode::Fail);

    // At 11 s, within stale-while-revalidate: answered stale at once; the refresh fails.
    advance(TTL + Duration::from_secs(1)).await;
    upstream.release(1);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    eventually("the refresh to fail", || {
        stats.snapshot().refresh_failures == 1
    })
    .await;
    assert_eq!(
        readings.totals(),
        expect(
            "guilds",
            &[
                (MISS, 1),
                (STALE, 1),
                (REVALIDATING, 1),
                (REFRESH_FAILURES, 1)
            ]
        )
    );

    // At 41 s, within stale-if-error only: the read calls the inner service (a miss), which fails.
    advance(Duration::from_secs(30)).await;
    upstream.release(1);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(
        readings.totals(),
        expect(
            "guilds",
            &[
                (MISS, 2),
                (STALE, 1),
                (REVALIDATING, 1),
                (INNER_FAILED, 1),
                (REFRESH_FAILURES, 1)
            ]
        )
    );

    // The inner call hangs (no permit): the hard timeout answers stale.
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    assert_eq!(
        readings.totals(),
        expect(
            "guilds",
            &[
                (MISS, 3),
                (STALE, 1),
                (REVALIDATING, 1),
                (INNER_FAILED, 1),
                (HARD_TIMEOUT, 1),
                (REFRESH_FAILURES, 1)
            ]
        )
    );
    let snapshot = stats.snapshot();
    assert_eq!((snapshot.misses, snapshot.stale_served), (3, 3));
}

#[tokio::test]
async fn store_errors_are_counted() {
    let recorder = DebuggingRecorder::new();
    let mut readings = Readings::new(&recorder);
    let events = metrics::with_local_recorder(&recorder, || MetricsEvents::new("members"));

    let upstream = Upstream::new();
    let layer = CacheLayer::new(
        BrokenStore::<String>::new(Breakage::Fails),
        Policy::new(key).ttl(TTL),
    )
    .events(events);
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    // The lookup failed (with no fill stamp, no put is attempted); the read is a miss.
    assert_eq!(
        readings.totals(),
        expect("members", &[(MISS, 1), (STORE_ERRORS, 1)])
    );
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #2");
    assert_eq!(
        readings.totals(),
        expect("members", &[(MISS, 2), (STORE_ERRORS, 2)])
    );
    assert_eq!(stats.snapshot().store_errors, 2);
}

/// Counts misses, as a user's own hook would.
#[derive(Default)]
struct Misses(AtomicU64);

impl CacheEvents for Misses {
    fn on_miss(&self, _key: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn a_pair_of_hooks_reports_to_both() {
    let recorder = DebuggingRecorder::new();
    let mut readings = Readings::new(&recorder);
    let metrics = metrics::with_local_recorder(&recorder, || MetricsEvents::new("roles"));
    let mine = Arc::new(Misses::default());

    let layer = CacheLayer::new(MemoryStore::new(100), Policy::new(key).ttl(TTL))
        .events((Arc::clone(&mine), metrics));
    let service = layer.layer(Upstream::new());
    service.clone().oneshot(1).await.unwrap();
    service.clone().oneshot(1).await.unwrap();

    assert_eq!(mine.0.load(Ordering::Relaxed), 1);
    assert_eq!(readings.totals(), expect("roles", &[(MISS, 1), (HIT, 1)]));
}

#[test]
fn counters_belong_to_the_recorder_in_force_when_the_events_are_built() {
    // No recorder yet (this test binary never installs a global one): these counters count nothing.
    let early = MetricsEvents::new("early");
    let recorder = DebuggingRecorder::new();
    let mut readings = Readings::new(&recorder);
    let late = metrics::with_local_recorder(&recorder, || MetricsEvents::new("late"));
    assert_eq!(late.cache_name(), "late");

    metrics::with_local_recorder(&recorder, || {
        early.on_hit("item:1");
        late.on_hit("item:1");
    });
    // Outside any local recorder, the handles still count into the recorder they were built with.
    late.on_hit("item:2");
    assert_eq!(readings.totals(), expect("late", &[(HIT, 2)]));
}
