//! Settings of the layer, from the environment or from code.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CACHE_ENABLED` | `true` | `false` turns the layer into a pass-through |
//! | `CACHE_KEY_PREFIX` | `cache:` | scopes every key a shared store writes; stores read it from here |
//! | `CACHE_SOFT_TIMEOUT_MS` | off | answer with a stale value when the inner call takes longer ([`CacheLayer::soft_timeout`](crate::CacheLayer::soft_timeout)) |
//! | `CACHE_HARD_TIMEOUT_MS` | off | give up on the inner call of a read after this long ([`CacheLayer::hard_timeout`](crate::CacheLayer::hard_timeout)) |
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

use std::time::Duration;

use crate::Error;
use env::{Environment, ProcessEnv};

/// Name of the variable that turns caching on or off.
pub const CACHE_ENABLED: &str = "CACHE_ENABLED";
/// Name of the variable that scopes every stored key.
pub const CACHE_KEY_PREFIX: &str = "CACHE_KEY_PREFIX";
/// Variable of [`CacheConfig::soft_timeout`], in milliseconds; `0` is off, unset keeps the layer's own.
pub const CACHE_SOFT_TIMEOUT_MS: &str = "CACHE_SOFT_TIMEOUT_MS";
/// Variable of [`CacheConfig::hard_timeout`], in milliseconds; `0` is off, unset keeps the layer's own.
pub const CACHE_HARD_TIMEOUT_MS: &str = "CACHE_HARD_TIMEOUT_MS";

const MAX_PREFIX_LEN: usize = 128;

/// Settings shared by the layer and the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// When false the layer passes every request straight to the inner service.
    pub enabled: bool,
    /// Prefix of every key written to a shared store (`CACHE_KEY_PREFIX`).
    pub key_prefix: String,
    /// See [`CacheLayer::soft_timeout`](crate::CacheLayer::soft_timeout) (`CACHE_SOFT_TIMEOUT_MS`).
    /// `None` leaves the layer's setting as it is; `Some(Duration::ZERO)` turns it off.
    pub soft_timeout: Option<Duration>,
    /// See [`CacheLayer::hard_timeout`](crate::CacheLayer::hard_timeout) (`CACHE_HARD_TIMEOUT_MS`).
    /// `None` leaves the layer's setting as it is; `Some(Duration::ZERO)` turns it off.
    pub hard_timeout: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key_prefix: "cache:".to_owned(),
            soft_timeout: None,
            hard_timeout: None,
        }
    }
}

impl CacheConfig {
    /// Reads `CACHE_ENABLED`, `CACHE_KEY_PREFIX` and the timeouts from the process environment.
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
        let timeout = |name| match env.var(name)? {
            Some(_) => env::read_millis(env, name, Duration::ZERO).map(Some),
            None => Ok(None),
        };
        Ok(Self {
            enabled,
            key_prefix,
            soft_timeout: timeout(CACHE_SOFT_TIMEOUT_MS)?,
            hard_timeout: timeout(CACHE_HARD_TIMEOUT_MS)?,
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
