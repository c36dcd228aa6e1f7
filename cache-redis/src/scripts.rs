//! The three Lua scripts. Each runs in one round trip and atomically; none runs on a hit.

use std::sync::LazyLock;

use redis::Script;

/// Advances the invalidation clock: one past its last value, and never behind the server's time in
/// microseconds. If the clock key is ever lost (evicted, deleted), the next tick still lands after every
/// stamp handed out before, so no entry outlives an invalidation because of it.
const TICK: &str = r"
local function tick(clock)
  local now = redis.call('TIME')
  local at = math.max(tonumber(redis.call('GET', clock) or '0') + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', clock, at)
  return at
end
";

/// Stores an entry unless its fill was superseded by an invalidation.
///
/// KEYS: entry, records, floor, clock. ARGV: stamp, ttl in ms, value, then the record names to check (the
/// entry's tags and its key). Returns 1 when stored, 0 when superseded.
pub(crate) static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stamp = tonumber(ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
if stamp < floor then return 0 end
-- Records gone while the clock says there were some (evicted by an allkeys-* policy): only a fill that
-- started after every tick so far may land.
if redis.call('EXISTS', KEYS[2]) == 0 and floor < tonumber(redis.call('GET', KEYS[4]) or '0') then
  if stamp < tonumber(redis.call('GET', KEYS[4])) then return 0 end
end
for i = 4, #ARGV do
  local at = redis.call('ZSCORE', KEYS[2], ARGV[i])
  if at and tonumber(at) > stamp then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
return 1
",
    )
});

/// Records an invalidation of tags or keys: one clock tick, one record per name, whatever the number of
/// entries that carry them; deletes the given entries; trims the records to their cap.
///
/// KEYS: epoch, records, floor, then entries to delete. ARGV: record cap, then record names. Returns the
/// invalidation's clock value.
pub(crate) static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    script_with_tick(
        r"
local at = tick(KEYS[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[2], at, ARGV[i]) end
for i = 4, #KEYS do redis.call('UNLINK', KEYS[i]) end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[1])
if excess > 0 then
  local newest_forgotten = redis.call('ZRANGE', KEYS[2], excess - 1, excess - 1, 'WITHSCORES')[2]
  if tonumber(newest_forgotten) > tonumber(redis.call('GET', KEYS[3]) or '0') then
    redis.call('SET', KEYS[3], newest_forgotten)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return at
",
    )
});

/// Makes every entry filled so far gone: raises the floor to a new clock tick and drops the records (the
/// floor covers them). The entries themselves are then unlinked by a `SCAN` of the prefix.
///
/// KEYS: epoch, records, floor. Returns the new floor.
pub(crate) static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    script_with_tick(
        r"
local at = tick(KEYS[1])
redis.call('SET', KEYS[3], at)
redis.call('UNLINK', KEYS[2])
return at
",
    )
});

fn script_with_tick(body: &str) -> Script {
    Script::new(&format!("{TICK}{body}"))
}
