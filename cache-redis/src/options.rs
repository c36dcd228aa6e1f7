//! Settings of the Redis store, from code or from the environment.

use std::time::Duration;

use cache_core::config::env::{self, Environment};
use cache_core::{CacheConfig, Error};

use crate::near::{CACHE_NEAR_MAX_SILENCE_MS, CACHE_NEAR_SIZE, DEFAULT_NEAR_MAX_SILENCE};

/// Name of the variable holding the Redis URL; empty or unset selects the in-process store.
pub const REDIS_URL: &str = "REDIS_URL";
/// Name of the variable holding the seed nodes of a Redis Cluster, comma-separated URLs
/// (`redis://host:port,redis://host2:port`, or `rediss://` for TLS); set instead of [`REDIS_URL`].
pub const REDIS_CLUSTER_URLS: &str = "REDIS_CLUSTER_URLS";
/// Name of the variable setting the number of invalidation groups a prefix is split into on a cluster.
pub const CACHE_REDIS_CLUSTER_GROUPS: &str = "CACHE_REDIS_CLUSTER_GROUPS";
/// Name of the variable setting how many replicas must acknowledge an invalidation on a cluster.
pub const CACHE_REDIS_REPLICA_ACKS: &str = "CACHE_REDIS_REPLICA_ACKS";
/// Name of the variable setting the per-operation timeout, in milliseconds.
pub const CACHE_REDIS_TIMEOUT_MS: &str = "CACHE_REDIS_TIMEOUT_MS";
/// Name of the variable setting the number of pooled (multiplexed) connections.
pub const CACHE_REDIS_POOL_SIZE: &str = "CACHE_REDIS_POOL_SIZE";
/// Name of the variable capping the invalidation records kept in Redis.
pub const CACHE_REDIS_INVALIDATION_RECORDS: &str = "CACHE_REDIS_INVALIDATION_RECORDS";
/// Name of the variable naming a PEM file of certificate authorities to trust for `rediss://`.
pub const CACHE_REDIS_TLS_CA_FILE: &str = "CACHE_REDIS_TLS_CA_FILE";

/// Default per-operation timeout: loopback answers in well under a millisecond, a same-zone managed
/// Redis in one or two; past this the request goes to the inner service instead.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// Default number of pooled connections. Each is multiplexed: concurrent requests share it, and one
/// connection pipelines them best. Measured with 64 tasks of hits on two cores: 305k hits/s with one
/// connection, 230k with two, 190k with four (`benches/README.md`). More connections help when large
/// values would hold up the small ones queued behind them on a single socket.
pub const DEFAULT_POOL_SIZE: u32 = 1;
/// Default cap of the invalidation records.
pub const DEFAULT_INVALIDATION_RECORDS: usize = 10_000;
/// Default number of invalidation groups on a cluster: enough that they spread within a few percent
/// of even over up to a dozen masters that split the slots evenly (32 groups on 3 masters: 11, 11 and
/// 10), few enough that invalidating a tag (one script per group) stays cheap.
pub const DEFAULT_CLUSTER_GROUPS: u16 = 32;
/// Most invalidation groups a cluster store accepts.
pub const MAX_CLUSTER_GROUPS: u16 = 1_024;

