//! The values, keys and policies the criterion benches share, so that a subject and its baseline handle
//! the same data.

use std::time::Duration;

use cache_core::Policy;

/// Bytes in a cached value: the size of a small Discord REST answer.
pub const VALUE_LEN: usize = 190;

/// Distinct keys the hit benches cycle through.
pub const KEYS: u64 = 1_000;

/// A cached value of [`VALUE_LEN`] bytes.
pub fn value() -> String {
    "v".repeat(VALUE_LEN)
}

/// The cache key of item `id`, as the benches' policies build it.
pub fn key_of(id: u64) -> String {
    format!("item:{id}")
}

/// The keys of items `0..KEYS`, built once for the baselines (the raw store is handed a ready key).
pub fn keys() -> Vec<String> {
    (0..KEYS).map(key_of).collect()
}

/// A key extractor as a function pointer, so that policies have a nameable type.
pub type KeyFn = fn(&u64) -> Option<String>;
/// A tag extractor as a function pointer.
pub type TagsFn = fn(&str, &String) -> Vec<String>;

fn item_key(id: &u64) -> Option<String> {
    Some(key_of(*id))
}

fn no_key(_: &u64) -> Option<String> {
    None
}

/// Every entry's tags: one shared by all entries ([`SHARED_TAG`]) and one of its own (its key).
fn two_tags(key: &str, _: &String) -> Vec<String> {
    vec![SHARED_TAG.to_owned(), key.to_owned()]
}

/// The tag every entry of [`tagged_policy`] carries.
pub const SHARED_TAG: &str = "all";

/// Caches item `id` under [`key_of`] for an hour, with two tags: [`SHARED_TAG`] and the key.
pub fn tagged_policy() -> Policy<KeyFn, TagsFn> {
    Policy::new(item_key as KeyFn)
        .ttl(Duration::from_secs(3600))
        .tags(two_tags as TagsFn)
}

/// Keys every request but stores nothing (TTL zero: "dedupe only"), so every call takes the miss path.
pub fn dedupe_only_policy() -> Policy<KeyFn> {
    Policy::new(item_key as KeyFn).ttl(Duration::ZERO)
}

/// Keys no request, so every call passes straight through to the inner service.
pub fn pass_through_policy() -> Policy<KeyFn> {
    Policy::new(no_key as KeyFn)
}
