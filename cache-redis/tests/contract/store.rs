//! The Redis store against a private redis-server: codecs, TTLs, tags across instances, prefixes, clear,
//! corrupt values, and the no-resurrection rule.

use std::time::Duration;

use cache_core::codec::{Bincode, MessagePack};
use cache_core::{CacheKey, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store};
use cache_redis::RedisStore;
use redis_test_server::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Member {
    id: u64,
    nick: Option<String>,
    roles: Vec<u64>,
}

fn member(id: u64) -> Member {
    Member {
        id,
        nick: Some(format!("nick{id}")),
        roles: vec![41771983423143936, id],
    }
}

fn options(prefix: &str) -> cache_redis::RedisOptions {
    // Generous timeout: debug builds on a loaded 2-core machine.
    crate::options_under_test()
        .key_prefix(prefix)
        .unwrap()
        .timeout(Duration::from_secs(2))
}

fn store<V>(server: &RedisServer, prefix: &str) -> RedisStore<V> {
    RedisStore::connect(&server.url(), options(prefix)).unwrap()
}

async fn lookup<S: Store>(store: &S, key: &str) -> Lookup<S::Value> {
    store.get(&CacheKey::from(key)).await.unwrap()
}

async fn stamp<S: Store>(store: &S, key: &str) -> FillStamp {
    match lookup(store, key).await {
        Lookup::Miss { stamp } | Lookup::Hit { stamp, .. } | Lookup::Undecodable { stamp, .. } => {
            stamp
        }
        _ => unreachable!(),
    }
}

async fn put<S: Store>(
    store: &S,
    key: &str,
    value: S::Value,
    tags: &[&str],
    stamp: Option<FillStamp>,
) -> PutOutcome {
    let tags = tags.iter().map(|tag| (*tag).to_owned()).collect();
    let entry = PutEntry {
        value,
        ttl: Duration::from_secs(300),
        stale: cache_core::StalePeriods::NONE,
        tags,
        stamp,
    };
    store.put(&CacheKey::from(key), entry).await.unwrap()
}

async fn hit<S: Store>(store: &S, key: &str) -> Option<S::Value> {
    match lookup(store, key).await {
        Lookup::Hit { value, .. } => Some(value),
        _ => None,
    }
}

async fn fill<S: Store>(store: &S, key: &str, value: S::Value, tags: &[&str]) {
    let stamp = stamp(store, key).await;
    assert_eq!(
        put(store, key, value, tags, Some(stamp)).await,
        PutOutcome::Stored
    );
}

#[tokio::test]
async fn values_round_trip_through_each_codec() {
    let server = RedisServer::start();
    let bincode = store::<Member>(&server, "bin:");
    fill(&bincode, "member:1", member(1), &["guild:1"]).await;
    assert_eq!(hit(&bincode, "member:1").await, Some(member(1)));

    let msgpack =
        RedisStore::<Member, _>::with_codec(&server.url(), options("mp:"), MessagePack).unwrap();
    fill(&msgpack, "member:1", member(2), &[]).await;
    assert_eq!(hit(&msgpack, "member:1").await, Some(member(2)));
}

#[tokio::test]
async fn the_ttl_is_set_on_the_redis_key() {
    let server = RedisServer::start();
    let store = store::<Member>(&server, "ttl:");
    let entry = PutEntry {
        value: member(1),
        ttl: Duration::from_secs(42),
        stale: cache_core::StalePeriods::NONE,
        tags: vec![],
        stamp: None,
    };
    store.put(&CacheKey::from("m"), entry).await.unwrap();
    let pttl: i64 = server.command(&["PTTL", "{ttl:}:e:m"]).parse().unwrap();
    assert!((41_000..=42_000).contains(&pttl), "PTTL {pttl}");
}

