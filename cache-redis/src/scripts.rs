//! The Lua scripts. Each runs in one round trip and atomically; none runs on a hit.

use std::sync::LazyLock;

use redis::Script;

/// Functions shared by the scripts.
const PRELUDE: &str = r"
-- Advances the invalidation clock: one past its last value, and never behind the server's time in
-- microseconds. If the clock key is ever lost (evicted, deleted), the next tick still lands after every
-- stamp handed out before, so no entry outlives an invalidation because of it.
local function tick(clock)
  local now = redis.call('TIME')
  local at = math.max(tonumber(redis.call('GET', clock) or '0') + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', clock, at)
  return at
end

-- Keeps at most `cap` records: the oldest go, and the floor rises to the newest one forgotten.
local function trim(records, floor, cap)
  local excess = redis.call('ZCARD', records) - cap
  if excess > 0 then
    local newest_forgotten = redis.call('ZRANGE', records, excess - 1, excess - 1, 'WITHSCORES')[2]
    if tonumber(newest_forgotten) > tonumber(redis.call('GET', floor) or '0') then
      redis.call('SET', floor, newest_forgotten)
    end
    redis.call('ZREMRANGEBYRANK', records, 0, excess - 1)
  end
end

-- True when something invalidated after `stamp` reaches an entry with the given record names (its tags
-- and its key, from index `first` of ARGV).
local function superseded(stamp, records, floor, clock, first)
  local lowest = tonumber(redis.call('GET', floor) or '0')
  if stamp < lowest then return true end
  -- Records gone while the clock says there were some (evicted by an allkeys-* policy): only what
  -- started after every tick so far is safe.
  if redis.call('EXISTS', records) == 0 and lowest < tonumber(redis.call('GET', clock) or '0') then
    if stamp < tonumber(redis.call('GET', clock)) then return true end
  end
  for i = first, #ARGV do
    local at = redis.call('ZSCORE', records, ARGV[i])
    if at and tonumber(at) > stamp then return true end
  end
  return false
end

-- The eight little-endian bytes of a clock value (exact: values stay below 2^53).
local function le64(n)
  local bytes = {}
  for i = 1, 8 do
    bytes[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(bytes))
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// Stores a fill's entry unless an invalidation since the fill started supersedes it.
///
/// KEYS: entry, records, floor, clock. ARGV: stamp, ttl in ms, value, then the record names to check (the
/// entry's tags and its key). Returns 1 when stored, 0 when superseded.
pub(crate) static PUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if superseded(tonumber(ARGV[1]), KEYS[2], KEYS[3], KEYS[4], 4) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
return 1
",
    )
});

/// Stores a value produced by a write: records it like an invalidation of the key (so fills that started
/// earlier cannot overwrite it) and stores the entry stamped with that tick, spliced into the envelope.
///
/// KEYS: entry, records, floor, clock. ARGV: base stamp (empty: none), ttl in ms, envelope bytes before the
/// stamp, envelope bytes after it, record cap, the key's record name, then the tags' record names. With a
/// base, nothing happens when the key or a tag was invalidated or updated after it. Returns the entry's
/// stamp (the update's tick) when stored, 0 when superseded.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if ARGV[1] ~= '' and superseded(tonumber(ARGV[1]), KEYS[2], KEYS[3], KEYS[4], 6) then return 0 end
local at = tick(KEYS[4])
redis.call('ZADD', KEYS[2], at, ARGV[6])
redis.call('SET', KEYS[1], ARGV[3] .. le64(at) .. ARGV[4], 'PX', ARGV[2])
trim(KEYS[2], KEYS[3], tonumber(ARGV[5]))
return at
",
    )
});

/// Records an invalidation of tags or keys: one clock tick, one record per name, whatever the number of
/// entries that carry them; deletes the given entries; trims the records to their cap.
///
/// KEYS: clock, records, floor, then entries to delete. ARGV: record cap, then record names. Returns the
/// invalidation's clock value.
pub(crate) static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local at = tick(KEYS[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[2], at, ARGV[i]) end
for i = 4, #KEYS do redis.call('UNLINK', KEYS[i]) end
trim(KEYS[2], KEYS[3], tonumber(ARGV[1]))
return at
",
    )
});

/// Makes every entry filled so far gone: raises the floor to a new clock tick and drops the records (the
/// floor covers them). The entries themselves are then unlinked by a `SCAN` of the prefix.
///
/// KEYS: clock, records, floor. Returns the new floor.
pub(crate) static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local at = tick(KEYS[1])
redis.call('SET', KEYS[3], at)
redis.call('UNLINK', KEYS[2])
return at
",
    )
});

/// Claims the fill of a key for a lease, unless another token holds it.
///
/// KEYS: the claim. ARGV: the caller's token, the lease in ms. Returns 1 when the caller holds the claim
/// (newly, or still: its lease is renewed), 0 when another token does.
pub(crate) static CLAIM_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Gives a fill claim back if it is still the caller's.
///
/// KEYS: the claim. ARGV: the caller's token. Returns 1 when released, 0 when the claim had lapsed or
/// another process held it.
pub(crate) static RELEASE_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});
