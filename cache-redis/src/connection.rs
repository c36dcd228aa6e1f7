//! Connections: a bb8 pool of multiplexed connections, checked out for an instant per operation.
//!
//! A multiplexed connection pipelines the requests of every task that holds a clone of it, so connections
//! are cloned out of the pool and kept in slots that operations share: concurrency is not capped by the pool
//! size, and a hit touches neither the pool's lock nor its checkout timer. bb8 would `PING` on every checkout to find broken connections, which doubles the round trips of a
//! hit; instead an operation that fails at the connection level marks its connection broken, and the
//! checkout test (a flag read, no I/O) makes the pool replace it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use bb8_redis::bb8::{self, ManageConnection, Pool, PooledConnection, RunError};
use bb8_redis::RedisConnectionManager;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value,
};

use crate::cluster::{ClusterConnections, Lane};
use crate::tracking::{RedisErrorText, Tracking};

/// One connection to Redis: to a single server, or to a cluster (which routes each command to the
/// node serving its key's slot).
#[derive(Clone)]
pub(crate) enum Conn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// A pooled connection, the flag that retires it, and whether Redis pushes invalidation notices on it.
pub(crate) struct FlaggedConnection {
    connection: MultiplexedConnection,
    broken: Arc<AtomicBool>,
    tracked: bool,
}

/// bb8 manager of [`FlaggedConnection`]s: validity is the flag, never a round trip.
#[derive(Clone)]
pub(crate) struct FlaggedManager {
    plain: Client,
    /// The same server, spoken to in RESP3 for tracked connections.
    resp3: Client,
    config: AsyncConnectionConfig,
    tracking: Arc<Tracking>,
}

impl FlaggedManager {
    pub(crate) fn new(
        plain: Client,
        resp3: Client,
        timeout: Duration,
        tracking: Arc<Tracking>,
    ) -> Self {
        // Every operation already runs under the store's own timeout; a second timer per request inside
        // redis-rs would only cost a timer-wheel insert and removal on every hit.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        Self {
            plain,
            resp3,
            config,
            tracking,
        }
    }

    async fn connect_tracked(&self) -> Result<MultiplexedConnection, RedisError> {
        let config = self
            .config
            .clone()
            .set_push_sender(self.tracking.listener());
        let mut connection = self
            .resp3
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(&self.tracking.watched)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(connection)
    }
}

impl ManageConnection for FlaggedManager {
    type Connection = FlaggedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<FlaggedConnection, RedisError> {
        let broken = Arc::new(AtomicBool::new(false));
        if self.tracking.enabled() {
            match self.connect_tracked().await {
                Ok(connection) => {
                    // What changed before this connection was tracked is unknown to it.
                    self.tracking.notice();
                    return Ok(FlaggedConnection {
                        connection,
                        broken,
                        tracked: true,
                    });
                }
                // The server cannot track at all (no RESP3, no CLIENT TRACKING): stop trying.
                Err(error) if cannot_track(&error) => {
                    self.tracking.disable(&RedisErrorText(error.to_string()));
                }
                // The server refused this time (an ACL without `client`, too many clients): this
                // connection goes without tracking, and the reads on it fetch the clock.
                Err(error) if error.code().is_some() => {
                    tracing::warn!(error = %error, "Redis refused client tracking on a connection");
                }
                Err(error) => return Err(error),
            }
        }
        let connection = self
            .plain
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok(FlaggedConnection {
            connection,
            broken,
            tracked: false,
        })
    }

