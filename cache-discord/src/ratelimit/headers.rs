//! What an answer says about the limits: Discord's `X-RateLimit-*` and `Retry-After` headers.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// How long a 429 without any wait in it (a CDN's refusal with no `Retry-After`) holds requests.
pub(crate) const UNANNOUNCED_HOLD: Duration = Duration::from_secs(1);

/// The rate-limit facts of one answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Observed {
    /// `X-RateLimit-Bucket`: the bucket's hash, shared by the routes that share a budget.
    pub(crate) bucket: Option<String>,
    /// `X-RateLimit-Limit`.
    pub(crate) limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub(crate) remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`.
    pub(crate) reset_after: Option<Duration>,
    /// For a 429: what it limits and for how long.
    pub(crate) refusal: Option<Refusal>,
}

/// A 429's scope and wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) scope: Scope,
    pub(crate) retry_after: Duration,
}

/// What a 429 limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The route's bucket for this token (`X-RateLimit-Scope: user`, or no scope with bucket headers).
    Bucket,
    /// A per-resource limit shared by every client (`shared`): held like a bucket, but Discord does not
    /// count it as an invalid request.
    Shared,
    /// Every route of this token (`X-RateLimit-Global: true` or scope `global`).
    Global,
    /// No `X-RateLimit-*` header at all: not Discord's API but the CDN in front of it, which limits
    /// by address, so every request through this limiter waits.
    Everything,
}

impl Observed {
    /// Reads the headers of an answer with `status`.
    pub(crate) fn read(status: StatusCode, headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u32>().ok());
        let seconds = |name: &str| {
            text(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| Duration::from_secs_f64(v.min(86_400.0)))
        };
        let mut observed = Self {
            bucket: text("x-ratelimit-bucket")
                .filter(|v| !v.is_empty() && v.len() <= 64)
                .map(str::to_owned),
            limit: number("x-ratelimit-limit").filter(|limit| *limit > 0),
            remaining: number("x-ratelimit-remaining"),
            reset_after: seconds("x-ratelimit-reset-after"),
            refusal: None,
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            let discord = headers
                .keys()
                .any(|name| name.as_str().starts_with("x-ratelimit-"));
            let scope = match text("x-ratelimit-scope") {
                _ if !discord => Scope::Everything,
                _ if text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")) => {
                    Scope::Global
                }
                Some("global") => Scope::Global,
                Some("shared") => Scope::Shared,
                _ => Scope::Bucket,
            };
            // Reset-After has milliseconds; Retry-After whole seconds (rounded up by Discord). A
            // shared resource's limit is not the route's bucket: the longer of the two holds.
            let retry_after = match scope {
                Scope::Bucket => observed.reset_after.or_else(|| seconds("retry-after")),
                Scope::Shared => observed.reset_after.max(seconds("retry-after")),
                Scope::Global | Scope::Everything => seconds("retry-after"),
            }
            .unwrap_or(UNANNOUNCED_HOLD);
            observed.refusal = Some(Refusal { scope, retry_after });
        }
        observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn a_bucket_answer() {
        let observed = Observed::read(
            StatusCode::OK,
            &headers(&[
                ("x-ratelimit-bucket", "abcd1234"),
                ("x-ratelimit-limit", "5"),
                ("x-ratelimit-remaining", "4"),
                ("x-ratelimit-reset-after", "0.996"),
            ]),
        );
        assert_eq!(
            (observed.bucket.as_deref(), observed.limit),
            (Some("abcd1234"), Some(5))
        );
        assert_eq!(observed.remaining, Some(4));
        assert_eq!(observed.reset_after, Some(Duration::from_millis(996)));
        assert_eq!(observed.refusal, None);
    }

    #[test]
    fn the_scope_of_a_429() {
        let scope = |pairs: &[(&'static str, &'static str)]| {
            Observed::read(StatusCode::TOO_MANY_REQUESTS, &headers(pairs))
                .refusal
                .unwrap()
        };
        let global = scope(&[("x-ratelimit-global", "true"), ("retry-after", "2")]);
        assert_eq!(
            (global.scope, global.retry_after),
            (Scope::Global, Duration::from_secs(2))
        );
        let bucket = scope(&[
            ("x-ratelimit-scope", "user"),
            ("x-ratelimit-reset-after", "0.25"),
            ("retry-after", "1"),
        ]);
        assert_eq!(
            (bucket.scope, bucket.retry_after),
            (Scope::Bucket, Duration::from_millis(250))
        );
        let shared = scope(&[("x-ratelimit-scope", "shared"), ("retry-after", "3")]);
        assert_eq!(shared.scope, Scope::Shared);
        let cdn = scope(&[("retry-after", "4")]);
        assert_eq!(
            (cdn.scope, cdn.retry_after),
            (Scope::Everything, Duration::from_secs(4))
        );
        assert_eq!(scope(&[]).retry_after, UNANNOUNCED_HOLD);
    }
}
