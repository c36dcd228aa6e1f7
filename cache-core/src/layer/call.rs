use std::future::poll_fn;
use std::time::Duration;

use tower_service::Service;

use crate::{BoxError, Error};

/// Drives `inner` to readiness, then calls it: readiness is awaited on the miss path only, so a hit never
/// waits behind a rate limiter or a full connection pool below the cache.
pub(crate) async fn call_ready<S, Req>(mut inner: S, req: Req) -> Result<S::Response, BoxError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    poll_fn(|cx| inner.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    inner.call(req).await.map_err(Into::into)
}

/// [`call_ready`] within `hard` (readiness included), failing with [`Error::InnerTimeout`] after it.
pub(crate) async fn call_within<S, Req>(
    hard: Option<Duration>,
    inner: S,
    req: Req,
) -> Result<S::Response, BoxError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    match hard {
        None => call_ready(inner, req).await,
        Some(after) => tokio::time::timeout(after, call_ready(inner, req))
            .await
            .unwrap_or_else(|_| Err(Box::new(Error::InnerTimeout { after }))),
    }
}
