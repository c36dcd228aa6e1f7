//! The helpers and gateway events invalidate exactly the entries they should: every other entry stays.

mod support;

use cache_discord::UserKey;
use serde_json::{json, Value};
use support::{quiet, Harness};

/// A cached world: two guilds' channels, roles and members, two users' guild lists and the bot's.
struct World {
    harness: Harness,
    g1: u64,
    g2: u64,
    member_a: u64,
    member_b: u64,
    member_c: u64,
    user_a: UserKey,
    user_b: UserKey,
    reads: Vec<(String, String, String)>,
}

impl World {
    async fn new() -> Self {
        let harness = Harness::start(quiet()).await;
        let bot = harness.bot();
        let guilds = harness.server.guilds();
        let (g1, g2) = (&guilds[0], &guilds[1]);
        let not_bot = |g: &discord_test_server::FixtureGuild| {
            g.members
                .iter()
                .copied()
                .filter(|m| *m != bot.id)
                .collect::<Vec<_>>()
        };
        let (member_a, member_b) = (not_bot(g1)[0], not_bot(g1)[1]);
        let member_c = not_bot(g2)[0];
        let users = harness.server.users();
        let (a, b) = (&users[0].account, &users[1].account);
        let bot_auth = bot.bot_authorization();
        let scope = format!("bot:{}", bot.id);
        let mut reads = Vec::new();
        let mut read =
            |path: String, auth: &str, key: String| reads.push((path, auth.to_owned(), key));
        for g in [g1.id, g2.id] {
            read(
                format!("/guilds/{g}/channels"),
                &bot_auth,
                format!("discord:guildChannels:{g}:{scope}"),
            );
            read(
                format!("/guilds/{g}/roles"),
                &bot_auth,
                format!("discord:guildRoles:{g}:{scope}"),
            );
        }
        for (g, m) in [(g1.id, member_a), (g1.id, member_b), (g2.id, member_c)] {
            read(
                format!("/guilds/{g}/members/{m}"),
                &bot_auth,
                format!("discord:guildMember:{g}:{m}:{scope}"),
            );
        }
        let (key_a, key_b) = (
            UserKey::from_access_token(&a.token),
            UserKey::from_access_token(&b.token),
        );
        read(
            "/users/@me/guilds".into(),
            &a.bearer_authorization(),
            format!("discord:userGuilds:{key_a}"),
        );
        read(
            "/users/@me/guilds?with_counts=true".into(),
            &a.bearer_authorization(),
            format!("discord:userGuilds:{key_a}?with_counts=true"),
        );
        read(
            "/users/@me/guilds".into(),
            &b.bearer_authorization(),
            format!("discord:userGuilds:{key_b}"),
        );
        read(
            "/users/@me/guilds".into(),
            &bot_auth,
            format!("discord:botGuilds:{}", bot.id),
        );
        Self {
            harness,
            g1: g1.id,
            g2: g2.id,
            member_a,
            member_b,
            member_c,
            user_a: key_a,
            user_b: key_b,
            reads,
        }
    }

    /// Reads everything, so that every entry is cached.
    async fn fill(&self) {
        for (path, auth, _) in &self.reads {
            assert_eq!(self.harness.get(path, auth).await.status(), 200, "{path}");
        }
        for (_, _, key) in &self.reads {
            assert!(
                self.harness.cached(key).await,
                "{key} is cached after a read"
            );
        }
    }

    /// Asserts that exactly the keys containing one of `gone` are no longer cached.
    async fn assert_gone(&self, what: &str, gone: &[String]) {
        for (_, _, key) in &self.reads {
            let expected_gone = gone.iter().any(|g| key == g);
            assert_eq!(
                !self.harness.cached(key).await,
                expected_gone,
                "{what}: {key} should be {}",
                if expected_gone { "gone" } else { "kept" }
            );
        }
    }

    fn key(&self, prefix: &str) -> Vec<String> {
        self.reads
            .iter()
            .map(|(_, _, key)| key.clone())
            .filter(|key| key.starts_with(prefix))
            .collect()
    }

