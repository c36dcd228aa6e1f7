//! What the scenario reports: each step's calls and tokens against what they would have been without the
//! cache, as text or JSON.

use std::fmt;

use serde::Serialize;

use super::MODEL;
use crate::llm::DEFAULT_TTL;

/// One step of the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct LlmStep {
    /// What was sent.
    pub label: String,
    /// Requests sent.
    pub requests: u64,
    /// Calls that reached the model.
    pub calls: u64,
    /// Tokens the model billed.
    pub tokens: u64,
    /// Tokens of the answers received: what the model would have billed without the cache.
    pub tokens_without_cache: u64,
    /// Different answers received.
    pub distinct_answers: usize,
    /// Time until the last answer, in milliseconds.
    pub elapsed_ms: f64,
}

/// What the scenario did, step by step and in total.
#[derive(Debug, Clone, Serialize)]
pub struct LlmReport {
    /// Every step, in order.
    pub steps: Vec<LlmStep>,
    /// Requests sent to the cached client.
    pub requests: u64,
    /// Calls that reached the model.
    pub calls: u64,
    /// Tokens the model billed.
    pub tokens: u64,
    /// Tokens the model would have billed without the cache.
    pub tokens_without_cache: u64,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests that called the model for a cacheable key.
    pub misses: u64,
    /// Requests that joined a call in flight for the same key.
    pub dedupes: u64,
    /// Requests not cached (non-deterministic without opt-in).
    pub passthrough: u64,
}
impl fmt::Display for LlmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "LLM calls through the cache: simulated model {MODEL:?} (30-50 ms per call), \
             default TTL {} s\n",
            DEFAULT_TTL.as_secs()
        )?;
        writeln!(
            f,
            " #  {:<48} {:>8} {:>5} {:>17} {:>7} {:>9}",
            "step", "requests", "calls", "tokens (no cache)", "answers", "time"
        )?;
        for (n, step) in self.steps.iter().enumerate() {
            let tokens = format!("{} ({})", step.tokens, step.tokens_without_cache);
            writeln!(
                f,
                "{:>2}  {:<48} {:>8} {:>5} {:>17} {:>7} {:>6.1} ms",
                n + 1,
                step.label,
                step.requests,
                step.calls,
                tokens,
                step.distinct_answers,
                step.elapsed_ms
            )?;
        }
        let saved = |with: u64, without: u64| {
            if without == 0 {
                0.0
            } else {
                100.0 * without.saturating_sub(with) as f64 / without as f64
            }
        };
        writeln!(
            f,
            "\nmodel calls: {} for {} requests ({:.0}% saved)",
            self.calls,
            self.requests,
            saved(self.calls, self.requests)
        )?;
        writeln!(
            f,
            "tokens billed: {} of {} without the cache ({:.0}% saved)",
            self.tokens,
            self.tokens_without_cache,
            saved(self.tokens, self.tokens_without_cache)
        )?;
        write!(
            f,
            "cache: {} hits, {} misses, {} joined a call in flight, {} passed through (temperature > 0, no opt-in)",
            self.hits, self.misses, self.dedupes, self.passthrough
        )
    }
}
