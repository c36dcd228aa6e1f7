//! The in-process [`Store`] for `cache-core`: size-capped, per-entry TTL, tags, and hits that scale
//! with cores.
//!
//! - **Hits write nothing shared**: entries live in a lock-free map ([papaya](https://docs.rs/papaya));
//!   a hit takes no lock, touches no reference count and feeds no access log, so hits from many threads
//!   do not contend (the benchmarks in `benches/` measure this against mini-moka).
//! - **Size cap**: at most `capacity` entries (`CACHE_MEMORY_SIZE`), exactly, after every write. Eviction
//!   is S3-FIFO: new keys must be read twice to stay, so keys read once (scans) leave without pushing the
//!   hot set out; its hit ratio is on par with TinyLFU's (`hit_ratio_zipf` in the scenario runner).
//!   Entries past their lifetime leave when eviction reaches them, read or not.
//! - **Per-entry TTL**: each entry carries its own deadlines: a read past its TTL is
//!   [`Lookup::Stale`] within the entry's stale periods, a miss after them.
//! - **Tags** follow the invalidation model of [`cache_core::store`]: invalidating records a time, reads
//!   compare it with the entry's fill stamp. Nothing is kept per tag per entry, so evictions and expiries
//!   leave no bookkeeping behind; the record of invalidations has its own cap.
//! - **No serialization**: values are kept as they are and cloned on a hit. Wrap large values in `Arc` or
//!   use `Bytes` so a hit is cheap (their clone updates a shared counter: the one write a hit then makes).
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{CacheLayer, Policy};
//! use cache_memory::MemoryStore;
//!
//! let store = MemoryStore::<String>::from_env()?; // CACHE_MEMORY_SIZE, default 10,000
//! let layer = CacheLayer::new(store, Policy::new(|id: &u64| Some(format!("user:{id}"))).ttl(Duration::from_secs(30)));
//! # let _ = layer;
//! # Ok::<(), cache_core::Error>(())
//! ```
//!
//! Time is read from `tokio::time::Instant`, so tests can drive TTLs with tokio's paused clock.

mod entries;
mod invalidations;

use std::sync::Arc;
use std::time::Duration;

use cache_core::config::env::{self, Environment, ProcessEnv};
use cache_core::{
    CacheKey, Error, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, StalePeriods, Store,
    StoreFuture,
};
use tokio::time::Instant;

pub use entries::{Entries, Expiring};
use invalidations::Invalidations;

/// Name of the variable that caps the number of entries.
pub const CACHE_MEMORY_SIZE: &str = "CACHE_MEMORY_SIZE";
/// Entries kept when `CACHE_MEMORY_SIZE` is unset.
pub const DEFAULT_CAPACITY: u64 = 10_000;
/// Smallest cap of the invalidation record, whatever the capacity.
const MIN_INVALIDATION_RECORDS: usize = 4_096;

struct Entry<V> {
    value: V,
    stamp: u64,
    deadlines: Deadlines,
    tags: Box<[String]>,
}

impl<V> Expiring for Entry<V> {
    fn expires_at(&self) -> Instant {
        self.deadlines.expires_at
    }
}

/// When an entry stops being fresh, stops being refreshed on a hit, and is gone.
#[derive(Clone, Copy)]
struct Deadlines {
    fresh_until: Instant,
    revalidate_until: Instant,
    expires_at: Instant,
}

impl Deadlines {
    fn after(ttl: Duration, stale: StalePeriods) -> Self {
        let now = Instant::now();
        let at = |after: Duration| now.checked_add(after).unwrap_or_else(far_future);
        Self {
            fresh_until: at(ttl),
            revalidate_until: at(ttl.saturating_add(stale.while_revalidate)),
            expires_at: at(ttl.saturating_add(stale.retention())),
        }
    }
}

struct Inner<V> {
    entries: Entries<Entry<V>>,
    invalidations: Invalidations,
    capacity: u64,
}

