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
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::RoutingInfo;
use redis::{Client, IntoConnectionInfo, ProtocolVersion, RedisError, ScriptInvocation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::circuit::Circuit;
use crate::cluster::{self, ClusterConnections, Master};
use crate::connection::{shared_pool, Checkout, Conn, Connections, Pick, SharedPool};
use crate::keys::{key_record, tag_record, Keys};
use crate::near::{Coherence, NearFill, NearTier, Standing};
use crate::options::{redact, RedisOptions, MAX_CLUSTER_GROUPS, REDIS_CLUSTER_URLS, REDIS_URL};
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
    /// For what is not an entry's: `PING`, `TIME`, `clear`'s sweep and other components' scripts. On
    /// one server, the same circuit as the one group's: one outage, one circuit.
    circuit: Arc<Circuit>,
    /// On a cluster, for invalidations sent to every master (they never fail fast, and their
    /// timeouts say nothing of the shard holding other components' keys).
    broadcasts: Circuit,
    /// `{prefix}:`, under which other components' scripts keep their keys.
    base: String,
    /// The prefix's invalidation groups: one on a single server; on a cluster, one per
    /// [`RedisOptions::cluster_groups`], spread over the shards (see [`crate::cluster`]).
    groups: Box<[Group]>,
    /// On a cluster: what invalidations wait for, and where `clear` sweeps.
    cluster: Option<ClusterShape>,
    clock: ServerClock,
    codec: C,
    timeout: Duration,
    max_records: usize,
    /// Whether near copies may be served now (see [`crate::near`]).
    coherence: Coherence,
    /// Whether the store keeps near copies.
    near: bool,
}

/// One invalidation group: its keys, this process's view of its records, and its circuit (so a shard
/// that is down fails fast alone while the others keep caching).
struct Group {
    keys: Keys,
    view: View,
    circuit: Arc<Circuit>,
}

/// What a store on a cluster needs beyond its groups.
struct ClusterShape {
    /// Replicas that must acknowledge an invalidation before it returns (`WAIT`).
    replica_acks: u32,
    /// `SCAN` pattern matching the entries of every group of the prefix (and possibly of other
    /// prefixes whose name extends it: found keys are checked against the groups).
    entry_pattern: String,
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
            .field("base", &self.inner.base)
            .field("groups", &self.inner.groups.len())
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

    /// A store on the Redis Cluster reached through the seed nodes `urls` (`redis://` or `rediss://`;
    /// any few of its nodes: the client learns the others), with the bincode codec. Entries spread over
    /// every shard; see the [crate docs](crate#redis-cluster).
    ///
    /// Like [`connect`](Self::connect), it opens connections on first use and needs no runtime.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `REDIS_CLUSTER_URLS` when there is no URL or one cannot be parsed,
    /// or `CACHE_KEY_PREFIX` when the prefix holds a `#`.
    pub fn connect_cluster<S: AsRef<str>>(
        urls: &[S],
        options: RedisOptions,
    ) -> Result<Self, Error> {
        Self::cluster_with_codec(urls, options, Bincode)
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
        Self::build(connections, tracking, options, codec, false)
    }

    /// Like [`connect_cluster`](RedisStore::connect_cluster), with another codec.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `REDIS_CLUSTER_URLS` when there is no URL or one cannot be parsed,
    /// or `CACHE_KEY_PREFIX` when the prefix holds a `#`.
    pub fn cluster_with_codec<S: AsRef<str>>(
        urls: &[S],
        options: RedisOptions,
        codec: C,
    ) -> Result<Self, Error> {
        if options.key_prefix.contains('#') {
            // `{prefix#n}` names a group: another prefix ending in `#n` would share its hash tag.
            return Err(cache_core::config::env::invalid(
                "CACHE_KEY_PREFIX",
                &options.key_prefix,
                "'#' is not allowed on a cluster: it separates the prefix from its group number",
            ));
        }
        let builder = cluster_builder(urls, &options)?;
        let groups_key = format!("{}groups", Keys::new(&options.key_prefix).base);
        let groups = options.cluster_groups.clamp(1, MAX_CLUSTER_GROUPS);
        let connections = ClusterConnections::new(builder, options.timeout, groups_key, groups);
        let connections = connections.map_err(|error| {
            let urls: Vec<String> = urls.iter().map(|url| redact(url.as_ref())).collect();
            cache_core::config::env::invalid(REDIS_CLUSTER_URLS, &urls.join(","), error.to_string())
        })?;
        // The cluster client opens node connections on its own, with no way to ask each to track the
        // clock: reads fetch it beside the entry (`MGET`, one slot), and there is no near tier.
        let tracking = Tracking::new(false, String::new());
        let connections = Connections::Cluster(Box::new(connections));
        Self::build(connections, tracking, options, codec, true)
    }

