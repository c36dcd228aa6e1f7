//! The store: a read is one plain `GET` (`MGET` without client tracking); puts, updates and
//! invalidations are one script each.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cache_core::codec::envelope::{self, Freshness};
use cache_core::codec::{Bincode, Codec};
use cache_core::{
    CacheKey, Error, FillClaim, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store,
    StoreFuture,
};
use redis::{Client, IntoConnectionInfo, ProtocolVersion, RedisError, ScriptInvocation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::circuit::Circuit;
use crate::connection::{shared_pool, Checkout, Connections, SharedPool};
use crate::keys::{key_record, tag_record, Keys};
use crate::near::{Coherence, NearFill, NearTier, Standing};
use crate::options::{redact, RedisOptions, REDIS_URL};
use crate::scripts;
use crate::scripts_api::{RedisScripts, RunScript};
use crate::server_clock::ServerClock;
use crate::tracking::Tracking;
use crate::view::View;

/// Keys unlinked per `SCAN` step of [`Invalidate::clear`].
const CLEAR_BATCH: usize = 500;

struct Inner<C> {
    connections: Connections,
    tracking: Arc<Tracking>,
    circuit: Circuit,
    keys: Keys,
    view: View,
    clock: ServerClock,
    codec: C,
    timeout: Duration,
    max_records: usize,
    /// Whether near copies may be served now (see [`crate::near`]).
    coherence: Coherence,
    /// Whether the store keeps near copies.
    near: bool,
}

/// A [`Store`] shared by every process that uses the same Redis and key prefix.
///
/// Cheap to clone; clones share connections and the invalidation view. See the [crate docs](crate) for
/// the data layout and the consistency argument.
pub struct RedisStore<V, C = Bincode> {
    inner: Arc<Inner<C>>,
    /// Copies served without a round trip ([`RedisOptions::near_capacity`]); `None` when off.
    near: Option<Arc<NearTier<V>>>,
    _value: PhantomData<fn() -> V>,
}

impl<V, C> Clone for RedisStore<V, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            near: self.near.clone(),
            _value: PhantomData,
        }
    }
}

impl<V, C: Codec> std::fmt::Debug for RedisStore<V, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.inner.keys.entry_pattern)
            .field("codec", &C::NAME)
            .field("timeout", &self.inner.timeout)
            .field("near", &self.near.is_some())
            .finish_non_exhaustive()
    }
}

impl<V> RedisStore<V, Bincode> {
    /// A store on the Redis at `url` (`redis://` or `rediss://` for TLS), with the bincode codec.
    ///
    /// Connections are opened on first use, so a Redis that is down at startup only means misses until it
    /// is back (the first failure is logged at warn level; [`ping`](Self::ping) checks readiness). It
    /// needs no tokio runtime: the store may be built before one starts.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `REDIS_URL` when the URL cannot be parsed (the password is never
    /// shown).
    pub fn connect(url: &str, options: RedisOptions) -> Result<Self, Error> {
        Self::with_codec(url, options, Bincode)
    }
}

impl<V, C: Codec> RedisStore<V, C> {
    /// Like [`connect`](RedisStore::connect), with another codec.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `REDIS_URL` when the URL cannot be parsed.
    pub fn with_codec(url: &str, options: RedisOptions, codec: C) -> Result<Self, Error> {
        let (plain, resp3) = open_clients(url, &options)?;
        let tracking = Tracking::new(
            options.client_tracking,
            Keys::new(&options.key_prefix).epoch,
        );
        let connections = Connections::own(
            plain,
            resp3,
            options.pool_size.max(1),
            options.timeout,
            Arc::clone(&tracking),
        );
        Self::from_connections(connections, tracking, options, codec)
    }

    /// A store on a pool the application already has.
    ///
    /// bb8 tests each checkout with a `PING` unless the pool was built with `test_on_check_out(false)`:
    /// turn that off, or every hit costs two round trips.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the options' key prefix is not a valid prefix.
    pub fn from_pool(pool: SharedPool, options: RedisOptions, codec: C) -> Result<Self, Error> {
        // The application's connections are not set up to track the clock: reads fetch it (`MGET`).
        let tracking = Tracking::new(false, String::new());
        Self::from_connections(shared_pool(pool), tracking, options, codec)
    }

