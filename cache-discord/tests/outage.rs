//! Discord outages (a 429 or a 5xx for every request) and slowness through the cache: expired entries
//! within their stale-if-error period answer in Discord's place or after the soft timeout, nothing else
//! does, and stale-while-revalidate answers at once while it refreshes. Time is tokio's paused clock: the server has no latency unless a test
//! gives it one, so the clock moves only when a test advances it or the server sleeps.

mod support;

use std::time::Duration;

use cache_core::StalePeriods;
use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordPolicy, DiscordTtls, Snowflake};
use cache_memory::MemoryStore;
use discord_test_server::{Outage, ServerConfig};
use http::{Method, StatusCode};
use serde_json::json;
use support::{json, quiet, Harness};
use tokio::time::{advance, Instant};

const TTL: Duration = Duration::from_secs(1);
/// A wait Discord announces during the outages.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Every TTL one second, and these stale periods.
fn ttls(while_revalidate: Duration, if_error: Duration) -> DiscordTtls {
    DiscordTtls {
        user_guilds: TTL,
        bot_guilds: TTL,
        channels: TTL,
        roles: TTL,
        members: TTL,
        stale: StalePeriods {
            while_revalidate,
            if_error,
        },
    }
}

/// Fail-safe only: a minute of stale-if-error, no stale-while-revalidate.
fn fail_safe() -> DiscordTtls {
    ttls(Duration::ZERO, Duration::from_secs(60))
}

fn roles(guild: Snowflake) -> String {
    format!("/guilds/{guild}/roles")
}

/// Reads each path through the cache, asserting a 200 for each.
async fn fill(harness: &Harness, paths: &[String], authorization: &str) -> Vec<CachedResponse> {
    let mut answers = Vec::new();
    for path in paths {
        let answer = harness.get(path, authorization).await;
        assert_eq!(answer.status(), 200, "{path}");
        answers.push(answer);
    }
    answers
}

#[tokio::test(start_paused = true)]
async fn during_a_429_outage_expired_entries_answer_with_their_old_body() {
    let harness = Harness::with_ttls(quiet(), fail_safe()).await;
    let bot = harness.bot().bot_authorization();
    let guilds = harness.server.guilds();
    let paths = [roles(guilds[0].id), roles(guilds[1].id)];
    let filled = fill(&harness, &paths, &bot).await;
    advance(TTL).await;

    let outages = [
        Outage::global_rate_limit(RETRY_AFTER),
        Outage::route_rate_limit(RETRY_AFTER),
    ];
    for ((path, old), outage) in paths.iter().zip(&filled).zip(outages) {
        harness.server.start_outage(outage);
        let before = harness.upstream();
        let answer = harness.get(path, &bot).await;
        assert_eq!(
            &answer, old,
            "{outage:?}: status 200, headers and body as filled"
        );
        assert_eq!(harness.upstream(), before + 1, "Discord was asked first");
        assert_eq!(harness.last_upstream_answer().status(), 429);
    }
    assert_eq!(harness.discord.stats().snapshot().stale_served, 2);
    let server = harness.server.stats();
    assert_eq!(server.outage_answers, 2);
    assert_eq!(
        server.rate_limited(),
        0,
        "outage 429s are not the limiter's"
    );

    // Once Discord is back the next read refreshes the entry, and the one after is a fresh hit.
    harness.server.end_outage();
    let before = harness.upstream();
    assert_eq!(harness.get(&paths[0], &bot).await.status(), 200);
    assert_eq!(harness.get(&paths[0], &bot).await.status(), 200);
    assert_eq!(harness.upstream(), before + 1);
    assert_eq!(harness.discord.stats().snapshot().stale_served, 2);
}

