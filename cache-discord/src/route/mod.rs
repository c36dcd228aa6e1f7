//! Recognising the Discord API requests the policy handles, by method and exact path shape.
//!
//! Only exact shapes are recognised: a look-alike (`/guilds/1/roles/member-counts`,
//! `/guilds/1/members/@me`, `/guilds/1/members/search`), a percent-encoded or dot segment, an empty
//! segment, a trailing slash or a non-numeric id is not a route, and the policy passes it straight
//! through. Accepted prefixes are `/api/v10`, `/api/v9` and none (unversioned `/api/` is served by Discord with an
//! older version's shapes, so its reads pass through, as do other versions'; their writes still
//! update or invalidate what they change); full URLs are accepted (the
//! host is not part of the key: the wrapped client talks to one Discord API).
//!
//! ```
//! use cache_discord::route::{Route, RouteQuery};
//! use http::{Method, Uri};
//!
//! let uri: Uri = "https://discord.com/api/v10/guilds/81384788765712384/roles".parse()?;
//! let (route, query) = Route::parse(&Method::GET, &uri).expect("a route");
//! assert_eq!(route, Route::GuildRoles { guild: 81384788765712384 });
//! assert_eq!(query, RouteQuery::default());
//!
//! let look_alike: Uri = "/api/v10/guilds/81384788765712384/roles/member-counts".parse()?;
//! assert_eq!(Route::parse(&Method::GET, &look_alike), None);
//! # Ok::<(), http::uri::InvalidUri>(())
//! ```

mod path;
mod query;

pub use query::RouteQuery;

use http::Method;

/// A Discord snowflake id (guild, channel, role, user). Parsed only from its canonical decimal form.
pub type Snowflake = u64;

/// A request the policy knows. Reads are `GET`s whose answer it caches; the rest are writes whose
/// successful answer updates or invalidates cached entries. Names follow Discord's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `GET /users/@me/guilds`: the guilds of the token's owner (a user or the bot).
    CurrentUserGuilds,
    /// `GET /guilds/{guild}/channels`.
    GuildChannels {
        /// The guild.
        guild: Snowflake,
    },
    /// `GET /guilds/{guild}/roles`.
    GuildRoles {
        /// The guild.
        guild: Snowflake,
    },
    /// `GET /guilds/{guild}/members/{user}`.
    GuildMember {
        /// The guild.
        guild: Snowflake,
        /// The member's user id.
        user: Snowflake,
    },
    /// `PATCH /guilds/{guild}/members/{user}`: returns the member.
    ModifyGuildMember {
        /// The guild.
        guild: Snowflake,
        /// The member's user id.
        user: Snowflake,
    },
    /// `PATCH /guilds/{guild}/members/@me`: returns the token owner's member.
    ModifyCurrentMember {
        /// The guild.
        guild: Snowflake,
    },
    /// `PUT /guilds/{guild}/members/{user}/roles/{role}`: 204.
    AddGuildMemberRole {
        /// The guild.
        guild: Snowflake,
        /// The member's user id.
        user: Snowflake,
        /// The role added.
        role: Snowflake,
    },
    /// `DELETE /guilds/{guild}/members/{user}/roles/{role}`: 204.
    RemoveGuildMemberRole {
        /// The guild.
        guild: Snowflake,
        /// The member's user id.
        user: Snowflake,
        /// The role removed.
        role: Snowflake,
    },
    /// `DELETE /guilds/{guild}/members/{user}` (kick): 204.
    RemoveGuildMember {
        /// The guild.
        guild: Snowflake,
        /// The kicked user.
        user: Snowflake,
    },
    /// `PUT /guilds/{guild}/bans/{user}`: 204.
    CreateGuildBan {
        /// The guild.
        guild: Snowflake,
        /// The banned user.
        user: Snowflake,
    },
    /// `POST /guilds/{guild}/roles`: returns the new role.
    CreateGuildRole {
        /// The guild.
        guild: Snowflake,
    },
    /// `PATCH /guilds/{guild}/roles`: returns every role of the guild.
    ModifyGuildRolePositions {
        /// The guild.
        guild: Snowflake,
    },
    /// `PATCH /guilds/{guild}/roles/{role}`: returns the role.
    ModifyGuildRole {
        /// The guild.
        guild: Snowflake,
        /// The role.
        role: Snowflake,
    },
    /// `DELETE /guilds/{guild}/roles/{role}`: 204.
    DeleteGuildRole {
        /// The guild.
        guild: Snowflake,
        /// The role.
        role: Snowflake,
    },
    /// `POST /guilds/{guild}/channels`: returns the new channel.
    CreateGuildChannel {
        /// The guild.
        guild: Snowflake,
    },
    /// `PATCH /guilds/{guild}/channels`: 204.
    ModifyGuildChannelPositions {
        /// The guild.
        guild: Snowflake,
    },
    /// `PATCH /channels/{channel}`: returns the channel (with its `guild_id`).
    ModifyChannel {
        /// The channel.
        channel: Snowflake,
    },
    /// `DELETE /channels/{channel}`: returns the deleted channel (with its `guild_id`).
    DeleteChannel {
        /// The channel.
        channel: Snowflake,
    },
    /// `PUT /channels/{channel}/permissions/{overwrite}`: 204.
    EditChannelPermissions {
        /// The channel.
        channel: Snowflake,
        /// The role or user the overwrite is for.
        overwrite: Snowflake,
    },
    /// `DELETE /channels/{channel}/permissions/{overwrite}`: 204.
    DeleteChannelPermission {
        /// The channel.
        channel: Snowflake,
        /// The role or user the overwrite was for.
        overwrite: Snowflake,
    },
    /// `DELETE /users/@me/guilds/{guild}`: the token's owner leaves the guild; 204.
    LeaveGuild {
        /// The guild left.
        guild: Snowflake,
    },
}