    fn from_connections(
        connections: Connections,
        tracking: Arc<Tracking>,
        options: RedisOptions,
        codec: C,
    ) -> Result<Self, Error> {
        // The fields are public: check again what the builder methods check, since a glob character in
        // the prefix would let `clear` reach other prefixes.
        let key_prefix = cache_core::CacheConfig::default()
            .key_prefix(options.key_prefix)?
            .key_prefix;
        let near = match options.near_capacity {
            0 => None,
            // Copies are only as good as the notices that end them.
            _ if !tracking.enabled() => {
                tracing::warn!(
                    "near tier off: it needs client tracking, which this store does not use"
                );
                None
            }
            capacity => Some(Arc::new(NearTier::new(capacity))),
        };
        let inner = Inner {
            connections,
            tracking,
            circuit: Circuit::new(),
            keys: Keys::new(&key_prefix),
            view: View::new(options.max_invalidation_records),
            clock: ServerClock::new(),
            codec,
            timeout: options.timeout,
            max_records: options.max_invalidation_records.max(2),
            coherence: Coherence::new(options.near_max_silence),
            near: near.is_some(),
        };
        Ok(Self {
            inner: Arc::new(inner),
            near,
            _value: PhantomData,
        })
    }
}

impl<V, C: Codec> RedisStore<V, C> {
    /// Whether Redis answers now: one `PING` under the store's timeout. For readiness probes and
    /// startup checks; the cache itself never needs it, since an unreachable Redis only means requests
    /// go to the inner service until it is back.
    ///
    /// # Errors
    /// The store error (refused, timed out) that a request would have counted.
    pub async fn ping(&self) -> Result<(), Error> {
        self.inner.ping().await
    }

    /// A handle running other components' Lua scripts on this store's connections, under its timeout
    /// and key prefix.
    pub fn scripts(&self) -> RedisScripts
    where
        C: 'static,
    {
        RedisScripts::new(self.inner.clone(), &self.inner.keys.base)
    }

    /// Copies held by the near tier (0 when it is off).
    pub fn near_entry_count(&self) -> usize {
        self.near.as_ref().map_or(0, |near| near.copies.len())
    }
}

impl<C: Codec> Inner<C> {
    async fn ping(&self) -> Result<(), Error> {
        self.run("ping", false, |mut checkout| async move {
            let pong = redis::cmd("PING")
                .query_async::<()>(&mut checkout.connection)
                .await;
            (checkout, pong.map_err(OpError::from))
        })
        .await
    }
}

impl<C: Codec + 'static> RunScript for Inner<C> {
    /// Scripts fail fast while the circuit is open: their callers have a fallback.
    fn run_script<'a>(
        &'a self,
        operation: &'static str,
        invocation: &'a ScriptInvocation<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<redis::Value, Error>> + Send + 'a>> {
        Box::pin(self.run(operation, true, move |mut checkout| async move {
            let value = invocation
                .invoke_async::<redis::Value>(&mut checkout.connection)
                .await;
            (checkout, value.map_err(OpError::from))
        }))
    }
}

/// Two clients for the URL: the plain one, and the same in RESP3 for connections that track the clock.
fn open_clients(url: &str, options: &RedisOptions) -> Result<(Client, Client), Error> {
    let invalid = |error: RedisError| {
        cache_core::config::env::invalid(
            REDIS_URL,
            &redact(url),
            format!("not a usable Redis URL: {error}"),
        )
    };
    let info = url.into_connection_info().map_err(invalid)?;
    let resp3_settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let resp3_info = info.clone().set_redis_settings(resp3_settings);
    if url.starts_with("rediss://") {
        // rustls needs a process-wide crypto provider; an application may have installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(ca) = &options.tls_ca_pem {
            let certificates = || redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            };
            let plain = Client::build_with_tls(info, certificates()).map_err(invalid)?;
            let resp3 = Client::build_with_tls(resp3_info, certificates()).map_err(invalid)?;
            return Ok((plain, resp3));
        }
    }
    Ok((
        Client::open(info).map_err(invalid)?,
        Client::open(resp3_info).map_err(invalid)?,
    ))
}

