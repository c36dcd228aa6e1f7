//! The Redis store on a private Redis Cluster (three masters with a replica each): the contract tests
//! of `contract/` that do not name keys of one server's layout, and then: entries spread over every
//! shard, tags invalidate across instances and shards, late fills never land, clear sweeps every
//! master; a master killed, or slots migrated, in the middle of a stream of reads, writes and
//! invalidations fails no request and serves nothing invalidated before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::{
    CacheKey, CacheLayer, Error, FillStamp, Invalidate, Lookup, Policy, PutEntry, PutOutcome, Store,
};
use cache_redis::{RedisOptions, RedisStore};
use futures_util::stream::{self, StreamExt};
use redis_test_server::RedisCluster;
use tower::{service_fn, BoxError, Layer, ServiceExt};

// The contract tests every store passes, here on a cluster.
const ON_CLUSTER: bool = true;

fn options_under_test() -> RedisOptions {
    RedisOptions::default()
}

#[path = "contract/backend.rs"]
mod backend;
#[path = "contract/layer.rs"]
mod layer;
#[path = "contract/stale.rs"]
mod stale;
#[path = "contract/store.rs"]
mod store;

fn options(prefix: &str) -> RedisOptions {
    // Generous: debug builds on a loaded 2-core machine, six nodes on it.
    RedisOptions::default()
        .key_prefix(prefix)
        .unwrap()
        .timeout(Duration::from_secs(2))
}

fn store(cluster: &RedisCluster, options: RedisOptions) -> RedisStore<String> {
    RedisStore::connect_cluster(&cluster.urls(), options).unwrap()
}

fn entry(value: &str, tags: &[&str], stamp: Option<FillStamp>) -> PutEntry<String> {
    PutEntry {
        value: value.to_owned(),
        ttl: Duration::from_secs(60),
        stale: cache_core::StalePeriods::NONE,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        stamp,
    }
}

async fn lookup(store: &RedisStore<String>, key: &str) -> Lookup<String> {
    store.get(&CacheKey::from(key)).await.unwrap()
}

async fn hit(store: &RedisStore<String>, key: &str) -> Option<String> {
    match lookup(store, key).await {
        Lookup::Hit { value, .. } => Some(value),
        _ => None,
    }
}

/// Fills `key` as the layer would: a miss, then a put stamped with the miss.
async fn fill(store: &RedisStore<String>, key: &str, value: &str, tags: &[&str]) -> PutOutcome {
    let Lookup::Miss { stamp } = lookup(store, key).await else {
        panic!("{key} should be a miss before its fill");
    };
    store
        .put(&CacheKey::from(key), entry(value, tags, Some(stamp)))
        .await
        .unwrap()
}

/// How many keys matching `pattern` each master holds.
fn keys_per_master(cluster: &RedisCluster, pattern: &str) -> HashMap<u16, usize> {
    cluster
        .masters()
        .into_iter()
        .map(|port| {
            let reply = node_command(cluster, port, &["KEYS", pattern]);
            (port, reply.lines().filter(|line| !line.is_empty()).count())
        })
        .collect()
}

