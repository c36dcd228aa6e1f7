use std::future::poll_fn;

use tower_service::Service;

use crate::BoxError;

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
