//! The Redis store's bookkeeping on one server, by key name: prefixes and `clear`, wrong types and
//! lost keys, capped records. On a cluster the same keys exist once per group (see `cluster.rs`).

use std::time::Duration;

use cache_core::{CacheKey, Invalidate, PutEntry, PutOutcome, Store};
use cache_redis::RedisStore;
use redis_test_server::RedisServer;

use crate::store::{fill, hit, member, options, put, stamp, Member};

fn node_store<V>(server: &RedisServer, prefix: &str) -> RedisStore<V> {
    RedisStore::connect(&server.url(), options(prefix)).unwrap()
}

#[tokio::test]
async fn prefixes_never_see_each_other_and_clear_keeps_to_its_own() {
    let server = RedisServer::start();
    let a = node_store::<Member>(&server, "a:");
    let b = node_store::<Member>(&server, "a:b:");
    server.command(&["SET", "foreign", "kept"]);
    server.command(&["SET", "a:e:looks-like-ours", "kept"]);
    for i in 0..1_200 {
        fill(&a, &format!("k{i}"), member(i), &["t"]).await;
    }
    fill(&b, "k1", member(99), &["t"]).await;
    assert_eq!(
        hit(&b, "k1").await,
        Some(member(99)),
        "same key, other prefix"
    );

    a.invalidate_tags(&["t".to_owned()]).await.unwrap();
    assert_eq!(
        hit(&b, "k1").await,
        Some(member(99)),
        "same tag, other prefix"
    );

    fill(&a, "k1", member(1), &[]).await;
    a.clear().await.unwrap();
    assert_eq!(hit(&a, "k1").await, None, "cleared at once for readers");
    // The unlinking runs in the background: wait for the prefix's entries to leave.
    let entries_left = || {
        let scan = server.command(&["SCAN", "0", "MATCH", "{a:}:e:*", "COUNT", "100000"]);
        scan.lines().count() - 1
    };
    for _ in 0..500 {
        if entries_left() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(entries_left(), 0);
    assert_eq!(server.command(&["GET", "foreign"]), "kept");
    assert_eq!(server.command(&["GET", "a:e:looks-like-ours"]), "kept");
    assert_eq!(hit(&b, "k1").await, Some(member(99)));
    // What the store keeps besides entries: the clock, the records, the floor. Nothing per entry.
    let keys = server.command(&["SCAN", "0", "MATCH", "{a:}:*", "COUNT", "10000"]);
    let mut ours: Vec<&str> = keys.lines().skip(1).collect();
    ours.sort_unstable();
    assert_eq!(ours, ["{a:}:epoch", "{a:}:floor"]);
}

#[tokio::test]
async fn a_wrong_type_at_a_bookkeeping_key_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    let store = node_store::<Member>(&server, "w:");
    // The records are a string and the clock says there is something new to read in them.
    server.command(&["SET", "{w:}:inv", "not a sorted set"]);
    server.command(&["SET", "{w:}:epoch", "5"]);
    assert!(store.get(&CacheKey::from("k")).await.is_err());
    // The clock is a hash: invalidations cannot tick it.
    server.command(&["DEL", "{w:}:inv"]);
    server.command(&["DEL", "{w:}:epoch"]);
    server.command(&["HSET", "{w:}:epoch", "f", "v"]);
    assert!(store.invalidate_tags(&["t".to_owned()]).await.is_err());

    server.command(&["DEL", "{w:}:epoch"]);
    fill(&store, "k", member(1), &["t"]).await;
    assert_eq!(
        hit(&store, "k").await,
        Some(member(1)),
        "works again once the keys are sane"
    );
    store.invalidate_tags(&["t".to_owned()]).await.unwrap();
    assert_eq!(hit(&store, "k").await, None);
}

