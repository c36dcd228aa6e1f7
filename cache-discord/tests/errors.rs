//! Error answers (429, 5xx, 4xx) are never cached, and reach callers exactly as Discord sent them.

mod support;

use std::time::Duration;

use discord_test_server::{RateLimits, ServerConfig};
use http::StatusCode;
use support::{json, quiet, Harness};

#[tokio::test]
async fn a_route_429_is_replayed_exactly_and_not_cached() {
    let config = ServerConfig {
        rate_limits: RateLimits {
            global_per_second: 1_000,
            bucket_limit: 1,
            bucket_window: Duration::from_secs(60),
            route_buckets: Vec::new(),
        },
        ..quiet()
    };
    let harness = Harness::start(config).await;
    let bot = harness.bot().bot_authorization();
    let guilds = harness.server.guilds();
    let (g0, g1) = (guilds[0].id, guilds[1].id);

    // The user's own bucket: one request per minute. A 429 for one user must not be stored...
    let user = harness.server.users()[0].account.bearer_authorization();
    let ok = harness.get("/users/@me/guilds?limit=10", &user).await;
    assert_eq!(ok.status(), 200);
    let limited = harness.get("/users/@me/guilds?limit=20", &user).await;
    assert_eq!(limited.status(), 429);
    let upstream_answer = harness.last_upstream_answer();
    assert_eq!(
        limited, upstream_answer,
        "status, kept headers and body as received"
    );
    let body = json(&limited);
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["global"], false);
    assert!(body["retry_after"].as_f64().unwrap() > 0.0);
    for header in [
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
        "x-ratelimit-scope",
        "content-type",
    ] {
        assert!(limited.header(header).is_some(), "{header} was dropped");
    }
    assert_eq!(limited.header("x-ratelimit-remaining"), Some(&b"0"[..]));
    assert_eq!(
        limited.header("set-cookie"),
        None,
        "cookies are never replayed"
    );
    assert_eq!(limited.header("via"), None);

    // ...so the same read goes upstream again (and is limited again), while the success stays cached.
    let before = harness.upstream();
    assert_eq!(
        harness
            .get("/users/@me/guilds?limit=20", &user)
            .await
            .status(),
        429
    );
    assert_eq!(harness.upstream(), before + 1);
    assert_eq!(harness.get("/users/@me/guilds?limit=10", &user).await, ok);
    assert_eq!(harness.upstream(), before + 1);

    // The bot's buckets are per guild: g0 is allowed once, then limited; g1 is untouched.
    assert_eq!(
        harness
            .get(&format!("/guilds/{g0}/roles"), &bot)
            .await
            .status(),
        200
    );
    assert_eq!(
        harness
            .get(&format!("/guilds/{g0}/channels"), &bot)
            .await
            .status(),
        200
    );
    assert_eq!(
        harness
            .get(&format!("/guilds/{g1}/roles"), &bot)
            .await
            .status(),
        200
    );
    let member = format!("/guilds/{g0}/members/{}", guilds[0].members[0]);
    assert_eq!(harness.get(&member, &bot).await.status(), 200);
    let second_member = format!("/guilds/{g0}/members/{}", guilds[0].members[1]);
    assert_eq!(harness.get(&second_member, &bot).await.status(), 429);
    assert_eq!(harness.get(&second_member, &bot).await.status(), 429);
    assert_eq!(harness.server.stats().route_rate_limited, 4);
    let stats = harness.discord.stats().snapshot();
    assert_eq!(stats.hits, 1, "only the cached success was a hit");
}

#[tokio::test]
async fn a_global_429_is_replayed_with_its_global_headers() {
    let config = ServerConfig {
        rate_limits: RateLimits {
            global_per_second: 2,
            bucket_limit: 1_000,
            bucket_window: Duration::from_secs(1),
            route_buckets: Vec::new(),
        },
        ..quiet()
    };
    let harness = Harness::start(config).await;
    let bot = harness.bot().bot_authorization();
    let guilds = harness.server.guilds();
    // Two requests per second pass; the first 429 ends the loop. Going on past the third request keeps
    // the test independent of timing: a loaded machine may let a window roll over between requests,
    // but not between every pair of twenty.
    let mut limited = None;
    for guild in &guilds {
        let answer = harness
            .get(&format!("/guilds/{}/roles", guild.id), &bot)
            .await;
        if answer.status() == 429 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a request over the global limit of two per second");
    assert_eq!(limited, harness.last_upstream_answer());
    assert_eq!(limited.header("x-ratelimit-global"), Some(&b"true"[..]));
    assert_eq!(limited.header("x-ratelimit-scope"), Some(&b"global"[..]));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(json(&limited)["global"], true);
    assert_eq!(harness.server.stats().global_rate_limited, 1);
}

#[tokio::test]
async fn server_errors_and_not_found_are_not_cached() {
    let harness = Harness::start(quiet()).await;
    let bot = harness.bot().bot_authorization();
    let guild = harness.server.guilds()[0].clone();
    let roles = format!("/guilds/{}/roles", guild.id);

    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        harness.server.fail_next(1, status);
        let before = harness.upstream();
        let failed = harness.get(&roles, &bot).await;
        assert_eq!(failed.status(), status.as_u16());
        assert_eq!(failed, harness.last_upstream_answer());
        assert!(
            !harness
                .cached(&format!(
                    "discord:guildRoles:{}:bot:{}",
                    guild.id,
                    harness.bot().id
                ))
                .await
        );
        // The next read goes upstream and gets the real answer.
        let answer = harness.get(&roles, &bot).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(harness.upstream(), before + 2);
        harness
            .discord
            .invalidate_discord_guild_cache(guild.id)
            .await
            .unwrap();
    }

    // 404 for an unknown member: not cached either.
    let missing = format!("/guilds/{}/members/{}", guild.id, 1234567890123456789u64);
    let before = harness.upstream();
    let first = harness.get(&missing, &bot).await;
    let second = harness.get(&missing, &bot).await;
    assert_eq!((first.status(), second.status()), (404, 404));
    assert_eq!(json(&first)["code"], 10007);
    assert_eq!(harness.upstream(), before + 2);
}

#[tokio::test]
async fn concurrent_reads_share_one_failing_call_without_storing_it() {
    let config = ServerConfig {
        latency: Duration::from_millis(50),
        ..quiet()
    };
    let harness = Harness::start(config).await;
    let bot = harness.bot().bot_authorization();
    let roles = format!("/guilds/{}/roles", harness.server.guilds()[0].id);
    harness.server.fail_next(1, StatusCode::BAD_GATEWAY);
    let answers = harness.get_concurrently(&roles, &bot, 8).await;
    assert!(answers.iter().all(|a| a.status() == 502), "{answers:?}");
    assert_eq!(harness.upstream(), 1, "one upstream call for eight readers");
    assert_eq!(harness.get(&roles, &bot).await.status(), 200);
    assert_eq!(harness.upstream(), 2);
}