impl<C: Codec> Inner<C> {
    /// Runs one store operation under the timeout, on a checked-out connection that `work` hands back
    /// with its result, so a failure can retire it. While the circuit
    /// is open, reads and writes of entries (`fail_fast`) fail at once; invalidations always try, since a
    /// lost invalidation would leave entries stale. A connection whose operation timed out is retired: a
    /// silent socket would otherwise keep its slot until the kernel gives up on it.
    async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        fail_fast: bool,
        work: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(Checkout) -> Fut,
        Fut: Future<Output = (Checkout, Result<T, OpError>)>,
    {
        if fail_fast && !self.circuit.allows() {
            return Err(Error::store(
                operation,
                "Redis unreachable; retrying shortly",
            ));
        }
        let timed_out = || {
            let error = Error::StoreTimeout {
                operation,
                after: self.timeout,
            };
            self.circuit.trip(&error);
            error
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let checkout = match self.connections.ready() {
            Ok(checkout) => checkout,
            Err(pick) => {
                match tokio::time::timeout_at(deadline, self.connections.checkout(pick)).await {
                    Ok(Ok(checkout)) => checkout,
                    Ok(Err(error)) => {
                        self.circuit.trip(&error);
                        return Err(Error::store(operation, error));
                    }
                    Err(_) => return Err(timed_out()),
                }
            }
        };
        let retire = checkout.retirement();
        let result = match tokio::time::timeout_at(deadline, work(checkout)).await {
            Ok((_, Ok(value))) => Ok(value),
            Ok((checkout, Err(OpError::Redis(error)))) => {
                if checkout.note(&error) {
                    self.circuit.trip(&error);
                }
                Err(Error::store(operation, error))
            }
            Ok((_, Err(OpError::Cache(error)))) => Err(error),
            Err(_) => {
                retire.retire();
                Err(timed_out())
            }
        };
        match &result {
            Ok(_) => self.circuit.close(),
            // Whatever failed, this process may have missed a notice: near copies wait for a proof.
            Err(_) => self.coherence.doubt(),
        }
        result
    }

    /// Whether near copies may be served: no tracking notice waits to be read into the view, and a
    /// recent round trip proved the view current.
    fn near_standing(&self, now: tokio::time::Instant) -> Standing {
        if !self.tracking.enabled() || self.tracking.notices() > self.view.noticed() {
            return Standing::Unproven;
        }
        self.coherence.standing(now)
    }

    /// A round trip on a tracked connection, sent at `sent`, has come back and the view caught up with
    /// its notices: if no notice arrived since, the view held every invalidation that had returned when
    /// it was sent.
    fn prove_current(&self, sent: tokio::time::Instant) {
        if self.tracking.notices() <= self.view.noticed() {
            self.coherence.proven(sent);
        }
    }

    /// An invalidation, update or clear made here has returned (or failed): the view must learn it
    /// before this process serves a near copy again. Its notice may reach this process after the reply.
    /// Without near copies, reads through Redis learn it from that notice, at no extra round trip.
    fn made_change(&self) {
        if self.near {
            self.tracking.notice();
        }
    }

    /// Proves the view current in the background, one round trip at a time.
    fn renew_proof(self: &Arc<Self>, now: tokio::time::Instant)
    where
        C: 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.coherence.start_proving(now) {
            return;
        }
        // Ends the claim however the task ends: finished, panicked, or dropped unpolled.
        let proving = Proving(Arc::clone(self));
        runtime.spawn(async move {
            let inner = &*proving.0;
            let proved = inner
                .run("prove", true, |mut checkout| async move {
                    let sent = tokio::time::Instant::now();
                    let proved = async {
                        if checkout.tracked {
                            let conn = &mut checkout.connection;
                            redis::cmd("PING").query_async::<()>(conn).await?;
                            let notices = || inner.tracking.notices();
                            inner.view.refresh(notices, &inner.keys, conn).await?;
                            inner.prove_current(sent);
                        }
                        Ok::<_, RedisError>(())
                    }
                    .await;
                    (checkout, proved.map_err(OpError::from))
                })
                .await;
            if let Err(error) = proved {
                tracing::debug!(error = %error, "near tier: the invalidation view could not be proven current");
            }
        });
    }

