//! Redis Cluster: where a prefix's invalidation groups live, and the cluster client's connections.
//!
//! On one server every key of a prefix carries the hash tag `{prefix}`. On a cluster that would put the
//! whole cache on one shard, so the prefix is split into groups instead, each with its own hash tag,
//! clock, records and floor (see [`crate::keys`]): an entry lives in its key's group, so a read and a put
//! still touch one slot, while the groups (and their entries) spread over every shard. Each group's tag
//! is picked in its own stretch of the slot space, so the groups spread evenly over masters that split the
//! slots evenly, whatever the prefix.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ErrorKind, RedisError, RedisResult};

use crate::options::CACHE_REDIS_CLUSTER_GROUPS;

/// Hash slots of a Redis Cluster.
const SLOTS: u32 = 16_384;

/// How many times the cluster client retries a command redirected or refused during a failover or a
/// migration, within the store's own timeout.
const RETRIES: u32 = 3;

/// The slot Redis Cluster assigns `key` (CRC16/XMODEM of its hash tag, or of the whole key).
pub(crate) fn slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// The hash tags of `prefix`'s `groups` groups: group `g`'s tag is `<prefix>#<n>` for the first `n` whose
/// slot falls in the `g`-th of `groups` equal stretches of the slot space. Every process computes the
/// same tags from the same prefix and group count.
pub(crate) fn group_tags(prefix: &str, groups: u16) -> Vec<String> {
    let groups = u32::from(groups.max(1));
    let mut tags: Vec<Option<String>> = vec![None; groups as usize];
    let mut missing = tags.len();
    // One pass over n = 0, 1, 2...: each tag lands in its stretch, and the first to land keeps it.
    for n in 0u64.. {
        let tag = format!("{prefix}#{n}");
        let stretch = (u32::from(slot(tag.as_bytes())) * groups / SLOTS) as usize;
        if tags[stretch].is_none() {
            tags[stretch] = Some(tag);
            missing -= 1;
            if missing == 0 {
                break;
            }
        }
    }
    tags.into_iter().flatten().collect()
}

/// Which group `key` belongs to: a hash every process computes alike.
pub(crate) fn group_of(key: &str, groups: usize) -> usize {
    if groups <= 1 {
        return 0;
    }
    // FNV-1a: stable across processes, builds and platforms.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % groups as u64) as usize
}

/// The cluster client and its two connections, opened on first use (inside the runtime), and opened
/// anew when operations time out.
///
/// Reads and puts share one; invalidations have their own, because each waits on its node connection
/// for a replica to acknowledge it (`WAIT`), and Redis answers nothing else on that connection meanwhile.
///
/// The cluster client follows the slots when a node answers `MOVED` or a connection drops, but a
/// master that hangs without closing (paused, or cut off by the network) only times out, and the
/// client would keep sending it that master's slots after the cluster has promoted its replica. So a
/// timed-out operation [renews](Self::renew) both connections (at most once per [`RENEW_EVERY`]): the
/// new ones read the slots afresh.
pub(crate) struct ClusterConnections {
    shared: Arc<Shared>,
    /// One opening at a time; the opening runs in a task of its own, so that a caller's timeout cannot
    /// cancel it (an opening slower than the timeout still completes, for the next caller).
    opening: tokio::sync::Mutex<()>,
}

struct Shared {
    client: ClusterClient,
    reads: RwLock<Option<ClusterConnection>>,
    writes: RwLock<Option<ClusterConnection>>,
    /// The masters and their slots, as last read; forgotten when an invalidation finds them moved.
    masters: RwLock<Option<Arc<[Master]>>>,
    /// `{prefix}:groups`, where the first process records the prefix's group count.
    groups_key: String,
    groups: u16,
    /// Milliseconds since `origin` of the last renewal, and of the last check of the group count.
    renewed_at: AtomicU64,
    checked_at: AtomicU64,
    origin: Instant,
}

