use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

/// The future a [`Store`](super::Store) operation returns: already complete, or boxed.
///
/// An in-process store answers at once, and the layer serves such a hit without allocating or polling;
/// a networked store returns a boxed future.
#[must_use = "futures do nothing unless polled"]
pub enum StoreFuture<T> {
    /// The answer, already known.
    Ready(Option<T>),
    /// The answer, still on its way.
    Pending(BoxFuture<'static, T>),
}

impl<T> StoreFuture<T> {
    /// An operation that completed synchronously.
    pub fn ready(value: T) -> Self {
        Self::Ready(Some(value))
    }

    /// An operation that has to wait.
    pub fn pending(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self::Pending(Box::pin(future))
    }

    /// The answer if it is already known, else the future itself.
    ///
    /// # Errors
    /// Returns `self` when the operation has to be awaited.
    pub fn into_ready(self) -> Result<T, Self> {
        match self {
            Self::Ready(Some(value)) => Ok(value),
            other => Err(other),
        }
    }
}

// Never pinned structurally: the boxed future is pinned on the heap and `T` is only moved out.
impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            Self::Ready(value) => {
                Poll::Ready(value.take().expect("StoreFuture polled after completion"))
            }
            Self::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> std::fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(_) => f.write_str("StoreFuture::Ready"),
            Self::Pending(_) => f.write_str("StoreFuture::Pending"),
        }
    }
}
