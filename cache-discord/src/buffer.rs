//! Buffering an HTTP client's streaming responses into [`CachedResponse`], the form the cache stores.
//!
//! The cache layer needs its inner service to answer with a value it can clone and store. Put
//! [`BufferResponseLayer`] between the cache and any `http` client service (hyper-util's client,
//! `reqwest` through a tower adapter, a test double):
//!
//! ```
//! use bytes::Bytes;
//! use cache_discord::{BufferResponseLayer, CachedResponse};
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cache_core::BoxError> {
//! let client = service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(b"[]"))))
//! });
//! let buffered = ServiceBuilder::new().layer(BufferResponseLayer::new()).service(client);
//! let response: CachedResponse = buffered.oneshot(http::Request::new(Full::default())).await?;
//! assert_eq!(response.body().as_ref(), b"[]");
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use cache_core::BoxError;
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use crate::{CachedResponse, Error};

/// The default cap on a buffered body: far above any Discord answer, low enough to bound memory.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// Wraps a service in [`BufferResponse`].
#[derive(Debug, Clone, Copy)]
pub struct BufferResponseLayer {
    max_body: usize,
}

impl BufferResponseLayer {
    /// Buffers bodies of up to [`DEFAULT_MAX_BODY`] bytes.
    pub fn new() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Sets the largest body buffered; a larger one fails the request with [`Error::BodyTooLarge`].
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl Default for BufferResponseLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for BufferResponseLayer {
    type Service = BufferResponse<S>;

    fn layer(&self, inner: S) -> BufferResponse<S> {
        BufferResponse {
            inner,
            max_body: self.max_body,
        }
    }
}

/// A service answering with the whole response of `inner` as a [`CachedResponse`].
#[derive(Debug, Clone)]
pub struct BufferResponse<S> {
    inner: S,
    max_body: usize,
}

impl<S> BufferResponse<S> {
    crate::define_inner_service_accessors!();
}

/// The response future of [`BufferResponse`]: the call and the body read, boxed (it runs once per
/// upstream call, never on a cache hit).
pub type BufferFuture = Pin<Box<dyn Future<Output = Result<CachedResponse, BoxError>> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for BufferResponse<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = CachedResponse;
    type Error = BoxError;
    type Future = BufferFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> BufferFuture {
        let head = req.extensions_mut().remove::<FullHead>();
        let call = self.inner.call(req);
        let max_body = self.max_body;
        Box::pin(async move {
            let response = call.await.map_err(Into::into)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|error| -> BoxError {
                    if error.is::<http_body_util::LengthLimitError>() {
                        Box::new(Error::BodyTooLarge { limit: max_body })
                    } else {
                        error
                    }
                })?
                .to_bytes();
            let buffered = CachedResponse::from_parts(&parts, body);
            if let Some(head) = head {
                head.fill(parts);
            }
            Ok(buffered)
        })
    }
}

/// Where [`BufferResponse`] leaves the whole head of the upstream's answer (every header, not only the
/// kept ones) when the request carries one: writes answer their caller with Discord's head as sent.
#[derive(Clone, Default)]
pub(crate) struct FullHead(Arc<Mutex<Option<http::response::Parts>>>);

impl FullHead {
    fn fill(&self, parts: http::response::Parts) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(parts);
    }

    /// The head, when the upstream answered this request.
    pub(crate) fn take(&self) -> Option<http::response::Parts> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}
