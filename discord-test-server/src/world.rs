//! The server's data: accounts, guilds, channels, roles and members, generated from a seed and rendered
//! in the shapes of Discord's API (`MyGuildResponse`, `GuildChannelResponse`, `GuildRoleResponse`,
//! `GuildMemberResponse`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::Snowflake;

/// Milliseconds from the Unix epoch to Discord's epoch (2015-01-01).
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// Every permission bit Discord defines today: what an owner or administrator has.
const ALL_PERMISSIONS: u64 = (1 << 51) - 1;
/// View channels, send messages, read history, connect, speak: a plain member's `@everyone`.
const EVERYONE_PERMISSIONS: u64 = 0x0000_0000_0010_4C00 | (1 << 20) | (1 << 21);

const ADJECTIVES: [&str; 16] = [
    "Cozy", "Midnight", "Pixel", "Rusty", "Lunar", "Crimson", "Quiet", "Electric", "Golden",
    "Hidden", "Wild", "Frozen", "Neon", "Ancient", "Velvet", "Stormy",
];
const NOUNS: [&str; 16] = [
    "Gamers",
    "Study Hall",
    "Lounge",
    "Collective",
    "Guild",
    "Den",
    "Arcade",
    "Book Club",
    "Labs",
    "Raiders",
    "Workshop",
    "Tavern",
    "Orchestra",
    "Hangout",
    "Dojo",
    "Outpost",
];
const CHANNEL_NAMES: [&str; 12] = [
    "general",
    "announcements",
    "off-topic",
    "memes",
    "help",
    "showcase",
    "rules",
    "introductions",
    "bot-commands",
    "music",
    "events",
    "feedback",
];
const ROLE_NAMES: [&str; 10] = [
    "Admin",
    "Moderator",
    "Helper",
    "Member",
    "Verified",
    "Nitro Booster",
    "Event Host",
    "Artist",
    "Developer",
    "Muted",
];
const USERNAMES: [&str; 12] = [
    "ada", "bolt", "cypher", "dune", "echo", "fable", "gizmo", "halo", "iris", "jinx", "kilo",
    "lumen",
];
const FEATURES: [&str; 6] = [
    "COMMUNITY",
    "NEWS",
    "ANIMATED_ICON",
    "INVITE_SPLASH",
    "BANNER",
    "ROLE_ICONS",
];

/// SplitMix64: a small, seedable generator, enough for fixtures.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit((self.next_u64() % 16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    fn token_chars(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect()
    }
}

/// Hands out increasing snowflakes, as Discord's id workers do.
#[derive(Debug)]
pub(crate) struct Snowflakes {
    millis: u64,
    increment: u64,
}

impl Snowflakes {
    fn new(start_unix_ms: u64) -> Self {
        Self {
            millis: start_unix_ms - DISCORD_EPOCH_MS,
            increment: 0,
        }
    }

    pub(crate) fn next(&mut self, rng: &mut SplitMix) -> Snowflake {
        self.millis += 1 + rng.next_u64() % 3_600_000;
        self.increment = (self.increment + 1) & 0xFFF;
        (self.millis << 22) | (1 << 17) | self.increment
    }
}

/// An account the server accepts: a bot (`Bot` token) or a user (`Bearer` token).
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: Snowflake,
    pub(crate) username: String,
    pub(crate) token: String,
    pub(crate) bot: bool,
    pub(crate) avatar: Option<String>,
}

impl Account {
    pub(crate) fn user_json(&self) -> Value {
        let mut user = json!({
            "id": self.id.to_string(),
            "username": self.username,
            "avatar": self.avatar,
            "discriminator": "0",
            "public_flags": 0,
            "flags": 0,
            "banner": null,
            "accent_color": null,
            "global_name": if self.bot { Value::Null } else { Value::from(capitalise(&self.username)) },
            "avatar_decoration_data": null,
            "collectibles": null,
            "primary_guild": null,
        });
        if self.bot {
            user["bot"] = Value::Bool(true);
        }
        user
    }
}

/// One member of a guild.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) nick: Option<String>,
    pub(crate) roles: Vec<Snowflake>,
    pub(crate) joined_at: String,
}

/// A guild and everything in it.
#[derive(Debug, Clone)]
pub(crate) struct Guild {
    pub(crate) id: Snowflake,
    pub(crate) name: String,
    pub(crate) icon: Option<String>,
    pub(crate) banner: Option<String>,
    pub(crate) owner_id: Snowflake,
    pub(crate) features: Vec<&'static str>,
    pub(crate) channels: Vec<Value>,
    pub(crate) roles: Vec<Value>,
    pub(crate) members: BTreeMap<Snowflake, Member>,
    pub(crate) bans: BTreeSet<Snowflake>,
}

/// The size of a generated world.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorldSize {
    pub(crate) guilds: usize,
    pub(crate) users: usize,
    pub(crate) guilds_per_user: usize,
}

