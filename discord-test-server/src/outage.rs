//! Outages on purpose: a stretch during which Discord answers every request with a failure, so tests and
//! demos can show what callers see (and what a cache serves) while the API is rate limiting or down.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::api;
use super::ratelimit::BucketHeaders;

/// How the server fails every authenticated request until
/// [`DiscordServer::end_outage`](super::DiscordServer::end_outage).
///
/// ```
/// use std::time::Duration;
/// use discord_test_server::Outage;
///
/// let banned = Outage::global_rate_limit(Duration::from_secs(10));
/// assert_eq!(banned.status(), 429);
/// assert_eq!(Outage::server_error(http::StatusCode::SERVICE_UNAVAILABLE).status(), 503);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// `429 {"message":"You are being rate limited.","retry_after":F,"global":B}` with `Retry-After`, as
    /// past the global limit (`global`: `X-RateLimit-Global: true`, scope `global`) or past the
    /// request's route bucket (the bucket's `X-RateLimit-*` headers with nothing remaining, scope `user`).
    RateLimited {
        /// Whether the answers claim the global limit rather than the route's bucket.
        global: bool,
        /// The wait every answer announces.
        retry_after: Duration,
    },
    /// `429` from the CDN in front of Discord (Cloudflare), as when an IP sends too many invalid
    /// requests: an HTML body, no `X-RateLimit-*` headers, and `Retry-After` (whole seconds) when set.
    Cloudflare {
        /// The wait announced in `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// This status (a 5xx: 500, 502, 503) with Discord's error body `{"message":"503: Service
    /// Unavailable","code":0}`.
    ServerError(StatusCode),
}

impl Outage {
    /// Every request answered as past the global rate limit, announcing a wait of `retry_after`.
    pub fn global_rate_limit(retry_after: Duration) -> Self {
        Self::RateLimited {
            global: true,
            retry_after,
        }
    }

    /// Every request answered as past its route's bucket, announcing a wait of `retry_after`.
    pub fn route_rate_limit(retry_after: Duration) -> Self {
        Self::RateLimited {
            global: false,
            retry_after,
        }
    }

    /// Every request answered with `status` (a 5xx) and an error body.
    pub fn server_error(status: StatusCode) -> Self {
        Self::ServerError(status)
    }

    /// The status of every answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::RateLimited { .. } | Self::Cloudflare { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError(status) => *status,
        }
    }

    /// The answer to one request; `bucket` gives the route's bucket headers for a route-scoped 429.
    pub(super) fn answer(
        &self,
        bucket: impl FnOnce(f64) -> BucketHeaders,
    ) -> Response<Full<Bytes>> {
        match *self {
            Self::RateLimited {
                global: true,
                retry_after,
            } => api::rate_limited(None, retry_after.as_secs_f64()),
            Self::RateLimited {
                global: false,
                retry_after,
            } => {
                let retry_after = retry_after.as_secs_f64();
                api::rate_limited(Some(&bucket(retry_after)), retry_after)
            }
            Self::Cloudflare { retry_after } => {
                let mut response = Response::new(Full::new(Bytes::from_static(
                    b"<!DOCTYPE html><title>Access denied | discord.com used Cloudflare to restrict access</title>",
                )));
                *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                let headers = response.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/html; charset=UTF-8"),
                );
                if let Some(wait) = retry_after {
                    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                    headers.insert(http::header::RETRY_AFTER, seconds.into());
                }
                response
            }
            Self::ServerError(status) => {
                let message = format!(
                    "{}: {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Server Error")
                );
                let body = json!({"message": message, "code": 0});
                api::reply((status, Some(body)), None)
            }
        }
    }
}
