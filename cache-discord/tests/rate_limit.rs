//! The rate-limit layer against the local Discord-like server, through hyper-util's client: with the
//! budget in memory, and (feature `redis`) in a private Redis shared by two layers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::BoxError;
use cache_discord::ratelimit::MaxWait;
use cache_discord::{
    DiscordBody, DiscordCacheLayer, DiscordRateLimitLayer, RateLimitConfig, RateLimitError,
};
use cache_memory::MemoryStore;
use discord_test_server::{DiscordServer, Outage, RateLimits, RouteBucket, ServerConfig};
use http::StatusCode;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

type Limited = BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<hyper::body::Incoming>,
    BoxError,
>;

fn client() -> Client<HttpConnector, DiscordBody> {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build_http()
}

fn limited(layer: &DiscordRateLimitLayer) -> Limited {
    BoxCloneSyncService::new(layer.layer(client()))
}

/// Discord's limits as the issue describes a hard case: 5 per second per bucket, 50 per second globally.
fn discord_limits() -> RateLimits {
    RateLimits {
        global_per_second: 50,
        bucket_limit: 5,
        bucket_window: Duration::from_secs(1),
        route_buckets: Vec::new(),
    }
}

fn server_config(rate_limits: RateLimits) -> ServerConfig {
    ServerConfig {
        latency: Duration::from_millis(3),
        rate_limits,
        ..ServerConfig::default()
    }
}

fn get(url: String, authorization: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url)
        .header("authorization", authorization)
        .body(Full::default())
        .expect("valid request")
}

async fn status(
    service: &Limited,
    request: http::Request<Full<Bytes>>,
) -> Result<StatusCode, BoxError> {
    service
        .clone()
        .oneshot(request)
        .await
        .map(|answer| answer.status())
}

fn refusal(error: &BoxError) -> &RateLimitError {
    error
        .downcast_ref::<RateLimitError>()
        .unwrap_or_else(|| panic!("not a rate-limit refusal: {error}"))
}

/// How each test gets its layers: in memory, or sharing one Redis.
trait Budgets {
    fn layer(&self, config: RateLimitConfig) -> DiscordRateLimitLayer;
}

struct InMemory;

impl Budgets for InMemory {
    fn layer(&self, config: RateLimitConfig) -> DiscordRateLimitLayer {
        DiscordRateLimitLayer::new(config)
    }
}

fn config() -> RateLimitConfig {
    RateLimitConfig::default()
}

// ─── Scenarios, run on each budget ────────────────────────────────────────────────────────────────

