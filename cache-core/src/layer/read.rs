use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tower_service::Service;
use tracing::Instrument;

use super::call::call_within;
use super::shared::Shared;
use crate::single_flight::{Join, Leader, WaitOutcome};
use crate::{
    upstream_error, BoxError, CacheKey, CachePolicy, Error, FillStamp, Lookup, PutEntry,
    PutOutcome, SharedError, StaleReason, Store,
};

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

/// Reads a lookup, counting hits and store failures.
pub(crate) fn triage<St: Store, P>(
    shared: &Shared<St, P>,
    key: &str,
    lookup: Result<Lookup<St::Value>, Error>,
) -> Found<St::Value> {
    match lookup {
        Ok(Lookup::Hit { value, .. }) => {
            shared.hit(key);
            Found::Fresh(value)
        }
        Ok(Lookup::Stale {
            value,
            stamp,
            revalidate: true,
        }) => Found::Revalidate { value, stamp },
        Ok(Lookup::Stale { value, stamp, .. }) => Found::Fill {
            stamp: Some(stamp),
            fallback: Some(value),
        },
        Ok(Lookup::Miss { stamp }) => Found::Fill {
            stamp: Some(stamp),
            fallback: None,
        },
        Ok(Lookup::Undecodable { stamp, error }) => {
            shared.store_failed(key, &error);
            Found::Fill {
                stamp: Some(stamp),
                fallback: None,
            }
        }
        Err(error) => {
            shared.store_failed(key, &error);
            Found::Fill {
                stamp: None,
                fallback: None,
            }
        }
    }
}

/// Answers with a stale `value` and refreshes its key in the background, unless a fill or refresh of the
/// key is already running: one refresh however many callers hit the stale entry.
pub(crate) fn serve_and_revalidate<S, St, P, Req>(
    shared: &Arc<Shared<St, P>>,
    inner: S,
    req: Req,
    key: CacheKey,
    read: P::Read,
    (value, stamp): (St::Value, FillStamp),
) -> St::Value
where
    S: Service<Req, Response = St::Value> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    St: Store,
    St::Value: Clone + Send + Sync + 'static,
    P: CachePolicy<Req, St::Value>,
    Req: Send + 'static,
{
    shared.stale_served(&key, StaleReason::Revalidating);
    // Any fetch of the key under way will do: a newer stamp (an unrelated invalidation since) is no
    // reason for a second one.
    if let Some(leader) = shared.flights.lead_if_idle(&key, Some(stamp)) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let shared = Arc::clone(shared);
                let span = tracing::debug_span!("cache.refresh", cache.key = %key);
                runtime.spawn(
                    async move {
                        let fetched =
                            lead(&shared, leader, inner, req, &key, read, Some(stamp)).await;
                        if let Err(error) = failed(&*shared.policy, fetched) {
                            shared.refresh_failed(&key, &error);
                        }
                    }
                    .instrument(span),
                );
            }
            Err(_) => {
                tracing::warn!(cache.key = %key, "no tokio runtime: stale entry not refreshed")
            }
        }
    }
    value
}

/// The read path after a first lookup that was not a fresh hit: lead or join the key's flight, and fall
/// back to a stale value where the entry allows it.
pub(crate) async fn read_through<S, St, P, Req>(
    shared: Arc<Shared<St, P>>,
    inner: S,
    req: Req,
    key: CacheKey,
    read: P::Read,
    first_lookup: Result<Lookup<St::Value>, Error>,
) -> Result<St::Value, BoxError>
where
    S: Service<Req, Response = St::Value> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    St: Store,
    St::Value: Clone + Send + Sync + 'static,
    P: CachePolicy<Req, St::Value>,
    Req: Send + 'static,
{
    let soft_deadline = shared
        .timeouts
        .soft
        .and_then(|soft| Instant::now().checked_add(soft));
    let mut lookup = first_lookup;
    loop {
        let (mut stamp, fallback) = match triage(&shared, &key, lookup) {
            Found::Fresh(value) => return Ok(value),
            Found::Revalidate { value, stamp } => {
                return Ok(serve_and_revalidate(
                    &shared,
                    inner,
                    req,
                    key,
                    read,
                    (value, stamp),
                ))
            }
            Found::Fill { stamp, fallback } => (stamp, fallback),
        };
        match shared.flights.join(&key, stamp) {
            Join::Leader(leader) => {
                // A flight may have stored its value and ended between our lookup and our join. A store that
                // answers at once can tell us for free; a remote one would cost a round trip per miss.
                // Failures were counted by the first lookup; only a hit or a fresher stamp matters here.
                match shared.store.get(&key).into_ready() {
                    Ok(Ok(Lookup::Hit { value, .. })) => {
                        shared.hit(&key);
                        return Ok(value);
                    }
                    Ok(Ok(
                        Lookup::Miss { stamp: fresher } | Lookup::Stale { stamp: fresher, .. },
                    )) => {
                        stamp = Some(fresher);
                    }
                    _ => {}
                }
                shared.miss(&key);
                tracing::debug!(cache.key = %key, "cache miss: calling the inner service");
                let Some(fallback) = fallback else {
                    let span = tracing::debug_span!("cache.fill", cache.key = %key);
                    return lead(&shared, leader, inner, req, &key, read, stamp)
                        .instrument(span)
                        .await;
                };
                return lead_with_fallback(
                    shared,
                    leader,
                    (inner, req, read),
                    key,
                    stamp,
                    (fallback, soft_deadline),
                )
                .await;
            }
            Join::Waiter(waiter) => {
                shared.dedupe(&key);
                let outcome = match soft_deadline.filter(|_| fallback.is_some()) {
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline, waiter.wait()).await {
                            Ok(outcome) => outcome,
                            Err(_) => {
                                let stale = fallback.expect("matched Some");
                                shared.stale_served(&key, StaleReason::SoftTimeout);
                                return Ok(stale);
                            }
                        }
                    }
                    None => waiter.wait().await,
                };
                let fetched = match outcome {
                    WaitOutcome::Value(value) => Ok(value),
                    WaitOutcome::Failed(error) => Err(Box::new(error) as BoxError),
                    WaitOutcome::Abandoned => {
                        tracing::debug!(cache.key = %key, "cache flight abandoned by its leader; retrying");
                        lookup = shared.bounded("get", shared.store.get(&key)).await;
                        continue;
                    }
                };
                return settle(&shared, &key, fetched, fallback);
            }
        }
    }
}

