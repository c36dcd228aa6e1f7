//! Look-alike routes are never cached: the policy passes them through, and through the real client
//! every one of them reaches the server each time.

mod support;

use cache_core::{CachePolicy, Classified};
use cache_discord::{DiscordPolicy, DiscordTtls};
use support::{quiet, Harness};

const BOT: &str = "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl";

fn look_alikes(g: u64, u: u64) -> Vec<String> {
    vec![
        format!("/guilds/{g}/roles/member-counts"),
        format!("/guilds/{g}/members/@me"),
        format!("/guilds/{g}/members/search?query=ad&limit=5"),
        format!("/guilds/{g}/members/search"),
        format!("/guilds/{g}/members"),
        format!("/guilds/{g}/members?limit=1000"),
        format!("/guilds/{g}/roles/"),
        format!("/guilds/{g}/roles/x"),
        format!("/guilds/{g}/roles%2F"),
        format!("/guilds/%3{}/roles", &g.to_string()[1..]),
        format!("/guilds/{g}/%72oles"),
        format!("/guilds/{g}/./roles"),
        format!("/guilds/{g}/../{g}/roles"),
        format!("/guilds/{g}/channels/.."),
        format!("/guilds/{g}//channels"),
        format!("//guilds/{g}/channels"),
        format!("/guilds/{g}/channelsx"),
        format!("/guilds/{g}/channels.json"),
        format!("/guilds/{g}/members/{u}/roles"),
        format!("/guilds/{g}/members/{u}x"),
        format!("/guilds/{g}/members/0{u}"),
        format!("/guilds/{g}/members/-{u}"),
        format!("/guilds/{g}/members/{u}/"),
        format!("/guilds/abc/roles"),
        format!("/guilds/@me/roles"),
        format!("/guilds/{g}0000000000/roles"),
        format!("/Guilds/{g}/roles"),
        format!("/guilds/{g}/ROLES"),
        "/users/@me".to_owned(),
        "/users/@me/guilds/".to_owned(),
        "/users/%40me/guilds".to_owned(),
        format!("/users/{u}/guilds"),
        "/users/@me/guilds/x".to_owned(),
        "/users/@me/guilds;x".to_owned(),
    ]
}

#[test]
fn the_policy_passes_every_look_alike_through() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    let (g, u) = (81384788765712384u64, 80351110224678912u64);
    for path in look_alikes(g, u) {
        for prefix in [
            "",
            "/api",
            "/api/v9",
            "/api/v10",
            "https://discord.com/api/v10",
        ] {
            let uri = format!("{prefix}{path}");
            let Ok(request) = http::Request::get(uri.as_str())
                .header("authorization", BOT)
                .body(())
            else {
                continue; // not even a valid URI: no client can send it
            };
            assert!(
                matches!(
                    CachePolicy::<_, cache_discord::CachedResponse>::classify(&policy, &request),
                    Classified::Pass
                ),
                "{uri} must pass through"
            );
        }
    }
    for uri in [
        "/api/v8/users/@me/guilds",
        "/api/v11/users/@me/guilds",
        "/api/v10/api/v10/users/@me/guilds",
        "/v10/users/@me/guilds",
    ] {
        let request = http::Request::get(uri)
            .header("authorization", BOT)
            .body(())
            .unwrap();
        assert!(
            matches!(
                CachePolicy::<_, cache_discord::CachedResponse>::classify(&policy, &request),
                Classified::Pass
            ),
            "{uri} must pass through"
        );
    }
}

#[tokio::test]
async fn look_alikes_reach_the_server_every_time() {
    let harness = Harness::start(quiet()).await;
    let bot = harness.bot().bot_authorization();
    let guild = harness.server.guilds()[0].clone();
    let paths = [
        format!("/guilds/{}/roles/member-counts", guild.id),
        format!("/guilds/{}/members/@me", guild.id),
        format!("/guilds/{}/members/search?query=a&limit=10", guild.id),
    ];
    for path in &paths {
        let before = harness.upstream();
        let first = harness.get(path, &bot).await;
        let second = harness.get(path, &bot).await;
        assert_eq!(first.status(), 200, "{path}: {first:?}");
        assert_eq!(
            harness.upstream(),
            before + 2,
            "{path} was answered from the cache"
        );
        assert_eq!(first.body(), second.body());
    }
    // The real route next to them is cached.
    let roles = format!("/guilds/{}/roles", guild.id);
    let before = harness.upstream();
    harness.get(&roles, &bot).await;
    harness.get(&roles, &bot).await;
    assert_eq!(harness.upstream(), before + 1);
    let stats = harness.discord.stats().snapshot();
    assert_eq!((stats.hits, stats.misses, stats.passthrough), (1, 1, 6));
}
