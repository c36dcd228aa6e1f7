//! The cache's settings in the demo: the environment's, with the demo's own defaults where it has none.
//!
//! A run compresses a dashboard morning into seconds, so Discord-sized TTLs (30 to 300 s) would never
//! expire during it, and the outage would only show what fresh entries do. The demo's TTLs are the
//! library's defaults divided by 20 (whole seconds), and it turns on stale-while-revalidate and
//! stale-if-error, both off by default in the library. A variable set in the environment wins.

use cache_core::config::env::{Environment, ProcessEnv};
use cache_discord::{
    CACHE_DISCORD_BOT_GUILDS_TTL, CACHE_DISCORD_CHANNELS_TTL, CACHE_DISCORD_MEMBERS_TTL,
    CACHE_DISCORD_ROLES_TTL, CACHE_DISCORD_STALE_IF_ERROR, CACHE_DISCORD_STALE_WHILE_REVALIDATE,
    CACHE_DISCORD_USER_GUILDS_TTL,
};

/// The demo's values of the cache's variables, in seconds.
const DEMO_DEFAULTS: [(&str, &str); 8] = [
    (CACHE_DISCORD_USER_GUILDS_TTL, "3"),
    (CACHE_DISCORD_BOT_GUILDS_TTL, "15"),
    (CACHE_DISCORD_CHANNELS_TTL, "3"),
    (CACHE_DISCORD_ROLES_TTL, "3"),
    (CACHE_DISCORD_MEMBERS_TTL, "2"),
    // A second past the TTL: answer at once and refresh behind.
    (CACHE_DISCORD_STALE_WHILE_REVALIDATE, "1"),
    // A minute past the TTL, longer than the run: answer when Discord rate limits or fails.
    (CACHE_DISCORD_STALE_IF_ERROR, "60"),
    // With REDIS_URL: a near tier in front of Redis (cache_discord::DEFAULT_NEAR_SIZE entries).
    (cache_redis::CACHE_NEAR_SIZE, "10000"),
];

/// The process environment, falling back to [`DEMO_DEFAULTS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemoEnv;

impl Environment for DemoEnv {
    fn var(&self, name: &str) -> Result<Option<String>, cache_core::Error> {
        let set = ProcessEnv.var(name)?;
        Ok(set.or_else(|| {
            DEMO_DEFAULTS
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| (*value).to_owned())
        }))
    }
}

#[cfg(test)]
mod tests {
    use cache_discord::DiscordTtls;

    use super::DEMO_DEFAULTS;
    use crate::workload::RUN;

    #[test]
    fn entries_expire_during_a_run_and_stay_usable_when_discord_fails() {
        let ttls = DiscordTtls::from_env_source(&DEMO_DEFAULTS).unwrap();
        for ttl in [ttls.user_guilds, ttls.channels, ttls.roles, ttls.members] {
            assert!(ttl < RUN / 2, "{ttl:?}: read entries expire during the run");
        }
        assert!(!ttls.stale.while_revalidate.is_zero());
        assert!(
            ttls.stale.if_error > RUN,
            "stale-if-error covers the whole run"
        );
    }
}
