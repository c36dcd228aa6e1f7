//! A cache policy for a chat-completion (LLM) client: equal questions are answered once, concurrent
//! ones share one call, sampled (non-deterministic) answers are only reused when the caller opts in,
//! and the response can say how long its answer stays good.
//!
//! The client is [`SimulatedLlm`], a local stand-in (no network, no API key). The key is [`cache_key`]
//! (its docs say exactly what is canonicalised), the policy [`llm_policy`]; [`demo::run_demo`] is what
//! `cargo run --release -p examples --bin llm` prints.
//!
//! ```
//! use examples::llm::{cache_key, ChatRequest};
//!
//! let ask = |role: &str, text: &str| ChatRequest::new("sim-chat-small").message(role, text).temperature(0.0);
//! // Surrounding whitespace, role case and the end-user id do not change the key...
//! assert_eq!(cache_key(&ask("user", "Hi")), cache_key(&ask(" User", "Hi\n").user("u-1")));
//! // ...parameters that change the answer do.
//! assert_ne!(cache_key(&ask("user", "Hi")), cache_key(&ask("user", "Hi").max_tokens(16)));
//! // Sampled answers are not reused unless the caller opts in.
//! assert_eq!(cache_key(&ask("user", "Hi").temperature(0.7)), None);
//! assert!(cache_key(&ask("user", "Hi").temperature(0.7).cache_nondeterministic()).is_some());
//! ```

pub mod demo;
mod key;
mod model;
mod policy;
mod simulated;

pub use key::cache_key;
pub use model::{ChatRequest, ChatResponse, Message, Usage};
pub use policy::{llm_policy, LlmPolicy, TtlFromHint, DEFAULT_TTL};
pub use simulated::{LlmError, SimulatedLlm, TIME_SENSITIVE_TTL_SECS};
