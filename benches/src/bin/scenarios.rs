//! Scenario runner: each scenario beside its baseline, measured in the same run, as JSON lines.
//!
//! ```text
//! cargo run --release -p benches --bin scenarios -- --backend memory
//! cargo run --release -p benches --bin scenarios -- --backend redis [--redis-url redis://127.0.0.1:6379]
//! cargo run --release -p benches --bin scenarios -- --backend cluster
//! ```
//!
//! Without `--redis-url` the runner starts a private `redis-server` on a free port; `cluster` starts a
//! private Redis Cluster (three masters with a replica each), and a standalone server to compare with. Every throughput line
//! is `{"scenario","backend","ops_per_s","baseline_ops_per_s","ratio"}`; the stampede line is
//! `{"scenario":"stampede","backend","inner_calls","ms"}`; the invalidation line adds `"ms"` per
//! invalidation; the memory backend's `hit_ratio_zipf` line gives `hit_ratio` and `baseline_hit_ratio`.
//! Each side runs five rounds, interleaved, and keeps its best round: the machine is shared and noisy,
//! and the best round is the least disturbed one.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::{CacheKey, CacheLayer, Invalidate, Policy, PutEntry, Store};
use cache_memory::MemoryStore;
use cache_redis::{RedisOptions, RedisStore};
use mini_moka::sync::Cache as MiniMoka;
use redis::aio::MultiplexedConnection;
use redis_test_server::RedisServer;
use tower::{service_fn, BoxError, Layer, Service, ServiceExt};

#[path = "scenarios/cluster.rs"]
mod cluster;

const ROUNDS: usize = 5;
const TASKS: usize = 64;
const VALUE_LEN: usize = 190;
const KEYS: u64 = 1_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Redis,
    Cluster,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Cluster => "cluster",
        }
    }
}

fn value() -> String {
    "v".repeat(VALUE_LEN)
}

fn key_of(id: u64) -> String {
    format!("item:{id}")
}

fn print_ratio(scenario: &str, backend: Backend, ops: f64, baseline: f64) {
    println!(
        "{{\"scenario\":\"{scenario}\",\"backend\":\"{}\",\"ops_per_s\":{ops:.0},\"baseline_ops_per_s\":{baseline:.0},\"ratio\":{:.3}}}",
        backend.name(),
        ops / baseline
    );
}

/// One operation of a scenario, run again and again by one task that owns what it needs (a service
/// clone, a connection), as a long-lived task of an application would.
trait Op: Send + 'static {
    fn run(&mut self, id: u64) -> impl Future<Output = ()> + Send;
}

/// Any closure returning a future is an operation too.
impl<F, Fut> Op for F
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn run(&mut self, id: u64) -> impl Future<Output = ()> + Send {
        self(id)
    }
}

/// A read through the layer: `ready` and `call` on the task's own clone of the service.
struct LayerGet<S>(S);

impl<S> Op for LayerGet<S>
where
    S: Service<u64, Response = String, Error = BoxError> + Send + 'static,
    S::Future: Send,
{
    async fn run(&mut self, id: u64) {
        let service = self.0.ready().await.expect("ready");
        std::hint::black_box(service.call(id).await.expect("hit"));
    }
}

/// A raw mini-moka `get`, handed the key string, as the layer is handed a request it turns into one.
struct MokaGet {
    cache: MiniMoka<String, String>,
    keys: Arc<Vec<String>>,
}

impl Op for MokaGet {
    async fn run(&mut self, id: u64) {
        std::hint::black_box(self.cache.get(&self.keys[id as usize]).expect("present"));
    }
}

/// A raw redis-rs command on the task's own multiplexed connection: `GET` of the key, or `MGET` of the
/// key and a second one (what a hit costs without client tracking: the entry and the clock).
struct RedisGet {
    mget: bool,
    connection: MultiplexedConnection,
    keys: Arc<Vec<String>>,
}

impl Op for RedisGet {
    async fn run(&mut self, id: u64) {
        let key = &self.keys[id as usize];
        let found: Option<Vec<u8>> = if self.mget {
            redis::cmd("MGET")
                .arg(key)
                .arg("bench:clock")
                .query_async::<(Option<Vec<u8>>, Option<u64>)>(&mut self.connection)
                .await
                .expect("MGET")
                .0
        } else {
            redis::cmd("GET")
                .arg(key)
                .query_async(&mut self.connection)
                .await
                .expect("GET")
        };
        std::hint::black_box(found.expect("present"));
    }
}

