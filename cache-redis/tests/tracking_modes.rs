//! The consistency guarantees hold with client tracking (hits are plain `GET`s, Redis pushes clock
//! changes) and without it (hits fetch the clock with `MGET`): each scenario runs in both modes, across
//! two independent store instances standing for two processes.

use std::time::Duration;

use cache_core::{CacheKey, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store};
use cache_redis::{RedisOptions, RedisStore};
use redis_test_server::RedisServer;

fn store(server: &RedisServer, tracking: bool) -> RedisStore<String> {
    let options = RedisOptions::default()
        .timeout(Duration::from_secs(2))
        .client_tracking(tracking);
    RedisStore::connect(&server.url(), options).unwrap()
}

fn entry(value: &str, tags: &[&str], stamp: Option<FillStamp>) -> PutEntry<String> {
    let tags = tags.iter().map(|tag| (*tag).to_owned()).collect();
    PutEntry {
        value: value.to_owned(),
        ttl: Duration::from_secs(60),
        stale: cache_core::StalePeriods::NONE,
        tags,
        stamp,
    }
}

async fn lookup(store: &RedisStore<String>, key: &str) -> Lookup<String> {
    store.get(&CacheKey::from(key)).await.unwrap()
}

async fn fill(store: &RedisStore<String>, key: &str, value: &str, tags: &[&str]) {
    let Lookup::Miss { stamp } = lookup(store, key).await else {
        panic!("{key} should miss")
    };
    let outcome = store
        .put(&CacheKey::from(key), entry(value, tags, Some(stamp)))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Stored);
}

async fn is_hit(store: &RedisStore<String>, key: &str) -> bool {
    matches!(lookup(store, key).await, Lookup::Hit { .. })
}

async fn invalidations_reach_the_other_process_at_its_next_read(tracking: bool) {
    let server = RedisServer::start();
    let (here, there) = (store(&server, tracking), store(&server, tracking));
    for round in 0..20 {
        let key = format!("k{round}");
        fill(&here, &key, "v", &["t"]).await;
        assert!(is_hit(&there, &key).await);
        here.invalidate_tags(&["t".to_owned()]).await.unwrap();
        // No wait: the very next read elsewhere must not see it.
        assert!(
            !is_hit(&there, &key).await,
            "round {round}: served after the invalidation returned"
        );
        assert!(!is_hit(&here, &key).await);
    }
}

async fn a_late_fill_from_before_an_invalidation_never_lands(tracking: bool) {
    let server = RedisServer::start();
    let (filler, invalidator) = (store(&server, tracking), store(&server, tracking));
    // Warm both views.
    assert!(!is_hit(&filler, "warm").await);
    assert!(!is_hit(&invalidator, "warm").await);
    for round in 0..20 {
        let key = format!("k{round}");
        let Lookup::Miss { stamp } = lookup(&filler, &key).await else {
            panic!("miss expected")
        };
        invalidator
            .invalidate_tags(&["t".to_owned()])
            .await
            .unwrap();
        let outcome = filler
            .put(
                &CacheKey::from(key.as_str()),
                entry("old", &["t"], Some(stamp)),
            )
            .await
            .unwrap();
        assert_eq!(outcome, PutOutcome::Superseded, "round {round}");
        assert!(!is_hit(&invalidator, &key).await);
    }
}

#[tokio::test]
async fn invalidations_reach_the_other_process_with_tracking() {
    invalidations_reach_the_other_process_at_its_next_read(true).await;
}

#[tokio::test]
async fn invalidations_reach_the_other_process_without_tracking() {
    invalidations_reach_the_other_process_at_its_next_read(false).await;
}

#[tokio::test]
async fn late_fills_never_land_with_tracking() {
    a_late_fill_from_before_an_invalidation_never_lands(true).await;
}

#[tokio::test]
async fn late_fills_never_land_without_tracking() {
    a_late_fill_from_before_an_invalidation_never_lands(false).await;
}

#[tokio::test]
async fn a_server_restart_loses_no_invalidation_with_tracking() {
    let mut server = RedisServer::start();
    // One connection each, so that the first operation after the restart retires the only stale one.
    let one = |server: &RedisServer| {
        let options = RedisOptions::default()
            .timeout(Duration::from_secs(2))
            .pool_size(1);
        RedisStore::<String>::connect(&server.url(), options).unwrap()
    };
    let (here, there) = (one(&server), one(&server));
    fill(&here, "before", "v", &["t"]).await;
    server.restart();
    // The old connections are gone; the next operations reconnect (and re-arm tracking) or fail open.
    for _ in 0..100 {
        if here.invalidate_tags(&["warm".to_owned()]).await.is_ok() && lookup_ok(&there, "x").await
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fill(&here, "after", "v", &["t"]).await;
    assert!(is_hit(&there, "after").await);
    here.invalidate_tags(&["t".to_owned()]).await.unwrap();
    assert!(
        !is_hit(&there, "after").await,
        "the re-armed connection heard the invalidation"
    );
}

async fn lookup_ok(store: &RedisStore<String>, key: &str) -> bool {
    store.get(&CacheKey::from(key)).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_concurrent_load_no_read_after_an_invalidation_sees_the_old_entry() {
    let server = RedisServer::start();
    let (here, there) = (store(&server, true), store(&server, true));
    // Background readers keep both processes' connections busy, so notices and replies interleave.
    let noise: Vec<_> = (0..4)
        .map(|i| {
            let there = there.clone();
            tokio::spawn(async move {
                for j in 0..2_000 {
                    let _ = there
                        .get(&CacheKey::from(format!("noise{}", (i * j) % 50)))
                        .await;
                }
            })
        })
        .collect();
    for round in 0..300 {
        let key = format!("k{round}");
        fill(&here, &key, "v", &["t"]).await;
        here.invalidate_tags(&["t".to_owned()]).await.unwrap();
        assert!(
            !is_hit(&there, &key).await,
            "round {round}: served after the invalidation returned"
        );
    }
    for task in noise {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_user_not_allowed_to_track_still_gets_consistent_reads() {
    let server = RedisServer::start();
    // An ACL user who may run everything but CLIENT: tracking is refused on each connection.
    server.command(&[
        "ACL", "SETUSER", "limited", "on", ">secret", "~*", "&*", "+@all", "-client",
    ]);
    let url = server.url().replace("redis://", "redis://limited:secret@");
    let limited = || {
        let options = RedisOptions::default().timeout(Duration::from_secs(2));
        RedisStore::<String>::connect(&url, options).unwrap()
    };
    let (here, there) = (limited(), limited());
    for round in 0..5 {
        let key = format!("k{round}");
        fill(&here, &key, "v", &["t"]).await;
        assert!(
            is_hit(&there, &key).await,
            "round {round}: cached without tracking"
        );
        here.invalidate_tags(&["t".to_owned()]).await.unwrap();
        assert!(
            !is_hit(&there, &key).await,
            "round {round}: served after the invalidation returned"
        );
    }
}
