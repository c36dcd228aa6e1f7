//! The budget shared by every process of a bot: the same state as [`MemoryBudget`](super::memory),
//! in Redis under the store's prefix, one script per admission.
//!
//! | key (under `{prefix}:`) | type | holds |
//! |---|---|---|
//! | `rl:b:<token>:<bucket>` | list, newest first, expires with the window | grant times of a bucket (ms, Redis's clock) |
//! | `rl:g:<token>` | same | grant times of a token across its routes |
//! | `rl:bh:<token>:<bucket>`, `rl:gh:<token>`, `rl:all` | string with a TTL | a hold of a bucket, a token, everything |
//! | `rl:inv` | hash, slot → count | invalid answers per 10 s slot |
//! | `rl:guard` | string with a TTL | set while invalid answers are at the guard's limit |
//! | `rl:bad:<token>` | string | until when a token answered 401 is refused (then one probe) |
//!
//! `<token>` is the token's one-way fingerprint. Times come from Redis (`TIME`), so the machines'
//! clocks never matter.

use std::sync::LazyLock;
use std::time::Duration;

use cache_core::Error;
use cache_redis::redis::Script;
use cache_redis::RedisScripts;

use super::budget::{
    millis, Admission, Effects, Guard, Ticket, TokenVerdict, WaitReason, INVALID_SLOTS,
    INVALID_SLOT_MS, PROBE_LEASE,
};

const NOW: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%d', x) end
local function grant_time(entry) return tonumber(string.match(entry, '^%d+')) end
";

/// KEYS: bucket log, bucket hold, global log, global hold, everything hold, guard, rejected token.
/// ARGV: bucket count (0: none), bucket window ms, global count (0: exempt, global holds too), global
/// window ms, probe lease ms, grant id. Log entries are `<ms>:<grant id>`. Returns `{0, now, probe}` granted, `{1, wait, reason}` (1 bucket, 2 global, 3 all),
/// `{2, retry_in}` token rejected, `{3, retry_in}` guarded.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local bad = redis.call('GET', KEYS[7])
if bad then
  bad = tonumber(bad)
  if bad and now < bad then return {{2, bad - now}} end
end
local guard = redis.call('PTTL', KEYS[6])
if guard > 0 then return {{3, guard}} end
local wait, reason = 0, 1
local function held(key, why)
  local ttl = redis.call('PTTL', key)
  if ttl > wait then wait = ttl; reason = why end
end
local bc, bw = tonumber(ARGV[1]), tonumber(ARGV[2])
local gc, gw = tonumber(ARGV[3]), tonumber(ARGV[4])
held(KEYS[5], 3); held(KEYS[2], 1)
if gc > 0 then held(KEYS[4], 2) end
local function logged(key, count, window, why)
  if count <= 0 then return end
  local oldest = redis.call('LINDEX', key, count - 1)
  if oldest then
    local w = grant_time(oldest) + window - now
    if w > wait then wait = w; reason = why end
  end
end
logged(KEYS[1], bc, bw, 1); logged(KEYS[3], gc, gw, 2)
if wait > 0 then return {{1, wait, reason}} end
local function push(key, count, window)
  if count <= 0 then return end
  redis.call('LPUSH', key, ms(now) .. ':' .. ARGV[6])
  redis.call('LTRIM', key, 0, count - 1)
  redis.call('PEXPIRE', key, window)
end
push(KEYS[1], bc, bw); push(KEYS[3], gc, gw)
local probe = 0
if bad then
  redis.call('SET', KEYS[7], ms(now + tonumber(ARGV[5])), 'KEEPTTL')
  probe = 1
end
return {{0, now, probe}}"
    ))
});

/// KEYS: bucket log, bucket hold, global hold, everything hold, invalid counts, guard, rejected token.
/// ARGV: holds in ms for the bucket, the token, everything (0: none); adopted grant time (0: none),
/// bucket count, bucket window ms; invalid (0/1), invalid limit; token verdict (0 unchanged,
/// 1 rejected, 2 accepted), back-off ms; grant id.
static OBSERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local function hold(key, wait)
  wait = tonumber(wait)
  if wait > 0 and redis.call('PTTL', key) < wait then redis.call('SET', key, 1, 'PX', wait) end