    async fn event(&self, name: &str, payload: Value) -> Vec<String> {
        self.harness
            .discord
            .apply_gateway_event(name, &payload)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_guild_helper_invalidates_that_guilds_channels_roles_and_members_only() {
    let w = World::new().await;
    w.fill().await;
    w.harness
        .discord
        .invalidate_discord_guild_cache(w.g1)
        .await
        .unwrap();
    let mut gone = w.key(&format!("discord:guildChannels:{}:", w.g1));
    gone.extend(w.key(&format!("discord:guildRoles:{}:", w.g1)));
    gone.extend(w.key(&format!("discord:guildMember:{}:", w.g1)));
    assert_eq!(gone.len(), 4);
    w.assert_gone("guild helper", &gone).await;
}

#[tokio::test]
async fn the_user_helper_invalidates_every_guild_list_of_that_user_only() {
    let w = World::new().await;
    w.fill().await;
    w.harness
        .discord
        .invalidate_discord_user_cache(&w.user_a)
        .await
        .unwrap();
    let gone = w.key(&format!("discord:userGuilds:{}", w.user_a));
    assert_eq!(gone.len(), 2, "both query variants");
    w.assert_gone("user helper", &gone).await;

    w.fill().await;
    w.harness
        .discord
        .invalidate_discord_user_cache(&w.user_b)
        .await
        .unwrap();
    w.assert_gone(
        "user helper b",
        &w.key(&format!("discord:userGuilds:{}", w.user_b)),
    )
    .await;
}

#[tokio::test]
async fn role_events() {
    let w = World::new().await;
    let (g1, g2) = (w.g1.to_string(), w.g2.to_string());
    for event in ["GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE"] {
        w.fill().await;
        let role = json!({"id": "41771983423143936", "name": "x", "position": 1});
        w.event(event, json!({"guild_id": g1, "role": role})).await;
        w.assert_gone(event, &w.key(&format!("discord:guildRoles:{g1}:")))
            .await;
    }
    w.fill().await;
    w.event(
        "GUILD_ROLE_DELETE",
        json!({"guild_id": g2, "role_id": "41771983423143936"}),
    )
    .await;
    let mut gone = w.key(&format!("discord:guildRoles:{g2}:"));
    gone.extend(w.key(&format!("discord:guildMember:{g2}:")));
    w.assert_gone("GUILD_ROLE_DELETE", &gone).await;
}

#[tokio::test]
async fn channel_events() {
    let w = World::new().await;
    let g1 = w.g1.to_string();
    for event in ["CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE"] {
        w.fill().await;
        let channel =
            json!({"id": "41771983423143937", "guild_id": g1, "type": 0, "name": "general"});
        w.event(event, channel).await;
        w.assert_gone(event, &w.key(&format!("discord:guildChannels:{g1}:")))
            .await;
    }
    // A DM channel is in no guild's list.
    w.fill().await;
    let tags = w
        .event(
            "CHANNEL_CREATE",
            json!({"id": "41771983423143937", "type": 1}),
        )
        .await;
    assert!(tags.is_empty());
    w.assert_gone("DM channel", &[]).await;
}

#[tokio::test]
async fn member_events() {
    let w = World::new().await;
    for event in [
        "GUILD_MEMBER_ADD",
        "GUILD_MEMBER_UPDATE",
        "GUILD_MEMBER_REMOVE",
    ] {
        w.fill().await;
        let payload = json!({
            "guild_id": w.g1.to_string(),
            "user": {"id": w.member_b.to_string(), "username": "x"},
            "roles": [],
        });
        w.event(event, payload).await;
        w.assert_gone(
            event,
            &w.key(&format!("discord:guildMember:{}:{}:", w.g1, w.member_b)),
        )
        .await;
    }
    // A member of the other guild: only that entry goes.
    w.fill().await;
    let payload = json!({"guild_id": w.g2.to_string(), "user": {"id": w.member_c.to_string()}});
    w.event("GUILD_MEMBER_UPDATE", payload).await;
    w.assert_gone(
        "member c",
        &w.key(&format!("discord:guildMember:{}:{}:", w.g2, w.member_c)),
    )
    .await;
    assert_ne!(w.member_a, w.member_b);
}

#[tokio::test]
async fn guild_events() {
    let w = World::new().await;
    let bot_guilds = w.key("discord:botGuilds:");
    for event in ["GUILD_CREATE", "GUILD_UPDATE"] {
        w.fill().await;
        w.event(
            event,
            json!({"id": w.g1.to_string(), "name": "Renamed", "channels": []}),
        )
        .await;
        w.assert_gone(event, &bot_guilds).await;
    }
    w.fill().await;
    w.event("GUILD_DELETE", json!({"id": w.g1.to_string()}))
        .await;
    let mut gone = bot_guilds.clone();
    for prefix in ["guildChannels", "guildRoles", "guildMember"] {
        gone.extend(w.key(&format!("discord:{prefix}:{}:", w.g1)));
    }
    w.assert_gone("GUILD_DELETE", &gone).await;

    // An outage is not a departure: nothing changes.
    w.fill().await;
    let tags = w
        .event(
            "GUILD_DELETE",
            json!({"id": w.g2.to_string(), "unavailable": true}),
        )
        .await;
    assert!(tags.is_empty());
    w.assert_gone("GUILD_DELETE unavailable", &[]).await;
}

#[tokio::test]
async fn other_events_change_nothing_and_malformed_payloads_are_errors() {
    let w = World::new().await;
    w.fill().await;
    for event in [
        "MESSAGE_CREATE",
        "GUILD_MEMBERS_CHUNK",
        "CHANNEL_PINS_UPDATE",
        "TYPING_START",
        "READY",
    ] {
        let tags = w
            .event(
                event,
                json!({"guild_id": w.g1.to_string(), "channel_id": "1"}),
            )
            .await;
        assert!(tags.is_empty(), "{event}");
    }
    w.assert_gone("unrelated events", &[]).await;

    for (event, payload) in [
        ("GUILD_ROLE_UPDATE", json!({"role": {}})),
        ("GUILD_ROLE_DELETE", json!({"guild_id": 123})),
        (
            "GUILD_MEMBER_UPDATE",
            json!({"guild_id": "81384788765712384"}),
        ),
        ("CHANNEL_UPDATE", json!({"guild_id": "81384788765712384"})),
        ("GUILD_DELETE", json!({})),
    ] {
        let err = w
            .harness
            .discord
            .apply_gateway_event(event, &payload)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(event), "{err}");
    }
    w.assert_gone("malformed events", &[]).await;
}

#[tokio::test]
async fn channel_events_teach_the_channel_index() {
    let w = World::new().await;
    let index = w.harness.discord.policy().channel_index();
    let channel = 1_234_567_890_123_456_789u64;
    assert_eq!(index.guild_of(channel), None);
    let payload = json!({"id": channel.to_string(), "guild_id": w.g2.to_string(), "type": 0});
    w.event("CHANNEL_CREATE", payload.clone()).await;
    assert_eq!(index.guild_of(channel), Some(w.g2));
    w.event("CHANNEL_DELETE", payload).await;
    assert_eq!(index.guild_of(channel), None);
}
