//! The proxy in front of the Discord-like server, driven over real connections.

use std::time::Duration;

use bytes::Bytes;
use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordRateLimitLayer, RateLimitConfig};
use cache_discord_proxy::{Proxy, ProxySettings, RunningProxy};
use cache_memory::MemoryStore;
use discord_test_server::{DiscordServer, Outage, RateLimits, ServerConfig};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_cache::EnvStore;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

struct Setup {
    server: DiscordServer,
    proxy: RunningProxy,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn setup(config: ServerConfig) -> Setup {
    setup_with(config, |settings| settings).await
}

async fn setup_with(
    config: ServerConfig,
    adjust: impl FnOnce(ProxySettings) -> ProxySettings,
) -> Setup {
    let server = DiscordServer::start(config).await.unwrap();
    let settings = ProxySettings::new(
        "127.0.0.1:0".parse().unwrap(),
        &format!("http://{}", server.addr()),
    )
    .unwrap()
    .admin("127.0.0.1:0".parse().unwrap(), ADMIN_TOKEN)
    .unwrap();
    let settings = adjust(settings);
    let store = EnvStore::Memory(MemoryStore::<CachedResponse>::new(10_000));
    let discord =
        DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")]).unwrap();
    let limits = DiscordRateLimitLayer::new(RateLimitConfig::default());
    let proxy = Proxy::new(settings, store, discord, limits)
        .start()
        .await
        .unwrap();
    Setup {
        server,
        proxy,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

fn quiet() -> ServerConfig {
    ServerConfig {
        latency: Duration::from_millis(1),
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("http://{}/api/v10{path}", self.proxy.addr())
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy.admin_addr().unwrap())
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> Answer {
        let response = self
            .client
            .request(request)
            .await
            .expect("the proxy answers");
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn get(&self, path: &str, authorization: &str) -> Answer {
        self.get_with(path, &[("authorization", authorization)])
            .await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = http::Request::get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Full::default()).unwrap()).await
    }

    async fn admin(
        &self,
        method: http::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(self.admin_url(path));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(
            request
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_reads_are_cached_and_answered_without_old_rate_limit_headers() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    let first = setup.get(&format!("/guilds/{guild}/roles"), &bot).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.headers.contains_key("x-ratelimit-limit"),
        "Discord's own answer keeps its headers"
    );
    for _ in 0..20 {
        let again = setup.get(&format!("/guilds/{guild}/roles"), &bot).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body, first.body);
        assert!(!again
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("x-ratelimit-")));
    }
    // The first read vouched for the token (uncached), the second filled the cache, the rest hit.
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_token_claiming_the_bots_id_gets_no_cached_data() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot();
    let guild = setup.server.guilds()[0].id;
    let path = format!("/guilds/{guild}/roles");
    for _ in 0..3 {
        assert_eq!(
            setup.get(&path, &bot.bot_authorization()).await.status,
            StatusCode::OK
        );
    }
    let id_segment = bot.token.split('.').next().unwrap();
    let forged = format!("Bot {id_segment}.Zm9yZ2Vk.c2lnbmF0dXJlLWZvcmdlZA");
    for _ in 0..3 {
        let answer = setup.get(&path, &forged).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
        assert!(!answer.body.starts_with(b"["));
    }
}

/// `GET /gateway` answers any token, as Discord's does: its success must not vouch for a forged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_on_a_route_that_ignores_tokens_vouches_for_nothing() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot();
    let guild = setup.server.guilds()[0].id;
    let path = format!("/guilds/{guild}/roles");
    for _ in 0..3 {
        assert_eq!(
            setup.get(&path, &bot.bot_authorization()).await.status,
            StatusCode::OK
        );
    }
    let id_segment = bot.token.split('.').next().unwrap();
    let forged = format!("Bot {id_segment}.Zm9yZ2Vk.c2lnbmF0dXJlLWZvcmdlZA");
    let gateway = setup.get("/gateway", &forged).await;
    assert_eq!(gateway.status, StatusCode::OK, "Discord answers anybody");
    for _ in 0..3 {
        let answer = setup.get(&path, &forged).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
    }
}

