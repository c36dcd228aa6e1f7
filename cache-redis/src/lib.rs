//! The shared [Redis](https://redis.io) store for `cache-core`: every process and instance that uses the
//! same Redis and key prefix shares one cache, its tags and its invalidations.
//!
//! ```no_run
//! use std::time::Duration;
//! use cache_core::{CacheLayer, Policy};
//! use cache_redis::{RedisOptions, RedisStore};
//!
//! let options = RedisOptions::default().key_prefix("dashboard:")?.timeout(Duration::from_millis(20));
//! let store = RedisStore::<String>::connect("rediss://default:secret@cache.example.com:6380", options)?;
//! let layer = CacheLayer::new(store, Policy::new(|id: &u64| Some(format!("user:{id}"))));
//! # let _ = layer;
//! # Ok::<(), cache_core::Error>(())
//! ```
//!
//! Most applications depend on `tower-cache` and call its `EnvStore::from_env`: Redis when `REDIS_URL`
//! is set, a [Redis Cluster](#redis-cluster) when `REDIS_CLUSTER_URLS` is, the in-process store
//! otherwise.
//!
//! # Settings
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `REDIS_URL` | unset: in-process store | `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS |
//! | `REDIS_CLUSTER_URLS` | unset | instead of `REDIS_URL`: seed nodes of a Redis Cluster, comma-separated URLs |
//! | `CACHE_REDIS_CLUSTER_GROUPS` | `32` | on a cluster: invalidation groups a prefix is split into (1 to 1,024; the same in every process) |
//! | `CACHE_REDIS_REPLICA_ACKS` | `1` | on a cluster: replicas that must acknowledge an invalidation before it returns (0: none) |
//! | `CACHE_KEY_PREFIX` | `cache:` | every key is `{prefix}:...`; nothing outside it is read, written or scanned |
//! | `CACHE_REDIS_TIMEOUT_MS` | `50` | longest wait for one operation; then the request goes to the inner service |
//! | `CACHE_REDIS_POOL_SIZE` | `1` | pooled connections, each multiplexed across concurrent requests |
//! | `CACHE_REDIS_INVALIDATION_RECORDS` | `10000` | invalidations remembered (see below) |
//! | `CACHE_REDIS_TLS_CA_FILE` | system roots | PEM file of the authorities to trust for `rediss://` |
//! | `CACHE_NEAR_SIZE` | `0` (off) | entries copied in process in front of Redis ([near tier](#near-tier)) |
//! | `CACHE_NEAR_MAX_SILENCE_MS` | `1000` | how long copies stay servable after the last round trip that proved them current |
//!
//! # How it keeps the contract
//!
//! - **A hit is one round trip of one plain command**: `GET {prefix}:e:<key>`. The entry carries its tags
//!   and the clock value its fill started at; the process checks them against its
//!   [view](#invalidations) of the invalidations.
//! - **A put is one script** that stores the entry with its TTL (`SET ... PX`) unless one of its tags or its
//!   key was invalidated after its fill started: a late fill cannot resurrect.
//! - **A write's update is one script** too: it records the update like an invalidation of the key, so
//!   fills that started before the write cannot overwrite it, and stores the entry stamped with that
//!   record; an edit of a cached entry is refused when the entry changed since it was read.
//! - **An invalidation is one script of a constant number of commands**, whatever the number of entries
//!   carrying the tag: it ticks the clock `{prefix}:epoch` and records the tick under the tag in the sorted
//!   set `{prefix}:inv`.
//! - <a id="invalidations"></a>**Invalidations reach every process at its next read.** Each connection
//!   asks Redis to push a notice when `{prefix}:epoch` changes (RESP3 `CLIENT TRACKING ... BCAST`), and
//!   Redis sends that notice ahead of the reply to any later command on the connection. A reader that
//!   finds a notice after its `GET` first fetches the newer records (one atomic pipeline, shared by its
//!   concurrent readers). An invalidation that has returned is therefore honoured by any later read, in
//!   any process, without a script or a second key on the hit path. On a server that cannot track (Redis
//!   before 6, some proxies) or with [`RedisOptions::client_tracking`] off, a hit is one `MGET` of the entry
//!   and the clock instead, with the same guarantee. The clocks of the application's machines never
//!   matter: the only clock is the one in Redis (a counter that never falls behind the server's time, so
//!   losing its key cannot make an old entry look newer than a later invalidation).
//! - **Bounded bookkeeping without chores.** `{prefix}:inv` keeps at most
//!   `CACHE_REDIS_INVALIDATION_RECORDS` records; trimming the oldest raises `{prefix}:floor`, and entries
//!   filled before the floor count as gone (extra misses, never stale hits). Entries expire by their own
//!   TTL. Nothing else is written.
//! - **Fail open.** Every operation (connection checkout included) has a timeout. A refused connection, a
//!   timeout, a wrong type at a key or an undecodable value is an error or a miss for the layer, which
//!   answers from the inner service and counts it. A connection whose operation failed at the I/O level or
//!   timed out is retired and replaced on next use, so caching resumes by itself when Redis is back. While
//!   Redis cannot be reached, reads and puts fail at once for [`RETRY_AFTER`] instead of each waiting for
//!   its timeout, then one operation probes; invalidations always try Redis, since a lost invalidation
//!   would leave entries stale.
//! - **No `PING` per checkout, no pool lock per hit.** bb8's default checkout test doubles a hit's round
//!   trips; this store's pool tests a flag set by failed operations instead. Each of the
//!   `CACHE_REDIS_POOL_SIZE` connections stays checked out in a slot, and operations clone the
//!   multiplexed connection out of a slot, so concurrent requests share sockets and pipeline.
//! - **`clear`** raises the floor (one script), then unlinks `{prefix}:e:*` with `SCAN` in the background.
//!   Never `KEYS`, never `FLUSHALL`.
//!
//! The scripts touch several keys of one prefix, all in one hash slot thanks to the braces. On a
//! cluster, the prefix is split in groups, each in its own slot ([below](#redis-cluster)).
//!
//! # Redis Cluster
//!
//! [`RedisStore::connect_cluster`] (`REDIS_CLUSTER_URLS`) speaks the cluster protocol through
//! redis-rs's cluster client: it follows `MOVED` and `ASK` redirections, a replica promoted after a
//! failover, and slots migrated by a resharding. Every line of the contract above holds (the contract
//! tests run on a private cluster too, but for those that name one server's keys), with these
//! differences of means:
//!
//! - **Entries spread over every shard.** The prefix is split into `CACHE_REDIS_CLUSTER_GROUPS`
//!   invalidation groups (32), each with its own hash tag `{prefix#n}`, clock, records and floor; each
//!   tag is picked in its own 1/32 of the slot space, so the groups spread over masters that split the
//!   slots evenly (with three masters: 11, 11 and 10 groups; 30,000 entries landed within 7% of even
//!   in the tests). An entry lives in its key's group, so a **hit is still one round trip of one
//!   command on one node**: `MGET` of the entry and its group's clock (the cluster client cannot ask each
//!   node connection it opens to track the clock, so there is no client tracking and no near tier on a
//!   cluster); a put is still one script.
//! - **A tag invalidation writes one record per group**, pipelined: one pipeline per master holding all
//!   of that master's groups. Its cost grows with the number of groups, never with the number of
//!   entries. Removing a key writes to its group only.
//! - **Failover without a stale read.** Redis replicates asynchronously: a master that fails just after
//!   recording an invalidation could lose it, and its promoted replica would serve the old entries. So
//!   each master's pipeline ends with `ROLE` and `WAIT`, and an invalidation (a write's update, a
//!   clear) returns `Ok` only once `CACHE_REDIS_REPLICA_ACKS` replicas (1) hold it, or all the replicas
//!   the master has if it has fewer: a master without replicas (just promoted, its old master gone)
//!   cannot lose a write to a failover, since a new replica copies everything before it can take
//!   over. When the replicas do not answer within half the timeout, the call returns an error (the
//!   record stays on the master: the entries are gone unless that master fails before replicating
//!   it), so the caller knows to retry or report it. Redis promotes the most up-to-date replica it
//!   can reach, but does not promise it: with several replicas per shard, set
//!   `CACHE_REDIS_REPLICA_ACKS` to their number for the guarantee to hold whichever one is promoted.
//!   One `WAIT` per master, on a connection of its own: Redis answers nothing else on a connection
//!   while a `WAIT` blocks it, so reads never queue behind one. 0 waits for nothing.
//! - **Fail open per shard.** Each group has its own circuit: a shard that is down, hung or moving
//!   sends its groups' reads to the inner service (fast, once its circuit is open), while the other
//!   shards keep caching (measured: a master hung for 600 ms, 36,248 reads of the other shards, all
//!   hits). A master that hangs without closing would keep its slots in the cluster client until it
//!   answers again, so an operation that times out renews the client's connections (in the
//!   background, at most once a second): they read the slots afresh and find the promoted replica.
//! - **`clear`** raises every group's floor (waiting for replicas as above), then `SCAN`s every master
//!   for the prefix's entries. Still never `KEYS` or `FLUSHALL`.
//! - **The same group count everywhere.** Processes with different counts would write entries and
//!   invalidations to groups the others never read. The first process records its count at
//!   `{prefix}:groups`; a process that finds another refuses to cache (every request passes through)
//!   and logs an error naming `CACHE_REDIS_CLUSTER_GROUPS`.
//! - Other components' scripts ([`RedisScripts`], the Discord rate limiter) keep their keys under
//!   `{prefix}:`, on one shard.
//! - A prefix may not hold a `#` on a cluster: `{prefix#n}` names a group.
//! - TLS as on one server: `rediss://` seeds, with `CACHE_REDIS_TLS_CA_FILE` for a private authority;
//!   the nodes the client discovers are reached the same way.
//!
//! # Near tier
//!
//! With [`RedisOptions::near_capacity`] (`CACHE_NEAR_SIZE`), the store keeps copies of the entries it
//! reads and writes in process (at most that many, evicted S3-FIFO as in `cache-memory`) and answers
//! from them with no round trip: a near hit costs about what an in-process hit does. A copy lives no
//! longer than the Redis entry's remaining TTL (`PTTL`, read in the same round trip as the entry), and
//! carries the entry's stamp and tags, so it is judged against the same [view](#invalidations) of the
//! invalidations as a Redis hit. Copies are served only while that view is *proven current*:
//!
//! - **An invalidation anywhere ends the copies it concerns as soon as its notice arrives.** Redis
//!   pushes the clock's change to every process (client tracking); from the moment the notice is read,
//!   no copy is served until a read through Redis has brought the view up to date. In the process that
//!   invalidated (or removed, updated, cleared), that happens the moment the call returns. Measured on
//!   loopback (`near_coherence_window` in `benches/`): from `invalidate_tags` returning in one instance
//!   to another instance's copy no longer being served, 0.33 to 0.36 ms at the median, 0.55 to 0.72 ms
//!   at p99, over 1,000 invalidations; most of it is the reading instance's own round trip.
//! - **A silent connection does not keep copies alive.** The view counts as proven for
//!   `CACHE_NEAR_MAX_SILENCE_MS` (1 s) after the last round trip that came back with no notice left to
//!   read; halfway through, a hit sends one `PING` in the background to prove it again. A connection
//!   that hangs without closing (a partition, a paused Redis) therefore stops near hits within that
//!   bound, and reads then go to Redis and fail open. This bound is the longest a near copy can be
//!   served after an invalidation, whatever happens to the network; without trouble, it is the notice's
//!   delivery time above.
//! - **No stale read after a reconnect.** A lost or new connection is itself a notice: before copies
//!   are served again, the view reads every invalidation record newer than what it knew; where the
//!   records were trimmed past that, it raises its floor and every copy older than it is gone.
//!   If Redis lost the invalidation clock itself (a restart without persistence, `FLUSHDB`, an
//!   eviction), no one can tell what was invalidated just before: every copy made before is dropped.
//! - Entries written or deleted in Redis behind the store's back (by hand) are not announced: a copy
//!   of them lasts at most its TTL. Without client tracking there is no near tier.
//!
//! # TLS
//!
//! `rediss://` connects with rustls, trusting the bundled web PKI roots, or the authorities of
//! `CACHE_REDIS_TLS_CA_FILE` / [`RedisOptions::tls_ca_pem`] for a private CA.
//!
//! # Cargo features
//!
//! None: TLS (rustls with *ring*) is always built.

