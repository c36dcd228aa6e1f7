//! Configuration from the environment, TTL expiry on tokio's paused clock, and the cached value's codecs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_core::codec::{Bincode, Codec, MessagePack};
use cache_core::StalePeriods;
use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordTtls};
use cache_memory::MemoryStore;
use tower::{service_fn, Layer, ServiceExt};

const BOT: &str = "Bot ODEzODQ3ODg3NjU3MTIzODQ.GxYz1a.c2lnbmF0dXJl";
const VARIABLES: [&str; 7] = [
    "CACHE_DISCORD_USER_GUILDS_TTL",
    "CACHE_DISCORD_BOT_GUILDS_TTL",
    "CACHE_DISCORD_CHANNELS_TTL",
    "CACHE_DISCORD_ROLES_TTL",
    "CACHE_DISCORD_MEMBERS_TTL",
    "CACHE_DISCORD_STALE_WHILE_REVALIDATE",
    "CACHE_DISCORD_STALE_IF_ERROR",
];

#[test]
fn defaults_match_the_documented_table() {
    let ttls = DiscordTtls::from_env_source(&[("UNRELATED", "1")]).unwrap();
    assert_eq!(ttls, DiscordTtls::default());
    let secs = Duration::from_secs;
    assert_eq!(
        (
            ttls.user_guilds,
            ttls.bot_guilds,
            ttls.channels,
            ttls.roles,
            ttls.members
        ),
        (secs(60), secs(300), secs(60), secs(60), secs(30))
    );
}

#[test]
fn stale_periods_come_from_their_variables_and_are_off_by_default() {
    assert_eq!(DiscordTtls::default().stale, StalePeriods::NONE);
    let ttls = DiscordTtls::from_env_source(&[("CACHE_DISCORD_STALE_IF_ERROR", "90")]).unwrap();
    assert_eq!(
        ttls.stale,
        StalePeriods {
            while_revalidate: Duration::ZERO,
            if_error: Duration::from_secs(90),
        }
    );
    assert_eq!(
        ttls.roles,
        Duration::from_secs(60),
        "the TTLs keep their defaults"
    );

    let env = [
        ("CACHE_DISCORD_STALE_WHILE_REVALIDATE", "15"),
        ("CACHE_DISCORD_STALE_IF_ERROR", "600"),
    ];
    let discord = DiscordCacheLayer::from_env_source(MemoryStore::new(10), &env).unwrap();
    assert_eq!(
        discord.policy().ttls().stale,
        StalePeriods {
            while_revalidate: Duration::from_secs(15),
            if_error: Duration::from_secs(600),
        }
    );
}

#[test]
fn a_bad_value_is_an_error_naming_its_variable() {
    for variable in VARIABLES {
        for bad in ["60s", "-1", "1.5", "a minute", "99999999999999999999999"] {
            let env = [(variable, bad)];
            let err = DiscordTtls::from_env_source(&env).unwrap_err().to_string();
            assert!(err.contains(variable) && err.contains(bad), "{err}");
            let err = DiscordCacheLayer::from_env_source(MemoryStore::new(10), &env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(variable), "{err}");
        }
    }
    let err =
        DiscordCacheLayer::from_env_source(MemoryStore::new(10), &[("CACHE_ENABLED", "maybe")])
            .unwrap_err()
            .to_string();
    assert!(err.contains("CACHE_ENABLED"), "{err}");
}

/// An upstream answering `[]` and counting its calls.
fn upstream(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    http::Request<()>,
    Response = CachedResponse,
    Error = std::io::Error,
    Future = impl Send,
> + Clone {
    service_fn(move |_req: http::Request<()>| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(CachedResponse::json(Bytes::from_static(b"[]")))
        }
    })
}

