//! The tests of `contract/store.rs` (and the single server's `contract/store_node.rs`) on the Redis
//! store alone; `near_tier.rs` runs them again with a near tier in front of Redis, `cluster.rs` on a
//! Redis Cluster.

const ON_CLUSTER: bool = false;

fn options_under_test() -> cache_redis::RedisOptions {
    cache_redis::RedisOptions::default()
}

#[path = "contract/backend.rs"]
mod backend;
#[path = "contract/store.rs"]
mod store;
#[path = "contract/store_node.rs"]
mod store_node;
