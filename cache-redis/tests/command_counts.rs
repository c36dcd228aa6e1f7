//! What each operation costs in Redis commands, counted by the server (`INFO commandstats`): a hit is one
//! `GET` with client tracking, one `MGET` without (never a `PING` per checkout), and invalidating a tag costs the same whether 1,000 or 100,000 entries
//! carry it.

use std::collections::BTreeMap;
use std::time::Duration;

use cache_core::{CacheKey, Invalidate, Lookup, PutEntry, Store};
use cache_redis::{RedisOptions, RedisStore};
use futures_util::future::join_all;
use redis_test_server::RedisServer;

async fn fill(store: &RedisStore<u32>, tag: &str, count: u32) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(2_000) {
        let puts = chunk.iter().map(|i| {
            let entry = PutEntry {
                value: *i,
                ttl: Duration::from_secs(600),
                stale: cache_core::StalePeriods::NONE,
                tags: vec![tag.to_owned()],
                stamp: None,
            };
            store.put(&CacheKey::from(format!("{tag}:{i}")), entry)
        });
        for outcome in join_all(puts).await {
            outcome.unwrap();
        }
    }
}

/// `cmdstat_<name>:calls=N,...` lines of `INFO commandstats`, as name -> calls.
fn command_calls(server: &RedisServer) -> BTreeMap<String, u64> {
    server
        .command(&["INFO", "commandstats"])
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

async fn commands_to_invalidate(
    server: &RedisServer,
    store: &RedisStore<u32>,
    tag: &str,
) -> BTreeMap<String, u64> {
    server.command(&["CONFIG", "RESETSTAT"]);
    store.invalidate_tags(&[tag.to_owned()]).await.unwrap();
    let mut calls = command_calls(server);
    // The probes themselves.
    calls.remove("info");
    calls.remove("config|resetstat");
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_carriers_cost_what_a_thousand_do() {
    let server = RedisServer::start();
    let options = RedisOptions::default().timeout(Duration::from_secs(10));
    let store = RedisStore::<u32>::connect(&server.url(), options).unwrap();
    fill(&store, "small", 1_000).await;
    fill(&store, "large", 100_000).await;
    // The first invalidation also loads the script into Redis; measure the steady state.
    store
        .invalidate_tags(&["warm-up".to_owned()])
        .await
        .unwrap();

    let small = commands_to_invalidate(&server, &store, "small").await;
    let large = commands_to_invalidate(&server, &store, "large").await;
    assert_eq!(small, large, "same commands, same counts");
    let total: u64 = large.values().sum();
    assert!(total <= 10, "a handful of commands: {large:?}");

    // And every carrier is gone.
    for i in [0, 49_999, 99_999] {
        let lookup = store
            .get(&CacheKey::from(format!("large:{i}")))
            .await
            .unwrap();
        assert!(matches!(lookup, Lookup::Miss { .. }), "large:{i} survived");
    }
}

async fn commands_for_a_hundred_hits(tracking: bool) -> BTreeMap<String, u64> {
    let server = RedisServer::start();
    let options = RedisOptions::default()
        .timeout(Duration::from_secs(10))
        .client_tracking(tracking);
    let store = RedisStore::<u32>::connect(&server.url(), options).unwrap();
    fill(&store, "t", 10).await;
    store.get(&CacheKey::from("t:0")).await.unwrap(); // connections are open and warm

    server.command(&["CONFIG", "RESETSTAT"]);
    for i in 0..100 {
        let lookup = store
            .get(&CacheKey::from(format!("t:{}", i % 10)))
            .await
            .unwrap();
        assert!(matches!(lookup, Lookup::Hit { .. }));
    }
    let mut calls = command_calls(&server);
    calls.remove("info");
    calls.remove("config|resetstat");
    calls
}

#[tokio::test]
async fn a_hit_is_one_get_with_client_tracking() {
    assert_eq!(
        commands_for_a_hundred_hits(true).await,
        BTreeMap::from([("get".to_owned(), 100)])
    );
}

#[tokio::test]
async fn a_hit_is_one_mget_without_client_tracking() {
    assert_eq!(
        commands_for_a_hundred_hits(false).await,
        BTreeMap::from([("mget".to_owned(), 100)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_size_is_the_number_of_connections() {
    let server = RedisServer::start();
    let options = RedisOptions::default()
        .timeout(Duration::from_secs(10))
        .pool_size(3);
    let store = RedisStore::<u32>::connect(&server.url(), options).unwrap();
    let gets = (0..30).map(|i| store.get(&CacheKey::from(format!("k{i}"))));
    for lookup in join_all(gets).await {
        lookup.unwrap();
    }
    // CLIENT LIST has one line per connection, this probe's own included.
    let clients = server.command(&["CLIENT", "LIST"]).lines().count();
    assert_eq!(clients, 3 + 1);
}

#[tokio::test]
async fn one_at_a_time_operations_still_fill_every_slot() {
    // The slot that had no connection is the one refilled, not the next one round the pool.
    let server = RedisServer::start();
    let options = RedisOptions::default()
        .timeout(Duration::from_secs(10))
        .pool_size(2);
    let store = RedisStore::<u32>::connect(&server.url(), options).unwrap();
    for i in 0..10 {
        store.get(&CacheKey::from(format!("k{i}"))).await.unwrap();
    }
    let clients = server.command(&["CLIENT", "LIST"]).lines().count();
    assert_eq!(clients, 2 + 1);
}