    fn build(
        connections: Connections,
        tracking: Arc<Tracking>,
        options: RedisOptions,
        codec: C,
        on_cluster: bool,
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
                    cluster = on_cluster,
                    "near tier off: it needs client tracking, which this store does not use"
                );
                None
            }
            capacity => Some(Arc::new(NearTier::new(capacity))),
        };
        let tags = match on_cluster {
            true => cluster::group_tags(
                &key_prefix,
                options.cluster_groups.clamp(1, MAX_CLUSTER_GROUPS),
            ),
            false => vec![key_prefix.clone()],
        };
        let cluster = on_cluster.then(|| ClusterShape {
            replica_acks: options.replica_acks,
            entry_pattern: format!("{{{key_prefix}#*}}:e:*"),
        });
        let base_circuit = Arc::new(Circuit::new());
        let groups = tags
            .iter()
            .map(|tag| Group {
                keys: Keys::new(tag),
                view: View::new(options.max_invalidation_records),
                circuit: match on_cluster {
                    true => Arc::new(Circuit::new()),
                    false => Arc::clone(&base_circuit),
                },
            })
            .collect();
        let inner = Inner {
            connections,
            tracking,
            circuit: base_circuit,
            broadcasts: Circuit::new(),
            base: Keys::new(&key_prefix).base,
            groups,
            cluster,
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
        RedisScripts::new(self.inner.clone(), &self.inner.base)
    }

    /// The Redis key holding `key`'s entry (on a cluster, in the slot of `key`'s group), to inspect
    /// it with `redis-cli`; the cache never needs it.
    pub fn entry_key(&self, key: &CacheKey) -> String {
        self.inner.group(key).keys.entry(key)
    }

    /// The Redis key of the claim on filling `key` (shared single flight), to inspect it.
    pub fn claim_key(&self, key: &CacheKey) -> String {
        self.inner.group(key).keys.claim(key)
    }

    /// Copies held by the near tier (0 when it is off).
    pub fn near_entry_count(&self) -> usize {
        self.near.as_ref().map_or(0, |near| near.copies.len())
    }
}

