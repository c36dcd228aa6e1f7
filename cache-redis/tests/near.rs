//! The near tier against a private redis-server: hits without a round trip, and copies that stop being
//! served when any process invalidates them, when this process cannot hear about invalidations, and
//! after a reconnect that missed invalidations (records trimmed past what it knew included).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::{CacheKey, Invalidate, Lookup, PutEntry, PutOutcome, Store};
use cache_redis::{RedisOptions, RedisStore};
use redis_test_server::{RedisServer, Relay};

const TTL: Duration = Duration::from_secs(300);

fn options(silence: Duration) -> RedisOptions {
    RedisOptions::default()
        .key_prefix("near:")
        .unwrap()
        .timeout(Duration::from_millis(300))
        .near_capacity(10_000)
        .near_max_silence(silence)
}

fn store(url: &str, silence: Duration) -> RedisStore<u64> {
    RedisStore::connect(url, options(silence)).unwrap()
}

fn entry(value: u64, tags: &[&str]) -> PutEntry<u64> {
    PutEntry {
        value,
        ttl: TTL,
        stale: cache_core::StalePeriods::NONE,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        stamp: None,
    }
}

async fn put(store: &RedisStore<u64>, key: &str, value: u64, tags: &[&str]) {
    let outcome = store
        .put(&CacheKey::from(key), entry(value, tags))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Stored);
}

/// The value a lookup finds, `None` for a miss; store errors are `Err`.
async fn read(store: &RedisStore<u64>, key: &str) -> Result<Option<u64>, cache_core::Error> {
    match store.get(&CacheKey::from(key)).await? {
        Lookup::Hit { value, .. } => Ok(Some(value)),
        Lookup::Miss { .. } => Ok(None),
        other => panic!("unexpected lookup {other:?}"),
    }
}

