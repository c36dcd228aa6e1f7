//! [`Limiter`]: the state behind a [`DiscordRateLimitLayer`](super::DiscordRateLimitLayer): what it
//! learned of each route, the queue of each bucket, and the budget that admits requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::budget::{Admission, Effects, Guard, Limit, Ticket, TokenVerdict};
use super::headers::{Observed, Scope};
use super::memory::MemoryBudget;
use super::route::RequestRoute;
use super::{RateLimitConfig, RateLimitError, RateLimitStats};

/// What answers taught about a route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Learned {
    /// Its bucket: hash, requests per window, and the window (the longest reset announced).
    Bucket {
        hash: Arc<str>,
        limit: u32,
        window: Duration,
    },
    /// Successful answers carried no bucket: only the global limit applies.
    Unlimited,
}

/// Where a grant was made, since each budget has its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Memory,
    #[cfg(feature = "redis")]
    Redis,
}

pub(crate) struct Limiter {
    pub(crate) config: RateLimitConfig,
    pub(crate) stats: RateLimitStats,
    memory: MemoryBudget,
    #[cfg(feature = "redis")]
    redis: Option<super::redis::RedisBudget>,
    routes: Mutex<HashMap<String, Learned>>,
    queues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests in flight to routes whose bucket is unknown, per token and major parameter.
    discoveries: Mutex<HashMap<String, u32>>,
}

/// A request's admission: it may be sent. Dropped before [`sent`](Permit::sent), its grant is given
/// back; while the route's bucket is unknown, it keeps the route's line until its answer is read.
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
    bucket: String,
    bucket_limit: Option<Limit>,
    global_limit: Option<Limit>,
    identity: String,
    at: u64,
    probe: bool,
    source: Source,
    discovering: Option<(QueueTurn, Discovery)>,
    sent: bool,
}

/// A request in flight to a route whose bucket is unknown. Its route may share a bucket with known
/// routes of its major parameter: until its answer tells, their requests leave it room.
struct Discovery {
    limiter: Arc<Limiter>,
    key: String,
}

/// A place in a bucket's line, at its head once `guard` is held.
struct QueueTurn {
    limiter: Arc<Limiter>,
    name: String,
    queue: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

/// What an answer means for its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Pass it on.
    Answer,
    /// A 429: Discord did not process the request; it may be sent again after this wait.
    Refused { retry_after: Duration },
}

