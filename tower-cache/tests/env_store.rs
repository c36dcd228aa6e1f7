//! The store chooser: Redis when `REDIS_URL` is set, memory otherwise, bad settings named.

use std::time::Duration;

use redis_test_server::RedisServer;
use tower_cache::store::{CacheKey, PutEntry, Store};
use tower_cache::EnvStore;

#[tokio::test]
async fn env_store_picks_redis_when_redis_url_is_set() {
    let server = RedisServer::start();
    let url = server.url();
    let store = EnvStore::<String>::from_env_source(&[
        ("REDIS_URL", url.as_str()),
        ("CACHE_KEY_PREFIX", "env:"),
    ])
    .unwrap();
    assert_eq!(store.backend(), "redis");
    let entry = PutEntry {
        value: "v".to_owned(),
        ttl: Duration::from_secs(5),
        stale: tower_cache::StalePeriods::NONE,
        tags: vec![],
        stamp: None,
    };
    store.put(&CacheKey::from("k"), entry).await.unwrap();
    assert_eq!(
        server.command(&["EXISTS", "{env:}:e:k"]),
        "1",
        "written under the configured prefix"
    );

    let memory = EnvStore::<String>::from_env_source(&[("REDIS_URL", "")]).unwrap();
    assert_eq!(memory.backend(), "memory");

    let error = EnvStore::<String>::from_env_source(&[("REDIS_URL", "htp://user:pw@host")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("REDIS_URL") && !error.contains("pw"),
        "{error}"
    );
    let error = EnvStore::<String>::from_env_source(&[
        ("REDIS_URL", url.as_str()),
        ("CACHE_REDIS_TIMEOUT_MS", "soon"),
    ])
    .unwrap_err()
    .to_string();
    assert!(error.contains("CACHE_REDIS_TIMEOUT_MS"), "{error}");
}

#[tokio::test]
async fn env_store_picks_a_cluster_when_redis_cluster_urls_is_set() {
    let cluster = redis_test_server::RedisCluster::start();
    let seeds = cluster.urls()[..2].join(", ");
    let store = EnvStore::<String>::from_env_source(&[
        ("REDIS_CLUSTER_URLS", seeds.as_str()),
        ("CACHE_KEY_PREFIX", "envc:"),
        ("CACHE_REDIS_CLUSTER_GROUPS", "8"),
    ])
    .unwrap();
    assert_eq!(store.backend(), "redis");
    for id in 0..64 {
        let entry = PutEntry {
            value: format!("v{id}"),
            ttl: Duration::from_secs(5),
            stale: tower_cache::StalePeriods::NONE,
            tags: vec![],
            stamp: None,
        };
        store
            .put(&CacheKey::from(format!("k{id}")), entry)
            .await
            .unwrap();
    }
    // Spread over the masters (the seeds named two nodes; the client found the rest), under the
    // configured prefix's eight groups.
    let holding: Vec<u16> = cluster
        .masters()
        .into_iter()
        .filter(|&port| {
            !cluster
                .node_ref(port)
                .command(&["KEYS", "{envc:#*}:e:*"])
                .is_empty()
        })
        .collect();
    assert_eq!(holding.len(), 3, "entries on every master");
    assert_eq!(store.ping().await.map_err(|e| e.to_string()), Ok(()));

    let error = EnvStore::<String>::from_env_source(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("REDIS_CLUSTER_URLS", "redis://:secret@127.0.0.1:2"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("REDIS_CLUSTER_URLS")
            && error.contains("not both")
            && !error.contains("secret"),
        "{error}"
    );
    for (value, named) in [
        (" , ", "REDIS_CLUSTER_URLS"),
        ("htp://x", "REDIS_CLUSTER_URLS"),
    ] {
        let error = EnvStore::<String>::from_env_source(&[("REDIS_CLUSTER_URLS", value)])
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{value}: {error}");
    }
    let error = EnvStore::<String>::from_env_source(&[
        ("REDIS_CLUSTER_URLS", seeds.as_str()),
        ("CACHE_REDIS_CLUSTER_GROUPS", "0"),
    ])
    .unwrap_err()
    .to_string();
    assert!(error.contains("CACHE_REDIS_CLUSTER_GROUPS"), "{error}");
}
