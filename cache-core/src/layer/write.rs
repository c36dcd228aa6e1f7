use std::sync::Arc;

use tower_service::Service;

use super::call::call_ready;
use super::shared::Shared;
use crate::{
    BoxError, CacheKey, CachePolicy, EntryUpdate, Lookup, PutEntry, PutOutcome, Store, WriteEffects,
};

/// The write path: call the inner service, then apply what the policy says the write changed.
pub(crate) async fn write_through<S, St, P, Req>(
    shared: Arc<Shared<St, P>>,
    inner: S,
    req: Req,
    write: P::Write,
) -> Result<St::Value, BoxError>
where
    S: Service<Req, Response = St::Value>,
    S::Error: Into<BoxError>,
    St: Store,
    P: CachePolicy<Req, St::Value>,
{
    let value = match call_ready(inner, req).await {
        Ok(value) => value,
        Err(error) => {
            // The write may have happened anyway (a timeout, a lost answer, a retried attempt): the
            // policy says what must not be served from now on.
            let effects = shared.policy.after_write_error(write, &error);
            if !effects.is_empty() {
                apply(&shared, effects).await;
            }
            return Err(error);
        }
    };
    let effects = shared.policy.after_write(write, &value);
    if !effects.is_empty() {
        apply(&shared, effects).await;
    }
    Ok(value)
}

/// Applies write effects in their documented order; store failures are counted, never returned.
async fn apply<St: Store, P>(shared: &Shared<St, P>, effects: WriteEffects<St::Value>) {
    let WriteEffects {
        invalidate_tags,
        remove_keys,
        updates,
    } = effects;
    if !invalidate_tags.is_empty() {
        tracing::debug!(tags = ?invalidate_tags, "write: invalidating tags");
        match shared
            .bounded("invalidate", shared.store.invalidate_tags(&invalidate_tags))
            .await
        {
            Ok(()) => shared.stats.invalidations(invalidate_tags.len()),
            Err(error) => shared.store_failed(&invalidate_tags.join(","), &error),
        }
    }
    for key in remove_keys {
        remove(shared, &CacheKey::from(key)).await;
    }
    for update in updates {
        apply_update(shared, update).await;
    }
}

async fn apply_update<St: Store, P>(shared: &Shared<St, P>, update: EntryUpdate<St::Value>) {
    let (key, entry) = match update {
        EntryUpdate::Put {
            key,
            value,
            ttl,
            tags,
            stale,
        } => {
            let entry = PutEntry {
                value,
                ttl,
                tags,
                stale,
                stamp: None,
            };
            (CacheKey::from(key), entry)
        }
        EntryUpdate::Modify {
            key,
            modify,
            ttl,
            tags,
            stale,
        } => {
            let key = CacheKey::from(key);
            let (value, base) = match shared.bounded("get", shared.store.get(&key)).await {
                Ok(Lookup::Hit { value, stamp }) => (value, stamp),
                // Nothing cached to edit; a fill still in flight may hold the value from before the
                // write, so supersede it.
                Ok(_) => return remove(shared, &key).await,
                Err(error) => {
                    // The entry cannot be edited; it must not outlive the write either.
                    shared.store_failed(&key, &error);
                    return remove(shared, &key).await;
                }
            };
            let Some(value) = modify(value) else {
                return remove(shared, &key).await;
            };
            (
                key,
                PutEntry {
                    value,
                    ttl,
                    tags,
                    stale,
                    stamp: Some(base),
                },
            )
        }
    };
    if entry.ttl.is_zero() {
        // Not to be cached, and whatever was cached is now out of date.
        return remove(shared, &key).await;
    }
    tracing::debug!(cache.key = %key, "write: updating entry from the response");
    match shared
        .bounded("put", shared.store.update(&key, entry))
        .await
    {
        Ok(PutOutcome::Stored) => {}
        // Edited concurrently, or invalidated since it was read: the edit is not safe to store, and the
        // entry it was based on is out of date.
        Ok(PutOutcome::Superseded) => remove(shared, &key).await,
        Err(error) => {
            // The old entry would otherwise be served for the rest of its TTL. Removal is an
            // invalidation, which a store tries even while it fails reads and writes fast.
            shared.store_failed(&key, &error);
            remove(shared, &key).await;
        }
    }
}

async fn remove<St: Store, P>(shared: &Shared<St, P>, key: &CacheKey) {
    tracing::debug!(cache.key = %key, "write: removing key");
    match shared.bounded("remove", shared.store.remove(key)).await {
        Ok(()) => shared.stats.invalidations(1),
        Err(error) => shared.store_failed(key, &error),
    }
}