    /// The near copy of `key`, judged like the Redis entry it copies; `None` sends the read to Redis.
    fn near_lookup<V: Clone + Send + Sync>(
        &self,
        near: &NearTier<V>,
        key: &CacheKey,
        now: tokio::time::Instant,
    ) -> Option<Lookup<V>> {
        let (version, history) = (self.view.version(), self.view.history());
        near.copies.read(key, |copy| {
            if now >= copy.expires_at || copy.history != history {
                return None;
            }
            // Judged against the records once per change of them, not on every hit.
            if copy.alive_at.load(Ordering::Relaxed) != version {
                let tags = copy.tags.iter().map(String::as_str);
                if self.view.is_dead(key, tags, copy.stamp) {
                    return None;
                }
                copy.alive_at.store(version, Ordering::Relaxed);
            }
            // Redis's clock is read only for entries with stale periods.
            let stale = if copy.freshness.is_always() {
                None
            } else if self.clock.wants_sync() {
                return None; // due a measurement: the Redis path takes it
            } else {
                copy.freshness.stale_at(self.clock.now_ms())
            };
            let value = copy.value.clone();
            Some(match stale {
                None => Lookup::Hit {
                    value,
                    stamp: FillStamp::new(copy.stamp),
                },
                Some(revalidate) => Lookup::Stale {
                    value,
                    stamp: FillStamp::new(self.view.cursor()),
                    revalidate,
                },
            })
        })
    }

    /// Measures Redis's clock if the last measurement is old; a failure leaves the previous estimate.
    async fn sync_clock_if_due(&self) {
        if !self.clock.wants_sync() {
            return;
        }
        let synced = self
            .run("time", true, |mut checkout| async move {
                let synced = self.clock.sync(&mut checkout.connection).await;
                (checkout, synced.map_err(OpError::from))
            })
            .await;
        if let Err(error) = synced {
            tracing::debug!(error = %error, "Redis clock not measured; using the local clock");
        }
    }

    /// How long Redis keeps `entry` (its TTL and stale periods, in ms), and until when it is fresh in
    /// Redis's time.
    async fn lifetime<V>(&self, entry: &PutEntry<V>) -> (u64, Freshness) {
        if !entry.stale.is_none() {
            self.sync_clock_if_due().await;
        }
        let freshness = Freshness::starting_at(self.clock.now_ms(), entry.ttl, entry.stale);
        let ttl_ms = ttl_millis(entry.ttl.saturating_add(entry.stale.retention()));
        (ttl_ms, freshness)
    }

    /// Reads `key` from Redis; with a near tier, keeps a copy of what it finds.
    async fn lookup<V>(&self, key: CacheKey, near: Option<&NearTier<V>>) -> Result<Lookup<V>, Error>
    where
        V: DeserializeOwned + Clone + Send + Sync,
    {
        let entry_key = self.keys.entry(&key);
        let with_ttl = near.is_some();
        let (sent, history) = (tokio::time::Instant::now(), self.view.history());
        let (bytes, clock, ttl_ms) = self
            .run("get", true, |mut checkout| async move {
                let fetched = self.fetch(&mut checkout, &entry_key, with_ttl).await;
                (checkout, fetched.map_err(OpError::from))
            })
            .await?;
        // A fill that follows this miss starts after every invalidation the view knows of.
        let stamp = FillStamp::new(clock.max(self.view.cursor()));
        let Some(bytes) = bytes else {
            return Ok(Lookup::Miss { stamp });
        };
        let near = near
            .zip(ttl_ms.filter(|&ms| ms > 0))
            .map(|(tier, ttl_ms)| NearFill::new(tier, sent, history, ttl_ms));
        Ok(self.read_entry(&key, &bytes, stamp, near).await)
    }

