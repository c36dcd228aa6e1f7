//! The record of invalidations, and the logical clock that orders them against fills.
//!
//! A stamp is the clock's value when a fill starts; an invalidation advances the clock and records the new
//! value under each tag (or key). An entry is dead when a record of one of its tags or of its key is newer
//! than its stamp. When there are more records than the cap, the oldest half is forgotten and the
//! `floor` rises to the newest forgotten record: every entry stamped before the floor counts as dead. That
//! may cost a few extra misses, never a stale hit, and it keeps this table bounded whatever happens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cache_core::store::InvalidationRecords;

pub(crate) struct Invalidations {
    clock: AtomicU64,
    /// Time of the newest invalidation: entries stamped at or after it skip the table entirely.
    latest: AtomicU64,
    records: RwLock<InvalidationRecords>,
    max_records: usize,
}

impl Invalidations {
    pub(crate) fn new(max_records: usize) -> Self {
        Self {
            clock: AtomicU64::new(1),
            latest: AtomicU64::new(0),
            records: RwLock::default(),
            max_records,
        }
    }

    /// The stamp of a fill starting now.
    pub(crate) fn now(&self) -> u64 {
        self.clock.load(Ordering::Acquire)
    }

    pub(crate) fn is_dead(&self, key: &str, tags: &[String], stamp: u64) -> bool {
        if stamp >= self.latest.load(Ordering::Acquire) {
            return false;
        }
        self.read()
            .is_dead(key, tags.iter().map(String::as_str), stamp)
    }

    pub(crate) fn invalidate_tags(&self, tags: &[String]) {
        self.record(|records, at| {
            for tag in tags {
                records.record_tag(tag, at);
            }
        });
    }

    pub(crate) fn invalidate_key(&self, key: &str) {
        self.record(|records, at| {
            records.record_key(key, at);
        });
    }

    /// Records an update of `key` and, while no other record can interleave, hands its time to `store`.
    /// With a `base`, nothing happens (and `false` is returned) if the key or a tag was invalidated or
    /// updated after it.
    pub(crate) fn update(
        &self,
        key: &str,
        tags: &[String],
        base: Option<u64>,
        store: impl FnOnce(u64),
    ) -> bool {
        let superseded = |records: &InvalidationRecords| {
            base.is_some_and(|base| records.is_dead(key, tags.iter().map(String::as_str), base))
        };
        self.record_unless(superseded, |records, at| {
            records.record_key(key, at);
            // The entry goes in under the lock, so two updates of one key land in the order of their
            // times.
            store(at);
        })
    }

    pub(crate) fn clear(&self) {
        self.record(|records, at| records.raise_floor(at));
    }

    pub(crate) fn record_count(&self) -> usize {
        self.read().len()
    }

    fn record(&self, write: impl FnOnce(&mut InvalidationRecords, u64)) {
        self.record_unless(|_| false, write);
    }

    /// Ticks the clock and records, under the table's lock, unless `superseded` says otherwise first.
    fn record_unless(
        &self,
        superseded: impl FnOnce(&InvalidationRecords) -> bool,
        write: impl FnOnce(&mut InvalidationRecords, u64),
    ) -> bool {
        let mut records = self.write();
        if superseded(&records) {
            return false;
        }
        // Fills stamped before this tick are older than the record; fills stamped from now on are not.
        let at = self.clock.fetch_add(1, Ordering::AcqRel) + 1;
        write(&mut records, at);
        records.cap(self.max_records);
        drop(records);
        self.latest.fetch_max(at, Ordering::AcqRel);
        true
    }

    fn read(&self) -> RwLockReadGuard<'_, InvalidationRecords> {
        // Writers run no user code under the lock: a poisoned table is still consistent.
        self.records.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, InvalidationRecords> {
        self.records.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn an_invalidation_kills_older_stamps_only() {
        let inv = Invalidations::new(100);
        let before = inv.now();
        inv.invalidate_tags(&tags(&["a"]));
        let after = inv.now();
        assert!(inv.is_dead("k", &tags(&["a"]), before));
        assert!(!inv.is_dead("k", &tags(&["a"]), after));
        assert!(!inv.is_dead("k", &tags(&["b"]), before));
    }

    #[test]
    fn forgetting_records_never_revives_an_entry() {
        let inv = Invalidations::new(10);
        let old = inv.now();
        inv.invalidate_tags(&tags(&["victim"]));
        for i in 0..100 {
            inv.invalidate_tags(&[format!("other{i}")]);
        }
        assert!(inv.record_count() <= 10);
        assert!(
            inv.is_dead("k", &tags(&["victim"]), old),
            "a forgotten invalidation must still kill"
        );
        assert!(!inv.is_dead("k", &tags(&["victim"]), inv.now()));
    }
}
