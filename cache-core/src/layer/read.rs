//! The read path: one cacheable request, from its lookup to its answer.
//!
//! [`Read`] holds everything a cacheable request carries (the shared state, a clone of the inner service,
//! the request, its key and the policy's read context) and has one method per step: [`Found::classify`]
//! says what a lookup means, [`Read::respond`] joins or leads the key's flight, [`Read::fill`] calls the
//! inner service and stores its answer, [`Read::revalidate`] serves a stale entry while refreshing it,
//! and `fall_back` answers a failed fill with a stale value.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tower_service::Service;
use tracing::Instrument;

use super::call::call_within;
use super::shared::{bounded, Shared};
use crate::single_flight::{FlightTags, Join, Leader, WaitOutcome};
use crate::{
    upstream_error, BoxError, CacheKey, CachePolicy, Error, FillClaim, FillStamp, Lookup, PutEntry,
    PutOutcome, SharedError, StaleReason, Store, StoreFuture,
};

/// What the read path needs of the inner service, said once: a `Send + 'static` service answering with
/// the store's value type.
pub(crate) trait Inner<Req, V>:
    Service<Req, Response = V, Error: Into<BoxError>, Future: Send + 'static> + Send + 'static
{
}

impl<T, Req, V> Inner<Req, V> for T
where
    T: Service<Req, Response = V> + Send + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send + 'static,
{
}

/// What a lookup means for the request.
pub(crate) enum Found<V> {
    /// A fresh entry: the answer.
    Fresh(V),
    /// An entry in its stale-while-revalidate period: the answer, and a refresh in the background.
    Revalidate { value: V, stamp: FillStamp },
    /// Call the inner service and store with `stamp` (`None` when the store could not be asked);
    /// `fallback` is a stale value that answers if the call fails.
    Fill {
        stamp: Option<FillStamp>,
        fallback: Option<V>,
    },
}

impl<V> Found<V> {
    /// The one reading of a lookup: counts the hit or the store failure it reports.
    #[inline]
    pub(crate) fn classify<St: Store<Value = V>, P>(
        shared: &Shared<St, P>,
        key: &str,
        lookup: Result<Lookup<V>, Error>,
    ) -> Self {
        match lookup {
            Ok(Lookup::Hit { value, .. }) => {
                shared.hit(key);
                Self::Fresh(value)
            }
            Ok(Lookup::Stale {
                value,
                stamp,
                revalidate: true,
            }) => Self::Revalidate { value, stamp },
            Ok(Lookup::Stale { value, stamp, .. }) => Self::Fill {
                stamp: Some(stamp),
                fallback: Some(value),
            },
            Ok(Lookup::Miss { stamp }) => Self::Fill {
                stamp: Some(stamp),
                fallback: None,
            },
            Ok(Lookup::Undecodable { stamp, error }) => {
                shared.store_failed(key, &error);
                Self::Fill {
                    stamp: Some(stamp),
                    fallback: None,
                }
            }
            Err(error) => {
                shared.store_failed(key, &error);
                Self::Fill {
                    stamp: None,
                    fallback: None,
                }
            }
        }
    }
}

/// One cacheable read that was not answered by a fresh hit of its first lookup.
pub(crate) struct Read<S, St: Store, P: CachePolicy<Req, St::Value>, Req> {
    shared: Arc<Shared<St, P>>,
    inner: S,
    req: Req,
    key: CacheKey,
    read: P::Read,
}