/// `cmdstat_<name>:calls=N` of `INFO commandstats`.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let stats = server.command(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// Reads until `done` holds, for at most 10 s; true when it did.
async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_hits_send_nothing_to_redis() {
    let server = RedisServer::start();
    let writer = store(&server.url(), Duration::from_secs(60));
    let reader = store(&server.url(), Duration::from_secs(60));
    put(&writer, "roles", 7, &["guild:1"]).await;
    assert_eq!(read(&reader, "roles").await.unwrap(), Some(7), "from Redis");
    let gets = calls(&server, "get");
    for _ in 0..1_000 {
        assert_eq!(read(&reader, "roles").await.unwrap(), Some(7));
    }
    assert_eq!(calls(&server, "get"), gets, "1,000 near hits, no GET");
    assert_eq!(reader.near_entry_count(), 1);
    // The writer's put left a copy too; its first read proves its view with a round trip, the rest are
    // near hits.
    assert_eq!(writer.near_entry_count(), 1);
    assert_eq!(read(&writer, "roles").await.unwrap(), Some(7));
    let gets = calls(&server, "get");
    for _ in 0..100 {
        assert_eq!(read(&writer, "roles").await.unwrap(), Some(7));
    }
    assert_eq!(calls(&server, "get"), gets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_elsewhere_ends_the_copy_by_its_notice_alone() {
    let server = RedisServer::start();
    // A silence bound of a minute: only the tracking notice can end the copy within the test.
    let a = store(&server.url(), Duration::from_secs(60));
    let b = store(&server.url(), Duration::from_secs(60));
    for (invalidate, key) in [("tag", "k1"), ("remove", "k2"), ("clear", "k3")] {
        put(&a, key, 1, &["guild:1"]).await;
        assert_eq!(read(&b, key).await.unwrap(), Some(1));
        assert_eq!(read(&b, key).await.unwrap(), Some(1), "a near hit");
        match invalidate {
            "tag" => a.invalidate_tags(&["guild:1".to_owned()]).await.unwrap(),
            "remove" => a.remove(&CacheKey::from(key)).await.unwrap(),
            _ => a.clear().await.unwrap(),
        }
        let gone = eventually(async || read(&b, key).await.unwrap().is_none()).await;
        assert!(gone, "{invalidate}: B still serves its copy 10 s later");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_that_invalidates_stops_serving_its_copy_at_once() {
    let server = RedisServer::start();
    let a = store(&server.url(), Duration::from_secs(60));
    put(&a, "k", 1, &["guild:1"]).await;
    assert_eq!(read(&a, "k").await.unwrap(), Some(1));
    a.invalidate_tags(&["guild:1".to_owned()]).await.unwrap();
    assert_eq!(read(&a, "k").await.unwrap(), None, "after invalidate_tags");

    put(&a, "k", 2, &["guild:1"]).await;
    a.remove(&CacheKey::from("k")).await.unwrap();
    assert_eq!(read(&a, "k").await.unwrap(), None, "after remove");

    put(&a, "k", 3, &["guild:1"]).await;
    a.clear().await.unwrap();
    assert_eq!(read(&a, "k").await.unwrap(), None, "after clear");

    // A write's update replaces the copy, here and in another process.
    let b = store(&server.url(), Duration::from_secs(60));
    put(&a, "k", 4, &["guild:1"]).await;
    assert_eq!(read(&b, "k").await.unwrap(), Some(4));
    let updated = a.update(&CacheKey::from("k"), entry(5, &["guild:1"]));
    assert_eq!(updated.await.unwrap(), PutOutcome::Stored);
    assert_eq!(
        read(&a, "k").await.unwrap(),
        Some(5),
        "the updating process"
    );
    let seen = eventually(async || read(&b, "k").await.unwrap() == Some(5)).await;
    assert!(seen, "B never saw the update");
}

/// Versions written by A, each with the instant its update returned; B's readers check that what they
/// read is never older than a version that returned `window` before their read started.
struct Versions {
    origin: Instant,
    /// Nanoseconds after `origin` at which version i's update returned (0: not yet).
    returned_at: Vec<AtomicU64>,
    latest: AtomicUsize,
}

impl Versions {
    fn new(count: usize) -> Self {
        Self {
            origin: Instant::now(),
            returned_at: (0..=count).map(|_| AtomicU64::new(0)).collect(),
            latest: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn returned(&self, version: usize) {
        self.returned_at[version].store(self.now(), Ordering::Release);
        self.latest.store(version, Ordering::Release);
    }

    /// The newest version whose update had returned `window` before `started`.
    fn due_by(&self, started: u64, window: Duration) -> usize {
        let window = window.as_nanos() as u64;
        let mut version = self.latest.load(Ordering::Acquire);
        while version > 0 {
            let at = self.returned_at[version].load(Ordering::Acquire);
            if at != 0 && at + window <= started {
                return version;
            }
            version -= 1;
        }
        0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_no_read_serves_a_version_older_than_the_window() {
    const UPDATES: usize = 1_000;
    let silence = Duration::from_millis(300);
    let server = RedisServer::start();
    let a = store(&server.url(), silence);
    let b = store(&server.url(), silence);
    put(&a, "member", 0, &["guild:1"]).await;
    let versions = Arc::new(Versions::new(UPDATES));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (b, versions, done) = (b.clone(), Arc::clone(&versions), Arc::clone(&done));
            tokio::spawn(async move {
                // Reads staler than the silence bound, reads staler than 0, reads.
                let mut counts = [0u64; 3];
                while !done.load(Ordering::Acquire) {
                    let started = versions.now();
                    let Ok(Some(value)) = read(&b, "member").await else {
                        continue;
                    };
                    let read_version = value as usize;
                    counts[2] += 1;
                    if read_version < versions.due_by(started, silence) {
                        counts[0] += 1;
                    }
                    if read_version < versions.due_by(started, Duration::ZERO) {
                        counts[1] += 1;
                    }
                    tokio::task::yield_now().await;
                }
                counts
            })
        })
        .collect();
    for version in 1..=UPDATES {
        let key = CacheKey::from("member");
        let updated = a.update(&key, entry(version as u64, &["guild:1"]));
        assert_eq!(updated.await.unwrap(), PutOutcome::Stored);
        versions.returned(version);
        // Unrelated invalidations between updates: churn the view as well.
        a.invalidate_tags(&[format!("other:{version}")])
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    done.store(true, Ordering::Release);
    let mut totals = [0u64; 3];
    for reader in readers {
        for (total, count) in totals.iter_mut().zip(reader.await.unwrap()) {
            *total += count;
        }
    }
    println!(
        "{} reads; {} older than a version returned before they started (overlapping its notice)",
        totals[2], totals[1]
    );
    assert!(totals[2] > 1_000, "readers barely ran: {totals:?}");
    assert_eq!(totals[0], 0, "reads staler than the silence bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_process_resyncs_before_serving_copies_again() {
    const KEYS: usize = 100;
    let silence = Duration::from_millis(200);
    let server = RedisServer::start();
    let relay = Relay::to(server.port());
    let a = store(&server.url(), silence);
    let b = store(&relay.url(), silence);
    for i in 0..KEYS {
        put(&a, &format!("k{i}"), i as u64, &[&format!("t{i}")]).await;
        assert_eq!(read(&b, &format!("k{i}")).await.unwrap(), Some(i as u64));
    }
    assert_eq!(b.near_entry_count(), KEYS);

    relay.pause();
    let paused_at = Instant::now();
    // 1,000 invalidations B cannot hear of: every key's tag, and 900 others.
    for i in 0..1_000 {
        a.invalidate_tags(&[format!("t{i}")]).await.unwrap();
    }
    let invalidated_at = Instant::now();
    // Reads during the partition: copies are served at most `silence` after the last proof, which came
    // before the pause; after that, reads go to Redis and fail (the store's timeout).
    let mut stale_past_bound = 0;
    let mut answers = BTreeMap::new();
    while paused_at.elapsed() < silence * 3 {
        let started = Instant::now();
        let outcome = read(&b, "k7").await;
        let label = match outcome {
            Ok(Some(_)) if started.duration_since(paused_at) >= silence => {
                stale_past_bound += 1;
                "stale hit past the bound"
            }
            Ok(Some(_)) => "hit within the bound",
            Ok(None) => "miss",
            Err(_) => "store error",
        };
        *answers.entry(label).or_insert(0) += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "during the partition: {answers:?}; invalidations took {:?}",
        invalidated_at - paused_at
    );
    assert_eq!(stale_past_bound, 0, "{answers:?}");

    relay.resume();
    // Whatever the reconnect costs, no key is ever served its old value again.
    let recovered = eventually(async || read(&b, "k0").await.is_ok()).await;
    assert!(recovered, "B never reached Redis again");
    for i in 0..KEYS {
        assert_eq!(read(&b, &format!("k{i}")).await.unwrap(), None, "k{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_trimmed_past_what_a_partitioned_process_knew_drop_its_copies() {
    let silence = Duration::from_millis(200);
    let server = RedisServer::start();
    let relay = Relay::to(server.port());
    let capped = |url: &str| {
        RedisStore::<u64>::connect(url, options(silence).max_invalidation_records(50)).unwrap()
    };
    let a = capped(&server.url());
    let b = capped(&relay.url());
    for i in 0..10 {
        put(&a, &format!("k{i}"), i, &[&format!("kept{i}")]).await;
        assert_eq!(read(&b, &format!("k{i}")).await.unwrap(), Some(i));
    }
    relay.pause();
    // 200 invalidations of other tags: the 50 records left start far past what B knows.
    for i in 0..200 {
        a.invalidate_tags(&[format!("other{i}")]).await.unwrap();
    }
    // Past the silence bound, B asks Redis, times out, and gives its connection up.
    tokio::time::sleep(silence).await;
    assert!(read(&b, "k0").await.is_err(), "partitioned");
    relay.resume();
    let recovered = eventually(async || read(&b, "k0").await.is_ok()).await;
    assert!(recovered, "B never reached Redis again");
    // B cannot know whether the forgotten records named its keys' tags: its copies are gone, as the
    // Redis entries are for every process (stamped below the floor).
    for i in 0..10 {
        assert_eq!(read(&b, &format!("k{i}")).await.unwrap(), None, "k{i}");
        assert_eq!(read(&a, &format!("k{i}")).await.unwrap(), None, "k{i} in A");
    }
    // And caching goes on.
    put(&a, "k0", 100, &["kept0"]).await;
    assert_eq!(read(&b, "k0").await.unwrap(), Some(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_made_before_redis_lost_its_history_are_dropped() {
    let mut server = RedisServer::start();
    let a = store(&server.url(), Duration::from_secs(60));
    let b = store(&server.url(), Duration::from_secs(60));
    put(&a, "k", 1, &["guild:1"]).await;
    // An invalidation B has read: its view has seen the clock.
    a.invalidate_tags(&["other".to_owned()]).await.unwrap();
    assert_eq!(read(&b, "k").await.unwrap(), Some(1));
    assert_eq!(read(&b, "k").await.unwrap(), Some(1), "a near hit");
    // Redis restarts empty: whatever was invalidated just before, nobody can tell any more.
    server.restart();
    let back = eventually(async || read(&b, "k").await.is_ok()).await;
    assert!(back, "B never reached Redis again");
    assert_eq!(
        read(&b, "k").await.unwrap(),
        None,
        "the copy outlived Redis's history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_live_no_longer_than_the_redis_entry() {
    let server = RedisServer::start();
    let a = store(&server.url(), Duration::from_secs(60));
    let b = store(&server.url(), Duration::from_secs(60));
    let short = PutEntry {
        ttl: Duration::from_millis(300),
        ..entry(1, &[])
    };
    a.put(&CacheKey::from("short"), short).await.unwrap();
    assert_eq!(
        read(&b, "short").await.unwrap(),
        Some(1),
        "copied with its PTTL"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(read(&a, "short").await.unwrap(), None, "the writer's copy");
    assert_eq!(read(&b, "short").await.unwrap(), None, "the reader's copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_tracking_there_is_no_near_tier() {
    let server = RedisServer::start();
    let options = options(Duration::from_secs(60)).client_tracking(false);
    let store = RedisStore::<u64>::connect(&server.url(), options).unwrap();
    put(&store, "k", 1, &[]).await;
    assert_eq!(read(&store, "k").await.unwrap(), Some(1));
    assert_eq!(store.near_entry_count(), 0);
}