/// Discord keeps one token per bot: once the reset token is accepted, the old one gets no cached data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_bot_token_gets_no_cached_data_once_its_successor_is_accepted() {
    let setup = setup(quiet()).await;
    let old = setup.server.bot();
    let guild = setup.server.guilds()[0].id;
    let path = format!("/guilds/{guild}/roles");
    for _ in 0..3 {
        assert_eq!(
            setup.get(&path, &old.bot_authorization()).await.status,
            StatusCode::OK
        );
    }
    let new = setup.server.reset_token(old.id);
    for _ in 0..3 {
        assert_eq!(
            setup.get(&path, &new.bot_authorization()).await.status,
            StatusCode::OK
        );
    }
    let answer = setup.get(&path, &old.bot_authorization()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
}

/// A cached read's 401 may have been fetched with another token of the bot (single flight shares it):
/// the proxy asks Discord again with the caller's own token instead of handing it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_shared_by_single_flight_is_not_handed_to_another_token() {
    let setup = setup(ServerConfig {
        latency: Duration::from_millis(1_000),
        ..quiet()
    })
    .await;
    let old = setup.server.bot();
    let guild = setup.server.guilds()[0].id;
    let roles = format!("/guilds/{guild}/roles");
    let channels = format!("/guilds/{guild}/channels");
    // Uncached: vouches for the old token, teaches the limiter both routes, leaves `roles` cold.
    for path in [&roles, &channels] {
        assert_eq!(
            setup.get(path, &old.bot_authorization()).await.status,
            StatusCode::OK
        );
    }
    let new = setup.server.reset_token(old.id);
    let setup = std::sync::Arc::new(setup);
    // The new token is accepted (at about 1,000 ms) while the old one's cached read of `roles` is in
    // flight (300 to 1,300 ms); the new token's read of `roles` right after joins that flight.
    let vouch = tokio::spawn({
        let (setup, new) = (setup.clone(), new.bot_authorization());
        let channels = channels.clone();
        async move { setup.get(&channels, &new).await.status }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked = tokio::spawn({
        let (setup, old) = (setup.clone(), old.bot_authorization());
        let roles = roles.clone();
        async move { setup.get(&roles, &old).await.status }
    });
    assert_eq!(vouch.await.unwrap(), StatusCode::OK);
    let dedupes = || async {
        let stats = setup
            .admin(http::Method::GET, "/stats", Some(ADMIN_TOKEN), json!({}))
            .await
            .json();
        stats["cache"]["dedupes"].as_u64().unwrap()
    };
    let before = dedupes().await;
    let joined = setup.get(&roles, &new.bot_authorization()).await;
    assert_eq!(dedupes().await, before + 1, "joined the old token's flight");
    assert_eq!(joined.status, StatusCode::OK, "{:?}", joined.body);
    assert!(joined
        .json()
        .as_array()
        .is_some_and(|roles| !roles.is_empty()));
    assert_eq!(revoked.await.unwrap(), StatusCode::UNAUTHORIZED);
}

/// Entries serve every client of a scope: they are fetched uncompressed, whatever the filling client
/// accepts. What is not cached keeps its `Accept-Encoding` and arrives compressed, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_are_stored_uncompressed_and_passthrough_keeps_its_encoding() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    let roles = format!("/guilds/{guild}/roles");
    let gzip = [("authorization", bot.as_str()), ("accept-encoding", "gzip")];
    // The vouching read is Discord's own answer to this client: compressed as asked.
    let direct = setup.get_with(&roles, &gzip).await;
    assert_eq!(direct.status, StatusCode::OK);
    assert_eq!(direct.headers["content-encoding"], "gzip");
    // The read that fills the cache, then a hit for a client that accepts no compression.
    for headers in [&gzip[..], &gzip[..1]] {
        let answer = setup.get_with(&roles, headers).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(!answer.headers.contains_key("content-encoding"));
        assert!(answer.json().is_array(), "{:?}", answer.body);
    }
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        2
    );
    // A write through the cache is read back: its answer was readable.
    let role = setup.server.guilds()[0].roles[1];
    let request = http::Request::patch(setup.url(&format!("/guilds/{guild}/roles/{role}")))
        .header("authorization", &bot)
        .header("accept-encoding", "gzip")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"name":"renamed"}"#)))
        .unwrap();
    assert_eq!(setup.send(request).await.status, StatusCode::OK);
    let after = setup.get_with(&roles, &gzip[..1]).await.json();
    assert!(after
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "renamed"));
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        2,
        "the entry was updated from the write's answer, not invalidated"
    );
    // Not cached: compressed as asked, the bytes Discord sent.
    let counts = format!("/guilds/{guild}/roles/member-counts");
    let through = setup.get_with(&counts, &gzip).await;
    assert_eq!(through.headers["content-encoding"], "gzip");
    let upstream = Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>()
        .request(
            http::Request::get(setup.server.url(&counts))
                .header("authorization", &bot)
                .header("accept-encoding", "gzip")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let upstream = upstream.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(through.body, upstream);
}

