//! [`DiscordPolicy`]: which Discord requests are cached, under which key, for how long, with which tags.

use std::time::Duration;

use cache_core::{CachePolicy, Classified, FillPlan, WriteEffects};

use crate::channel_index::ChannelIndex;
use crate::credential::Credential;
use crate::keys::{self, tags};
use crate::route::{Route, RouteQuery};
use crate::{json_list, write, CachedResponse, DiscordTtls, Error};

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

/// What the policy keeps of a cached read until its answer arrives.
#[derive(Debug, Clone)]
pub struct DiscordRead {
    route: Route,
    credential: Credential,
}

/// What the policy keeps of a write until its answer arrives.
#[derive(Debug, Clone)]
pub struct DiscordWrite {
    pub(crate) route: Route,
    pub(crate) credential: Option<Credential>,
}

/// Key, TTL and tags of one cached read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntrySpec {
    pub(crate) key: String,
    pub(crate) ttl: Duration,
    pub(crate) tags: Vec<String>,
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

    /// The key, TTL and tags of the read `route` made with `credential`; `None` for a write route.
    pub(crate) fn entry(
        &self,
        route: Route,
        query: &RouteQuery,
        credential: &Credential,
    ) -> Option<EntrySpec> {
        let (key, ttl, mut tags) = match (route, credential) {
            (Route::CurrentUserGuilds, Credential::User(user)) => (
                keys::user_guilds(user, query),
                self.ttls.user_guilds,
                vec![tags::user(user)],
            ),
            (Route::CurrentUserGuilds, Credential::Bot(bot)) => (
                keys::bot_guilds(*bot, query),
                self.ttls.bot_guilds,
                vec![tags::bot(*bot), tags::BOT_GUILDS.to_owned()],
            ),
            (Route::GuildChannels { guild }, _) => (
                keys::guild_channels(guild, credential),
                self.ttls.channels,
                vec![
                    tags::guild(guild),
                    tags::guild_channels(guild),
                    tags::CHANNELS.to_owned(),
                ],
            ),
            (Route::GuildRoles { guild }, _) => (
                keys::guild_roles(guild, credential),
                self.ttls.roles,
                vec![tags::guild(guild), tags::guild_roles(guild)],
            ),
            (Route::GuildMember { guild, user }, _) => (
                keys::guild_member(guild, user, credential),
                self.ttls.members,
                vec![
                    tags::guild(guild),
                    tags::guild_member(guild, user),
                    tags::guild_members(guild),
                ],
            ),
            _ => return None,
        };
        if let (Credential::User(user), false) = (credential, route == Route::CurrentUserGuilds) {
            tags.push(tags::user(user));
        }
        Some(EntrySpec { key, ttl, tags })
    }
}

impl<B> CachePolicy<http::Request<B>, CachedResponse> for DiscordPolicy {
    type Read = DiscordRead;
    type Write = DiscordWrite;

    fn classify(&self, req: &http::Request<B>) -> Classified<DiscordRead, DiscordWrite> {
        let Some((route, query)) = Route::parse(req.method(), req.uri()) else {
            return Classified::Pass;
        };
        let credential = Credential::from_headers(req.headers());
        if !route.is_read() {
            return Classified::Write(DiscordWrite { route, credential });
        }
        let Some(credential) = credential else {
            tracing::trace!(
                ?route,
                "discord read without a recognised credential: not cached"
            );
            return Classified::Pass;
        };
        match self.entry(route, &query, &credential) {
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
        if let Route::GuildChannels { guild } = read.route {
            if let Some(channels) = json_list::ids_of_list(value.body()) {
                self.channels.learn(guild, channels);
            }
        }
        // The query does not change TTL or tags.
        match self.entry(read.route, &RouteQuery::default(), &read.credential) {
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
        if !value.is_success() {
            return WriteEffects::none();
        }
        write::effects(self, write, value)
    }
}
