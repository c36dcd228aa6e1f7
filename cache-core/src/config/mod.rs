//! Settings of the layer, from the environment or from code.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CACHE_ENABLED` | `true` | `false` turns the layer into a pass-through |
//! | `CACHE_KEY_PREFIX` | `cache:` | scopes every key a shared store writes; stores read it from here |
//!
//! ```
//! use cache_core::CacheConfig;
//!
//! let config = CacheConfig::from_env_source(&[("CACHE_ENABLED", "no"), ("CACHE_KEY_PREFIX", "bot:")])?;
//! assert!(!config.enabled);
//! assert_eq!(config.key_prefix, "bot:");
//!
//! let err = CacheConfig::from_env_source(&[("CACHE_ENABLED", "maybe")]).unwrap_err();
//! assert!(err.to_string().contains("CACHE_ENABLED"));
//! # Ok::<(), cache_core::Error>(())
//! ```

pub mod env;

use crate::Error;
use env::{Environment, ProcessEnv};

/// Name of the variable that turns caching on or off.
pub const CACHE_ENABLED: &str = "CACHE_ENABLED";
/// Name of the variable that scopes every stored key.
pub const CACHE_KEY_PREFIX: &str = "CACHE_KEY_PREFIX";

const MAX_PREFIX_LEN: usize = 128;

/// Settings shared by the layer and the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// When false the layer passes every request straight to the inner service.
    pub enabled: bool,
    /// Prefix of every key written to a shared store (`CACHE_KEY_PREFIX`).
    pub key_prefix: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key_prefix: "cache:".to_owned(),
        }
    }
}

impl CacheConfig {
    /// Reads `CACHE_ENABLED` and `CACHE_KEY_PREFIX` from the process environment.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the variable whose value is bad.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Reads the settings from `env` (a map, a slice of pairs or [`ProcessEnv`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the variable whose value is bad.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        let defaults = Self::default();
        let enabled = env::read_bool(env, CACHE_ENABLED, defaults.enabled)?;
        let key_prefix = match env.var(CACHE_KEY_PREFIX)? {
            Some(prefix) => validate_prefix(CACHE_KEY_PREFIX, prefix)?,
            None => defaults.key_prefix,
        };
        Ok(Self {
            enabled,
            key_prefix,
        })
    }

    /// Sets whether the layer caches.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets the key prefix.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the prefix is empty, too long, or has spaces, control characters,
    /// glob characters (it is used in `SCAN MATCH` patterns) or braces (a shared store wraps it in braces
    /// so that two prefixes can never match each other's keys).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Result<Self, Error> {
        self.key_prefix = validate_prefix(CACHE_KEY_PREFIX, prefix.into())?;
        Ok(self)
    }
}

fn validate_prefix(variable: &str, prefix: String) -> Result<String, Error> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(env::invalid(
            variable,
            &prefix,
            format!("expected 1 to {MAX_PREFIX_LEN} bytes"),
        ));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "*?[]\\{}".contains(*c))
    {
        return Err(env::invalid(
            variable,
            &prefix,
            format!(
                "{bad:?} is not allowed: use letters, digits and punctuation such as ':' '-' '_'"
            ),
        ));
    }
    Ok(prefix)
}