impl<S, St, P, Req> Read<S, St, P, Req>
where
    S: Inner<Req, St::Value>,
    St: Store<Value: Clone + Send + Sync + 'static>,
    P: CachePolicy<Req, St::Value>,
    Req: Send + 'static,
{
    pub(crate) fn new(
        shared: Arc<Shared<St, P>>,
        inner: S,
        req: Req,
        key: CacheKey,
        read: P::Read,
    ) -> Self {
        Self {
            shared,
            inner,
            req,
            key,
            read,
        }
    }

    /// Answers from what the first lookup found: lead or join the key's flight, and fall back to a stale
    /// value where the entry allows it.
    pub(crate) async fn respond(self, found: Found<St::Value>) -> Result<St::Value, BoxError> {
        let soft_deadline = self
            .shared
            .timeouts
            .soft
            .and_then(|soft| Instant::now().checked_add(soft));
        let mut found = found;
        // A flight this caller found outdated: it is never joined again (its value would not do).
        let mut rejected = None;
        let mut counted = false;
        loop {
            let (stamp, fallback) = match found {
                Found::Fresh(value) => return Ok(value),
                Found::Revalidate { value, stamp } => return Ok(self.revalidate(value, stamp)),
                Found::Fill { stamp, fallback } => (stamp, fallback),
            };
            let shared = &self.shared;
            let key = &self.key;
            let waiter = match shared.flights.join(key, stamp, rejected) {
                Join::Leader(leader) => {
                    return self.lead(leader, stamp, fallback, soft_deadline).await
                }
                Join::Waiter(waiter) => waiter,
            };
            if !counted {
                shared.dedupe(key);
                counted = true;
            }
            let started_before_me = waiter.started_before_me();
            let flight_tags = waiter.tags();
            let outcome = match soft_deadline.filter(|_| fallback.is_some()) {
                Some(deadline) => match tokio::time::timeout_at(deadline, waiter.wait()).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        shared.stale_served(key, StaleReason::SoftTimeout);
                        return Ok(fallback.expect("matched Some"));
                    }
                },
                None => waiter.wait().await,
            };
            let fetched = match outcome {
                WaitOutcome::Value(value)
                    if started_before_me
                        .zip(flight_tags.as_ref())
                        .is_some_and(|(started, tags)| self.outdated(&value, started, tags)) =>
                {
                    tracing::debug!(cache.key = %key, "cache flight predates an invalidation of its value; fetching again");
                    rejected = started_before_me;
                    let lookup = shared.bounded("get", shared.store.get(key)).await;
                    found = Found::classify(shared, key, lookup);
                    continue;
                }
                WaitOutcome::Value(value) => Ok(value),
                WaitOutcome::Failed(error) => Err(Box::new(error) as BoxError),
                WaitOutcome::Abandoned => {
                    tracing::debug!(cache.key = %key, "cache flight abandoned by its leader; retrying");
                    let lookup = shared.bounded("get", shared.store.get(key)).await;
                    found = Found::classify(shared, key, lookup);
                    continue;
                }
            };
            return fall_back(shared, key, fetched, fallback);
        }
    }

    /// Whether `value`, fetched by a flight that started at `started` (before this caller's lookup), was
    /// invalidated since: its key or one of the tags it is stored with (worked out once per flight). A
    /// failure is shared as it is.
    fn outdated(&self, value: &St::Value, started: FillStamp, tags: &FlightTags) -> bool {
        let shared = &self.shared;
        if shared.policy.is_failure(value) {
            return false;
        }
        let tags = tags.get_or_init(|| shared.policy.fill(&self.key, &self.read, value).tags);
        shared.store.invalidated_since(&self.key, tags, started)
    }

    /// Answers with a stale `value` and refreshes the key in the background, unless a fill or refresh of
    /// the key is already running: one refresh however many callers hit the stale entry.
    pub(crate) fn revalidate(self, value: St::Value, stamp: FillStamp) -> St::Value {
        self.shared
            .stale_served(&self.key, StaleReason::Revalidating);
        // Any fetch of the key under way will do: a newer stamp (an unrelated invalidation since) is no
        // reason for a second one.
        let Some(leader) = self.shared.flights.lead_if_idle(&self.key, Some(stamp)) else {
            return value;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let span = tracing::debug_span!("cache.refresh", cache.key = %self.key);
                runtime.spawn(
                    async move {
                        let (shared, key) = (Arc::clone(&self.shared), self.key.clone());
                        let fetched = self.fill(leader, Some(stamp)).await;
                        if let Err(error) = failed(&*shared.policy, fetched) {
                            shared.refresh_failed(&key, &error);
                        }
                    }
                    .instrument(span),
                );
            }
            Err(_) => {
                tracing::warn!(cache.key = %self.key, "no tokio runtime: stale entry not refreshed")
            }
        }
        value
    }

    /// Leads the key's flight: calls the inner service, answering a failure with `fallback` when there
    /// is one (and, with a soft timeout, answering with it when the call is slow).
    async fn lead(
        self,
        leader: Leader<St::Value>,
        mut stamp: Option<FillStamp>,
        fallback: Option<St::Value>,
        soft_deadline: Option<Instant>,
    ) -> Result<St::Value, BoxError> {
        let (shared, key) = (&self.shared, &self.key);
        // A flight may have stored its value and ended between our lookup and our join. A store that
        // answers at once can tell us for free; a remote one would cost a round trip per miss. Failures
        // were counted by the first lookup; only a hit or a fresher stamp matters here.
        match shared.store.get(key).into_ready() {
            Ok(Ok(Lookup::Hit { value, .. })) => {
                shared.hit(key);
                return Ok(value);
            }
            Ok(Ok(Lookup::Miss { stamp: fresher } | Lookup::Stale { stamp: fresher, .. })) => {
                stamp = Some(fresher);
            }
            _ => {}
        }
        shared.miss(key);
        tracing::debug!(cache.key = %key, "cache miss: calling the inner service");
        let span = tracing::debug_span!("cache.fill", cache.key = %key);
        let Some(fallback) = fallback else {
            return self.fill(leader, stamp).instrument(span).await;
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (Some(deadline), Some(runtime)) = (soft_deadline, runtime) else {
            let (shared, key) = (Arc::clone(shared), key.clone());
            let fetched = self.fill(leader, stamp).instrument(span).await;
            return fall_back(&shared, &key, fetched, Some(fallback));
        };
        // With a soft timeout the fill runs in a task of its own: the caller may answer with the stale
        // value and leave it to finish and store its result.
        let (shared, key) = (Arc::clone(shared), key.clone());
        let (sender, receiver) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        runtime.spawn(
            async move {
                let key = self.key.clone();
                let fetched = self.fill(leader, stamp).await;
                // Nobody is waiting any more (the caller answered stale, or went away): a refresh.
                if let Err(unsent) = sender.send(fetched) {
                    if let Err(error) = failed(&*task_shared.policy, unsent) {
                        task_shared.refresh_failed(&key, &error);
                    }
                }
            }
            .instrument(span),
        );
        match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(fetched)) => fall_back(&shared, &key, fetched, Some(fallback)),
            Ok(Err(_panicked)) => {
                let error: BoxError = Box::new(SharedError::leader_panicked(&key));
                fall_back(&shared, &key, Err(error), Some(fallback))
            }
            Err(_) => {
                shared.stale_served(&key, StaleReason::SoftTimeout);
                Ok(fallback)
            }
        }
    }

    /// Fills the key for the flight: with shared single flight, only once this process holds the claim
    /// on the fill or the process holding it stored its entry (which then answers).
    async fn fill(
        self,
        leader: Leader<St::Value>,
        stamp: Option<FillStamp>,
    ) -> Result<St::Value, BoxError> {
        match self.shared.fill_lease {
            None => self.call_and_store(leader, stamp).await,
            // Boxed: the common fill's future stays as small as it was.
            Some(lease) => Box::pin(self.fill_shared(leader, stamp, lease)).await,
        }
    }

    /// [`fill`](Self::fill) with shared single flight.
    async fn fill_shared(
        self,
        mut leader: Leader<St::Value>,
        stamp: Option<FillStamp>,
        lease: Duration,
    ) -> Result<St::Value, BoxError> {
        // Whatever becomes of this future (cancelled, panicking), the claim is given back.
        let claim = Claim::new(Arc::clone(&self.shared), self.key.clone());
        if let Some(value) = claim.wait_for_turn(lease).await {
            tracing::debug!(cache.key = %self.key, "cache fill of another process answered");
            leader.publish(Ok(value.clone()));
            return Ok(value);
        }
        let fetched = self.call_and_store(leader, stamp).await;
        claim.release().await;
        fetched
    }

    /// Calls the inner service, shares the result with the flight's waiters, and stores a successful
    /// value. A failure (an error, or a response the policy calls one) is shared, never stored.
    async fn call_and_store(
        self,
        mut leader: Leader<St::Value>,
        stamp: Option<FillStamp>,
    ) -> Result<St::Value, BoxError> {
        let Self {
            shared,
            inner,
            req,
            key,
            read,
        } = self;
        let value = match call_within(shared.timeouts.hard, inner, req).await {
            Ok(value) => value,
            Err(error) => {
                tracing::debug!(error = %error, "inner service failed; the error is shared, not cached");
                let error = SharedError::new(error);
                leader.publish(Err(error.clone()));
                return Err(Box::new(error));
            }
        };
        if shared.policy.is_failure(&value) {
            tracing::debug!("inner service answered with a failure; shared, not cached");
            leader.publish(Ok(value.clone()));
            return Ok(value);
        }
        let plan = shared.policy.fill(&key, &read, &value);
        // Waiters get the value now; the flight stays open while the value is stored, so callers arriving
        // meanwhile join it rather than call the inner service again.
        leader.publish(Ok(value.clone()));
        if plan.ttl.is_zero() {
            tracing::trace!("TTL is zero: deduplicated, not stored");
        } else if let Some(stamp) = stamp {
            let entry = PutEntry {
                value: value.clone(),
                ttl: plan.ttl,
                tags: plan.tags,
                stale: plan.stale,
                stamp: Some(stamp),
            };
            match shared.bounded("put", shared.store.put(&key, entry)).await {
                Ok(PutOutcome::Stored) => tracing::trace!(ttl = ?plan.ttl, "cache entry stored"),
                Ok(PutOutcome::Superseded) => {
                    tracing::debug!(
                        "cache entry not stored: invalidated while it was being fetched"
                    );
                }
                Err(error) => shared.store_failed(&key, &error),
            }
        }
        drop(leader);
        Ok(value)
    }
}

