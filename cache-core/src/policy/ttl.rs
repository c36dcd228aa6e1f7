use std::time::Duration;

/// How long a response stays cached: fixed (a [`Duration`]) or computed from the response (a closure).
///
/// [`Duration::ZERO`] means "dedupe only": concurrent callers share one inner call, and nothing is
/// stored. Returning zero for some responses (errors carried as values, such as HTTP 429) keeps them out
/// of the cache.
///
/// ```
/// use std::time::Duration;
/// use cache_core::TtlPolicy;
///
/// assert_eq!(Duration::from_secs(60).ttl(&"anything"), Duration::from_secs(60));
///
/// let by_status = |status: &u16| if *status == 200 { Duration::from_secs(30) } else { Duration::ZERO };
/// assert_eq!(by_status.ttl(&429), Duration::ZERO);
/// ```
pub trait TtlPolicy<Resp>: Send + Sync + 'static {
    /// The TTL of an entry holding `resp`.
    fn ttl(&self, resp: &Resp) -> Duration;
}

impl<Resp> TtlPolicy<Resp> for Duration {
    fn ttl(&self, _resp: &Resp) -> Duration {
        *self
    }
}

impl<Resp, F> TtlPolicy<Resp> for F
where
    F: Fn(&Resp) -> Duration + Send + Sync + 'static,
{
    fn ttl(&self, resp: &Resp) -> Duration {
        self(resp)
    }
}
