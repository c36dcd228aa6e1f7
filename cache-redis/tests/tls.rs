//! `rediss://` against a private TLS-only server with a certificate authority made for the test.

use std::time::Duration;

use cache_core::{CacheKey, Lookup, PutEntry, PutOutcome, Store};
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
