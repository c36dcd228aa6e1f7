//! Cache keys and tags: the names every entry is stored and invalidated under.
//!
//! Keys end with the credential that fetched the entry ([`Credential::scope`]), except the guild lists,
//! whose key already names it. Tags name the Discord objects an entry depends on and never a credential's
//! token; invalidating a tag reaches the copies of every credential.

use crate::credential::{Credential, UserKey};
use crate::route::{RouteQuery, Snowflake};

/// `discord:userGuilds:{userKey}{query}`: a user's guild list.
pub fn user_guilds(user: &UserKey, query: &RouteQuery) -> String {
    format!("discord:userGuilds:{user}{query}")
}

/// `discord:botGuilds:{botId}{query}`: a bot's guild list.
pub fn bot_guilds(bot: Snowflake, query: &RouteQuery) -> String {
    format!("discord:botGuilds:{bot}{query}")
}

/// `discord:guildChannels:{guild}:{scope}`.
pub fn guild_channels(guild: Snowflake, credential: &Credential) -> String {
    format!("discord:guildChannels:{guild}:{}", credential.scope())
}

/// `discord:guildRoles:{guild}:{scope}`.
pub fn guild_roles(guild: Snowflake, credential: &Credential) -> String {
    format!("discord:guildRoles:{guild}:{}", credential.scope())
}

/// `discord:guildMember:{guild}:{user}:{scope}`.
pub fn guild_member(guild: Snowflake, user: Snowflake, credential: &Credential) -> String {
    format!("discord:guildMember:{guild}:{user}:{}", credential.scope())
}

/// Tag names.
pub mod tags {
    use super::{Snowflake, UserKey};

    /// `discord:user:{userKey}`: everything fetched with one user's token, their guild lists first.
    pub fn user(user: &UserKey) -> String {
        format!("discord:user:{user}")
    }

    /// `discord:bot:{botId}`: one bot's guild lists.
    pub fn bot(bot: Snowflake) -> String {
        format!("discord:bot:{bot}")
    }

    /// `discord:botGuilds`: every bot's guild lists (gateway guild events reach them all).
    pub const BOT_GUILDS: &str = "discord:botGuilds";

    /// `discord:channels`: every guild's channel list (a channel whose guild is unknown changed).
    pub const CHANNELS: &str = "discord:channels";

    /// `discord:guild:{guild}`: channels, roles and members of a guild.
    pub fn guild(guild: Snowflake) -> String {
        format!("discord:guild:{guild}")
    }

    /// `discord:guild:{guild}:channels`.
    pub fn guild_channels(guild: Snowflake) -> String {
        format!("discord:guild:{guild}:channels")
    }

    /// `discord:guild:{guild}:roles`.
    pub fn guild_roles(guild: Snowflake) -> String {
        format!("discord:guild:{guild}:roles")
    }

    /// `discord:guild:{guild}:members`: every member entry of a guild (a deleted role leaves them all).
    pub fn guild_members(guild: Snowflake) -> String {
        format!("discord:guild:{guild}:members")
    }

    /// `discord:guild:{guild}:member:{user}`.
    pub fn guild_member(guild: Snowflake, user: Snowflake) -> String {
        format!("discord:guild:{guild}:member:{user}")
    }
}
