//! The near tier: copies of Redis entries kept in process, served without a round trip while this
//! process's view of the invalidations is known to be current.
//!
//! A copy carries what the Redis entry carries (its fill stamp, tags and freshness) and is judged like
//! one: against the [view](crate::view) at the moment it is read. So a copy needs no eviction when an
//! invalidation arrives: the view's records make it dead. What a copy does need is a view that knows
//! every invalidation that has returned anywhere; [`Coherence`] decides that:
//!
//! - a tracking notice that has arrived but is not yet in the view (an invalidation, a lost or new
//!   connection) stops every copy from being served until a read through Redis has caught the view up;
//! - a view is trusted only for [`max_silence`](crate::RedisOptions::near_max_silence) after the last
//!   round trip that proved it current (a reply on a tracked connection with no notice left to read):
//!   a connection that goes silent without closing (a partition, a paused process) cannot keep copies
//!   alive. Past half of it, a hit starts one background round trip to prove it again.
//!
//! A copy lives no longer than the Redis entry's remaining TTL (read with it: `PTTL`, in the same round
//! trip) and at most the tier's capacity of copies are kept, evicted S3-FIFO like the in-process store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cache_core::codec::envelope::Freshness;
use cache_core::CacheKey;
use cache_memory::{Entries, Expiring};
use tokio::time::Instant;

/// Name of the variable setting the near tier's capacity in entries (0, the default, turns it off).
pub const CACHE_NEAR_SIZE: &str = "CACHE_NEAR_SIZE";
/// Name of the variable setting how long a silent connection may keep near copies served, in ms.
pub const CACHE_NEAR_MAX_SILENCE_MS: &str = "CACHE_NEAR_MAX_SILENCE_MS";
/// Default of [`RedisOptions::near_max_silence`](crate::RedisOptions::near_max_silence).
pub const DEFAULT_NEAR_MAX_SILENCE: Duration = Duration::from_secs(1);

/// One copy of a Redis entry.
pub(crate) struct NearCopy<V> {
    pub(crate) value: V,
    pub(crate) stamp: u64,
    pub(crate) tags: Box<[String]>,
    pub(crate) freshness: Freshness,
    pub(crate) expires_at: Instant,
    /// The view's version at which the copy was last found alive (0: never checked).
    pub(crate) alive_at: AtomicU64,
    /// The view's history generation when the copy was made.
    pub(crate) history: u64,
}

impl<V> Expiring for NearCopy<V> {
    fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

/// The copies of one store's values.
pub(crate) struct NearTier<V> {
    pub(crate) copies: Entries<NearCopy<V>>,
}

impl<V> NearTier<V> {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            copies: Entries::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
        }
    }
}

/// Where one Redis operation keeps its copy: taken before the request is sent, so that the copy
/// expires no later than the entry (Redis's countdown starts after) and is dropped if Redis lost its
/// history meanwhile.
pub(crate) struct NearFill<'a, V> {
    tier: &'a NearTier<V>,
    expires_at: Instant,
    history: u64,
}

impl<'a, V: Send + Sync> NearFill<'a, V> {
    /// For a request sent at `sent` under the view's history generation `history`, about an entry
    /// Redis keeps `ttl_ms` more.
    pub(crate) fn new(tier: &'a NearTier<V>, sent: Instant, history: u64, ttl_ms: u64) -> Self {
        let expires_at = sent
            .checked_add(Duration::from_millis(ttl_ms))
            .unwrap_or(sent + Duration::from_secs(100 * 365 * 24 * 3600));
        Self {
            tier,
            expires_at,
            history,
        }
    }

    /// Keeps the copy of `key`, replacing its previous one.
    pub(crate) fn keep(
        self,
        key: &CacheKey,
        value: V,
        stamp: u64,
        tags: Box<[String]>,
        freshness: Freshness,
    ) {
        let copy = NearCopy {
            value,
            stamp,
            tags,
            freshness,
            expires_at: self.expires_at,
            alive_at: AtomicU64::new(0),
            history: self.history,
        };
        self.tier.copies.insert(key.clone(), copy);
    }
}

/// Whether the view of the invalidations may be trusted without asking Redis.
pub(crate) struct Coherence {
    /// When the view was last proven current, in ms after `origin` (0: never).
    proven_at_ms: AtomicU64,
    proving: AtomicBool,
    /// When the last background proof started, in ms after `origin`.
    attempted_at_ms: AtomicU64,
    origin: Instant,
    max_silence_ms: u64,
}

impl Coherence {
    pub(crate) fn new(max_silence: Duration) -> Self {
        Self {
            proven_at_ms: AtomicU64::new(0),
            proving: AtomicBool::new(false),
            attempted_at_ms: AtomicU64::new(0),
            origin: Instant::now(),
            max_silence_ms: u64::try_from(max_silence.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        // +1 so that a proof at the origin is not "never".
        u64::try_from(at.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// The view held every invalidation that had returned when a request sent at `sent` left.
    pub(crate) fn proven(&self, sent: Instant) {
        self.proven_at_ms.fetch_max(self.ms(sent), Ordering::AcqRel);
    }

    /// Forgets every proof: the next copy is served only after a round trip proves the view again.
    pub(crate) fn doubt(&self) {
        self.proven_at_ms.store(0, Ordering::Release);
    }

    /// Whether the last proof is recent enough at `now` to serve copies, and whether it is old enough
    /// to renew.
    pub(crate) fn standing(&self, now: Instant) -> Standing {
        let proven = self.proven_at_ms.load(Ordering::Acquire);
        if proven == 0 {
            return Standing::Unproven;
        }
        let age = self.ms(now).saturating_sub(proven);
        if age >= self.max_silence_ms {
            Standing::Unproven
        } else if age >= self.max_silence_ms / 2 {
            Standing::Renew
        } else {
            Standing::Proven
        }
    }

    /// Claims the one background renewal at `now`: false when one is running, or one started within
    /// an eighth of the silence bound (a renewal that could not prove anything is not retried on every
    /// hit). The claimer must call [`done_proving`](Self::done_proving), from a guard.
    pub(crate) fn start_proving(&self, now: Instant) -> bool {
        let now_ms = self.ms(now);
        let last = self.attempted_at_ms.load(Ordering::Acquire);
        if last != 0 && now_ms.saturating_sub(last) < (self.max_silence_ms / 8).max(1) {
            return false;
        }
        if self.proving.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.attempted_at_ms.store(now_ms, Ordering::Release);
        true
    }

    pub(crate) fn done_proving(&self) {
        self.proving.store(false, Ordering::Release);
    }
}

/// See [`Coherence::standing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Serve copies.
    Proven,
    /// Serve copies, and prove the view again in the background.
    Renew,
    /// Do not serve copies: ask Redis.
    Unproven,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_proof_lapses_after_the_silence_and_asks_renewal_halfway() {
        let coherence = Coherence::new(Duration::from_millis(100));
        assert_eq!(
            coherence.standing(Instant::now()),
            Standing::Unproven,
            "never proven"
        );
        coherence.proven(Instant::now());
        assert_eq!(coherence.standing(Instant::now()), Standing::Proven);
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(coherence.standing(Instant::now()), Standing::Renew);
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(coherence.standing(Instant::now()), Standing::Unproven);
        coherence.proven(Instant::now());
        coherence.doubt();
        assert_eq!(
            coherence.standing(Instant::now()),
            Standing::Unproven,
            "doubted"
        );
    }
}
