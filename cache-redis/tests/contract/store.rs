//! The Redis store against a private redis-server: codecs, TTLs, tags across instances, prefixes, clear,
//! corrupt values, and the no-resurrection rule.

use std::time::Duration;

use cache_core::codec::{Bincode, MessagePack};
use cache_core::{CacheKey, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store};
use cache_redis::RedisStore;
use serde::{Deserialize, Serialize};

use crate::backend::TestRedis;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) nick: Option<String>,
    pub(crate) roles: Vec<u64>,
}

pub(crate) fn member(id: u64) -> Member {
    Member {
        id,
        nick: Some(format!("nick{id}")),
        roles: vec![41771983423143936, id],
    }
}

pub(crate) fn options(prefix: &str) -> cache_redis::RedisOptions {
    // Generous timeout: debug builds on a loaded 2-core machine.
    crate::options_under_test()
        .key_prefix(prefix)
        .unwrap()
        .timeout(Duration::from_secs(2))
}

pub(crate) fn store<V>(server: &TestRedis, prefix: &str) -> RedisStore<V> {
    server.connect(options(prefix))
}

pub(crate) async fn lookup<S: Store>(store: &S, key: &str) -> Lookup<S::Value> {
    store.get(&CacheKey::from(key)).await.unwrap()
}

pub(crate) async fn stamp<S: Store>(store: &S, key: &str) -> FillStamp {
    match lookup(store, key).await {
        Lookup::Miss { stamp } | Lookup::Hit { stamp, .. } | Lookup::Undecodable { stamp, .. } => {
            stamp
        }
        _ => unreachable!(),
    }
}

pub(crate) async fn put<S: Store>(
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

pub(crate) async fn hit<S: Store>(store: &S, key: &str) -> Option<S::Value> {
    match lookup(store, key).await {
        Lookup::Hit { value, .. } => Some(value),
        _ => None,
    }
}

pub(crate) async fn fill<S: Store>(store: &S, key: &str, value: S::Value, tags: &[&str]) {
    let stamp = stamp(store, key).await;
    assert_eq!(
        put(store, key, value, tags, Some(stamp)).await,
        PutOutcome::Stored
    );
}

#[tokio::test]
async fn values_round_trip_through_each_codec() {
    let server = TestRedis::start();
    let bincode = store::<Member>(&server, "bin:");
    fill(&bincode, "member:1", member(1), &["guild:1"]).await;
    assert_eq!(hit(&bincode, "member:1").await, Some(member(1)));

    let msgpack = server.with_codec::<Member, _>(options("mp:"), MessagePack);
    fill(&msgpack, "member:1", member(2), &[]).await;
    assert_eq!(hit(&msgpack, "member:1").await, Some(member(2)));
}

#[tokio::test]
async fn the_ttl_is_set_on_the_redis_key() {
    let server = TestRedis::start();
    let store = store::<Member>(&server, "ttl:");
    let entry = PutEntry {
        value: member(1),
        ttl: Duration::from_secs(42),
        stale: cache_core::StalePeriods::NONE,
        tags: vec![],
        stamp: None,
    };
    store.put(&CacheKey::from("m"), entry).await.unwrap();
    let entry_key = store.entry_key(&CacheKey::from("m"));
    let pttl: i64 = server.command(&["PTTL", &entry_key]).parse().unwrap();
    assert!((41_000..=42_000).contains(&pttl), "PTTL {pttl}");
}

#[tokio::test]
async fn tags_invalidate_across_independent_instances() {
    let server = TestRedis::start();
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
    let server = TestRedis::start();
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
async fn bytes_of_another_codec_or_garbage_are_undecodable_misses() {
    let server = TestRedis::start();
    let store = store::<Member>(&server, "c:");
    let other = server.with_codec::<Member, _>(options("c:"), MessagePack);
    fill(&other, "m", member(1), &[]).await;
    assert!(matches!(
        lookup(&store, "m").await,
        Lookup::Undecodable { .. }
    ));

    server.command(&[
        "SET",
        &store.entry_key(&CacheKey::from("g")),
        "\u{1}garbage",
    ]);
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
    server.command(&["RPUSH", &store.entry_key(&CacheKey::from("l")), "x"]);
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
async fn a_new_process_catches_up_on_a_long_backlog_page_by_page() {
    let server = TestRedis::start();
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
