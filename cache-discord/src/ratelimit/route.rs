//! Which rate limits a request counts against: its route, with ids reduced to placeholders, and its
//! major parameter, the way Discord buckets requests.

use std::fmt::Write as _;

use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

/// Segments longer than this, or with characters a route word never has, are not kept in a route's
/// name: tokens (webhooks, interactions) and free text (emoji, search terms) never reach a name that
/// is logged.
const MAX_WORD: usize = 32;

/// A request's place in Discord's rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestRoute {
    /// Who the request is made as: a one-way hash of its `Authorization` value (`none` without one).
    /// Discord's limits are per token; a token that claims another's bot id is another identity.
    pub(crate) identity: String,
    /// The route with every id but the major parameter replaced, such as
    /// `GET /channels/{channel}/messages/{id}`: what a bucket is learned for.
    pub(crate) route: String,
    /// The major parameter: `guild:<id>`, `channel:<id>`, `webhook:<id>:<hash of its token>`,
    /// `interaction:<id>`, or empty.
    pub(crate) major: String,
    /// Interaction callbacks do not count against the global limit.
    pub(crate) global_exempt: bool,
    /// The path carries a token of its own (webhooks, interactions): a 401 is about that one.
    pub(crate) path_token: bool,
}

impl RequestRoute {
    /// The route of a request to `uri` with `method` and `headers`.
    pub(crate) fn of(method: &Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let identity = headers
            .get(http::header::AUTHORIZATION)
            .map_or_else(|| "none".to_owned(), |value| fingerprint(value.as_bytes()));
        let path = api_path(uri.path());
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut route = String::with_capacity(path.len() + 16);
        route.push_str(method.as_str());
        route.push(' ');
        let mut major = String::new();
        let mut global_exempt = false;
        let mut path_token = false;
        let resource = segments.first().copied().unwrap_or("");
        let mut index = 0;
        while index < segments.len() {
            let segment = segments[index];
            route.push('/');
            let placeholder = match (index, resource) {
                (1, "guilds" | "channels" | "webhooks" | "interactions") if is_id(segment) => {
                    let kind = &resource[..resource.len() - 1];
                    let _ = write!(major, "{kind}:{segment}");
                    Some(kind)
                }
                (2, "webhooks") => {
                    let _ = write!(major, ":{}", fingerprint(segment.as_bytes()));
                    path_token = true;
                    Some("webhook_token")
                }
                (2, "interactions") => {
                    path_token = true;
                    Some("interaction_token")
                }
                // Invite and template codes are values, not words of the route.
                _ if index > 0 && matches!(segments[index - 1], "invites" | "templates") => {
                    Some("code")
                }
                _ if index > 0 && segments[index - 1] == "reactions" => Some("emoji"),
                _ if is_id(segment) => Some("id"),
                _ if is_word(segment) => None,
                _ => Some("value"),
            };
            match placeholder {
                Some(name) => {
                    route.push('{');
                    route.push_str(name);
                    route.push('}');
                }
                None => route.push_str(segment),
            }
            index += 1;
        }
        if resource == "interactions" && segments.last() == Some(&"callback") {
            global_exempt = true;
        }
        Self {
            identity,
            route,
            major,
            global_exempt,
            path_token,
        }
    }

    /// How traces name the request's bucket: route and major parameter, never the token.
    pub(crate) fn name(&self) -> String {
        if self.major.is_empty() {
            self.route.clone()
        } else {
            format!("{} [{}]", self.route, self.major)
        }
    }
}

/// The path after `/api` and an optional version.
fn api_path(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/api") else {
        return path;
    };
    match rest.strip_prefix("/v") {
        Some(versioned) => {
            let digits = versioned.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && matches!(versioned.as_bytes().get(digits), None | Some(b'/')) {
                &versioned[digits..]
            } else {
                rest
            }
        }
        None => rest,
    }
}

fn is_id(segment: &str) -> bool {
    (1..=20).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_digit())
}

/// A fixed word of a route (`members`, `@me`, `member-counts`), as opposed to a value.
fn is_word(segment: &str) -> bool {
    segment.len() <= MAX_WORD
        && segment
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'@')
        && segment.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'@')
        })
}

/// 64 bits of a SHA-256, in hex: enough to tell tokens apart, nothing to recover one from.
fn fingerprint(secret: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"cache-discord rate limit v1\0")
        .chain_update(secret)
        .finalize();
    digest[..8]
        .iter()
        .fold(String::with_capacity(16), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str) -> RequestRoute {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bot secret.token.value".parse().unwrap());
        RequestRoute::of(&method, &path.parse().unwrap(), &headers)
    }

    #[test]
    fn ids_become_placeholders_except_the_major_parameter() {
        let r = route(
            Method::GET,
            "/api/v10/guilds/81384788765712384/members/123456789012345678",
        );
        assert_eq!(r.route, "GET /guilds/{guild}/members/{id}");
        assert_eq!(r.major, "guild:81384788765712384");
        let r = route(
            Method::POST,
            "https://discord.com/api/v9/channels/42/messages?x=1",
        );
        assert_eq!(r.route, "POST /channels/{channel}/messages");
        assert_eq!(r.major, "channel:42");
        let r = route(Method::GET, "/api/v10/invites/discord-developers");
        assert_eq!(r.route, "GET /invites/{code}");
        let r = route(Method::GET, "/api/users/@me/guilds");
        assert_eq!(
            (r.route.as_str(), r.major.as_str()),
            ("GET /users/@me/guilds", "")
        );
    }

    #[test]
    fn tokens_and_free_text_never_appear_in_names() {
        let token = "aB3dEfGhIjKlMnOpQrStUvWxYz0123456789-_aB3dEfGhIjKlMnOpQrStUvWxYz01";
        let r = route(Method::POST, &format!("/api/v10/webhooks/99/{token}"));
        assert_eq!(r.route, "POST /webhooks/{webhook}/{webhook_token}");
        assert!(r.major.starts_with("webhook:99:") && !r.major.contains(token));
        let r = route(
            Method::POST,
            &format!("/api/v10/interactions/7/{token}/callback"),
        );
        assert_eq!(
            r.route,
            "POST /interactions/{interaction}/{interaction_token}/callback"
        );
        assert!(r.global_exempt && r.path_token && !r.name().contains(token));
        let r = route(
            Method::PUT,
            "/api/v10/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
        );
        assert_eq!(
            r.route,
            "PUT /channels/{channel}/messages/{id}/reactions/{emoji}/@me"
        );
        assert!(!r.identity.contains("secret") && r.identity.len() == 16);
    }

    #[test]
    fn webhooks_of_two_tokens_are_two_buckets() {
        let a = route(Method::POST, "/api/v10/webhooks/99/TokenOne");
        let b = route(Method::POST, "/api/v10/webhooks/99/TokenTwo");
        assert_eq!(a.route, b.route);
        assert_ne!(a.major, b.major);
    }
}