impl Route {
    /// The route of a request, with the query parameters that change its answer; `None` for anything
    /// else, look-alikes included.
    ///
    /// A read with a query parameter the policy does not know, a repeated parameter or a malformed
    /// value is not a route: such a request passes through uncached rather than being answered from an
    /// entry that may not match it. Writes ignore their query string (Discord takes their options from
    /// the body).
    pub fn parse(method: &Method, uri: &http::Uri) -> Option<(Route, RouteQuery)> {
        let route = path::parse(method, uri.path())?;
        let query = if route.is_read() {
            RouteQuery::parse(route, uri.query())?
        } else {
            RouteQuery::default()
        };
        Some((route, query))
    }

    /// The write route of a request on unversioned `/api/` (which Discord serves with an older default
    /// version) or on another API version: its reads are not cached, but its writes change the same
    /// objects as v10 ones.
    pub(crate) fn parse_other_api_write(method: &Method, uri: &http::Uri) -> Option<Route> {
        let route = path::parse_other_api(method, uri.path())?;
        (!route.is_read()).then_some(route)
    }

    /// True for the `GET` routes whose answers are cached.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Route::CurrentUserGuilds
                | Route::GuildChannels { .. }
                | Route::GuildRoles { .. }
                | Route::GuildMember { .. }
        )
    }

    /// The route's method.
    pub fn method(&self) -> Method {
        match self {
            Route::CurrentUserGuilds
            | Route::GuildChannels { .. }
            | Route::GuildRoles { .. }
            | Route::GuildMember { .. } => Method::GET,
            Route::ModifyGuildMember { .. }
            | Route::ModifyCurrentMember { .. }
            | Route::ModifyGuildRolePositions { .. }
            | Route::ModifyGuildRole { .. }
            | Route::ModifyGuildChannelPositions { .. }
            | Route::ModifyChannel { .. } => Method::PATCH,
            Route::AddGuildMemberRole { .. }
            | Route::CreateGuildBan { .. }
            | Route::EditChannelPermissions { .. } => Method::PUT,
            Route::CreateGuildRole { .. } | Route::CreateGuildChannel { .. } => Method::POST,
            Route::RemoveGuildMemberRole { .. }
            | Route::RemoveGuildMember { .. }
            | Route::DeleteGuildRole { .. }
            | Route::DeleteChannel { .. }
            | Route::DeleteChannelPermission { .. }
            | Route::LeaveGuild { .. } => Method::DELETE,
        }
    }

    /// The route's path without API prefix, exactly as [`Route::parse`] accepts it.
    pub fn path(&self) -> String {
        match *self {
            Route::CurrentUserGuilds => "/users/@me/guilds".to_owned(),
            Route::GuildChannels { guild }
            | Route::CreateGuildChannel { guild }
            | Route::ModifyGuildChannelPositions { guild } => format!("/guilds/{guild}/channels"),
            Route::GuildRoles { guild }
            | Route::CreateGuildRole { guild }
            | Route::ModifyGuildRolePositions { guild } => format!("/guilds/{guild}/roles"),
            Route::GuildMember { guild, user }
            | Route::ModifyGuildMember { guild, user }
            | Route::RemoveGuildMember { guild, user } => format!("/guilds/{guild}/members/{user}"),
            Route::ModifyCurrentMember { guild } => format!("/guilds/{guild}/members/@me"),
            Route::AddGuildMemberRole { guild, user, role }
            | Route::RemoveGuildMemberRole { guild, user, role } => {
                format!("/guilds/{guild}/members/{user}/roles/{role}")
            }
            Route::CreateGuildBan { guild, user } => format!("/guilds/{guild}/bans/{user}"),
            Route::ModifyGuildRole { guild, role } | Route::DeleteGuildRole { guild, role } => {
                format!("/guilds/{guild}/roles/{role}")
            }
            Route::ModifyChannel { channel } | Route::DeleteChannel { channel } => {
                format!("/channels/{channel}")
            }
            Route::EditChannelPermissions { channel, overwrite }
            | Route::DeleteChannelPermission { channel, overwrite } => {
                format!("/channels/{channel}/permissions/{overwrite}")
            }
            Route::LeaveGuild { guild } => format!("/users/@me/guilds/{guild}"),
        }
    }
}

/// A snowflake in canonical decimal form (for ids found outside paths, such as in bot tokens).
pub(crate) fn path_snowflake(text: &str) -> Option<Snowflake> {
    path::snowflake(text)
}
