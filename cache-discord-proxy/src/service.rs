//! [`ProxyService`]: one request from a bot, relayed through the Discord cache and the rate limiter.

use std::sync::Arc;

use bytes::Bytes;
use cache_core::{upstream_error, BoxError};
use cache_discord::ratelimit::RateLimitError;
use cache_discord::{CachedResponse, DiscordBody, DiscordCacheService, DiscordRateLimit, Route};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;
use tower_cache::EnvStore;

use crate::client::UpstreamClient;
use crate::credentials::Accepted;
use crate::relay::{self, NotRelayed};

/// The rate-limited client to Discord.
pub(crate) type Paced = DiscordRateLimit<UpstreamClient>;
/// The cache over it.
pub(crate) type Cached = DiscordCacheService<Paced, EnvStore<CachedResponse>>;

/// What every connection shares.
#[derive(Clone)]
pub(crate) struct ProxyService {
    pub(crate) upstream: http::Uri,
    pub(crate) cached: Cached,
    pub(crate) paced: Paced,
    pub(crate) accepted: Arc<Accepted>,
}

impl ProxyService {
    /// Answers one request. Never fails: a request the proxy cannot relay gets the answer Discord
    /// would give (404 outside the API), a local refusal gets Discord's shape of it.
    pub(crate) async fn handle(
        self,
        request: http::Request<Incoming>,
    ) -> http::Response<DiscordBody> {
        let (mut parts, body) = request.into_parts();
        let uri = match relay::upstream_uri(&self.upstream, &parts.uri) {
            Ok(uri) => uri,
            Err(NotRelayed::NotApi) => {
                return discord_error(StatusCode::NOT_FOUND, "404: Not Found")
            }
            Err(NotRelayed::AmbiguousPath) => {
                return discord_error(StatusCode::BAD_REQUEST, "400: Bad Request")
            }
        };
        parts.uri = uri;
        // The client's protocol is between it and the proxy; the upstream connection negotiates its
        // own (HTTP/2 by ALPN where the upstream offers it).
        parts.version = http::Version::HTTP_11;
        relay::strip_hop_by_hop(&mut parts.headers, true);
        // The policy's routes are all ones where Discord checks the token: only their answers vouch.
        let route = Route::parse(&parts.method, &parts.uri).map(|(route, _)| route);
        let is_read = parts.method == Method::GET && route.is_some_and(|route| route.is_read());
        let vouched = self.accepted.vouches_for(&parts.headers);
        let from_cache = is_read && vouched;
        let headers = parts.headers.clone();
        let read_uri = from_cache.then(|| parts.uri.clone());
        let request = http::Request::from_parts(parts, DiscordBody::streamed(body));
        let sent = Instant::now();
        let answer = if is_read && !vouched {
            // A credential Discord has not accepted lately reads from Discord itself.
            let answer = self.paced.clone().oneshot(request).await;
            answer.map(|response| response.map(DiscordBody::streamed))
        } else if request.method() == Method::GET || request.method() == Method::HEAD {
            self.cached.oneshot(request).await
        } else {
            // A write runs to its end even when its client goes away: once Discord may have it, the
            // cache must learn its outcome (dropping it midway would skip the write's effects).
            match tokio::spawn(self.cached.oneshot(request)).await {
                Ok(answer) => answer,
                Err(failed) => Err(BoxError::from(failed)),
            }
        };
        // A cached read's 401, or its local refusal of a rejected token, may be another token's of
        // the same bot, shared by single flight: this token is vouched for no longer, and Discord is
        // asked with it alone.
        let rejected = match &answer {
            Ok(response) => response.status() == StatusCode::UNAUTHORIZED,
            Err(error) => matches!(
                upstream_error::<RateLimitError>(error.as_ref()),
                Some(RateLimitError::TokenRejected { .. })
            ),
        };
        if let (Some(uri), true) = (read_uri, rejected) {
            self.accepted
                .record(&headers, StatusCode::UNAUTHORIZED, route.is_some(), sent);
            let mut own = http::Request::new(DiscordBody::full(Bytes::new()));
            *own.uri_mut() = uri;
            *own.headers_mut() = headers.clone();
            for name in [CONTENT_LENGTH, CONTENT_TYPE] {
                own.headers_mut().remove(name);
            }
            let sent = Instant::now();
            let mut response = match self.paced.oneshot(own).await {
                Ok(response) => response.map(DiscordBody::streamed),
                Err(error) => return local_answer(&error),
            };
            self.accepted
                .record(&headers, response.status(), route.is_some(), sent);
            relay::strip_hop_by_hop(response.headers_mut(), false);
            return response;
        }
        let mut response = match answer {
            Ok(response) => response,
            Err(error) => return local_answer(&error),
        };
        if !from_cache {
            // Discord's own answer to this request.
            self.accepted
                .record(&headers, response.status(), route.is_some(), sent);
        }
        relay::strip_hop_by_hop(response.headers_mut(), false);
        if from_cache && response.status().is_success() {
            // A cached answer's rate-limit headers are an old window's: a client pacing itself by
            // them would wait for nothing. The proxy paces what goes to Discord.
            let stale: Vec<_> = response
                .headers()
                .keys()
                .filter(|name| name.as_str().starts_with("x-ratelimit-"))
                .cloned()
                .collect();
            for name in stale {
                response.headers_mut().remove(name);
            }
        }
        response
    }
}

/// The answer for a request the proxy did not send, in Discord's shapes.
fn local_answer(error: &BoxError) -> http::Response<DiscordBody> {
    // A refusal reaches waiters of a shared fill wrapped in the cache's shared error.
    match upstream_error::<RateLimitError>(error.as_ref()) {
        Some(
            RateLimitError::WouldWait { wait: retry, .. }
            | RateLimitError::InvalidRequestGuard {
                retry_in: retry, ..
            },
        ) => {
            let seconds = retry.as_secs_f64();
            let body = json!({"message": "You are being rate limited.", "retry_after": (seconds * 1000.0).ceil() / 1000.0, "global": false});
            let mut response = json_answer(StatusCode::TOO_MANY_REQUESTS, &body);
            let whole = seconds.ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(whole));
            response
                .headers_mut()
                .insert("x-ratelimit-scope", HeaderValue::from_static("user"));
            response
        }
        Some(RateLimitError::TokenRejected { .. }) => {
            discord_error(StatusCode::UNAUTHORIZED, "401: Unauthorized")
        }
        _ => {
            tracing::warn!(%error, "discord proxy: the upstream could not be reached");
            discord_error(StatusCode::BAD_GATEWAY, "502: Bad Gateway")
        }
    }
}

fn discord_error(status: StatusCode, message: &str) -> http::Response<DiscordBody> {
    json_answer(status, &json!({"message": message, "code": 0}))
}

pub(crate) fn json_answer(
    status: StatusCode,
    body: &serde_json::Value,
) -> http::Response<DiscordBody> {
    let mut response = http::Response::new(DiscordBody::full(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