end
hold(KEYS[2], ARGV[1]); hold(KEYS[3], ARGV[2]); hold(KEYS[4], ARGV[3])
local adopt = tonumber(ARGV[4])
if adopt > 0 then
  -- Never older than the newest grant: the log stays newest first (and errs on waiting).
  local newest = redis.call('LINDEX', KEYS[1], 0)
  if newest and grant_time(newest) > adopt then adopt = grant_time(newest) end
  redis.call('LPUSH', KEYS[1], ms(adopt) .. ':' .. ARGV[11])
  redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[5]) - 1)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]))
end
if ARGV[7] == '1' then
  local slot = math.floor(now / {INVALID_SLOT_MS})
  redis.call('HINCRBY', KEYS[5], slot, 1)
  redis.call('PEXPIRE', KEYS[5], {window_ms})
  local fields = redis.call('HGETALL', KEYS[5])
  local slots, total = {{}}, 0
  for i = 1, #fields, 2 do
    local s, c = tonumber(fields[i]), tonumber(fields[i + 1])
    if s + {INVALID_SLOTS} < slot then
      redis.call('HDEL', KEYS[5], fields[i])
    else
      table.insert(slots, {{s, c}})
      total = total + c
    end
  end
  local limit = tonumber(ARGV[8])
  if total >= limit then
    table.sort(slots, function(a, b) return a[1] < b[1] end)
    local release = now + {INVALID_SLOT_MS}
    for _, entry in ipairs(slots) do
      total = total - entry[2]
      if total < limit then
        release = (entry[1] + {INVALID_SLOTS} + 1) * {INVALID_SLOT_MS}
        break
      end
    end
    redis.call('SET', KEYS[6], 1, 'PX', math.max(1, release - now))
  end
end
if ARGV[9] == '1' then
  local backoff = tonumber(ARGV[10])
  redis.call('SET', KEYS[7], ms(now + backoff), 'PX', backoff + 3600000)
elseif ARGV[9] == '2' then
  redis.call('DEL', KEYS[7])
end
return 1",
        window_ms = (INVALID_SLOTS + 2) * INVALID_SLOT_MS,
    ))
});

/// KEYS: bucket log, global log. ARGV: the grant's id, whether to look in each log (0/1). Logs hold at
/// most their limit's count of entries.
static REFUND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local suffix = ':' .. ARGV[1]
for i = 1, 2 do
  if ARGV[i + 1] == '1' then
    for _, entry in ipairs(redis.call('LRANGE', KEYS[i], 0, -1)) do
      if string.sub(entry, -#suffix) == suffix then
        redis.call('LREM', KEYS[i], 1, entry)
        break
      end
    end
  end
end
return 1",
    )
});

/// The budget in Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisBudget {
    scripts: RedisScripts,
    guard: Guard,
}

struct Names {
    bucket_log: String,
    bucket_hold: String,
    global_log: String,
    global_hold: String,
    everything: String,
    invalid: String,
    guard: String,
    rejected: String,
}

impl RedisBudget {
    pub(crate) fn new(scripts: RedisScripts, guard: Guard) -> Self {
        Self { scripts, guard }
    }

    fn names(&self, ticket: &Ticket<'_>) -> Names {
        let key = |name: String| self.scripts.key(&name);
        Names {
            bucket_log: key(format!("rl:b:{}:{}", ticket.identity, ticket.bucket)),
            bucket_hold: key(format!("rl:bh:{}:{}", ticket.identity, ticket.bucket)),
            global_log: key(format!("rl:g:{}", ticket.identity)),
            global_hold: key(format!("rl:gh:{}", ticket.identity)),
            everything: key("rl:all".to_owned()),
            invalid: key("rl:inv".to_owned()),
            guard: key("rl:guard".to_owned()),
            rejected: key(format!("rl:bad:{}", ticket.identity)),
        }
    }