#[tokio::test(start_paused = true)]
async fn during_a_5xx_outage_expired_entries_answer_with_their_old_body() {
    let harness = Harness::with_ttls(quiet(), fail_safe()).await;
    let bot = harness.bot().bot_authorization();
    let guilds = harness.server.guilds();
    let paths: Vec<String> = guilds[..3].iter().map(|g| roles(g.id)).collect();
    let filled = fill(&harness, &paths, &bot).await;
    advance(TTL).await;

    let statuses = [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::SERVICE_UNAVAILABLE,
    ];
    for ((path, old), status) in paths.iter().zip(&filled).zip(statuses) {
        harness.server.start_outage(Outage::server_error(status));
        let answer = harness.get(path, &bot).await;
        assert_eq!(
            &answer, old,
            "{status}: status 200, headers and body as filled"
        );
        assert_eq!(harness.last_upstream_answer().status(), status.as_u16());
    }
    assert_eq!(harness.discord.stats().snapshot().stale_served, 3);

    // Concurrent readers of one expired entry share one failing call, and each gets the old answer.
    let before = harness.upstream();
    let answers = harness.get_concurrently(&paths[0], &bot, 8).await;
    assert!(answers.iter().all(|answer| *answer == filled[0]));
    assert_eq!(harness.upstream(), before + 1, "one call for eight readers");
    assert_eq!(harness.discord.stats().snapshot().stale_served, 3 + 8);
    assert_eq!(harness.server.stats().outage_answers, 4);
}

#[tokio::test(start_paused = true)]
async fn without_a_stale_entry_the_outage_reaches_the_caller_and_is_not_stored() {
    let harness = Harness::with_ttls(quiet(), fail_safe()).await;
    let bot = harness.bot();
    let guild = harness.server.guilds()[0].id;
    let path = roles(guild);
    let key = format!("discord:guildRoles:{guild}:bot:{}", bot.id);
    let bot = bot.bot_authorization();

    harness
        .server
        .start_outage(Outage::global_rate_limit(RETRY_AFTER));
    let limited = harness.get(&path, &bot).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(
        limited,
        harness.last_upstream_answer(),
        "as Discord sent it"
    );
    assert_eq!(
        json(&limited),
        json!({"message": "You are being rate limited.", "retry_after": 5.0, "global": true})
    );
    assert_eq!(limited.header("retry-after"), Some(&b"5"[..]));
    assert_eq!(limited.header("x-ratelimit-global"), Some(&b"true"[..]));
    assert!(!harness.cached(&key).await, "a 429 is never stored");

    harness
        .server
        .start_outage(Outage::route_rate_limit(RETRY_AFTER));
    let limited = harness.get(&path, &bot).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(json(&limited)["global"], false);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some(&b"0"[..]));
    assert_eq!(
        limited.header("x-ratelimit-reset-after"),
        Some(&b"5.000"[..])
    );
    assert_eq!(limited.header("x-ratelimit-scope"), Some(&b"user"[..]));
    assert!(limited.header("x-ratelimit-bucket").is_some());

    harness
        .server
        .start_outage(Outage::server_error(StatusCode::SERVICE_UNAVAILABLE));
    let unavailable = harness.get(&path, &bot).await;
    assert_eq!(unavailable.status(), 503);
    assert_eq!(json(&unavailable)["message"], "503: Service Unavailable");
    assert!(!harness.cached(&key).await);

    harness.server.end_outage();
    let before = harness.upstream();
    assert_eq!(harness.get(&path, &bot).await.status(), 200);
    assert_eq!(
        harness.upstream(),
        before + 1,
        "the first read after the outage asks Discord"
    );
    assert!(harness.cached(&key).await);
    let stats = harness.discord.stats().snapshot();
    assert_eq!((stats.stale_served, stats.misses), (0, 4));
    assert_eq!(harness.server.stats().outage_answers, 3);
}

