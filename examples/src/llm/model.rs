//! Requests and responses of the simulated chat-completion client, shaped like the common chat APIs.

use serde::Serialize;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`, as the caller spelled it.
    pub role: String,
    /// The text.
    pub content: String,
}

/// A chat-completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model's name.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Sampling temperature; 0 picks the most likely token every time (deterministic).
    pub temperature: f32,
    /// Upper bound on the answer's length.
    pub max_tokens: Option<u32>,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// End-user id for the provider's abuse tracking: does not change the answer.
    pub user: Option<String>,
    /// The caller accepts a cached answer even though sampling would give another one
    /// (`temperature > 0`), e.g. for a canned suggestion where any good answer will do.
    pub cache_nondeterministic: bool,
}

impl ChatRequest {
    /// A request to `model` with no messages yet and the providers' defaults: temperature 1, top_p 1.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            messages: Vec::new(),
            temperature: 1.0,
            max_tokens: None,
            top_p: 1.0,
            seed: None,
            user: None,
            cache_nondeterministic: false,
        }
    }

    /// Appends a message.
    #[must_use]
    pub fn message(mut self, role: impl Into<String>, content: impl Into<String>) -> Self {
        self.messages.push(Message {
            role: role.into(),
            content: content.into(),
        });
        self
    }

    /// Sets the temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets `max_tokens`.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets `top_p`.
    #[must_use]
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.top_p = top_p;
        self
    }

    /// Sets the seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the end-user id.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Accepts a cached answer to a non-deterministic request.
    #[must_use]
    pub fn cache_nondeterministic(mut self) -> Self {
        self.cache_nondeterministic = true;
        self
    }
}

/// Tokens a call consumed: what a provider bills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens of the request's messages.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt and completion tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// A chat-completion response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatResponse {
    /// The answer.
    pub content: String,
    /// What the call cost.
    pub usage: Usage,
    /// How long the answer may be reused, when the provider (or a gateway) says: a time-sensitive answer
    /// gets a short one, `0` means "do not reuse".
    pub cache_ttl_secs: Option<u64>,
}
