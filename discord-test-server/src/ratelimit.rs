//! Discord's rate limits as the server enforces them: a global limit per account and per-route buckets,
//! with the headers Discord sends.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The limits the server enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second per account across all routes (Discord: 50).
    pub global_per_second: u32,
    /// Requests per bucket window: one bucket per account, route (or [shared](RouteBucket::shared)
    /// bucket) and major parameter (guild or channel id).
    pub bucket_limit: u32,
    /// The length of a bucket's window.
    pub bucket_window: Duration,
    /// Routes whose buckets differ from the default, as Discord's do.
    pub route_buckets: Vec<RouteBucket>,
}

/// The bucket of one route, named as [`ServerStats`](super::ServerStats) names routes
/// (`GET /guilds/{guild.id}/members/{user.id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteBucket {
    /// The route.
    pub route: &'static str,
    /// Requests per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// The name of a bucket several routes share, as Discord's routes share bucket hashes: routes with
    /// the same name count against one budget (per account and major parameter) and answer the same
    /// `X-RateLimit-Bucket`. `None`: the route's own bucket.
    pub shared: Option<&'static str>,
}

impl Default for RateLimits {
    /// Discord's global limit, a typical per-route bucket of 5 requests per 5 seconds, and a roomier
    /// bucket for single members (10 per second per guild), which bots read the most.
    fn default() -> Self {
        Self {
            global_per_second: 50,
            bucket_limit: 5,
            bucket_window: Duration::from_secs(5),
            route_buckets: vec![RouteBucket {
                route: "GET /guilds/{guild.id}/members/{user.id}",
                limit: 10,
                window: Duration::from_secs(1),
                shared: None,
            }],
        }
    }
}

impl RateLimits {
    /// Limits no test workload reaches.
    pub fn unlimited() -> Self {
        Self {
            global_per_second: u32::MAX,
            bucket_limit: u32::MAX,
            bucket_window: Duration::from_secs(1),
            route_buckets: Vec::new(),
        }
    }

    /// The limit, window and bucket name of `route`.
    fn bucket(&self, route: &'static str) -> (u32, Duration, &'static str) {
        self.route_buckets
            .iter()
            .find(|bucket| bucket.route == route)
            .map_or((self.bucket_limit, self.bucket_window, route), |bucket| {
                (bucket.limit, bucket.window, bucket.shared.unwrap_or(route))
            })
    }
}

/// The outcome of counting one request.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// Served; the bucket's headers go on the answer.
    Allowed(BucketHeaders),
    /// Over a bucket's limit.
    RouteLimited(BucketHeaders),
    /// Over the global limit.
    GlobalLimited {
        /// Seconds until the global window resets.
        retry_after: f64,
    },
}

/// A bucket's state as Discord reports it in `X-RateLimit-*` headers.
#[derive(Debug, Clone)]
pub(crate) struct BucketHeaders {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset_after: f64,
    pub(crate) bucket: String,
}

impl BucketHeaders {
    /// Unix time of the reset, in seconds with millisecond precision.
    pub(crate) fn reset_at(&self) -> f64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        now + self.reset_after
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn count(&mut self, now: Instant, length: Duration, limit: u32) -> Result<u32, f64> {
        if now.duration_since(self.started) >= length {
            self.started = now;
            self.count = 0;
        }
        let left = length
            .saturating_sub(now.duration_since(self.started))
            .as_secs_f64();
        if self.count >= limit {
            return Err(left);
        }
        self.count += 1;
        Ok(limit - self.count)
    }

    fn reset_after(&self, now: Instant, length: Duration) -> f64 {
        length
            .saturating_sub(now.duration_since(self.started))
            .as_secs_f64()
    }
}

/// Counts requests per account and bucket.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    global: HashMap<u64, Window>,
    buckets: HashMap<(u64, &'static str, u64), Window>,
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            global: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// The headers of a refusal by `route`'s bucket announcing a wait of `reset_after` seconds, without
    /// counting anything (an outage refuses every request whatever the buckets hold).
    pub(crate) fn refusal(&self, route: &'static str, reset_after: f64) -> BucketHeaders {
        let (limit, _, name) = self.limits.bucket(route);
        BucketHeaders {
            limit,
            remaining: 0,
            reset_after,
            bucket: bucket_hash(name),
        }
    }

    /// Counts a request of `account` to `route` (a route template such as `GET /guilds/{guild.id}/roles`)
    /// with major parameter `major` (0 when the route has none).
    pub(crate) fn check(&mut self, account: u64, route: &'static str, major: u64) -> Verdict {
        let now = Instant::now();
        let global_limit = self.limits.global_per_second;
        let (limit, length, name) = self.limits.bucket(route);
        let global = self.global.entry(account).or_insert(Window {
            started: now,
            count: 0,
        });
        if let Err(retry_after) = global.count(now, Duration::from_secs(1), global_limit) {
            return Verdict::GlobalLimited { retry_after };
        }
        let window = self
            .buckets
            .entry((account, name, major))
            .or_insert(Window {
                started: now,
                count: 0,
            });
        let counted = window.count(now, length, limit);
        let headers = |remaining: u32, reset_after: f64| BucketHeaders {
            limit,
            remaining,
            reset_after,
            bucket: bucket_hash(name),
        };
        match counted {
            Ok(remaining) => Verdict::Allowed(headers(remaining, window.reset_after(now, length))),
            Err(retry_after) => {
                // The request was refused: it does not count against the global limit either.
                if let Some(global) = self.global.get_mut(&account) {
                    global.count = global.count.saturating_sub(1);
                }
                Verdict::RouteLimited(headers(0, retry_after))
            }
        }
    }
}

/// Discord's bucket ids are opaque hashes of the route.
fn bucket_hash(route: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in route.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