    /// The entry's bytes, the clock read beside them without client tracking (0 with tracking: the view
    /// already follows it), and the entry's remaining TTL in ms when `with_ttl` (in the same round trip).
    /// Either way the view is brought up to date before the entry is judged.
    async fn fetch(
        &self,
        checkout: &mut Checkout,
        entry_key: &str,
        with_ttl: bool,
    ) -> RedisResult<(Option<Vec<u8>>, u64, Option<u64>)> {
        let conn = &mut checkout.connection;
        if checkout.tracked {
            let sent = tokio::time::Instant::now();
            // Redis pushes clock changes on this connection ahead of this reply: a plain GET, then a look
            // at the notices, is enough.
            let read = if with_ttl {
                // `ignore_errors`: a wrong type fails the GET alone, and keeps its code.
                redis::pipe()
                    .ignore_errors()
                    .get(entry_key)
                    .pttl(entry_key)
                    .query_async::<(RedisResult<Option<Vec<u8>>>, i64)>(conn)
                    .await
                    .and_then(|(bytes, ttl)| Ok((bytes?, u64::try_from(ttl).ok())))
            } else {
                redis::cmd("GET")
                    .arg(entry_key)
                    .query_async::<Option<Vec<u8>>>(conn)
                    .await
                    .map(|bytes| (bytes, None))
            };
            let (bytes, ttl_ms) = match read {
                // Another type at the entry's key: undecodable, so the next fill replaces it.
                Err(error) if error.code() == Some("WRONGTYPE") => (Some(Vec::new()), None),
                other => other?,
            };
            let notices = || self.tracking.notices();
            self.view.refresh(notices, &self.keys, conn).await?;
            self.prove_current(sent);
            return Ok((bytes, 0, ttl_ms));
        }
        let (bytes, clock) = redis::cmd("MGET")
            .arg(entry_key)
            .arg(&self.keys.epoch)
            .query_async::<(Option<Vec<u8>>, Option<u64>)>(conn)
            .await?;
        let clock = clock.unwrap_or(0);
        self.view.catch_up(clock, &self.keys, conn).await?;
        Ok((bytes, clock, None))
    }

    /// What an entry's bytes mean: invalidated (a miss), undecodable, fresh or stale. A live entry is
    /// copied into `near` with the TTL Redis has left on it.
    async fn read_entry<V>(
        &self,
        key: &CacheKey,
        bytes: &[u8],
        stamp: FillStamp,
        near: Option<NearFill<'_, V>>,
    ) -> Lookup<V>
    where
        V: DeserializeOwned + Clone + Send + Sync,
    {
        let raw = match envelope::parse::<C>(bytes) {
            Ok(raw) => raw,
            Err(error) => return Lookup::Undecodable { stamp, error },
        };
        if self.view.is_dead(key, raw.tags(), raw.stamp.get()) {
            return Lookup::Miss { stamp };
        }
        let value: V = match self.codec.decode(raw.payload) {
            Ok(value) => value,
            Err(error) => return Lookup::Undecodable { stamp, error },
        };
        // Redis expires the entry at the end of its stale periods; before that, its own deadlines, in
        // Redis's time, say whether it is still fresh.
        if !raw.freshness.is_always() {
            self.sync_clock_if_due().await;
        }
        if let Some(near) = near {
            let tags = raw.tags().map(str::to_owned).collect();
            near.keep(key, value.clone(), raw.stamp.get(), tags, raw.freshness);
        }
        match raw.freshness.stale_at(self.clock.now_ms()) {
            None => Lookup::Hit {
                value,
                stamp: raw.stamp,
            },
            Some(revalidate) => Lookup::Stale {
                value,
                stamp,
                revalidate,
            },
        }
    }

