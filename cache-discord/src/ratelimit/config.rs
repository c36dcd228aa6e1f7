//! [`RateLimitConfig`]: the limits and bounds of [`DiscordRateLimitLayer`](super::DiscordRateLimitLayer).

use std::time::Duration;

use cache_core::config::env::{read_millis, read_secs, read_u64, Environment, ProcessEnv};

use crate::Error;

/// Requests per second a bot may send across all routes (Discord's default global limit).
pub const CACHE_DISCORD_GLOBAL_LIMIT: &str = "CACHE_DISCORD_GLOBAL_LIMIT";
/// The longest a request waits for its turn, in milliseconds.
pub const CACHE_DISCORD_MAX_WAIT_MS: &str = "CACHE_DISCORD_MAX_WAIT_MS";
/// Added to every window Discord announces, in milliseconds.
pub const CACHE_DISCORD_RATE_LIMIT_OFFSET_MS: &str = "CACHE_DISCORD_RATE_LIMIT_OFFSET_MS";
/// Invalid answers (401, 403, 429) in 10 minutes at which new requests are refused locally.
pub const CACHE_DISCORD_INVALID_REQUEST_LIMIT: &str = "CACHE_DISCORD_INVALID_REQUEST_LIMIT";
/// How long a token Discord answered 401 to is refused locally before one request probes, in seconds.
pub const CACHE_DISCORD_INVALID_TOKEN_BACKOFF: &str = "CACHE_DISCORD_INVALID_TOKEN_BACKOFF";
/// How many processes share the limits: each paces itself to its share while Redis is unreachable.
pub const CACHE_DISCORD_RATE_LIMIT_INSTANCES: &str = "CACHE_DISCORD_RATE_LIMIT_INSTANCES";

/// The window Discord counts invalid requests over before banning an address.
pub const INVALID_REQUEST_WINDOW: Duration = Duration::from_secs(600);

/// The limits the layer keeps and the bounds it gives callers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Requests per second per token across all routes (`CACHE_DISCORD_GLOBAL_LIMIT`, 50). Larger bots
    /// are granted more by Discord.
    pub global_limit: u32,
    /// The longest a request waits for its turn (`CACHE_DISCORD_MAX_WAIT_MS`, 5 s); past it the caller
    /// gets [`RateLimitError::WouldWait`](super::RateLimitError::WouldWait) and nothing is sent. A
    /// request may shorten it with a [`MaxWait`](super::MaxWait) extension.
    pub max_wait: Duration,
    /// Safety margin added to every window (`CACHE_DISCORD_RATE_LIMIT_OFFSET_MS`, 50 ms): requests
    /// paced exactly on a window's edge could reach Discord before it resets.
    pub offset: Duration,
    /// Invalid answers (401, 403, 429 but shared-scope ones) over 10 minutes at which new requests are
    /// refused locally (`CACHE_DISCORD_INVALID_REQUEST_LIMIT`, 9,000; Discord bans an address at 10,000).
    pub invalid_request_limit: u32,
    /// How long requests of a token Discord answered 401 are refused locally before one request
    /// probes again (`CACHE_DISCORD_INVALID_TOKEN_BACKOFF`, 60 s).
    pub invalid_token_backoff: Duration,
    /// Processes sharing one bot's limits (`CACHE_DISCORD_RATE_LIMIT_INSTANCES`, 1). With Redis they
    /// share one budget; while Redis is unreachable each keeps to `1/instances` of every limit.
    pub instances: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            global_limit: 50,
            max_wait: Duration::from_secs(5),
            offset: Duration::from_millis(50),
            invalid_request_limit: 9_000,
            invalid_token_backoff: Duration::from_secs(60),
            instances: 1,
        }
    }
}

impl RateLimitConfig {
    /// Reads the `CACHE_DISCORD_*` rate-limit variables from the process environment.
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is not a valid number.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env`.
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is not a valid number.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        let defaults = Self::default();
        let count = |name: &str, default: u32| -> Result<u32, Error> {
            let value = read_u64(env, name, u64::from(default), 1)?;
            Ok(u32::try_from(value).unwrap_or(u32::MAX))
        };
        Ok(Self {
            global_limit: count(CACHE_DISCORD_GLOBAL_LIMIT, defaults.global_limit)?,
            max_wait: read_millis(env, CACHE_DISCORD_MAX_WAIT_MS, defaults.max_wait)?,
            offset: read_millis(env, CACHE_DISCORD_RATE_LIMIT_OFFSET_MS, defaults.offset)?,
            invalid_request_limit: count(
                CACHE_DISCORD_INVALID_REQUEST_LIMIT,
                defaults.invalid_request_limit,
            )?,
            invalid_token_backoff: read_secs(
                env,
                CACHE_DISCORD_INVALID_TOKEN_BACKOFF,
                defaults.invalid_token_backoff,
            )?,
            instances: count(CACHE_DISCORD_RATE_LIMIT_INSTANCES, defaults.instances)?,
        })
    }

    /// Sets [`global_limit`](Self::global_limit) (at least 1).
    pub fn global_limit(mut self, per_second: u32) -> Self {
        self.global_limit = per_second.max(1);
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets [`offset`](Self::offset).
    pub fn offset(mut self, offset: Duration) -> Self {
        self.offset = offset;
        self
    }

    /// Sets [`invalid_request_limit`](Self::invalid_request_limit) (at least 1).
    pub fn invalid_request_limit(mut self, limit: u32) -> Self {
        self.invalid_request_limit = limit.max(1);
        self
    }

    /// Sets [`invalid_token_backoff`](Self::invalid_token_backoff).
    pub fn invalid_token_backoff(mut self, backoff: Duration) -> Self {
        self.invalid_token_backoff = backoff;
        self
    }

    /// Sets [`instances`](Self::instances) (at least 1).
    pub fn instances(mut self, instances: u32) -> Self {
        self.instances = instances.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_variable_and_names_a_bad_one() {
        let env = [
            (CACHE_DISCORD_GLOBAL_LIMIT, "120"),
            (CACHE_DISCORD_MAX_WAIT_MS, "250"),
            (CACHE_DISCORD_INVALID_TOKEN_BACKOFF, "5"),
            (CACHE_DISCORD_RATE_LIMIT_INSTANCES, "3"),
        ];
        let config = RateLimitConfig::from_env_source(&env).unwrap();
        assert_eq!(config.global_limit, 120);
        assert_eq!(config.max_wait, Duration::from_millis(250));
        assert_eq!(config.invalid_token_backoff, Duration::from_secs(5));
        assert_eq!(config.instances, 3);
        assert_eq!(config.invalid_request_limit, 9_000);
        for (name, value) in [
            (CACHE_DISCORD_GLOBAL_LIMIT, "0"),
            (CACHE_DISCORD_GLOBAL_LIMIT, "fifty"),
            (CACHE_DISCORD_MAX_WAIT_MS, "-1"),
            (CACHE_DISCORD_INVALID_REQUEST_LIMIT, "1e4"),
        ] {
            let error = RateLimitConfig::from_env_source(&[(name, value)]).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
