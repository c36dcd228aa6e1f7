//! The bounded map of entries: reads that write nothing shared, writes that keep the cap.
//!
//! A hit must scale across cores, so a read takes no lock, bumps no reference count and feeds no shared
//! log: it looks the key up in a lock-free [`papaya`] map under an epoch guard (thread-local) and sets the
//! entry's "used" bit only when it is not already set, so a hot entry is read without any write at all.
//!
//! Writers (inserts, removals, clears) take one lock, which also guards the eviction queue. Eviction is
//! CLOCK (second chance): entries queue in insertion order; when the map is over its cap, the entry at
//! the front leaves if it is unused since the hand last passed or past its lifetime, otherwise its bit is
//! cleared and it goes to the back. An overwrite leaves its old queue record behind; a record counts only
//! while the map still holds the entry it names, and the queue is compacted before it can hold more than
//! twice the cap of such records, so bookkeeping stays bounded whatever the mix of writes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use cache_core::CacheKey;
use papaya::{Guard, HashMap};
use tokio::time::Instant;

/// Records beyond twice the cap that the queue may hold before it is compacted.
const QUEUE_SLACK: usize = 64;

/// What the map needs to know of a stored value to evict it.
pub(crate) trait Expiring {
    /// When the value is of no further use, even stale.
    fn expires_at(&self) -> Instant;
}

struct Slot<T> {
    /// Unique per insert: tells a queue record of this entry from one of an entry it replaced.
    id: u64,
    used: AtomicBool,
    item: T,
}

#[derive(Default)]
struct Clock {
    /// Keys in insertion order, each with the id of the insert that queued it.
    queue: VecDeque<(CacheKey, u64)>,
    next_id: u64,
    /// Entries in the map; exact, since every change of the map happens under this lock.
    len: usize,
}

pub(crate) struct Entries<T> {
    map: HashMap<CacheKey, Slot<T>, foldhash::fast::RandomState>,
    clock: Mutex<Clock>,
    capacity: usize,
}

impl<T: Expiring + Send + Sync> Entries<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            clock: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Calls `read` on the entry of `key`, if any; an entry `read` answers `Some` for counts as used.
    pub(crate) fn read<R>(&self, key: &CacheKey, read: impl FnOnce(&T) -> Option<R>) -> Option<R> {
        let map = self.map.pin();
        let slot = map.get(key)?;
        let answer = read(&slot.item)?;
        // Load first: the store (and the cache-line traffic it costs) only happens once per sweep.
        if !slot.used.load(Ordering::Relaxed) {
            slot.used.store(true, Ordering::Relaxed);
        }
        Some(answer)
    }

    /// Stores `item` under `key`, replacing any entry, then evicts down to the cap.
    pub(crate) fn insert(&self, key: CacheKey, item: T) {
        let mut clock = self.lock();
        let id = clock.next_id;
        clock.next_id += 1;
        let map = self.map.pin();
        let slot = Slot {
            id,
            used: AtomicBool::new(false),
            item,
        };
        if map.insert(key.clone(), slot).is_none() {
            clock.len += 1;
        }
        clock.queue.push_back((key, id));
        self.sweep(&mut clock, &map);
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        let mut clock = self.lock();
        if self.map.pin().remove(key).is_some() {
            clock.len -= 1;
        }
    }

    pub(crate) fn clear(&self) {
        let mut clock = self.lock();
        self.map.pin().clear();
        clock.queue.clear();
        clock.len = 0;
    }

    /// Moves the hand until the map is within its cap and the queue within its bound.
    fn sweep<G: Guard>(
        &self,
        clock: &mut Clock,
        map: &papaya::HashMapRef<'_, CacheKey, Slot<T>, foldhash::fast::RandomState, G>,
    ) {
        let max_records = self.capacity.saturating_mul(2).saturating_add(QUEUE_SLACK);
        let mut now = None;
        while clock.len > self.capacity || clock.queue.len() > max_records {
            let Some((key, id)) = clock.queue.pop_front() else {
                break;
            };
            let Some(slot) = map.get(&key).filter(|slot| slot.id == id) else {
                continue; // the entry was replaced or removed since: a leftover record
            };
            let over_cap = clock.len > self.capacity;
            let expired = *now.get_or_insert_with(Instant::now) >= slot.item.expires_at();
            if expired || (over_cap && !slot.used.load(Ordering::Relaxed)) {
                map.remove(&key);
                clock.len -= 1;
                continue;
            }
            if over_cap {
                slot.used.store(false, Ordering::Relaxed); // its second chance, spent
            }
            clock.queue.push_back((key, id));
        }
    }
}

impl<T> Entries<T> {
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }

    fn lock(&self) -> MutexGuard<'_, Clock> {
        // Nothing under the lock runs user code that could panic halfway: a poisoned clock is consistent.
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Item(Instant);

    impl Expiring for Item {
        fn expires_at(&self) -> Instant {
            self.0
        }
    }

    fn later() -> Item {
        Item(Instant::now() + Duration::from_secs(3600))
    }

    fn key(name: impl Into<String>) -> CacheKey {
        CacheKey::from(name.into())
    }

    fn present(entries: &Entries<Item>, name: &str) -> bool {
        entries.read(&key(name), |_| Some(())).is_some()
    }

    #[test]
    fn the_cap_holds_and_used_entries_get_a_second_chance() {
        let entries = Entries::new(3);
        for name in ["a", "b", "c"] {
            entries.insert(key(name), later());
        }
        assert!(present(&entries, "a"), "reading marks a as used");
        entries.insert(key("d"), later());
        assert_eq!(entries.len(), 3);
        assert!(present(&entries, "a"), "a was used: it stays");
        assert!(!present(&entries, "b"), "b was not: it leaves first");
    }

    #[test]
    fn overwrites_leave_the_queue_bounded() {
        let entries = Entries::new(10);
        for i in 0..100_000 {
            entries.insert(key(format!("k{}", i % 5)), later());
        }
        assert_eq!(entries.len(), 5);
        let queued = entries.lock().queue.len();
        assert!(queued <= 2 * 10 + QUEUE_SLACK, "queue: {queued}");
        for i in 0..5 {
            assert!(present(&entries, &format!("k{i}")));
        }
    }

    #[test]
    fn expired_entries_are_swept_before_used_ones() {
        let entries = Entries::new(2);
        entries.insert(key("old"), Item(Instant::now()));
        entries.insert(key("kept"), later());
        assert!(present(&entries, "old") && present(&entries, "kept"));
        entries.insert(key("new"), later());
        assert!(!present(&entries, "old"), "expired: evicted though used");
        assert!(present(&entries, "kept") && present(&entries, "new"));
    }

    #[test]
    fn removal_and_clear_keep_the_count() {
        let entries = Entries::new(10);
        entries.insert(key("a"), later());
        entries.insert(key("a"), later());
        entries.insert(key("b"), later());
        entries.remove(&key("a"));
        entries.remove(&key("a"));
        assert_eq!(entries.len(), 1);
        entries.clear();
        assert_eq!(entries.len(), 0);
        assert!(!present(&entries, "b"));
    }
}