    /// A storing script (PUT or UPDATE) with the keys both take: the entry, then the invalidation state.
    fn storing<'a>(
        &'a self,
        script: &'a redis::Script,
        entry_key: &'a str,
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(entry_key)
            .key(&self.keys.records)
            .key(&self.keys.floor)
            .key(&self.keys.epoch);
        invocation
    }

    /// Stores a fill's entry; with a near tier, keeps a copy of what was stored.
    async fn store<V>(
        &self,
        key: CacheKey,
        entry: PutEntry<V>,
        near: Option<&NearTier<V>>,
    ) -> Result<PutOutcome, Error>
    where
        V: Serialize + Clone + Send + Sync,
    {
        let (ttl_ms, freshness) = self.lifetime(&entry).await;
        let mut names: Vec<String> = entry.tags.iter().map(|tag| tag_record(tag)).collect();
        names.push(key_record(&key));
        let entry_key = self.keys.entry(&key);
        let copy = near.map(|_| (entry.value.clone(), entry.tags.clone()));
        let (sent, history) = (tokio::time::Instant::now(), self.view.history());
        let (outcome, stamp) = self
            .run("put", true, |mut checkout| async move {
                let stored = async {
                    let stamp = match entry.stamp {
                        Some(stamp) => stamp.get(),
                        // A value returned by a write is as fresh as the clock now.
                        None => redis::cmd("GET")
                            .arg(&self.keys.epoch)
                            .query_async::<Option<u64>>(&mut checkout.connection)
                            .await?
                            .unwrap_or(0)
                            .max(self.view.cursor()),
                    };
                    let bytes = envelope::encode_with(
                        &self.codec,
                        FillStamp::new(stamp),
                        freshness,
                        &entry.tags,
                        &entry.value,
                    )?;
                    let mut invocation = self.storing(&scripts::PUT, &entry_key);
                    invocation.arg(stamp).arg(ttl_ms).arg(bytes).arg(&names);
                    let stored = invocation
                        .invoke_async::<i64>(&mut checkout.connection)
                        .await?;
                    let outcome = match stored {
                        1 => PutOutcome::Stored,
                        _ => PutOutcome::Superseded,
                    };
                    Ok((outcome, stamp))
                }
                .await;
                (checkout, stored)
            })
            .await?;
        if let (PutOutcome::Stored, Some(near), Some((value, tags))) = (outcome, near, copy) {
            let fill = NearFill::new(near, sent, history, ttl_ms);
            fill.keep(&key, value, stamp, tags.into_boxed_slice(), freshness);
        }
        Ok(outcome)
    }

    /// Stores a write's value; with a near tier, the key's copy becomes the stored value.
    async fn update<V>(
        &self,
        key: CacheKey,
        entry: PutEntry<V>,
        near: Option<&NearTier<V>>,
    ) -> Result<PutOutcome, Error>
    where
        V: Serialize + Clone + Send + Sync,
    {
        if let Some(near) = near {
            near.copies.remove(&key);
        }
        let (ttl_ms, freshness) = self.lifetime(&entry).await;
        let (sent, history) = (tokio::time::Instant::now(), self.view.history());
        let updated = self.update_in_redis(&key, &entry, ttl_ms, freshness).await;
        // Like an invalidation of the key: the view learns it before a copy is served here again.
        self.made_change();
        let tick = updated?;
        if let (Some(near), Some(tick)) = (near, tick) {
            let fill = NearFill::new(near, sent, history, ttl_ms);
            fill.keep(
                &key,
                entry.value,
                tick,
                entry.tags.into_boxed_slice(),
                freshness,
            );
        }
        Ok(match tick {
            Some(_) => PutOutcome::Stored,
            None => PutOutcome::Superseded,
        })
    }

    /// The UPDATE script: the tick the entry was stamped with, or `None` when superseded.
    async fn update_in_redis<V: Serialize>(
        &self,
        key: &CacheKey,
        entry: &PutEntry<V>,
        ttl_ms: u64,
        freshness: Freshness,
    ) -> Result<Option<u64>, Error> {
        // The stamp is the update's own tick, known only inside the script: encode around a placeholder
        // and let the script splice the tick in.
        let bytes = envelope::encode_with(
            &self.codec,
            FillStamp::new(0),
            freshness,
            &entry.tags,
            &entry.value,
        )?;
        let (head, tail) = (
            bytes[..envelope::STAMP_OFFSET].to_vec(),
            bytes[envelope::STAMP_OFFSET + 8..].to_vec(),
        );
        let base = entry
            .stamp
            .map(|stamp| stamp.get().to_string())
            .unwrap_or_default();
        let tags: Vec<String> = entry.tags.iter().map(|tag| tag_record(tag)).collect();
        let entry_key = self.keys.entry(key);
        let key_name = key_record(key);
        self.run("put", true, |mut checkout| async move {
            let mut invocation = self.storing(&scripts::UPDATE, &entry_key);
            invocation
                .arg(&base)
                .arg(ttl_ms)
                .arg(head)
                .arg(tail)
                .arg(self.max_records)
                .arg(&key_name)
                .arg(&tags);
            let tick = invocation
                .invoke_async::<u64>(&mut checkout.connection)
                .await;
            (
                checkout,
                tick.map(|at| (at > 0).then_some(at)).map_err(OpError::from),
            )
        })
        .await
    }

    async fn claim_fill(
        &self,
        claim: String,
        token: u64,
        lease: Duration,
    ) -> Result<FillClaim, Error> {
        self.run("claim", true, |mut checkout| async move {
            let claimed = scripts::CLAIM_FILL
                .key(&claim)
                .arg(token)
                .arg(ttl_millis(lease))
                .invoke_async::<i64>(&mut checkout.connection)
                .await;
            let claimed = match claimed {
                Ok(1) => Ok(FillClaim::Granted),
                Ok(_) => Ok(FillClaim::Held),
                Err(error) => Err(OpError::from(error)),
            };
            (checkout, claimed)
        })
        .await
    }

    /// Never fails fast: a claim left behind makes other processes wait for its lease.
    async fn release_fill(&self, claim: String, token: u64) -> Result<(), Error> {
        self.run("release", false, |mut checkout| async move {
            let released = scripts::RELEASE_FILL
                .key(&claim)
                .arg(token)
                .invoke_async::<i64>(&mut checkout.connection)
                .await;
            (checkout, released.map(drop).map_err(OpError::from))
        })
        .await
    }

    async fn invalidate(
        &self,
        operation: &'static str,
        names: Vec<String>,
        unlink: Option<String>,
    ) -> Result<(), Error> {
        let invalidated = self
            .run(operation, false, |mut checkout| async move {
                let mut invocation = scripts::INVALIDATE.prepare_invoke();
                invocation
                    .key(&self.keys.epoch)
                    .key(&self.keys.records)
                    .key(&self.keys.floor);
                if let Some(entry_key) = &unlink {
                    invocation.key(entry_key);
                }
                invocation.arg(self.max_records).arg(&names);
                let recorded = invocation
                    .invoke_async::<u64>(&mut checkout.connection)
                    .await;
                if let Ok(at) = recorded {
                    tracing::debug!(at, records = names.len(), "invalidation recorded");
                }
                (checkout, recorded.map(drop).map_err(OpError::from))
            })
            .await;
        self.made_change();
        invalidated
    }

    async fn clear(self: Arc<Self>) -> Result<(), Error> {
        let keys = &self.keys;
        let cleared = self
            .run("clear", false, |mut checkout| async move {
                let mut invocation = scripts::CLEAR.prepare_invoke();
                invocation
                    .key(&keys.epoch)
                    .key(&keys.records)
                    .key(&keys.floor);
                let cleared = invocation
                    .invoke_async::<u64>(&mut checkout.connection)
                    .await;
                (checkout, cleared.map(drop).map_err(OpError::from))
            })
            .await;
        self.made_change();
        cleared?;
        // Every entry is already gone for readers (the floor). Unlinking them only frees memory, so it runs
        // in the background, one bounded `SCAN` step at a time, matching only this prefix's entries.
        tokio::spawn(async move {
            if let Err(error) = self.sweep_entries().await {
                tracing::warn!(error = %error, "clear: unlinking entries stopped early; their TTLs will expire them");
            }
        });
        Ok(())
    }

    async fn sweep_entries(&self) -> Result<(), Error> {
        let mut cursor = 0u64;
        loop {
            let pattern = &self.keys.entry_pattern;
            cursor = self
                .run("clear", false, |mut checkout| async move {
                    let conn = &mut checkout.connection;
                    let step: Result<u64, OpError> = async {
                        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(CLEAR_BATCH)
                            .query_async(conn)
                            .await?;
                        if !found.is_empty() {
                            redis::cmd("UNLINK")
                                .arg(&found)
                                .query_async::<()>(conn)
                                .await?;
                        }
                        Ok(next)
                    }
                    .await;
                    (checkout, step)
                })
                .await?;
            if cursor == 0 {
                return Ok(());
            }
        }
    }
}