    /// One round trip.
    pub(crate) async fn admit(&self, ticket: &Ticket<'_>) -> Result<Admission, Error> {
        let names = self.names(ticket);
        let (bucket_count, bucket_window) = ticket
            .bucket_limit
            .map_or((0, 1), |limit| (limit.count, limit.window_ms()));
        let (global_count, global_window) = ticket
            .global_limit
            .map_or((0, 1), |limit| (limit.count, limit.window_ms()));
        let mut invocation = ADMIT.prepare_invoke();
        invocation
            .key(&names.bucket_log)
            .key(&names.bucket_hold)
            .key(&names.global_log)
            .key(&names.global_hold)
            .key(&names.everything)
            .key(&names.guard)
            .key(&names.rejected)
            .arg(bucket_count)
            .arg(bucket_window)
            .arg(global_count)
            .arg(global_window)
            .arg(millis(PROBE_LEASE))
            .arg(ticket.grant);
        let reply: Vec<i64> = self.scripts.invoke("rate limit", &invocation).await?;
        let number = |index: usize| {
            reply
                .get(index)
                .and_then(|value| u64::try_from(*value).ok())
                .unwrap_or(0)
        };
        let wait = |index| Duration::from_millis(number(index).max(1));
        Ok(match number(0) {
            0 => Admission::Granted {
                at: number(1),
                probe: number(2) == 1,
            },
            1 => Admission::Wait {
                wait: wait(1),
                reason: match number(2) {
                    2 => WaitReason::Global,
                    3 => WaitReason::Everything,
                    _ => WaitReason::Bucket,
                },
            },
            2 => Admission::TokenRejected { retry_in: wait(1) },
            _ => Admission::Guarded { retry_in: wait(1) },
        })
    }

    pub(crate) async fn observe(
        &self,
        ticket: &Ticket<'_>,
        effects: &Effects,
    ) -> Result<(), Error> {
        let names = self.names(ticket);
        let hold = |wait: Option<Duration>| wait.map_or(0, |wait| millis(wait).max(1));
        let (count, window) = ticket
            .bucket_limit
            .map_or((1, 1), |limit| (limit.count, limit.window_ms()));
        let token = match effects.token {
            TokenVerdict::Unchanged => 0,
            TokenVerdict::Rejected => 1,
            TokenVerdict::Accepted => 2,
        };
        let mut invocation = OBSERVE.prepare_invoke();
        invocation
            .key(&names.bucket_log)
            .key(&names.bucket_hold)
            .key(&names.global_hold)
            .key(&names.everything)
            .key(&names.invalid)
            .key(&names.guard)
            .key(&names.rejected)
            .arg(hold(effects.hold_bucket))
            .arg(hold(effects.hold_global))
            .arg(hold(effects.hold_everything))
            .arg(
                effects
                    .adopt
                    .filter(|_| ticket.bucket_limit.is_some())
                    .unwrap_or(0),
            )
            .arg(count)
            .arg(window)
            .arg(u8::from(effects.invalid))
            .arg(self.guard.invalid_limit)
            .arg(token)
            .arg(millis(self.guard.token_backoff))
            .arg(ticket.grant);
        self.scripts
            .invoke::<i64>("rate limit answer", &invocation)
            .await
            .map(drop)
    }

    /// Gives back the grant `ticket.grant`, wherever the admission put it.
    pub(crate) async fn refund(&self, ticket: &Ticket<'_>) -> Result<(), Error> {
        let names = self.names(ticket);
        let mut invocation = REFUND.prepare_invoke();
        invocation
            .key(&names.bucket_log)
            .key(&names.global_log)
            .arg(ticket.grant)
            .arg(u8::from(ticket.bucket_limit.is_some()))
            .arg(u8::from(ticket.global_limit.is_some()));
        self.scripts
            .invoke::<i64>("rate limit refund", &invocation)
            .await
            .map(drop)
    }
}
