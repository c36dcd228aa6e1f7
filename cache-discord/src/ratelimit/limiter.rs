//! [`Limiter`]: the state behind a [`DiscordRateLimitLayer`](super::DiscordRateLimitLayer): what it
//! learned of each route and bucket, the line of each bucket, and the budget that admits requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// How often a request checks whether the discoveries its bucket leaves room for have answered.
const DISCOVERY_POLL: Duration = Duration::from_millis(5);

/// Routes remembered at most; past it the map starts over (each route then finds its bucket again).
const MAX_ROUTES: usize = 4_096;

/// What answers taught about a route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RouteKnown {
    /// It answers this bucket hash.
    Bucket(Arc<str>),
    /// Successful answers carried no bucket: only the global limit applies.
    Unlimited,
}

/// A bucket hash's limit and window (the longest reset it announced), shared by its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    limit: u32,
    window: Duration,
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
    routes: Mutex<HashMap<String, RouteKnown>>,
    shapes: Mutex<HashMap<Arc<str>, Shape>>,
    queues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests in flight to routes whose bucket is unknown, per token and major parameter.
    discoveries: Mutex<HashMap<String, u32>>,
    grants: AtomicU64,
    /// Refunds sent to Redis and maybe not applied yet: admissions wait for them, so a grant given
    /// back is free for the next request of this process.
    #[cfg(feature = "redis")]
    refunds: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A request's admission: it may be sent. Dropped before [`sent`](Permit::sent), its grant is given
/// back; while the route's bucket is unknown, it keeps the route's line until its answer is read.
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
    grant: Grant,
    probe: bool,
    discovering: Option<(QueueTurn, Discovery)>,
    sent: bool,
}

/// What a grant took, to give it back.
#[derive(Debug, Clone)]
struct Grant {
    identity: String,
    bucket: String,
    bucket_limit: Option<Limit>,
    global_limit: Option<Limit>,
    id: u64,
    at: u64,
    source: Source,
}

