//! `rediss://` against a private TLS-only server, and a TLS-only cluster, with a certificate authority
//! made for the test.

use std::time::Duration;

use cache_core::{CacheKey, Invalidate, Lookup, PutEntry, PutOutcome, Store};
use cache_redis::{RedisOptions, RedisStore};
use redis_test_server::RedisServer;

#[tokio::test]
async fn rediss_urls_connect_with_tls() {
    let server = RedisServer::start_tls();
    assert!(server.url().starts_with("rediss://"));
    let ca = server.tls().unwrap().ca_cert_pem.clone();
    let options = RedisOptions::default()
        .timeout(Duration::from_secs(5))
        .tls_ca_pem(ca);
    let store = RedisStore::<String>::connect(&server.url(), options).unwrap();

    let key = CacheKey::from("greeting");
    let entry = PutEntry {
        value: "hello over TLS".to_owned(),
        ttl: Duration::from_secs(60),
        stale: cache_core::StalePeriods::NONE,
        tags: vec![],
        stamp: None,
    };
    assert_eq!(store.put(&key, entry).await.unwrap(), PutOutcome::Stored);
    let Lookup::Hit { value, .. } = store.get(&key).await.unwrap() else {
        panic!("expected a hit")
    };
    assert_eq!(value, "hello over TLS");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_store_error_not_a_hang() {
    let server = RedisServer::start_tls();
    // The system roots do not know the test's authority.
    let options = RedisOptions::default().timeout(Duration::from_millis(500));
    let store = RedisStore::<String>::connect(&server.url(), options).unwrap();
    assert!(store.get(&CacheKey::from("k")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_reached_with_rediss_seeds() {
    let cluster = redis_test_server::RedisCluster::start_tls();
    let seeds = cluster.urls();
    assert!(seeds.iter().all(|url| url.starts_with("rediss://")));
    let ca = cluster.tls().unwrap().ca_cert_pem.clone();
    let options = RedisOptions::default()
        .timeout(Duration::from_secs(5))
        .tls_ca_pem(ca);
    let store = RedisStore::<String>::connect_cluster(&seeds[..1], options.clone()).unwrap();
    let other = RedisStore::<String>::connect_cluster(&seeds[3..4], options).unwrap();
    for id in 0..50 {
        let key = CacheKey::from(format!("k{id}"));
        let entry = PutEntry {
            value: format!("v{id}"),
            ttl: Duration::from_secs(60),
            stale: cache_core::StalePeriods::NONE,
            tags: vec!["t".to_owned()],
            stamp: None,
        };
        assert_eq!(store.put(&key, entry).await.unwrap(), PutOutcome::Stored);
    }
    for id in 0..50 {
        let Lookup::Hit { value, .. } = other.get(&CacheKey::from(format!("k{id}"))).await.unwrap()
        else {
            panic!("k{id} should be shared over TLS")
        };
        assert_eq!(value, format!("v{id}"));
    }
    // An invalidation reaches every shard and waits for a replica, over TLS too.
    other.invalidate_tags(&["t".to_owned()]).await.unwrap();
    assert!(matches!(
        store.get(&CacheKey::from("k7")).await.unwrap(),
        Lookup::Miss { .. }
    ));
    // The nodes speak TLS only: the cluster's masters hold the entries.
    let held: usize = cluster
        .masters()
        .into_iter()
        .map(|port| {
            let keys = cluster.node_ref(port).command(&["KEYS", "{cache:#*}:e:*"]);
            keys.lines().filter(|line| !line.is_empty()).count()
        })
        .sum();
    assert_eq!(held, 50);
}
