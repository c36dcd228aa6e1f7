//! Where everything lives in Redis.
//!
//! Every key starts with `{prefix}:` (on a cluster, `{prefix#n}:`, where `prefix#n` is one of the
//! prefix's [group tags](crate::cluster::group_tags); each group has all the keys below but `rl:`). The braces keep prefixes apart (a prefix cannot contain a brace,
//! so `{app}:` never matches `{app2}:`) and, on a cluster, hash all of a prefix's keys to one slot, which
//! the scripts need.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:e:<key>` | string, with the entry's TTL | an entry: envelope (codec, stamp, tags) and value |
//! | `{prefix}:epoch` | integer | the invalidation clock: advanced by every invalidation, never behind the server's time in µs |
//! | `{prefix}:inv` | sorted set, capped | `t:<tag>` / `k:<key>` scored by the clock value of their last invalidation |
//! | `{prefix}:floor` | integer | entries stamped before it are gone (set by `clear` and by trimming `inv`) |
//! | `{prefix}:c:<key>` | string, with the lease as TTL | the token of the process filling `<key>` (shared single flight) |
//! | `{prefix}:rl:...` | lists and strings with TTLs | another component's state through [`RedisScripts`](crate::RedisScripts) (the Discord rate limiter); never scanned by `clear` |
//! | `{prefix}:groups` | integer | on a cluster: the prefix's group count, the same for every process |

use cache_core::CacheKey;

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `{prefix}:`, which every key starts with.
    pub(crate) base: String,
    entry_prefix: String,
    claim_prefix: String,
    pub(crate) epoch: String,
    pub(crate) records: String,
    pub(crate) floor: String,
    pub(crate) entry_pattern: String,
}

impl Keys {
    /// The keys of the group whose hash tag is `tag`: the prefix itself on one server, one of the
    /// prefix's group tags on a cluster ([`crate::cluster::group_tags`]).
    pub(crate) fn new(tag: &str) -> Self {
        let base = format!("{{{tag}}}:");
        Self {
            base: base.clone(),
            entry_prefix: format!("{base}e:"),
            claim_prefix: format!("{base}c:"),
            epoch: format!("{base}epoch"),
            records: format!("{base}inv"),
            floor: format!("{base}floor"),
            entry_pattern: format!("{base}e:*"),
        }
    }

    pub(crate) fn entry(&self, key: &CacheKey) -> String {
        let mut name = String::with_capacity(self.entry_prefix.len() + key.len());
        name.push_str(&self.entry_prefix);
        name.push_str(key);
        name
    }
}

impl Keys {
    /// The group's invalidation state, in the order the scripts take it: clock, records, floor.
    pub(crate) fn state(&self) -> Vec<String> {
        vec![self.epoch.clone(), self.records.clone(), self.floor.clone()]
    }

    /// What every entry key of the group starts with.
    pub(crate) fn entry_base(&self) -> &str {
        &self.entry_prefix
    }

    /// Where the claim on filling `key` lives.
    pub(crate) fn claim(&self, key: &CacheKey) -> String {
        format!("{}{key}", self.claim_prefix)
    }
}

/// Name of a tag's invalidation record in `{prefix}:inv`.
pub(crate) fn tag_record(tag: &str) -> String {
    format!("t:{tag}")
}

/// Name of a key's invalidation record in `{prefix}:inv`.
pub(crate) fn key_record(key: &str) -> String {
    format!("k:{key}")
}