#[tokio::test]
async fn losing_the_clock_key_does_not_let_entries_outlive_an_invalidation() {
    let server = RedisServer::start();
    let here = node_store::<Member>(&server, "lost:");
    let other = node_store::<Member>(&server, "lost:");
    here.invalidate_tags(&["warm-up".to_owned()]).await.unwrap();
    fill(&here, "k", member(1), &["t"]).await;
    // Evicted, or deleted by hand.
    server.command(&["DEL", "{lost:}:epoch"]);
    other.invalidate_tags(&["t".to_owned()]).await.unwrap();
    assert_eq!(hit(&here, "k").await, None);
    assert_eq!(hit(&other, "k").await, None);
}

#[tokio::test]
async fn the_invalidation_records_stay_capped_and_forgetting_never_resurrects() {
    let server = RedisServer::start();
    let options = options("cap:").max_invalidation_records(100);
    let store = RedisStore::<Member>::connect(&server.url(), options.clone()).unwrap();
    let other = RedisStore::<Member>::connect(&server.url(), options).unwrap();
    let old = stamp(&store, "victim").await;
    fill(&store, "victim", member(1), &["victim"]).await;
    store.invalidate_tags(&["victim".to_owned()]).await.unwrap();
    for i in 0..1_000 {
        store.invalidate_tags(&[format!("noise{i}")]).await.unwrap();
    }
    let records: usize = server.command(&["ZCARD", "{cap:}:inv"]).parse().unwrap();
    assert!(records <= 100, "{records} records");
    assert_eq!(
        hit(&other, "victim").await,
        None,
        "a fresh view does not revive it"
    );
    assert_eq!(
        put(&other, "victim", member(2), &["victim"], Some(old)).await,
        PutOutcome::Superseded
    );
}

#[tokio::test]
async fn evicted_invalidation_records_never_revive_entries() {
    let server = RedisServer::start();
    let filler = node_store::<Member>(&server, "ev:");
    let early = stamp(&filler, "late").await;
    fill(&filler, "k", member(1), &["t"]).await;
    filler.invalidate_tags(&["t".to_owned()]).await.unwrap();
    // An allkeys-* eviction policy drops the records.
    server.command(&["DEL", "{ev:}:inv"]);
    let newcomer = node_store::<Member>(&server, "ev:");
    assert_eq!(
        hit(&newcomer, "k").await,
        None,
        "a process that never saw the record"
    );
    assert_eq!(hit(&filler, "k").await, None, "a process that saw it");
    assert_eq!(
        put(&newcomer, "late", member(2), &["t"], Some(early)).await,
        PutOutcome::Superseded
    );
    fill(&newcomer, "k", member(3), &["t"]).await;
    assert_eq!(
        hit(&filler, "k").await,
        Some(member(3)),
        "fills after the loss are cached again"
    );
}

#[tokio::test]
async fn a_store_on_the_applications_own_pool() {
    use cache_core::codec::Bincode;
    use cache_core::Lookup;
    use cache_redis::bb8_redis::{bb8, RedisConnectionManager};

    let server = RedisServer::start();
    let manager = RedisConnectionManager::new(server.url()).unwrap();
    let pool = bb8::Pool::builder()
        .test_on_check_out(false)
        .max_size(2)
        .build(manager)
        .await
        .unwrap();
    let store = RedisStore::<String, _>::from_pool(pool, options("cache:"), Bincode).unwrap();
    let entry = PutEntry {
        value: "pooled".to_owned(),
        ttl: Duration::from_secs(5),
        stale: cache_core::StalePeriods::NONE,
        tags: vec![],
        stamp: None,
    };
    store.put(&CacheKey::from("k"), entry).await.unwrap();
    let Lookup::Hit { value, .. } = store.get(&CacheKey::from("k")).await.unwrap() else {
        panic!("cached")
    };
    assert_eq!(value, "pooled");

    let mut bad = options("cache:");
    bad.key_prefix = "glob*".to_owned();
    let manager = RedisConnectionManager::new(server.url()).unwrap();
    let pool = bb8::Pool::builder().build_unchecked(manager);
    let error = RedisStore::<String, _>::from_pool(pool, bad, Bincode)
        .unwrap_err()
        .to_string();
    assert!(error.contains("CACHE_KEY_PREFIX"), "{error}");
}