/// A large answer (100 messages of about 6.5 KB) streams through unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_answer_arrives_byte_for_byte() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let channel = setup.server.guilds()[0].channels[0];
    let path = format!("/channels/{channel}/messages?limit=100");
    let through = setup.get(&path, &bot).await;
    assert_eq!(through.status, StatusCode::OK);
    assert!(through.body.len() > 600_000, "{} bytes", through.body.len());
    let upstream = Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>()
        .request(
            http::Request::get(setup.server.url(&path))
                .header("authorization", &bot)
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let upstream = upstream.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(through.body, upstream);
    assert_eq!(through.json().as_array().map(Vec::len), Some(100));
}

/// A write whose client disconnects before the answer still reaches Discord once and still updates
/// the cache: dropping it midway could leave Discord changed and the cache not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_client_leaves_still_completes_and_updates_the_cache() {
    let setup = setup(ServerConfig {
        latency: Duration::from_millis(300),
        ..quiet()
    })
    .await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    let role = setup.server.guilds()[0].roles[1];
    let roles = format!("/guilds/{guild}/roles");
    for _ in 0..2 {
        setup.get(&roles, &bot).await;
    }
    let body = r#"{"name":"renamed-while-away"}"#;
    let mut client = tokio::net::TcpStream::connect(setup.proxy.addr())
        .await
        .unwrap();
    client
        .write_all(
            format!(
                "PATCH /api/v10/guilds/{guild}/roles/{role} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {bot}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    let route = "PATCH /guilds/{guild.id}/roles/{role.id}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while setup.server.stats().processed_by(route) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(setup.server.stats().processed_by(route), 1, "sent once");
    let before = setup
        .server
        .stats()
        .calls_to("GET /guilds/{guild.id}/roles");
    let read = setup.get(&roles, &bot).await.json();
    assert!(read
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "renamed-while-away"));
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        before,
        "answered from the entry the write updated"
    );
}

/// Past `CACHE_PROXY_MAX_CONNECTIONS`, a new connection waits to be served until an open one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_one_to_close() {
    let setup = setup_with(quiet(), |mut settings| {
        settings.max_connections = 1;
        settings
    })
    .await;
    let request = b"GET /api/v10/gateway HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(setup.proxy.addr())
        .await
        .unwrap();
    first.write_all(request).await.unwrap();
    let mut answer = [0; 4096];
    let read = first.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    // The first stays open (keep-alive): the second waits.
    let mut second = tokio::net::TcpStream::connect(setup.proxy.addr())
        .await
        .unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut answer)).await;
    assert!(waited.is_err(), "served past the cap");
    drop(first);
    let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut answer))
        .await
        .expect("served once the first closed")
        .unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
}

/// A client that never finishes its request head is cut off (no slowloris).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_off() {
    let setup = setup_with(quiet(), |mut settings| {
        settings.header_read_timeout = Duration::from_millis(300);
        settings
    })
    .await;
    let mut slow = tokio::net::TcpStream::connect(setup.proxy.addr())
        .await
        .unwrap();
    slow.write_all(b"GET /api/v10/gateway HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "still open after 5 s");
    // One that sends nothing at all (before the protocol is even known).
    let mut silent = tokio::net::TcpStream::connect(setup.proxy.addr())
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a silent connection still open after 5 s");
}

