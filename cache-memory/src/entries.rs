//! The bounded map of entries: reads that write nothing shared, writes that keep the cap.
//!
//! A hit must scale across cores, so a read takes no lock, bumps no reference count and feeds no shared
//! log: it looks the key up in a lock-free [`papaya`] map under an epoch guard (thread-local) and bumps
//! the entry's small use counter only while it is below its ceiling, so a hot entry is read without any
//! write at all.
//!
//! Writers (inserts, removals, clears) take one lock, which also guards the eviction queues. Eviction is
//! S3-FIFO (Yang et al., SOSP 2023), three FIFO queues:
//! - new keys enter a *small* queue (a tenth of the cap); one read there is not enough to stay: an
//!   entry leaving it moves to the *main* queue only if it was read at least twice, else it leaves and
//!   its key's hash goes to a *ghost* queue;
//! - a key found in the ghost queue (evicted recently, asked for again) enters the main queue directly;
//! - an entry at the front of the main queue leaves if it was not read since it was last there, else
//!   it goes round again with one use fewer.
//!
//! One-hit wonders (scans, keys read once) so leave quickly without pushing out the hot set, as with
//! TinyLFU, and entries past their lifetime leave as soon as a queue's front reaches them. An overwrite
//! leaves its old queue record behind; a record counts only while the map holds the entry it names, and
//! the queues are compacted before such records outnumber live entries, so all bookkeeping stays
//! bounded by the cap whatever the mix of writes.

