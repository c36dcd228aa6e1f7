//! `from_env` reads the real process environment. Alone in its test binary, so setting variables races
//! with nothing.

#[test]
fn from_env_reads_the_process_environment() {
    std::env::set_var("CACHE_ENABLED", "off");
    std::env::set_var("CACHE_KEY_PREFIX", "dash:");
    let config = cache_core::CacheConfig::from_env().unwrap();
    assert!(!config.enabled);
    assert_eq!(config.key_prefix, "dash:");

    std::env::set_var("CACHE_ENABLED", "perhaps");
    let error = cache_core::CacheConfig::from_env().unwrap_err().to_string();
    assert!(
        error.contains("CACHE_ENABLED") && error.contains("perhaps"),
        "{error}"
    );
}
