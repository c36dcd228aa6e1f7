//! A Discord guild member, shaped like the REST API's object, for the codec benches.
//!
//! Snowflakes are `u64` here, as typed Discord clients hold them (the API sends them as strings); the
//! rest follows the API's field names and optional fields. No serde attribute that a non-self-describing
//! codec could not carry (`skip_serializing_if`, `flatten`, `untagged`) is used, so every codec can
//! round-trip it.

use serde::{Deserialize, Serialize};

/// A Discord user, as embedded in a guild member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's snowflake.
    pub id: u64,
    /// The unique username.
    pub username: String,
    /// The legacy four-digit tag, `"0"` for migrated users.
    pub discriminator: String,
    /// The display name, if set.
    pub global_name: Option<String>,
    /// The avatar hash, if set.
    pub avatar: Option<String>,
    /// Whether the user is a bot.
    pub bot: bool,
    /// Public badges, as bit flags.
    pub public_flags: u64,
}

/// A member of a guild: what `GET /guilds/{guild.id}/members/{user.id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildMember {
    /// The user.
    pub user: User,
    /// The guild nickname, if set.
    pub nick: Option<String>,
    /// The guild-specific avatar hash, if set.
    pub avatar: Option<String>,
    /// Snowflakes of the member's roles.
    pub roles: Vec<u64>,
    /// When the user joined the guild (ISO 8601).
    pub joined_at: String,
    /// When the user started boosting the guild (ISO 8601), if they do.
    pub premium_since: Option<String>,
    /// Deafened in voice channels.
    pub deaf: bool,
    /// Muted in voice channels.
    pub mute: bool,
    /// Member flags, as bit flags.
    pub flags: u64,
    /// Has not yet passed the guild's membership screening.
    pub pending: bool,
    /// When the member's timeout ends (ISO 8601), if timed out.
    pub communication_disabled_until: Option<String>,
}

/// A typical member: a nickname, four roles, a boost, no timeout.
pub fn guild_member() -> GuildMember {
    GuildMember {
        user: User {
            id: 80_351_110_224_678_912,
            username: "nelly".to_owned(),
            discriminator: "0".to_owned(),
            global_name: Some("Nelly".to_owned()),
            avatar: Some("8342729096ea3675442027381ff50dfe".to_owned()),
            bot: false,
            public_flags: 64,
        },
        nick: Some("NOT API SUPPORT".to_owned()),
        avatar: None,
        roles: vec![
            41_771_983_423_143_936,
            41_771_983_423_143_937,
            175_928_847_299_117_063,
            1_107_420_187_622_264_893,
        ],
        joined_at: "2015-04-26T06:26:56.936000+00:00".to_owned(),
        premium_since: Some("2021-03-10T18:15:47.213000+00:00".to_owned()),
        deaf: false,
        mute: false,
        flags: 0,
        pending: false,
        communication_disabled_until: None,
    }
}
