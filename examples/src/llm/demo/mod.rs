//! The LLM example's scenario: identical, equivalent, different and non-deterministic prompts through the
//! cache, recording the calls and tokens each step cost against what it would have cost without it.

mod report;

pub use report::{LlmReport, LlmStep};

use std::collections::BTreeSet;
use std::time::Duration;

use cache_core::{BoxError, Cache, CacheLayer, Stats};
use cache_memory::MemoryStore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

use super::{
    llm_policy, ChatRequest, ChatResponse, LlmPolicy, SimulatedLlm, DEFAULT_TTL,
    TIME_SENSITIVE_TTL_SECS,
};

/// The simulated model's name.
pub const MODEL: &str = "sim-chat-small";

/// The client the example uses: the simulated model behind the cache.
pub type CachedLlm = Cache<SimulatedLlm, MemoryStore<ChatResponse>, LlmPolicy>;

/// The model, the cache in front of it, and both sides' counters.
#[derive(Debug)]
pub struct Setup {
    /// The simulated model (its calls and tokens are what the cache saves).
    pub llm: SimulatedLlm,
    /// The cached client.
    pub service: CachedLlm,
    /// The cache's counters.
    pub stats: Stats,
}

/// A fresh model behind a cache with [`DEFAULT_TTL`].
pub fn setup() -> Setup {
    let llm = SimulatedLlm::new();
    let layer = CacheLayer::new(MemoryStore::new(10_000), llm_policy(DEFAULT_TTL));
    let stats = layer.stats();
    let service = layer.layer(llm.clone());
    Setup {
        llm,
        service,
        stats,
    }
}

/// A deterministic (temperature 0) question with a system prompt.
pub fn question(text: &str) -> ChatRequest {
    ChatRequest::new(MODEL)
        .message("system", "You are a concise assistant.")
        .message("user", text)
        .temperature(0.0)
}
/// Runs the scenario on a fresh [`setup`]. Waits out one short TTL hint, about 2.5 s of the tokio clock.
///
/// # Errors
/// A call that failed (none does in this scenario).
pub async fn run_demo() -> Result<LlmReport, BoxError> {
    let capital = "What is the capital of France?";
    let mut run = Runner::new(setup());
    run.concurrent(
        "20 concurrent identical prompts, temperature 0",
        vec![question(capital); 20],
    )
    .await?;
    let same = ChatRequest::new(MODEL)
        .message(" SYSTEM", "You are a concise assistant.  ")
        .message("User", format!("  {capital}\n"))
        .temperature(-0.0)
        .user("end-user-42");
    run.sequential("same prompt: other spacing, role case, user id", vec![same])
        .await?;
    run.sequential(
        "same prompt, max_tokens 16",
        vec![question(capital).max_tokens(16)],
    )
    .await?;
    let creative = question("Suggest a name for a cat.").temperature(0.8);
    run.sequential(
        "temperature 0.8, 3 times: not cached",
        vec![creative.clone(); 3],
    )
    .await?;
    run.sequential(
        "temperature 0.8, opted in, 3 times",
        vec![creative.cache_nondeterministic(); 3],
    )
    .await?;
    let today = question("What day is it today?");
    run.sequential(
        &format!("time-sensitive, hint {TIME_SENSITIVE_TTL_SECS} s, 2 times"),
        vec![today.clone(); 2],
    )
    .await?;
    let wait = Duration::from_secs(TIME_SENSITIVE_TTL_SECS) + Duration::from_millis(500);
    tokio::time::sleep(wait).await;
    let after = format!("{:.1} s later", wait.as_secs_f64());
    run.sequential(&format!("time-sensitive, {after}: expired"), vec![today])
        .await?;
    run.sequential(
        &format!("first prompt, {after}: default TTL, cached"),
        vec![question(capital)],
    )
    .await?;
    Ok(run.report())
}

/// Sends requests and records what each step cost.
struct Runner {
    setup: Setup,
    steps: Vec<LlmStep>,
}

impl Runner {
    fn new(setup: Setup) -> Self {
        Self {
            setup,
            steps: Vec::new(),
        }
    }

    /// Sends every request at once.
    async fn concurrent(
        &mut self,
        label: &str,
        requests: Vec<ChatRequest>,
    ) -> Result<(), BoxError> {
        let before = self.before();
        let mut calls = JoinSet::new();
        for request in requests {
            calls.spawn(self.setup.service.clone().oneshot(request));
        }
        let mut responses = Vec::new();
        while let Some(response) = calls.join_next().await {
            responses.push(response??);
        }
        self.record(label, before, &responses);
        Ok(())
    }

    /// Sends the requests one after the other.
    async fn sequential(
        &mut self,
        label: &str,
        requests: Vec<ChatRequest>,
    ) -> Result<(), BoxError> {
        let before = self.before();
        let mut responses = Vec::new();
        for request in requests {
            responses.push(self.setup.service.clone().oneshot(request).await?);
        }
        self.record(label, before, &responses);
        Ok(())
    }

    fn before(&self) -> (Instant, u64, u64) {
        let llm = &self.setup.llm;
        (Instant::now(), llm.calls(), llm.usage().total())
    }

    fn record(&mut self, label: &str, before: (Instant, u64, u64), responses: &[ChatResponse]) {
        let (started, calls, tokens) = before;
        let answers: BTreeSet<&str> = responses.iter().map(|r| r.content.as_str()).collect();
        self.steps.push(LlmStep {
            label: label.to_owned(),
            requests: responses.len() as u64,
            calls: self.setup.llm.calls() - calls,
            tokens: self.setup.llm.usage().total() - tokens,
            tokens_without_cache: responses.iter().map(|r| r.usage.total()).sum(),
            distinct_answers: answers.len(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
    }

    fn report(self) -> LlmReport {
        let stats = self.setup.stats.snapshot();
        LlmReport {
            requests: self.steps.iter().map(|s| s.requests).sum(),
            calls: self.setup.llm.calls(),
            tokens: self.setup.llm.usage().total(),
            tokens_without_cache: self.steps.iter().map(|s| s.tokens_without_cache).sum(),
            hits: stats.hits,
            misses: stats.misses,
            dedupes: stats.dedupes,
            passthrough: stats.passthrough,
            steps: self.steps,
        }
    }
}