use std::collections::{HashMap as StdHashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use cache_core::CacheKey;
use papaya::HashMap;
use tokio::time::Instant;

/// Leftover records the queues may hold beyond the live entries before they are compacted.
const QUEUE_SLACK: usize = 64;
/// Uses counted per entry: enough to tell hot from warm, small enough that hot entries stop writing.
const MAX_USES: u8 = 3;

type Hasher = foldhash::fast::RandomState;

/// What the map needs to know of a stored value to evict it.
pub trait Expiring {
    /// When the value is of no further use, even stale.
    fn expires_at(&self) -> Instant;
}

struct Slot<T> {
    /// Unique per insert: tells a queue record of this entry from one of an entry it replaced.
    id: u64,
    uses: AtomicU8,
    /// In the main queue (changed only under the lock).
    main: AtomicBool,
    item: T,
}

impl<T> Slot<T> {
    fn in_main(&self) -> bool {
        self.main.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Queues {
    small: VecDeque<(CacheKey, u64)>,
    main: VecDeque<(CacheKey, u64)>,
    /// Hashes of keys recently evicted from `small`, oldest first, and how often each is in there.
    ghost: VecDeque<u64>,
    ghosts: StdHashMap<u64, u32, Hasher>,
    next_id: u64,
    /// Live entries per queue; exact, since every change of the map happens under this lock.
    small_len: usize,
    main_len: usize,
}

impl Queues {
    fn len(&self) -> usize {
        self.small_len + self.main_len
    }

    fn records(&self) -> usize {
        self.small.len() + self.main.len()
    }

    fn count(&mut self, main: bool, added: bool) {
        let len = if main {
            &mut self.main_len
        } else {
            &mut self.small_len
        };
        if added {
            *len += 1;
        } else {
            *len -= 1;
        }
    }

    fn remember(&mut self, hash: u64, max: usize) {
        self.ghost.push_back(hash);
        *self.ghosts.entry(hash).or_default() += 1;
        while self.ghost.len() > max {
            let Some(old) = self.ghost.pop_front() else {
                break;
            };
            if let Some(count) = self.ghosts.get_mut(&old) {
                *count -= 1;
                if *count == 0 {
                    self.ghosts.remove(&old);
                }
            }
        }
    }
}

/// A lock-free map of at most `capacity` items, evicted S3-FIFO (see the module docs above): the map
/// [`MemoryStore`](crate::MemoryStore) keeps its entries in, for stores that keep copies of their own
/// (a near tier in front of a shared store).
///
/// ```
/// use cache_core::CacheKey;
/// use cache_memory::{Entries, Expiring};
/// use tokio::time::Instant;
///
/// struct Copy(&'static str, Instant);
/// impl Expiring for Copy {
///     fn expires_at(&self) -> Instant { self.1 }
/// }
///
/// let map = Entries::new(2);
/// let later = Instant::now() + std::time::Duration::from_secs(60);
/// map.insert(CacheKey::from("a"), Copy("roles", later));
/// assert_eq!(map.read(&CacheKey::from("a"), |copy| Some(copy.0)), Some("roles"));
/// ```
pub struct Entries<T> {
    map: HashMap<CacheKey, Slot<T>, Hasher>,
    queues: Mutex<Queues>,
    hasher: Hasher,
    capacity: usize,
    small_capacity: usize,
    /// Keys the ghost queue remembers: as many as the main queue holds.
    ghost_capacity: usize,
}

type Pinned<'m, T> = papaya::HashMapRef<'m, CacheKey, Slot<T>, Hasher, papaya::LocalGuard<'m>>;

impl<T: Expiring + Send + Sync> Entries<T> {
    /// Calls `read` on the entry of `key`, if any; an entry `read` answers `Some` for counts as used.
    pub fn read<R>(&self, key: &CacheKey, read: impl FnOnce(&T) -> Option<R>) -> Option<R> {
        let map = self.map.pin();
        let slot = map.get(key)?;
        let answer = read(&slot.item)?;
        // Load first: a store (and the cache-line traffic it costs) only happens below the ceiling.
        let uses = slot.uses.load(Ordering::Relaxed);
        if uses < MAX_USES {
            slot.uses.store(uses + 1, Ordering::Relaxed);
        }
        Some(answer)
    }

    /// Stores `item` under `key`, replacing any entry; a new key first evicts another when the map is
    /// full.
    pub fn insert(&self, key: CacheKey, item: T) {
        let mut queues = self.lock();
        let map = self.map.pin();
        let id = queues.next_id;
        queues.next_id += 1;
        // A replaced entry keeps its place and its uses; a new key makes room first (so it cannot be
        // its own victim), and goes straight to main if it was evicted recently.
        let (main, uses) = match map.get(&key) {
            Some(old) => (old.in_main(), old.uses.load(Ordering::Relaxed)),
            None => {
                self.make_room(&mut queues, &map);
                let hash = self.hasher.hash_one(&key);
                (queues.ghosts.contains_key(&hash), 0)
            }
        };
        let slot = Slot {
            id,
            uses: AtomicU8::new(uses),
            main: AtomicBool::new(main),
            item,
        };
        if let Some(old) = map.insert(key.clone(), slot) {
            let was_main = old.in_main();
            queues.count(was_main, false);
        }
        queues.count(main, true);
        if main {
            queues.main.push_back((key, id));
        } else {
            queues.small.push_back((key, id));
        }
        self.compact(&mut queues, &map);
    }

    /// Removes the item of `key`, if any.
    pub fn remove(&self, key: &CacheKey) {
        let mut queues = self.lock();
        if let Some(old) = self.map.pin().remove(key) {
            let was_main = old.in_main();
            queues.count(was_main, false);
        }
    }

    /// Removes every item.
    pub fn clear(&self) {
        let mut queues = self.lock();
        self.map.pin().clear();
        *queues = Queues {
            next_id: queues.next_id,
            ..Queues::default()
        };
    }

    /// Evicts until a new entry fits under the cap.
    fn make_room(&self, queues: &mut Queues, map: &Pinned<'_, T>) {
        if queues.len() < self.capacity {
            return;
        }
        let now = Instant::now();
        while queues.len() >= self.capacity {
            let moved = if queues.small_len > self.small_capacity || queues.main_len == 0 {
                self.evict_small(queues, map, now)
            } else {
                self.evict_main(queues, map, now)
            };
            if !moved {
                // Only a count out of step with the queues gets here: better over the cap than stuck.
                debug_assert!(false, "entry counts out of step with the eviction queues");
                break;
            }
        }
    }

    /// Drops leftover records once they outnumber the live entries.
    fn compact(&self, queues: &mut Queues, map: &Pinned<'_, T>) {
        if queues.records() > queues.len().saturating_mul(2).saturating_add(QUEUE_SLACK) {
            let live =
                |(key, id): &(CacheKey, u64)| map.get(key).is_some_and(|slot| slot.id == *id);
            queues.small.retain(live);
            queues.main.retain(live);
        }
    }

    /// Takes the front of the small queue out: into main if it was read more than once, else out of the
    /// map (its key into the ghost queue). False when the queue held no live entry.
    fn evict_small(&self, queues: &mut Queues, map: &Pinned<'_, T>, now: Instant) -> bool {
        while let Some((key, id)) = queues.small.pop_front() {
            let Some(slot) = map.get(&key).filter(|slot| slot.id == id) else {
                continue; // replaced or removed since: a leftover record
            };
            queues.small_len -= 1;
            if now >= slot.item.expires_at() {
                map.remove(&key);
            } else if slot.uses.load(Ordering::Relaxed) > 1 {
                slot.uses.store(0, Ordering::Relaxed);
                slot.main.store(true, Ordering::Relaxed);
                queues.main_len += 1;
                queues.main.push_back((key, id));
            } else {
                let hash = self.hasher.hash_one(&key);
                map.remove(&key);
                queues.remember(hash, self.ghost_capacity);
            }
            return true;
        }
        false
    }

    /// Takes the front of the main queue out if unused since it was last there, else sends it round
    /// again with one use fewer. Readers may raise uses again meanwhile (without the lock), so after as
    /// many turns as it takes to wear every entry's uses down, the front leaves regardless.
    fn evict_main(&self, queues: &mut Queues, map: &Pinned<'_, T>, now: Instant) -> bool {
        let mut turns = queues.main.len().saturating_mul(usize::from(MAX_USES) + 1);
        while let Some((key, id)) = queues.main.pop_front() {
            let Some(slot) = map.get(&key).filter(|slot| slot.id == id) else {
                continue;
            };
            let uses = slot.uses.load(Ordering::Relaxed);
            turns = turns.saturating_sub(1);
            if now >= slot.item.expires_at() || uses == 0 || turns == 0 {
                map.remove(&key);
                queues.main_len -= 1;
                return true;
            }
            slot.uses.store(uses - 1, Ordering::Relaxed);
            queues.main.push_back((key, id));
        }
        false
    }
}

impl<T> Entries<T> {
    /// An empty map of at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            map: HashMap::builder().hasher(Hasher::default()).build(),
            queues: Mutex::default(),
            hasher: Hasher::default(),
            capacity,
            small_capacity: (capacity / 10).max(1),
            ghost_capacity: (capacity - capacity / 10).max(1),
        }
    }

    /// Items held, at most the capacity.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no item is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Counts are updated next to the map change they follow, and values are dropped by the map's
        // reclamation later: a panic under the lock leaves the queues usable.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn read_twice(entries: &Entries<Item>, name: &str) {
        assert!(present(entries, name) && present(entries, name));
    }

    #[test]
    fn entries_read_twice_outlast_a_wave_of_new_keys() {
        let entries = Entries::new(20);
        for i in 0..20 {
            entries.insert(key(format!("hot{i}")), later());
        }
        for i in 0..20 {
            read_twice(&entries, &format!("hot{i}"));
        }
        for i in 0..1_000 {
            entries.insert(key(format!("scan{i}")), later());
            assert!(entries.len() <= 20);
        }
        let kept = (0..20)
            .filter(|i| present(&entries, &format!("hot{i}")))
            .count();
        assert!(
            kept >= 17,
            "a scan pushed out the hot set: {kept} of 20 kept"
        );
    }

    #[test]
    fn a_key_evicted_recently_comes_back_to_stay() {
        let entries = Entries::new(10);
        entries.insert(key("again"), later());
        for i in 0..5 {
            entries.insert(key(format!("k{i}")), later());
        }
        // "again" is the oldest of the small queue, read never: evicted, remembered.
        for i in 5..10 {
            entries.insert(key(format!("k{i}")), later());
        }
        assert!(!present(&entries, "again"));
        entries.insert(key("again"), later());
        assert!(entries
            .lock()
            .main
            .iter()
            .any(|(k, _)| k.as_str() == "again"));
        for i in 10..30 {
            entries.insert(key(format!("k{i}")), later());
        }
        assert!(
            present(&entries, "again"),
            "in main: new keys churn the small queue only"
        );
    }

    #[test]
    fn a_new_key_is_never_its_own_victim() {
        // A warm main queue: every entry read, so the hand goes round before it finds a victim.
        let entries = Entries::new(10);
        for i in 0..20 {
            entries.insert(key(format!("warm{i}")), later());
            read_twice(&entries, &format!("warm{i}"));
        }
        entries.insert(key("ghost"), later());
        for i in 0..9 {
            entries.insert(key(format!("cold{i}")), later());
        }
        assert!(
            !present(&entries, "ghost"),
            "evicted from small, remembered"
        );
        for i in 0..20 {
            present(&entries, &format!("warm{i}"));
        }
        entries.insert(key("ghost"), later());
        assert!(
            present(&entries, "ghost"),
            "the insert that admitted it kept it"
        );
        assert_eq!(entries.len(), 10);
    }

    #[test]
    fn eviction_ends_while_readers_keep_every_entry_hot() {
        let entries = Entries::new(4);
        for i in 0..4 {
            entries.insert(key(format!("hot{i}")), later());
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..4 {
                        present(&entries, &format!("hot{i}"));
                    }
                }
            });
            for i in 0..10_000 {
                entries.insert(key(format!("new{i}")), later());
                read_twice(&entries, &format!("new{i}"));
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert_eq!(entries.len(), 4);
    }

    #[test]
    fn overwrites_leave_the_queue_bounded() {
        let entries = Entries::new(10);
        for i in 0..100_000 {
            entries.insert(key(format!("k{}", i % 5)), later());
        }
        assert_eq!(entries.len(), 5);
        let queued = entries.lock().records();
        assert!(queued <= 2 * 5 + QUEUE_SLACK + 1, "queue: {queued}");
        for i in 0..5 {
            assert!(present(&entries, &format!("k{i}")));
        }
    }

    #[test]
    fn expired_entries_are_swept_before_used_ones() {
        let entries = Entries::new(2);
        entries.insert(key("old"), Item(Instant::now()));
        entries.insert(key("kept"), later());
        read_twice(&entries, "old");
        read_twice(&entries, "kept");
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
