//! Connections: a bb8 pool of multiplexed connections, checked out for an instant per operation.
//!
//! A multiplexed connection pipelines the requests of every task that holds a clone of it, so an operation
//! clones one out of the pool and hands the pool slot back at once: concurrency is not capped by the pool
//! size. bb8 would `PING` on every checkout to find broken connections, which doubles the round trips of a
//! hit; instead an operation that fails at the connection level marks its connection broken, and the
//! checkout test (a flag read, no I/O) makes the pool replace it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bb8_redis::bb8::{self, ManageConnection, Pool, RunError};
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError};

/// A pooled connection and the flag that retires it.
pub(crate) struct FlaggedConnection {
    connection: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

/// bb8 manager of [`FlaggedConnection`]s: validity is the flag, never a round trip.
pub(crate) struct FlaggedManager {
    client: Client,
    config: AsyncConnectionConfig,
}

impl FlaggedManager {
    pub(crate) fn new(client: Client, timeout: Duration) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Self { client, config }
    }
}

impl ManageConnection for FlaggedManager {
    type Connection = FlaggedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<FlaggedConnection, RedisError> {
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok(FlaggedConnection {
            connection,
            broken: Arc::new(AtomicBool::new(false)),
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
#[derive(Clone)]
pub(crate) enum Connections {
    /// Our own pool, tuned for a cache.
    Flagged(Pool<FlaggedManager>),
    /// A pool the application built with bb8-redis's manager (it pings on checkout unless configured
    /// with `test_on_check_out(false)`).
    Shared(Pool<RedisConnectionManager>),
}

/// A connection for one operation.
pub(crate) struct Checkout {
    pub(crate) connection: MultiplexedConnection,
    broken: Option<Arc<AtomicBool>>,
}

impl Checkout {
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
    pub(crate) fn own(client: Client, pool_size: u32, timeout: Duration) -> Self {
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(None)
            .test_on_check_out(true)
            .connection_timeout(timeout)
            .retry_connection(false)
            .build_unchecked(FlaggedManager::new(client, timeout));
        Self::Flagged(pool)
    }

    pub(crate) async fn checkout(&self) -> Result<Checkout, RedisError> {
        match self {
            Self::Flagged(pool) => {
                let pooled = pool.get().await.map_err(run_error)?;
                Ok(Checkout {
                    connection: pooled.connection.clone(),
                    broken: Some(Arc::clone(&pooled.broken)),
                })
            }
            Self::Shared(pool) => {
                let pooled = pool.get().await.map_err(run_error)?;
                Ok(Checkout {
                    connection: pooled.clone(),
                    broken: None,
                })
            }
        }
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
