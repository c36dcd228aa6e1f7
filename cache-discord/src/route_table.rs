//! What each route means to the cache: a read's key, TTL and tags, and the table the docs show.
//!
//! The policy reads this module to classify and fill reads; the write flow reads it to build the entry
//! a write's answer replaces. Neither reads the other. Adding a cached read is one arm of [`entry`] (with
//! its path shape in [`route`](crate::route)) and one row of [`READS`], which a test checks against
//! [`entry`] and against the tables of the crate docs and the README.

use std::time::Duration;

use crate::credential::Credential;
use crate::keys::{self, tags};
use crate::route::{Route, RouteQuery};
use crate::DiscordTtls;

/// What the policy keeps of a cached read until its answer arrives.
#[derive(Debug, Clone)]
pub struct DiscordRead {
    pub(crate) route: Route,
    pub(crate) credential: Credential,
}

/// What the policy keeps of a write until its answer arrives.
#[derive(Debug, Clone)]
pub struct DiscordWrite {
    pub(crate) route: Route,
    pub(crate) credential: Option<Credential>,
    pub(crate) api: Api,
}

/// The API prefix a write was sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/api/v10`, `/api/v9` or none: answers have the shapes the cached entries have.
    Versioned,
    /// `/api/` without a version, or a version other than v10 and v9: answers may have other shapes, so
    /// an answer is never written into an entry; what it would have updated is removed instead.
    Other,
}

/// Key, TTL and tags of one cached read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntrySpec {
    pub(crate) key: String,
    pub(crate) ttl: Duration,
    pub(crate) tags: Vec<String>,
}