/// Least time between two renewals of the connections.
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often the group count recorded in the cluster is read again (it may have been evicted or
/// flushed, and recorded anew by a process with another count).
const CHECK_GROUPS_EVERY: Duration = Duration::from_secs(30);

/// Which of the two connections.
#[derive(Clone, Copy)]
pub(crate) enum Lane {
    Reads,
    Writes,
}

impl ClusterConnections {
    pub(crate) fn new(
        builder: ClusterClientBuilder,
        timeout: Duration,
        groups_key: String,
        groups: u16,
    ) -> RedisResult<Self> {
        let client = builder
            .connection_timeout(timeout)
            // Per attempt; the whole request is bounded by the store's own timeout (no second timer).
            .response_timeout(timeout)
            .overall_response_timeout(None)
            .retries(RETRIES)
            .min_retry_wait(2)
            .max_retry_wait(timeout.as_millis().try_into().unwrap_or(u64::MAX).max(2))
            .build()?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                reads: RwLock::new(None),
                writes: RwLock::new(None),
                masters: RwLock::new(None),
                groups_key,
                groups,
                renewed_at: AtomicU64::new(0),
                checked_at: AtomicU64::new(0),
                origin: Instant::now(),
            }),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// The read connection, when it is open and the group count was checked recently.
    pub(crate) fn ready(&self) -> Option<ClusterConnection> {
        if self.shared.check_due() {
            return None;
        }
        self.shared.current(Lane::Reads)
    }

    /// The connection of `lane`, opening it when needed, once the group count is known to agree.
    pub(crate) async fn connect(&self, lane: Lane) -> Result<ClusterConnection, RedisError> {
        if !self.shared.check_due() {
            if let Some(conn) = self.shared.current(lane) {
                return Ok(conn);
            }
        }
        let _one_at_a_time = self.opening.lock().await;
        let shared = Arc::clone(&self.shared);
        let opened = tokio::spawn(async move { shared.open(lane).await });
        opened.await.map_err(|error| {
            RedisError::from((
                ErrorKind::Io,
                "opening a cluster connection failed",
                error.to_string(),
            ))
        })?
    }

    /// Opens new connections after an operation timed out (at most once per [`RENEW_EVERY`]), in the
    /// background: they read the cluster's current slots, and replace the old ones once open, so
    /// the shards that answer keep being served meanwhile.
    pub(crate) fn renew(&self) {
        let shared = &self.shared;
        let now = shared.elapsed_ms();
        let last = shared.renewed_at.load(Ordering::Relaxed);
        let every = u64::try_from(RENEW_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (last != 0 && now.saturating_sub(last) < every)
            || shared
                .renewed_at
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.forget_masters();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = Arc::clone(shared);
        runtime.spawn(async move {
            for lane in [Lane::Reads, Lane::Writes] {
                match shared.client.get_async_connection().await {
                    Ok(conn) => *shared.slot(lane) = Some(conn),
                    Err(error) => {
                        tracing::debug!(%error, "cluster connection not renewed");
                        return;
                    }
                }
            }
            tracing::debug!("cluster connections renewed after a timeout");
        });
    }

    /// The masters and their slots: as last read, unless `fresh` or never read.
    pub(crate) async fn masters(
        &self,
        conn: &mut ClusterConnection,
        fresh: bool,
    ) -> RedisResult<Arc<[Master]>> {
        let known = self
            .shared
            .masters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(masters) = known.filter(|_| !fresh) {
            return Ok(masters);
        }
        let masters: Arc<[Master]> = masters(conn).await?.into();
        *self
            .shared
            .masters
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&masters));
        Ok(masters)
    }

    /// The replicas of the master serving `slot`, as the masters were last read (`None` if unknown).
    pub(crate) fn known_replicas(&self, slot: u16) -> Option<u32> {
        let masters = self
            .shared
            .masters
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let master = masters
            .as_ref()?
            .iter()
            .find(|master| master.serves(slot))?;
        Some(master.replicas)
    }

    /// Forgets the masters read last: the next invalidation reads them again.
    pub(crate) fn forget_masters(&self) {
        *self
            .shared
            .masters
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Shared {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lane(&self, lane: Lane) -> &RwLock<Option<ClusterConnection>> {
        match lane {
            Lane::Reads => &self.reads,
            Lane::Writes => &self.writes,
        }
    }

    fn current(&self, lane: Lane) -> Option<ClusterConnection> {
        let held = self
            .lane(lane)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        held.clone()
    }

    fn slot(&self, lane: Lane) -> std::sync::RwLockWriteGuard<'_, Option<ClusterConnection>> {
        self.lane(lane)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// True when the group count has not been read from the cluster for [`CHECK_GROUPS_EVERY`].
    fn check_due(&self) -> bool {
        let checked = self.checked_at.load(Ordering::Relaxed);
        let every = u64::try_from(CHECK_GROUPS_EVERY.as_millis()).unwrap_or(u64::MAX);
        checked == 0 || self.elapsed_ms().saturating_sub(checked) >= every
    }

    /// The connection of `lane`, opened if missing, after the group count in the cluster was checked
    /// (when due): with another count, entries and invalidations would land in groups other processes
    /// never read, and their reads could be stale. A process that disagrees caches nothing.
    async fn open(&self, lane: Lane) -> Result<ClusterConnection, RedisError> {
        let mut conn = match self.current(lane) {
            Some(conn) => conn,
            None => {
                let conn = self.client.get_async_connection().await?;
                *self.slot(lane) = Some(conn.clone());
                conn
            }
        };
        if self.check_due() {
            self.check_groups(&mut conn).await?;
            self.checked_at
                .store(self.elapsed_ms().max(1), Ordering::Relaxed);
        }
        Ok(conn)
    }

    async fn check_groups(&self, conn: &mut ClusterConnection) -> Result<(), RedisError> {
        let (recorded,): (u16,) = redis::pipe()
            .cmd("SET")
            .arg(&self.groups_key)
            .arg(self.groups)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&self.groups_key)
            .query_async(conn)
            .await?;
        if recorded == self.groups {
            return Ok(());
        }
        let detail = format!(
            "{CACHE_REDIS_CLUSTER_GROUPS} is {} here, but {} in the cluster ({}); every process sharing the prefix must use the same number",
            self.groups, recorded, self.groups_key
        );
        tracing::error!(%detail, "the cache passes requests through");
        Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "invalidation groups differ",
            detail,
        )))
    }
}

