//! Credentials never cross: two users, a user and the bot, two bots. And no raw token in keys, traces
//! or `Debug` output.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use cache_core::{CachePolicy, Classified};
use cache_discord::{CachedResponse, DiscordPolicy, DiscordTtls};
use support::{ids, json, quiet, Harness};

#[tokio::test]
async fn two_users_each_get_their_own_guild_list() {
    let harness = Harness::start(quiet()).await;
    let users = harness.server.users();
    let (a, b) = users
        .iter()
        .flat_map(|a| users.iter().map(move |b| (a, b)))
        .find(|(a, b)| a.guilds != b.guilds)
        .expect("two users with different guilds");
    let list = |user: &discord_test_server::FixtureUser| {
        user.guilds.iter().map(u64::to_string).collect::<Vec<_>>()
    };

    let a_first = harness
        .get("/users/@me/guilds", &a.account.bearer_authorization())
        .await;
    let b_first = harness
        .get("/users/@me/guilds", &b.account.bearer_authorization())
        .await;
    assert_eq!(ids(&a_first), list(a));
    assert_eq!(ids(&b_first), list(b), "b got a's list");
    assert_eq!(harness.upstream(), 2);

    let a_again = harness
        .get("/users/@me/guilds", &a.account.bearer_authorization())
        .await;
    let b_again = harness
        .get("/users/@me/guilds", &b.account.bearer_authorization())
        .await;
    assert_eq!((a_again, b_again), (a_first, b_first));
    assert_eq!(harness.upstream(), 2, "both answered from the cache");
}

#[tokio::test]
async fn a_user_and_the_bot_do_not_share_entries() {
    let harness = Harness::start(quiet()).await;
    let user = harness.server.users()[0].clone();
    let bot = harness.bot();
    let guild = user.guilds[0];

    let user_list = harness
        .get("/users/@me/guilds", &user.account.bearer_authorization())
        .await;
    let bot_list = harness
        .get("/users/@me/guilds", &bot.bot_authorization())
        .await;
    assert_eq!(
        harness.upstream(),
        2,
        "the bot's read was not answered with the user's list"
    );
    assert_eq!(ids(&bot_list).len(), harness.server.guilds().len());
    assert_ne!(ids(&user_list), ids(&bot_list));

    // Guild routes: the bot may read them, the user may not (Discord answers 403). Neither answer is
    // served to the other.
    let roles = format!("/guilds/{guild}/roles");
    let bot_roles = harness.get(&roles, &bot.bot_authorization()).await;
    assert_eq!(bot_roles.status(), 200);
    let user_roles = harness
        .get(&roles, &user.account.bearer_authorization())
        .await;
    assert_eq!(
        user_roles.status(),
        403,
        "the user was served the bot's roles"
    );
    assert_eq!(harness.upstream(), 4);
    let bot_again = harness.get(&roles, &bot.bot_authorization()).await;
    assert_eq!(bot_again, bot_roles);
    assert_eq!(harness.upstream(), 4);
}

#[tokio::test]
async fn two_bots_sharing_one_store_do_not_share_entries() {
    let harness = Harness::start(quiet()).await;
    let guilds = harness.server.guilds();
    let first = harness.bot();
    // A second bot in the first guild only.
    let second = harness.server.add_bot("Other Bot", &[guilds[0].id]);

    let first_list = harness
        .get("/users/@me/guilds", &first.bot_authorization())
        .await;
    let second_list = harness
        .get("/users/@me/guilds", &second.bot_authorization())
        .await;
    assert_eq!(ids(&first_list).len(), guilds.len());
    assert_eq!(ids(&second_list), [guilds[0].id.to_string()]);
    assert_eq!(harness.upstream(), 2);

    // The first bot caches a guild the second is not in: the second bot must get Discord's 403.
    let channels = format!("/guilds/{}/channels", guilds[1].id);
    assert_eq!(
        harness
            .get(&channels, &first.bot_authorization())
            .await
            .status(),
        200
    );
    let denied = harness.get(&channels, &second.bot_authorization()).await;
    assert_eq!(denied.status(), 403);
    assert_eq!(json(&denied)["code"], 50001);
    assert_eq!(harness.upstream(), 4);

    // Keys are scoped by the bot id from each token.
    assert!(
        harness
            .cached(&format!("discord:botGuilds:{}", first.id))
            .await
    );
    assert!(
        harness
            .cached(&format!("discord:botGuilds:{}", second.id))
            .await
    );
    assert!(
        harness
            .cached(&format!(
                "discord:guildChannels:{}:bot:{}",
                guilds[1].id, first.id
            ))
            .await
    );
    assert!(
        !harness
            .cached(&format!(
                "discord:guildChannels:{}:bot:{}",
                guilds[1].id, second.id
            ))
            .await
    );
}

/// A `Write` that appends to a shared buffer, for capturing traces.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn raw_tokens_appear_in_no_key_trace_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let harness = Harness::start(quiet()).await;
    let bot = harness.bot();
    let user = harness.server.users()[0].clone();
    let guild = user.guilds[0];
    let member = format!("/guilds/{guild}/members/{}", user.account.id);
    for (path, auth) in [
        (
            "/users/@me/guilds".to_owned(),
            user.account.bearer_authorization(),
        ),
        ("/users/@me/guilds".to_owned(), bot.bot_authorization()),
        (member.clone(), bot.bot_authorization()),
        (member.clone(), user.account.bearer_authorization()),
    ] {
        harness.get(&path, &auth).await;
        harness.get(&path, &auth).await;
    }
    harness
        .send(
            http::Method::PATCH,
            &member,
            &bot.bot_authorization(),
            Some(serde_json::json!({"nick": "x"})),
        )
        .await;

    let policy = DiscordPolicy::new(DiscordTtls::default());
    let mut keys = Vec::new();
    for auth in [user.account.bearer_authorization(), bot.bot_authorization()] {
        let request = http::Request::get(harness.server.url(&member))
            .header("authorization", auth.as_str())
            .body(())
            .unwrap();
        let classified = CachePolicy::<_, CachedResponse>::classify(&policy, &request);
        keys.push(format!("{classified:?}"));
        if let Classified::Read { key, .. } = classified {
            keys.push(key);
        }
    }
    let debug = format!(
        "{:?} {:?} {:?}",
        harness.discord,
        bot,
        harness.server.users()
    );

    let traces = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(traces.contains("cache"), "traces were captured: {traces}");
    for token in [&user.account.token, &bot.token] {
        // The token, and its secret part alone (a bot token's first segment is only its public id).
        let secret = token.rsplit('.').next().unwrap();
        for (what, text) in [
            ("traces", &traces),
            ("keys", &keys.join(" ")),
            ("debug", &debug),
        ] {
            assert!(!text.contains(secret), "a token leaked into {what}");
        }
    }
}