/// The key, TTL and tags of the read `route` made with `credential`; `None` for a write route.
pub(crate) fn entry(
    ttls: &DiscordTtls,
    route: Route,
    query: &RouteQuery,
    credential: &Credential,
) -> Option<EntrySpec> {
    let (key, ttl, mut tags) = match (route, credential) {
        (Route::CurrentUserGuilds, Credential::User(user)) => (
            keys::user_guilds(user, query),
            ttls.user_guilds,
            vec![tags::user(user)],
        ),
        (Route::CurrentUserGuilds, Credential::Bot(bot)) => (
            keys::bot_guilds(*bot, query),
            ttls.bot_guilds,
            vec![tags::bot(*bot), tags::BOT_GUILDS.to_owned()],
        ),
        (Route::GuildChannels { guild }, _) => (
            keys::guild_channels(guild, credential),
            ttls.channels,
            vec![
                tags::guild(guild),
                tags::guild_channels(guild),
                tags::CHANNELS.to_owned(),
            ],
        ),
        (Route::GuildRoles { guild }, _) => (
            keys::guild_roles(guild, credential),
            ttls.roles,
            vec![tags::guild(guild), tags::guild_roles(guild)],
        ),
        (Route::GuildMember { guild, user }, _) => (
            keys::guild_member(guild, user, credential),
            ttls.members,
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

/// One row of the table of cached reads in the docs.
#[cfg(test)]
pub(crate) struct ReadRow {
    /// The request, as the docs name it.
    pub(crate) read: &'static str,
    /// The key, with `{g}`, `{u}`, `{scope}`, `{botId}`, `{userKey}` and `{query}` placeholders.
    pub(crate) key: &'static str,
    /// The tags, with the same placeholders.
    pub(crate) tags: &'static [&'static str],
    /// The variable that sets the TTL, and its default in seconds.
    pub(crate) ttl: (&'static str, u64),
}

/// The cached reads, as the crate docs and the README list them: checked by the tests below against
/// [`entry`] and against both documents, so none of the three drifts from the others.
#[cfg(test)]
pub(crate) const READS: [ReadRow; 5] = [
    ReadRow {
        read: "`GET /users/@me/guilds`, user token",
        key: "discord:userGuilds:{userKey}{query}",
        tags: &["discord:user:{userKey}"],
        ttl: (crate::CACHE_DISCORD_USER_GUILDS_TTL, 60),
    },
    ReadRow {
        read: "`GET /users/@me/guilds`, bot token",
        key: "discord:botGuilds:{botId}{query}",
        tags: &["discord:bot:{botId}", "discord:botGuilds"],
        ttl: (crate::CACHE_DISCORD_BOT_GUILDS_TTL, 300),
    },
    ReadRow {
        read: "`GET /guilds/{g}/channels`",
        key: "discord:guildChannels:{g}:{scope}",
        tags: &[
            "discord:guild:{g}",
            "discord:guild:{g}:channels",
            "discord:channels",
        ],
        ttl: (crate::CACHE_DISCORD_CHANNELS_TTL, 60),
    },
    ReadRow {
        read: "`GET /guilds/{g}/roles`",
        key: "discord:guildRoles:{g}:{scope}",
        tags: &["discord:guild:{g}", "discord:guild:{g}:roles"],
        ttl: (crate::CACHE_DISCORD_ROLES_TTL, 60),
    },
    ReadRow {
        read: "`GET /guilds/{g}/members/{u}`",
        key: "discord:guildMember:{g}:{u}:{scope}",
        tags: &[
            "discord:guild:{g}",
            "discord:guild:{g}:member:{u}",
            "discord:guild:{g}:members",
        ],
        ttl: (crate::CACHE_DISCORD_MEMBERS_TTL, 30),
    },
];

#[cfg(test)]
impl ReadRow {
    /// The row as a Markdown table line.
    pub(crate) fn markdown(&self) -> String {
        let tags: Vec<String> = self.tags.iter().map(|tag| format!("`{tag}`")).collect();
        format!(
            "| {} | `{}` | {} | `{}`, {} s |",
            self.read,
            self.key,
            tags.join(", "),
            self.ttl.0,
            self.ttl.1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserKey;

    const GUILD: u64 = 81_384_788_765_712_384;
    const USER: u64 = 80_351_110_224_678_912;
    const BOT: u64 = 175_928_847_299_117_063;

    /// The route and credential a row describes, for sample ids.
    fn sample(row: usize) -> (Route, Credential) {
        let user_token = Credential::User(UserKey::from_access_token("a-user-access-token"));
        match row {
            0 => (Route::CurrentUserGuilds, user_token),
            1 => (Route::CurrentUserGuilds, Credential::Bot(BOT)),
            2 => (Route::GuildChannels { guild: GUILD }, Credential::Bot(BOT)),
            3 => (Route::GuildRoles { guild: GUILD }, Credential::Bot(BOT)),
            4 => (
                Route::GuildMember {
                    guild: GUILD,
                    user: USER,
                },
                Credential::Bot(BOT),
            ),
            _ => unreachable!("one sample per row"),
        }
    }

    fn fill_in(template: &str, credential: &Credential) -> String {
        let (bot, user_key) = match credential {
            Credential::Bot(bot) => (bot.to_string(), String::new()),
            Credential::User(key) => (String::new(), key.to_string()),
        };
        template
            .replace("{g}", &GUILD.to_string())
            .replace("{u}", &USER.to_string())
            .replace("{scope}", &credential.scope())
            .replace("{botId}", &bot)
            .replace("{userKey}", &user_key)
            .replace("{query}", "")
    }

    #[test]
    fn every_row_says_what_entry_does() {
        let ttls = DiscordTtls::default();
        for (index, row) in READS.iter().enumerate() {
            let (route, credential) = sample(index);
            let spec = entry(&ttls, route, &RouteQuery::default(), &credential)
                .unwrap_or_else(|| panic!("row {index} is a cached read"));
            assert_eq!(spec.key, fill_in(row.key, &credential), "{}", row.read);
            let tags: Vec<String> = row.tags.iter().map(|t| fill_in(t, &credential)).collect();
            assert_eq!(spec.tags, tags, "{}", row.read);
            assert_eq!(spec.ttl, Duration::from_secs(row.ttl.1), "{}", row.read);
            assert!(route.is_read());
        }
    }

    #[test]
    fn the_docs_show_the_table() {
        let crate_docs = include_str!("lib.rs");
        let readme = include_str!("../README.md");
        for row in &READS {
            let line = row.markdown();
            assert!(
                crate_docs.contains(&format!("//! {line}\n")),
                "the crate docs lack or differ from: {line}"
            );
            assert!(
                readme.contains(&format!("{line}\n")),
                "the README lacks or differs from: {line}"
            );
        }
    }

    /// Every write route, one of each, with the ids the writes table's placeholders stand for.
    fn every_write() -> Vec<Route> {
        let (guild, user, role, channel, overwrite) = (GUILD, USER, 3, 4, 5);
        let writes = vec![
            Route::ModifyGuildMember { guild, user },
            Route::ModifyCurrentMember { guild },
            Route::AddGuildMemberRole { guild, user, role },
            Route::RemoveGuildMemberRole { guild, user, role },
            Route::RemoveGuildMember { guild, user },
            Route::CreateGuildBan { guild, user },
            Route::CreateGuildRole { guild },
            Route::ModifyGuildRolePositions { guild },
            Route::ModifyGuildRole { guild, role },
            Route::DeleteGuildRole { guild, role },
            Route::CreateGuildChannel { guild },
            Route::ModifyGuildChannelPositions { guild },
            Route::ModifyChannel { channel },
            Route::DeleteChannel { channel },
            Route::EditChannelPermissions { channel, overwrite },
            Route::DeleteChannelPermission { channel, overwrite },
            Route::LeaveGuild { guild },
        ];
        for route in &writes {
            // No wildcard: a new route does not compile until it is sorted here, and a new write
            // until it is listed above.
            match route {
                Route::CurrentUserGuilds
                | Route::GuildChannels { .. }
                | Route::GuildRoles { .. }
                | Route::GuildMember { .. } => unreachable!("a read"),
                Route::ModifyGuildMember { .. }
                | Route::ModifyCurrentMember { .. }
                | Route::AddGuildMemberRole { .. }
                | Route::RemoveGuildMemberRole { .. }
                | Route::RemoveGuildMember { .. }
                | Route::CreateGuildBan { .. }
                | Route::CreateGuildRole { .. }
                | Route::ModifyGuildRolePositions { .. }
                | Route::ModifyGuildRole { .. }
                | Route::DeleteGuildRole { .. }
                | Route::CreateGuildChannel { .. }
                | Route::ModifyGuildChannelPositions { .. }
                | Route::ModifyChannel { .. }
                | Route::DeleteChannel { .. }
                | Route::EditChannelPermissions { .. }
                | Route::DeleteChannelPermission { .. }
                | Route::LeaveGuild { .. } => {}
            }
        }
        writes
    }

    /// The `method path` pairs of the crate docs' writes table, placeholders filled in.
    fn documented_writes() -> Vec<(http::Method, String)> {
        let docs = include_str!("lib.rs");
        let table = docs
            .split("//! | write | Discord answers | cache |\n//! |---|---|---|\n")
            .nth(1)
            .expect("the writes table");
        let mut pairs = Vec::new();
        for line in table.lines().take_while(|line| line.starts_with("//! | ")) {
            let cell = line
                .trim_start_matches("//! | ")
                .split(" | ")
                .next()
                .unwrap();
            let cell = cell.replace('`', "");
            let (methods, rest) = cell.split_once(' ').expect("methods, then a path");
            let path = rest.split(' ').next().unwrap();
            let path = path
                .replace("{g}", &GUILD.to_string())
                .replace("{u}", &USER.to_string())
                .replace("{r}", "3")
                .replace("{c}", "4")
                .replace("{o}", "5");
            for method in methods.split('/') {
                pairs.push((method.parse().expect("an HTTP method"), path.clone()));
            }
        }
        pairs
    }

    #[test]
    fn the_writes_table_lists_every_write_and_nothing_else() {
        let documented = documented_writes();
        for (method, path) in &documented {
            let uri: http::Uri = path.parse().unwrap();
            let route = Route::parse(method, &uri).map(|(route, _)| route);
            assert!(
                route.is_some_and(|route| !route.is_read()),
                "the docs list `{method} {path}`, which is not a write route"
            );
        }
        for route in every_write() {
            let pair = (route.method(), route.path());
            assert!(
                documented.contains(&pair),
                "{route:?} (`{} {}`) is missing from the docs' writes table",
                pair.0,
                pair.1
            );
        }
    }
}