/// An in-process, size-capped store of values of type `V`. Clones share the same entries.
pub struct MemoryStore<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for MemoryStore<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V> std::fmt::Debug for MemoryStore<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.inner.capacity)
            .field("entries", &self.inner.entries.len())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> MemoryStore<V> {
    /// A store of at most `capacity` entries (at least 1).
    pub fn new(capacity: u64) -> Self {
        let capacity = capacity.max(1);
        let max_records = usize::try_from(capacity)
            .unwrap_or(usize::MAX)
            .max(MIN_INVALIDATION_RECORDS);
        Self::with_invalidation_records(capacity, max_records)
    }

    /// A store of at most `capacity` entries that remembers at most `max_records` invalidations of tags and
    /// keys (older ones are folded into one conservative floor; see the crate docs).
    pub fn with_invalidation_records(capacity: u64, max_records: usize) -> Self {
        let capacity = capacity.max(1);
        let inner = Inner {
            entries: Entries::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
            invalidations: Invalidations::new(max_records.max(2)),
            capacity,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A store sized by `CACHE_MEMORY_SIZE` (entries, default [`DEFAULT_CAPACITY`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `CACHE_MEMORY_SIZE` when it is not a whole number of at least 1.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `CACHE_MEMORY_SIZE` when it is not a whole number of at least 1.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        Ok(Self::new(env::read_u64(
            env,
            CACHE_MEMORY_SIZE,
            DEFAULT_CAPACITY,
            1,
        )?))
    }

    /// The entry cap.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// Entries held, at most [`capacity`](Self::capacity). Expired and invalidated entries count until
    /// eviction reaches them or a fill overwrites them.
    pub fn entry_count(&self) -> u64 {
        self.inner.entries.len() as u64
    }

    /// Invalidations of tags and keys currently remembered (bounded by the record cap).
    pub fn invalidation_records(&self) -> usize {
        self.inner.invalidations.record_count()
    }

    fn lookup(&self, key: &CacheKey) -> Lookup<V> {
        let inner = &*self.inner;
        // Stamp before reading: a fill that follows this miss starts no earlier than this.
        let stamp = FillStamp::new(inner.invalidations.now());
        let found = inner.entries.read(key, |entry| {
            let now = Instant::now();
            let deadlines = &entry.deadlines;
            let live = now < deadlines.expires_at
                && !inner.invalidations.is_dead(key, &entry.tags, entry.stamp);
            if !live {
                return None;
            }
            let value = entry.value.clone();
            Some(if now < deadlines.fresh_until {
                Lookup::Hit {
                    value,
                    stamp: FillStamp::new(entry.stamp),
                }
            } else {
                Lookup::Stale {
                    value,
                    stamp,
                    revalidate: now < deadlines.revalidate_until,
                }
            })
        });
        found.unwrap_or(Lookup::Miss { stamp })
    }

    fn insert(&self, key: &CacheKey, entry: PutEntry<V>) -> PutOutcome {
        let inner = &*self.inner;
        let stamp = entry
            .stamp
            .map_or_else(|| inner.invalidations.now(), FillStamp::get);
        if entry.ttl.is_zero() || inner.invalidations.is_dead(key, &entry.tags, stamp) {
            return PutOutcome::Superseded;
        }
        let stored = Entry {
            deadlines: Deadlines::after(entry.ttl, entry.stale),
            value: entry.value,
            stamp,
            tags: entry.tags.into_boxed_slice(),
        };
        inner.entries.insert(key.clone(), stored);
        PutOutcome::Stored
    }
}

impl<V: Clone + Send + Sync + 'static> MemoryStore<V> {
    fn apply_update(&self, key: &CacheKey, entry: PutEntry<V>) -> PutOutcome {
        let inner = &*self.inner;
        let base = entry.stamp.map(FillStamp::get);
        let deadlines = Deadlines::after(entry.ttl, entry.stale);
        let PutEntry { value, tags, .. } = entry;
        let tags = tags.into_boxed_slice();
        let mut value = Some(value);
        let stored = inner.invalidations.update(key, &tags, base, |stamp| {
            let value = value.take().expect("stored once");
            let entry = Entry {
                value,
                stamp,
                deadlines,
                tags: tags.clone(),
            };
            inner.entries.insert(key.clone(), entry);
        });
        if stored {
            PutOutcome::Stored
        } else {
            PutOutcome::Superseded
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl<V: Clone + Send + Sync + 'static> Invalidate for MemoryStore<V> {
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        self.inner.invalidations.invalidate_key(key);
        self.inner.entries.remove(key);
        StoreFuture::ready(Ok(()))
    }

    fn invalidate_tags(&self, tags: &[String]) -> StoreFuture<Result<(), Error>> {
        self.inner.invalidations.invalidate_tags(tags);
        StoreFuture::ready(Ok(()))
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        self.inner.invalidations.clear();
        self.inner.entries.clear();
        StoreFuture::ready(Ok(()))
    }
}

impl<V: Clone + Send + Sync + 'static> Store for MemoryStore<V> {
    type Value = V;

    fn invalidated_since(&self, key: &CacheKey, tags: &[String], stamp: FillStamp) -> bool {
        self.inner.invalidations.is_dead(key, tags, stamp.get())
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<V>, Error>> {
        StoreFuture::ready(Ok(self.lookup(key)))
    }

    fn put(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        StoreFuture::ready(Ok(self.insert(key, entry)))
    }

    fn update(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        StoreFuture::ready(Ok(self.apply_update(key, entry)))
    }
}