/// Settings of a [`RedisStore`](crate::RedisStore).
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prefix of every key (`CACHE_KEY_PREFIX`, default `cache:`).
    pub key_prefix: String,
    /// Longest wait for one store operation, connection checkout included (`CACHE_REDIS_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Pooled multiplexed connections (`CACHE_REDIS_POOL_SIZE`).
    pub pool_size: u32,
    /// Invalidations of tags and keys remembered (`CACHE_REDIS_INVALIDATION_RECORDS`). Beyond it the
    /// oldest are forgotten and entries filled before them count as gone: extra misses, never stale hits.
    pub max_invalidation_records: usize,
    /// PEM certificate authorities to trust for `rediss://`, instead of the system's
    /// (`CACHE_REDIS_TLS_CA_FILE` names a file).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Ask Redis to push a notice when the invalidation clock changes, so that a hit is a plain `GET`
    /// (default). Off, or on a server without RESP3 client tracking, every read fetches the clock
    /// alongside the entry (`MGET`). Both keep the same guarantees.
    pub client_tracking: bool,
    /// Entries copied in process in front of Redis (`CACHE_NEAR_SIZE`; 0, the default, turns the near
    /// tier off). A near hit costs no round trip; see the [crate docs](crate#near-tier) for when copies
    /// stop being served. Needs [`client_tracking`](Self::client_tracking).
    pub near_capacity: u64,
    /// How long near copies stay servable after the last round trip that proved this process knows every
    /// invalidation (`CACHE_NEAR_MAX_SILENCE_MS`, default 1 s): the bound on a stale near read when the
    /// connection goes silent without closing. Hits renew the proof in the background halfway through.
    pub near_max_silence: Duration,
    /// On a cluster, the invalidation groups a prefix is split into (`CACHE_REDIS_CLUSTER_GROUPS`,
    /// default 32, at most 1,024): entries spread over the groups' slots, and a tag invalidation writes
    /// one record per group. **Every process sharing the prefix must use the same number**; a
    /// process that finds another number recorded in the cluster refuses to cache (it passes through).
    /// To change it, deploy the new number with a new `CACHE_KEY_PREFIX`.
    pub cluster_groups: u16,
    /// On a cluster, the replicas that must acknowledge an invalidation or a clear before it returns
    /// (`CACHE_REDIS_REPLICA_ACKS`, default 1; 0 for a cluster without replicas). Redis replicates
    /// asynchronously: without this, a master failing just after an invalidation could lose it, and
    /// the promoted replica would serve the old entry.
    pub replica_acks: u32,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: CacheConfig::default().key_prefix,
            timeout: DEFAULT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            max_invalidation_records: DEFAULT_INVALIDATION_RECORDS,
            tls_ca_pem: None,
            client_tracking: true,
            near_capacity: 0,
            near_max_silence: DEFAULT_NEAR_MAX_SILENCE,
            cluster_groups: DEFAULT_CLUSTER_GROUPS,
            replica_acks: 1,
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("max_invalidation_records", &self.max_invalidation_records)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|_| "<set>"))
            .field("client_tracking", &self.client_tracking)
            .field("near_capacity", &self.near_capacity)
            .field("near_max_silence", &self.near_max_silence)
            .field("cluster_groups", &self.cluster_groups)
            .field("replica_acks", &self.replica_acks)
            .finish()
    }
}

impl RedisOptions {
    /// Reads every setting above from `env`, with the prefix from `CACHE_KEY_PREFIX`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the variable whose value is bad, or an unreadable CA file.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        let defaults = Self::default();
        let pool_size = env::read_u64(env, CACHE_REDIS_POOL_SIZE, defaults.pool_size.into(), 1)?;
        let pool_size = u32::try_from(pool_size).map_err(|_| {
            env::invalid(CACHE_REDIS_POOL_SIZE, &pool_size.to_string(), "too large")
        })?;
        let records = env::read_u64(
            env,
            CACHE_REDIS_INVALIDATION_RECORDS,
            defaults.max_invalidation_records as u64,
            2,
        )?;
        let tls_ca_pem = match env.var(CACHE_REDIS_TLS_CA_FILE)? {
            None => None,
            Some(path) => Some(std::fs::read(&path).map_err(|error| {
                env::invalid(
                    CACHE_REDIS_TLS_CA_FILE,
                    &path,
                    format!("cannot read the file: {error}"),
                )
            })?),
        };
        Ok(Self {
            key_prefix: CacheConfig::from_env_source(env)?.key_prefix,
            timeout: env::read_millis(env, CACHE_REDIS_TIMEOUT_MS, defaults.timeout)?,
            pool_size,
            max_invalidation_records: usize::try_from(records).unwrap_or(usize::MAX),
            tls_ca_pem,
            cluster_groups: read_groups(env)?,
            replica_acks: u32::try_from(env::read_u64(
                env,
                CACHE_REDIS_REPLICA_ACKS,
                defaults.replica_acks.into(),
                0,
            )?)
            .map_err(|_| env::invalid(CACHE_REDIS_REPLICA_ACKS, "", "too large"))?,
            client_tracking: defaults.client_tracking,
            near_capacity: env::read_u64(env, CACHE_NEAR_SIZE, defaults.near_capacity, 0)?,
            near_max_silence: env::read_positive_millis(
                env,
                CACHE_NEAR_MAX_SILENCE_MS,
                defaults.near_max_silence,
            )?,
        })
    }

    /// Sets the key prefix.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a prefix [`CacheConfig::key_prefix`] rejects.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Result<Self, Error> {
        self.key_prefix = CacheConfig::default().key_prefix(prefix)?.key_prefix;
        Ok(self)
    }

    /// Sets the per-operation timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the number of pooled connections (at least 1).
    #[must_use]
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Sets the cap of invalidation records (at least 2).
    #[must_use]
    pub fn max_invalidation_records(mut self, records: usize) -> Self {
        self.max_invalidation_records = records.max(2);
        self
    }

    /// Turns client tracking on or off (see [`client_tracking`](Self::client_tracking)).
    #[must_use]
    pub fn client_tracking(mut self, on: bool) -> Self {
        self.client_tracking = on;
        self
    }

    /// Keeps up to `entries` copies in process in front of Redis (0 turns the near tier off).
    #[must_use]
    pub fn near_capacity(mut self, entries: u64) -> Self {
        self.near_capacity = entries;
        self
    }

    /// Sets how long near copies stay servable after the view was last proven current (at least 1 ms).
    #[must_use]
    pub fn near_max_silence(mut self, silence: Duration) -> Self {
        self.near_max_silence = silence.max(Duration::from_millis(1));
        self
    }

    /// Sets the number of invalidation groups on a cluster (1 to 1,024).
    #[must_use]
    pub fn cluster_groups(mut self, groups: u16) -> Self {
        self.cluster_groups = groups.clamp(1, MAX_CLUSTER_GROUPS);
        self
    }

    /// Sets how many replicas must acknowledge an invalidation on a cluster (0: none waited for).
    #[must_use]
    pub fn replica_acks(mut self, replicas: u32) -> Self {
        self.replica_acks = replicas;
        self
    }

    /// Trusts these PEM certificate authorities for `rediss://`.
    #[must_use]
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca_pem = Some(pem.into());
        self
    }
}

