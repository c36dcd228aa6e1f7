//! The budget of one process: the state of every bucket in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::budget::{
    millis, Admission, Effects, Guard, Limit, Ticket, TokenVerdict, WaitReason, INVALID_SLOTS,
    INVALID_SLOT_MS, PROBE_LEASE,
};

/// Admissions between two sweeps of idle state.
const SWEEP_EVERY: u64 = 4_096;

/// Buckets, holds, rejected tokens and invalid answers of one process. Times are milliseconds since
/// the budget was made, on tokio's clock.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    origin: Instant,
    guard: Guard,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Grant times, newest first, of each bucket (`b:<identity>:<bucket>`) and token (`g:<identity>`).
    logs: HashMap<String, Log>,
    /// Until when a bucket, a token (same names) or everything (`all`) is held.
    holds: HashMap<String, u64>,
    /// Tokens answered 401: refused until the time given, then probed.
    rejected: HashMap<String, u64>,
    /// Invalid answers per slot, oldest first.
    invalid: VecDeque<(u64, u64)>,
    admissions: u64,
}

#[derive(Debug, Default)]
struct Log {
    times: VecDeque<u64>,
    window: u64,
}

impl MemoryBudget {
    pub(crate) fn new(guard: Guard) -> Self {
        Self {
            origin: Instant::now(),
            guard,
            state: Mutex::default(),
        }
    }

    fn now(&self) -> u64 {
        millis(self.origin.elapsed())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn admit(&self, ticket: &Ticket<'_>) -> Admission {
        let now = self.now();
        let mut state = self.state();
        let State {
            logs,
            holds,
            rejected,
            invalid,
            admissions,
        } = &mut *state;
        let rejected_until = rejected.get(ticket.identity).copied();
        if let Some(until) = rejected_until.filter(|until| now < *until) {
            return Admission::TokenRejected {
                retry_in: Duration::from_millis(until - now),
            };
        }
        if let Some(release) = guard_release(invalid, now, self.guard.invalid_limit) {
            return Admission::Guarded {
                retry_in: Duration::from_millis(release.saturating_sub(now).max(1)),
            };
        }
        let bucket = format!("b:{}:{}", ticket.identity, ticket.bucket);
        let global = format!("g:{}", ticket.identity);
        let mut wait = (0, WaitReason::Bucket);
        let mut consider = |until: u64, reason| {
            if until > now && until - now > wait.0 {
                wait = (until - now, reason);
            }
        };
        let global_hold = ticket.global_limit.map(|_| global.as_str());
        for (name, reason) in [
            (Some("all"), WaitReason::Everything),
            (global_hold, WaitReason::Global),
            (Some(bucket.as_str()), WaitReason::Bucket),
        ] {
            if let Some(until) = name.and_then(|name| holds.get(name)) {
                consider(*until, reason);
            }
        }
        for (name, limit, reason) in [
            (&bucket, ticket.bucket_limit, WaitReason::Bucket),
            (&global, ticket.global_limit, WaitReason::Global),
        ] {
            if let (Some(limit), Some(log)) = (limit, logs.get(name.as_str())) {
                if let Some(oldest) = log.times.get(limit.count as usize - 1) {
                    consider(oldest + limit.window_ms(), reason);
                }
            }
        }
        if wait.0 > 0 {
            return Admission::Wait {
                wait: Duration::from_millis(wait.0),
                reason: wait.1,
            };
        }
        for (name, limit) in [(bucket, ticket.bucket_limit), (global, ticket.global_limit)] {
            if let Some(limit) = limit {
                logs.entry(name).or_default().push(now, limit);
            }
        }
        let probe = rejected_until.is_some();
        if probe {
            rejected.insert(ticket.identity.to_owned(), now + millis(PROBE_LEASE));
        }
        *admissions += 1;
        if *admissions % SWEEP_EVERY == 0 {
            let forget_rejected = millis(self.guard.token_backoff) + 3_600_000;
            logs.retain(|_, log| log.times.front().is_some_and(|t| t + log.window > now));
            holds.retain(|_, until| *until > now);
            rejected.retain(|_, until| until.saturating_add(forget_rejected) > now);
        }
        Admission::Granted { at: now, probe }
    }

    pub(crate) fn observe(&self, ticket: &Ticket<'_>, effects: &Effects) {
        let now = self.now();
        let mut state = self.state();
        let mut hold = |name: String, wait: Option<Duration>| {
            if let Some(wait) = wait {
                let until = now + millis(wait);
                let held = state.holds.entry(name).or_default();
                *held = (*held).max(until);
            }
        };
        hold(
            format!("b:{}:{}", ticket.identity, ticket.bucket),
            effects.hold_bucket,
        );
        hold(format!("g:{}", ticket.identity), effects.hold_global);
        hold("all".to_owned(), effects.hold_everything);
        if let (Some(at), Some(limit)) = (effects.adopt, ticket.bucket_limit) {
            let name = format!("b:{}:{}", ticket.identity, ticket.bucket);
            let log = state.logs.entry(name).or_default();
            // Never older than the newest grant: the log stays newest first (and errs on waiting).
            let at = log.times.front().map_or(at, |newest| at.max(*newest));
            log.push(at, limit);
        }
        if effects.invalid {
            let slot = now / INVALID_SLOT_MS;
            match state.invalid.back_mut() {
                Some((last, count)) if *last == slot => *count += 1,
                _ => state.invalid.push_back((slot, 1)),
            }
        }
        match effects.token {
            TokenVerdict::Unchanged => {}
            TokenVerdict::Rejected => {
                let until = now + millis(self.guard.token_backoff);
                state.rejected.insert(ticket.identity.to_owned(), until);
            }
            TokenVerdict::Accepted => {
                state.rejected.remove(ticket.identity);
            }
        }
    }

    /// Gives back the grant made at `at`: its request was never sent.
    pub(crate) fn refund(&self, ticket: &Ticket<'_>, at: u64) {
        let mut state = self.state();
        let bucket = ticket
            .bucket_limit
            .map(|_| format!("b:{}:{}", ticket.identity, ticket.bucket));
        let global = ticket
            .global_limit
            .map(|_| format!("g:{}", ticket.identity));
        for name in [bucket, global].into_iter().flatten() {
            if let Some(log) = state.logs.get_mut(&name) {
                if let Some(position) = log.times.iter().position(|t| *t == at) {
                    log.times.remove(position);
                }
            }
        }
    }
}

impl Log {
    /// Records a grant at `at`, keeping the `limit.count` newest.
    fn push(&mut self, at: u64, limit: Limit) {
        self.times.push_front(at);
        self.times.truncate(limit.count as usize);
        self.window = limit.window_ms();
    }
}

/// When the invalid answers of the window drop below `limit`, if they are at it now. Forgets slots that
/// left the window.
fn guard_release(invalid: &mut VecDeque<(u64, u64)>, now: u64, limit: u32) -> Option<u64> {
    let slot = now / INVALID_SLOT_MS;
    while invalid
        .front()
        .is_some_and(|(first, _)| first + INVALID_SLOTS < slot)
    {
        invalid.pop_front();
    }
    let mut total: u64 = invalid.iter().map(|(_, count)| count).sum();
    let limit = u64::from(limit);
    if total < limit {
        return None;
    }
    for (first, count) in invalid.iter() {
        total -= count;
        if total < limit {
            return Some((first + INVALID_SLOTS + 1) * INVALID_SLOT_MS);
        }
    }
    Some(now + INVALID_SLOT_MS)
}
