//! Counters of what the cache did, readable at any time as a cheap snapshot.
//!
//! Counters are striped across cache lines so that tasks on different cores counting hits do not
//! contend on one atomic.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

const STRIPES: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

#[derive(Default)]
struct Counter([Padded; STRIPES]);

impl Counter {
    fn add(&self, n: u64) {
        self.0[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|slot| slot.0.load(Ordering::Relaxed))
            .sum()
    }
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        if stripe.get() == usize::MAX {
            stripe.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
        }
        stripe.get()
    })
}

#[derive(Default)]
struct Counters {
    hits: Counter,
    misses: Counter,
    dedupes: Counter,
    stale_served: Counter,
    refresh_failures: Counter,
    store_errors: Counter,
    invalidations: Counter,
    passthrough: Counter,
}

/// Live counters of one cache; clones share them.
#[derive(Clone, Default)]
pub struct Stats {
    counters: Arc<Counters>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Reads answered from the store.
    pub hits: u64,
    /// Reads that called the inner service (leaders of a flight).
    pub misses: u64,
    /// Reads that joined another caller's flight instead of calling the inner service.
    pub dedupes: u64,
    /// Reads answered with an entry past its fresh period.
    pub stale_served: u64,
    /// Background refreshes (stale-while-revalidate, or calls that outlived a soft timeout) that failed.
    pub refresh_failures: u64,
    /// Store operations that failed, timed out or returned undecodable entries.
    pub store_errors: u64,
    /// Tags invalidated and keys removed, by writes and by the handle.
    pub invalidations: u64,
    /// Requests that were not cacheable reads (writes included) or arrived while caching was disabled.
    pub passthrough: u64,
}

impl Stats {
    /// Fresh counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.counters;
        StatsSnapshot {
            hits: c.hits.get(),
            misses: c.misses.get(),
            dedupes: c.dedupes.get(),
            stale_served: c.stale_served.get(),
            refresh_failures: c.refresh_failures.get(),
            store_errors: c.store_errors.get(),
            invalidations: c.invalidations.get(),
            passthrough: c.passthrough.get(),
        }
    }

    pub(crate) fn hit(&self) {
        self.counters.hits.add(1);
    }

    pub(crate) fn miss(&self) {
        self.counters.misses.add(1);
    }

    pub(crate) fn dedupe(&self) {
        self.counters.dedupes.add(1);
    }

    pub(crate) fn stale_served(&self) {
        self.counters.stale_served.add(1);
    }

    pub(crate) fn refresh_failed(&self) {
        self.counters.refresh_failures.add(1);
    }

    pub(crate) fn store_error(&self) {
        self.counters.store_errors.add(1);
    }

    pub(crate) fn invalidations(&self, n: usize) {
        self.counters.invalidations.add(n as u64);
    }

    /// Counts a request that went to the inner service without the cache: for services that route
    /// such requests around the layer's own (to stream them, say), so the counters still say so.
    pub fn record_passthrough(&self) {
        self.passthrough();
    }

    pub(crate) fn passthrough(&self) {
        self.counters.passthrough.add(1);
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.snapshot(), f)
    }
}
