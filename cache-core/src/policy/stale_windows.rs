use std::time::Duration;

use super::TtlPolicy;
use crate::StalePeriods;

/// The stale periods of a [`Policy`](super::Policy): each a [`Duration`] or a closure over the response,
/// like the TTL. Both zero until set.
#[derive(Debug, Clone, Copy)]
pub struct StaleWindows<R = Duration, E = Duration> {
    pub(crate) while_revalidate: R,
    pub(crate) if_error: E,
}

impl Default for StaleWindows {
    fn default() -> Self {
        Self {
            while_revalidate: Duration::ZERO,
            if_error: Duration::ZERO,
        }
    }
}

impl<R, E> StaleWindows<R, E> {
    pub(crate) fn periods<V>(&self, value: &V) -> StalePeriods
    where
        R: TtlPolicy<V>,
        E: TtlPolicy<V>,
    {
        StalePeriods {
            while_revalidate: self.while_revalidate.ttl(value),
            if_error: self.if_error.ttl(value),
        }
    }
}

/// Tells failed responses from good ones, for services whose failures are responses (an HTTP 429 or
/// 5xx) rather than errors. A failure is never cached, and a stale entry may answer in its place.
///
/// Implemented by [`NoFailures`] and by closures `Fn(&Resp) -> bool`.
pub trait FailureClassifier<Resp>: Send + Sync + 'static {
    /// True when `resp` is a failure.
    fn is_failure(&self, resp: &Resp) -> bool;
}

/// Every response is a success; only errors are failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFailures;

impl<Resp> FailureClassifier<Resp> for NoFailures {
    fn is_failure(&self, _resp: &Resp) -> bool {
        false
    }
}

impl<Resp, F> FailureClassifier<Resp> for F
where
    F: Fn(&Resp) -> bool + Send + Sync + 'static,
{
    fn is_failure(&self, resp: &Resp) -> bool {
        self(resp)
    }
}