/// Dropping the proxy (unlike [`RunningProxy::shutdown`]) ends it at once, requests in flight included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_proxy_closes_its_connections_at_once() {
    let setup = setup(ServerConfig {
        latency: Duration::from_millis(1_500),
        ..quiet()
    })
    .await;
    let h2c = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    let mut in_flight = Vec::new();
    // Two routes: a second request of one route would wait for the first to learn its bucket.
    for (client, path) in [
        (&setup.client, "/gateway".to_owned()),
        (&h2c, format!("/guilds/{guild}/roles/member-counts")),
    ] {
        let request = http::Request::get(setup.url(&path))
            .header("authorization", &bot)
            .body(Full::default())
            .unwrap();
        in_flight.push(tokio::spawn(client.request(request)));
    }
    while setup.server.stats().requests < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Setup { proxy, server, .. } = setup;
    drop(proxy);
    for request in in_flight {
        let ended = tokio::time::timeout(Duration::from_secs(1), request)
            .await
            .expect("a request outlived its proxy")
            .unwrap();
        assert!(ended.is_err(), "answered: {ended:?}");
    }
    // Their relays were cancelled too (HTTP/2 streams run as tasks of their own): the upstream,
    // which counts a request once it has answered it, answered neither.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let stats = server.stats();
    assert_eq!(stats.processed_by("GET /gateway"), 0);
    assert_eq!(
        stats.processed_by("GET /guilds/{guild.id}/roles/member-counts"),
        0
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_never_see_each_others_guild_lists() {
    let setup = setup(quiet()).await;
    let users = setup.server.users();
    let (a, b) = (&users[0], &users[1]);
    for _ in 0..3 {
        let of_a = setup
            .get("/users/@me/guilds", &a.account.bearer_authorization())
            .await
            .json();
        let of_b = setup
            .get("/users/@me/guilds", &b.account.bearer_authorization())
            .await
            .json();
        let ids = |list: &Value| -> Vec<u64> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|g| g["id"].as_str().unwrap().parse().unwrap())
                .collect()
        };
        assert_eq!(ids(&of_a), a.guilds);
        assert_eq!(ids(&of_b), b.guilds);
    }
}

