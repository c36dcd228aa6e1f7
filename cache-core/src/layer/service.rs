use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::call::call_ready;
use super::future::ResponseFuture;
use super::read::{Found, Inner, Read};
use super::shared::Shared;
use super::write::write_through;
use crate::{BoxError, CacheKey, CachePolicy, Classified, Lookup, Stats, Store};

/// A service that answers cacheable reads from a store, and calls the inner service once per key for
/// concurrent misses. Built by [`CacheLayer`](super::CacheLayer).
///
/// Readiness: when caching is enabled, `poll_ready` is always ready and the inner service's readiness is
/// driven inside each miss, write or pass-through, on a clone of the inner service; so a hit never waits
/// for the inner service. When disabled, readiness and calls go straight to the inner service.
pub struct Cache<S, St: Store, P> {
    inner: S,
    shared: Arc<Shared<St, P>>,
    enabled: bool,
}

impl<S, St: Store, P> Cache<S, St, P> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<St, P>>, enabled: bool) -> Self {
        Self {
            inner,
            shared,
            enabled,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// This cache's counters (live; [`Stats::snapshot`] reads them).
    pub fn stats(&self) -> Stats {
        self.shared.stats.clone()
    }

    /// The number of keys whose fill is in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.flights.len()
    }
}

impl<S: Clone, St: Store, P> Clone for Cache<S, St, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            enabled: self.enabled,
        }
    }
}

impl<S: std::fmt::Debug, St: Store, P> std::fmt::Debug for Cache<S, St, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("inner", &self.inner)
            .field("enabled", &self.enabled)
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl<S, St, P> Cache<S, St, P>
where
    St: Store,
{
    /// The read path of one request, on a clone of the inner service.
    fn read<Req>(&self, req: Req, key: CacheKey, read: P::Read) -> Read<S, St, P, Req>
    where
        S: Inner<Req, St::Value> + Clone,
        St::Value: Clone + Send + Sync + 'static,
        P: CachePolicy<Req, St::Value>,
        Req: Send + 'static,
    {
        Read::new(Arc::clone(&self.shared), self.inner.clone(), req, key, read)
    }
}

impl<S, St, P, Req> Service<Req> for Cache<S, St, P>
where
    S: Service<Req, Response = St::Value> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    St: Store,
    St::Value: Clone + Send + Sync + 'static,
    P: CachePolicy<Req, St::Value>,
    Req: Send + 'static,
{
    type Response = St::Value;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, St::Value>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.enabled {
            Poll::Ready(Ok(()))
        } else {
            self.inner.poll_ready(cx).map_err(Into::into)
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if !self.enabled {
            self.shared.stats.passthrough();
            return ResponseFuture::inner(self.inner.call(req));
        }
        // Classified after the check: a disabled cache runs no policy.
        let classified = self.shared.policy.classify(&req);
        self.call_classified(req, classified)
    }
}

impl<S, St: Store, P> Cache<S, St, P> {
    /// Answers `req` as `classified`, what the policy said of it: for a service in front of this one
    /// that classified the request already (to route some requests around the cache, say), so the
    /// policy runs once. [`call`](Service::call) is `call_classified(req, policy.classify(&req))`;
    /// with caching disabled both go straight to the inner service.
    pub fn call_classified<Req>(
        &mut self,
        req: Req,
        classified: Classified<P::Read, P::Write>,
    ) -> ResponseFuture<S::Future, St::Value>
    where
        S: Service<Req, Response = St::Value> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        St::Value: Clone + Send + Sync + 'static,
        P: CachePolicy<Req, St::Value>,
        Req: Send + 'static,
    {
        if !self.enabled {
            // Not called through `Service`: the inner service's readiness is driven here.
            self.shared.stats.passthrough();
            return ResponseFuture::boxed(call_ready(self.inner.clone(), req));
        }
        match classified {
            Classified::Read { key, read } => {
                let key = CacheKey::from(key);
                let lookup = match self.shared.store.get(&key).into_ready() {
                    // The hot path, spelled out so that nothing but the hit is on it.
                    Ok(Ok(Lookup::Hit { value, .. })) => {
                        self.shared.hit(&key);
                        return ResponseFuture::ready(value);
                    }
                    Ok(lookup) => lookup,
                    Err(pending) => {
                        // A store that answers later: await the lookup in a small future, and only build
                        // the (much larger) miss path when it is a miss, so a remote hit allocates little.
                        let shared = Arc::clone(&self.shared);
                        let inner = self.inner.clone();
                        return ResponseFuture::boxed(async move {
                            let lookup = shared.bounded("get", pending).await;
                            match Found::classify(&shared, &key, lookup) {
                                Found::Fresh(value) => Ok(value),
                                found => {
                                    let read = Read::new(shared, inner, req, key, read);
                                    Box::pin(read.respond(found)).await
                                }
                            }
                        });
                    }
                };
                match Found::classify(&self.shared, &key, lookup) {
                    Found::Fresh(value) => ResponseFuture::ready(value),
                    Found::Revalidate { value, stamp } => {
                        let read = self.read(req, key, read);
                        ResponseFuture::ready(read.revalidate(value, stamp))
                    }
                    found => ResponseFuture::boxed(self.read(req, key, read).respond(found)),
                }
            }
            Classified::Write(write) => {
                self.shared.stats.passthrough();
                let shared = Arc::clone(&self.shared);
                ResponseFuture::boxed(write_through(shared, self.inner.clone(), req, write))
            }
            Classified::Pass => {
                self.shared.stats.passthrough();
                ResponseFuture::boxed(call_ready(self.inner.clone(), req))
            }
        }
    }
}