impl Limiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        let guard = Guard {
            invalid_limit: config.invalid_request_limit,
            token_backoff: config.invalid_token_backoff,
        };
        Self {
            config,
            stats: RateLimitStats::default(),
            memory: MemoryBudget::new(guard),
            #[cfg(feature = "redis")]
            redis: None,
            routes: Mutex::default(),
            queues: Mutex::default(),
            discoveries: Mutex::default(),
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) fn shared(config: RateLimitConfig, scripts: cache_redis::RedisScripts) -> Self {
        let mut limiter = Self::new(config);
        let guard = Guard {
            invalid_limit: limiter.config.invalid_request_limit,
            token_backoff: limiter.config.invalid_token_backoff,
        };
        limiter.redis = Some(super::redis::RedisBudget::new(scripts, guard));
        limiter
    }

    pub(crate) fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    fn learned(&self, route: &str) -> Option<Learned> {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.get(route).cloned()
    }

    fn global_limit(&self, route: &RequestRoute) -> Option<Limit> {
        (!route.global_exempt).then(|| Limit {
            count: self.config.global_limit,
            window: Duration::from_secs(1) + self.config.offset,
        })
    }

    /// Waits for `route`'s turn, in arrival order per bucket, until `deadline`.
    ///
    /// # Cancel safety
    /// Dropping the future gives up its place in line; a grant it already got is given back.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        route: &RequestRoute,
        deadline: Instant,
        max_wait: Duration,
    ) -> Result<Permit, RateLimitError> {
        let started = Instant::now();
        // Whether this request waited behind others or for a limit (not for Redis's answer).
        let mut waited = false;
        loop {
            let learned = self.learned(&route.route);
            let (bucket, bucket_limit) = match &learned {
                Some(Learned::Bucket {
                    hash,
                    limit,
                    window,
                }) => (
                    format!("{hash}:{}", route.major),
                    Some(Limit {
                        count: *limit,
                        window: *window + self.config.offset,
                    }),
                ),
                _ => (format!("route:{}:{}", route.route, route.major), None),
            };
            let would_wait = |wait: Duration, reason: &'static str| RateLimitError::WouldWait {
                bucket: route.name(),
                reason,
                wait,
                max_wait,
            };
            let line = format!("{}|{bucket}", route.identity);
            let (turn, queued) = QueueTurn::take(self, line, deadline)
                .await
                .ok_or_else(|| would_wait(deadline.saturating_duration_since(started), "bucket"))?;
            waited |= queued;
            let discovering = learned.is_none();
            if discovering && self.learned(&route.route).is_some() {
                // Learned while this request waited in line: take the bucket's line instead.
                continue;
            }
            let global_limit = self.global_limit(route);
            let major = format!("{}|{}", route.identity, route.major);
            loop {
                let room = self.discoveries_on(&major);
                let ticket = Ticket {
                    identity: &route.identity,
                    bucket: &bucket,
                    bucket_limit: bucket_limit.map(|limit| Limit {
                        count: limit.count.saturating_sub(room).max(1),
                        ..limit
                    }),
                    global_limit,
                };
                let (admission, source) = self.admit(&ticket).await;
                match admission {
                    Admission::Granted { at, probe } => {
                        if waited {
                            self.stats.waited(started.elapsed());
                        }
                        self.stats.admitted();
                        return Ok(Permit {
                            limiter: Arc::clone(self),
                            bucket,
                            bucket_limit,
                            global_limit,
                            identity: route.identity.clone(),
                            at,
                            probe,
                            source,
                            discovering: discovering.then(|| (turn, Discovery::start(self, major))),
                            sent: false,
                        });
                    }
                    Admission::Wait { wait, reason } => {
                        if Instant::now() + wait > deadline {
                            self.stats.refused();
                            tracing::debug!(bucket = %route.name(), ?wait, reason = reason.as_str(), "discord rate limit: wait past the bound; not sent");
                            return Err(would_wait(wait, reason.as_str()));
                        }
                        tracing::trace!(bucket = %route.name(), ?wait, reason = reason.as_str(), "discord rate limit: waiting");
                        tokio::time::sleep(wait).await;
                        waited = true;
                    }
                    Admission::TokenRejected { retry_in } => {
                        self.stats.refused();
                        return Err(RateLimitError::TokenRejected { retry_in });
                    }
                    Admission::Guarded { retry_in } => {
                        self.stats.refused();
                        tracing::warn!(?retry_in, limit = self.config.invalid_request_limit, "discord rate limit: too many invalid answers; refusing requests locally");
                        return Err(RateLimitError::InvalidRequestGuard {
                            limit: self.config.invalid_request_limit,
                            retry_in,
                        });
                    }
                }
            }
        }
    }

    fn discoveries_on(&self, major: &str) -> u32 {
        let discoveries = self
            .discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        discoveries.get(major).copied().unwrap_or(0)
    }

    /// Admits in Redis when it is configured and answers; in memory otherwise, with each limit cut to
    /// this process's share when Redis should have answered.
    async fn admit(&self, ticket: &Ticket<'_>) -> (Admission, Source) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            match redis.admit(ticket).await {
                Ok(admission) => return (admission, Source::Redis),
                Err(error) => {
                    self.stats.fallback();
                    tracing::debug!(%error, "discord rate limit: Redis not asked; pacing this process alone");
                    let instances = self.config.instances;
                    let share = Ticket {
                        bucket_limit: ticket.bucket_limit.map(|limit| limit.share(instances)),
                        global_limit: ticket.global_limit.map(|limit| limit.share(instances)),
                        ..*ticket
                    };
                    return (self.memory.admit(&share), Source::Memory);
                }
            }
        }
        (self.memory.admit(ticket), Source::Memory)
    }

    /// Reads an answer to a permitted request: learns its route's bucket and applies what it says.
    pub(crate) async fn observe(
        &self,
        route: &RequestRoute,
        mut permit: Permit,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Outcome {
        permit.sent = true;
        let observed = Observed::read(status, headers);
        let learned = self.learn(route, status, &observed);
        let (bucket, bucket_limit) = match &learned {
            Some(Learned::Bucket {
                hash,
                limit,
                window,
            }) => (
                format!("{hash}:{}", route.major),
                Some(Limit {
                    count: *limit,
                    window: *window + self.config.offset,
                }),
            ),
            _ => (permit.bucket.clone(), permit.bucket_limit),
        };
        let offset = self.config.offset;
        let mut effects = Effects::default();
        if observed.remaining == Some(0) {
            effects.hold_bucket = observed.reset_after.map(|wait| wait + offset);
        }
        let mut outcome = Outcome::Answer;
        if let Some(refusal) = observed.refusal {
            self.stats.rate_limited();
            let hold = Some(refusal.retry_after + offset);
            match refusal.scope {
                Scope::Bucket | Scope::Shared => effects.hold_bucket = hold,
                Scope::Global => effects.hold_global = hold,
                Scope::Everything => effects.hold_everything = hold,
            }
            tracing::warn!(bucket = %route.name(), scope = ?refusal.scope, retry_after = ?refusal.retry_after, "discord rate limit: Discord answered 429");
            outcome = Outcome::Refused {
                retry_after: refusal.retry_after + offset,
            };
        }
        effects.invalid = matches!(status.as_u16(), 401 | 403)
            || observed
                .refusal
                .is_some_and(|refusal| refusal.scope != Scope::Shared);
        if route.identity != "none" {
            if status == StatusCode::UNAUTHORIZED {
                effects.token = TokenVerdict::Rejected;
                tracing::warn!(bucket = %route.name(), backoff = ?self.config.invalid_token_backoff, "discord rate limit: Discord answered 401; refusing this token's requests locally for the back-off");
            } else if permit.probe {
                effects.token = TokenVerdict::Accepted;
            }
        }
        if permit.discovering.is_some() && bucket_limit.is_some() && bucket != permit.bucket {
            effects.adopt = Some(permit.at);
        }
        if !effects.is_empty() {
            let ticket = Ticket {
                identity: &permit.identity,
                bucket: &bucket,
                bucket_limit,
                global_limit: permit.global_limit,
            };
            self.apply(&ticket, effects, permit.source).await;
        }
        outcome
    }

    /// Applies `effects` where the grant was made, and in memory too, so a fallback knows of holds.
    async fn apply(&self, ticket: &Ticket<'_>, effects: Effects, source: Source) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let mut shared = effects;
            if source != Source::Redis {
                shared.adopt = None;
            }
            if let Err(error) = redis.observe(ticket, &shared).await {
                tracing::debug!(%error, "discord rate limit: an answer's effects not recorded in Redis");
            }
        }
        let mut local = effects;
        if source != Source::Memory {
            local.adopt = None;
        }
        self.memory.observe(ticket, &local);
    }

    /// Updates what is known of `route` from an answer; returns what is known now.
    fn learn(
        &self,
        route: &RequestRoute,
        status: StatusCode,
        observed: &Observed,
    ) -> Option<Learned> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let known = routes.get(&route.route).cloned();
        let update = match (observed.bucket.as_deref(), observed.limit) {
            (Some(hash), Some(limit)) => {
                let reset_after = observed.reset_after.unwrap_or_default();
                let window = match &known {
                    Some(Learned::Bucket {
                        limit: known_limit,
                        window,
                        ..
                    }) if *known_limit == limit => (*window).max(reset_after),
                    _ => reset_after,
                };
                let window = Duration::from_millis(super::budget::millis(window).max(1));
                Some(Learned::Bucket {
                    hash: hash.into(),
                    limit,
                    window,
                })
            }
            _ if known.is_none() && status.is_success() => Some(Learned::Unlimited),
            _ => None,
        };
        match update {
            Some(learned) if known.as_ref() != Some(&learned) => {
                if known.is_none() {
                    tracing::debug!(route = %route.route, bucket = ?learned, "discord rate limit: bucket learned");
                }
                routes.insert(route.route.clone(), learned.clone());
                Some(learned)
            }
            _ => known,
        }
    }

    /// Gives back the grant of a request that was never sent.
    fn refund(self: &Arc<Self>, permit: &Permit) {
        let ticket = Ticket {
            identity: &permit.identity,
            bucket: &permit.bucket,
            bucket_limit: permit.bucket_limit,
            global_limit: permit.global_limit,
        };
        match permit.source {
            Source::Memory => self.memory.refund(&ticket, permit.at),
            #[cfg(feature = "redis")]
            Source::Redis => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let limiter = Arc::clone(self);
                let (identity, bucket, at) =
                    (permit.identity.clone(), permit.bucket.clone(), permit.at);
                let (bucket_limit, global_limit) = (permit.bucket_limit, permit.global_limit);
                runtime.spawn(async move {
                    let ticket = Ticket {
                        identity: &identity,
                        bucket: &bucket,
                        bucket_limit,
                        global_limit,
                    };
                    if let Some(redis) = &limiter.redis {
                        let _ = redis.refund(&ticket, at).await;
                    }
                });
            }
        }
    }
}

