//! The record of invalidations that stores check entries against.

use std::collections::HashMap;

/// When each tag and each key was last invalidated, and a floor below which every entry counts as gone.
///
/// Times are the store's stamps ([`FillStamp`](super::FillStamp) values). An entry filled at `stamp` is
/// gone when its key or one of its tags was invalidated at a later time, or when `stamp` is below the
/// floor. [`cap`](Self::cap) bounds the table by forgetting the oldest records and raising the floor past
/// them: entries filled before a forgotten invalidation become misses, never stale hits.
///
/// ```
/// use cache_core::store::InvalidationRecords;
///
/// let mut records = InvalidationRecords::new();
/// records.record_tag("guild:1", 10);
/// let tags = ["guild:1"];
/// assert!(records.is_dead("roles", tags, 9));   // filled before the invalidation
/// assert!(!records.is_dead("roles", tags, 10)); // filled after it
/// ```
#[derive(Debug, Clone, Default)]
pub struct InvalidationRecords {
    tags: HashMap<String, u64>,
    keys: HashMap<String, u64>,
    floor: u64,
}

impl InvalidationRecords {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held (tags and keys).
    pub fn len(&self) -> usize {
        self.tags.len() + self.keys.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries stamped below this are gone.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// True when a record here removes an entry of `key` carrying `tags`, filled at `stamp`.
    pub fn is_dead<'a>(
        &self,
        key: &str,
        tags: impl IntoIterator<Item = &'a str>,
        stamp: u64,
    ) -> bool {
        stamp < self.floor
            || self.keys.get(key).is_some_and(|&at| at > stamp)
            || tags
                .into_iter()
                .any(|tag| self.tags.get(tag).is_some_and(|&at| at > stamp))
    }

    /// Records an invalidation of `tag` at `at` (an older record of it is superseded).
    pub fn record_tag(&mut self, tag: &str, at: u64) {
        record(&mut self.tags, tag, at);
    }

    /// Records an invalidation (or an update) of `key` at `at`.
    pub fn record_key(&mut self, key: &str, at: u64) {
        record(&mut self.keys, key, at);
    }

    /// Raises the floor to `floor`, dropping the records it makes redundant.
    pub fn raise_floor(&mut self, floor: u64) {
        if floor > self.floor {
            self.floor = floor;
            self.tags.retain(|_, at| *at > floor);
            self.keys.retain(|_, at| *at > floor);
        }
    }

    /// Keeps at most `max` records: beyond it, the older half is forgotten and the floor rises past it.
    pub fn cap(&mut self, max: usize) {
        if self.len() <= max {
            return;
        }
        let mut times: Vec<u64> = self
            .tags
            .values()
            .chain(self.keys.values())
            .copied()
            .collect();
        let middle = times.len() / 2;
        let (_, &mut cutoff, _) = times.select_nth_unstable(middle);
        // A forgotten record at `cutoff` removed the entries stamped before it: so does the floor now.
        self.raise_floor(cutoff);
    }
}

fn record(records: &mut HashMap<String, u64>, name: &str, at: u64) {
    match records.get_mut(name) {
        Some(existing) => *existing = (*existing).max(at),
        None => {
            records.insert(name.to_owned(), at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_raises_the_floor_past_what_was_forgotten() {
        let mut records = InvalidationRecords::new();
        for i in 1..=10 {
            records.record_tag(&format!("t{i}"), i);
        }
        records.cap(10);
        assert_eq!(records.len(), 10, "within the cap: nothing forgotten");
        records.cap(8);
        assert_eq!((records.floor(), records.len()), (6, 4));
        assert!(records.is_dead("k", [], 3), "stamped before the floor");
        assert!(records.is_dead("k", ["t9"], 7), "t9 invalidated at 9 > 7");
        assert!(!records.is_dead("k", ["t9"], 9));
    }

    #[test]
    fn keys_and_tags_are_separate_namespaces() {
        let mut records = InvalidationRecords::new();
        records.record_key("same", 5);
        assert!(records.is_dead("same", [], 4));
        assert!(!records.is_dead("other", ["same"], 4));
    }
}
