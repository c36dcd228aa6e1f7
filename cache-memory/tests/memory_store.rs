//! The in-process store on its own: size cap, bounded bookkeeping, per-entry TTL, stamps.

use std::time::Duration;

use cache_core::{CacheKey, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store};
use cache_memory::MemoryStore;

fn get(store: &MemoryStore<u64>, key: &str) -> Lookup<u64> {
    store
        .get(&CacheKey::from(key))
        .into_ready()
        .expect("memory answers at once")
        .unwrap()
}

fn stamp_of(store: &MemoryStore<u64>, key: &str) -> FillStamp {
    match get(store, key) {
        Lookup::Miss { stamp } | Lookup::Hit { stamp, .. } => stamp,
        other => panic!("unexpected {other:?}"),
    }
}

fn put(
    store: &MemoryStore<u64>,
    key: &str,
    value: u64,
    tags: &[String],
    stamp: Option<FillStamp>,
) -> PutOutcome {
    let entry = PutEntry {
        value,
        ttl: Duration::from_secs(3600),
        stale: cache_core::StalePeriods::NONE,
        tags: tags.to_vec(),
        stamp,
    };
    store
        .put(&CacheKey::from(key), entry)
        .into_ready()
        .expect("memory answers at once")
        .unwrap()
}

fn is_hit(store: &MemoryStore<u64>, key: &str) -> bool {
    matches!(get(store, key), Lookup::Hit { .. })
}

#[test]
fn size_cap_and_bookkeeping_hold_after_a_million_inserts() {
    let store = MemoryStore::<u64>::with_invalidation_records(1_000, 4_096);
    for i in 0..1_000_000u64 {
        let tags = [format!("object:{i}"), format!("group:{}", i % 5_000)];
        let stamp = stamp_of(&store, &format!("k{i}"));
        put(&store, &format!("k{i}"), i, &tags, Some(stamp));
        if i % 4 == 0 {
            // A steady stream of invalidations of tags nobody will use again.
            store
                .invalidate_tags(&[format!("object:{}", i / 2)])
                .into_ready()
                .unwrap()
                .unwrap();
        }
        if i % 100_000 == 0 {
            assert!(
                store.entry_count() <= 1_000,
                "entries: {}",
                store.entry_count()
            );
        }
    }
    assert!(
        store.entry_count() <= 1_000,
        "entries: {}",
        store.entry_count()
    );
    assert!(
        store.invalidation_records() <= 4_096,
        "records: {}",
        store.invalidation_records()
    );
    // Still a working cache: a new key gets into the full store, and its tag removes it.
    let tags = ["probe-tag".to_owned()];
    let stamp = stamp_of(&store, "probe");
    put(&store, "probe", 1, &tags, Some(stamp));
    assert!(is_hit(&store, "probe"), "a new key gets in");
    store.invalidate_tags(&tags).into_ready().unwrap().unwrap();
    assert!(!is_hit(&store, "probe"));
}

#[test]
fn forgotten_invalidations_never_resurrect_an_entry() {
    let store = MemoryStore::<u64>::with_invalidation_records(100, 16);
    let tags = ["victim".to_owned()];
    let stamp = stamp_of(&store, "k");
    put(&store, "k", 1, &tags, Some(stamp));
    store.invalidate_tags(&tags).into_ready().unwrap().unwrap();
    // Push the victim's record out of the table.
    for i in 0..1_000 {
        store
            .invalidate_tags(&[format!("noise:{i}")])
            .into_ready()
            .unwrap()
            .unwrap();
    }
    assert!(store.invalidation_records() <= 16);
    assert!(!is_hit(&store, "k"), "the entry stays dead");
    assert_eq!(
        put(&store, "k", 2, &tags, Some(stamp)),
        PutOutcome::Superseded,
        "a late fill stays out"
    );
    let fresh = stamp_of(&store, "k");
    assert_eq!(put(&store, "k", 3, &tags, Some(fresh)), PutOutcome::Stored);
    assert!(is_hit(&store, "k"));
}