    async fn is_valid(&self, conn: &mut FlaggedConnection) -> Result<(), RedisError> {
        if conn.broken.load(Ordering::Acquire) {
            return Err(RedisError::from((
                ErrorKind::Io,
                "connection marked broken",
            )));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut FlaggedConnection) -> bool {
        conn.broken.load(Ordering::Acquire)
    }
}

/// Where connections come from.
pub(crate) enum Connections {
    /// Our own pool, tuned for a cache, and the connections currently cloned out of it.
    Flagged { pool: Box<LazyPool>, slots: Slots },
    /// A pool the application built with bb8-redis's manager (it pings on checkout unless configured
    /// with `test_on_check_out(false)`).
    Shared(Pool<RedisConnectionManager>),
    /// A Redis Cluster: the cluster client keeps one multiplexed connection per node and follows the
    /// slots as they move.
    Cluster(Box<ClusterConnections>),
}

/// Multiplexed connections held for reuse, one per pool slot, handed out round robin.
///
/// Going through the pool on every operation would cost its lock and its checkout timer on every hit; a
/// slot keeps its connection checked out of the pool for good, and an operation costs a read lock and a
/// clone. So `pool_size` slots hold `pool_size` distinct connections. A slot whose connection was marked
/// broken hands it back (the pool then drops it) and checks out a new one.
pub(crate) struct Slots {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

struct Slot {
    held: RwLock<Option<PooledConnection<'static, FlaggedManager>>>,
    /// One task at a time refills a slot, so slots never take more connections than the pool has.
    filling: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The held connection, unless there is none or it is broken.
    fn live(&self) -> Option<Checkout> {
        let held = self.held.read().unwrap_or_else(PoisonError::into_inner);
        held.as_ref()
            .filter(|pooled| !pooled.broken.load(Ordering::Acquire))
            .map(|pooled| Checkout::of(pooled))
    }
}

impl Slots {
    fn new(count: u32) -> Self {
        let slots = (0..count.max(1))
            .map(|_| Slot {
                held: RwLock::new(None),
                filling: tokio::sync::Mutex::new(()),
            })
            .collect();
        Self {
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// The index of the next slot, round robin (no shared write when there is only one).
    fn pick(&self) -> usize {
        match self.slots.len() {
            1 => 0,
            len => self.next.fetch_add(1, Ordering::Relaxed) % len,
        }
    }
}

/// The connection an operation waits for, when none was ready.
pub(crate) enum Pick {
    /// This slot of the pool's.
    Slot(usize),
    /// Any: the application's pool, or the cluster's read connection.
    Any,
    /// The cluster's invalidation connection.
    Writes,
}

/// A connection for one operation.
pub(crate) struct Checkout {
    pub(crate) connection: Conn,
    /// Redis pushes invalidation notices on this connection.
    pub(crate) tracked: bool,
    broken: Option<Arc<AtomicBool>>,
}

/// The means to retire a checked-out connection after the operation using it was given up.
pub(crate) struct Retirement(Option<Arc<AtomicBool>>);

impl Retirement {
    pub(crate) fn retire(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Release);
        }
    }
}

impl Checkout {
    fn of(pooled: &FlaggedConnection) -> Self {
        Self {
            connection: Conn::Node(pooled.connection.clone()),
            tracked: pooled.tracked,
            broken: Some(Arc::clone(&pooled.broken)),
        }
    }

    /// The cluster client replaces broken node connections itself: nothing to retire.
    fn cluster(connection: ClusterConnection) -> Self {
        Self {
            connection: Conn::Cluster(connection),
            tracked: false,
            broken: None,
        }
    }

    pub(crate) fn retirement(&self) -> Retirement {
        Retirement(self.broken.clone())
    }

    /// Retires the connection when `error` says it is unusable (I/O, dropped, timed out), so the pool
    /// opens a new one; server replies such as a wrong type leave it in place.
    /// Returns whether the connection was retired.
    pub(crate) fn note(&self, error: &RedisError) -> bool {
        let unusable = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_timeout()
            || error.is_unrecoverable_error();
        if let (true, Some(flag)) = (unusable, &self.broken) {
            flag.store(true, Ordering::Release);
        }
        unusable
    }
}

impl Connections {
    pub(crate) fn own(
        plain: Client,
        resp3: Client,
        pool_size: u32,
        timeout: Duration,
        tracking: Arc<Tracking>,
    ) -> Self {
        let pool = Box::new(LazyPool {
            pool: OnceLock::new(),
            manager: FlaggedManager::new(plain, resp3, timeout, tracking),
            max_size: pool_size,
            timeout,
        });
        Self::Flagged {
            pool,
            slots: Slots::new(pool_size),
        }
    }

