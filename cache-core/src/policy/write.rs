use std::fmt;
use std::time::Duration;

use crate::StalePeriods;

/// What a successful write changes in the cache.
///
/// Applied in order: tags are invalidated, keys removed, then entries updated. A store failure while
/// applying them is counted and traced; it never fails the write, which already happened upstream.
#[derive(Debug)]
#[must_use]
pub struct WriteEffects<V> {
    /// Tags to invalidate: every entry carrying one is gone, including fills in flight.
    pub invalidate_tags: Vec<String>,
    /// Keys to remove.
    pub remove_keys: Vec<String>,
    /// Entries to put or modify from what the write returned.
    pub updates: Vec<EntryUpdate<V>>,
}

impl<V> Default for WriteEffects<V> {
    fn default() -> Self {
        Self {
            invalidate_tags: Vec::new(),
            remove_keys: Vec::new(),
            updates: Vec::new(),
        }
    }
}

impl<V> WriteEffects<V> {
    /// No effect.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a tag to invalidate.
    pub fn invalidate_tag(mut self, tag: impl Into<String>) -> Self {
        self.invalidate_tags.push(tag.into());
        self
    }

    /// Adds a key to remove.
    pub fn remove_key(mut self, key: impl Into<String>) -> Self {
        self.remove_keys.push(key.into());
        self
    }

    /// Adds an update.
    pub fn update(mut self, update: EntryUpdate<V>) -> Self {
        self.updates.push(update);
        self
    }

    /// True when nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.invalidate_tags.is_empty() && self.remove_keys.is_empty() && self.updates.is_empty()
    }
}

/// Changes an entry of type `V` in place; `None` removes it.
pub type Modify<V> = Box<dyn FnOnce(V) -> Option<V> + Send>;

/// One entry changed by a write.
pub enum EntryUpdate<V> {
    /// Store `value` under `key`, as fresh as the write's response. Fills of `key` that started before
    /// the write can no longer overwrite it.
    Put {
        /// The entry's key.
        key: String,
        /// The new value.
        value: V,
        /// Its TTL (zero: nothing is stored).
        ttl: Duration,
        /// Its tags.
        tags: Vec<String>,
        /// How long it may be served after its TTL ([`StalePeriods::NONE`]: not at all).
        stale: StalePeriods,
    },
    /// If `key` is cached, replace its value by `modify(value)`, or remove it when that is `None`.
    ///
    /// The edit is stored only if neither the key nor one of its tags was invalidated or updated since
    /// the entry was read; otherwise (a concurrent edit, an invalidation) the entry is removed, so the
    /// next read fetches the truth instead of a lost update. When `key` is not cached, it is removed all
    /// the same: a fill still in flight would otherwise store what was read before the write.
    Modify {
        /// The entry's key.
        key: String,
        /// The change.
        modify: Modify<V>,
        /// TTL of the modified entry.
        ttl: Duration,
        /// Tags of the modified entry.
        tags: Vec<String>,
        /// How long the modified entry may be served after its TTL.
        stale: StalePeriods,
    },
}

impl<V> fmt::Debug for EntryUpdate<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { key, ttl, tags, .. } => f
                .debug_struct("Put")
                .field("key", key)
                .field("ttl", ttl)
                .field("tags", tags)
                .finish(),
            Self::Modify { key, ttl, tags, .. } => f
                .debug_struct("Modify")
                .field("key", key)
                .field("ttl", ttl)
                .field("tags", tags)
                .finish(),
        }
    }
}

/// The second half of a write hook: given the successful response, what to change.
pub type AfterWrite<V> = Box<dyn FnOnce(&V) -> WriteEffects<V> + Send>;

/// Recognises writes and says what their successful responses change in the cache.
///
/// It runs in two steps because the inner service consumes the request: [`on_request`](Self::on_request)
/// looks at the request and keeps what it needs, [`on_response`](Self::on_response) gets that and the
/// response. Only successful calls reach `on_response`; a response that is a failure in disguise (an HTTP
/// error status) should return [`WriteEffects::none`].
///
/// Implemented for closures returning an [`AfterWrite`]:
///
/// ```
/// use cache_core::{AfterWrite, WriteEffects, WriteHook};
///
/// // Request: ("PATCH", guild id); response: the HTTP status.
/// let hook = |req: &(&'static str, u64)| -> Option<AfterWrite<u16>> {
///     let (method, guild) = *req;
///     (method != "GET").then(|| -> AfterWrite<u16> {
///         Box::new(move |status: &u16| {
///             if *status < 300 { WriteEffects::none().invalidate_tag(format!("guild:{guild}")) } else { WriteEffects::none() }
///         })
///     })
/// };
/// let pending = hook.on_request(&("PATCH", 7)).unwrap();
/// assert_eq!(hook.on_response(pending, &204).invalidate_tags, ["guild:7"]);
/// ```
pub trait WriteHook<Req, V>: Send + Sync + 'static {
    /// What the hook keeps of a write request until its response arrives.
    type Pending: Send + 'static;

    /// `Some` when `req` is a write this hook handles.
    fn on_request(&self, req: &Req) -> Option<Self::Pending>;

    /// The effects of the write, given its successful response.
    fn on_response(&self, pending: Self::Pending, resp: &V) -> WriteEffects<V>;
}

impl<Req, V, F> WriteHook<Req, V> for F
where
    F: Fn(&Req) -> Option<AfterWrite<V>> + Send + Sync + 'static,
    V: 'static,
{
    type Pending = AfterWrite<V>;

    fn on_request(&self, req: &Req) -> Option<AfterWrite<V>> {
        self(req)
    }

    fn on_response(&self, pending: AfterWrite<V>, resp: &V) -> WriteEffects<V> {
        pending(resp)
    }
}

/// No writes: every request that is not a cacheable read passes straight through.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWrites;

impl<Req, V> WriteHook<Req, V> for NoWrites {
    type Pending = std::convert::Infallible;

    fn on_request(&self, _req: &Req) -> Option<Self::Pending> {
        None
    }

    fn on_response(&self, pending: Self::Pending, _resp: &V) -> WriteEffects<V> {
        match pending {}
    }
}
