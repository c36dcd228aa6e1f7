//! The LLM cache policy: key from [`cache_key`], TTL from the response's hint, no tags, no writes.

use std::time::Duration;

use cache_core::{NoTags, Policy, TtlPolicy};

use super::{cache_key, ChatRequest, ChatResponse};

/// How long an answer is reused when the response gives no hint.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The policy [`llm_policy`] builds.
pub type LlmPolicy = Policy<fn(&ChatRequest) -> Option<String>, NoTags, TtlFromHint>;

/// Caches reusable chat requests (see [`cache_key`]) for their response's `cache_ttl_secs`, or
/// `default_ttl` without one. A hint of 0 still shares one call among concurrent identical requests, but
/// stores nothing.
pub fn llm_policy(default_ttl: Duration) -> LlmPolicy {
    let key: fn(&ChatRequest) -> Option<String> = cache_key;
    Policy::new(key).ttl(TtlFromHint {
        default: default_ttl,
    })
}

/// TTL of an answer: [`ChatResponse::cache_ttl_secs`] when present, `default` otherwise.
#[derive(Debug, Clone, Copy)]
pub struct TtlFromHint {
    /// The TTL of answers without a hint.
    pub default: Duration,
}

impl TtlPolicy<ChatResponse> for TtlFromHint {
    fn ttl(&self, response: &ChatResponse) -> Duration {
        response
            .cache_ttl_secs
            .map_or(self.default, Duration::from_secs)
    }
}
