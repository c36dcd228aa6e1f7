//! Invalidation from gateway events: Discord tells the bot what changed, the cache forgets it.
//!
//! Events can be missed (a reconnect, a shard down), so TTLs stay: events make the cache fresher, not
//! correct on their own. Pass the event's name (`t`) and its payload (`d`), as they arrive in a
//! gateway dispatch:
//!
//! | event | tags invalidated |
//! |---|---|
//! | `GUILD_CREATE` | `discord:botGuilds` (the bot joined a guild, or it became available) |
//! | `GUILD_UPDATE` | `discord:botGuilds` (name, icon or owner in the bots' guild lists) |
//! | `GUILD_DELETE` | `discord:guild:{id}`, `discord:botGuilds`; nothing when `unavailable` is true (an outage) |
//! | `GUILD_ROLE_CREATE`, `GUILD_ROLE_UPDATE` | `discord:guild:{guild_id}:roles` |
//! | `GUILD_ROLE_DELETE` | `discord:guild:{guild_id}:roles`, `discord:guild:{guild_id}:members` |
//! | `CHANNEL_CREATE`, `CHANNEL_UPDATE`, `CHANNEL_DELETE` | `discord:guild:{guild_id}:channels` (nothing for a DM) |
//! | `GUILD_MEMBER_ADD`, `GUILD_MEMBER_UPDATE`, `GUILD_MEMBER_REMOVE` | `discord:guild:{guild_id}:member:{user.id}` |
//! | anything else | nothing |
//!
//! `GUILD_CREATE` and `CHANNEL_*` also teach the [`ChannelIndex`] which guild a channel belongs to.
//!
//! ```
//! use cache_discord::{gateway::gateway_event_tags, ChannelIndex};
//! use serde_json::json;
//!
//! let index = ChannelIndex::default();
//! let payload = json!({"guild_id": "81384788765712384", "role_id": "41771983423143936"});
//! let tags = gateway_event_tags("GUILD_ROLE_DELETE", &payload, &index)?;
//! assert_eq!(tags, ["discord:guild:81384788765712384:roles", "discord:guild:81384788765712384:members"]);
//! assert!(gateway_event_tags("MESSAGE_CREATE", &json!({}), &index)?.is_empty());
//! # Ok::<(), cache_discord::Error>(())
//! ```

use serde_json::Value;

use crate::channel_index::ChannelIndex;
use crate::json_list::id_field;
use crate::keys::tags;
use crate::route::Snowflake;
use crate::Error;

/// The tags the gateway event `event` with payload `payload` invalidates (see the module table).
///
/// # Errors
/// [`Error::EventPayload`] when a handled event lacks an id it always carries (`guild_id`, `user.id`,
/// `id`): the payload is not what the name says.
pub fn gateway_event_tags(
    event: &str,
    payload: &Value,
    index: &ChannelIndex,
) -> Result<Vec<String>, Error> {
    let tags = match event {
        "GUILD_CREATE" => {
            if let (Some(guild), Some(channels)) = (
                id_field(payload, "id"),
                payload.get("channels").and_then(Value::as_array),
            ) {
                index.learn(guild, channels.iter().filter_map(|c| id_field(c, "id")));
            }
            vec![tags::BOT_GUILDS.to_owned()]
        }
        "GUILD_UPDATE" => vec![tags::BOT_GUILDS.to_owned()],
        "GUILD_DELETE" => {
            let guild = required(event, payload, "id")?;
            if payload.get("unavailable").and_then(Value::as_bool) == Some(true) {
                Vec::new()
            } else {
                vec![tags::guild(guild), tags::BOT_GUILDS.to_owned()]
            }
        }
        "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" => {
            vec![tags::guild_roles(required(event, payload, "guild_id")?)]
        }
        "GUILD_ROLE_DELETE" => {
            let guild = required(event, payload, "guild_id")?;
            vec![tags::guild_roles(guild), tags::guild_members(guild)]
        }
        "CHANNEL_CREATE" | "CHANNEL_UPDATE" | "CHANNEL_DELETE" => {
            let channel = required(event, payload, "id")?;
            match id_field(payload, "guild_id") {
                Some(guild) => {
                    if event == "CHANNEL_DELETE" {
                        index.forget(channel);
                    } else {
                        index.learn(guild, [channel]);
                    }
                    vec![tags::guild_channels(guild)]
                }
                None => Vec::new(),
            }
        }
        "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE" | "GUILD_MEMBER_REMOVE" => {
            let guild = required(event, payload, "guild_id")?;
            let user = payload
                .get("user")
                .and_then(|user| id_field(user, "id"))
                .ok_or_else(|| missing(event, "user.id"))?;
            vec![tags::guild_member(guild, user)]
        }
        _ => Vec::new(),
    };
    Ok(tags)
}

fn required(event: &str, payload: &Value, field: &str) -> Result<Snowflake, Error> {
    id_field(payload, field).ok_or_else(|| missing(event, field))
}

fn missing(event: &str, field: &str) -> Error {
    Error::EventPayload {
        event: event.to_owned(),
        reason: format!("no snowflake string in `{field}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GUILD: u64 = 81_384_788_765_712_384;
    const USER: u64 = 80_351_110_224_678_912;

    #[test]
    fn the_module_table_says_what_each_event_invalidates() {
        let docs = include_str!("gateway.rs");
        let table = docs
            .split("//! | event | tags invalidated |\n//! |---|---|\n")
            .nth(1)
            .expect("the events table");
        // One payload that carries every id any handled event reads, as a guild's would.
        let payload = json!({
            "id": GUILD.to_string(),
            "guild_id": GUILD.to_string(),
            "user": {"id": USER.to_string()},
            "channels": [],
        });
        let mut rows = 0;
        for line in table.lines().take_while(|line| line.starts_with("//! | ")) {
            let mut cells = line.trim_start_matches("//! | ").split(" | ");
            let (events, tags) = (cells.next().unwrap(), cells.next().unwrap());
            if events == "anything else" {
                continue;
            }
            // The documented tags are the backticked `discord:` names, placeholders filled in.
            let documented: Vec<String> = tags
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|name| name.starts_with("discord:"))
                .map(|name| {
                    name.replace("{id}", &GUILD.to_string())
                        .replace("{guild_id}", &GUILD.to_string())
                        .replace("{user.id}", &USER.to_string())
                })
                .collect();
            for event in events.split(", ").map(|event| event.trim_matches('`')) {
                let index = ChannelIndex::default();
                let invalidated = gateway_event_tags(event, &payload, &index).unwrap();
                assert_eq!(invalidated, documented, "{event}");
                rows += 1;
            }
        }
        assert_eq!(rows, 12, "every handled event is in the table");
    }
}