#[tokio::test(start_paused = true)]
async fn past_its_stale_if_error_period_an_entry_no_longer_answers() {
    let harness = Harness::with_ttls(quiet(), ttls(Duration::ZERO, Duration::from_secs(1))).await;
    let bot = harness.bot().bot_authorization();
    let path = roles(harness.server.guilds()[0].id);
    let filled = fill(&harness, std::slice::from_ref(&path), &bot).await;
    harness
        .server
        .start_outage(Outage::global_rate_limit(RETRY_AFTER));

    // 1.5 s after the fill: past the TTL, within the second of stale-if-error.
    advance(Duration::from_millis(1_500)).await;
    assert_eq!(harness.get(&path, &bot).await, filled[0]);
    // 2 s after the fill: the period is over and the entry gone.
    advance(Duration::from_millis(500)).await;
    let limited = harness.get(&path, &bot).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(json(&limited)["message"], "You are being rate limited.");
    assert_eq!(harness.discord.stats().snapshot().stale_served, 1);
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_answers_at_once_and_the_next_read_sees_the_refresh() {
    let latency = Duration::from_millis(200);
    let config = ServerConfig { latency, ..quiet() };
    let harness = Harness::with_ttls(config, ttls(Duration::from_secs(60), Duration::ZERO)).await;
    let bot = harness.bot().bot_authorization();
    let guild = harness.server.guilds()[0].clone();
    let path = roles(guild.id);
    let filled = fill(&harness, std::slice::from_ref(&path), &bot).await;

    // Another process renames a role; the cache is not told.
    let role = guild.roles[1];
    let renamed = harness
        .send_direct(
            Method::PATCH,
            &format!("/guilds/{}/roles/{role}", guild.id),
            &bot,
            Some(json!({"name": "Renamed elsewhere"})),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    advance(TTL).await;

    let asked = Instant::now();
    let stale = harness.get(&path, &bot).await;
    assert_eq!(stale, filled[0], "the old body");
    assert!(
        asked.elapsed() < latency,
        "answered without waiting for Discord"
    );
    assert_eq!(harness.service.in_flight(), 1, "the refresh runs behind");
    assert_eq!(harness.discord.stats().snapshot().stale_served, 1);

    while harness.service.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = harness.upstream();
    let fresh = harness.get(&path, &bot).await;
    assert_eq!(harness.upstream(), before, "a fresh hit");
    let role_id = role.to_string();
    let name = |answer: &CachedResponse| {
        let body = json(answer);
        let found = body
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == role_id.as_str());
        found.expect("the role")["name"].clone()
    };
    assert_eq!(name(&fresh), "Renamed elsewhere");
    assert_ne!(name(&filled[0]), "Renamed elsewhere");
    let stats = harness.discord.stats().snapshot();
    assert_eq!(
        (stats.stale_served, stats.hits, stats.refresh_failures),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_discord_is_answered_from_stale_after_the_soft_timeout() {
    let latency = Duration::from_millis(500);
    let soft = Duration::from_millis(50);
    let store = MemoryStore::new(100);
    let discord =
        DiscordCacheLayer::new(store.clone(), DiscordPolicy::new(fail_safe())).soft_timeout(soft);
    let config = ServerConfig { latency, ..quiet() };
    let harness = Harness::with_cache(config, store, discord).await;
    let bot = harness.bot().bot_authorization();
    let path = roles(harness.server.guilds()[0].id);
    let filled = fill(&harness, std::slice::from_ref(&path), &bot).await;
    advance(TTL).await;

    let asked = Instant::now();
    assert_eq!(harness.get(&path, &bot).await, filled[0]);
    let waited = asked.elapsed();
    assert!(
        waited >= soft && waited < latency,
        "answered at the soft timeout, not after Discord's latency: {waited:?}"
    );
    assert_eq!(harness.discord.stats().snapshot().stale_served, 1);

    // The call went on and stored Discord's answer: the next read is a fresh hit.
    while harness.service.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = harness.upstream();
    assert_eq!(harness.get(&path, &bot).await.status(), 200);
    assert_eq!(harness.upstream(), before);
    let stats = harness.discord.stats().snapshot();
    assert_eq!(
        (stats.hits, stats.stale_served, stats.refresh_failures),
        (1, 1, 0)
    );
}
