//! Every row of the policy table: key, tags and TTL, for every accepted spelling of the request.

use std::time::Duration;

use bytes::Bytes;
use cache_core::{CachePolicy, Classified, FillPlan};
use cache_discord::{CachedResponse, DiscordPolicy, DiscordTtls, UserKey};

const GUILD: u64 = 81384788765712384;
const USER: u64 = 80351110224678912;
const BOT_ID: u64 = 81384788765712384;
/// A bot token whose first segment is base64 for `BOT_ID`.
const BOT: &str = "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
const USER_TOKEN: &str = "6qrZcUqja7812RVdnEKjpzOL4CvHBFG";

fn request(method: &str, uri: &str, authorization: &str) -> http::Request<()> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", authorization)
        .body(())
        .unwrap()
}

fn read(policy: &DiscordPolicy, uri: &str, authorization: &str) -> (String, FillPlan) {
    let req = request("GET", uri, authorization);
    let Classified::Read { key, read } = policy.classify(&req) else {
        panic!("{uri} should be a cached read");
    };
    let ok = CachedResponse::json(Bytes::from_static(b"[]"));
    let plan = CachePolicy::<http::Request<()>, _>::fill(policy, &key, &read, &ok);
    (key, plan)
}

fn user_key() -> String {
    UserKey::from_access_token(USER_TOKEN).to_string()
}

fn bearer() -> String {
    format!("Bearer {USER_TOKEN}")
}

/// Every way real clients spell one path.
fn spellings(path: &str) -> Vec<String> {
    vec![
        path.to_owned(),
        format!("/api/v9{path}"),
        format!("/api/v10{path}"),
        format!("https://discord.com/api/v10{path}"),
        format!("http://127.0.0.1:8080/api/v9{path}"),
    ]
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn user_guilds_row() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    for uri in spellings("/users/@me/guilds") {
        let (key, plan) = read(&policy, &uri, &bearer());
        assert_eq!(key, format!("discord:userGuilds:{}", user_key()), "{uri}");
        assert_eq!(plan.tags, [format!("discord:user:{}", user_key())]);
        assert_eq!(plan.ttl, secs(60));
    }
}

#[test]
fn bot_guilds_row() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    for uri in spellings("/users/@me/guilds") {
        let (key, plan) = read(&policy, &uri, BOT);
        assert_eq!(key, format!("discord:botGuilds:{BOT_ID}"), "{uri}");
        assert_eq!(
            plan.tags,
            [
                format!("discord:bot:{BOT_ID}"),
                "discord:botGuilds".to_owned()
            ]
        );
        assert_eq!(plan.ttl, secs(300));
    }
}

#[test]
fn guild_channels_row() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    for uri in spellings(&format!("/guilds/{GUILD}/channels")) {
        let (key, plan) = read(&policy, &uri, BOT);
        assert_eq!(
            key,
            format!("discord:guildChannels:{GUILD}:bot:{BOT_ID}"),
            "{uri}"
        );
        assert_eq!(
            plan.tags,
            [
                format!("discord:guild:{GUILD}"),
                format!("discord:guild:{GUILD}:channels"),
                "discord:channels".to_owned()
            ]
        );
        assert_eq!(plan.ttl, secs(60));
    }
}

#[test]
fn guild_roles_row() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    for uri in spellings(&format!("/guilds/{GUILD}/roles")) {
        let (key, plan) = read(&policy, &uri, BOT);
        assert_eq!(
            key,
            format!("discord:guildRoles:{GUILD}:bot:{BOT_ID}"),
            "{uri}"
        );
        assert_eq!(
            plan.tags,
            [
                format!("discord:guild:{GUILD}"),
                format!("discord:guild:{GUILD}:roles")
            ]
        );
        assert_eq!(plan.ttl, secs(60));
    }
}

#[test]
fn guild_member_row() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    for uri in spellings(&format!("/guilds/{GUILD}/members/{USER}")) {
        let (key, plan) = read(&policy, &uri, BOT);
        assert_eq!(
            key,
            format!("discord:guildMember:{GUILD}:{USER}:bot:{BOT_ID}"),
            "{uri}"
        );
        assert_eq!(
            plan.tags,
            [
                format!("discord:guild:{GUILD}"),
                format!("discord:guild:{GUILD}:member:{USER}"),
                format!("discord:guild:{GUILD}:members")
            ]
        );
        assert_eq!(plan.ttl, secs(30));
    }
}