/// A master of the cluster and the slots it serves, as a node described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Master {
    id: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Inclusive ranges; never empty.
    slots: Vec<(u16, u16)>,
    /// Its replicas the cluster does not count as failed.
    pub(crate) replicas: u32,
}

impl Master {
    pub(crate) fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }

    /// Routes a command to this master by one of its slots, through the cluster client's own view of
    /// the slots: addresses as `CLUSTER NODES` writes them may not be the ones the client connected
    /// to (announced hostnames), and a slot that moved meanwhile answers `MOVED` instead.
    pub(crate) fn route(&self) -> SingleNodeRoutingInfo {
        slot_route(self.slots[0].0)
    }
}

/// Routes a command or pipeline to the master serving `slot`.
pub(crate) fn slot_route(slot: u16) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master))
}

/// The masters of the cluster that serve slots, from `CLUSTER NODES`.
pub(crate) async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<Master>> {
    let nodes = conn
        .route_command(
            redis::cmd("CLUSTER").arg("NODES").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await?;
    let text: String = redis::FromRedisValue::from_redis_value(nodes)?;
    Ok(parse_masters(&text))
}

/// The masters of a `CLUSTER NODES` text, with their replicas counted.
fn parse_masters(text: &str) -> Vec<Master> {
    let mut masters: Vec<Master> = text.lines().filter_map(parse_master).collect();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(flags), Some(of)) = (fields.get(2), fields.get(3)) else {
            continue;
        };
        let flags: Vec<&str> = flags.split(',').collect();
        if flags.contains(&"slave") && !flags.contains(&"fail") {
            if let Some(master) = masters.iter_mut().find(|master| master.id == *of) {
                master.replicas += 1;
            }
        }
    }
    masters
}

/// Replicas a master has now, from its `ROLE` reply; `None` when the node is not a master.
pub(crate) fn replicas_in_role(role: &redis::Value) -> Option<u32> {
    let redis::Value::Array(parts) = role else {
        return None;
    };
    match parts.as_slice() {
        [redis::Value::BulkString(name), _, redis::Value::Array(replicas), ..]
            if name.as_slice() == b"master" =>
        {
            u32::try_from(replicas.len()).ok()
        }
        _ => None,
    }
}