/// This process's claim on filling a key across the processes sharing the store. Dropped without
/// [`release`](Self::release) (the fill was cancelled or panicked), it gives the claim back from a task
/// of its own, so nobody waits out the lease for a fill that will never come.
struct Claim<St: Store, P> {
    shared: Arc<Shared<St, P>>,
    key: CacheKey,
    token: u64,
    released: bool,
}

impl<St: Store, P> Claim<St, P> {
    fn new(shared: Arc<Shared<St, P>>, key: CacheKey) -> Self {
        Self {
            shared,
            key,
            token: claim_token(),
            released: false,
        }
    }

    /// Claims the fill, or waits for the entry of the process that holds the claim, up to `lease`:
    /// `None` when this process is to fill (it holds the claim, the lease was outlasted, or the store
    /// cannot be asked), the other process's value when its entry appeared.
    async fn wait_for_turn(&self, lease: Duration) -> Option<St::Value> {
        let (shared, key) = (&self.shared, &self.key);
        let deadline = Instant::now().checked_add(lease);
        let mut pause = FIRST_PAUSE;
        let mut waited = false;
        loop {
            let claim = shared.store.claim_fill(key, self.token, lease);
            match shared.bounded("claim", claim).await {
                // Granted after waiting: the holder may have stored its entry and let go just now.
                Ok(FillClaim::Granted) if waited => return self.entry().await,
                Ok(FillClaim::Granted) => return None,
                Ok(_held) => {}
                Err(error) => {
                    shared.store_failed(key, &error);
                    return None;
                }
            }
            let now = Instant::now();
            let left = deadline.map(|deadline| deadline.saturating_duration_since(now));
            if left.is_some_and(|left| left.is_zero()) {
                tracing::debug!(cache.key = %key, "cache fill claim still held past its lease; filling");
                return None;
            }
            tokio::time::sleep(left.map_or(pause, |left| pause.min(left))).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
            waited = true;
            if let Some(value) = self.entry().await {
                return Some(value);
            }
        }
    }