/// Leads a fill for a caller holding a stale value. With a soft timeout, the fill runs in a task of its
/// own: the caller may answer with the stale value and leave it to finish and store its result.
async fn lead_with_fallback<S, St, P, Req>(
    shared: Arc<Shared<St, P>>,
    leader: Leader<St::Value>,
    (inner, req, read): (S, Req, P::Read),
    key: CacheKey,
    stamp: Option<FillStamp>,
    (fallback, soft_deadline): (St::Value, Option<Instant>),
) -> Result<St::Value, BoxError>
where
    S: Service<Req, Response = St::Value> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    St: Store,
    St::Value: Clone + Send + Sync + 'static,
    P: CachePolicy<Req, St::Value>,
    Req: Send + 'static,
{
    let span = tracing::debug_span!("cache.fill", cache.key = %key);
    let runtime = tokio::runtime::Handle::try_current().ok();
    let (Some(deadline), Some(runtime)) = (soft_deadline, runtime) else {
        let fetched = lead(&shared, leader, inner, req, &key, read, stamp)
            .instrument(span)
            .await;
        return settle(&shared, &key, fetched, Some(fallback));
    };
    let (sender, receiver) = oneshot::channel();
    let task_shared = Arc::clone(&shared);
    let task_key = key.clone();
    runtime.spawn(
        async move {
            let fetched = lead(&task_shared, leader, inner, req, &task_key, read, stamp).await;
            // Nobody is waiting any more (the caller answered stale, or went away): this was a refresh.
            if let Err(unsent) = sender.send(fetched) {
                if let Err(error) = failed(&*task_shared.policy, unsent) {
                    task_shared.refresh_failed(&task_key, &error);
                }
            }
        }
        .instrument(span),
    );
    match tokio::time::timeout_at(deadline, receiver).await {
        Ok(Ok(fetched)) => settle(&shared, &key, fetched, Some(fallback)),
        Ok(Err(_panicked)) => {
            let error: BoxError = Box::new(SharedError::leader_panicked(&key));
            settle(&shared, &key, Err(error), Some(fallback))
        }
        Err(_) => {
            shared.stale_served(&key, StaleReason::SoftTimeout);
            Ok(fallback)
        }
    }
}

/// The caller's answer from what the fill fetched: a failure (an error, or a response the policy calls a
/// failure) is answered with the stale value when there is one.
fn settle<St: Store, P, Req>(
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

/// Calls the inner service for `key`, shares the result with the flight's waiters, and stores a
/// successful value. A failure (an error, or a response the policy calls one) is shared, never stored.
async fn lead<S, St, P, Req>(
    shared: &Shared<St, P>,
    mut leader: Leader<St::Value>,
    inner: S,
    req: Req,
    key: &CacheKey,
    read: P::Read,
    stamp: Option<FillStamp>,
) -> Result<St::Value, BoxError>
where
    S: Service<Req, Response = St::Value>,
    S::Error: Into<BoxError>,
    St: Store,
    St::Value: Clone,
    P: CachePolicy<Req, St::Value>,
{
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
    let plan = shared.policy.fill(key, &read, &value);
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
        match shared.bounded("put", shared.store.put(key, entry)).await {
            Ok(PutOutcome::Stored) => tracing::trace!(ttl = ?plan.ttl, "cache entry stored"),
            Ok(PutOutcome::Superseded) => {
                tracing::debug!("cache entry not stored: invalidated while it was being fetched");
            }
            Err(error) => shared.store_failed(key, &error),
        }
    }
    drop(leader);
    Ok(value)
}
