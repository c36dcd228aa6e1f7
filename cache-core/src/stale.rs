//! Serving an entry after its TTL: stale-while-revalidate and stale-if-error (fail-safe).
//!
//! An entry is *fresh* for its TTL. After that it may stay in the store for a while longer, as set by its
//! [`StalePeriods`]:
//!
//! - during `while_revalidate`, a hit answers at once with the stale value and starts one background
//!   refresh of the key (joined by every caller and refresh of that key, like any fill);
//! - during `if_error`, a read calls the inner service as on a miss, but answers with the stale value when
//!   the call fails, times out, or returns a response the policy classifies as a failure
//!   ([`CachePolicy::is_failure`](crate::CachePolicy::is_failure)).
//!
//! The store keeps the entry for the TTL plus the longer of the two periods. Both are zero by default:
//! nothing is served after its TTL unless a policy asks for it. An invalidated entry is gone, stale
//! periods or not.
//!
//! A refresh runs with the request of the caller that found the entry stale: that caller is answered
//! from the cache, so its request is free. No `Clone` bound is needed, and any request type works,
//! `http::Request` with a streaming body included.

use std::time::Duration;

/// How long an entry may be served after its TTL, and in which cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StalePeriods {
    /// After the TTL, hits answer with the entry and refresh it in the background.
    pub while_revalidate: Duration,
    /// After the TTL, the entry answers when the inner service fails (fail-safe).
    pub if_error: Duration,
}

impl StalePeriods {
    /// No stale serving: the entry is gone at the end of its TTL.
    pub const NONE: Self = Self {
        while_revalidate: Duration::ZERO,
        if_error: Duration::ZERO,
    };

    /// True when the entry is never served after its TTL.
    pub fn is_none(&self) -> bool {
        self.while_revalidate.is_zero() && self.if_error.is_zero()
    }

    /// How long the store keeps the entry after its TTL.
    pub fn retention(&self) -> Duration {
        self.while_revalidate.max(self.if_error)
    }
}

/// Why a caller was answered with a stale value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StaleReason {
    /// The entry is in its stale-while-revalidate period; a refresh runs in the background.
    Revalidating,
    /// The inner service failed (an error, or a response the policy calls a failure).
    InnerFailed,
    /// The inner call took longer than the soft timeout; it goes on in the background.
    SoftTimeout,
    /// The inner call took longer than the hard timeout.
    HardTimeout,
}

impl StaleReason {
    /// A short name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revalidating => "revalidating",
            Self::InnerFailed => "inner_failed",
            Self::SoftTimeout => "soft_timeout",
            Self::HardTimeout => "hard_timeout",
        }
    }
}
