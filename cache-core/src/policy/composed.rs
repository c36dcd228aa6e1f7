use std::time::Duration;

use super::{
    CachePolicy, Classified, FillPlan, KeyExtractor, NoTags, NoWrites, TagExtractor, TtlPolicy,
    WriteEffects, WriteHook,
};

/// The TTL of a [`Policy`] until [`Policy::ttl`] sets one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// A [`CachePolicy`] assembled from a key extractor, a tag extractor, a TTL and a write hook.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{AfterWrite, Policy, WriteEffects};
///
/// enum Req { Get(u64), Rename(u64, String) }
///
/// let policy = Policy::new(|req: &Req| match req {
///         Req::Get(id) => Some(format!("item:{id}")),
///         Req::Rename(..) => None,
///     })
///     .ttl(|name: &String| if name.is_empty() { Duration::ZERO } else { Duration::from_secs(60) })
///     .tags(|key: &str, _: &String| vec![key.to_owned()])
///     .writes(|req: &Req| -> Option<AfterWrite<String>> {
///         let Req::Rename(id, _) = req else { return None };
///         let tag = format!("item:{id}");
///         Some(Box::new(move |_: &String| WriteEffects::none().invalidate_tag(tag)))
///     });
/// # let _ = policy;
/// ```
#[derive(Debug, Clone)]
pub struct Policy<K, T = NoTags, L = Duration, W = NoWrites> {
    key: K,
    tags: T,
    ttl: L,
    writes: W,
}

impl<K> Policy<K> {
    /// A policy caching what `key` accepts for [`DEFAULT_TTL`], without tags or writes.
    pub fn new(key: K) -> Self {
        Self {
            key,
            tags: NoTags,
            ttl: DEFAULT_TTL,
            writes: NoWrites,
        }
    }
}

impl<K, T, L, W> Policy<K, T, L, W> {
    /// Sets the tag extractor.
    pub fn tags<T2>(self, tags: T2) -> Policy<K, T2, L, W> {
        Policy {
            key: self.key,
            tags,
            ttl: self.ttl,
            writes: self.writes,
        }
    }

    /// Sets the TTL: a [`Duration`] or a closure over the response.
    pub fn ttl<L2>(self, ttl: L2) -> Policy<K, T, L2, W> {
        Policy {
            key: self.key,
            tags: self.tags,
            ttl,
            writes: self.writes,
        }
    }

    /// Sets the write hook.
    pub fn writes<W2>(self, writes: W2) -> Policy<K, T, L, W2> {
        Policy {
            key: self.key,
            tags: self.tags,
            ttl: self.ttl,
            writes,
        }
    }
}

impl<Req, V, K, T, L, W> CachePolicy<Req, V> for Policy<K, T, L, W>
where
    K: KeyExtractor<Req>,
    T: TagExtractor<V>,
    L: TtlPolicy<V>,
    W: WriteHook<Req, V>,
{
    type Read = ();
    type Write = W::Pending;

    fn classify(&self, req: &Req) -> Classified<(), W::Pending> {
        if let Some(key) = self.key.key(req) {
            return Classified::Read { key, read: () };
        }
        match self.writes.on_request(req) {
            Some(pending) => Classified::Write(pending),
            None => Classified::Pass,
        }
    }

    fn fill(&self, key: &str, _read: &(), value: &V) -> FillPlan {
        let ttl = self.ttl.ttl(value);
        let tags = if ttl.is_zero() {
            Vec::new()
        } else {
            self.tags.tags(key, value)
        };
        FillPlan { ttl, tags }
    }

    fn after_write(&self, write: W::Pending, value: &V) -> WriteEffects<V> {
        self.writes.on_response(write, value)
    }
}