fn read_groups(env: &impl Environment) -> Result<u16, Error> {
    let groups = env::read_u64(
        env,
        CACHE_REDIS_CLUSTER_GROUPS,
        DEFAULT_CLUSTER_GROUPS.into(),
        1,
    )?;
    u16::try_from(groups)
        .ok()
        .filter(|&groups| groups <= MAX_CLUSTER_GROUPS)
        .ok_or_else(|| {
            env::invalid(
                CACHE_REDIS_CLUSTER_GROUPS,
                &groups.to_string(),
                format!("expected 1 to {MAX_CLUSTER_GROUPS}"),
            )
        })
}

/// The seed URLs of `REDIS_CLUSTER_URLS`, split on commas; `None` when unset or empty.
///
/// # Errors
/// [`Error::InvalidConfig`] naming the variable when it holds only separators.
pub fn cluster_urls(env: &impl Environment) -> Result<Option<Vec<String>>, Error> {
    let Some(value) = env.var(REDIS_CLUSTER_URLS)? else {
        return Ok(None);
    };
    let urls: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(env::invalid(
            REDIS_CLUSTER_URLS,
            &value,
            "expected comma-separated node URLs",
        ));
    }
    Ok(Some(urls))
}

/// The URL with any password replaced, for errors and traces.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://<credentials>@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("rediss://user:hunter2@cache.example:6380/0"),
            "rediss://<credentials>@cache.example:6380/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            (CACHE_REDIS_TIMEOUT_MS, "fast"),
            (CACHE_REDIS_POOL_SIZE, "0"),
            (CACHE_REDIS_INVALIDATION_RECORDS, "-1"),
            (CACHE_REDIS_TLS_CA_FILE, "/nonexistent/ca.pem"),
            (CACHE_NEAR_SIZE, "lots"),
            (CACHE_NEAR_MAX_SILENCE_MS, "0"),
            (CACHE_REDIS_CLUSTER_GROUPS, "0"),
            (CACHE_REDIS_CLUSTER_GROUPS, "5000"),
            (CACHE_REDIS_REPLICA_ACKS, "one"),
        ] {
            let error = RedisOptions::from_env_source(&[(name, value)])
                .unwrap_err()
                .to_string();
            assert!(error.contains(name), "{error}");
        }
        let options = RedisOptions::from_env_source(&[
            (CACHE_REDIS_TIMEOUT_MS, "7"),
            ("CACHE_KEY_PREFIX", "bot:"),
        ])
        .unwrap();
        assert_eq!(
            (options.timeout, options.key_prefix.as_str()),
            (Duration::from_millis(7), "bot:")
        );
    }
}
