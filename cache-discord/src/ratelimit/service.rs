//! [`DiscordRateLimit`]: the service that waits for each request's turn before it goes to Discord.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cache_core::BoxError;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::ServiceExt;
use tower_service::Service;

use super::limiter::{Limiter, Outcome};
use super::route::RequestRoute;
use crate::DiscordBody;

/// Request bodies up to this size (known from their size hint) are collected before the request is
/// sent, so it can be sent again after a 429; larger ones stream once.
pub const MAX_REPLAY_BODY: u64 = 64 * 1024;

/// A request extension bounding this request's wait for its turn, in place of
/// [`RateLimitConfig::max_wait`](super::RateLimitConfig::max_wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxWait(pub Duration);

/// The response future of [`DiscordRateLimit`].
pub type RateLimitFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// Keeps the requests to an `http` client `S` under Discord's limits. Built by
/// [`DiscordRateLimitLayer`](super::DiscordRateLimitLayer); see the [module docs](super).
///
/// It hands `S` requests with a [`DiscordBody`]: small bodies in full (so a 429 can be retried),
/// larger ones streamed as they come. Answers come back untouched.
///
/// Readiness: always ready; `S`'s readiness is awaited inside each call, after the request's turn
/// came.
pub struct DiscordRateLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
}

impl<S> DiscordRateLimit<S> {
    pub(crate) fn new(inner: S, limiter: Arc<Limiter>) -> Self {
        Self { inner, limiter }
    }

    /// The counters of the layer this service was built from.
    pub fn stats(&self) -> super::RateLimitStats {
        self.limiter.stats.clone()
    }

    crate::define_inner_service_accessors!();
}

impl<S: Clone> Clone for DiscordRateLimit<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for DiscordRateLimit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordRateLimit")
            .field("inner", &self.inner)
            .field("config", &self.limiter.config)
            .finish_non_exhaustive()
    }
}

impl<S, B, RB> Service<http::Request<B>> for DiscordRateLimit<S>
where
    S: Service<http::Request<DiscordBody>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = BoxError;
    type Future = RateLimitFuture<http::Response<RB>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Box::pin(send(Arc::clone(&self.limiter), self.inner.clone(), request))
    }
}

/// One request: its turn, the call, and at most one more after a 429.
async fn send<S, B, RB>(
    limiter: Arc<Limiter>,
    mut inner: S,
    request: http::Request<B>,
) -> Result<http::Response<RB>, BoxError>
where
    S: Service<http::Request<DiscordBody>, Response = http::Response<RB>>,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let max_wait = request
        .extensions()
        .get::<MaxWait>()
        .map_or(limiter.config.max_wait, |bound| bound.0);
    let now = Instant::now();
    let deadline = now
        .checked_add(max_wait)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
    let route = RequestRoute::of(request.method(), request.uri(), request.headers());
    let (parts, body) = request.into_parts();
    let mut body = Replay::new(body).await?;
    // The 429 a retry answers for: handed over as Discord sent it if the retry cannot get its turn.
    let mut refused: Option<http::Response<RB>> = None;
    loop {
        let mut permit = match limiter.acquire(&route, deadline, max_wait).await {
            Ok(permit) => permit,
            Err(error) => return refused.ok_or_else(|| error.into()),
        };
        let request = http::Request::from_parts(parts.clone(), body.next());
        // A client that fails to become ready drops the permit unsent: its grant is given back.
        let ready = inner.ready().await.map_err(Into::into)?;
        permit.sent();
        let response = ready.call(request).await.map_err(Into::into)?;
        let outcome = limiter
            .observe(&route, permit, response.status(), response.headers())
            .await;
        match outcome {
            Outcome::Refused { retry_after }
                if refused.is_none()
                    && body.replays()
                    && Instant::now() + retry_after <= deadline =>
            {
                // Discord did not process it: once more, after the hold the 429 set.
                refused = Some(response);
                limiter.stats.retried();
            }
            _ => return Ok(response),
        }
    }
}

/// A request body that can be sent again, or one that streams once.
enum Replay<B> {
    Whole(Bytes),
    Once(Option<B>),
}

impl<B> Replay<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    async fn new(body: B) -> Result<Self, BoxError> {
        let small = body.is_end_stream()
            || body
                .size_hint()
                .upper()
                .is_some_and(|upper| upper <= MAX_REPLAY_BODY);
        if !small {
            return Ok(Self::Once(Some(body)));
        }
        let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
        Ok(Self::Whole(bytes))
    }

    fn replays(&self) -> bool {
        matches!(self, Self::Whole(_))
    }

    fn next(&mut self) -> DiscordBody {
        match self {
            Self::Whole(bytes) => DiscordBody::full(bytes.clone()),
            // Sent once only: `replays` is false.
            Self::Once(body) => body
                .take()
                .map_or_else(|| DiscordBody::full(Bytes::new()), DiscordBody::streamed),
        }
    }
}
