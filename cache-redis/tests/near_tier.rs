//! The Redis store's contract tests (`contract/`) again, with a near tier in front of Redis: every
//! guarantee they check holds with copies served in process.

const ON_CLUSTER: bool = false;

fn options_under_test() -> cache_redis::RedisOptions {
    cache_redis::RedisOptions::default().near_capacity(1_000)
}

#[path = "contract/backend.rs"]
mod backend;
#[path = "contract/layer.rs"]
mod layer;
#[path = "contract/outage.rs"]
mod outage;
#[path = "contract/stale.rs"]
mod stale;
#[path = "contract/store.rs"]
mod store;
#[path = "contract/store_node.rs"]
mod store_node;