fn get(uri: &str, authorization: &str) -> http::Request<()> {
    http::Request::get(uri)
        .header("authorization", authorization)
        .body(())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn entries_live_exactly_their_ttl() {
    let env = [
        ("CACHE_DISCORD_USER_GUILDS_TTL", "10"),
        ("CACHE_DISCORD_BOT_GUILDS_TTL", "20"),
        ("CACHE_DISCORD_CHANNELS_TTL", "30"),
        ("CACHE_DISCORD_ROLES_TTL", "40"),
        ("CACHE_DISCORD_MEMBERS_TTL", "50"),
    ];
    let cases = [
        ("/api/v10/users/@me/guilds", "Bearer user-token", 10),
        ("/api/v10/users/@me/guilds", BOT, 20),
        ("/api/v10/guilds/81384788765712384/channels", BOT, 30),
        ("/api/v10/guilds/81384788765712384/roles", BOT, 40),
        (
            "/api/v10/guilds/81384788765712384/members/80351110224678912",
            BOT,
            50,
        ),
    ];
    for (uri, auth, ttl) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let discord = DiscordCacheLayer::from_env_source(MemoryStore::new(100), &env).unwrap();
        let service = discord.cache_layer().layer(upstream(Arc::clone(&calls)));
        service.clone().oneshot(get(uri, auth)).await.unwrap();
        tokio::time::advance(Duration::from_secs(ttl) - Duration::from_millis(1)).await;
        service.clone().oneshot(get(uri, auth)).await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "{uri}: alive just before {ttl} s"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        service.clone().oneshot(get(uri, auth)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{uri}: expired at {ttl} s");
    }
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_stores_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let env = [("CACHE_DISCORD_ROLES_TTL", "0")];
    let discord = DiscordCacheLayer::from_env_source(MemoryStore::new(100), &env).unwrap();
    let service = discord.cache_layer().layer(upstream(Arc::clone(&calls)));
    for _ in 0..3 {
        service
            .clone()
            .oneshot(get("/api/v10/guilds/81384788765712384/roles", BOT))
            .await
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn cache_enabled_false_is_a_pass_through() {
    let calls = Arc::new(AtomicUsize::new(0));
    let discord =
        DiscordCacheLayer::from_env_source(MemoryStore::new(100), &[("CACHE_ENABLED", "false")])
            .unwrap();
    let service = discord.cache_layer().layer(upstream(Arc::clone(&calls)));
    for _ in 0..3 {
        service
            .clone()
            .oneshot(get("/api/v10/guilds/81384788765712384/roles", BOT))
            .await
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(discord.stats().snapshot().hits, 0);
}

#[test]
fn cached_responses_survive_every_codec_byte_for_byte() {
    let response = CachedResponse::new(
        429,
        vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("x-ratelimit-global".into(), b"true".to_vec()),
            ("retry-after".into(), b"1".to_vec()),
            ("x-ratelimit-bucket".into(), vec![0xff, b'a']),
        ],
        Bytes::from_static(
            br#"{"message":"You are being rate limited.","retry_after":0.64,"global":true}"#,
        ),
    );
    let mut bytes = Vec::new();
    Bincode.encode(&response, &mut bytes).unwrap();
    assert_eq!(Bincode.decode::<CachedResponse>(&bytes).unwrap(), response);
    bytes.clear();
    MessagePack.encode(&response, &mut bytes).unwrap();
    assert_eq!(
        MessagePack.decode::<CachedResponse>(&bytes).unwrap(),
        response
    );
}

#[test]
fn a_cached_response_replays_as_an_http_response() {
    let response = CachedResponse::new(
        200,
        vec![
            ("Content-Type".into(), b"application/json".to_vec()),
            ("x-ratelimit-remaining".into(), b"4".to_vec()),
        ],
        Bytes::from_static(b"[]"),
    );
    let http = response.clone().into_response();
    assert_eq!(http.status(), 200);
    assert_eq!(http.headers()["content-type"], "application/json");
    assert_eq!(http.headers()["x-ratelimit-remaining"], "4");
    assert_eq!(
        response.header("content-type"),
        Some(&b"application/json"[..])
    );
}

#[tokio::test]
async fn bodies_over_the_buffering_limit_fail_the_request_and_are_not_cached() {
    use cache_discord::BufferResponseLayer;
    use http_body_util::Full;

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let client = service_fn(move |_req: http::Request<()>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from(vec![
                b'x';
                2048
            ]))))
        }
    });
    let discord =
        DiscordCacheLayer::from_env_source(MemoryStore::new(100), &[("CACHE_ENABLED", "true")])
            .unwrap();
    let service = discord
        .cache_layer()
        .layer(BufferResponseLayer::new().max_body(1024).layer(client));
    for _ in 0..2 {
        let err = service
            .clone()
            .oneshot(get("/api/v10/guilds/81384788765712384/roles", BOT))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1024"), "{err}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the failure was not cached"
    );
}