impl Permit {
    /// The request is about to be handed to the client: its grant is used.
    pub(crate) fn sent(&mut self) {
        self.sent = true;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.sent {
            let limiter = Arc::clone(&self.limiter);
            limiter.refund(self);
        }
    }
}

impl Discovery {
    fn start(limiter: &Arc<Limiter>, key: String) -> Self {
        let mut discoveries = limiter
            .discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *discoveries.entry(key.clone()).or_default() += 1;
        Self {
            limiter: Arc::clone(limiter),
            key,
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let mut discoveries = self
            .limiter
            .discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = discoveries.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                discoveries.remove(&self.key);
            }
        }
    }
}

impl QueueTurn {
    /// Waits for the head of line `name` until `deadline`; `None` past it. Also says whether others
    /// were ahead.
    async fn take(limiter: &Arc<Limiter>, name: String, deadline: Instant) -> Option<(Self, bool)> {
        let queue = {
            let mut queues = limiter
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(queues.entry(name.clone()).or_default())
        };
        // Made before waiting, so a caller dropped in line (or out of time) still tidies the map.
        let mut turn = Self {
            limiter: Arc::clone(limiter),
            name,
            queue,
            guard: None,
        };
        if let Ok(guard) = Arc::clone(&turn.queue).try_lock_owned() {
            turn.guard = Some(guard);
            return Some((turn, false));
        }
        let lock = Arc::clone(&turn.queue).lock_owned();
        turn.guard = Some(tokio::time::timeout_at(deadline, lock).await.ok()?);
        Some((turn, true))
    }
}

impl Drop for QueueTurn {
    fn drop(&mut self) {
        // Let the next in line go, then forget the line if nobody else is in it.
        drop(self.guard.take());
        let mut queues = self
            .limiter
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let alone = Arc::strong_count(&self.queue) == 2;
        if alone
            && queues
                .get(&self.name)
                .is_some_and(|q| Arc::ptr_eq(q, &self.queue))
        {
            queues.remove(&self.name);
        }
    }
}
