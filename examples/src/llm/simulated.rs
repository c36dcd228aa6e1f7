//! [`SimulatedLlm`]: a stand-in for a chat-completion client, so the example runs without network or
//! an API key. It answers after 30 to 50 ms like a (fast) model, samples a different answer per call
//! when `temperature > 0`, and counts calls and tokens so the example can show what the cache saved.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::{ChatRequest, ChatResponse, Usage};

/// The `cache_ttl_secs` hint of answers about the current time (a prompt mentioning "today"): short,
/// so the example can show it expiring.
pub const TIME_SENSITIVE_TTL_SECS: u64 = 2;
/// Answer length when the request sets no `max_tokens`.
const NATURAL_ANSWER_TOKENS: u64 = 48;
/// Tokens a message costs besides its words (role, separators), as providers count them.
const TOKENS_PER_MESSAGE: u64 = 4;

/// What the simulated model rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// A request without messages.
    #[error("chat request to {model:?} has no messages")]
    NoMessages {
        /// The model asked for.
        model: String,
    },
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
}

/// The simulated model: a [`Service`] of [`ChatRequest`]s. Clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct SimulatedLlm {
    counters: Arc<Counters>,
}

impl SimulatedLlm {
    /// A model with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls received so far.
    pub fn calls(&self) -> u64 {
        self.counters.calls.load(Ordering::Relaxed)
    }

    /// Tokens billed so far.
    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.counters.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.counters.completion_tokens.load(Ordering::Relaxed),
        }
    }

    fn answer(&self, request: &ChatRequest, call: u64) -> Result<ChatResponse, LlmError> {
        let question = request
            .messages
            .last()
            .ok_or_else(|| LlmError::NoMessages {
                model: request.model.clone(),
            })?
            .content
            .trim();
        let prompt_tokens = request
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u64 + TOKENS_PER_MESSAGE)
            .sum();
        let completion_tokens = request.max_tokens.map_or(NATURAL_ANSWER_TOKENS, |max| {
            u64::from(max).min(NATURAL_ANSWER_TOKENS)
        });
        // A sampled answer differs per call; a greedy one is the same every time.
        let sample = if request.temperature > 0.0 {
            format!(" (sample {call})")
        } else {
            String::new()
        };
        let usage = Usage {
            prompt_tokens,
            completion_tokens,
        };
        self.counters
            .prompt_tokens
            .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        self.counters
            .completion_tokens
            .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        Ok(ChatResponse {
            content: format!(
                "{}: a {completion_tokens}-token answer to {question:?}{sample}",
                request.model
            ),
            usage,
            cache_ttl_secs: question
                .to_lowercase()
                .contains("today")
                .then_some(TIME_SENSITIVE_TTL_SECS),
        })
    }
}

impl Service<ChatRequest> for SimulatedLlm {
    type Response = ChatResponse;
    type Error = LlmError;
    type Future = Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LlmError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        let call = self.counters.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let this = self.clone();
        // 30 to 50 ms, varying with the prompt so the timings look like a model's.
        let prompt_chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let latency = Duration::from_millis(30 + (prompt_chars % 21) as u64);
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            this.answer(&request, call)
        })
    }
}
