//! [`DiscordPolicy`]: which Discord requests are cached, under which key, for how long, with which tags.

use cache_core::{CachePolicy, Classified, FillPlan, WriteEffects};

use crate::channel_index::ChannelIndex;
use crate::credential::Credential;
use crate::route::{Route, RouteQuery};
use crate::route_table::{self, Api};
use crate::write::{self, WriteContext};
use crate::{json_list, CachedResponse, DiscordTtls, Error};

pub use crate::route_table::{DiscordRead, DiscordWrite};

/// The Discord policy: implements [`CachePolicy`] for `http::Request<B>` answered by
/// [`CachedResponse`]. See the crate documentation for the table of routes, keys, tags and TTLs.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{CachePolicy, Classified};
/// use cache_discord::{CachedResponse, DiscordPolicy, DiscordTtls};
///
/// let policy = DiscordPolicy::new(DiscordTtls::default());
/// let request = http::Request::get("https://discord.com/api/v10/guilds/81384788765712384/roles")
///     .header("authorization", "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl")
///     .body(())?;
/// let Classified::Read { key, read } = policy.classify(&request) else { panic!("a cached read") };
/// assert_eq!(key, "discord:guildRoles:81384788765712384:bot:81384788765712384");
///
/// let roles = CachedResponse::json(bytes::Bytes::from_static(b"[]"));
/// let plan = CachePolicy::<http::Request<()>, _>::fill(&policy, &key, &read, &roles);
/// assert_eq!(plan.ttl, Duration::from_secs(60));
/// assert_eq!(plan.tags, ["discord:guild:81384788765712384", "discord:guild:81384788765712384:roles"]);
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct DiscordPolicy {
    ttls: DiscordTtls,
    channels: ChannelIndex,
}

impl DiscordPolicy {
    /// A policy with these TTLs.
    pub fn new(ttls: DiscordTtls) -> Self {
        Self {
            ttls,
            channels: ChannelIndex::default(),
        }
    }

    /// A policy with the TTLs of the `CACHE_DISCORD_*_TTL` variables.
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is bad.
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self::new(DiscordTtls::from_env()?))
    }

    /// The TTLs.
    pub fn ttls(&self) -> &DiscordTtls {
        &self.ttls
    }

    /// The channel-to-guild index learned from answers.
    pub fn channel_index(&self) -> &ChannelIndex {
        &self.channels
    }
}

impl<B> CachePolicy<http::Request<B>, CachedResponse> for DiscordPolicy {
    type Read = DiscordRead;
    type Write = DiscordWrite;

    fn classify(&self, req: &http::Request<B>) -> Classified<DiscordRead, DiscordWrite> {
        let Some((route, query)) = Route::parse(req.method(), req.uri()) else {
            // A write on unversioned `/api/` or another version changes the same objects: its effects
            // apply, though its reads are not cached (their answers have other shapes).
            return match Route::parse_other_api_write(req.method(), req.uri()) {
                Some(route) => Classified::Write(DiscordWrite {
                    route,
                    credential: Credential::from_headers(req.headers()),
                    api: Api::Other,
                }),
                None => Classified::Pass,
            };
        };
        let credential = Credential::from_headers(req.headers());
        if !route.is_read() {
            return Classified::Write(DiscordWrite {
                route,
                credential,
                api: Api::Versioned,
            });
        }
        let Some(credential) = credential else {
            unrecognised_credential(req.headers(), &route);
            return Classified::Pass;
        };
        match route_table::entry(&self.ttls, route, &query, &credential) {
            Some(entry) => Classified::Read {
                key: entry.key,
                read: DiscordRead { route, credential },
            },
            None => Classified::Pass,
        }
    }

    fn fill(&self, key: &str, read: &DiscordRead, value: &CachedResponse) -> FillPlan {
        if !value.is_success() {
            tracing::debug!(
                cache.key = key,
                status = value.status(),
                "discord error answer: not cached"
            );
            return FillPlan::dedupe_only();
        }
        if value
            .header("content-encoding")
            .is_some_and(|coding| !coding.eq_ignore_ascii_case(b"identity"))
        {
            // Asked for without compression; an entry every caller must be able to read.
            tracing::debug!(cache.key = key, "discord answer compressed: not cached");
            return FillPlan::dedupe_only();
        }
        if let Route::GuildChannels { guild } = read.route {
            if let Some(channels) = json_list::ids_of_list(value.body()) {
                self.channels.learn(guild, channels);
            }
        }
        // The query does not change TTL or tags.
        match route_table::entry(
            &self.ttls,
            read.route,
            &RouteQuery::default(),
            &read.credential,
        ) {
            Some(entry) => FillPlan::new(entry.ttl, entry.tags).with_stale(self.ttls.stale),
            None => FillPlan::dedupe_only(),
        }
    }