#[test]
fn a_put_stamped_before_an_invalidation_is_superseded() {
    let store = MemoryStore::<u64>::new(100);
    let tag = ["guild:1".to_owned()];
    let stamp = stamp_of(&store, "roles");
    store.invalidate_tags(&tag).into_ready().unwrap().unwrap();
    assert_eq!(
        put(&store, "roles", 1, &tag, Some(stamp)),
        PutOutcome::Superseded
    );
    assert!(!is_hit(&store, "roles"));
    // Other tags are unaffected by that invalidation.
    assert_eq!(
        put(&store, "channels", 1, &["guild:2".to_owned()], Some(stamp)),
        PutOutcome::Stored
    );

    let stamp = stamp_of(&store, "member");
    store
        .remove(&CacheKey::from("member"))
        .into_ready()
        .unwrap()
        .unwrap();
    assert_eq!(
        put(&store, "member", 1, &[], Some(stamp)),
        PutOutcome::Superseded
    );
    // A value returned by a write ("now") is stored.
    assert_eq!(put(&store, "member", 2, &[], None), PutOutcome::Stored);
}

#[tokio::test(start_paused = true)]
async fn each_entry_has_its_own_ttl() {
    let store = MemoryStore::<u64>::new(100);
    for (key, secs) in [("short", 10), ("long", 100)] {
        let entry = PutEntry {
            value: secs,
            ttl: Duration::from_secs(secs),
            stale: cache_core::StalePeriods::NONE,
            tags: vec![],
            stamp: None,
        };
        store.put(&CacheKey::from(key), entry).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!is_hit(&store, "short"));
    assert!(is_hit(&store, "long"));
    tokio::time::advance(Duration::from_secs(90)).await;
    assert!(!is_hit(&store, "long"));
}

#[test]
fn clear_empties_the_store_and_beats_fills_in_flight() {
    let store = MemoryStore::<u64>::new(100);
    let stamp = stamp_of(&store, "a");
    put(&store, "a", 1, &[], Some(stamp));
    store.clear().into_ready().unwrap().unwrap();
    assert!(!is_hit(&store, "a"));
    assert_eq!(
        put(&store, "b", 1, &[], Some(stamp)),
        PutOutcome::Superseded
    );
}

#[test]
fn concurrent_readers_and_invalidators_agree() {
    // Threads hammer one key with fills and invalidations; after each invalidation returns, no reader
    // may see a value whose fill started before it.
    let store = MemoryStore::<u64>::new(1_000);
    let tag = vec!["hot".to_owned()];
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..20_000 {
                    let stamp = stamp_of(&store, "hot");
                    put(&store, "hot", stamp.get(), &tag, Some(stamp));
                }
            });
        }
        scope.spawn(|| {
            for _ in 0..2_000 {
                store.invalidate_tags(&tag).into_ready().unwrap().unwrap();
                let floor = stamp_of(&store, "other").get();
                // Any hit now must come from a fill stamped at or after this invalidation.
                if let Lookup::Hit { value, .. } = get(&store, "hot") {
                    assert!(
                        value >= floor,
                        "stale value {value} after invalidation at {floor}"
                    );
                }
            }
        });
    });
}

#[test]
fn concurrent_writers_keep_the_count_exact_and_within_the_cap() {
    // Two threads insert, overwrite, remove and read 3,000 keys in a store of 500 while a third checks
    // the cap; once they stop, the count must be exactly the number of keys that still hit.
    let store = MemoryStore::<u64>::new(500);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..2u64)
            .map(|thread| {
                let store = &store;
                scope.spawn(move || {
                    let mut seed = thread + 1;
                    for _ in 0..100_000 {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let key = format!("k{}", (seed >> 33) % 3_000);
                        match (seed >> 20) % 8 {
                            0 => store
                                .remove(&CacheKey::from(key.as_str()))
                                .into_ready()
                                .unwrap()
                                .unwrap(),
                            1..=4 => {
                                put(store, &key, seed, &[], None);
                            }
                            _ => {
                                get(store, &key);
                            }
                        }
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(
                    store.entry_count() <= 500,
                    "entries: {}",
                    store.entry_count()
                );
            }
        });
        let ended: Vec<_> = writers.into_iter().map(|writer| writer.join()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in ended {
            if let Err(panic) = writer {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let hits = (0..3_000)
        .filter(|i| is_hit(&store, &format!("k{i}")))
        .count() as u64;
    assert_eq!(store.entry_count(), hits);
    assert!(hits > 400, "a full store after the churn: {hits}");
}