    /// A connection without waiting, when the next slot holds a live one: the path of almost every
    /// operation, which then needs no timer for its checkout. Otherwise the slot to hand to
    /// [`checkout`](Self::checkout), so that it is the one refilled.
    pub(crate) fn ready(&self) -> Result<Checkout, Pick> {
        match self {
            Self::Flagged { slots, .. } => {
                let index = slots.pick();
                slots.slots[index].live().ok_or(Pick::Slot(index))
            }
            Self::Shared(_) => Err(Pick::Any),
            Self::Cluster(cluster) => cluster.ready().map(Checkout::cluster).ok_or(Pick::Any),
        }
    }

    /// A connection from the slot `pick` names (refilling it when its connection is missing or broken),
    /// or from the application's pool.
    pub(crate) async fn checkout(&self, pick: Pick) -> Result<Checkout, RedisError> {
        match self {
            Self::Flagged { pool, slots } => {
                let index = match pick {
                    Pick::Slot(index) => index,
                    Pick::Any | Pick::Writes => slots.pick(),
                };
                let slot = &slots.slots[index];
                if let Some(checkout) = slot.live() {
                    return Ok(checkout);
                }
                let _filling = slot.filling.lock().await;
                if let Some(checkout) = slot.live() {
                    return Ok(checkout);
                }
                // Hand a broken connection back first, so the pool has room to open its replacement.
                let broken = slot
                    .held
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                drop(broken);
                let pooled = pool.get().get_owned().await.map_err(run_error)?;
                let checkout = Checkout::of(&pooled);
                *slot.held.write().unwrap_or_else(PoisonError::into_inner) = Some(pooled);
                Ok(checkout)
            }
            Self::Shared(pool) => {
                let pooled = pool.get().await.map_err(run_error)?;
                Ok(Checkout {
                    connection: Conn::Node(pooled.clone()),
                    tracked: false,
                    broken: None,
                })
            }
            Self::Cluster(cluster) => match pick {
                Pick::Writes => cluster.connect(Lane::Writes).await.map(Checkout::cluster),
                Pick::Slot(_) | Pick::Any => {
                    cluster.connect(Lane::Reads).await.map(Checkout::cluster)
                }
            },
        }
    }
}

/// Our own pool, built on first use, inside the runtime: bb8 spawns its reaper task when a pool is built,
/// and a store may be built in synchronous code before any tokio runtime exists.
pub(crate) struct LazyPool {
    pool: OnceLock<Pool<FlaggedManager>>,
    manager: FlaggedManager,
    max_size: u32,
    timeout: Duration,
}

impl LazyPool {
    fn get(&self) -> &Pool<FlaggedManager> {
        self.pool.get_or_init(|| {
            Pool::builder()
                .max_size(self.max_size)
                .min_idle(None)
                .test_on_check_out(true)
                .connection_timeout(self.timeout)
                .retry_connection(false)
                .build_unchecked(self.manager.clone())
        })
    }
}

fn run_error(error: RunError<RedisError>) -> RedisError {
    match error {
        RunError::User(error) => error,
        RunError::TimedOut => {
            RedisError::from((ErrorKind::Io, "timed out waiting for a Redis connection"))
        }
    }
}

pub(crate) fn shared_pool(pool: Pool<RedisConnectionManager>) -> Connections {
    Connections::Shared(pool)
}

// `bb8` is re-exported by bb8-redis; keep the path in one place.
pub(crate) type SharedPool = bb8::Pool<RedisConnectionManager>;

/// True when the error says the server does not support client tracking, rather than refusing it now.
fn cannot_track(error: &RedisError) -> bool {
    if error.kind() == ErrorKind::RESP3NotSupported {
        return true;
    }
    let text = error.to_string().to_ascii_lowercase();
    error.code() == Some("ERR")
        && (text.contains("unknown command") || text.contains("unknown subcommand"))
}
