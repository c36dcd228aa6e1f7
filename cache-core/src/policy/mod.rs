//! Policies: which requests are cached, under which key, for how long, with which tags, and what writes
//! change.
//!
//! [`CachePolicy`] is what the layer consults. Most users build one from closures with [`Policy`]; a
//! ready-made policy for an API (such as the Discord one) implements [`CachePolicy`] directly.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{Classified, CachePolicy, Policy};
//!
//! #[derive(Clone)]
//! struct User { id: u64, name: String }
//!
//! let policy = Policy::new(|id: &u64| Some(format!("user:{id}")))
//!     .ttl(Duration::from_secs(30))
//!     .tags(|_key: &str, user: &User| vec![format!("user:{}", user.id)]);
//!
//! let Classified::Read { key, read } = CachePolicy::<u64, User>::classify(&policy, &7) else { panic!() };
//! let plan = policy.fill(&key, &read, &User { id: 7, name: "ada".into() });
//! assert_eq!((key.as_str(), plan.ttl, plan.tags), ("user:7", Duration::from_secs(30), vec!["user:7".to_owned()]));
//! ```

mod composed;
mod key_extractor;
mod stale_windows;
mod tags;
mod ttl;
mod write;

pub use composed::{Policy, DEFAULT_TTL};
pub use key_extractor::KeyExtractor;
pub use stale_windows::{FailureClassifier, NoFailures, StaleWindows};
pub use tags::{NoTags, TagExtractor};
pub use ttl::TtlPolicy;
pub use write::{AfterWrite, EntryUpdate, Modify, NoWrites, WriteEffects, WriteHook};

use std::time::Duration;

use crate::{BoxError, StalePeriods};

/// How the layer treats one request.
#[derive(Debug)]
pub enum Classified<R, W> {
    /// A cacheable read of `key`; `read` is what the policy keeps of the request for [`CachePolicy::fill`].
    Read {
        /// The cache key.
        key: String,
        /// Policy context for the response.
        read: R,
    },
    /// A write whose successful response goes to [`CachePolicy::after_write`].
    Write(W),
    /// Neither: straight to the inner service.
    Pass,
}

/// How to store one response. Built with [`FillPlan::new`] or [`FillPlan::dedupe_only`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FillPlan {
    /// Zero: share the response with concurrent callers, store nothing.
    pub ttl: Duration,
    /// Tags of the entry.
    pub tags: Vec<String>,
    /// How long the entry may be served after `ttl` (see [`crate::stale`]); none by default.
    pub stale: StalePeriods,
}

impl FillPlan {
    /// Store for `ttl` with `tags`, nothing served after the TTL.
    pub fn new(ttl: Duration, tags: Vec<String>) -> Self {
        Self {
            ttl,
            tags,
            stale: StalePeriods::NONE,
        }
    }

    /// Share the response with concurrent callers, store nothing.
    pub fn dedupe_only() -> Self {
        Self::new(Duration::ZERO, Vec::new())
    }

    /// Also serve the entry after its TTL, within `stale`.
    #[must_use]
    pub fn with_stale(mut self, stale: StalePeriods) -> Self {
        self.stale = stale;
        self
    }
}

/// Everything the layer asks of a policy.
///
/// The layer calls [`classify`](Self::classify) on every request, [`fill`](Self::fill) once per
/// successful read that ran the inner service, and [`after_write`](Self::after_write) once per
/// successful write. All three run on the request path: keep them cheap and free of I/O.
pub trait CachePolicy<Req, V>: Send + Sync + 'static {
    /// What the policy keeps of a read request to decide TTL and tags once the response arrives.
    type Read: Send + 'static;
    /// What the policy keeps of a write request for its response.
    type Write: Send + 'static;

    /// Reads, writes and the rest.
    fn classify(&self, req: &Req) -> Classified<Self::Read, Self::Write>;

    /// TTL and tags for the successful response `value` to the read of `key`.
    fn fill(&self, key: &str, read: &Self::Read, value: &V) -> FillPlan;

    /// True when `value` is a failure that came as a response (an HTTP 429 or 5xx, say) rather than an
    /// error: it is not stored, and an entry within its stale-if-error period answers instead. Called
    /// before [`fill`](Self::fill). No response is a failure by default.
    fn is_failure(&self, value: &V) -> bool {
        let _ = value;
        false
    }

    /// What the successful write changes in the cache.
    fn after_write(&self, write: Self::Write, value: &V) -> WriteEffects<V>;

    /// What a write that failed changes in the cache; nothing by default.
    ///
    /// An error does not always mean the write did not happen: a timeout or a lost connection after
    /// the upstream applied it, or a retried attempt that fails after the first one succeeded. A
    /// policy whose upstream can fail that way returns the removals and invalidations that keep such a
    /// write from leaving stale entries. A write whose future is dropped runs neither hook.
    fn after_write_error(&self, write: Self::Write, error: &BoxError) -> WriteEffects<V> {
        let _ = (write, error);
        WriteEffects::none()
    }
}

impl<Req, V, P: CachePolicy<Req, V>> CachePolicy<Req, V> for std::sync::Arc<P> {
    type Read = P::Read;
    type Write = P::Write;

    fn classify(&self, req: &Req) -> Classified<Self::Read, Self::Write> {
        (**self).classify(req)
    }

    fn fill(&self, key: &str, read: &Self::Read, value: &V) -> FillPlan {
        (**self).fill(key, read, value)
    }

    fn is_failure(&self, value: &V) -> bool {
        (**self).is_failure(value)
    }

    fn after_write(&self, write: Self::Write, value: &V) -> WriteEffects<V> {
        (**self).after_write(write, value)
    }

    fn after_write_error(&self, write: Self::Write, error: &BoxError) -> WriteEffects<V> {
        (**self).after_write_error(write, error)
    }
}
