//! [`RateLimitError`]: a request the layer did not send.

use std::time::Duration;

/// Why [`DiscordRateLimit`](super::DiscordRateLimit) did not send a request to Discord. In every case
/// nothing reached Discord; the caller may retry later. (A retry after a 429 that cannot get its turn
/// answers with that 429 instead.)
///
/// It reaches callers boxed in the service's [`BoxError`](cache_core::BoxError): find it with
/// `error.downcast_ref::<RateLimitError>()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The request's turn would come after its bound ([`RateLimitConfig::max_wait`](super::RateLimitConfig::max_wait)
    /// or its [`MaxWait`](super::MaxWait)).
    #[error("Discord rate limit: {bucket} would wait {wait:?} for the {reason} limit, past the bound of {max_wait:?}; not sent")]
    WouldWait {
        /// The bucket: route and major parameter, such as `GET /guilds/{guild}/roles [guild:1]`.
        bucket: String,
        /// What it would wait for: `bucket`, `global` or `all requests`.
        reason: &'static str,
        /// The wait it would have (at least what is left of the bound when it waited in line).
        wait: Duration,
        /// Its bound.
        max_wait: Duration,
    },
    /// Discord answered this token `401 Unauthorized` lately: its requests are refused locally until
    /// the back-off ends, then one request probes.
    #[error("Discord rate limit: this token was answered 401 Unauthorized; its requests are refused locally for {retry_in:?}; not sent")]
    TokenRejected {
        /// Until the next probe may go.
        retry_in: Duration,
    },
    /// The limiter saw as many invalid answers (401, 403, 429) in 10 minutes as its guard allows:
    /// requests are refused locally, since Discord bans an address that reaches 10,000.
    #[error("Discord rate limit: {limit} invalid answers (401, 403, 429) in 10 minutes; requests are refused locally for {retry_in:?} to avoid a ban; not sent")]
    InvalidRequestGuard {
        /// The guard's limit.
        limit: u32,
        /// Until the count drops below it.
        retry_in: Duration,
    },
}
