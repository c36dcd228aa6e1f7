//! The storage contract: what a backend must do so the layer keeps its promises.
//!
//! # Invalidation model
//!
//! Invalidating a tag (or removing a key) does not look for the entries that carry it. It records *when*
//! the tag was invalidated. Every entry records its tags and the [`FillStamp`] taken when its fill
//! *started*, before the inner service was called. A read treats an entry as gone when one of its tags,
//! or its key, was invalidated after that stamp; a put whose stamp is older than such an invalidation is
//! dropped. So:
//!
//! - invalidation costs the same for a tag on one entry or on a million;
//! - a fill that started before an invalidation cannot be served after it, however late it finishes
//!   (no stale resurrection);
//! - nothing has to be deleted eagerly. A store bounds its records of invalidations by forgetting the
//!   oldest and treating every entry filled before the newest forgotten one as gone (a few extra misses,
//!   never a stale hit).
//!
//! Stamps belong to the store: an in-process store can use a counter, a shared store the server's clock.
//! The layer only carries them from [`Store::get`] to [`Store::put`].
//!
//! # Failures
//!
//! A store reports failures as [`Error`]; the layer counts them and answers from the inner service. An
//! entry that cannot be decoded is [`Lookup::Undecodable`], a miss that the next fill overwrites.

mod future;
mod records;

pub use future::StoreFuture;
pub use records::InvalidationRecords;

use std::time::Duration;

use crate::{CacheKey, Error, StalePeriods};

/// The instant a fill started, in the store's own clock. Opaque to the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FillStamp(u64);

impl FillStamp {
    /// Wraps a store's time or counter value.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The store's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The answer of [`Store::get`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Lookup<V> {
    /// A live entry.
    Hit {
        /// The cached value.
        value: V,
        /// When the fill of this entry started; a put of a modified value reuses it.
        stamp: FillStamp,
    },
    /// An entry past its TTL, kept for its [`StalePeriods`]: served while it revalidates, or when the
    /// inner service fails. A fill that starts now stores its result with `stamp`.
    Stale {
        /// The stale value.
        value: V,
        /// Taken before the fill (or refresh) starts, like a miss's.
        stamp: FillStamp,
        /// True within the entry's stale-while-revalidate period: serve it and refresh in the
        /// background. False within its stale-if-error period only: call the inner service and keep
        /// this value for when that fails.
        revalidate: bool,
    },
    /// No live entry. A fill that starts now stores its result with `stamp`.
    Miss {
        /// Taken before the fill starts.
        stamp: FillStamp,
    },
    /// An entry exists but cannot be decoded: a miss, and the next fill replaces it.
    Undecodable {
        /// Taken before the fill starts.
        stamp: FillStamp,
        /// Why decoding failed.
        error: Error,
    },
}

/// A value to store, with what the store needs to expire and invalidate it.
#[derive(Debug, Clone)]
pub struct PutEntry<V> {
    /// The value.
    pub value: V,
    /// How long the entry is fresh; never zero (the layer does not store zero-TTL values).
    pub ttl: Duration,
    /// How long after `ttl` the entry is kept to be served stale; the store keeps it for
    /// `ttl + stale.retention()` and answers [`Lookup::Stale`] after `ttl`.
    pub stale: StalePeriods,
    /// Tags whose invalidation removes this entry.
    pub tags: Vec<String>,
    /// When the fill started; `None` means "now" (a value returned by a write, not read through the cache).
    pub stamp: Option<FillStamp>,
}

/// The answer of [`Store::claim_fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FillClaim {
    /// The caller fills the key, and gives the claim back with its token ([`Store::release_fill`]).
    Granted,
    /// Another process is filling the key: its entry will appear, or its lease lapse.
    Held,
}

/// What [`Store::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The entry is stored.
    Stored,
    /// The entry was dropped: its key or one of its tags was invalidated after its fill started.
    Superseded,
}

/// Operations that do not depend on the value type: removal and invalidation.
///
/// # Cancel safety
/// Each operation is one request to the backend; dropping its future may or may not have applied it.
pub trait Invalidate: Send + Sync + 'static {
    /// Removes `key`, so that neither its current entry nor a fill that started earlier is served again.
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>>;

    /// Invalidates every entry carrying one of `tags`, including fills still in flight.
    fn invalidate_tags(&self, tags: &[String]) -> StoreFuture<Result<(), Error>>;

    /// Removes every entry of this store (within its key prefix, for a shared store).
    fn clear(&self) -> StoreFuture<Result<(), Error>>;

    /// True when every operation of this store ends within a timeout of its own. The layer then does not
    /// wrap the store's futures in its own timer, which would cost a timer per hit. Stores answering
    /// synchronously need no timeout either way.
    fn bounds_its_operations(&self) -> bool {
        false
    }
}

