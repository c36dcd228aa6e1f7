//! Configuration: CACHE_ENABLED=false is a pass-through; bad values name their variable.

mod support;

use cache_core::{CacheConfig, CacheLayer, Error, Policy};
use cache_memory::MemoryStore;
use support::Upstream;
use tower::{Layer, ServiceExt};

#[tokio::test]
async fn cache_enabled_false_passes_everything_through() {
    let config = CacheConfig::from_env_source(&[("CACHE_ENABLED", "false")]).unwrap();
    let upstream = Upstream::new();
    let policy = Policy::new(|id: &u64| Some(format!("item:{id}")));
    let layer = CacheLayer::new(MemoryStore::new(100), policy).config(&config);
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    for call in 1..=3 {
        assert_eq!(
            service.clone().oneshot(1).await.unwrap(),
            format!("value 1 #{call}")
        );
    }
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.hits, snapshot.misses, snapshot.passthrough),
        (0, 0, 3)
    );
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = CacheConfig::from_env_source(&[("UNRELATED", "x")]).unwrap();
    assert_eq!(config, CacheConfig::default());
    assert!(config.enabled);
}

#[test]
fn bad_values_are_errors_naming_the_variable() {
    let cases: [(&str, &str); 7] = [
        ("CACHE_ENABLED", "maybe"),
        ("CACHE_ENABLED", "2"),
        ("CACHE_KEY_PREFIX", "has space"),
        ("CACHE_KEY_PREFIX", "glob*"),
        ("CACHE_KEY_PREFIX", &"x".repeat(200)),
        ("CACHE_KEY_PREFIX", "tab\t"),
        ("CACHE_KEY_PREFIX", "{brace}"),
    ];
    for (variable, value) in cases {
        let error = CacheConfig::from_env_source(&[(variable, value)]).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig { variable: v, .. } if v == variable),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(variable) && message.contains(&format!("{value:?}")),
            "{message}"
        );
    }
}

#[test]
fn memory_size_must_be_a_positive_whole_number() {
    for bad in ["0", "-5", "ten", "1e3"] {
        let error =
            MemoryStore::<String>::from_env_source(&[("CACHE_MEMORY_SIZE", bad)]).unwrap_err();
        assert!(error.to_string().contains("CACHE_MEMORY_SIZE"), "{error}");
    }
    let store = MemoryStore::<String>::from_env_source(&[("CACHE_MEMORY_SIZE", "250")]).unwrap();
    assert_eq!(store.capacity(), 250);
}

#[test]
fn good_values_are_accepted() {
    for (value, enabled) in [("true", true), ("0", false), ("NO", false), ("On", true)] {
        let config = CacheConfig::from_env_source(&[("CACHE_ENABLED", value)]).unwrap();
        assert_eq!(config.enabled, enabled, "{value}");
    }
    let config = CacheConfig::from_env_source(&[("CACHE_KEY_PREFIX", "bot-1:cache:")]).unwrap();
    assert_eq!(config.key_prefix, "bot-1:cache:");
}

#[test]
fn config_keeps_timeouts_set_in_code_unless_the_environment_sets_them() {
    use std::time::Duration;
    let layer = || {
        CacheLayer::new(
            MemoryStore::<u32>::new(10),
            Policy::new(|n: &u32| Some(n.to_string())),
        )
        .soft_timeout(Duration::from_millis(300))
    };
    let unset = CacheConfig::from_env_source(&[("CACHE_ENABLED", "true")]).unwrap();
    let kept = format!("{:?}", layer().config(&unset));
    assert!(kept.contains("soft_timeout: Some(300ms)"), "{kept}");
    assert!(kept.contains("hard_timeout: None"), "{kept}");

    let set = CacheConfig::from_env_source(&[
        ("CACHE_SOFT_TIMEOUT_MS", "50"),
        ("CACHE_HARD_TIMEOUT_MS", "2000"),
    ])
    .unwrap();
    let overridden = format!("{:?}", layer().config(&set));
    assert!(
        overridden.contains("soft_timeout: Some(50ms)"),
        "{overridden}"
    );
    assert!(
        overridden.contains("hard_timeout: Some(2s)"),
        "{overridden}"
    );

    // Zero turns off what the code set.
    let off = CacheConfig::from_env_source(&[("CACHE_SOFT_TIMEOUT_MS", "0")]).unwrap();
    let off = format!("{:?}", layer().config(&off));
    assert!(off.contains("soft_timeout: None"), "{off}");

    let bad = CacheConfig::from_env_source(&[("CACHE_SOFT_TIMEOUT_MS", "fast")]).unwrap_err();
    assert!(bad.to_string().contains("CACHE_SOFT_TIMEOUT_MS"), "{bad}");
}
