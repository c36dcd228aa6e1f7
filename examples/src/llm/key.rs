//! The cache key of a chat request: a SHA-256 of its canonical form, so equal questions share an entry
//! and keys have one length however long the conversation.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ChatRequest;

/// Bumped whenever canonicalisation changes, so entries made under the old rules are not reused.
const CANONICAL_VERSION: u32 = 1;

/// What the key hashes: the fields that change the answer, canonicalised.
#[derive(Serialize)]
struct Canonical<'a> {
    version: u32,
    model: &'a str,
    messages: Vec<(String, &'a str)>,
    temperature: f32,
    max_tokens: Option<u32>,
    top_p: f32,
    seed: Option<u64>,
}

/// The key of `request` if its answer may be reused: `temperature` is 0, or the caller opted in with
/// [`cache_nondeterministic`](ChatRequest::cache_nondeterministic). `None` sends it to the model.
///
/// The key is `llm:` and the SHA-256 (hex) of the JSON of:
/// - `model`, trimmed;
/// - each message as (role, content): role trimmed and ASCII-lowercased (`" User"` is `user`), content
///   trimmed of leading and trailing whitespace. Inner whitespace, letter case and Unicode forms of the
///   content are kept: they can change the answer (code, names);
/// - `temperature` (`-0` as `0`), `max_tokens`, `top_p` and `seed`.
///
/// Left out because they do not change the answer: `user` (abuse tracking) and the opt-in flag itself.
/// So one cached answer serves every user who asks the same question; scope the key per tenant if
/// answers must not cross tenants.
pub fn cache_key(request: &ChatRequest) -> Option<String> {
    let reusable = request.temperature == 0.0 || request.cache_nondeterministic;
    if !reusable || !request.temperature.is_finite() || !request.top_p.is_finite() {
        return None;
    }
    let canonical = Canonical {
        version: CANONICAL_VERSION,
        model: request.model.trim(),
        messages: request
            .messages
            .iter()
            .map(|m| (m.role.trim().to_ascii_lowercase(), m.content.trim()))
            .collect(),
        // `-0.0 == 0.0`, but they print differently.
        temperature: if request.temperature == 0.0 {
            0.0
        } else {
            request.temperature
        },
        max_tokens: request.max_tokens,
        top_p: request.top_p,
        seed: request.seed,
    };
    let json = serde_json::to_vec(&canonical).expect("strings and numbers serialise");
    Some(format!("llm:{:x}", Sha256::digest(json)))
}
