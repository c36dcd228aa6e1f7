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