/// A cache backend for values of type [`Value`](Self::Value).
///
/// # Cancel safety
/// Dropping a `get` future loses nothing. Dropping a `put` future may or may not store the entry; either
/// way the store stays consistent.
pub trait Store: Invalidate {
    /// The type of the cached values (the inner service's response).
    type Value;

    /// Looks `key` up. Expired and invalidated entries are misses; entries past their TTL but within
    /// their [`StalePeriods`] are [`Lookup::Stale`].
    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<Self::Value>, Error>>;

    /// Stores `entry` under `key`, unless an invalidation since `entry.stamp` supersedes it.
    fn put(
        &self,
        key: &CacheKey,
        entry: PutEntry<Self::Value>,
    ) -> StoreFuture<Result<PutOutcome, Error>>;

    /// Stores a value a write produced, superseding every fill of `key` still in flight.
    ///
    /// The store records the update like an invalidation of `key`, then stores the entry stamped after
    /// that record, in one atomic step: a fill that started before the update can no longer overwrite it,
    /// and a later invalidation of its tags still removes it. `entry.stamp` is the update's *base*:
    /// `None` for an object the write returned, or the stamp of the cached entry the value was derived
    /// from, in which case the update is [`PutOutcome::Superseded`] (and nothing is stored) when that
    /// key or one of the tags was invalidated or updated since, so two concurrent edits of one entry
    /// never lose each other's change silently.
    fn update(
        &self,
        key: &CacheKey,
        entry: PutEntry<Self::Value>,
    ) -> StoreFuture<Result<PutOutcome, Error>>;

    /// Claims the fill of `key` among every process sharing this store, for at most `lease`, under the
    /// caller's `token` (claiming again with the token one holds grants it again): the layer asks
    /// before calling the inner service when shared single flight is on
    /// ([`CacheLayer::shared_single_flight`](crate::CacheLayer::shared_single_flight)). A store shared by
    /// nobody grants every claim, which is the default.
    fn claim_fill(
        &self,
        key: &CacheKey,
        token: u64,
        lease: Duration,
    ) -> StoreFuture<Result<FillClaim, Error>> {
        let _ = (key, token, lease);
        StoreFuture::ready(Ok(FillClaim::Granted))
    }

    /// Gives the claim `token` back once its fill is stored, superseded or failed, or was given up, so
    /// a waiting process need not wait out the lease. A claim the token no longer holds (its lease
    /// lapsed, another took it) is left alone.
    fn release_fill(&self, key: &CacheKey, token: u64) -> StoreFuture<Result<(), Error>> {
        let _ = (key, token);
        StoreFuture::ready(Ok(()))
    }

    /// Whether `key`, or one of `tags`, was invalidated or updated after `stamp`, as far as this store
    /// knows without asking anyone. The layer asks when a caller whose own lookup returned a later
    /// stamp than a running fill's would take that fill's value: knowing every invalidation up to that
    /// lookup is enough. The default, `true`, is always safe: such a caller fetches again.
    fn invalidated_since(&self, key: &CacheKey, tags: &[String], stamp: FillStamp) -> bool {
        let _ = (key, tags, stamp);
        true
    }
}

impl<T: Invalidate + ?Sized> Invalidate for std::sync::Arc<T> {
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        (**self).remove(key)
    }

    fn invalidate_tags(&self, tags: &[String]) -> StoreFuture<Result<(), Error>> {
        (**self).invalidate_tags(tags)
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        (**self).clear()
    }

    fn bounds_its_operations(&self) -> bool {
        (**self).bounds_its_operations()
    }
}

impl<T: Store + ?Sized> Store for std::sync::Arc<T> {
    type Value = T::Value;

    fn invalidated_since(&self, key: &CacheKey, tags: &[String], stamp: FillStamp) -> bool {
        (**self).invalidated_since(key, tags, stamp)
    }

    fn claim_fill(
        &self,
        key: &CacheKey,
        token: u64,
        lease: Duration,
    ) -> StoreFuture<Result<FillClaim, Error>> {
        (**self).claim_fill(key, token, lease)
    }

    fn release_fill(&self, key: &CacheKey, token: u64) -> StoreFuture<Result<(), Error>> {
        (**self).release_fill(key, token)
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<T::Value>, Error>> {
        (**self).get(key)
    }

    fn put(
        &self,
        key: &CacheKey,
        entry: PutEntry<T::Value>,
    ) -> StoreFuture<Result<PutOutcome, Error>> {
        (**self).put(key, entry)
    }

    fn update(
        &self,
        key: &CacheKey,
        entry: PutEntry<T::Value>,
    ) -> StoreFuture<Result<PutOutcome, Error>> {
        (**self).update(key, entry)
    }
}