type RedisResult<T> = Result<T, RedisError>;

/// Longest TTL written to Redis: a hundred years, far inside what `PX` accepts.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}

/// A background proof of the view, running: its claim ends when this is dropped.
struct Proving<C: Codec>(Arc<Inner<C>>);

impl<C: Codec> Drop for Proving<C> {
    fn drop(&mut self) {
        self.0.coherence.done_proving();
    }
}

/// Why an operation failed: Redis (which may retire the connection) or the cache itself.
enum OpError {
    Redis(RedisError),
    Cache(Error),
}

impl From<RedisError> for OpError {
    fn from(error: RedisError) -> Self {
        Self::Redis(error)
    }
}

impl From<Error> for OpError {
    fn from(error: Error) -> Self {
        Self::Cache(error)
    }
}

impl<V, C> Invalidate for RedisStore<V, C>
where
    V: Send + Sync + 'static,
    C: Codec,
{
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        if let Some(near) = &self.near {
            near.copies.remove(key);
        }
        let inner = Arc::clone(&self.inner);
        let names = vec![key_record(key)];
        let entry_key = inner.keys.entry(key);
        StoreFuture::pending(
            async move { inner.invalidate("remove", names, Some(entry_key)).await },
        )
    }

    fn invalidate_tags(&self, tags: &[String]) -> StoreFuture<Result<(), Error>> {
        let inner = Arc::clone(&self.inner);
        let names = tags.iter().map(|tag| tag_record(tag)).collect();
        StoreFuture::pending(async move { inner.invalidate("invalidate", names, None).await })
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        if let Some(near) = &self.near {
            near.copies.clear();
        }
        let inner = Arc::clone(&self.inner);
        StoreFuture::pending(async move { inner.clear().await })
    }

    fn bounds_its_operations(&self) -> bool {
        true
    }
}

