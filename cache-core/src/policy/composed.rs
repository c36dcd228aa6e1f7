use std::time::Duration;

use super::{
    CachePolicy, Classified, FailureClassifier, FillPlan, KeyExtractor, NoFailures, NoTags,
    NoWrites, StaleWindows, TagExtractor, TtlPolicy, WriteEffects, WriteHook,
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
pub struct Policy<K, T = NoTags, L = Duration, W = NoWrites, S = StaleWindows, F = NoFailures> {
    key: K,
    tags: T,
    ttl: L,
    writes: W,
    stale: S,
    failures: F,
}

impl<K> Policy<K> {
    /// A policy caching what `key` accepts for [`DEFAULT_TTL`], without tags, writes or stale serving.
    pub fn new(key: K) -> Self {
        Self {
            key,
            tags: NoTags,
            ttl: DEFAULT_TTL,
            writes: NoWrites,
            stale: StaleWindows::default(),
            failures: NoFailures,
        }
    }
}

impl<K, T, L, W, S, F> Policy<K, T, L, W, S, F> {
    /// The policy with its parts (each a type parameter of its own, which struct update syntax cannot
    /// change) passed through `change`: what every setter does.
    fn rebuild<T2, L2, W2, S2, F2>(
        self,
        change: impl FnOnce(T, L, W, S, F) -> (T2, L2, W2, S2, F2),
    ) -> Policy<K, T2, L2, W2, S2, F2> {
        let (tags, ttl, writes, stale, failures) =
            change(self.tags, self.ttl, self.writes, self.stale, self.failures);
        Policy {
            key: self.key,
            tags,
            ttl,
            writes,
            stale,
            failures,
        }
    }

    /// Sets the tag extractor.
    pub fn tags<T2>(self, tags: T2) -> Policy<K, T2, L, W, S, F> {
        self.rebuild(|_, ttl, writes, stale, failures| (tags, ttl, writes, stale, failures))
    }

    /// Sets the TTL: a [`Duration`] or a closure over the response.
    pub fn ttl<L2>(self, ttl: L2) -> Policy<K, T, L2, W, S, F> {
        self.rebuild(|tags, _, writes, stale, failures| (tags, ttl, writes, stale, failures))
    }

    /// Sets the write hook.
    pub fn writes<W2>(self, writes: W2) -> Policy<K, T, L, W2, S, F> {
        self.rebuild(|tags, ttl, _, stale, failures| (tags, ttl, writes, stale, failures))
    }

    /// Sets which responses are failures (never cached; answered from a stale entry within its
    /// stale-if-error period): a closure `Fn(&Resp) -> bool`.
    pub fn failures<F2>(self, failures: F2) -> Policy<K, T, L, W, S, F2> {
        self.rebuild(|tags, ttl, writes, stale, _| (tags, ttl, writes, stale, failures))
    }
}

impl<K, T, L, W, R, E, F> Policy<K, T, L, W, StaleWindows<R, E>, F> {
    /// Sets the stale-while-revalidate period (see [`crate::stale`]): a [`Duration`] or a closure over
    /// the response. After the TTL and for this long, hits answer with the entry at once and refresh it
    /// in the background.
    pub fn stale_while_revalidate<R2>(
        self,
        period: R2,
    ) -> Policy<K, T, L, W, StaleWindows<R2, E>, F> {
        self.rebuild(|tags, ttl, writes, stale, failures| {
            let stale = StaleWindows {
                while_revalidate: period,
                if_error: stale.if_error,
            };
            (tags, ttl, writes, stale, failures)
        })
    }

    /// Sets the stale-if-error period (fail-safe, see [`crate::stale`]): a [`Duration`] or a closure over
    /// the response. After the TTL and for this long, a failed inner call is answered with the entry.
    pub fn stale_if_error<E2>(self, period: E2) -> Policy<K, T, L, W, StaleWindows<R, E2>, F> {
        self.rebuild(|tags, ttl, writes, stale, failures| {
            let stale = StaleWindows {
                while_revalidate: stale.while_revalidate,
                if_error: period,
            };
            (tags, ttl, writes, stale, failures)
        })
    }
}

impl<Req, V, K, T, L, W, R, E, F> CachePolicy<Req, V> for Policy<K, T, L, W, StaleWindows<R, E>, F>
where
    K: KeyExtractor<Req>,
    T: TagExtractor<V>,
    L: TtlPolicy<V>,
    W: WriteHook<Req, V>,
    R: TtlPolicy<V>,
    E: TtlPolicy<V>,
    F: FailureClassifier<V>,
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
        if ttl.is_zero() {
            return FillPlan::dedupe_only();
        }
        FillPlan {
            ttl,
            tags: self.tags.tags(key, value),
            stale: self.stale.periods(value),
        }
    }

    fn is_failure(&self, value: &V) -> bool {
        self.failures.is_failure(value)
    }

    fn after_write(&self, write: W::Pending, value: &V) -> WriteEffects<V> {
        self.writes.on_response(write, value)
    }
}