/// Everything the server knows.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) rng: SplitMix,
    pub(crate) ids: Snowflakes,
    pub(crate) accounts: Vec<Account>,
    pub(crate) by_token: HashMap<String, usize>,
    pub(crate) guilds: BTreeMap<Snowflake, Guild>,
}

impl World {
    pub(crate) fn generate(seed: u64, size: WorldSize) -> Self {
        let mut world = World {
            rng: SplitMix::new(seed),
            ids: Snowflakes::new(1_460_000_000_000),
            accounts: Vec::new(),
            by_token: HashMap::new(),
            guilds: BTreeMap::new(),
        };
        let bot = world.add_bot("Dashboard Bot");
        let users: Vec<Snowflake> = (0..size.users).map(|_| world.add_user()).collect();
        for _ in 0..size.guilds {
            let owner = if users.is_empty() {
                bot
            } else {
                users[world.rng.below(users.len())]
            };
            let guild = world.add_guild(owner);
            world.join(guild, bot);
        }
        let guild_ids: Vec<Snowflake> = world.guilds.keys().copied().collect();
        for &user in &users {
            for _ in 0..size.guilds_per_user.min(guild_ids.len()) {
                let guild = guild_ids[world.rng.below(guild_ids.len())];
                world.join(guild, user);
            }
        }
        for guild in &guild_ids {
            let owner = world.guilds[guild].owner_id;
            world.join(*guild, owner);
        }
        world
    }

    /// Adds a bot account; its token carries its id in the first segment, as Discord's do.
    pub(crate) fn add_bot(&mut self, name: &str) -> Snowflake {
        let id = self.ids.next(&mut self.rng);
        let token = format!(
            "{}.{}.{}",
            STANDARD_NO_PAD.encode(id.to_string()),
            self.rng.token_chars(6),
            self.rng.token_chars(38)
        );
        let avatar = Some(self.rng.hex(32));
        self.push_account(Account {
            id,
            username: name.to_owned(),
            token,
            bot: true,
            avatar,
        })
    }

    /// Gives a bot a new token, as Discord's "Reset Token" does: the old one is rejected from now on.
    pub(crate) fn reset_token(&mut self, id: Snowflake) -> Option<String> {
        let index = self.accounts.iter().position(|a| a.id == id && a.bot)?;
        let token = format!(
            "{}.{}.{}",
            STANDARD_NO_PAD.encode(id.to_string()),
            self.rng.token_chars(6),
            self.rng.token_chars(38)
        );
        let old = std::mem::replace(&mut self.accounts[index].token, token.clone());
        self.by_token.remove(&old);
        self.by_token.insert(token.clone(), index);
        Some(token)
    }

    fn add_user(&mut self) -> Snowflake {
        let id = self.ids.next(&mut self.rng);
        let username = format!("{}{}", self.rng.pick(&USERNAMES), self.rng.below(10_000));
        let token = self.rng.token_chars(30);
        let avatar = (self.rng.below(4) != 0).then(|| self.rng.hex(32));
        self.push_account(Account {
            id,
            username,
            token,
            bot: false,
            avatar,
        })
    }

    fn push_account(&mut self, account: Account) -> Snowflake {
        let id = account.id;
        self.by_token
            .insert(account.token.clone(), self.accounts.len());
        self.accounts.push(account);
        id
    }

    fn add_guild(&mut self, owner_id: Snowflake) -> Snowflake {
        let id = self.ids.next(&mut self.rng);
        let name = format!("{} {}", self.rng.pick(&ADJECTIVES), self.rng.pick(&NOUNS));
        let feature_count = self.rng.below(FEATURES.len());
        let mut guild = Guild {
            id,
            name,
            icon: Some(self.rng.hex(32)),
            banner: (self.rng.below(3) == 0).then(|| self.rng.hex(32)),
            owner_id,
            features: FEATURES[..feature_count].to_vec(),
            channels: Vec::new(),
            roles: vec![role_json(id, "@everyone", 0, 0, EVERYONE_PERMISSIONS)],
            members: BTreeMap::new(),
            bans: BTreeSet::new(),
        };
        for (position, name) in ROLE_NAMES.iter().take(3 + self.rng.below(6)).enumerate() {
            let role = self.ids.next(&mut self.rng);
            let color = self.rng.next_u64() % 0xFF_FFFF;
            let permissions = if position == 0 {
                ALL_PERMISSIONS
            } else {
                EVERYONE_PERMISSIONS
            };
            let mut role = role_json(role, name, position as i64 + 1, color, permissions);
            role["hoist"] = Value::Bool(position < 2);
            guild.roles.push(role);
        }
        let category = self.ids.next(&mut self.rng);
        guild.channels.push(json!({
            "id": category.to_string(), "type": 4, "flags": 0, "guild_id": id.to_string(),
            "name": "Text Channels", "parent_id": null, "position": 0,
            "permission_overwrites": [], "nsfw": false,
        }));
        for (position, name) in CHANNEL_NAMES.iter().take(4 + self.rng.below(8)).enumerate() {
            let channel = self.ids.next(&mut self.rng);
            let kind = if *name == "announcements" { 5 } else { 0 };
            guild.channels.push(json!({
                "id": channel.to_string(), "type": kind, "flags": 0, "guild_id": id.to_string(),
                "name": name, "parent_id": category.to_string(), "position": position,
                "permission_overwrites": [], "nsfw": false,
                "topic": format!("All about {name}"), "last_message_id": self.ids.next(&mut self.rng).to_string(),
                "rate_limit_per_user": 0, "default_auto_archive_duration": 1440,
                "last_pin_timestamp": null,
            }));
        }
        let voice = self.ids.next(&mut self.rng);
        guild.channels.push(json!({
            "id": voice.to_string(), "type": 2, "flags": 0, "guild_id": id.to_string(),
            "name": "Lounge", "parent_id": null, "position": 1, "permission_overwrites": [],
            "nsfw": false, "bitrate": 64000, "user_limit": 0, "rtc_region": null,
            "last_message_id": null, "rate_limit_per_user": 0,
        }));
        self.guilds.insert(id, guild);
        id
    }

