//! [`DiscordCacheService`]: the Discord cache as an `http` service, for any `http` client below it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use cache_core::layer::{Cache, ResponseFuture};
use cache_core::{BoxError, CachePolicy, Classified, Stats, Store};
use http::header::{ACCEPT_ENCODING, CONNECTION, TRANSFER_ENCODING};
use http::HeaderValue;
use http_body::Body;
use pin_project_lite::pin_project;
use tower::util::Oneshot;
use tower::ServiceExt;
use tower_service::Service;

use crate::buffer::{BufferFuture, BufferResponse, FullHead};
use crate::{CachedResponse, DiscordBody, DiscordPolicy};

/// The `Accept-Encoding` of reads and writes the cache reads: no compression.
const IDENTITY: HeaderValue = HeaderValue::from_static("identity");

type CoreCache<S, St> = Cache<BufferResponse<S>, St, Arc<DiscordPolicy>>;

/// An `http` service caching Discord reads and applying writes' effects, over an `http` client `S`.
/// Built by [`DiscordCacheLayer`](crate::DiscordCacheLayer).
///
/// Cached reads are answered with their status, kept headers ([`CachedResponse`]) and body; recognised
/// writes are buffered (their answer is needed to update the cache) and answered with Discord's whole
/// head; every other request, and every request while caching is off, goes to `S` untouched and its
/// answer streams back as it comes.
///
/// Readiness: always ready; the client's readiness is driven inside each call that reaches it, so a hit
/// never waits behind a rate limiter or a full pool below the cache.
pub struct DiscordCacheService<S, St: Store> {
    cache: CoreCache<S, St>,
    policy: Arc<DiscordPolicy>,
    inner: S,
    enabled: bool,
}

impl<S, St: Store> DiscordCacheService<S, St> {
    pub(crate) fn new(
        cache: CoreCache<S, St>,
        policy: Arc<DiscordPolicy>,
        inner: S,
        enabled: bool,
    ) -> Self {
        Self {
            cache,
            policy,
            inner,
            enabled,
        }
    }

    /// The counters of the layer this service was built from (requests streamed past the cache count
    /// as pass-throughs).
    pub fn stats(&self) -> Stats {
        self.cache.stats()
    }

    // Requests the cache buffers go through a clone of the client taken when the service was built.
    crate::define_inner_service_accessors!();
}

impl<S: Clone, St: Store> Clone for DiscordCacheService<S, St> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            policy: Arc::clone(&self.policy),
            inner: self.inner.clone(),
            enabled: self.enabled,
        }
    }
}

impl<S: std::fmt::Debug, St: Store> std::fmt::Debug for DiscordCacheService<S, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordCacheService")
            .field("inner", &self.inner)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl<S, St, B, RB> Service<http::Request<B>> for DiscordCacheService<S, St>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
    St: Store<Value = CachedResponse>,
    B: Send + 'static,
{
    type Response = http::Response<DiscordBody>;
    type Error = BoxError;
    type Future = DiscordResponseFuture<S, http::Request<B>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The policy runs once: its answer routes the request, and the cache takes it as it is.
        let classified = match self.enabled {
            true => self.policy.classify(&req),
            false => Classified::Pass,
        };
        let kind = match classified {
            // Not a cached read, nor a write with effects: streamed both ways, untouched.
            Classified::Pass => {
                self.cache.stats().record_passthrough();
                Kind::Passthrough {
                    future: self.inner.clone().oneshot(req),
                }
            }
            read @ Classified::Read { .. } => {
                // One entry answers every client of the scope: it is stored as Discord sends it to a
                // client that asks for no compression, which every client can read.
                req.headers_mut().insert(ACCEPT_ENCODING, IDENTITY);
                Kind::Cached {
                    future: self.cache.call_classified(req, read),
                    head: None,
                }
            }
            // Buffered, so its effects can be applied (the answer must be readable JSON), and
            // answered with Discord's head as sent.
            write @ Classified::Write(_) => {
                req.headers_mut().insert(ACCEPT_ENCODING, IDENTITY);
                let head = FullHead::default();
                req.extensions_mut().insert(head.clone());
                Kind::Cached {
                    future: self.cache.call_classified(req, write),
                    head: Some(head),
                }
            }
        };
        DiscordResponseFuture { kind }
    }
}

pin_project! {
    /// Response future of [`DiscordCacheService`]: a cache hit on an in-process store is ready at once
    /// and allocates nothing.
    pub struct DiscordResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        kind: Kind<S, Req>,
    }
}

pin_project! {
    #[project = KindProjection]
    enum Kind<S, Req>
    where
        S: Service<Req>,
    {
        Cached {
            #[pin]
            future: ResponseFuture<BufferFuture, CachedResponse>,
            head: Option<FullHead>,
        },
        Passthrough {
            #[pin]
            future: Oneshot<S, Req>,
        },
    }
}

impl<S, Req, RB> Future for DiscordResponseFuture<S, Req>
where
    S: Service<Req, Response = http::Response<RB>>,
    S::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Output = Result<http::Response<DiscordBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Passthrough { future } => future
                .poll(cx)
                .map_ok(|response| response.map(DiscordBody::streamed))
                .map_err(Into::into),
            KindProjection::Cached { future, head } => {
                let cached = std::task::ready!(future.poll(cx))?;
                let head = head.as_ref().and_then(FullHead::take);
                Poll::Ready(Ok(respond(cached, head)))
            }
        }
    }
}

/// The caller's answer: Discord's own head when this call reached Discord for a write, the cached
/// status and kept headers otherwise.
fn respond(
    cached: CachedResponse,
    head: Option<http::response::Parts>,
) -> http::Response<DiscordBody> {
    let body = DiscordBody::full(cached.body().clone());
    match head {
        Some(mut parts) => {
            // The body is now whole: framing headers of the upstream connection no longer apply.
            parts.headers.remove(TRANSFER_ENCODING);
            parts.headers.remove(CONNECTION);
            http::Response::from_parts(parts, body)
        }
        None => cached.into_response().map(|_| body),
    }
}

impl<S, Req> std::fmt::Debug for DiscordResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordResponseFuture")
            .finish_non_exhaustive()
    }
}
