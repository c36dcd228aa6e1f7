//! The Discord layer as an `http` service over the real HTTP client and the local Discord-like server:
//! cached reads come back as `http::Response`s, recognised writes keep Discord's whole head and still
//! change the cache, everything else streams through untouched.

mod support;

use bytes::Bytes;
use cache_discord::DiscordCacheLayer;
use cache_memory::MemoryStore;
use discord_test_server::DiscordServer;
use http::Method;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use support::{http_client, quiet};
use tower::{Layer, ServiceExt};

struct Fixture {
    server: DiscordServer,
    discord: DiscordCacheLayer<MemoryStore<cache_discord::CachedResponse>>,
    bot: String,
    guild: u64,
}

impl Fixture {
    async fn new(enabled: &str) -> Self {
        let server = DiscordServer::start(quiet()).await.unwrap();
        let discord = DiscordCacheLayer::from_env_source(
            MemoryStore::new(1_000),
            &[("CACHE_ENABLED", enabled)],
        )
        .unwrap();
        let bot = server.bot().bot_authorization();
        let guild = server.guilds()[0].id;
        Self {
            server,
            discord,
            bot,
            guild,
        }
    }

    /// Sends a request with the bot's token through the layer and reads the whole answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (http::response::Parts, Bytes) {
        self.send_as(Some(&self.bot), method, path, body).await
    }

    /// Sends a request with `authorization` (or none) through the layer and reads the whole answer.
    async fn send_as(
        &self,
        authorization: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (http::response::Parts, Bytes) {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method)
            .uri(self.server.url(path))
            .header("content-type", "application/json");
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let request = request.body(Full::new(body)).unwrap();
        let service = self.discord.layer(http_client());
        let response = service.oneshot(request).await.expect("answered");
        let (parts, body) = response.into_parts();
        (
            parts,
            body.collect().await.expect("a whole body").to_bytes(),
        )
    }

    fn upstream(&self) -> u64 {
        self.server.stats().requests
    }
}

fn ids(body: &[u8]) -> Vec<String> {
    let list: Value = serde_json::from_slice(body).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_cached_read_answers_http_with_its_kept_headers() {
    let f = Fixture::new("true").await;
    let roles = format!("/guilds/{}/roles", f.guild);
    let (first, first_body) = f.send(Method::GET, &roles, None).await;
    let before = f.upstream();
    let (second, second_body) = f.send(Method::GET, &roles, None).await;
    assert_eq!(f.upstream(), before, "the second read is a hit");
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_eq!(first_body, second_body);
    assert_eq!(second.headers["content-type"], "application/json");
    assert!(second.headers.contains_key("x-ratelimit-bucket"));
    assert!(
        !second.headers.contains_key("set-cookie") && !second.headers.contains_key("via"),
        "a cached answer replays kept headers only: {:?}",
        second.headers
    );
    assert_eq!(f.discord.stats().snapshot().hits, 1);
}

#[tokio::test]
async fn a_write_keeps_discords_head_and_updates_the_cache() {
    let f = Fixture::new("true").await;
    let roles = format!("/guilds/{}/roles", f.guild);
    let (_, before) = f.send(Method::GET, &roles, None).await;
    let (head, created) = f
        .send(Method::POST, &roles, Some(json!({"name": "Through HTTP"})))
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.headers["via"], "1.1 local-discord",
        "every header of the write's answer"
    );
    assert!(head.headers.contains_key("set-cookie"));
    let created: Value = serde_json::from_slice(&created).unwrap();
    assert_eq!(created["name"], "Through HTTP");

    let calls = f.upstream();
    let (_, after) = f.send(Method::GET, &roles, None).await;
    assert_eq!(f.upstream(), calls, "the cached list was edited in place");
    assert_eq!(ids(&after).len(), ids(&before).len() + 1);
}

#[tokio::test]
async fn other_requests_stream_through_untouched() {
    let f = Fixture::new("true").await;
    let look_alike = format!("/guilds/{}/roles/member-counts", f.guild);
    for _ in 0..2 {
        let before = f.upstream();
        let (head, _) = f.send(Method::GET, &look_alike, None).await;
        assert_eq!(f.upstream(), before + 1, "never cached");
        assert_eq!(head.headers["via"], "1.1 local-discord");
    }
    let stats = f.discord.stats().snapshot();
    assert_eq!(
        (stats.hits, stats.misses),
        (0, 0),
        "the cache never saw them"
    );
    assert_eq!(stats.passthrough, 2, "counted as pass-throughs");
}

#[tokio::test]
async fn a_read_without_a_usable_credential_streams_through() {
    let f = Fixture::new("true").await;
    let roles = format!("/guilds/{}/roles", f.guild);
    for authorization in [
        None,
        Some("Bot not-a-bot-token"),
        Some("Basic dXNlcjpwdw=="),
    ] {
        let before = f.upstream();
        let (head, _) = f.send_as(authorization, Method::GET, &roles, None).await;
        assert_eq!(f.upstream(), before + 1, "{authorization:?}");
        assert_eq!(head.status.as_u16(), 401, "{authorization:?}");
        assert_eq!(
            head.headers["via"], "1.1 local-discord",
            "Discord's whole head"
        );
    }
    let stats = f.discord.stats().snapshot();
    assert_eq!((stats.hits, stats.misses, stats.passthrough), (0, 0, 3));
}

#[tokio::test]
async fn with_caching_off_every_request_reaches_discord_as_it_is() {
    let f = Fixture::new("false").await;
    let roles = format!("/guilds/{}/roles", f.guild);
    for _ in 0..2 {
        let before = f.upstream();
        let (head, body) = f.send(Method::GET, &roles, None).await;
        assert_eq!(f.upstream(), before + 1);
        assert!(
            head.headers.contains_key("set-cookie"),
            "{:?}",
            head.headers
        );
        assert!(!ids(&body).is_empty());
    }
}