impl Grant {
    fn ticket(&self) -> Ticket<'_> {
        Ticket {
            identity: &self.identity,
            bucket: &self.bucket,
            bucket_limit: self.bucket_limit,
            global_limit: self.global_limit,
            grant: self.id,
        }
    }
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
    pub(crate) fn new(mut config: RateLimitConfig) -> Self {
        // The fields are public: keep them in range here too.
        config.global_limit = config.global_limit.max(1);
        config.invalid_request_limit = config.invalid_request_limit.max(1);
        config.instances = config.instances.max(1);
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
            shapes: Mutex::default(),
            queues: Mutex::default(),
            discoveries: Mutex::default(),
            grants: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            refunds: Mutex::default(),
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
        // Without Redis, each process keeps to its share of the guard's count too: the ban is per
        // address, and the processes may share one.
        let share = Guard {
            invalid_limit: (guard.invalid_limit / limiter.config.instances).max(1),
            ..guard
        };
        limiter.memory = MemoryBudget::new(share);
        limiter
    }

    pub(crate) fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// The route's bucket state name and limit, if its bucket is known; `None` while it is not.
    fn resolve(&self, route: &RequestRoute) -> Option<(String, Option<Limit>)> {
        let known = {
            let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            routes.get(&route.route).cloned()?
        };
        let unbucketed = || (format!("route:{}:{}", route.route, route.major), None);
        Some(match known {
            RouteKnown::Unlimited => unbucketed(),
            RouteKnown::Bucket(hash) => {
                let shapes = self.shapes.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(shape) = shapes.get(&hash).copied() else {
                    return Some(unbucketed());
                };
                let limit = Limit {
                    count: shape.limit,
                    window: shape.window + self.config.offset,
                };
                (format!("{hash}:{}", route.major), Some(limit))
            }
        })
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
    /// Dropping the future gives up its place in line; a grant made for it is given back (in Redis,
    /// by a task spawned on the current runtime).
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        route: &RequestRoute,
        deadline: Instant,
        max_wait: Duration,
    ) -> Result<Permit, RateLimitError> {
        let started = Instant::now();
        // Whether this request waited behind others or for a limit (not for Redis's answer).
        let mut waited = false;
        let would_wait = |wait: Duration, reason: &'static str| {
            self.stats.refused();
            tracing::debug!(bucket = %route.name(), ?wait, reason, "discord rate limit: turn past the bound; not sent");
            RateLimitError::WouldWait {
                bucket: route.name(),
                reason,
                wait,
                max_wait,
            }
        };
        loop {
            let resolved = self.resolve(route);
            let discovering = resolved.is_none();
            let (bucket, bucket_limit) = resolved
                .unwrap_or_else(|| (format!("route:{}:{}", route.route, route.major), None));
            let line = format!("{}|{bucket}", route.identity);
            let Some((turn, queued)) = QueueTurn::take(self, line, deadline).await else {
                return Err(would_wait(
                    deadline.saturating_duration_since(started),
                    "bucket",
                ));
            };
            waited |= queued;
            if discovering && self.resolve(route).is_some() {
                // Learned while this request waited in line: take the bucket's line instead.
                continue;
            }
            let global_limit = self.global_limit(route);
            let major = format!("{}|{}", route.identity, route.major);
            loop {
                let room = self.discoveries_on(&major);
                if bucket_limit.is_some_and(|limit| room >= limit.count) {
                    // As many discoveries in flight as the bucket allows: wait for their answers.
                    if Instant::now() + DISCOVERY_POLL > deadline {
                        return Err(would_wait(DISCOVERY_POLL, "bucket"));
                    }
                    tokio::time::sleep(DISCOVERY_POLL).await;
                    waited = true;
                    continue;
                }
                let grant = Grant {
                    identity: route.identity.clone(),
                    bucket: bucket.clone(),
                    bucket_limit: bucket_limit.map(|limit| Limit {
                        count: limit.count - room,
                        ..limit
                    }),
                    global_limit,
                    id: self.grants.fetch_add(1, Ordering::Relaxed),
                    at: 0,
                    source: Source::Memory,
                };
                match self.admit(grant).await {
                    (Admission::Granted { at, probe }, mut grant) => {
                        if waited {
                            self.stats.waited(started.elapsed());
                        }
                        grant.at = at;
                        return Ok(Permit {
                            limiter: Arc::clone(self),
                            grant,
                            probe,
                            discovering: discovering.then(|| (turn, Discovery::start(self, major))),
                            sent: false,
                        });
                    }
                    (Admission::Wait { wait, reason }, _) => {
                        if Instant::now() + wait > deadline {
                            return Err(would_wait(wait, reason.as_str()));
                        }
                        tracing::trace!(bucket = %route.name(), ?wait, reason = reason.as_str(), "discord rate limit: waiting");
                        tokio::time::sleep(wait).await;
                        waited = true;
                    }
                    (Admission::TokenRejected { retry_in }, _) => {
                        self.stats.refused();
                        return Err(RateLimitError::TokenRejected { retry_in });
                    }
                    (Admission::Guarded { retry_in }, _) => {
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
    /// this process's share when Redis should have answered. Returns the grant with its source.
    async fn admit(self: &Arc<Self>, grant: Grant) -> (Admission, Grant) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let refunds =
                std::mem::take(&mut *self.refunds.lock().unwrap_or_else(PoisonError::into_inner));
            for refund in refunds {
                // Each is one script under the store's timeout.
                let _ = refund.await;
            }
            let mut grant = grant;
            grant.source = Source::Redis;
            // If this future is dropped, or Redis's answer is lost after the script ran, the grant
            // it may have made is given back by its id.
            let mut pending = PendingAdmission {
                limiter: Arc::clone(self),
                grant: Some(grant.clone()),
            };
            let admitted = redis.admit(&grant.ticket()).await;
            if admitted.is_ok() {
                pending.grant = None;
            }
            drop(pending);
            match admitted {
                Ok(admission) => return (admission, grant),
                Err(error) => {
                    self.stats.fallback();
                    tracing::debug!(%error, "discord rate limit: Redis not asked; pacing this process alone");
                    let instances = self.config.instances;
                    grant.source = Source::Memory;
                    grant.bucket_limit = grant.bucket_limit.map(|limit| limit.share(instances));
                    grant.global_limit = grant.global_limit.map(|limit| limit.share(instances));
                    return (self.memory.admit(&grant.ticket()), grant);
                }
            }
        }
        (self.memory.admit(&grant.ticket()), grant)
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
        self.learn(route, status, &observed);
        let (bucket, bucket_limit) = self
            .resolve(route)
            .unwrap_or_else(|| (permit.grant.bucket.clone(), permit.grant.bucket_limit));
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
        // A 401 on a route with a token in its path (a deleted webhook, an expired interaction) is
        // about that token, not the `Authorization` one.
        if route.identity != "none" && !route.path_token {
            if status == StatusCode::UNAUTHORIZED {
                effects.token = TokenVerdict::Rejected;
                tracing::warn!(bucket = %route.name(), backoff = ?self.config.invalid_token_backoff, "discord rate limit: Discord answered 401; refusing this token's requests locally for the back-off");
            } else if permit.probe {
                effects.token = TokenVerdict::Accepted;
            }
        }
        if permit.discovering.is_some() && bucket_limit.is_some() && bucket != permit.grant.bucket {
            effects.adopt = Some(permit.grant.at);
        }
        if !effects.is_empty() {
            let ticket = Ticket {
                identity: &permit.grant.identity,
                bucket: &bucket,
                bucket_limit,
                global_limit: permit.grant.global_limit,
                grant: permit.grant.id,
            };
            self.apply(&ticket, effects, permit.grant.source).await;
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

    /// Updates what is known of `route` and its bucket from an answer.
    fn learn(&self, route: &RequestRoute, status: StatusCode, observed: &Observed) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let known = routes.get(&route.route).cloned();
        let update = match (observed.bucket.as_deref(), observed.limit) {
            (Some(hash), Some(limit)) => {
                let hash: Arc<str> = match &known {
                    Some(RouteKnown::Bucket(known)) if &**known == hash => Arc::clone(known),
                    _ => hash.into(),
                };
                let reset_after = observed.reset_after.unwrap_or_default();
                let mut shapes = self.shapes.lock().unwrap_or_else(PoisonError::into_inner);
                if shapes.len() >= MAX_ROUTES && !shapes.contains_key(&hash) {
                    shapes.clear();
                }
                // The window only grows: an answer late in a window announces less than all of it.
                let shape = shapes.entry(Arc::clone(&hash)).or_insert(Shape {
                    limit,
                    window: Duration::ZERO,
                });
                shape.limit = limit;
                shape.window = shape.window.max(Duration::from_millis(
                    super::budget::millis(reset_after).max(1),
                ));
                Some(RouteKnown::Bucket(hash))
            }
            _ if known.is_none() && status.is_success() => Some(RouteKnown::Unlimited),
            _ => None,
        };
        if let Some(learned) = update.filter(|learned| known.as_ref() != Some(learned)) {
            if known.is_none() {
                tracing::debug!(route = %route.route, bucket = ?learned, "discord rate limit: bucket learned");
            }
            if routes.len() >= MAX_ROUTES {
                routes.clear();
            }
            routes.insert(route.route.clone(), learned);
        }
    }

    /// Gives back a grant whose request was never sent.
    fn refund(self: &Arc<Self>, grant: Grant) {
        match grant.source {
            Source::Memory => self.memory.refund(&grant.ticket(), grant.at),
            #[cfg(feature = "redis")]
            Source::Redis => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let Some(redis) = self.redis.clone() else {
                    return;
                };
                let refund = runtime.spawn(async move {
                    let _ = redis.refund(&grant.ticket()).await;
                });
                let mut refunds = self.refunds.lock().unwrap_or_else(PoisonError::into_inner);
                refunds.retain(|refund| !refund.is_finished());
                refunds.push(refund);
            }
        }
    }
}

/// An admission asked of Redis and not yet answered: dropped armed, it gives back what the script may
/// have granted.
#[cfg(feature = "redis")]
struct PendingAdmission {
    limiter: Arc<Limiter>,
    grant: Option<Grant>,
}

#[cfg(feature = "redis")]
impl Drop for PendingAdmission {
    fn drop(&mut self) {
        if let Some(grant) = self.grant.take() {
            self.limiter.refund(grant);
        }
    }
}

impl Permit {
    /// The request is about to be handed to the client: its grant is used.
    pub(crate) fn sent(&mut self) {
        self.sent = true;
        self.limiter.stats.admitted();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.sent {
            self.limiter.refund(self.grant.clone());
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