fn node_command(cluster: &RedisCluster, port: u16, args: &[&str]) -> String {
    let url = cluster
        .urls()
        .into_iter()
        .find(|url| url.ends_with(&format!(":{port}")))
        .expect("a node on that port");
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query::<redis::Value>(&mut conn).unwrap() {
        redis::Value::Array(items) => items
            .into_iter()
            .map(|item| redis::from_redis_value::<String>(item).unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
        redis::Value::Nil => String::new(),
        other => redis::from_redis_value::<String>(other).unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_thousand_entries_spread_within_fifteen_percent_of_even() {
    let cluster = RedisCluster::start();
    let store = store(&cluster, options("spread:"));
    let puts = stream::iter(0..30_000)
        .map(|id| {
            let store = store.clone();
            async move {
                let key = CacheKey::from(format!("user:{id}"));
                store
                    .put(&key, entry(&format!("v{id}"), &["users"], None))
                    .await
            }
        })
        .buffer_unordered(256);
    let outcomes: Vec<_> = puts.collect().await;
    assert!(outcomes
        .iter()
        .all(|outcome| matches!(outcome, Ok(PutOutcome::Stored))));

    let counts = keys_per_master(&cluster, "{spread:#*}:e:*");
    eprintln!("entries per master: {counts:?}");
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 30_000, "{counts:?}");
    for (master, count) in &counts {
        let off = (*count as f64 - 10_000.0).abs() / 10_000.0;
        assert!(
            off <= 0.15,
            "master {master}: {count} of 30,000 ({counts:?})"
        );
    }
    // Every one of them reads back.
    for id in (0..30_000).step_by(997) {
        assert_eq!(
            hit(&store, &format!("user:{id}")).await,
            Some(format!("v{id}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_invalidate_across_instances_and_shards_and_late_fills_never_land() {
    let cluster = RedisCluster::start();
    let (a, b) = (
        store(&cluster, options("tags:")),
        store(&cluster, options("tags:")),
    );
    for id in 0..200 {
        let tag = if id % 2 == 0 { "guild:1" } else { "guild:2" };
        let outcome = fill(&a, &format!("member:{id}"), &format!("m{id}"), &[tag]).await;
        assert_eq!(outcome, PutOutcome::Stored);
    }
    for id in 0..200 {
        assert_eq!(
            hit(&b, &format!("member:{id}")).await,
            Some(format!("m{id}"))
        );
    }
    // A fill of B's starts, then A invalidates the tag it will carry: the fill must not land.
    let Lookup::Miss { stamp } = lookup(&b, "member:late").await else {
        panic!("a miss");
    };
    a.invalidate_tags(&["guild:1".to_owned()]).await.unwrap();
    for id in 0..200 {
        let expected = (id % 2 == 1).then(|| format!("m{id}"));
        assert_eq!(
            hit(&b, &format!("member:{id}")).await,
            expected,
            "member:{id}"
        );
    }
    let late = b
        .put(
            &CacheKey::from("member:late"),
            entry("late", &["guild:1"], Some(stamp)),
        )
        .await
        .unwrap();
    assert_eq!(late, PutOutcome::Superseded);
    assert_eq!(hit(&a, "member:late").await, None);

    // A write's update reaches the other instance, and a fill that started before it cannot land.
    let Lookup::Miss {
        stamp: before_write,
    } = lookup(&b, "member:new").await
    else {
        panic!("a miss");
    };
    let updated = a
        .update(
            &CacheKey::from("member:new"),
            entry("written", &["guild:2"], None),
        )
        .await
        .unwrap();
    assert_eq!(updated, PutOutcome::Stored);
    assert_eq!(hit(&b, "member:new").await, Some("written".to_owned()));
    let older = b
        .put(
            &CacheKey::from("member:new"),
            entry("older", &["guild:2"], Some(before_write)),
        )
        .await
        .unwrap();
    assert_eq!(older, PutOutcome::Superseded);
    assert_eq!(hit(&a, "member:new").await, Some("written".to_owned()));

    // A key removed in one instance is gone for the other.
    a.remove(&CacheKey::from("member:1")).await.unwrap();
    assert_eq!(hit(&b, "member:1").await, None);
    assert_eq!(hit(&b, "member:3").await, Some("m3".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_sweeps_every_master_and_keeps_to_its_prefix() {
    let cluster = RedisCluster::start();
    let (ours, theirs) = (
        store(&cluster, options("ours:")),
        store(&cluster, options("ours2:")),
    );
    for id in 0..300 {
        let key = CacheKey::from(format!("k{id}"));
        ours.put(&key, entry("ours", &[], None)).await.unwrap();
        theirs.put(&key, entry("theirs", &[], None)).await.unwrap();
    }
    let before = keys_per_master(&cluster, "{ours:#*}:e:*");
    assert!(before.values().all(|&count| count > 0), "{before:?}");
    ours.clear().await.unwrap();
    assert_eq!(hit(&ours, "k7").await, None, "gone for readers at once");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: usize = keys_per_master(&cluster, "{ours:#*}:e:*").values().sum();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} entries never unlinked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept: usize = keys_per_master(&cluster, "{ours2:#*}:e:*").values().sum();
    assert_eq!(kept, 300, "another prefix's entries stay");
    assert_eq!(hit(&theirs, "k7").await, Some("theirs".to_owned()));
    // Caching goes on after a clear.
    assert_eq!(fill(&ours, "k7", "again", &[]).await, PutOutcome::Stored);
    assert_eq!(hit(&ours, "k7").await, Some("again".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_entry_is_a_miss_and_a_group_count_mismatch_passes_through() {
    let cluster = RedisCluster::start();
    let store = store(&cluster, options("odd:"));
    store
        .put(&CacheKey::from("k"), entry("v", &[], None))
        .await
        .unwrap();
    let (port, name) = cluster
        .masters()
        .into_iter()
        .find_map(|port| {
            let name = node_command(&cluster, port, &["KEYS", "{odd:#*}:e:k"]);
            (!name.is_empty()).then_some((port, name))
        })
        .expect("the entry on some master");
    node_command(&cluster, port, &["SET", &name, "\u{1}garbage"]);
    assert!(
        matches!(lookup(&store, "k").await, Lookup::Undecodable { .. }),
        "undecodable: the layer counts it and refills"
    );

    let other =
        RedisStore::<String>::connect_cluster(&cluster.urls(), options("odd:").cluster_groups(16))
            .unwrap();
    let refused = other.get(&CacheKey::from("k")).await;
    match refused {
        Err(Error::Store { .. }) => {}
        other => panic!("expected a store error, got {other:?}"),
    }
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("CACHE_REDIS_CLUSTER_GROUPS"), "{message}");

    // A prefix with a `#` could share a group's hash tag with another prefix: refused up front.
    let error = RedisStore::<String>::connect_cluster(&cluster.urls(), options("odd#7"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("CACHE_KEY_PREFIX"), "{error}");
}

/// The source of truth of a stream test: each item's current version, and the newest version known
/// invalidated (an invalidation that returned `Ok` after the version was replaced).
#[derive(Default)]
struct Truth {
    versions: Vec<AtomicU64>,
    dead: Vec<AtomicU64>,
}

impl Truth {
    fn new(items: usize) -> Arc<Self> {
        Arc::new(Self {
            versions: (0..items).map(|_| AtomicU64::new(1)).collect(),
            dead: (0..items).map(|_| AtomicU64::new(0)).collect(),
        })
    }
}

#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    failed: AtomicUsize,
    stale: AtomicUsize,
    invalidations: AtomicUsize,
    invalidations_failed: AtomicUsize,
}

type ItemService = tower::util::BoxCloneService<u64, String, BoxError>;

fn cached_items(
    store: RedisStore<String>,
    truth: &Arc<Truth>,
    calls: &Arc<AtomicUsize>,
) -> ItemService {
    let (truth, calls) = (Arc::clone(truth), Arc::clone(calls));
    let upstream = service_fn(move |id: u64| {
        calls.fetch_add(1, Ordering::Relaxed);
        let version = truth.versions[id as usize].load(Ordering::SeqCst);
        async move { Ok::<_, BoxError>(format!("{id}:{version}")) }
    });
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}")))
        .ttl(Duration::from_secs(60))
        .tags(|key: &str, _: &String| vec![format!("tag:{key}")]);
    tower::util::BoxCloneService::new(CacheLayer::new(store, policy).layer(upstream))
}

/// Reads, writes and invalidations of `items` items from four readers and a writer, until `stop`.
async fn stream_until(
    service: ItemService,
    writer_store: RedisStore<String>,
    truth: Arc<Truth>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let items = truth.versions.len() as u64;
    let readers = (0..4u64).map(|reader| {
        let (service, truth, tally, stop) = (
            service.clone(),
            Arc::clone(&truth),
            Arc::clone(&tally),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut id = reader;
            while !stop.load(Ordering::Relaxed) {
                id = (id * 7 + 13) % items;
                let dead = truth.dead[id as usize].load(Ordering::SeqCst);
                tally.requests.fetch_add(1, Ordering::Relaxed);
                match service.clone().oneshot(id).await {
                    Ok(reply) => {
                        let version: u64 = reply.rsplit(':').next().unwrap().parse().unwrap();
                        if version <= dead {
                            tally.stale.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    });
    let readers: Vec<_> = readers.collect();
    let writer = tokio::spawn(async move {
        let mut id = 0;
        while !stop.load(Ordering::Relaxed) {
            id = (id + 1) % items;
            let slot = id as usize;
            let old = truth.versions[slot].fetch_add(1, Ordering::SeqCst);
            tally.invalidations.fetch_add(1, Ordering::Relaxed);
            match writer_store
                .invalidate_tags(&[format!("tag:item:{id}")])
                .await
            {
                Ok(()) => {
                    truth.dead[slot].fetch_max(old, Ordering::SeqCst);
                }
                Err(_) => {
                    tally.invalidations_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    for reader in readers {
        reader.await.unwrap();
    }
    writer.await.unwrap();
}

fn short_options(prefix: &str) -> RedisOptions {
    // A request waits at most this long for the cluster before going to the upstream.
    options(prefix).timeout(Duration::from_millis(250))
}

/// How a master is lost.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// Killed: its connections close at once.
    Kill,
    /// Frozen (SIGSTOP): its connections stay open and go silent, as with a hung host or a network
    /// black hole; resumed at the end, it rejoins as a replica.
    Pause,
}

/// A master lost in the middle of a stream of reads and invalidations; the cluster fails it over.
async fn lose_a_master_mid_stream(loss: Loss) {
    let mut cluster = RedisCluster::start();
    let truth = Truth::new(200);
    let (tally, stop, calls) = (
        Arc::new(Tally::default()),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let reader_store = store(&cluster, short_options("failover:"));
    let writer_store = store(&cluster, short_options("failover:"));
    let service = cached_items(reader_store.clone(), &truth, &calls);
    let streaming = tokio::spawn(stream_until(
        service.clone(),
        writer_store.clone(),
        Arc::clone(&truth),
        Arc::clone(&tally),
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = cluster.masters()[0];
    let before_loss = tally.requests.load(Ordering::Relaxed);
    match loss {
        Loss::Kill => cluster.node(victim).kill(),
        Loss::Pause => cluster.node_ref(victim).pause(),
    }
    let healthy = tokio::task::block_in_place(|| {
        cluster.wait_until_healthy(3, Duration::from_secs(30));
        cluster.masters()
    });
    assert!(!healthy.contains(&victim), "{healthy:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();

    let requests = tally.requests.load(Ordering::Relaxed);
    assert!(
        requests > before_loss + 100,
        "the stream went on: {requests}"
    );
    // The layer answers from the upstream whenever the store fails: this holds by design, and is
    // checked all the same.
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "failed requests");
    assert_eq!(tally.stale.load(Ordering::Relaxed), 0, "stale reads");
    assert!(tally.invalidations.load(Ordering::Relaxed) > 100);
    eprintln!(
        "{loss:?}: {requests} requests ({before_loss} before the loss), {} invalidations, {} refused (not acknowledged by a replica, or timed out)",
        tally.invalidations.load(Ordering::Relaxed),
        tally.invalidations_failed.load(Ordering::Relaxed),
    );

    // Invalidations land again, on the promoted replica's groups too: 20 in a row succeed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut in_a_row = 0;
    while in_a_row < 20 {
        match writer_store.invalidate_tags(&["after".to_owned()]).await {
            Ok(()) => in_a_row += 1,
            Err(error) => {
                in_a_row = 0;
                assert!(
                    Instant::now() < deadline,
                    "invalidations keep failing: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Caching resumes on every shard, the promoted replica's included: a second pass over every item
    // reaches the upstream for none of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for id in 0..200 {
            service.clone().oneshot(id).await.unwrap();
        }
        let before = calls.load(Ordering::Relaxed);
        for id in 0..200 {
            service.clone().oneshot(id).await.unwrap();
        }
        if calls.load(Ordering::Relaxed) == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "caching never resumed everywhere"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Loss::Pause = loss {
        cluster.node_ref(victim).resume();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_stream_fails_no_request_and_serves_nothing_invalidated() {
    lose_a_master_mid_stream(Loss::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_hung_mid_stream_fails_no_request_and_serves_nothing_invalidated() {
    lose_a_master_mid_stream(Loss::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_migrated_mid_stream_fail_no_request_and_serve_nothing_invalidated() {
    let cluster = RedisCluster::start();
    let truth = Truth::new(200);
    let (tally, stop, calls) = (
        Arc::new(Tally::default()),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let reader_store = store(&cluster, short_options("moving:"));
    let writer_store = store(&cluster, short_options("moving:"));
    let service = cached_items(reader_store.clone(), &truth, &calls);
    let streaming = tokio::spawn(stream_until(
        service.clone(),
        writer_store,
        Arc::clone(&truth),
        Arc::clone(&tally),
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The lowest 2,000 slots hold at least the first three of the 32 groups (each group's slot lies in
    // its 512-slot stretch), with their entries.
    let owner = cluster
        .topology()
        .into_iter()
        .find(|node| node.master && node.slots.iter().any(|range| range.starts_with("0-")))
        .expect("the master of slot 0");
    let target = cluster
        .masters()
        .into_iter()
        .find(|&port| port != owner.port)
        .unwrap();
    let before = tally.requests.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| cluster.reshard(owner.port, target, 2_000));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    streaming.await.unwrap();

    let moved = cluster
        .topology()
        .into_iter()
        .find(|node| node.port == target)
        .unwrap();
    assert!(
        moved.slots.iter().any(|range| range.starts_with("0-")),
        "slot 0 moved: {moved:?}"
    );
    let requests = tally.requests.load(Ordering::Relaxed);
    assert!(requests > before, "the stream went on during the move");
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "failed requests");
    assert_eq!(tally.stale.load(Ordering::Relaxed), 0, "stale reads");
    eprintln!(
        "reshard: {requests} requests ({before} before), {} invalidations, {} failed",
        tally.invalidations.load(Ordering::Relaxed),
        tally.invalidations_failed.load(Ordering::Relaxed),
    );
    let before = calls.load(Ordering::Relaxed);
    for id in 0..200 {
        service.clone().oneshot(id).await.unwrap();
    }
    let first_pass = calls.load(Ordering::Relaxed);
    for id in 0..200 {
        service.clone().oneshot(id).await.unwrap();
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        first_pass,
        "every item cached after the move ({} filled on the first pass)",
        first_pass - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_no_replica_acknowledged_is_an_error_not_a_silent_success() {
    let cluster = RedisCluster::start();
    let store = store(&cluster, short_options("acks:"));
    let unwaited = RedisStore::<String>::connect_cluster(
        &cluster.urls(),
        short_options("acks:").replica_acks(0),
    )
    .unwrap();
    fill(&store, "k", "v", &["t"]).await;
    // Both connected, and the scripts known to every master, before the replicas freeze.
    store.invalidate_tags(&["other".to_owned()]).await.unwrap();
    for id in 0..64 {
        let key = CacheKey::from(format!("warm:{id}"));
        store.update(&key, entry("w", &[], None)).await.unwrap();
    }
    unwaited
        .invalidate_tags(&["other".to_owned()])
        .await
        .unwrap();
    let replicas: Vec<u16> = cluster
        .topology()
        .into_iter()
        .filter(|node| !node.master)
        .map(|node| node.port)
        .collect();
    assert_eq!(replicas.len(), 3);
    // Frozen for less than the node timeout: no failover, but no acknowledgement either.
    for &port in &replicas {
        cluster.node_ref(port).pause();
    }
    let refused = store.invalidate_tags(&["t".to_owned()]).await;
    let update_refused = store
        .update(&CacheKey::from("u"), entry("written", &[], None))
        .await;
    let unwaited = unwaited.invalidate_tags(&["t".to_owned()]).await;
    for &port in &replicas {
        cluster.node_ref(port).resume();
    }
    let message = refused.expect_err("no replica acknowledged it").to_string();
    assert!(message.contains("acknowledged by 0 of the 1"), "{message}");
    let message = update_refused.expect_err("an update waits too").to_string();
    assert!(message.contains("acknowledged by 0 of the 1"), "{message}");
    unwaited.expect("nothing to wait for with replica_acks(0)");
    // Recorded on the master all the same: the entry is gone.
    assert_eq!(hit(&store, "k").await, None);
    store
        .invalidate_tags(&["t".to_owned()])
        .await
        .expect("acknowledged again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_shard_fails_open_alone_while_the_others_keep_caching() {
    let cluster = RedisCluster::start();
    let truth = Truth::new(300);
    let calls = Arc::new(AtomicUsize::new(0));
    let store = store(
        &cluster,
        options("alone:").timeout(Duration::from_millis(100)),
    );
    let service = cached_items(store.clone(), &truth, &calls);
    for id in 0..300 {
        service.clone().oneshot(id).await.unwrap();
    }
    // Which items live on the master about to hang.
    let victim = cluster
        .topology()
        .into_iter()
        .find(|node| node.master)
        .expect("a master");
    let serves = |slot: u16| {
        victim
            .slots
            .iter()
            .any(|range| match range.split_once('-') {
                Some((first, last)) => {
                    (first.parse().unwrap()..=last.parse().unwrap()).contains(&slot)
                }
                None => range.parse::<u16>().ok() == Some(slot),
            })
    };
    let on_victim: Vec<bool> = (0..300u64)
        .map(|id| {
            let name = store.entry_key(&CacheKey::from(format!("item:{id}")));
            let slot = node_command(&cluster, victim.port, &["CLUSTER", "KEYSLOT", &name]);
            serves(slot.parse().unwrap())
        })
        .collect();
    let hung = on_victim.iter().filter(|&&on| on).count();
    assert!(
        (50..250).contains(&hung),
        "{hung} of 300 items on one master"
    );

    // Frozen for less than the node timeout: no failover, the shard just does not answer.
    let before = calls.load(Ordering::Relaxed);
    cluster.node_ref(victim.port).pause();
    let started = Instant::now();
    let (mut others, mut answered) = (0usize, 0usize);
    while started.elapsed() < Duration::from_millis(600) {
        let reads: Vec<_> = (0..300u64)
            .filter(|&id| !on_victim[id as usize])
            .map(|id| tokio::spawn(service.clone().oneshot(id)))
            .collect();
        let stuck: Vec<_> = (0..300u64)
            .filter(|&id| on_victim[id as usize])
            .take(10)
            .map(|id| tokio::spawn(service.clone().oneshot(id)))
            .collect();
        for read in reads {
            read.await.unwrap().unwrap();
            others += 1;
        }
        for read in stuck {
            read.await.unwrap().unwrap();
            answered += 1;
        }
    }
    cluster.node_ref(victim.port).resume();
    let upstream = calls.load(Ordering::Relaxed) - before;
    eprintln!(
        "hung shard: {others} reads of the other shards, {answered} of the hung one, {upstream} upstream calls"
    );
    assert!(others >= 400 && answered >= 10, "{others}, {answered}");
    // Only the hung shard's reads reached the upstream.
    assert!(
        upstream <= answered,
        "{upstream} upstream calls for {answered} reads of the hung shard"
    );
}
