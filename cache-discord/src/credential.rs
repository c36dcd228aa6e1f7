//! Who a request is made as, reduced to what may appear in a cache key.
//!
//! Discord answers some reads differently for each credential, and a response fetched with one
//! credential must never be served to another. Every cache key therefore names its credential, in a form
//! that reveals nothing usable:
//!
//! - **User tokens** (`Authorization: Bearer <token>`, a dashboard user's OAuth2 access token) become a
//!   [`UserKey`]: the first 128 bits of a SHA-256 of the token, in hex. The hash is one-way, so neither
//!   keys nor traces ever hold the token, and OAuth2 tokens carry enough entropy that the hash cannot be
//!   reversed by guessing.
//! - **Bot tokens** (`Authorization: Bot <token>`) are scoped by the bot's user id, which Discord puts,
//!   base64-encoded, in the token's first dot-separated segment. Two bots sharing one Redis therefore
//!   never read each other's entries, while every process of one bot (and every token of that bot,
//!   across resets) shares them. This trusts the id a token claims: the cache sits in your client, in
//!   front of tokens your application holds, not in front of tokens strangers send. A bot token whose
//!   first segment is not a base64 id is not scoped: its requests pass through uncached.
//!
//! Requests without a recognised credential pass through uncached.
//!
//! ```
//! use cache_discord::{Credential, UserKey};
//! use http::HeaderValue;
//!
//! // "ODEzODQ3ODg3NjU3MTIzODQ" is base64 for the bot's id, 81384788765712384.
//! let bot = HeaderValue::from_static("Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl");
//! assert_eq!(Credential::from_authorization(&bot), Some(Credential::Bot(81384788765712384)));
//!
//! let user = HeaderValue::from_static("Bearer 6qrZcUqja7812RVdnEKjpzOL4CvHBFG");
//! let Some(Credential::User(key)) = Credential::from_authorization(&user) else { panic!() };
//! assert_eq!(key, UserKey::from_access_token("6qrZcUqja7812RVdnEKjpzOL4CvHBFG"));
//! assert!(!key.as_str().contains("6qrZ"));
//! ```

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::route::Snowflake;

/// The one-way key of a user's access token: what identifies a dashboard user in keys and tags.
///
/// Compute it from the token when a user logs in or out, and pass it to
/// [`DiscordCacheLayer::invalidate_discord_user_cache`](crate::DiscordCacheLayer::invalidate_discord_user_cache).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey(String);

/// Domain separation: these hashes identify Discord user tokens in this cache and nothing else.
const USER_KEY_CONTEXT: &[u8] = b"cache-discord user token v1\0";

impl UserKey {
    /// The key of a raw OAuth2 access token (without the `Bearer ` scheme).
    pub fn from_access_token(token: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(USER_KEY_CONTEXT)
            .chain_update(token.as_bytes())
            .finalize();
        let mut hex = String::with_capacity(32);
        for byte in &digest[..16] {
            hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        Self(hex)
    }

    /// A key given in its written form (32 hex digits, as [`as_str`](Self::as_str) shows it), such as
    /// one an admin endpoint receives; `None` for anything else.
    pub fn from_hex(key: &str) -> Option<Self> {
        (key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(key.to_ascii_lowercase()))
    }

    /// The key as it appears in cache keys and tags: 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({})", self.0)
    }
}

/// The credential of a request, as far as the cache cares. Holds no token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A bot, by its user id.
    Bot(Snowflake),
    /// A user, by the key of their access token.
    User(UserKey),
}

impl Credential {
    /// The credential of a request's headers: `None` without exactly one recognised `Authorization`
    /// header.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        Self::from_authorization(single_authorization(headers)?)
    }

    /// The credential of one `Authorization` header value (`Bot <token>` or `Bearer <token>`; the scheme
    /// is case-insensitive).
    pub fn from_authorization(value: &HeaderValue) -> Option<Self> {
        Some(match Authorization::parse(value)? {
            Authorization::Bot(id) => Credential::Bot(id),
            Authorization::Bearer(token) => Credential::User(UserKey::from_access_token(token)),
        })
    }

    /// How the credential appears at the end of a cache key: `bot:{id}` or `user:{userKey}`.
    pub fn scope(&self) -> String {
        match self {
            Credential::Bot(id) => format!("bot:{id}"),
            Credential::User(key) => format!("user:{key}"),
        }
    }
}

/// Base64 as Discord writes token ids: standard or URL-safe alphabet, padding optional.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// The one `Authorization` header of a request; `None` without one or with several.
fn single_authorization(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

/// An `Authorization` value the policy understands, before a user token is hashed.
enum Authorization<'a> {
    Bot(Snowflake),
    Bearer(&'a str),
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a HeaderValue) -> Option<Self> {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        let token_ok = !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            return None;
        }
        if scheme.eq_ignore_ascii_case("bot") {
            bot_id(token).map(Authorization::Bot)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Authorization::Bearer(token))
        } else {
            None
        }
    }
}

/// The bot id a bot token carries in its first segment.
fn bot_id(token: &str) -> Option<Snowflake> {
    let (first, rest) = token.split_once('.')?;
    if first.is_empty() || first.len() > 32 || rest.is_empty() {
        return None;
    }
    // At most 32 characters decode to at most 24 bytes: no allocation on every request.
    let mut decoded = [0u8; 24];
    let len = STANDARD
        .decode_slice(first, &mut decoded)
        .or_else(|_| URL_SAFE.decode_slice(first, &mut decoded))
        .ok()?;
    let id = std::str::from_utf8(&decoded[..len]).ok()?;
    crate::route::path_snowflake(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_ids_decode_with_or_without_padding() {
        let id = "81384788765712384";
        let unpadded = STANDARD.encode(id).trim_end_matches('=').to_owned();
        for first in [STANDARD.encode(id), unpadded] {
            assert_eq!(
                bot_id(&format!("{first}.GxYz.sig")),
                Some(81384788765712384)
            );
        }
        for bad in ["", "abc", "bm90LWFuLWlk.x.y", ".x.y", "ODEz"] {
            assert_eq!(bot_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn schemes_and_tokens() {
        let parse = |v: &'static str| Credential::from_authorization(&HeaderValue::from_static(v));
        assert!(matches!(parse("bearer abc"), Some(Credential::User(_))));
        assert_eq!(parse("Basic abc"), None);
        assert_eq!(parse("Bearer "), None);
        assert_eq!(parse("Bearer a b"), None);
        assert_eq!(parse("abc"), None);
    }

    #[test]
    fn user_keys_are_stable_distinct_and_hide_the_token() {
        let a = UserKey::from_access_token("token-a");
        assert_eq!(a, UserKey::from_access_token("token-a"));
        assert_ne!(a, UserKey::from_access_token("token-b"));
        assert_eq!(a.as_str().len(), 32);
        assert!(!format!("{a:?} {a}").contains("token"));
    }
}
