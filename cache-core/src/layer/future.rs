use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use pin_project_lite::pin_project;

use crate::BoxError;

pin_project! {
    /// Response future of [`Cache`](super::Cache).
    ///
    /// A hit on a store that answers synchronously is `Ready` and allocates nothing; the miss and write
    /// paths are boxed.
    #[project = Projection]
    pub struct ResponseFuture<F, V> {
        #[pin]
        kind: Kind<F, V>,
    }
}

pin_project! {
    #[project = KindProjection]
    enum Kind<F, V> {
        Ready { value: Option<V> },
        Inner { #[pin] future: F },
        Boxed { future: BoxFuture<'static, Result<V, BoxError>> },
    }
}

impl<F, V> ResponseFuture<F, V> {
    pub(crate) fn ready(value: V) -> Self {
        Self {
            kind: Kind::Ready { value: Some(value) },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn boxed(
        future: impl Future<Output = Result<V, BoxError>> + Send + 'static,
    ) -> Self {
        Self {
            kind: Kind::Boxed {
                future: Box::pin(future),
            },
        }
    }
}

impl<F, V, E> Future for ResponseFuture<F, V>
where
    F: Future<Output = Result<V, E>>,
    E: Into<BoxError>,
{
    type Output = Result<V, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Ready { value } => Poll::Ready(Ok(value
                .take()
                .expect("ResponseFuture polled after completion"))),
            KindProjection::Inner { future } => future.poll(cx).map_err(Into::into),
            KindProjection::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, V> std::fmt::Debug for ResponseFuture<F, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Ready { .. } => "Ready",
            Kind::Inner { .. } => "Inner",
            Kind::Boxed { .. } => "Boxed",
        };
        f.debug_tuple("ResponseFuture").field(&kind).finish()
    }
}