    pub(crate) fn join(&mut self, guild: Snowflake, user: Snowflake) {
        let joined_at = self.timestamp();
        let Some(g) = self.guilds.get_mut(&guild) else {
            return;
        };
        if g.members.contains_key(&user) {
            return;
        }
        let role_count = g.roles.len();
        let mut roles = Vec::new();
        if role_count > 2 {
            let pick = 2 + self.rng.below(role_count - 2);
            roles.extend(
                g.roles[pick]["id"]
                    .as_str()
                    .and_then(|id| id.parse::<Snowflake>().ok()),
            );
        }
        let nick = (self.rng.below(3) == 0).then(|| format!("{} fan", self.rng.pick(&USERNAMES)));
        g.members.insert(
            user,
            Member {
                nick,
                roles,
                joined_at,
            },
        );
    }

    fn timestamp(&mut self) -> String {
        let year = 2016 + self.rng.below(9);
        let month = 1 + self.rng.below(12);
        let day = 1 + self.rng.below(28);
        let (hour, minute, second) = (self.rng.below(24), self.rng.below(60), self.rng.below(60));
        let micros = self.rng.below(1_000_000);
        format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}+00:00")
    }

    pub(crate) fn account(&self, id: Snowflake) -> Option<&Account> {
        self.accounts.iter().find(|account| account.id == id)
    }

    /// `GuildMemberResponse` of `user` in `guild`.
    pub(crate) fn member_json(&self, guild: &Guild, user: Snowflake) -> Option<Value> {
        let member = guild.members.get(&user)?;
        let account = self.account(user)?;
        Some(json!({
            "avatar": null,
            "banner": null,
            "communication_disabled_until": null,
            "flags": 0,
            "joined_at": member.joined_at,
            "nick": member.nick,
            "pending": false,
            "premium_since": null,
            "roles": member.roles.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "user": account.user_json(),
            "mute": false,
            "deaf": false,
        }))
    }

    /// `MyGuildResponse` of `guild` for `account`.
    pub(crate) fn my_guild_json(
        &self,
        guild: &Guild,
        account: Snowflake,
        with_counts: bool,
    ) -> Value {
        let permissions = if guild.owner_id == account {
            ALL_PERMISSIONS
        } else {
            let member_roles = guild
                .members
                .get(&account)
                .map(|m| m.roles.clone())
                .unwrap_or_default();
            guild
                .roles
                .iter()
                .filter(|role| {
                    let id = role["id"]
                        .as_str()
                        .and_then(|id| id.parse::<Snowflake>().ok());
                    id == Some(guild.id) || id.is_some_and(|id| member_roles.contains(&id))
                })
                .filter_map(|role| role["permissions"].as_str()?.parse::<u64>().ok())
                .fold(0, |all, bits| all | bits)
        };
        let mut entry = json!({
            "id": guild.id.to_string(),
            "name": guild.name,
            "icon": guild.icon,
            "banner": guild.banner,
            "owner": guild.owner_id == account,
            "permissions": permissions.to_string(),
            "features": guild.features,
        });
        if with_counts {
            let members = guild.members.len() as u64;
            entry["approximate_member_count"] = members.into();
            entry["approximate_presence_count"] = (members / 3).into();
        }
        entry
    }
}

/// A `GuildRoleResponse`.
pub(crate) fn role_json(
    id: Snowflake,
    name: &str,
    position: i64,
    color: u64,
    permissions: u64,
) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "permissions": permissions.to_string(),
        "position": position,
        "color": color,
        "colors": {"primary_color": color, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "managed": false,
        "mentionable": false,
        "icon": null,
        "unicode_emoji": null,
        "flags": 0,
    })
}

fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