/// Sends raw bytes to the proxy and returns the status line's code and the whole answer.
async fn raw(setup: &Setup, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(setup.proxy.addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_attempts_reach_nothing_but_the_upstream() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    // An absolute-form URI naming another host, and a Host header naming another: the upstream answers.
    let (status, answer) = raw(
        &setup,
        &format!("GET http://169.254.169.254/api/v10/guilds/{guild}/roles HTTP/1.1\r\nHost: 169.254.169.254\r\nAuthorization: {bot}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("@everyone"));
    let before = setup.server.stats().requests;
    for (path, expected) in [
        ("/metrics", 404),
        ("/healthz", 404),
        ("/api/../healthz", 400),
        ("/api/v10/%2e%2e/%2e%2e/metrics", 400),
        ("/api/v10/guilds%2f1/roles", 400),
        ("/api/v10/./users/@me", 400),
    ] {
        let (status, answer) = raw(
            &setup,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
    assert_eq!(
        setup.server.stats().requests,
        before,
        "none of them reached anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_reach_the_client_as_discord_sent_them_and_passthrough_keeps_headers() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    // Not a cached read: streamed through with every end-to-end header.
    let counts = setup
        .get(&format!("/guilds/{guild}/roles/member-counts"), &bot)
        .await;
    assert_eq!(counts.status, StatusCode::OK);
    assert!(
        counts.headers.contains_key("set-cookie")
            && counts.headers.contains_key("x-ratelimit-bucket")
    );
    setup.server.fail_next(1, StatusCode::BAD_GATEWAY);
    let failed = setup.get(&format!("/guilds/{guild}/channels"), &bot).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    assert_eq!(failed.json()["message"], "Upstream failure");
    // A 429 whose wait is past the limiter's bound (5 s) is handed over as Discord sent it.
    setup
        .server
        .start_outage(Outage::route_rate_limit(Duration::from_secs(30)));
    let limited = setup.get(&format!("/guilds/{guild}/members/1"), &bot).await;
    setup.server.end_outage();
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["message"], "You are being rate limited.");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_routes_need_their_token_and_keep_the_cache_fresh() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    let roles = format!("/guilds/{guild}/roles");
    for _ in 0..3 {
        setup.get(&roles, &bot).await;
    }
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        2
    );
    use http::Method;
    let path = format!("/invalidate/guild/{guild}");
    assert_eq!(
        setup
            .admin(Method::POST, &path, None, json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        setup
            .admin(
                Method::POST,
                &path,
                Some("wrong-token-0123456789"),
                json!({})
            )
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let same_length = format!("{}0", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    assert_ne!(same_length, ADMIN_TOKEN);
    assert_eq!(
        setup
            .admin(Method::POST, &path, Some(&same_length), json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        setup
            .admin(Method::POST, &path, Some(ADMIN_TOKEN), json!({}))
            .await
            .status,
        StatusCode::OK
    );
    setup.get(&roles, &bot).await;
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        3,
        "invalidated: fetched again"
    );
    setup.get(&roles, &bot).await;
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        3
    );

    // A gateway event forwarded by the bot, as a batch of one.
    let events = json!([{"t": "GUILD_ROLE_UPDATE", "d": {"guild_id": guild.to_string(), "role": {"id": "1"}}}]);
    let applied = setup
        .admin(Method::POST, "/events", Some(ADMIN_TOKEN), events)
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.json());
    assert_eq!(applied.json()["applied"], 1);
    setup.get(&roles, &bot).await;
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        4
    );

    let stats = setup
        .admin(Method::GET, "/stats", Some(ADMIN_TOKEN), json!({}))
        .await
        .json();
    assert!(stats["cache"]["hits"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["backend"], "memory");
    let metrics = setup
        .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), json!({}))
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&metrics.body).contains("discord_rate_limit_admitted_total"));
    assert_eq!(
        setup
            .admin(Method::GET, "/metrics", None, json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        setup
            .admin(Method::GET, "/healthz", None, json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let ready = setup.admin(Method::GET, "/readyz", None, json!({})).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish() {
    let config = ServerConfig {
        latency: Duration::from_millis(400),
        ..quiet()
    };
    let setup = setup(config).await;
    let bot = setup.server.bot().bot_authorization();
    let request = http::Request::get(setup.url("/users/@me/guilds"))
        .header("authorization", &bot)
        .body(Full::default())
        .unwrap();
    let in_flight = tokio::spawn(setup.client.request(request));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Setup {
        proxy,
        server,
        client,
    } = setup;
    let addr = proxy.addr();
    proxy.shutdown().await;
    let answer = in_flight
        .await
        .unwrap()
        .expect("answered before the proxy stopped");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    drop((server, client));
}

/// Two proxy instances on one Redis share entries, invalidations and the rate-limit budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis() {
    use cache_redis::{RedisOptions, RedisStore};
    let redis = redis_test_server::RedisServer::start();
    let server = DiscordServer::start(quiet()).await.unwrap();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let settings = ProxySettings::new(
            "127.0.0.1:0".parse().unwrap(),
            &format!("http://{}", server.addr()),
        )
        .unwrap()
        .admin("127.0.0.1:0".parse().unwrap(), ADMIN_TOKEN)
        .unwrap();
        let options = RedisOptions::default().key_prefix("proxies").unwrap();
        let store =
            EnvStore::Redis(RedisStore::<CachedResponse>::connect(&redis.url(), options).unwrap());
        let discord =
            DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")])
                .unwrap();
        let limits = DiscordRateLimitLayer::new(RateLimitConfig::default())
            .shared(store.redis_scripts().unwrap());
        instances.push(
            Proxy::new(settings, store, discord, limits)
                .start()
                .await
                .unwrap(),
        );
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let read = |proxy: &RunningProxy| {
        let request = http::Request::get(format!(
            "http://{}/api/v10/guilds/{guild}/roles",
            proxy.addr()
        ))
        .header("authorization", &bot)
        .body(Full::default())
        .unwrap();
        let client = client.clone();
        async move { client.request(request).await.unwrap().status() }
    };
    let calls = || server.stats().calls_to("GET /guilds/{guild.id}/roles");
    for _ in 0..3 {
        assert_eq!(read(&instances[0]).await, StatusCode::OK);
    }
    assert_eq!(calls(), 2);
    // The second instance vouches for the token once, then reads the first one's entry.
    for _ in 0..3 {
        assert_eq!(read(&instances[1]).await, StatusCode::OK);
    }
    assert_eq!(calls(), 3);
    // Invalidated through the first instance's control route: the second fetches again.
    let invalidate = http::Request::post(format!(
        "http://{}/invalidate/guild/{guild}",
        instances[0].admin_addr().unwrap()
    ))
    .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
    .body(Full::default())
    .unwrap();
    assert_eq!(
        client.request(invalidate).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(read(&instances[1]).await, StatusCode::OK);
    assert_eq!(calls(), 4);
    assert_eq!(read(&instances[0]).await, StatusCode::OK);
    assert_eq!(calls(), 4);
    // Both admitted their requests through the one budget in Redis.
    let keys = redis.command(&["SCAN", "0", "MATCH", "{proxies}:rl:*", "COUNT", "10000"]);
    assert!(
        keys.contains("{proxies}:rl:"),
        "rate-limit state in Redis: {keys}"
    );
}

/// 64-bit FNV-1a, as the local server reports what it received.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_megabyte_multipart_upload_arrives_byte_for_byte() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let channel = setup.server.guilds()[0].channels[0];
    let boundary = "cache-discord-proxy-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{{\"attachments\":[{{\"id\":0,\"filename\":\"big.bin\"}}]}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    let mut state: u32 = 0x1234_5678;
    body.extend((0..5 * 1024 * 1024).map(|_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    }));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let request = http::Request::post(setup.url(&format!("/channels/{channel}/messages")))
        .header("authorization", &bot)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("x-audit-log-reason", "upload")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let answer = setup.send(request).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    let message = answer.json();
    assert_eq!(message["attachments"][0]["size"], body.len());
    assert_eq!(message["body_fnv1a"], format!("{:016x}", fnv1a(&body)));
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("POST /channels/{channel.id}/messages"),
        1,
        "sent once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_may_speak_http2_without_tls() {
    let setup = setup(quiet()).await;
    let bot = setup.server.bot().bot_authorization();
    let guild = setup.server.guilds()[0].id;
    let h2c = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    for _ in 0..3 {
        let request = http::Request::get(setup.url(&format!("/guilds/{guild}/roles")))
            .header("authorization", &bot)
            .body(Full::default())
            .unwrap();
        let response = h2c.request(request).await.expect("an HTTP/2 answer");
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        2
    );
}

/// An `https://` upstream with a private authority (`CACHE_PROXY_CA_FILE`): TLS by rustls, HTTP/2 by
/// ALPN since the upstream offers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_upstream_is_reached_over_http2_with_its_authority() {
    let server = DiscordServer::start_tls(quiet()).await.unwrap();
    let ca = tempfile_with(server.ca_pem().unwrap());
    let settings = ProxySettings::from_env_source(&[
        ("CACHE_PROXY_ADDR", "127.0.0.1:0"),
        ("DISCORD_API_URL", server.base_url().as_str()),
        ("CACHE_PROXY_CA_FILE", ca.to_str().unwrap()),
    ])
    .unwrap();
    let store = EnvStore::Memory(MemoryStore::<CachedResponse>::new(100));
    let discord =
        DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")]).unwrap();
    let limits = DiscordRateLimitLayer::new(RateLimitConfig::default());
    let proxy = Proxy::new(settings, store, discord, limits)
        .start()
        .await
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let guild = server.guilds()[0].id;
    for _ in 0..3 {
        let request = http::Request::get(format!(
            "http://{}/api/v10/guilds/{guild}/roles",
            proxy.addr()
        ))
        .header("authorization", server.bot().bot_authorization())
        .body(Full::default())
        .unwrap();
        assert_eq!(
            client.request(request).await.unwrap().status(),
            StatusCode::OK
        );
    }
    let stats = server.stats();
    assert_eq!(stats.calls_to("GET /guilds/{guild.id}/roles"), 2);
    assert_eq!(
        stats.http2_requests, stats.requests,
        "HTTP/2 to the upstream"
    );

    // The web PKI roots do not trust this authority: no answer from a stranger's certificate.
    let untrusting =
        ProxySettings::new("127.0.0.1:0".parse().unwrap(), &server.base_url()).unwrap();
    let store = EnvStore::Memory(MemoryStore::<CachedResponse>::new(100));
    let discord =
        DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")]).unwrap();
    let proxy = Proxy::new(
        untrusting,
        store,
        discord,
        DiscordRateLimitLayer::new(RateLimitConfig::default()),
    )
    .start()
    .await
    .unwrap();
    let request = http::Request::get(format!(
        "http://{}/api/v10/guilds/{guild}/roles",
        proxy.addr()
    ))
    .header("authorization", server.bot().bot_authorization())
    .body(Full::default())
    .unwrap();
    assert_eq!(
        client.request(request).await.unwrap().status(),
        StatusCode::BAD_GATEWAY
    );
}

/// A file removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_with(contents: &[u8]) -> TempFile {
    let path = std::env::temp_dir().join(format!(
        "cache-discord-proxy-ca-{}-{}.pem",
        std::process::id(),
        contents.len()
    ));
    std::fs::write(&path, contents).unwrap();
    TempFile(path)
}