    /// The key's entry, if it is there.
    async fn entry(&self) -> Option<St::Value> {
        match self
            .shared
            .bounded("get", self.shared.store.get(&self.key))
            .await
        {
            Ok(Lookup::Hit { value, .. }) => Some(value),
            _ => None,
        }
    }

    /// Gives the claim back (if this process still holds it: the store compares the token).
    async fn release(mut self) {
        self.released = true;
        let release = self.shared.store.release_fill(&self.key, self.token);
        if let Err(error) = self.shared.bounded("release", release).await {
            tracing::debug!(cache.key = %self.key, error = %error, "fill claim not released; its lease will lapse");
        }
    }
}

impl<St: Store, P> Drop for Claim<St, P> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let release = self.shared.store.release_fill(&self.key, self.token);
        if let StoreFuture::Ready(_) = release {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match self.shared.store_timeout {
            Some(timeout) => drop(runtime.spawn(bounded("release", release, timeout))),
            None => drop(runtime.spawn(release)),
        }
    }
}

/// A token no other claim of this or another process is likely to hold: a per-process random seed
/// (std's hasher keys are random) plus a counter.
fn claim_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::LazyLock;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: LazyLock<u64> = LazyLock::new(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    SEED.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The first and the longest pause between two looks at the entry another process is filling.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(25);

/// The caller's answer from what the fill fetched: a failure (an error, or a response the policy calls a
/// failure) is answered with the stale value when there is one.
fn fall_back<St: Store, P, Req>(
    shared: &Shared<St, P>,
    key: &str,
    fetched: Result<St::Value, BoxError>,
    fallback: Option<St::Value>,
) -> Result<St::Value, BoxError>
where
    P: CachePolicy<Req, St::Value>,
{
    let Some(stale) = fallback else {
        return fetched;
    };
    match failed(&*shared.policy, fetched) {
        Ok(value) => Ok(value),
        Err(error) => {
            let reason = match upstream_error::<Error>(&*error) {
                Some(Error::InnerTimeout { .. }) => StaleReason::HardTimeout,
                _ => StaleReason::InnerFailed,
            };
            tracing::debug!(cache.key = key, error = %error, "inner call failed; answering with the stale entry");
            shared.stale_served(key, reason);
            Ok(stale)
        }
    }
}

/// What a fill fetched, with a response the policy calls a failure turned into an error.
fn failed<P, Req, V>(policy: &P, fetched: Result<V, BoxError>) -> Result<V, BoxError>
where
    P: CachePolicy<Req, V>,
{
    match fetched {
        Ok(value) if policy.is_failure(&value) => Err(
            "the inner service answered with a response the policy classifies as a failure".into(),
        ),
        other => other,
    }
}