    /// Rate limits (429) and server errors (5xx) are failures: an answer within its stale-if-error
    /// period is served in their place. Other errors (403, 404) are Discord's answer and pass through.
    fn is_failure(&self, value: &CachedResponse) -> bool {
        value.status() == 429 || value.status() >= 500
    }

    fn after_write(
        &self,
        write: DiscordWrite,
        value: &CachedResponse,
    ) -> WriteEffects<CachedResponse> {
        let context = WriteContext {
            ttls: &self.ttls,
            channels: &self.channels,
        };
        match value.status() {
            200..=299 => write::effects(&context, write, value),
            // A server error does not say whether Discord applied the write.
            500..=599 => write::uncertain_effects(&context, write),
            // Refused (4xx, 429): nothing changed.
            _ => WriteEffects::none(),
        }
    }

    /// A write refused locally by the rate limiter was never sent; any other error (a timeout, a
    /// connection lost) leaves Discord's side unknown, so what it could change is invalidated.
    fn after_write_error(
        &self,
        write: DiscordWrite,
        error: &cache_core::BoxError,
    ) -> WriteEffects<CachedResponse> {
        if cache_core::upstream_error::<crate::ratelimit::RateLimitError>(error.as_ref()).is_some()
        {
            return WriteEffects::none();
        }
        let context = WriteContext {
            ttls: &self.ttls,
            channels: &self.channels,
        };
        write::uncertain_effects(&context, write)
    }
}

/// Reads whose `Authorization` header is no credential the policy understands pass through uncached:
/// traced every time, and said once at warn level when a header is there (a bot token whose first
/// segment is not a bot id, say), since that silently turns the cache off for its caller.
fn unrecognised_credential(headers: &http::HeaderMap, route: &Route) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let present = headers.contains_key(http::header::AUTHORIZATION);
    if present && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            ?route,
            "discord read with an Authorization header that is not a `Bot <token>` (whose first \
             segment encodes the bot id) or a `Bearer <token>`: such reads are not cached (said once)"
        );
    } else {
        tracing::trace!(
            ?route,
            "discord read without a recognised credential: not cached"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_answer_is_shared_but_not_stored() {
        let policy = DiscordPolicy::new(DiscordTtls::default());
        let read = DiscordRead {
            route: Route::GuildRoles { guild: 1 },
            credential: Credential::Bot(2),
        };
        let answer = |coding: Option<&str>| {
            let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
            if let Some(coding) = coding {
                headers.push(("content-encoding".to_owned(), coding.as_bytes().to_vec()));
            }
            CachedResponse::new(200, headers, bytes::Bytes::from_static(b"[]"))
        };
        for (coding, stored) in [
            (None, true),
            (Some("identity"), true),
            (Some("gzip"), false),
        ] {
            let plan =
                CachePolicy::<http::Request<()>, _>::fill(&policy, "k", &read, &answer(coding));
            assert_eq!(!plan.ttl.is_zero(), stored, "{coding:?}");
        }
    }

    #[test]
    fn a_write_the_rate_limiter_never_sent_changes_nothing_and_an_unknown_outcome_invalidates() {
        let policy = DiscordPolicy::new(DiscordTtls::default());
        let write = || DiscordWrite {
            route: Route::ModifyGuildRole { guild: 1, role: 2 },
            credential: Some(Credential::Bot(3)),
            api: crate::route_table::Api::Versioned,
        };
        let after = |error: cache_core::BoxError| {
            CachePolicy::<http::Request<()>, _>::after_write_error(&policy, write(), &error)
        };
        let never_sent = crate::ratelimit::RateLimitError::TokenRejected {
            retry_in: std::time::Duration::from_secs(1),
        };
        assert!(after(Box::new(never_sent)).is_empty());
        let lost = after("connection reset after the request was sent".into());
        assert_eq!(lost.invalidate_tags, [crate::keys::tags::guild_roles(1)]);
    }
}
