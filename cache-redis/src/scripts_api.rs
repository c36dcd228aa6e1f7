//! Lua scripts of other components, run on a store's connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cache_core::Error;
use redis::{FromRedisValue, ScriptInvocation, Value};

/// Runs the Lua scripts of another component (the Discord rate limiter keeps its shared budgets this
/// way) on a [`RedisStore`](crate::RedisStore)'s connections: under the store's timeout, failing fast
/// while Redis is unreachable, with key names under the store's prefix.
///
/// Cheap to clone. Get one from [`RedisStore::scripts`](crate::RedisStore::scripts).
///
/// ```no_run
/// # async fn run(store: cache_redis::RedisStore<String>) -> Result<(), cache_core::Error> {
/// use std::sync::LazyLock;
/// static COUNT: LazyLock<redis::Script> =
///     LazyLock::new(|| redis::Script::new("return redis.call('INCR', KEYS[1])"));
///
/// let scripts = store.scripts();
/// let key = scripts.key("counter"); // "{cache:}:counter", inside the store's prefix
/// let count: i64 = scripts.invoke("count", &COUNT.key(&key)).await?;
/// # let _ = count;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisScripts {
    runner: Arc<dyn RunScript>,
    base: Arc<str>,
}

/// What a store does for [`RedisScripts`]: one script under its timeout and circuit.
pub(crate) trait RunScript: Send + Sync {
    fn run_script<'a>(
        &'a self,
        operation: &'static str,
        invocation: &'a ScriptInvocation<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;
}

impl RedisScripts {
    pub(crate) fn new(runner: Arc<dyn RunScript>, base: &str) -> Self {
        Self {
            runner,
            base: base.into(),
        }
    }

    /// The Redis key `name` under the store's prefix: `{prefix}:name`. Every key of a prefix hashes to
    /// one cluster slot, so a script may touch several.
    pub fn key(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.base.len() + name.len());
        key.push_str(&self.base);
        key.push_str(name);
        key
    }

    /// Runs `invocation` (`EVALSHA`, loading the script when Redis does not know it) and converts its
    /// reply. `operation` names it in errors and traces.
    ///
    /// # Errors
    /// The store's errors: Redis unreachable (at once while the store's circuit is open), timed out, or
    /// the script failed; a reply that does not convert to `T` is [`Error::Store`] too.
    ///
    /// # Cancel safety
    /// Dropping the future gives the connection back; the script may or may not have run.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        let value = self.runner.run_script(operation, invocation).await?;
        T::from_redis_value(value).map_err(|error| Error::store(operation, error))
    }
}

impl std::fmt::Debug for RedisScripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisScripts")
            .field("prefix", &self.base)
            .finish_non_exhaustive()
    }
}
