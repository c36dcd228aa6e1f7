//! Redis Cluster: where a prefix's invalidation groups live, and the cluster client's connections.
//!
//! On one server every key of a prefix carries the hash tag `{prefix}`. On a cluster that would put the
//! whole cache on one shard, so the prefix is split into groups instead, each with its own hash tag,
//! clock, records and floor (see [`crate::keys`]): an entry lives in its key's group, so a read and a put
//! still touch one slot, while the groups (and their entries) spread over every shard. Each group's tag
//! is picked in its own stretch of the slot space, so the groups spread evenly over masters that split the
//! slots evenly, whatever the prefix.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
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
    (0..groups)
        .map(|g| {
            let stretch = (g * SLOTS / groups)..((g + 1) * SLOTS / groups);
            (0u64..)
                .map(|n| format!("{prefix}#{n}"))
                .find(|tag| stretch.contains(&u32::from(slot(tag.as_bytes()))))
                .expect("every stretch of the slot space holds some tag")
        })
        .collect()
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

/// The cluster client and its two connections, opened on first use (inside the runtime) and reopened
/// after a failed attempt.
///
/// Reads and puts share one; invalidations have their own, because each waits on its node connection
/// for a replica to acknowledge it (`WAIT`), and Redis answers nothing else on that connection meanwhile.
pub(crate) struct ClusterConnections {
    client: ClusterClient,
    reads: tokio::sync::OnceCell<ClusterConnection>,
    writes: tokio::sync::OnceCell<ClusterConnection>,
    /// `{prefix}:groups`, where the first process records the prefix's group count.
    groups_key: String,
    groups: u16,
    /// The masters and their slots, as last read; read again when an invalidation finds them moved.
    masters: RwLock<Option<Arc<[Master]>>>,
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
            // Per attempt, so that a node that hangs without closing counts as failed and the client
            // looks for its replacement; the whole request is already bounded by the store's timeout.
            .response_timeout(timeout)
            .overall_response_timeout(None)
            .retries(RETRIES)
            .min_retry_wait(2)
            .max_retry_wait(timeout.as_millis().try_into().unwrap_or(u64::MAX).max(2))
            .build()?;
        Ok(Self {
            client,
            reads: tokio::sync::OnceCell::new(),
            writes: tokio::sync::OnceCell::new(),
            groups_key,
            groups,
            masters: RwLock::new(None),
        })
    }

    /// The read connection, when it is open.
    pub(crate) fn ready(&self) -> Option<ClusterConnection> {
        self.reads.get().cloned()
    }

    /// The read connection, opening it when needed.
    pub(crate) async fn connect(&self) -> Result<ClusterConnection, RedisError> {
        self.reads.get_or_try_init(|| self.open()).await.cloned()
    }

    /// The invalidation connection, opening it when needed.
    pub(crate) async fn writes(&self) -> Result<ClusterConnection, RedisError> {
        self.writes.get_or_try_init(|| self.open()).await.cloned()
    }

    /// The masters and their slots: as last read, unless `fresh` or never read.
    pub(crate) async fn masters(
        &self,
        conn: &mut ClusterConnection,
        fresh: bool,
    ) -> RedisResult<Arc<[Master]>> {
        let known = self
            .masters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(masters) = known.filter(|_| !fresh) {
            return Ok(masters);
        }
        let masters: Arc<[Master]> = masters(conn).await?.into();
        *self.masters.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&masters));
        Ok(masters)
    }

    /// A new connection, once the prefix's group count in the cluster is known to be this process's:
    /// with another count, entries and invalidations would land in groups the other processes never
    /// read, and their reads could be stale. A process that disagrees caches nothing until it agrees.
    async fn open(&self) -> Result<ClusterConnection, RedisError> {
        let mut conn = self.client.get_async_connection().await?;
        let (recorded,): (u16,) = redis::pipe()
            .cmd("SET")
            .arg(&self.groups_key)
            .arg(self.groups)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&self.groups_key)
            .query_async(&mut conn)
            .await?;
        if recorded != self.groups {
            let detail = format!(
                "{CACHE_REDIS_CLUSTER_GROUPS} is {} here, but {} in the cluster ({}); every process sharing the prefix must use the same number",
                self.groups, recorded, self.groups_key
            );
            tracing::error!(%detail, "the cache passes requests through");
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "invalidation groups differ",
                detail,
            )));
        }
        Ok(conn)
    }
}

/// A master of the cluster and the slots it serves, as a node described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Master {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Inclusive ranges.
    slots: Vec<(u16, u16)>,
}

impl Master {
    pub(crate) fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }

    /// Routes a command or pipeline to this node.
    pub(crate) fn route(&self) -> SingleNodeRoutingInfo {
        SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        }
    }
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
    Ok(text.lines().filter_map(parse_master).collect())
}

/// The master a `CLUSTER NODES` line describes, if it serves slots and has not failed.
fn parse_master(line: &str) -> Option<Master> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (address, flags) = (fields.get(1)?, fields.get(2)?);
    let serving = fields.len() > 8 && flags.split(',').any(|flag| flag == "master");
    if !serving || flags.contains("fail") {
        return None;
    }
    // `host:port@bus-port[,hostname]`
    let address = address.split(['@', ',']).next()?;
    let (host, port) = address.rsplit_once(':')?;
    // `first-last` or `slot`; `[slot->-id]` and `[slot-<-id]` mark migrations in progress.
    let slots = fields[8..]
        .iter()
        .filter(|range| !range.starts_with('['))
        .filter_map(|range| match range.split_once('-') {
            Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
            None => range.parse().ok().map(|slot| (slot, slot)),
        })
        .collect();
    Some(Master {
        host: host.to_owned(),
        port: port.parse().ok()?,
        slots,
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
67ed 127.0.0.1:30002@40002,node-2 master - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
6ec2 127.0.0.1:30003@40003 master,fail - 1426238316232 0 3 disconnected 10923-16383
9a1b 127.0.0.1:30005@40005 master - 0 0 5 connected
";
        let masters: Vec<_> = nodes.lines().filter_map(parse_master).collect();
        let addresses: Vec<_> = masters.iter().map(|m| (m.host.as_str(), m.port)).collect();
        assert_eq!(addresses, vec![("127.0.0.1", 30002), ("127.0.0.1", 30001)]);
        assert!(masters[0].serves(5461) && masters[0].serves(10_922) && !masters[0].serves(0));
        let migrating = "e7d1 127.0.0.1:30001@40001 master - 0 0 1 connected 0-99 7 [100->-67ed]";
        let master = parse_master(migrating).unwrap();
        assert!(master.serves(7) && master.serves(99) && !master.serves(100));
    }
}
