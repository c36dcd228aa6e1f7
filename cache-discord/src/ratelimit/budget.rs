//! What a budget (in memory or in Redis) is asked and answers: one admission per request, the effects
//! of its answer, and refunds for requests admitted but never sent.

use std::time::Duration;

/// A number of requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) count: u32,
    pub(crate) window: Duration,
}

impl Limit {
    /// This limit for one of `instances` processes pacing themselves apart.
    #[cfg(feature = "redis")]
    pub(crate) fn share(self, instances: u32) -> Self {
        Self {
            count: (self.count / instances.max(1)).max(1),
            window: self.window,
        }
    }

    pub(crate) fn window_ms(self) -> u64 {
        u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// One request's claim on the limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket<'a> {
    /// The token's fingerprint.
    pub(crate) identity: &'a str,
    /// The bucket's state name: `<hash>:<major>` once learned, `route:<route>:<major>` before.
    pub(crate) bucket: &'a str,
    /// The bucket's limit, once learned.
    pub(crate) bucket_limit: Option<Limit>,
    /// The token's global limit, unless the route is exempt (then global holds do not apply either).
    pub(crate) global_limit: Option<Limit>,
    /// The grant's id, unique in the process: what a refund in Redis finds it by.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) grant: u64,
}

/// A budget's answer to an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Send now. `at` is the budget's time of the grant (to refund it); `probe` says this request
    /// tests a token Discord rejected.
    Granted { at: u64, probe: bool },
    /// Not before `wait`, for the reason given.
    Wait { wait: Duration, reason: WaitReason },
    /// Discord answered this token 401 lately: refused for `retry_in`.
    TokenRejected { retry_in: Duration },
    /// Too many invalid answers lately: every request refused for `retry_in`.
    Guarded { retry_in: Duration },
}

/// What a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitReason {
    Bucket,
    Global,
    Everything,
}

impl WaitReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Bucket => "bucket",
            Self::Global => "global",
            Self::Everything => "all requests",
        }
    }
}

/// What an answer changes in the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// Hold the ticket's bucket this long.
    pub(crate) hold_bucket: Option<Duration>,
    /// Hold every bucket of the token.
    pub(crate) hold_global: Option<Duration>,
    /// Hold every request.
    pub(crate) hold_everything: Option<Duration>,
    /// Count a request granted at this time (while its bucket was unknown) in the bucket's log.
    pub(crate) adopt: Option<u64>,
    /// The answer was invalid (401, 403, 429 but shared-scope ones).
    pub(crate) invalid: bool,
    /// What the answer says of the token.
    pub(crate) token: TokenVerdict,
}

impl Effects {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What an answer says of its token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TokenVerdict {
    #[default]
    Unchanged,
    /// 401: refuse it for the back-off, then probe.
    Rejected,
    /// A probe succeeded: the token works again.
    Accepted,
}

/// The guard's settings, shared by both budgets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    pub(crate) invalid_limit: u32,
    pub(crate) token_backoff: Duration,
}

/// How long one probe of a rejected token has before another request may probe.
pub(crate) const PROBE_LEASE: Duration = Duration::from_secs(10);

/// Invalid answers are counted in slots of this length over the window.
pub(crate) const INVALID_SLOT_MS: u64 = 10_000;

/// Slots in the invalid-request window (10 minutes).
pub(crate) const INVALID_SLOTS: u64 = 60;

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
