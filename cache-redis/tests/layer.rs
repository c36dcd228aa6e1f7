//! The tests of `contract/layer.rs` on the Redis store alone; `near_tier.rs` runs them again with a near
//! tier in front of Redis.

fn options_under_test() -> cache_redis::RedisOptions {
    cache_redis::RedisOptions::default()
}

#[path = "contract/layer.rs"]
mod layer;
