//! Which credentials Discord accepted lately: only those are served cached answers.
//!
//! A bot token's first segment is only the bot's id in base64, so anybody can make a token that
//! claims a real bot. The cache scopes entries by that id; the proxy therefore serves a cached answer
//! only to a token Discord answered with a success in the last [`ACCEPTED_FOR`]. A token not known
//! yet goes to Discord (its reads uncached): a forged or revoked one gets Discord's 401, never
//! another credential's data. A 401 forgets the token at once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// How long a success vouches for a token.
pub const ACCEPTED_FOR: Duration = Duration::from_secs(300);

/// Tokens remembered at most; past it the set starts over.
const MAX_TOKENS: usize = 100_000;

/// The tokens Discord accepted lately, by a one-way fingerprint.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    tokens: Mutex<HashMap<[u8; 16], Instant>>,
}

fn fingerprint(headers: &HeaderMap) -> Option<[u8; 16]> {
    let value = headers.get(AUTHORIZATION)?;
    let digest = Sha256::new()
        .chain_update(b"cache-discord-proxy accepted v1\0")
        .chain_update(value.as_bytes())
        .finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    Some(key)
}

impl Accepted {
    /// Whether the request's credential may be served cached answers: it has none (the cache passes
    /// such requests through), or Discord accepted it lately.
    pub(crate) fn vouches_for(&self, headers: &HeaderMap) -> bool {
        let Some(key) = fingerprint(headers) else {
            return true;
        };
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(&key)
            .is_some_and(|at| at.elapsed() < ACCEPTED_FOR)
    }

    /// Records Discord's answer to a request made with `headers`.
    pub(crate) fn record(&self, headers: &HeaderMap, status: StatusCode) {
        let Some(key) = fingerprint(headers) else {
            return;
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if status.is_success() {
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
            tokens.insert(key, Instant::now());
        } else if status == StatusCode::UNAUTHORIZED {
            tokens.remove(&key);
        }
    }
}