impl<C: Codec> Inner<C> {
    async fn ping(&self) -> Result<(), Error> {
        self.run("ping", false, &self.circuit, |mut checkout| async move {
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
        Box::pin(self.run(
            operation,
            true,
            &self.circuit,
            move |mut checkout| async move {
                let value = invocation
                    .invoke_async::<redis::Value>(&mut checkout.connection)
                    .await;
                (checkout, value.map_err(OpError::from))
            },
        ))
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

/// The cluster client's builder for the seed nodes `urls`, with the CA of the options for `rediss://`.
fn cluster_builder<S: AsRef<str>>(
    urls: &[S],
    options: &RedisOptions,
) -> Result<ClusterClientBuilder, Error> {
    let invalid = |url: &str, why: String| {
        cache_core::config::env::invalid(REDIS_CLUSTER_URLS, &redact(url), why)
    };
    if urls.is_empty() {
        return Err(invalid("", "expected at least one node's URL".to_owned()));
    }
    let mut nodes = Vec::with_capacity(urls.len());
    for url in urls {
        let url = url.as_ref().trim();
        let info = url
            .into_connection_info()
            .map_err(|error| invalid(url, format!("not a usable Redis URL: {error}")))?;
        nodes.push(info);
    }
    let mut builder = ClusterClientBuilder::new(nodes);
    if urls
        .iter()
        .any(|url| url.as_ref().trim().starts_with("rediss://"))
    {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(ca) = &options.tls_ca_pem {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            });
        }
    }
    Ok(builder)
}

/// Which connection an operation runs on.
#[derive(Clone, Copy)]
enum Lane {
    /// The connection of reads and puts: one of the pool's, or the cluster's read connection.
    Reads,
    /// On a cluster, the connection invalidations wait on for their replicas.
    ClusterWrites,
}

impl<C: Codec> Inner<C> {
    /// The group `key` belongs to.
    fn group(&self, key: &str) -> &Group {
        &self.groups[cluster::group_of(key, self.groups.len())]
    }

    /// The one group of a single server: the near tier and client tracking exist only there.
    fn single(&self) -> &Group {
        &self.groups[0]
    }

    async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        fail_fast: bool,
        circuit: &Circuit,
        work: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(Checkout) -> Fut,
        Fut: Future<Output = (Checkout, Result<T, OpError>)>,
    {
        self.run_on(Lane::Reads, operation, fail_fast, circuit, work)
            .await
    }

    /// Runs one store operation under the timeout, on a checked-out connection that `work` hands back
    /// with its result, so a failure can retire it. While the circuit
    /// is open, reads and writes of entries (`fail_fast`) fail at once; invalidations always try, since a
    /// lost invalidation would leave entries stale. A connection whose operation timed out is retired: a
    /// silent socket would otherwise keep its slot until the kernel gives up on it.
    async fn run_on<T, F, Fut>(
        &self,
        lane: Lane,
        operation: &'static str,
        fail_fast: bool,
        circuit: &Circuit,
        work: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(Checkout) -> Fut,
        Fut: Future<Output = (Checkout, Result<T, OpError>)>,
    {
        if fail_fast && !circuit.allows() {
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
            circuit.trip(&error);
            error
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let ready = match lane {
            Lane::Reads => self.connections.ready(),
            Lane::ClusterWrites => Err(Pick::Writes),
        };
        let checkout = match ready {
            Ok(checkout) => checkout,
            Err(pick) => {
                match tokio::time::timeout_at(deadline, self.connections.checkout(pick)).await {
                    Ok(Ok(checkout)) => checkout,
                    Ok(Err(error)) => {
                        circuit.trip(&error);
                        return Err(Error::store(operation, error));
                    }
                    Err(_) => {
                        self.renew_cluster_connections();
                        return Err(timed_out());
                    }
                }
            }
        };
        let retire = checkout.retirement();
        let result = match tokio::time::timeout_at(deadline, work(checkout)).await {
            Ok((_, Ok(value))) => Ok(value),
            Ok((checkout, Err(OpError::Redis(error)))) => {
                if checkout.note(&error) {
                    circuit.trip(&error);
                }
                Err(Error::store(operation, error))
            }
            Ok((_, Err(OpError::Cache(error)))) => Err(error),
            Err(_) => {
                retire.retire();
                self.renew_cluster_connections();
                Err(timed_out())
            }
        };
        match &result {
            Ok(_) => circuit.close(),
            // Whatever failed, this process may have missed a notice: near copies wait for a proof.
            Err(_) => self.coherence.doubt(),
        }
        result
    }

    fn cluster_connections(&self) -> Option<&ClusterConnections> {
        match &self.connections {
            Connections::Cluster(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// On a cluster, an operation that timed out may have been sent to a master that hangs: the next
    /// operations go through connections that read the slots afresh.
    fn renew_cluster_connections(&self) {
        if let Connections::Cluster(cluster) = &self.connections {
            cluster.renew();
        }
    }

    /// Whether near copies may be served: no tracking notice waits to be read into the view, and a
    /// recent round trip proved the view current.
    fn near_standing(&self, now: tokio::time::Instant) -> Standing {
        if !self.tracking.enabled() || self.tracking.notices() > self.single().view.noticed() {
            return Standing::Unproven;
        }
        self.coherence.standing(now)
    }

    /// A round trip on a tracked connection, sent at `sent`, has come back and the view caught up with
    /// its notices: if no notice arrived since, the view held every invalidation that had returned when
    /// it was sent.
    fn prove_current(&self, sent: tokio::time::Instant) {
        if self.tracking.notices() <= self.single().view.noticed() {
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
                .run("prove", true, &inner.single().circuit, |mut checkout| async move {
                    let sent = tokio::time::Instant::now();
                    let proved = async {
                        if checkout.tracked {
                            let conn = &mut checkout.connection;
                            redis::cmd("PING").query_async::<()>(conn).await?;
                            let notices = || inner.tracking.notices();
                            let group = inner.single();
                            group.view.refresh(notices, &group.keys, conn).await?;
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
        let view = &self.single().view;
        let (version, history) = (view.version(), view.history());
        near.copies.read(key, |copy| {
            if now >= copy.expires_at || copy.history != history {
                return None;
            }
            // Judged against the records once per change of them, not on every hit.
            if copy.alive_at.load(Ordering::Relaxed) != version {
                let tags = copy.tags.iter().map(String::as_str);
                if view.is_dead(key, tags, copy.stamp) {
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
                    stamp: FillStamp::new(view.cursor()),
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
            .run("time", true, &self.circuit, |mut checkout| async move {
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
        let group = self.group(&key);
        let entry_key = group.keys.entry(&key);
        let with_ttl = near.is_some();
        let (sent, history) = (tokio::time::Instant::now(), group.view.history());
        let (bytes, clock, ttl_ms) = self
            .run("get", true, &group.circuit, |mut checkout| async move {
                let fetched = self.fetch(group, &mut checkout, &entry_key, with_ttl).await;
                (checkout, fetched.map_err(OpError::from))
            })
            .await?;
        // A fill that follows this miss starts after every invalidation the view knows of.
        let stamp = FillStamp::new(clock.max(group.view.cursor()));
        let Some(bytes) = bytes else {
            return Ok(Lookup::Miss { stamp });
        };
        let near = near
            .zip(ttl_ms.filter(|&ms| ms > 0))
            .map(|(tier, ttl_ms)| NearFill::new(tier, sent, history, ttl_ms));
        Ok(self.read_entry(group, &key, &bytes, stamp, near).await)
    }

    /// The entry's bytes, the clock read beside them without client tracking (0 with tracking: the view
    /// already follows it), and the entry's remaining TTL in ms when `with_ttl` (in the same round trip).
    /// Either way the view is brought up to date before the entry is judged.
    async fn fetch(
        &self,
        group: &Group,
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
            group.view.refresh(notices, &group.keys, conn).await?;
            self.prove_current(sent);
            return Ok((bytes, 0, ttl_ms));
        }
        let (bytes, clock) = redis::cmd("MGET")
            .arg(entry_key)
            .arg(&group.keys.epoch)
            .query_async::<(Option<Vec<u8>>, Option<u64>)>(conn)
            .await?;
        let clock = clock.unwrap_or(0);
        group.view.catch_up(clock, &group.keys, conn).await?;
        Ok((bytes, clock, None))
    }

    /// What an entry's bytes mean: invalidated (a miss), undecodable, fresh or stale. A live entry is
    /// copied into `near` with the TTL Redis has left on it.
    async fn read_entry<V>(
        &self,
        group: &Group,
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
        if group.view.is_dead(key, raw.tags(), raw.stamp.get()) {
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
        let group = self.group(&key);
        let entry_key = group.keys.entry(&key);
        let copy = near.map(|_| (entry.value.clone(), entry.tags.clone()));
        let (sent, history) = (tokio::time::Instant::now(), group.view.history());
        let (outcome, stamp) = self
            .run("put", true, &group.circuit, |mut checkout| async move {
                let stored = async {
                    let stamp = match entry.stamp {
                        Some(stamp) => stamp.get(),
                        // A value returned by a write is as fresh as the clock now.
                        None => redis::cmd("GET")
                            .arg(&group.keys.epoch)
                            .query_async::<Option<u64>>(&mut checkout.connection)
                            .await?
                            .unwrap_or(0)
                            .max(group.view.cursor()),
                    };
                    let bytes = envelope::encode_with(
                        &self.codec,
                        FillStamp::new(stamp),
                        freshness,
                        &entry.tags,
                        &entry.value,
                    )?;
                    let mut invocation = scripts::PUT.prepare_invoke();
                    invocation
                        .key(&entry_key)
                        .key(&group.keys.records)
                        .key(&group.keys.floor)
                        .key(&group.keys.epoch);
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
        let (sent, history) = (tokio::time::Instant::now(), self.group(&key).view.history());
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
        let group = self.group(key);
        let entry_key = group.keys.entry(key);
        let key_name = key_record(key);
        let waited = self.cluster.as_ref().filter(|shape| shape.replica_acks > 0);
        let lane = match waited {
            Some(_) => Lane::ClusterWrites,
            None => Lane::Reads,
        };
        self.run_on(
            lane,
            "put",
            true,
            &group.circuit,
            |mut checkout| async move {
                let mut pipe = redis::pipe();
                pipe.cmd("EVALSHA")
                    .arg(scripts::UPDATE.get_hash())
                    .arg(4)
                    .arg(&entry_key)
                    .arg(&group.keys.records)
                    .arg(&group.keys.floor)
                    .arg(&group.keys.epoch)
                    .arg(&base)
                    .arg(ttl_ms)
                    .arg(&head)
                    .arg(&tail)
                    .arg(self.max_records)
                    .arg(&key_name)
                    .arg(&tags);
                // Like an invalidation of the key: a failover must not bring the old entry back.
                if let Some(shape) = waited {
                    pipe.cmd("ROLE");
                    // Up to the replicas the master had when the masters were last read.
                    let slot = cluster::slot(entry_key.as_bytes());
                    let expected = shape.replica_acks.min(
                        self.cluster_connections()
                            .and_then(|cluster| cluster.known_replicas(slot))
                            .unwrap_or(shape.replica_acks),
                    );
                    if expected > 0 {
                        pipe.cmd("WAIT").arg(expected).arg(self.wait_ms());
                    }
                }
                let tick = self
                    .update_through(&mut checkout.connection, &pipe, waited)
                    .await;
                (checkout, tick.map(|at| (at > 0).then_some(at)))
            },
        )
        .await
    }

    /// Runs an UPDATE pipeline (loading the script where the node lacks it): its tick, once enough
    /// replicas acknowledged it when `waited` (the pipeline then ends in `ROLE` and maybe `WAIT`).
    async fn update_through(
        &self,
        conn: &mut Conn,
        pipe: &redis::Pipeline,
        waited: Option<&ClusterShape>,
    ) -> Result<u64, OpError> {
        let replies = match pipe.query_async::<Vec<redis::Value>>(conn).await {
            Err(error) if error.code() == Some("NOSCRIPT") => {
                scripts::UPDATE.prepare_invoke().load_async(conn).await?;
                pipe.query_async::<Vec<redis::Value>>(conn).await?
            }
            other => other?,
        };
        let mut replies = replies.into_iter();
        let tick: u64 = match replies.next() {
            Some(tick) => redis::from_redis_value(tick).map_err(RedisError::from)?,
            None => return Err(Error::store("put", "no reply to the update").into()),
        };
        let Some(shape) = waited else {
            return Ok(tick);
        };
        let role = replies.next();
        let acks = match replies.next() {
            Some(redis::Value::Int(acks)) => u32::try_from(acks).unwrap_or(0),
            _ => 0,
        };
        // As for invalidations: up to the replicas the master has.
        let replicas = role
            .as_ref()
            .and_then(cluster::replicas_in_role)
            .unwrap_or(shape.replica_acks);
        let required = shape.replica_acks.min(replicas);
        if tick > 0 && acks < required {
            // The masters as last read may be out of date: read them again next time.
            if let Some(cluster) = self.cluster_connections() {
                cluster.forget_masters();
            }
            return Err(self.unacknowledged("put", acks, required).into());
        }
        Ok(tick)
    }

    /// How long a `WAIT` waits for replicas: half the timeout, leaving the rest to the script.
    fn wait_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis() / 2)
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn unacknowledged(&self, operation: &'static str, acks: u32, required: u32) -> Error {
        Error::store(
            operation,
            format!(
                "recorded on the master, acknowledged by {acks} of the {required} replicas required within {} ms: a failover now could lose it",
                self.wait_ms()
            ),
        )
    }

    async fn claim_fill(
        &self,
        key: &CacheKey,
        token: u64,
        lease: Duration,
    ) -> Result<FillClaim, Error> {
        let group = self.group(key);
        let claim = group.keys.claim(key);
        self.run("claim", true, &group.circuit, |mut checkout| async move {
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
    async fn release_fill(&self, key: &CacheKey, token: u64) -> Result<(), Error> {
        let group = self.group(key);
        let claim = group.keys.claim(key);
        self.run(
            "release",
            false,
            &group.circuit,
            |mut checkout| async move {
                let released = scripts::RELEASE_FILL
                    .key(&claim)
                    .arg(token)
                    .invoke_async::<i64>(&mut checkout.connection)
                    .await;
                (checkout, released.map(drop).map_err(OpError::from))
            },
        )
        .await
    }

    /// Records an invalidation of tags in every group (their entries may live in any), or of a key in
    /// its own group, where its entry is also unlinked.
    async fn invalidate(
        &self,
        operation: &'static str,
        names: Vec<String>,
        key: Option<&CacheKey>,
    ) -> Result<(), Error> {
        let mut args = vec![self.max_records.to_string()];
        args.extend(names);
        let groups: Vec<&Group> = match key {
            Some(key) => vec![self.group(key)],
            None => self.groups.iter().collect(),
        };
        let invalidated = self
            .in_groups(operation, &scripts::INVALIDATE, groups, |group| {
                let mut keys = group.keys.state();
                keys.extend(key.map(|key| group.keys.entry(key)));
                (keys, args.clone())
            })
            .await;
        self.made_change();
        invalidated
    }

    /// Runs one of the invalidation-state scripts (INVALIDATE, CLEAR: first keys the group's clock,
    /// records and floor) in `groups`. Fails with the first group's error, after every group was tried.
    async fn in_groups(
        &self,
        operation: &'static str,
        script: &'static redis::Script,
        groups: Vec<&Group>,
        invocation: impl Fn(&Group) -> (Vec<String>, Vec<String>),
    ) -> Result<(), Error> {
        if let Some(shape) = &self.cluster {
            let calls = groups.iter().map(|group| invocation(group)).collect();
            return self.on_masters(operation, script, calls, shape).await;
        }
        for group in groups {
            let (keys, args) = invocation(group);
            self.run(
                operation,
                false,
                &group.circuit,
                |mut checkout| async move {
                    let mut invocation = script.prepare_invoke();
                    for key in &keys {
                        invocation.key(key);
                    }
                    for arg in &args {
                        invocation.arg(arg);
                    }
                    let recorded = invocation
                        .invoke_async::<u64>(&mut checkout.connection)
                        .await;
                    if let Ok(at) = recorded {
                        tracing::debug!(at, operation, "invalidation recorded");
                    }
                    (checkout, recorded.map(drop).map_err(OpError::from))
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Runs `script` once per `(keys, args)` of `calls` on a cluster: one pipeline per master, holding
    /// every call whose slot it serves, then `WAIT` for [`RedisOptions::replica_acks`] replicas, so that
    /// a failover cannot lose what returned. One `WAIT` per master, not per group: Redis answers
    /// nothing else on a connection while a `WAIT` blocks it. Calls a master refused (moved slots, a
    /// script it does not know) are sent again after the masters are read again, within the timeout.
    async fn on_masters(
        &self,
        operation: &'static str,
        script: &'static redis::Script,
        calls: Vec<(Vec<String>, Vec<String>)>,
        shape: &ClusterShape,
    ) -> Result<(), Error> {
        let Connections::Cluster(cluster) = &self.connections else {
            return Err(Error::store(operation, "not a cluster"));
        };
        let calls = &calls;
        self.run_on(
            Lane::ClusterWrites,
            operation,
            false,
            &self.broadcasts,
            |mut checkout| async move {
                let recorded = match &mut checkout.connection {
                    Conn::Cluster(conn) => {
                        self.record_on_masters(cluster, conn, script, calls, shape)
                            .await
                    }
                    Conn::Node(_) => {
                        Err(Error::store(operation, "not a cluster connection").into())
                    }
                };
                (checkout, recorded)
            },
        )
        .await
    }

    async fn record_on_masters(
        &self,
        cluster: &ClusterConnections,
        conn: &mut ClusterConnection,
        script: &redis::Script,
        calls: &[(Vec<String>, Vec<String>)],
        shape: &ClusterShape,
    ) -> Result<(), OpError> {
        let mut pending: Vec<usize> = (0..calls.len()).collect();
        let mut last_error = None;
        // Unless every call lands, the masters are read again next time (dropped unfinished too).
        let forget = ForgetMasters(cluster);
        for attempt in 0..MASTER_ATTEMPTS {
            if attempt > 0 {
                // Slots on the move, or a failover under way.
                tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
            }
            let masters = match cluster.masters(conn, attempt > 0).await {
                Ok(masters) => masters,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            let round = self
                .send_to_masters(conn, script, calls, &pending, &masters, shape)
                .await;
            if let Some(unacknowledged) = round.unacknowledged {
                // Sending again would not make a replica answer sooner.
                return Err(unacknowledged.into());
            }
            if round.noscript {
                if let Err(error) = script.prepare_invoke().load_async(conn).await {
                    last_error = Some(error);
                }
            }
            last_error = round.refused.or(last_error);
            pending = round.again;
            if pending.is_empty() {
                std::mem::forget(forget);
                return Ok(());
            }
        }
        Err(last_error.map_or_else(
            || Error::store("invalidate", "no master serves the groups' slots").into(),
            OpError::from,
        ))
    }

    /// One pipeline per master with the `pending` calls whose slot it serves (as `masters` says),
    /// then `WAIT`; all masters at once.
    async fn send_to_masters(
        &self,
        conn: &ClusterConnection,
        script: &redis::Script,
        calls: &[(Vec<String>, Vec<String>)],
        pending: &[usize],
        masters: &[Master],
        shape: &ClusterShape,
    ) -> Round {
        let mut round = Round::default();
        let mut routed: Vec<(&Master, Vec<usize>)> = Vec::new();
        for &call in pending {
            let slot = cluster::slot(calls[call].0[0].as_bytes());
            match masters.iter().find(|master| master.serves(slot)) {
                Some(master) => match routed.iter_mut().find(|(m, _)| std::ptr::eq(*m, master)) {
                    Some((_, batch)) => batch.push(call),
                    None => routed.push((master, vec![call])),
                },
                None => round.again.push(call),
            }
        }
        let wait_ms = self.wait_ms();
        let waits = shape.replica_acks > 0;
        let sends = routed.into_iter().map(|(master, batch)| {
            let mut conn = conn.clone();
            // By slot, through the client's view of the slots: the batch goes to whichever master
            // serves its first call now, and calls whose slot it does not serve answer `MOVED`.
            let route = cluster::slot_route(cluster::slot(calls[batch[0]].0[0].as_bytes()));
            let mut pipe = redis::pipe();
            for &call in &batch {
                let (keys, args) = &calls[call];
                pipe.cmd("EVALSHA")
                    .arg(script.get_hash())
                    .arg(keys.len())
                    .arg(keys)
                    .arg(args);
            }
            // The replicas the master has now (`ROLE`), then `WAIT` for as many as required, up to
            // those it had when the masters were last read.
            let expected = shape.replica_acks.min(master.replicas);
            if waits {
                pipe.cmd("ROLE");
                if expected > 0 {
                    pipe.cmd("WAIT").arg(expected).arg(wait_ms);
                }
            }
            let count = pipe.len();
            async move {
                let replies = conn.route_pipeline(pipe, 0, count, route).await;
                (batch, count, replies)
            }
        });
        for (batch, count, replies) in futures_util::future::join_all(sends).await {
            let replies = match replies {
                Ok(replies) if replies.len() == count => replies,
                Ok(_) => {
                    round.refused = Some(RedisError::from((
                        redis::ErrorKind::UnexpectedReturnType,
                        "a pipeline's replies do not match its commands",
                    )));
                    round.again.extend(batch);
                    continue;
                }
                Err(error) => {
                    round.refused = Some(error);
                    round.again.extend(batch);
                    continue;
                }
            };
            let mut stored = 0u32;
            for (&call, reply) in batch.iter().zip(&replies) {
                match reply {
                    redis::Value::ServerError(error) => {
                        round.noscript |= error.code() == "NOSCRIPT";
                        round.refused = Some(error.clone().into());
                        round.again.push(call);
                    }
                    _ => stored += 1,
                }
            }
            if !waits || stored == 0 {
                continue;
            }
            let acks = match replies.get(batch.len() + 1) {
                Some(redis::Value::Int(acks)) => u32::try_from(*acks).unwrap_or(0),
                _ => 0,
            };
            let replicas = replies.get(batch.len()).and_then(cluster::replicas_in_role);
            // A master without replicas cannot lose a write to a failover (there is no one to
            // promote, and a new replica copies everything first): nothing to wait for.
            let required = shape
                .replica_acks
                .min(replicas.unwrap_or(shape.replica_acks));
            if acks < required {
                round.unacknowledged = Some(self.unacknowledged("invalidate", acks, required));
            }
        }
        round
    }

    async fn clear(self: Arc<Self>) -> Result<(), Error> {
        let cleared = self
            .in_groups(
                "clear",
                &scripts::CLEAR,
                self.groups.iter().collect(),
                |group| (group.keys.state(), Vec::new()),
            )
            .await;
        self.made_change();
        cleared?;
        // Every entry is already gone for readers (the floor). Unlinking them only frees memory, so it runs
        // in the background, one bounded `SCAN` step at a time, matching only this prefix's entries.
        tokio::spawn(async move {
            let swept = match &self.cluster {
                None => {
                    let pattern = &self.single().keys.entry_pattern;
                    self.sweep(pattern, None, |_| true).await
                }
                Some(shape) => self.sweep_cluster(&shape.entry_pattern).await,
            };
            if let Err(error) = swept {
                tracing::warn!(error = %error, "clear: unlinking entries stopped early; their TTLs will expire them");
            }
        });
        Ok(())
    }

    /// Sweeps every master of the cluster, keeping to the keys of this prefix's groups.
    async fn sweep_cluster(&self, pattern: &str) -> Result<(), Error> {
        let masters = self
            .run("clear", false, &self.circuit, |mut checkout| async move {
                let masters = match &mut checkout.connection {
                    Conn::Cluster(conn) => cluster::masters(conn).await,
                    Conn::Node(_) => Ok(Vec::new()),
                };
                (checkout, masters.map_err(OpError::from))
            })
            .await?;
        let bases: Vec<&str> = self
            .groups
            .iter()
            .map(|group| group.keys.entry_base())
            .collect();
        let ours = |key: &str| bases.iter().any(|base| key.starts_with(base));
        for master in &masters {
            self.sweep(pattern, Some(master), ours).await?;
        }
        Ok(())
    }

    /// Unlinks the entries `SCAN` finds matching `pattern` and `ours`, on one cluster node or on the
    /// server.
    async fn sweep(
        &self,
        pattern: &str,
        node: Option<&Master>,
        ours: impl Fn(&str) -> bool,
    ) -> Result<(), Error> {
        let mut cursor = 0u64;
        loop {
            let ours = &ours;
            cursor = self
                .run("clear", false, &self.circuit, |mut checkout| async move {
                    let conn = &mut checkout.connection;
                    let step: Result<u64, OpError> = async {
                        let mut scan = redis::cmd("SCAN");
                        scan.arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(CLEAR_BATCH);
                        let (next, found): (u64, Vec<String>) = match (&mut *conn, node) {
                            (Conn::Cluster(conn), Some(master)) => {
                                let routing = RoutingInfo::SingleNode(master.route());
                                let reply = conn.route_command(scan, routing).await?;
                                redis::FromRedisValue::from_redis_value(reply)
                                    .map_err(RedisError::from)?
                            }
                            (conn, _) => scan.query_async(conn).await?,
                        };
                        let found: Vec<String> =
                            found.into_iter().filter(|key| ours(key)).collect();
                        if !found.is_empty() {
                            // On a cluster, the client splits this by slot.
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

/// Forgets the cluster's masters as last read when dropped: an invalidation that did not land
/// everywhere (failed, or dropped at its timeout) reads them afresh next time.
struct ForgetMasters<'a>(&'a ClusterConnections);

impl Drop for ForgetMasters<'_> {
    fn drop(&mut self) {
        self.0.forget_masters();
    }
}

/// Rounds of pipelines an invalidation on a cluster sends before giving up (within its timeout).
const MASTER_ATTEMPTS: u64 = 4;

/// What one round of pipelines to the masters left to do.
#[derive(Default)]
struct Round {
    /// Calls to send again (their master refused them, or none served their slot).
    again: Vec<usize>,
    /// Why the last refused call was refused.
    refused: Option<RedisError>,
    /// A master did not know the script.
    noscript: bool,
    /// A master ran its calls, but too few replicas acknowledged them.
    unacknowledged: Option<Error>,
}

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
        let key = key.clone();
        StoreFuture::pending(async move { inner.invalidate("remove", names, Some(&key)).await })
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
        let key = key.clone();
        StoreFuture::pending(async move { inner.claim_fill(&key, token, lease).await })
    }

    fn release_fill(&self, key: &CacheKey, token: u64) -> StoreFuture<Result<(), Error>> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        StoreFuture::pending(async move { inner.release_fill(&key, token).await })
    }

    /// From the process's view of the invalidations, which every lookup brings up to date: no round trip.
    fn invalidated_since(&self, key: &CacheKey, tags: &[String], stamp: FillStamp) -> bool {
        let tags = tags.iter().map(String::as_str);
        self.inner.group(key).view.is_dead(key, tags, stamp.get())
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