#[tokio::test]
async fn tags_invalidate_across_independent_instances() {
    let server = RedisServer::start();
    // Two processes' worth of state: separate pools and invalidation views.
    let here = store::<Member>(&server, "app:");
    let there = store::<Member>(&server, "app:");
    fill(
        &here,
        "member:1:1",
        member(1),
        &["guild:1", "guild:1:member:1"],
    )
    .await;
    fill(
        &here,
        "member:1:2",
        member(2),
        &["guild:1", "guild:1:member:2"],
    )
    .await;
    fill(&here, "member:2:3", member(3), &["guild:2"]).await;
    assert_eq!(hit(&there, "member:1:1").await, Some(member(1)), "shared");

    there
        .invalidate_tags(&["guild:1:member:1".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        hit(&here, "member:1:1").await,
        None,
        "invalidated elsewhere, gone here"
    );
    assert!(hit(&here, "member:1:2").await.is_some());

    here.invalidate_tags(&["guild:1".to_owned()]).await.unwrap();
    assert_eq!(hit(&there, "member:1:2").await, None);
    assert_eq!(
        hit(&there, "member:2:3").await,
        Some(member(3)),
        "other tags untouched"
    );

    here.remove(&CacheKey::from("member:2:3")).await.unwrap();
    assert_eq!(hit(&there, "member:2:3").await, None);
}

#[tokio::test]
async fn a_fill_that_started_before_an_invalidation_elsewhere_never_lands() {
    let server = RedisServer::start();
    let filler = store::<Member>(&server, "race:");
    let invalidator = store::<Member>(&server, "race:");

    // The filler misses and starts fetching...
    let before = stamp(&filler, "roles:1").await;
    // ...another process changes the object and invalidates...
    invalidator
        .invalidate_tags(&["guild:1".to_owned()])
        .await
        .unwrap();
    // ...then the old value arrives: it must not be stored.
    assert_eq!(
        put(&filler, "roles:1", member(1), &["guild:1"], Some(before)).await,
        PutOutcome::Superseded
    );
    assert_eq!(hit(&invalidator, "roles:1").await, None);
    assert_eq!(hit(&filler, "roles:1").await, None);

    // The same race on a key removal.
    let before = stamp(&filler, "roles:2").await;
    invalidator
        .remove(&CacheKey::from("roles:2"))
        .await
        .unwrap();
    assert_eq!(
        put(&filler, "roles:2", member(2), &[], Some(before)).await,
        PutOutcome::Superseded
    );

    // A fill stored just before the invalidation is removed by it, for both instances.
    fill(&filler, "roles:3", member(3), &["guild:3"]).await;
    invalidator
        .invalidate_tags(&["guild:3".to_owned()])
        .await
        .unwrap();
    assert_eq!(hit(&filler, "roles:3").await, None);

    // A fill that starts after the invalidation is cached as usual.
    fill(&filler, "roles:1", member(4), &["guild:1"]).await;
    assert_eq!(hit(&invalidator, "roles:1").await, Some(member(4)));
}

#[tokio::test]
async fn prefixes_never_see_each_other_and_clear_keeps_to_its_own() {
    let server = RedisServer::start();
    let a = store::<Member>(&server, "a:");
    let b = store::<Member>(&server, "a:b:");
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
async fn bytes_of_another_codec_or_garbage_are_undecodable_misses() {
    let server = RedisServer::start();
    let store = store::<Member>(&server, "c:");
    let other =
        RedisStore::<Member, _>::with_codec(&server.url(), options("c:"), MessagePack).unwrap();
    fill(&other, "m", member(1), &[]).await;
    assert!(matches!(
        lookup(&store, "m").await,
        Lookup::Undecodable { .. }
    ));

    server.command(&["SET", "{c:}:e:g", "\u{1}garbage"]);
    let Lookup::Undecodable { stamp, .. } = lookup(&store, "g").await else {
        panic!("garbage must not decode")
    };
    // The next fill replaces it.
    assert_eq!(
        put(&store, "g", member(2), &[], Some(stamp)).await,
        PutOutcome::Stored
    );
    assert_eq!(hit(&store, "g").await, Some(member(2)));

    // A key of another type where an entry should be: not a value, and a fill replaces it.
    server.command(&["RPUSH", "{c:}:e:l", "x"]);
    let (Lookup::Miss { stamp } | Lookup::Undecodable { stamp, .. }) = lookup(&store, "l").await
    else {
        panic!("a list is not an entry")
    };
    assert_eq!(
        put(&store, "l", member(3), &[], Some(stamp)).await,
        PutOutcome::Stored
    );
    assert_eq!(hit(&store, "l").await, Some(member(3)));
    let _ = Bincode;
}

#[tokio::test]
async fn a_wrong_type_at_a_bookkeeping_key_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    let store = store::<Member>(&server, "w:");
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
    let here = store::<Member>(&server, "lost:");
    let other = store::<Member>(&server, "lost:");
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
    let filler = store::<Member>(&server, "ev:");
    let early = stamp(&filler, "late").await;
    fill(&filler, "k", member(1), &["t"]).await;
    filler.invalidate_tags(&["t".to_owned()]).await.unwrap();
    // An allkeys-* eviction policy drops the records.
    server.command(&["DEL", "{ev:}:inv"]);
    let newcomer = store::<Member>(&server, "ev:");
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
async fn a_new_process_catches_up_on_a_long_backlog_page_by_page() {
    let server = RedisServer::start();
    let writer = store::<Member>(&server, "backlog:");
    for (key, tag) in [
        ("early", "t:10"),
        ("late", "t:2400"),
        ("bulk", "bulk:1499"),
        ("kept", "other"),
    ] {
        fill(&writer, key, member(1), &[tag]).await;
    }
    // 2,500 invalidations of one tag each, then one invalidation of 1,500 tags at a single tick: more
    // records than one catch-up page, and one tick larger than a page.
    for i in 0..2_500 {
        writer.invalidate_tags(&[format!("t:{i}")]).await.unwrap();
    }
    let bulk: Vec<String> = (0..1_500).map(|i| format!("bulk:{i}")).collect();
    writer.invalidate_tags(&bulk).await.unwrap();

    let newcomer = store::<Member>(&server, "backlog:");
    for key in ["early", "late", "bulk"] {
        assert_eq!(
            hit(&newcomer, key).await,
            None,
            "{key} must be gone for a process that never saw it"
        );
    }
    assert_eq!(hit(&newcomer, "kept").await, Some(member(1)));
}
