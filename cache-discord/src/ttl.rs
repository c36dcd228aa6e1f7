//! How long each kind of Discord answer stays cached, from the environment or from code.

use std::time::Duration;

use cache_core::config::env::{read_secs, Environment, ProcessEnv};
use cache_core::StalePeriods;

use crate::Error;

/// TTL of a user's guild list (`GET /users/@me/guilds` with a `Bearer` token), in seconds.
pub const CACHE_DISCORD_USER_GUILDS_TTL: &str = "CACHE_DISCORD_USER_GUILDS_TTL";
/// TTL of the bot's guild list (`GET /users/@me/guilds` with a `Bot` token), in seconds.
pub const CACHE_DISCORD_BOT_GUILDS_TTL: &str = "CACHE_DISCORD_BOT_GUILDS_TTL";
/// TTL of a guild's channel list, in seconds.
pub const CACHE_DISCORD_CHANNELS_TTL: &str = "CACHE_DISCORD_CHANNELS_TTL";
/// TTL of a guild's role list, in seconds.
pub const CACHE_DISCORD_ROLES_TTL: &str = "CACHE_DISCORD_ROLES_TTL";
/// How long after its TTL an answer is served while it refreshes in the background, in seconds; 0 (the
/// default) is off.
pub const CACHE_DISCORD_STALE_WHILE_REVALIDATE: &str = "CACHE_DISCORD_STALE_WHILE_REVALIDATE";
/// How long after its TTL an answer is served when Discord fails (an error, a 429 or a 5xx), in seconds;
/// 0 (the default) is off.
pub const CACHE_DISCORD_STALE_IF_ERROR: &str = "CACHE_DISCORD_STALE_IF_ERROR";
/// TTL of one guild member, in seconds.
pub const CACHE_DISCORD_MEMBERS_TTL: &str = "CACHE_DISCORD_MEMBERS_TTL";

/// The TTL of each cached read. Zero means "deduplicate concurrent reads, store nothing".
///
/// ```
/// use std::time::Duration;
/// use cache_discord::DiscordTtls;
///
/// let ttls = DiscordTtls::from_env_source(&[("CACHE_DISCORD_ROLES_TTL", "120")])?;
/// assert_eq!(ttls.roles, Duration::from_secs(120));
/// assert_eq!(ttls.members, Duration::from_secs(30)); // the default
///
/// let err = DiscordTtls::from_env_source(&[("CACHE_DISCORD_MEMBERS_TTL", "30s")]).unwrap_err();
/// assert!(err.to_string().contains("CACHE_DISCORD_MEMBERS_TTL"));
/// # Ok::<(), cache_discord::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscordTtls {
    /// A user's guild list; default 60 s.
    pub user_guilds: Duration,
    /// A bot's guild list; default 300 s.
    pub bot_guilds: Duration,
    /// A guild's channels; default 60 s.
    pub channels: Duration,
    /// A guild's roles; default 60 s.
    pub roles: Duration,
    /// One guild member; default 30 s.
    pub members: Duration,
    /// How long after its TTL every answer may be served stale; off by default.
    pub stale: StalePeriods,
}

impl Default for DiscordTtls {
    fn default() -> Self {
        Self {
            user_guilds: Duration::from_secs(60),
            bot_guilds: Duration::from_secs(300),
            channels: Duration::from_secs(60),
            roles: Duration::from_secs(60),
            members: Duration::from_secs(30),
            stale: StalePeriods::NONE,
        }
    }
}

impl DiscordTtls {
    /// Reads the `CACHE_DISCORD_*_TTL` variables (whole seconds) from the process environment.
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is not a whole number of seconds.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env` (a slice of pairs, a map, the process).
    ///
    /// # Errors
    /// [`Error::Cache`] naming the variable whose value is not a whole number of seconds.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        let defaults = Self::default();
        Ok(Self {
            user_guilds: read_secs(env, CACHE_DISCORD_USER_GUILDS_TTL, defaults.user_guilds)?,
            bot_guilds: read_secs(env, CACHE_DISCORD_BOT_GUILDS_TTL, defaults.bot_guilds)?,
            channels: read_secs(env, CACHE_DISCORD_CHANNELS_TTL, defaults.channels)?,
            roles: read_secs(env, CACHE_DISCORD_ROLES_TTL, defaults.roles)?,
            members: read_secs(env, CACHE_DISCORD_MEMBERS_TTL, defaults.members)?,
            stale: StalePeriods {
                while_revalidate: read_secs(
                    env,
                    CACHE_DISCORD_STALE_WHILE_REVALIDATE,
                    defaults.stale.while_revalidate,
                )?,
                if_error: read_secs(env, CACHE_DISCORD_STALE_IF_ERROR, defaults.stale.if_error)?,
            },
        })
    }
}
