use std::sync::Arc;

use tower_service::Service;
use tracing::Instrument;

use super::call::call_ready;
use super::shared::Shared;
use crate::single_flight::{Join, Leader, WaitOutcome};
use crate::{
    BoxError, CacheKey, CachePolicy, Error, FillStamp, Lookup, PutEntry, PutOutcome, SharedError,
    Store, StoreFuture,
};

/// The read path after a first lookup that did not hit synchronously: await the lookup, then lead or join
/// the key's flight.
pub(crate) async fn read_through<S, St, P, Req>(
    shared: Arc<Shared<St, P>>,
    inner: S,
    req: Req,
    key: CacheKey,
    read: P::Read,
    first_lookup: StoreFuture<Result<Lookup<St::Value>, Error>>,
) -> Result<St::Value, BoxError>
where
    S: Service<Req, Response = St::Value>,
    S::Error: Into<BoxError>,
    St: Store,
    St::Value: Clone,
    P: CachePolicy<Req, St::Value>,
{
    let mut lookup = shared.bounded("get", first_lookup).await;
    loop {
        let mut stamp = match miss_stamp(&shared, &key, lookup) {
            Ok(value) => return Ok(value),
            Err(stamp) => stamp,
        };
        match shared.flights.join(&key, stamp) {
            Join::Leader(leader) => {
                // A flight may have stored its value and ended between our lookup and our join. A store that
                // answers at once can tell us for free; a remote one would cost a round trip per miss.
                // Failures were counted by the first lookup; only a hit or a fresher stamp matters here.
                match shared.store.get(&key).into_ready() {
                    Ok(Ok(Lookup::Hit { value, .. })) => {
                        shared.stats.hit();
                        return Ok(value);
                    }
                    Ok(Ok(Lookup::Miss { stamp: fresher })) => stamp = Some(fresher),
                    _ => {}
                }
                shared.stats.miss();
                let span = tracing::debug_span!("cache.fill", cache.key = %key);
                return lead(&shared, leader, inner, req, &key, read, stamp)
                    .instrument(span)
                    .await;
            }
            Join::Waiter(waiter) => {
                shared.stats.dedupe();
                tracing::trace!(cache.key = %key, "cache dedupe: waiting for the call in flight");
                match waiter.wait().await {
                    WaitOutcome::Value(value) => return Ok(value),
                    WaitOutcome::Failed(error) => return Err(Box::new(error)),
                    WaitOutcome::Abandoned => {
                        tracing::debug!(cache.key = %key, "cache flight abandoned by its leader; retrying");
                        lookup = shared.bounded("get", shared.store.get(&key)).await;
                    }
                }
            }
        }
    }
}

/// A hit's value, or the stamp a fill should carry (`None` when the store could not be asked).
fn miss_stamp<St: Store, P>(
    shared: &Shared<St, P>,
    key: &str,
    lookup: Result<Lookup<St::Value>, Error>,
) -> Result<St::Value, Option<FillStamp>> {
    match lookup {
        Ok(Lookup::Hit { value, .. }) => {
            shared.stats.hit();
            tracing::trace!(cache.key = key, "cache hit");
            Ok(value)
        }
        Ok(Lookup::Miss { stamp }) => Err(Some(stamp)),
        Ok(Lookup::Undecodable { stamp, error }) => {
            shared.store_failed(key, &error);
            Err(Some(stamp))
        }
        Err(error) => {
            shared.store_failed(key, &error);
            Err(None)
        }
    }
}

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
    tracing::debug!("cache miss: calling the inner service");
    let value = match call_ready(inner, req).await {
        Ok(value) => value,
        Err(error) => {
            tracing::debug!(error = %error, "inner service failed; the error is shared, not cached");
            let error = SharedError::new(error);
            leader.publish(Err(error.clone()));
            return Err(Box::new(error));
        }
    };
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
