//! The crate's error type, and the shareable wrapper for upstream failures.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Boxed error, the error type of the cache service (tower's convention).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything in `cache-core` that can fail.
///
/// Store and codec errors never reach a request: the layer counts them, traces them and answers from the
/// inner service instead. They reach callers only through [`CacheHandle`](crate::CacheHandle) and
/// configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable (or the same setting given in code) has a value that cannot be used.
    #[error("invalid value {value:?} for {variable}: {reason}")]
    InvalidConfig {
        /// The variable's name, e.g. `CACHE_ENABLED`.
        variable: String,
        /// The value found (empty when the value is not valid unicode).
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// A store operation failed.
    #[error("cache store {operation} failed: {source}")]
    Store {
        /// The operation: `get`, `put`, `remove`, `invalidate` or `clear`.
        operation: &'static str,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },
    /// A store operation did not finish in time.
    #[error("cache store {operation} timed out after {after:?}")]
    StoreTimeout {
        /// The operation that timed out.
        operation: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The inner service did not answer a cacheable read within the layer's hard timeout.
    #[error("inner service did not answer within {after:?} (hard timeout)")]
    InnerTimeout {
        /// The hard timeout that elapsed.
        after: Duration,
    },
    /// A value could not be encoded.
    #[error("cannot encode value with {codec}: {reason}")]
    Encode {
        /// The codec's name.
        codec: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// Stored bytes could not be decoded (other codec, other format version, corrupted).
    #[error("cannot decode cache entry: {reason}")]
    Decode {
        /// What was wrong with the bytes.
        reason: String,
    },
}

impl Error {
    /// Wraps a backend failure of `operation`.
    pub fn store(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Store {
            operation,
            source: source.into(),
        }
    }

    pub(crate) fn decode(reason: impl Into<String>) -> Self {
        Self::Decode {
            reason: reason.into(),
        }
    }
}

/// An upstream failure shared by every caller of one single flight.
///
/// The inner service ran once for all concurrent callers of a key, so they all receive the same error. It
/// displays as the original error; [`SharedError::get_ref`] reaches the original for downcasting, and
/// [`upstream_error`] looks through this wrapper in one call.
#[derive(Clone)]
pub struct SharedError {
    inner: Arc<dyn StdError + Send + Sync + 'static>,
}

impl SharedError {
    pub(crate) fn new(error: BoxError) -> Self {
        Self {
            inner: Arc::from(error),
        }
    }

    pub(crate) fn leader_panicked(key: &str) -> Self {
        Self::new(format!("the call filling cache key {key:?} panicked").into())
    }

    /// The error the inner service returned.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

/// Finds the inner service's error of type `E` in an error returned by the cache service, looking through
/// [`SharedError`].
///
/// ```
/// use cache_core::{upstream_error, BoxError};
/// # #[derive(Debug)] struct NotFound;
/// # impl std::fmt::Display for NotFound { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("not found") } }
/// # impl std::error::Error for NotFound {}
/// let err: BoxError = Box::new(NotFound);
/// assert!(upstream_error::<NotFound>(&*err).is_some());
/// ```
pub fn upstream_error<'a, E: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a E> {
    if let Some(found) = error.downcast_ref::<E>() {
        return Some(found);
    }
    let shared = error.downcast_ref::<SharedError>()?;
    let inner: &(dyn StdError + 'static) = shared.get_ref();
    inner.downcast_ref::<E>()
}