/// Ops per second of `ops` sequential runs of `op` in the calling task.
async fn sequential(ops: u64, mut op: impl Op) -> f64 {
    let started = Instant::now();
    for i in 0..ops {
        op.run(i % KEYS).await;
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

/// Ops per second of `TASKS` spawned tasks, each running its own `op` from `make` `ops / TASKS` times.
async fn concurrent<O: Op>(ops: u64, make: impl Fn() -> O) -> f64 {
    let per_task = ops / TASKS as u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|task| {
            let mut op = make();
            tokio::spawn(async move {
                for i in 0..per_task {
                    op.run((task * 7919 + i) % KEYS).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("benchmark task");
    }
    (per_task * TASKS as u64) as f64 / started.elapsed().as_secs_f64()
}

/// Best of interleaved rounds of subject and baseline.
async fn best_of<S, SF, B, BF>(mut subject: S, mut baseline: B) -> (f64, f64)
where
    S: FnMut() -> SF,
    SF: Future<Output = f64>,
    B: FnMut() -> BF,
    BF: Future<Output = f64>,
{
    let (mut best_subject, mut best_baseline) = (0.0f64, 0.0f64);
    for _ in 0..ROUNDS {
        best_baseline = best_baseline.max(baseline().await);
        best_subject = best_subject.max(subject().await);
    }
    (best_subject, best_baseline)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut backend = Backend::Memory;
    let mut redis_url = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--backend" => {
                backend = match args.next().as_deref() {
                    Some("memory") => Backend::Memory,
                    Some("redis") => Backend::Redis,
                    Some("cluster") => Backend::Cluster,
                    other => {
                        return Err(format!(
                            "--backend takes memory, redis or cluster, not {other:?}"
                        )
                        .into())
                    }
                }
            }
            "--redis-url" => redis_url = Some(args.next().ok_or("--redis-url takes a URL")?),
            other => return Err(format!("unknown argument {other:?}; see the file's docs").into()),
        }
    }
    match backend {
        Backend::Memory => memory().await,
        Backend::Redis => {
            let server = if redis_url.is_none() {
                Some(RedisServer::start())
            } else {
                None
            };
            let url = redis_url.unwrap_or_else(|| server.as_ref().expect("started").url());
            redis_scenarios(&url).await
        }
        Backend::Cluster => cluster::cluster_scenarios().await,
    }?;
    stampede(backend).await;
    Ok(())
}

fn request_key(id: &u64) -> Option<String> {
    Some(key_of(*id))
}

fn tags(key: &str, _: &String) -> Vec<String> {
    vec!["all".to_owned(), key.to_owned()]
}

type KeyFn = fn(&u64) -> Option<String>;
type TagsFn = fn(&str, &String) -> Vec<String>;

/// Two tags per entry: one shared by all (for the invalidation scenario), one of its own.
fn hit_policy() -> Policy<KeyFn, TagsFn> {
    Policy::new(request_key as KeyFn)
        .ttl(Duration::from_secs(3600))
        .tags(tags as TagsFn)
}

async fn memory() -> Result<(), BoxError> {
    let backend = Backend::Memory;
    let store = MemoryStore::<String>::new(KEYS * 2);
    let raw: MiniMoka<String, String> = MiniMoka::new(KEYS * 2);
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(key_of).collect());
    for id in 0..KEYS {
        raw.insert(key_of(id), value());
    }
    let layer = CacheLayer::new(store.clone(), hit_policy());
    let service = layer.layer(service_fn(|_: u64| async {
        Ok::<_, std::convert::Infallible>(value())
    }));
    for id in 0..KEYS {
        service.clone().oneshot(id).await?;
    }

    let ops = 2_000_000;
    let moka = || MokaGet {
        cache: raw.clone(),
        keys: Arc::clone(&keys),
    };
    let (subject, baseline) = best_of(
        || sequential(ops, LayerGet(service.clone())),
        || sequential(ops, moka()),
    )
    .await;
    print_ratio("hit_sequential", backend, subject, baseline);

    let one_task = subject;
    let (subject, baseline) = best_of(
        || concurrent(ops * 2, || LayerGet(service.clone())),
        || concurrent(ops * 2, moka),
    )
    .await;
    print_ratio("hit_64_tasks", backend, subject, baseline);
    print_ratio("hit_64_tasks_vs_one_task", backend, subject, one_task);

    let misses = 200_000;
    let counter = Arc::new(AtomicUsize::new(0));
    let (subject, baseline) = best_of(
        || {
            let fresh = CacheLayer::new(MemoryStore::<String>::new(KEYS * 2), hit_policy()).layer(
                service_fn(|_: u64| async { Ok::<_, std::convert::Infallible>(value()) }),
            );
            let counter = Arc::clone(&counter);
            sequential(misses, move |_| {
                let id = counter.fetch_add(1, Ordering::Relaxed) as u64;
                let fresh = fresh.clone();
                async move {
                    std::hint::black_box(fresh.oneshot(id).await.expect("miss"));
                }
            })
        },
        || {
            let fresh: MiniMoka<String, String> = MiniMoka::new(KEYS * 2);
            let counter = Arc::clone(&counter);
            sequential(misses, move |_| {
                let id = counter.fetch_add(1, Ordering::Relaxed) as u64;
                fresh.insert(key_of(id), value());
                async {}
            })
        },
    )
    .await;
    print_ratio("miss_two_tags", backend, subject, baseline);

    hit_ratio();

    let handle = layer.handle();
    let started = Instant::now();
    let rounds = 1_000u32;
    for _ in 0..rounds {
        handle.invalidate_tags(["all"]).await?;
    }
    let per_invalidation = started.elapsed() / rounds;
    println!(
        "{{\"scenario\":\"invalidate_1000_entry_tag\",\"backend\":\"memory\",\"ms\":{:.4}}}",
        per_invalidation.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Hit ratios of the store's eviction and of mini-moka's, on one skewed stream of reads (Zipf, exponent
/// 0.9, over ten times as many keys as fit), each read that misses followed by a fill.
fn hit_ratio() {
    const CAPACITY: u64 = 10_000;
    const UNIVERSE: usize = 100_000;
    const READS: usize = 2_000_000;
    let cdf: Vec<f64> = (1..=UNIVERSE)
        .scan(0.0, |sum, rank| {
            *sum += 1.0 / (rank as f64).powf(0.9);
            Some(*sum)
        })
        .collect();
    let total = cdf[UNIVERSE - 1];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let stream: Vec<u64> = (0..READS)
        .map(|_| {
            // xorshift64*: a fixed stream, the same for both sides.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let uniform =
                (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|&at| at < uniform * total) as u64
        })
        .collect();

    let store = MemoryStore::<u64>::new(CAPACITY);
    let mut hits = 0usize;
    for &id in &stream {
        let key = CacheKey::from(key_of(id));
        match store.get(&key).into_ready() {
            Ok(Ok(cache_core::Lookup::Hit { .. })) => hits += 1,
            _ => {
                let entry = PutEntry {
                    value: id,
                    ttl: Duration::from_secs(3600),
                    stale: cache_core::StalePeriods::NONE,
                    tags: Vec::new(),
                    stamp: None,
                };
                let _ = store.put(&key, entry).into_ready();
            }
        }
    }
    let moka: MiniMoka<String, u64> = MiniMoka::new(CAPACITY);
    let mut moka_hits = 0usize;
    for &id in &stream {
        let key = key_of(id);
        if moka.get(&key).is_some() {
            moka_hits += 1;
        } else {
            moka.insert(key, id);
        }
    }
    let (ratio, baseline) = (hits as f64 / READS as f64, moka_hits as f64 / READS as f64);
    println!(
        "{{\"scenario\":\"hit_ratio_zipf\",\"backend\":\"memory\",\"hit_ratio\":{ratio:.4},\"baseline_hit_ratio\":{baseline:.4},\"ratio\":{:.3}}}",
        ratio / baseline
    );
}

async fn redis_scenarios(url: &str) -> Result<(), BoxError> {
    let backend = Backend::Redis;
    // CACHE_REDIS_POOL_SIZE and the other store settings apply, as they would in an application.
    let options = RedisOptions::from_env_source(&cache_core::config::env::ProcessEnv)?
        .key_prefix("bench:")?
        .timeout(Duration::from_secs(1));
    let store = RedisStore::<String>::connect(url, options.clone())?;
    let client = redis::Client::open(url)?;
    let raw: MultiplexedConnection = client.get_multiplexed_async_connection().await?;
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|id| format!("raw:{id}")).collect());
    for key in keys.iter() {
        redis::cmd("SET")
            .arg(key)
            .arg(value())
            .query_async::<()>(&mut raw.clone())
            .await?;
    }
    let layer = CacheLayer::new(store.clone(), hit_policy());
    let service = layer.layer(service_fn(|_: u64| async {
        Ok::<_, std::convert::Infallible>(value())
    }));
    for id in 0..KEYS {
        service.clone().oneshot(id).await?;
    }

    let ops = 20_000;
    let raw_get = || RedisGet {
        mget: false,
        connection: raw.clone(),
        keys: Arc::clone(&keys),
    };
    let (subject, baseline) = best_of(
        || sequential(ops, LayerGet(service.clone())),
        || sequential(ops, raw_get()),
    )
    .await;
    print_ratio("hit_sequential", backend, subject, baseline);

    let (subject, baseline) = best_of(
        || concurrent(ops * 5, || LayerGet(service.clone())),
        || concurrent(ops * 5, raw_get),
    )
    .await;
    print_ratio("hit_64_tasks", backend, subject, baseline);

    // What the consistency check costs by itself: a raw two-key MGET (entry and clock) against a raw GET.
    let raw_mget = || RedisGet {
        mget: true,
        ..raw_get()
    };
    let (subject, baseline) = best_of(
        || concurrent(ops * 5, raw_mget),
        || concurrent(ops * 5, raw_get),
    )
    .await;
    print_ratio("raw_mget2_vs_get_64_tasks", backend, subject, baseline);

    let (subject, baseline) = put_two_tags(&store, raw.clone()).await;
    print_ratio("put_two_tags", backend, subject, baseline);

    let (mean, worst) = tag_invalidation(&store).await?;
    println!(
        "{{\"scenario\":\"invalidate_1000_entry_tag\",\"backend\":\"redis\",\"ms\":{:.4},\"worst_ms\":{:.4}}}",
        mean.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    near_scenarios(url, &options).await?;
    stampede_two_instances(url, &options).await?;
    Ok(())
}

/// An entry of the Redis scenarios: `value()`, a minute's TTL, `tags`.
fn entry(tags: Vec<String>) -> PutEntry<String> {
    PutEntry {
        value: value(),
        ttl: Duration::from_secs(60),
        stale: cache_core::StalePeriods::NONE,
        tags,
        stamp: None,
    }
}

/// `RedisStore::put` with two tags, against a raw `SET ... PX` on `raw` (a connection of the same kind
/// as the store's): ops per second of each.
async fn put_two_tags<R>(store: &RedisStore<String>, raw: R) -> (f64, f64)
where
    R: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let puts = 10_000;
    best_of(
        || {
            let (store, counter) = (store.clone(), Arc::clone(&counter));
            sequential(puts, move |_| {
                let id = counter.fetch_add(1, Ordering::Relaxed);
                let tags = vec![format!("guild:{}", id % 100), format!("user:{id}")];
                let put = store.put(&CacheKey::from(format!("put:{id}")), entry(tags));
                async move {
                    put.await.expect("put");
                }
            })
        },
        || {
            let (raw, counter) = (raw.clone(), Arc::clone(&counter));
            sequential(puts, move |_| {
                let id = counter.fetch_add(1, Ordering::Relaxed);
                let mut raw = raw.clone();
                async move {
                    redis::cmd("SET")
                        .arg(format!("rawput:{id}"))
                        .arg(value())
                        .arg("PX")
                        .arg(60_000)
                        .query_async::<()>(&mut raw)
                        .await
                        .expect("SET");
                }
            })
        },
    )
    .await
}

/// Mean and worst time of invalidating a tag carried by `KEYS` entries, refilled between 50 rounds.
async fn tag_invalidation(store: &RedisStore<String>) -> Result<(Duration, Duration), BoxError> {
    let rounds = 50u32;
    let (mut total, mut worst) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let refill: Vec<_> = (0..KEYS)
            .map(|id| store.put(&CacheKey::from(key_of(id)), entry(vec!["all".into()])))
            .collect();
        futures_util::future::try_join_all(refill).await?;
        let started = Instant::now();
        store.invalidate_tags(&["all".to_owned()]).await?;
        let took = started.elapsed();
        worst = worst.max(took);
        total += took;
    }
    Ok((total / rounds, worst))
}

/// The near tier: its hits against the memory store's (both through the layer), and how soon a copy in
/// one instance stops being served after another invalidates it.
async fn near_scenarios(url: &str, options: &RedisOptions) -> Result<(), BoxError> {
    let backend = Backend::Redis;
    let near = || RedisStore::<String>::connect(url, options.clone().near_capacity(KEYS * 2));
    let answer = || service_fn(|_: u64| async { Ok::<_, std::convert::Infallible>(value()) });
    let near_service = CacheLayer::new(near()?, hit_policy()).layer(answer());
    let memory_service =
        CacheLayer::new(MemoryStore::<String>::new(KEYS * 2), hit_policy()).layer(answer());
    for id in 0..KEYS {
        near_service.clone().oneshot(id).await?;
        near_service.clone().oneshot(id).await?;
        memory_service.clone().oneshot(id).await?;
    }
    let ops = 2_000_000;
    let (subject, baseline) = best_of(
        || sequential(ops, LayerGet(near_service.clone())),
        || sequential(ops, LayerGet(memory_service.clone())),
    )
    .await;
    print_ratio(
        "near_hit_vs_memory_hit_sequential",
        backend,
        subject,
        baseline,
    );
    let (subject, baseline) = best_of(
        || concurrent(ops * 2, || LayerGet(near_service.clone())),
        || concurrent(ops * 2, || LayerGet(memory_service.clone())),
    )
    .await;
    print_ratio(
        "near_hit_vs_memory_hit_64_tasks",
        backend,
        subject,
        baseline,
    );

    // Coherence window: A invalidates the tag of an entry B holds a copy of; from the moment
    // `invalidate_tags` returns in A, B reads until its copy is no longer served.
    let (a, b) = (near()?, near()?);
    let key = CacheKey::from("coherence");
    let mut windows = Vec::with_capacity(1_000);
    for round in 0..1_000 {
        let tag = format!("coherence:{round}");
        let entry = PutEntry {
            value: value(),
            ttl: Duration::from_secs(60),
            stale: cache_core::StalePeriods::NONE,
            tags: vec![tag.clone()],
            stamp: None,
        };
        a.put(&key, entry).await?;
        // B copies the entry from Redis, then serves it from its near tier.
        while !matches!(b.get(&key).await?, cache_core::Lookup::Hit { .. }) {}
        a.invalidate_tags(&[tag]).await?;
        let returned = Instant::now();
        while matches!(b.get(&key).await?, cache_core::Lookup::Hit { .. }) {
            tokio::task::yield_now().await;
        }
        windows.push(returned.elapsed());
    }
    windows.sort_unstable();
    let at = |quantile: f64| windows[((windows.len() - 1) as f64 * quantile) as usize];
    println!(
        "{{\"scenario\":\"near_coherence_window\",\"backend\":\"redis\",\"invalidations\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
        windows.len(),
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        windows[windows.len() - 1].as_secs_f64() * 1e6
    );
    Ok(())
}

/// 500 concurrent callers of one cold key in each of two instances (own stores, own in-process
/// flights) sharing one Redis, the inner service taking 20 ms: with shared single flight, and without.
async fn stampede_two_instances(url: &str, options: &RedisOptions) -> Result<(), BoxError> {
    for shared in [true, false] {
        let calls = Arc::new(AtomicUsize::new(0));
        let instance = |prefix: &str| -> Result<_, BoxError> {
            let store = RedisStore::<String>::connect(
                url,
                options.clone().key_prefix(prefix)?.near_capacity(KEYS),
            )?;
            let layer = CacheLayer::new(store, hit_policy());
            let layer = if shared {
                layer.shared_single_flight(Duration::from_secs(5))
            } else {
                layer
            };
            Ok(layer.layer(slow_upstream(&calls)))
        };
        let prefix = if shared {
            "stampede-shared:"
        } else {
            "stampede-local:"
        };
        let (one, two) = (instance(prefix)?, instance(prefix)?);
        let started = Instant::now();
        let callers: Vec<_> = (0..1_000)
            .map(|i| {
                let service = if i % 2 == 0 { one.clone() } else { two.clone() };
                tokio::spawn(service.oneshot(7))
            })
            .collect();
        for caller in callers {
            caller.await.expect("caller").expect("answer");
        }
        println!(
            "{{\"scenario\":\"stampede_two_instances\",\"backend\":\"redis\",\"shared_single_flight\":{shared},\"inner_calls\":{},\"ms\":{:.2}}}",
            calls.load(Ordering::SeqCst),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// An upstream that takes 20 ms and counts its calls in `calls`.
fn slow_upstream(
    calls: &Arc<AtomicUsize>,
) -> impl Service<u64, Response = String, Error = std::convert::Infallible, Future: Send> + Clone {
    let counted = Arc::clone(calls);
    service_fn(move |_: u64| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(value())
        }
    })
}

/// 1,000 concurrent callers of one key on a service that takes 20 ms.
async fn stampede(backend: Backend) {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = CacheLayer::new(MemoryStore::<String>::new(KEYS), hit_policy())
        .layer(slow_upstream(&calls));
    let started = Instant::now();
    let callers: Vec<_> = (0..1_000)
        .map(|_| tokio::spawn(service.clone().oneshot(7)))
        .collect();
    for caller in callers {
        caller.await.expect("caller").expect("answer");
    }
    println!(
        "{{\"scenario\":\"stampede\",\"backend\":\"{}\",\"inner_calls\":{},\"ms\":{:.2}}}",
        backend.name(),
        calls.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64() * 1e3
    );
}