#[test]
fn guild_data_read_with_a_user_token_is_scoped_and_tagged_by_that_user() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    let (key, plan) = read(
        &policy,
        &format!("/api/v10/guilds/{GUILD}/roles"),
        &bearer(),
    );
    assert_eq!(
        key,
        format!("discord:guildRoles:{GUILD}:user:{}", user_key())
    );
    assert!(plan.tags.contains(&format!("discord:user:{}", user_key())));
}

#[test]
fn ttls_come_from_the_environment() {
    let env = [
        ("CACHE_DISCORD_USER_GUILDS_TTL", "11"),
        ("CACHE_DISCORD_BOT_GUILDS_TTL", "12"),
        ("CACHE_DISCORD_CHANNELS_TTL", "13"),
        ("CACHE_DISCORD_ROLES_TTL", "14"),
        ("CACHE_DISCORD_MEMBERS_TTL", "15"),
    ];
    let policy = DiscordPolicy::new(DiscordTtls::from_env_source(&env).unwrap());
    let ttl = |uri: &str, auth: &str| read(&policy, uri, auth).1.ttl;
    assert_eq!(ttl("/api/v10/users/@me/guilds", &bearer()), secs(11));
    assert_eq!(ttl("/api/v10/users/@me/guilds", BOT), secs(12));
    assert_eq!(
        ttl(&format!("/api/v10/guilds/{GUILD}/channels"), BOT),
        secs(13)
    );
    assert_eq!(
        ttl(&format!("/api/v10/guilds/{GUILD}/roles"), BOT),
        secs(14)
    );
    assert_eq!(
        ttl(&format!("/api/v10/guilds/{GUILD}/members/{USER}"), BOT),
        secs(15)
    );
}

#[test]
fn query_parameters_that_change_the_answer_are_in_the_key_in_canonical_order() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    let key = |uri: &str| read(&policy, uri, &bearer()).0;
    let base = format!("discord:userGuilds:{}", user_key());
    assert_eq!(key("/api/v10/users/@me/guilds?"), base);
    assert_eq!(
        key("/api/v10/users/@me/guilds?limit=50"),
        format!("{base}?limit=50")
    );
    assert_eq!(
        key("/api/v10/users/@me/guilds?with_counts=true&limit=50&after=80351110224678912"),
        format!("{base}?after=80351110224678912&limit=50&with_counts=true")
    );
    assert_eq!(
        key("/api/v10/users/@me/guilds?after=80351110224678912&limit=50&with_counts=true"),
        key("/api/v10/users/@me/guilds?limit=50&with_counts=true&after=80351110224678912"),
    );
    assert_ne!(
        key("/api/v10/users/@me/guilds?before=80351110224678912"),
        key("/api/v10/users/@me/guilds?after=80351110224678912")
    );
    // Query variants keep the same tags, so one invalidation reaches all of them.
    let (_, plan) = read(&policy, "/api/v10/users/@me/guilds?limit=5", &bearer());
    assert_eq!(plan.tags, [format!("discord:user:{}", user_key())]);
    let (bot_key, _) = read(&policy, "/api/v10/users/@me/guilds?with_counts=true", BOT);
    assert_eq!(
        bot_key,
        format!("discord:botGuilds:{BOT_ID}?with_counts=true")
    );
}

#[test]
fn unknown_or_malformed_query_parameters_pass_through() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    for uri in [
        "/api/v10/users/@me/guilds?foo=bar",
        "/api/v10/users/@me/guilds?limit=10&limit=20",
        "/api/v10/users/@me/guilds?limit=1000",
        "/api/v10/users/@me/guilds?with_counts=yes",
        &format!("/api/v10/guilds/{GUILD}/roles?limit=10"),
        &format!("/api/v10/guilds/{GUILD}/channels?x=1"),
        &format!("/api/v10/guilds/{GUILD}/members/{USER}?with_counts=true"),
    ] {
        let req = request("GET", uri, BOT);
        assert!(
            matches!(policy.classify(&req), Classified::Pass),
            "{uri} should pass through"
        );
    }
}