/// 20 dashboard users x 16 reads through the cache: no 429 reaches anyone, and the run takes about what
/// the limits allow (computed from what went upstream). The same reads without the layer are refused.
async fn cold_start(budgets: &impl Budgets) {
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let bot = server.bot().bot_authorization();
    let mut reads = Vec::new();
    for user in server.users().into_iter().take(20) {
        reads.push((
            "/users/@me/guilds".to_owned(),
            user.account.bearer_authorization(),
        ));
        for i in 0..15 {
            let guild = user.guilds[i % user.guilds.len()];
            let path = match i % 3 {
                0 => format!("/guilds/{guild}/channels"),
                1 => format!("/guilds/{guild}/roles"),
                _ => format!("/guilds/{guild}/members/{}", user.account.id),
            };
            reads.push((path, bot.clone()));
        }
    }
    assert_eq!(reads.len(), 320);

    // What the limits allow: the bot's distinct reads (the cache sends each once) at 50 per second,
    // and each guild's member reads at 5 per second (users' guild lists are one per token).
    let distinct: BTreeSet<&String> = reads
        .iter()
        .filter(|(_, auth)| *auth == bot)
        .map(|(url, _)| url)
        .collect();
    let mut members_per_guild: BTreeMap<&str, u64> = BTreeMap::new();
    for url in &distinct {
        if url.contains("/members/") {
            let guild = url
                .split("/guilds/")
                .nth(1)
                .unwrap()
                .split('/')
                .next()
                .unwrap();
            *members_per_guild.entry(guild).or_default() += 1;
        }
    }
    let windows = |count: u64, limit: u64| count.div_ceil(limit).saturating_sub(1);
    let allowed = windows(distinct.len() as u64, 50).max(
        members_per_guild
            .values()
            .map(|n| windows(*n, 5))
            .max()
            .unwrap_or(0),
    );
    let allowed = Duration::from_secs(allowed);

    let limits = budgets.layer(config());
    let discord =
        DiscordCacheLayer::from_env_source(MemoryStore::new(10_000), &[("CACHE_ENABLED", "true")])
            .unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(discord)
        .layer(limits.clone())
        .service(client());
    let started = Instant::now();
    let answers = futures_util::future::join_all(
        reads
            .iter()
            .map(|(path, auth)| service.clone().oneshot(get(server.url(path), auth))),
    )
    .await;
    let elapsed = started.elapsed();
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|a| a.expect("answered").status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(server.stats().rate_limited(), 0, "{:?}", server.stats());
    eprintln!(
        "cold start: {} upstream requests in {elapsed:?}; the limits allow {allowed:?}",
        server.stats().requests
    );
    let bound = allowed.mul_f64(1.1) + Duration::from_millis(150);
    assert!(
        elapsed <= bound,
        "took {elapsed:?}; the limits allow {allowed:?}"
    );
    assert!(
        elapsed >= allowed,
        "took {elapsed:?}, less than the limits allow ({allowed:?})"
    );

    // The same upstream requests, unpaced, are refused.
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let bot = server.bot().bot_authorization();
    let direct = client();
    let unpaced = futures_util::future::join_all(distinct.iter().map(|url| {
        let request = http::Request::get(server.url(url))
            .header("authorization", &bot)
            .body(DiscordBody::full(Bytes::new()))
            .unwrap();
        direct.clone().oneshot(request)
    }))
    .await;
    let refused = unpaced
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|a| a.status() == 429))
        .count();
    assert!(
        refused > 0,
        "the workload must exceed the limits without the layer"
    );
}

/// Two routes answering one bucket hash share its budget: 10 reads of a 5-per-second bucket take two
/// windows and are never refused.
async fn shared_bucket(budgets: &impl Budgets) {
    let shared = |route| RouteBucket {
        route,
        limit: 5,
        window: Duration::from_secs(1),
        shared: Some("guild reads"),
    };
    let limits = RateLimits {
        route_buckets: vec![
            shared("GET /guilds/{guild.id}/roles"),
            shared("GET /guilds/{guild.id}/channels"),
        ],
        ..discord_limits()
    };
    let server = DiscordServer::start(server_config(limits)).await.unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let layer = budgets.layer(config());
    let service = limited(&layer);
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..10).map(|i| {
        let path = if i % 2 == 0 {
            format!("/guilds/{guild}/roles")
        } else {
            format!("/guilds/{guild}/channels")
        };
        status(&service, get(server.url(&path), &bot))
    }))
    .await;
    assert!(
        answers.iter().all(|a| matches!(a, Ok(StatusCode::OK))),
        "{answers:?}"
    );
    assert_eq!(server.stats().rate_limited(), 0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the second five waited for the window"
    );
    assert!(layer.stats().snapshot().waited >= 5);
}

