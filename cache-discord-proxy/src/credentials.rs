//! Which credentials Discord accepted lately: only those are served cached answers.
//!
//! A bot token's first segment is only the bot's id in base64, so anybody can make a token that
//! claims a real bot. The cache scopes entries by that id; the proxy therefore serves a cached answer
//! only to a token Discord answered with a success in the last [`ACCEPTED_FOR`], on a route where
//! Discord checks the token (a route the Discord policy knows: never `/gateway`, an invite, or a
//! webhook or interaction route whose token is in its path, which answer any `Authorization`). A token
//! not known yet goes to Discord (its reads uncached): a forged one gets Discord's 401, never another
//! credential's data.
//!
//! Revocation: a 401 forgets the token at once. Discord keeps one token per bot (a reset revokes the
//! old one), so a bot's new token, once accepted, replaces the old one here too: the old token is no
//! longer served cached answers from then on. A revoked token nobody replaced is served until Discord
//! rejects it or [`ACCEPTED_FOR`] passes, whichever comes first.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cache_discord::{Credential, Snowflake};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// How long a success vouches for a token.
pub const ACCEPTED_FOR: Duration = Duration::from_secs(300);

/// Tokens remembered at most, of each kind; past it the set starts over.
const MAX_TOKENS: usize = 100_000;

/// A one-way fingerprint of an `Authorization` value: tokens are never kept.
type Fingerprint = [u8; 16];

/// The tokens Discord accepted lately.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per bot, the one token of it Discord accepted last.
    bots: HashMap<Snowflake, (Fingerprint, Instant)>,
    /// Every other credential (a user's access token) is a scope of its own.
    others: HashMap<Fingerprint, Instant>,
}

/// Whose token a request carries.
enum Holder {
    Bot(Snowflake, Fingerprint),
    Other(Fingerprint),
}

impl Holder {
    /// `None` without exactly one `Authorization` header: the cache passes such requests through,
    /// and which of several Discord accepted cannot be told.
    fn of(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return None;
        };
        let fingerprint = fingerprint(value);
        let is_bot = value
            .as_bytes()
            .get(..4)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bot "));
        Some(
            match is_bot.then(|| Credential::from_authorization(value)) {
                Some(Some(Credential::Bot(id))) => Holder::Bot(id, fingerprint),
                _ => Holder::Other(fingerprint),
            },
        )
    }
}

fn fingerprint(value: &HeaderValue) -> Fingerprint {
    let digest = Sha256::new()
        .chain_update(b"cache-discord-proxy accepted v1\0")
        .chain_update(value.as_bytes())
        .finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl Accepted {
    /// Whether the request's credential may be served cached answers: it has none (the cache passes
    /// such requests through), or Discord accepted it lately.
    pub(crate) fn vouches_for(&self, headers: &HeaderMap) -> bool {
        let Some(holder) = Holder::of(headers) else {
            return true;
        };
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = |at: &Instant| at.elapsed() < ACCEPTED_FOR;
        match holder {
            Holder::Bot(id, fingerprint) => state
                .bots
                .get(&id)
                .is_some_and(|(accepted, at)| *accepted == fingerprint && fresh(at)),
            Holder::Other(fingerprint) => state.others.get(&fingerprint).is_some_and(fresh),
        }
    }

    /// Records Discord's own answer to a request made with `headers` and sent at `sent`.
    /// `checks_token`: the route is one where Discord answers only an accepted `Authorization`; a
    /// success anywhere else proves nothing. A 401 forgets the token wherever it came from.
    pub(crate) fn record(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        checks_token: bool,
        sent: Instant,
    ) {
        let accepted = status.is_success() && checks_token;
        if !accepted && status != StatusCode::UNAUTHORIZED {
            return;
        }
        let Some(holder) = Holder::of(headers) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match (holder, accepted) {
            (Holder::Bot(id, fingerprint), true) => {
                if state.bots.len() >= MAX_TOKENS {
                    state.bots.clear();
                }
                // Replaces the bot's previous token (Discord revoked it when it issued this one), unless
                // that one was accepted later: a slow answer to a request sent before a reset must
                // not bring the old token back.
                match state.bots.get(&id) {
                    Some((accepted, at)) if *accepted != fingerprint && *at > sent => {}
                    _ => {
                        state.bots.insert(id, (fingerprint, sent));
                    }
                }
            }
            (Holder::Other(fingerprint), true) => {
                if state.others.len() >= MAX_TOKENS {
                    state.others.clear();
                }
                let at = state.others.entry(fingerprint).or_insert(sent);
                *at = (*at).max(sent);
            }
            (Holder::Bot(id, fingerprint), false) => {
                if state.bots.get(&id).is_some_and(|(f, _)| *f == fingerprint) {
                    state.bots.remove(&id);
                }
            }
            (Holder::Other(fingerprint), false) => {
                state.others.remove(&fingerprint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, format!("Bot {token}").parse().unwrap());
        headers
    }

    // "ODEzODQ3ODg3NjU3MTIzODQ" is base64 for 81384788765712384.
    const OLD: &str = "ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.old-signature";
    const NEW: &str = "ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.new-signature";

    #[tokio::test(start_paused = true)]
    async fn only_checked_successes_vouch_and_a_bots_new_token_replaces_the_old() {
        let accepted = Accepted::default();
        accepted.record(&bot(OLD), StatusCode::OK, false, Instant::now());
        assert!(
            !accepted.vouches_for(&bot(OLD)),
            "a route that ignores tokens"
        );
        accepted.record(&bot(OLD), StatusCode::OK, true, Instant::now());
        assert!(accepted.vouches_for(&bot(OLD)));
        assert!(!accepted.vouches_for(&bot(NEW)));
        let before_reset = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        accepted.record(&bot(NEW), StatusCode::OK, true, Instant::now());
        assert!(accepted.vouches_for(&bot(NEW)));
        assert!(!accepted.vouches_for(&bot(OLD)), "revoked by the reset");
        accepted.record(&bot(OLD), StatusCode::OK, true, before_reset);
        assert!(
            !accepted.vouches_for(&bot(OLD)),
            "a late answer to a request sent before the reset"
        );
        accepted.record(&bot(OLD), StatusCode::UNAUTHORIZED, true, Instant::now());
        assert!(
            accepted.vouches_for(&bot(NEW)),
            "the old token's 401 is not the new one's"
        );
        tokio::time::advance(ACCEPTED_FOR).await;
        assert!(!accepted.vouches_for(&bot(NEW)), "expired");
    }

    #[test]
    fn a_401_forgets_a_user_token() {
        let accepted = Accepted::default();
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        accepted.record(&headers, StatusCode::OK, true, Instant::now());
        assert!(accepted.vouches_for(&headers));
        accepted.record(&headers, StatusCode::UNAUTHORIZED, false, Instant::now());
        assert!(!accepted.vouches_for(&headers));
        assert!(accepted.vouches_for(&HeaderMap::new()), "no credential");
        let mut two = bot(OLD);
        two.append(AUTHORIZATION, "Bot another.token.here".parse().unwrap());
        accepted.record(&two, StatusCode::OK, true, Instant::now());
        assert!(
            !accepted.vouches_for(&bot(OLD)),
            "two tokens vouch for neither"
        );
    }
}
