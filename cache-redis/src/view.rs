//! This process's view of the invalidation records, refreshed only when something changed.
//!
//! A read checks the entry's stamp and tags against the view, locally, with no script and no further
//! round trip, as long as the view knows every invalidation there is. It learns that something changed
//! from a tracking notice pushed by Redis ([`crate::tracking`]; the read is then a plain `GET`), or,
//! without tracking, from the clock fetched with the entry (`MGET`). It then fetches the records newer
//! than what it knows (atomic pipelines, one page at a time, shared by every task of the process that
//! notices at the same time). So an invalidation made by any process is honoured by the next read
//! anywhere, and reads pay for invalidations only when there are some.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use cache_core::store::InvalidationRecords;
use redis::RedisResult;

use crate::connection::Conn;

use crate::keys::Keys;

/// Records fetched per catch-up read.
const PAGE: usize = 1_000;

/// Records newer than the view, the floor, the clock, and whether the records exist at all.
type CatchUpReply = (Vec<(String, u64)>, Option<u64>, Option<u64>, bool);

pub(crate) struct View {
    /// Every invalidation up to this clock value is in `records` (or below `floor`).
    cursor: AtomicU64,
    /// Tracking notices accounted for: every invalidation noticed up to this count is in the view.
    noticed: AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
    records: RwLock<InvalidationRecords>,
    catching_up: tokio::sync::Mutex<()>,
    max_records: usize,
    /// Bumped after every change of `records` or `cursor`: what was judged alive at a version stays
    /// alive while the version holds, so a near copy is checked once per change, not per hit.
    version: AtomicU64,
    /// Bumped when Redis turns out to have lost the invalidation history (its clock key gone while the
    /// view had seen it): near copies made before cannot be judged and are dropped.
    history: AtomicU64,
}

impl View {
    pub(crate) fn new(max_records: usize) -> Self {
        Self {
            cursor: AtomicU64::new(0),
            noticed: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
            records: RwLock::default(),
            catching_up: tokio::sync::Mutex::new(()),
            max_records: max_records.max(2),
            version: AtomicU64::new(1),
            history: AtomicU64::new(0),
        }
    }

    /// Every invalidation up to this clock value is known to the view.
    ///
    /// A fill may be stamped with it: each of those invalidations was read from Redis before the fill
    /// started. It also keeps stamps ahead of what the view knows when Redis comes back empty after a
    /// restart (its clock key gone), so new entries are not mistaken for old ones.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// The records' version (see the field).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The history's generation (see the field): a near copy made under another is dropped.
    pub(crate) fn history(&self) -> u64 {
        self.history.load(Ordering::Acquire)
    }

    /// Tracking notices the view has accounted for: while the tracking counter is no higher, the view
    /// knows every invalidation announced on the tracked connections.
    pub(crate) fn noticed(&self) -> u64 {
        self.noticed.load(Ordering::Acquire)
    }

