//! The tests of `contract/stale.rs` on the Redis store alone; `near_tier.rs` runs them again with a near
//! tier in front of Redis.

const ON_CLUSTER: bool = false;

fn options_under_test() -> cache_redis::RedisOptions {
    cache_redis::RedisOptions::default()
}

#[path = "contract/backend.rs"]
mod backend;
#[path = "contract/stale.rs"]
mod stale;