impl<V, C> Store for RedisStore<V, C>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + 'static,
{
    type Value = V;

    /// One script: `SET {prefix}:c:<key> <token> NX PX <lease>`, or granted again to the token that
    /// holds it.
    fn claim_fill(
        &self,
        key: &CacheKey,
        token: u64,
        lease: Duration,
    ) -> StoreFuture<Result<FillClaim, Error>> {
        let inner = Arc::clone(&self.inner);
        let claim = inner.keys.claim(key);
        StoreFuture::pending(async move { inner.claim_fill(claim, token, lease).await })
    }

    fn release_fill(&self, key: &CacheKey, token: u64) -> StoreFuture<Result<(), Error>> {
        let inner = Arc::clone(&self.inner);
        let claim = inner.keys.claim(key);
        StoreFuture::pending(async move { inner.release_fill(claim, token).await })
    }

    /// From the process's view of the invalidations, which every lookup brings up to date: no round trip.
    fn invalidated_since(&self, key: &CacheKey, tags: &[String], stamp: FillStamp) -> bool {
        let tags = tags.iter().map(String::as_str);
        self.inner.view.is_dead(key, tags, stamp.get())
    }

    /// With a near tier: its copy when the view is proven current (no round trip), else Redis.
    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<V>, Error>> {
        if let Some(near) = &self.near {
            let now = tokio::time::Instant::now();
            let standing = self.inner.near_standing(now);
            if standing == Standing::Renew {
                self.inner.renew_proof(now);
            }
            if standing != Standing::Unproven {
                if let Some(found) = self.inner.near_lookup(near, key, now) {
                    return StoreFuture::ready(Ok(found));
                }
            }
        }
        let inner = Arc::clone(&self.inner);
        let near = self.near.clone();
        let key = key.clone();
        StoreFuture::pending(async move { inner.lookup(key, near.as_deref()).await })
    }

    fn put(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        let inner = Arc::clone(&self.inner);
        let near = self.near.clone();
        let key = key.clone();
        StoreFuture::pending(async move { inner.store(key, entry, near.as_deref()).await })
    }

    fn update(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        let inner = Arc::clone(&self.inner);
        let near = self.near.clone();
        let key = key.clone();
        StoreFuture::pending(async move { inner.update(key, entry, near.as_deref()).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_before_any_runtime_exists() {
        // Nothing listens on port 1; connections open on first use, inside the runtime.
        let store = RedisStore::<String>::connect("redis://127.0.0.1:1", RedisOptions::default())
            .expect("a valid URL");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ping = runtime.block_on(store.ping());
        assert!(ping.is_err(), "nothing answers on port 1: {ping:?}");
        let lookup = runtime.block_on(store.get(&CacheKey::from("k")));
        assert!(lookup.is_err(), "a store error, never a panic");
    }
}