/// A global 429 holds every route of the token for its Retry-After, and the refused request is sent
/// once more, successfully.
async fn global_429(budgets: &impl Budgets) {
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let service = limited(&budgets.layer(config()));
    server.start_outage(Outage::global_rate_limit(Duration::from_millis(300)));
    let started = Instant::now();
    let first = tokio::spawn({
        let service = service.clone();
        let request = get(server.url(&format!("/guilds/{guild}/roles")), &bot);
        async move { status(&service, request).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.end_outage();
    // Another route of the same token, sent during the hold, waits for it too.
    let second = status(
        &service,
        get(server.url(&format!("/guilds/{guild}/channels")), &bot),
    )
    .await;
    let second_at = started.elapsed();
    assert_eq!(
        first.await.unwrap().unwrap(),
        StatusCode::OK,
        "retried after the hold"
    );
    assert_eq!(second.unwrap(), StatusCode::OK);
    // Retry-After is whole seconds: 1 s.
    assert!(
        second_at >= Duration::from_secs(1),
        "held for Retry-After: {second_at:?}"
    );
    assert_eq!(server.stats().calls_to("GET /guilds/{guild.id}/roles"), 2);
    assert_eq!(
        server.stats().calls_to("GET /guilds/{guild.id}/channels"),
        1
    );
}

/// A 429 without any of Discord's headers (the CDN's) holds every request, of every token.
async fn cloudflare_429(budgets: &impl Budgets) {
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let bot = server.bot().bot_authorization();
    let user = server.users()[0].account.bearer_authorization();
    let guild = server.guilds()[0].id;
    let layer = budgets.layer(config());
    let service = limited(&layer);
    server.start_outage(Outage::Cloudflare {
        retry_after: Some(Duration::from_secs(1)),
    });
    let started = Instant::now();
    let first = tokio::spawn({
        let service = service.clone();
        let request = get(server.url(&format!("/guilds/{guild}/roles")), &bot);
        async move { status(&service, request).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.end_outage();
    let other_token = status(&service, get(server.url("/users/@me/guilds"), &user)).await;
    assert_eq!(other_token.unwrap(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "another token waited for the CDN's hold"
    );
    assert_eq!(first.await.unwrap().unwrap(), StatusCode::OK);
    let stats = layer.stats().snapshot();
    assert_eq!((stats.rate_limited, stats.retried), (1, 1));
}

/// A route 429's precise reset is honoured, not the whole seconds of Retry-After; a hold past the
/// caller's bound hands the 429 over as Discord sent it.
async fn route_429(budgets: &impl Budgets) {
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let service = limited(&budgets.layer(config()));
    server.start_outage(Outage::route_rate_limit(Duration::from_millis(400)));
    let started = Instant::now();
    let request = get(server.url(&format!("/guilds/{guild}/roles")), &bot);
    let answer = tokio::spawn({
        let service = service.clone();
        async move { status(&service, request).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.end_outage();
    assert_eq!(answer.await.unwrap().unwrap(), StatusCode::OK);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(900),
        "{elapsed:?}"
    );

    server.start_outage(Outage::route_rate_limit(Duration::from_secs(3)));
    let mut request = get(server.url(&format!("/guilds/{guild}/channels")), &bot);
    request
        .extensions_mut()
        .insert(MaxWait(Duration::from_millis(500)));
    let before = server.stats().requests;
    assert_eq!(
        status(&service, request).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        server.stats().requests,
        before + 1,
        "not retried: the hold is past the bound"
    );
}

/// A request whose turn would come after its bound fails at once with a clear error and is never
/// sent; a caller that gives up its place lets the next one go in its stead.
async fn bounds_and_cancellation(budgets: &impl Budgets) {
    let limits = RateLimits {
        bucket_limit: 2,
        bucket_window: Duration::from_secs(1),
        ..discord_limits()
    };
    let server = DiscordServer::start(server_config(limits)).await.unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let layer = budgets.layer(config());
    let service = limited(&layer);
    let roles = || get(server.url(&format!("/guilds/{guild}/roles")), &bot);
    for _ in 0..2 {
        assert_eq!(status(&service, roles()).await.unwrap(), StatusCode::OK);
    }
    let sent = server.stats().requests;
    let mut hurried = roles();
    hurried
        .extensions_mut()
        .insert(MaxWait(Duration::from_millis(100)));
    let error = status(&service, hurried).await.unwrap_err();
    assert!(
        matches!(
            refusal(&error),
            RateLimitError::WouldWait {
                reason: "bucket",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("GET /guilds/{guild}/roles"),
        "{error}"
    );
    assert!(!error.to_string().contains(&server.bot().token));
    assert_eq!(server.stats().requests, sent, "nothing sent");

    // Two callers wait for the next window; the first gives up: the second takes its place.
    let started = Instant::now();
    let given_up = tokio::spawn({
        let (service, request) = (service.clone(), roles());
        async move { status(&service, request).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let patient = tokio::spawn({
        let (service, request) = (service.clone(), roles());
        async move { status(&service, request).await }
    });
    let third = tokio::spawn({
        let (service, request) = (service.clone(), roles());
        async move { status(&service, request).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    given_up.abort();
    assert_eq!(patient.await.unwrap().unwrap(), StatusCode::OK);
    assert_eq!(third.await.unwrap().unwrap(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(1_800),
        "both went in the next window: {:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().requests, sent + 2);
    assert_eq!(server.stats().rate_limited(), 0);
}

/// 401s mark their token: its next requests fail locally until the back-off ends, then one probes.
/// Invalid answers at the guard's limit refuse every request.
async fn invalid_requests(budgets: &impl Budgets) {
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let guild = server.guilds()[0].id;
    let layer = budgets.layer(
        config()
            .invalid_token_backoff(Duration::from_secs(1))
            .invalid_request_limit(6),
    );
    let service = limited(&layer);
    let roles = |auth: &str| get(server.url(&format!("/guilds/{guild}/roles")), auth);
    let revoked = "Bot MTIzNDU2Nzg5MDEyMzQ1Njc4.revoked.token";
    assert_eq!(
        status(&service, roles(revoked)).await.unwrap(),
        StatusCode::UNAUTHORIZED
    );
    let error = status(&service, roles(revoked)).await.unwrap_err();
    assert!(
        matches!(refusal(&error), RateLimitError::TokenRejected { .. }),
        "{error}"
    );
    assert_eq!(server.stats().requests, 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let probes =
        futures_util::future::join_all((0..3).map(|_| status(&service, roles(revoked)))).await;
    assert_eq!(server.stats().requests, 2, "one probe: {probes:?}");
    assert_eq!(probes.iter().filter(|p| p.is_ok()).count(), 1);

    // Four more invalid answers (other bad tokens): 6 in all, the guard's limit.
    for i in 0..4 {
        let forged = format!("Bot {}.forged{i}.token", "ODEzODQ3ODg3NjU3MTIzODQ");
        assert_eq!(
            status(&service, roles(&forged)).await.unwrap(),
            StatusCode::UNAUTHORIZED
        );
    }
    let sent = server.stats().requests;
    let error = status(&service, roles(&server.bot().bot_authorization()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refusal(&error),
            RateLimitError::InvalidRequestGuard { limit: 6, .. }
        ),
        "{error}"
    );
    assert_eq!(server.stats().requests, sent, "refused locally");
    assert!(layer.stats().snapshot().refused >= 3);
}

/// Interaction callbacks count against no global limit and wait for no global hold.
async fn interaction_callbacks(budgets: &impl Budgets) {
    let server = DiscordServer::start(server_config(discord_limits()))
        .await
        .unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let service = limited(&budgets.layer(config().global_limit(2)));
    // A global 429 holds the token for a second.
    server.start_outage(Outage::global_rate_limit(Duration::from_millis(300)));
    let mut held = get(server.url(&format!("/guilds/{guild}/roles")), &bot);
    held.extensions_mut().insert(MaxWait(Duration::ZERO));
    assert_eq!(
        status(&service, held).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS
    );
    server.end_outage();
    let started = Instant::now();
    let callbacks = futures_util::future::join_all((0..6).map(|i| {
        let url = server.url(&format!(
            "/interactions/{}/aW50ZXJhY3Rpb246MTIz{i}/callback",
            900 + i
        ));
        let request = http::Request::post(url)
            .header("authorization", &bot)
            .body(Full::new(Bytes::from_static(br#"{"type":4}"#)))
            .unwrap();
        status(&service, request)
    }))
    .await;
    // The local server does not know the route (404): what matters is that each went at once.
    assert!(callbacks.iter().all(|c| c.is_ok()), "{callbacks:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "6 callbacks past a global limit of 2/s and a global hold: {:?}",
        started.elapsed()
    );
    let mut normal = get(server.url(&format!("/guilds/{guild}/channels")), &bot);
    normal.extensions_mut().insert(MaxWait(Duration::ZERO));
    let error = status(&service, normal).await.unwrap_err();
    assert!(
        matches!(
            refusal(&error),
            RateLimitError::WouldWait {
                reason: "global",
                ..
            }
        ),
        "{error}"
    );
}

/// A bucket of one request per window shared by two routes. Each route's first request finds out the
/// bucket (Discord tells only in answers, so two first requests at once could both go); after that,
/// the routes' requests never make two in one window.
async fn shared_bucket_of_one(budgets: &impl Budgets) {
    let window = Duration::from_millis(400);
    let one = |route| RouteBucket {
        route,
        limit: 1,
        window,
        shared: Some("one at a time"),
    };
    let limits = RateLimits {
        route_buckets: vec![
            one("GET /guilds/{guild.id}/roles"),
            one("GET /guilds/{guild.id}/channels"),
        ],
        ..discord_limits()
    };
    let server = DiscordServer::start(server_config(limits)).await.unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let service = limited(&budgets.layer(config()));
    let read = |what: &str| get(server.url(&format!("/guilds/{guild}/{what}")), &bot);
    assert_eq!(
        status(&service, read("roles")).await.unwrap(),
        StatusCode::OK
    );
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    assert_eq!(
        status(&service, read("channels")).await.unwrap(),
        StatusCode::OK
    );
    assert_eq!(server.stats().rate_limited(), 0);
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..4).map(|i| {
        let what = if i % 2 == 0 { "roles" } else { "channels" };
        status(&service, read(what))
    }))
    .await;
    assert!(
        answers.iter().all(|a| matches!(a, Ok(StatusCode::OK))),
        "{answers:?}"
    );
    assert_eq!(server.stats().rate_limited(), 0, "{:?}", server.stats());
    // The channels discovery counts in the bucket: the first of the four waits for it too.
    assert!(started.elapsed() >= window * 4, "{:?}", started.elapsed());
}

/// A request admitted and then dropped before the client took it (the client was busy) gives its
/// grant back: the next request goes in its place instead of waiting for the window.
async fn refund_when_dropped_unsent(budgets: &impl Budgets) {
    let limits = RateLimits {
        bucket_limit: 3,
        bucket_window: Duration::from_secs(1),
        ..discord_limits()
    };
    let config = ServerConfig {
        latency: Duration::from_millis(300),
        ..server_config(limits)
    };
    let server = DiscordServer::start(config).await.unwrap();
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let layer = budgets.layer(self::config());
    // One request at a time through the client: the second waits for its readiness.
    let busy_client = tower::limit::ConcurrencyLimit::new(client(), 1);
    let service: Limited = BoxCloneSyncService::new(layer.layer(busy_client));
    let roles = || get(server.url(&format!("/guilds/{guild}/roles")), &bot);
    assert_eq!(status(&service, roles()).await.unwrap(), StatusCode::OK);
    let spawn = |request| {
        let service = service.clone();
        tokio::spawn(async move { status(&service, request).await })
    };
    let in_flight = spawn(roles());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dropped = spawn(roles());
    tokio::time::sleep(Duration::from_millis(50)).await;
    dropped.abort();
    let _ = dropped.await;
    let started = Instant::now();
    assert_eq!(status(&service, roles()).await.unwrap(), StatusCode::OK);
    let elapsed = started.elapsed();
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::OK);
    // With the grant given back: after the request in flight (200 ms) and its own 300 ms; without,
    // it would wait for the first grant to leave the window, about 400 ms more.
    assert!(elapsed < Duration::from_millis(750), "{elapsed:?}");
    assert_eq!(server.stats().requests, 3, "the dropped request never went");
    assert_eq!(server.stats().rate_limited(), 0);
    assert_eq!(layer.stats().snapshot().admitted, 3);
}

macro_rules! scenarios {
    ($module:ident, $budgets:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cold_start_of_20_users_gets_no_429_in_about_the_time_the_limits_allow() {
                cold_start(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn routes_sharing_a_bucket_hash_share_its_budget() {
                shared_bucket(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_global_429_holds_the_token_and_is_retried_once() {
                global_429(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_429_without_discord_headers_holds_everything() {
                cloudflare_429(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_route_429_is_honoured_to_the_millisecond_and_passed_on_past_the_bound() {
                route_429(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn max_wait_refuses_without_sending_and_cancelled_callers_free_their_place() {
                bounds_and_cancellation(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rejected_tokens_back_off_and_the_guard_trips() {
                invalid_requests(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn interaction_callbacks_are_exempt_from_the_global_limit_and_its_holds() {
                interaction_callbacks(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_bucket_of_one_shared_by_two_routes_is_never_exceeded() {
                shared_bucket_of_one(&$budgets).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_request_dropped_before_it_was_sent_gives_its_grant_back() {
                refund_when_dropped_unsent(&$budgets).await;
            }
        }
    };
}

scenarios!(memory, InMemory);

#[cfg(feature = "redis")]
mod shared {
    use super::*;
    use cache_redis::{RedisOptions, RedisStore};
    use redis_test_server::RedisServer;

    /// Layer prefixes, unique in the file.
    static PREFIXES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn store(url: &str, prefix: &str) -> RedisStore<()> {
        let options = RedisOptions::default()
            .key_prefix(prefix)
            .unwrap()
            .timeout(Duration::from_millis(200));
        RedisStore::connect(url, options).unwrap()
    }

    /// A private Redis for one test, stopped with it; each layer gets a prefix of its own.
    pub(super) struct InRedis(RedisServer);

    impl InRedis {
        fn start() -> Self {
            Self(RedisServer::start())
        }
    }

    impl Budgets for InRedis {
        fn layer(&self, config: RateLimitConfig) -> DiscordRateLimitLayer {
            let url = self.0.url();
            let prefix = format!(
                "rl{}",
                PREFIXES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            DiscordRateLimitLayer::new(config).shared(store(&url, &prefix).scripts())
        }
    }

    scenarios!(redis, InRedis::start());

    /// Discord's global 429s when two layers (two processes' worth) drive one token with 80 requests.
    async fn global_429s(limits: RateLimits, layers: [DiscordRateLimitLayer; 2]) -> u64 {
        let server = DiscordServer::start(server_config(limits)).await.unwrap();
        let bot = server.bot().bot_authorization();
        let guilds = server.guilds();
        let calls = layers
            .iter()
            .flat_map(|layer| {
                let service = limited(layer);
                let (server, bot) = (&server, &bot);
                guilds.iter().take(20).flat_map(move |guild| {
                    let service = service.clone();
                    ["roles", "channels"].into_iter().map(move |what| {
                        let service = service.clone();
                        async move {
                            status(
                                &service,
                                get(server.url(&format!("/guilds/{}/{what}", guild.id)), bot),
                            )
                            .await
                        }
                    })
                })
            })
            .collect::<Vec<_>>();
        assert_eq!(calls.len(), 80);
        let answers = futures_util::future::join_all(calls).await;
        assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
        server.stats().global_rate_limited
    }

    /// Two processes' worth of layers drive one token at twice the global limit: sharing Redis, Discord
    /// never refuses one; each pacing itself alone, it does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_one_global_budget() {
        let limits = RateLimits {
            global_per_second: 20,
            bucket_limit: 1_000,
            ..discord_limits()
        };
        let config = config().global_limit(20).max_wait(Duration::from_secs(10));
        let redis = RedisServer::start();
        let url = redis.url();
        let run = |layers| global_429s(limits.clone(), layers);
        let shared = [
            DiscordRateLimitLayer::new(config.clone())
                .shared(store(&url, "two-processes").scripts()),
            DiscordRateLimitLayer::new(config.clone())
                .shared(store(&url, "two-processes").scripts()),
        ];
        assert_eq!(run(shared).await, 0, "one budget for both");
        let apart = [
            DiscordRateLimitLayer::new(config.clone()),
            DiscordRateLimitLayer::new(config),
        ];
        assert!(
            run(apart).await > 0,
            "two budgets of 20/s each exceed the token's 20/s"
        );
    }

    /// The same on a Redis Cluster: the limiter's state lives under the prefix's own hash tag, on one
    /// shard, and both processes find it there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_a_redis_cluster_share_one_global_budget() {
        let limits = RateLimits {
            global_per_second: 20,
            bucket_limit: 1_000,
            ..discord_limits()
        };
        let config = config().global_limit(20).max_wait(Duration::from_secs(10));
        let cluster = redis_test_server::RedisCluster::start();
        let on_cluster = || {
            let options = RedisOptions::default()
                .key_prefix("two-on-cluster")
                .unwrap()
                .timeout(Duration::from_millis(200));
            let store = RedisStore::<()>::connect_cluster(&cluster.urls(), options).unwrap();
            DiscordRateLimitLayer::new(config.clone()).shared(store.scripts())
        };
        assert_eq!(
            global_429s(limits, [on_cluster(), on_cluster()]).await,
            0,
            "one budget for both"
        );
    }

    /// Redis killed in the middle of a stream of requests: every request is answered, the layer paces
    /// the process alone meanwhile, and goes back to Redis once it is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_killed_mid_run_never_fails_a_request() {
        let mut redis = RedisServer::start();
        let server = DiscordServer::start(server_config(discord_limits()))
            .await
            .unwrap();
        let bot = server.bot().bot_authorization();
        let guilds: Vec<u64> = server.guilds().iter().map(|g| g.id).collect();
        let layer =
            DiscordRateLimitLayer::new(config()).shared(store(&redis.url(), "killed").scripts());
        let service = limited(&layer);
        let wave = |round: usize| {
            let (service, server, bot) = (service.clone(), &server, &bot);
            futures_util::future::join_all(guilds.iter().take(10).map(move |guild| {
                let service = service.clone();
                async move {
                    status(
                        &service,
                        get(server.url(&format!("/guilds/{guild}/members/{round}")), bot),
                    )
                    .await
                }
            }))
        };
        let mut answered = Vec::new();
        answered.extend(wave(1).await);
        let before = layer.stats().snapshot();
        assert_eq!(before.fallbacks, 0);
        redis.kill();
        answered.extend(wave(2).await);
        answered.extend(wave(3).await);
        let during = layer.stats().snapshot();
        assert!(during.fallbacks >= 10, "{during:?}");
        redis.restart();
        tokio::time::sleep(Duration::from_millis(600)).await;
        answered.extend(wave(4).await);
        let back = layer.stats().snapshot();
        answered.extend(wave(5).await);
        let after = layer.stats().snapshot();
        assert_eq!(after.fallbacks, back.fallbacks, "back on Redis: {after:?}");
        assert!(after.admitted >= 50);
        // 404s (unknown members) are Discord's answers; what matters is that each request had one.
        assert_eq!(answered.len(), 50);
        assert!(answered.iter().all(|a| a.is_ok()), "{answered:?}");
        assert_eq!(server.stats().rate_limited(), 0);
    }
}