    /// True when an invalidation known to the view removes an entry of `key` with `tags` filled at `stamp`.
    /// Call [`catch_up`](Self::catch_up) with the clock read alongside the entry first.
    pub(crate) fn is_dead<'a>(
        &self,
        key: &str,
        tags: impl IntoIterator<Item = &'a str>,
        stamp: u64,
    ) -> bool {
        if stamp >= self.cursor.load(Ordering::Acquire) {
            return false;
        }
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        records.is_dead(key, tags, stamp)
    }

    /// Brings the view up to date when tracking notices arrived since it last was: `notices` is the
    /// tracking counter, read after the caller's reply came back.
    ///
    /// # Cancel safety
    /// Cancel safe: notices count as accounted for only once the view has caught up.
    pub(crate) async fn refresh(
        &self,
        notices: impl Fn() -> u64,
        keys: &Keys,
        conn: &mut Conn,
    ) -> RedisResult<()> {
        if notices() <= self.noticed.load(Ordering::Acquire) {
            return Ok(());
        }
        let _only_one = self.refreshing.lock().await;
        // Read before the clock: a notice counted here was pushed before the clock is read below, so
        // what it announced is in what the read returns.
        let seen = notices();
        if seen <= self.noticed.load(Ordering::Acquire) {
            return Ok(());
        }
        let clock: Option<u64> = redis::cmd("GET").arg(&keys.epoch).query_async(conn).await?;
        if clock.is_none() && self.cursor.load(Ordering::Acquire) > 0 {
            // Redis restarted empty, or lost the clock key: invalidations this view had not read yet
            // are gone with it. Entries in Redis are judged by the floor logic of the scripts; copies
            // kept in process cannot be, so they go.
            tracing::warn!("the invalidation clock is gone from Redis; dropping near copies");
            self.history.fetch_add(1, Ordering::AcqRel);
        }
        self.catch_up(clock.unwrap_or(0), keys, conn).await?;
        self.noticed.fetch_max(seen, Ordering::AcqRel);
        Ok(())
    }

    /// Brings the view up to `clock`, the invalidation clock read by the caller.
    ///
    /// # Cancel safety
    /// Cancel safe: the view only advances once the fetched records are applied.
    pub(crate) async fn catch_up(
        &self,
        clock: u64,
        keys: &Keys,
        conn: &mut Conn,
    ) -> RedisResult<()> {
        if clock <= self.cursor.load(Ordering::Acquire) {
            return Ok(());
        }
        let _only_one = self.catching_up.lock().await;
        // Page by page, so that progress survives a timeout: a process arriving at a long backlog
        // catches up over several reads instead of never.
        loop {
            let known = self.cursor.load(Ordering::Acquire);
            if clock <= known {
                return Ok(());
            }
            let (fetched, floor, now, records_exist): CatchUpReply = redis::pipe()
                .atomic()
                .cmd("ZRANGE")
                .arg(&keys.records)
                .arg(format!("({known}"))
                .arg("+inf")
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(PAGE)
                .arg("WITHSCORES")
                .get(&keys.floor)
                .get(&keys.epoch)
                .exists(&keys.records)
                .query_async(conn)
                .await?;
            let mut floor = floor.unwrap_or(0);
            let now = now.unwrap_or(0);
            if !records_exist && floor < now {
                // The records were evicted (an allkeys-* policy) although invalidations happened:
                // nothing filled before now can be trusted.
                tracing::warn!(
                    "invalidation records missing from Redis; treating older entries as gone"
                );
                floor = now;
            }
            let full_page = fetched.len() >= PAGE;
            let newest = fetched.iter().map(|(_, at)| *at).max().unwrap_or(0);
            self.apply(fetched, floor);
            let cursor = if full_page {
                // Records after the page may share its last tick: stop just below it, unless the whole
                // page is that one tick, whose remaining records are then read in one go.
                if newest - 1 > known {
                    newest - 1
                } else {
                    let rest: Vec<(String, u64)> = redis::cmd("ZRANGE")
                        .arg(&keys.records)
                        .arg(newest)
                        .arg(newest)
                        .arg("BYSCORE")
                        .arg("WITHSCORES")
                        .query_async(conn)
                        .await?;
                    self.apply(rest, floor);
                    newest
                }
            } else {
                clock.max(now).max(newest)
            };
            self.cursor.fetch_max(cursor, Ordering::AcqRel);
            // `is_dead` reads the cursor too: a copy judged alive under the old one is judged again.
            self.version.fetch_add(1, Ordering::AcqRel);
            tracing::trace!(cursor, "invalidation view caught up");
        }
    }

    fn apply(&self, fetched: Vec<(String, u64)>, floor: u64) {
        let mut records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        for (name, at) in fetched {
            if let Some(tag) = name.strip_prefix("t:") {
                records.record_tag(tag, at);
            } else if let Some(key) = name.strip_prefix("k:") {
                records.record_key(key, at);
            }
        }
        records.raise_floor(floor);
        records.cap(self.max_records);
        drop(records);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    #[cfg(test)]
    fn record_count(&self) -> usize {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_at_the_clock_skips_the_table() {
        let view = View::new(10);
        view.apply(vec![("t:a".to_owned(), 5), ("k:key".to_owned(), 7)], 0);
        view.cursor.store(7, Ordering::Release);
        assert!(view.is_dead("x", ["a"], 4));
        assert!(view.is_dead("key", [], 6));
        assert!(
            !view.is_dead("key", ["a"], 7),
            "stamped at the cursor: nothing newer known"
        );
        assert_eq!(view.record_count(), 2);
    }
}