mod circuit;
mod cluster;
mod connection;
mod keys;
mod near;
mod options;
mod scripts;
mod scripts_api;
mod server_clock;
mod store;
mod tracking;
mod view;

pub use circuit::RETRY_AFTER;
pub use near::{CACHE_NEAR_MAX_SILENCE_MS, CACHE_NEAR_SIZE, DEFAULT_NEAR_MAX_SILENCE};
pub use options::{
    cluster_urls, RedisOptions, CACHE_REDIS_CLUSTER_GROUPS, CACHE_REDIS_INVALIDATION_RECORDS,
    CACHE_REDIS_POOL_SIZE, CACHE_REDIS_REPLICA_ACKS, CACHE_REDIS_TIMEOUT_MS,
    CACHE_REDIS_TLS_CA_FILE, DEFAULT_CLUSTER_GROUPS, DEFAULT_INVALIDATION_RECORDS,
    DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, MAX_CLUSTER_GROUPS, REDIS_CLUSTER_URLS, REDIS_URL,
};
pub use scripts_api::RedisScripts;
pub use store::RedisStore;

/// bb8-redis, re-exported for [`RedisStore::from_pool`].
pub use bb8_redis;
/// redis-rs, re-exported for [`RedisScripts`] (`redis::Script`).
pub use redis;