/// The master a `CLUSTER NODES` line describes, if it serves slots and has not failed.
fn parse_master(line: &str) -> Option<Master> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (address, flags) = (fields.get(1)?, fields.get(2)?);
    let serving = fields.len() > 8 && flags.split(',').any(|flag| flag == "master");
    // `fail?` (one node's suspicion) is not `fail` (the cluster's verdict).
    if !serving || flags.split(',').any(|flag| flag == "fail") {
        return None;
    }
    // `host:port@bus-port[,hostname]`
    let address = address.split(['@', ',']).next()?;
    let (host, port) = address.rsplit_once(':')?;
    // `first-last` or `slot`; `[slot->-id]` and `[slot-<-id]` mark migrations in progress.
    let slots: Vec<(u16, u16)> = fields[8..]
        .iter()
        .filter(|range| !range.starts_with('['))
        .filter_map(|range| match range.split_once('-') {
            Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
            None => range.parse().ok().map(|slot| (slot, slot)),
        })
        .collect();
    let (port, id) = (port.parse().ok()?, (*fields.first()?).to_owned());
    (!slots.is_empty()).then(|| Master {
        id,
        host: host.to_owned(),
        port,
        slots,
        replicas: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // And as the cluster client computes them, hash tags and empty braces included.
        for key in ["{}foo", "foo{}{bar}", "{cache:#7}:e:user:1", "a{b", "x}{y}"] {
            let theirs = format!("{:?}", redis::cluster_routing::Slot::for_key(key));
            assert_eq!(theirs, format!("Slot({})", slot(key.as_bytes())), "{key}");
        }
    }

    #[test]
    fn group_tags_spread_over_the_slot_space() {
        let tags = group_tags("cache:", 32);
        assert_eq!(tags.len(), 32);
        for (g, tag) in tags.iter().enumerate() {
            let slot = u32::from(slot(tag.as_bytes()));
            assert_eq!(slot * 32 / SLOTS, g as u32, "{tag}");
        }
        assert_eq!(tags, group_tags("cache:", 32), "the same in every process");
        // The first tag of each stretch, as a search from n = 0 per group finds it.
        for (g, tag) in tags.iter().enumerate() {
            let first = (0u64..)
                .map(|n| format!("cache:#{n}"))
                .find(|candidate| u32::from(slot(candidate.as_bytes())) * 32 / SLOTS == g as u32)
                .unwrap();
            assert_eq!(*tag, first);
        }
        assert_eq!(group_tags("cache:", 1_024).len(), 1_024);
    }

    #[test]
    fn keys_spread_over_groups() {
        let mut counts = [0u32; 8];
        for id in 0..8_000 {
            counts[group_of(&format!("user:{id}"), 8)] += 1;
        }
        assert!(
            counts.iter().all(|&n| (900..1_100).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
5b2a 127.0.0.1:30006@40006 slave,fail e7d1 0 1426238317239 4 disconnected
67ed 127.0.0.1:30002@40002,node-2 master,fail? - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
6ec2 127.0.0.1:30003@40003 master,fail - 1426238316232 0 3 disconnected 10923-16383
9a1b 127.0.0.1:30005@40005 master - 0 0 5 connected
";
        let masters = parse_masters(nodes);
        let addresses: Vec<_> = masters.iter().map(|m| (m.host.as_str(), m.port)).collect();
        assert_eq!(addresses, vec![("127.0.0.1", 30002), ("127.0.0.1", 30001)]);
        let replicas: Vec<u32> = masters.iter().map(|m| m.replicas).collect();
        assert_eq!(replicas, vec![0, 1], "the failed replica does not count");
        assert!(masters[0].serves(5461) && masters[0].serves(10_922) && !masters[0].serves(0));
        let migrating = "e7d1 127.0.0.1:30001@40001 master - 0 0 1 connected 0-99 7 [100->-67ed]";
        let master = parse_master(migrating).unwrap();
        assert!(master.serves(7) && master.serves(99) && !master.serves(100));
    }
}