#[test]
fn error_answers_get_a_zero_ttl() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    let req = request("GET", &format!("/api/v10/guilds/{GUILD}/roles"), BOT);
    let Classified::Read { key, read } = policy.classify(&req) else {
        panic!()
    };
    for status in [400, 401, 403, 404, 429, 500, 502, 503] {
        let answer = CachedResponse::new(status, Vec::new(), Bytes::from_static(b"{}"));
        let plan = CachePolicy::<http::Request<()>, _>::fill(&policy, &key, &read, &answer);
        assert_eq!(plan.ttl, Duration::ZERO, "{status}");
        assert!(plan.tags.is_empty());
    }
}

#[test]
fn reads_without_a_recognised_credential_pass_through() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    let uri = format!("/api/v10/guilds/{GUILD}/roles");
    for authorization in [
        "",
        "Basic dXNlcjpwYXNz",
        "Bot not-a-bot-token",
        "Bearer",
        "Bot bm90LWFuLWlk.x.y",
    ] {
        let req = request("GET", &uri, authorization);
        assert!(
            matches!(policy.classify(&req), Classified::Pass),
            "{authorization:?}"
        );
    }
    let no_header = http::Request::get(&uri).body(()).unwrap();
    assert!(matches!(policy.classify(&no_header), Classified::Pass));
    let mut two = request("GET", &uri, BOT);
    two.headers_mut()
        .append("authorization", bearer().parse().unwrap());
    assert!(
        matches!(policy.classify(&two), Classified::Pass),
        "two credentials"
    );
}

#[test]
fn write_routes_are_classified_as_writes() {
    let policy = DiscordPolicy::new(DiscordTtls::default());
    let c = 41771983423143937u64;
    let r = 41771983423143936u64;
    for (method, path) in [
        ("PATCH", format!("/guilds/{GUILD}/members/{USER}")),
        ("PATCH", format!("/guilds/{GUILD}/members/@me")),
        ("PUT", format!("/guilds/{GUILD}/members/{USER}/roles/{r}")),
        (
            "DELETE",
            format!("/guilds/{GUILD}/members/{USER}/roles/{r}"),
        ),
        ("DELETE", format!("/guilds/{GUILD}/members/{USER}")),
        ("PUT", format!("/guilds/{GUILD}/bans/{USER}")),
        ("POST", format!("/guilds/{GUILD}/roles")),
        ("PATCH", format!("/guilds/{GUILD}/roles")),
        ("PATCH", format!("/guilds/{GUILD}/roles/{r}")),
        ("DELETE", format!("/guilds/{GUILD}/roles/{r}")),
        ("POST", format!("/guilds/{GUILD}/channels")),
        ("PATCH", format!("/guilds/{GUILD}/channels")),
        ("PATCH", format!("/channels/{c}")),
        ("DELETE", format!("/channels/{c}")),
        ("PUT", format!("/channels/{c}/permissions/{r}")),
        ("DELETE", format!("/channels/{c}/permissions/{r}")),
        ("DELETE", format!("/users/@me/guilds/{GUILD}")),
    ] {
        let req = request(method, &format!("/api/v10{path}?reason=x"), BOT);
        assert!(
            matches!(policy.classify(&req), Classified::Write(_)),
            "{method} {path} should be a write"
        );
    }
    // Other methods on read paths are neither reads nor writes.
    for (method, path) in [
        ("HEAD", format!("/guilds/{GUILD}/roles")),
        ("POST", format!("/guilds/{GUILD}/members/{USER}")),
        ("GET", format!("/users/@me/guilds/{GUILD}")),
        ("DELETE", format!("/guilds/{GUILD}/channels")),
    ] {
        let req = request(method, &format!("/api/v10{path}"), BOT);
        assert!(
            matches!(policy.classify(&req), Classified::Pass),
            "{method} {path}"
        );
    }
}
