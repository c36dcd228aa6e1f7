//! discord.js's own REST client (@discordjs/rest from npm, `tests/node`) pointed at the proxy in front
//! of the Discord-like server. Needs Node.js; the packages are installed with `npm ci` on first use.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordRateLimitLayer, RateLimitConfig};
use cache_discord_proxy::{Proxy, ProxySettings, RunningProxy};
use cache_memory::MemoryStore;
use discord_test_server::{DiscordServer, Outage, RateLimits, ServerConfig};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tower_cache::EnvStore;

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `npm ci` once per test run when the packages are missing; a missing Node.js is a loud failure.
fn ensure_node_client() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return;
    }
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "these tests drive discord.js's REST client and need Node.js 18 or later on PATH \
         (Debian: apt-get install nodejs npm)"
    );
    if !node_dir().join("node_modules/@discordjs/rest").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(node_dir())
            .status()
            .expect("npm runs (it comes with Node.js)");
        assert!(
            status.success(),
            "npm ci in {} failed",
            node_dir().display()
        );
    }
    *installed = true;
}

/// Runs the client with `input` and returns its report.
async fn discordjs(input: Value) -> Vec<Value> {
    ensure_node_client();
    let output = tokio::process::Command::new("node")
        .arg("client.mjs")
        .arg(input.to_string())
        .current_dir(node_dir())
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    report["steps"].as_array().cloned().unwrap_or_default()
}

struct Setup {
    server: DiscordServer,
    proxy: RunningProxy,
}

impl Setup {
    async fn start(rate_limits: RateLimits) -> Self {
        let server = DiscordServer::start(ServerConfig {
            latency: Duration::from_millis(2),
            rate_limits,
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let settings = ProxySettings::new(
            "127.0.0.1:0".parse().unwrap(),
            &format!("http://{}", server.addr()),
        )
        .unwrap();
        let store = EnvStore::Memory(MemoryStore::<CachedResponse>::new(10_000));
        let discord =
            DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")])
                .unwrap();
        let limits = DiscordRateLimitLayer::new(RateLimitConfig::default());
        let proxy = Proxy::new(settings, store, discord, limits)
            .start()
            .await
            .unwrap();
        Self { server, proxy }
    }

    fn api(&self) -> String {
        format!("http://{}/api", self.proxy.addr())
    }
}

fn discord_limits() -> RateLimits {
    RateLimits {
        global_per_second: 50,
        bucket_limit: 5,
        bucket_window: Duration::from_secs(1),
        route_buckets: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_cached_reads_are_not_slowed_by_the_clients_limiter() {
    // Two per window: the answer that fills the cache is the window's last (nothing remaining), the
    // answer a client's limiter would wait on if hits replayed its headers.
    let setup = Setup::start(RateLimits {
        bucket_limit: 2,
        ..discord_limits()
    })
    .await;
    let bot = setup.server.bot();
    let guild = setup.server.guilds()[0].id;
    let path = format!("/guilds/{guild}/roles");
    let steps = discordjs(json!({
        "api": setup.api(),
        "token": bot.token,
        // The proxy paces what reaches Discord; a client pointed at it lifts its own global pacing.
        "globalRequestsPerSecond": 1_000_000,
        "steps": [{"method": "get", "path": path, "repeat": 500}],
    }))
    .await;
    assert_eq!(steps[0]["status"], 200, "{:?}", steps[0]);
    let client_ms = steps[0]["ms"].as_f64().unwrap();
    assert_eq!(
        setup
            .server
            .stats()
            .calls_to("GET /guilds/{guild.id}/roles"),
        2,
        "one read to vouch for the token, one to fill the cache"
    );

    // The same 500 hits from a Rust client, for scale.
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let started = Instant::now();
    for _ in 0..500 {
        let request = http::Request::get(format!("{}/v10{path}", setup.api()))
            .header("authorization", bot.bot_authorization())
            .body(Full::default())
            .unwrap();
        let answer = client.request(request).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.into_body().collect().await.unwrap();
    }
    let hits_ms = started.elapsed().as_secs_f64() * 1000.0;
    eprintln!("500 reads: @discordjs/rest {client_ms:.0} ms, raw proxy hits {hits_ms:.0} ms");
    // Paced by the filling answer's headers (nothing remaining) it would take 500 s.
    assert!(client_ms < 10_000.0, "{client_ms} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_discordjs_are_read_back() {
    let setup = Setup::start(RateLimits::unlimited()).await;
    let bot = setup.server.bot();
    let guild = &setup.server.guilds()[0];
    let role = guild.roles[1];
    let member = guild.members[0];
    let steps = discordjs(json!({
        "api": setup.api(),
        "token": bot.token,
        "steps": [
            {"method": "get", "path": format!("/guilds/{}/roles", guild.id), "repeat": 3},
            {"method": "patch", "path": format!("/guilds/{}/roles/{role}", guild.id), "body": {"name": "renamed by discord.js"}, "reason": "audit reason"},
            {"method": "get", "path": format!("/guilds/{}/roles", guild.id)},
            {"method": "get", "path": format!("/guilds/{}/members/{member}", guild.id), "repeat": 2},
            {"method": "patch", "path": format!("/guilds/{}/members/{member}", guild.id), "body": {"nick": "nick from discord.js"}},
            {"method": "get", "path": format!("/guilds/{}/members/{member}", guild.id)},
        ],
    }))
    .await;
    assert!(steps.iter().all(|s| s["status"] == 200), "{steps:?}");
    let renamed = steps[2]["body"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "renamed by discord.js");
    assert!(
        renamed,
        "the write's answer updated the cached list: {:?}",
        steps[2]
    );
    assert_eq!(steps[5]["body"]["nick"], "nick from discord.js");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_forged_tokens_reach_discordjs_as_discord_answered() {
    let setup = Setup::start(RateLimits::unlimited()).await;
    let bot = setup.server.bot();
    let guild = setup.server.guilds()[0].id;
    let roles = format!("/guilds/{guild}/roles");
    let warm = discordjs(json!({"api": setup.api(), "token": bot.token, "steps": [{"method": "get", "path": roles, "repeat": 3}]})).await;
    assert_eq!(warm[0]["status"], 200);

    let forged = format!(
        "{}.Zm9yZ2Vk.c2lnbmF0dXJl",
        bot.token.split('.').next().unwrap()
    );
    // discord.js drops a token Discord answered 401, so each try is a client of its own.
    for _ in 0..2 {
        let steps = discordjs(json!({"api": setup.api(), "token": forged, "steps": [{"method": "get", "path": roles}]})).await;
        assert_eq!(steps[0]["status"], 401, "{steps:?}");
    }

    setup.server.fail_next(1, StatusCode::BAD_GATEWAY);
    let steps = discordjs(json!({"api": setup.api(), "token": bot.token, "steps": [{"method": "get", "path": format!("/guilds/{guild}/channels")}]})).await;
    assert_eq!(steps[0]["status"], 502, "{steps:?}");

    setup
        .server
        .start_outage(Outage::route_rate_limit(Duration::from_secs(30)));
    let steps = discordjs(json!({"api": setup.api(), "token": bot.token, "steps": [{"method": "get", "path": format!("/guilds/{guild}/members/1")}]})).await;
    setup.server.end_outage();
    assert_eq!(steps[0]["status"], 429, "{steps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_tokens_never_see_each_others_entries() {
    let setup = Setup::start(RateLimits::unlimited()).await;
    let users = setup.server.users();
    for user in &users[..2] {
        let steps = discordjs(json!({
            "api": setup.api(),
            "token": user.account.token,
            "authPrefix": "Bearer",
            "steps": [{"method": "get", "path": "/users/@me/guilds", "repeat": 3}],
        }))
        .await;
        let ids: Vec<u64> = steps[0]["body"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, user.guilds);
    }
    assert_eq!(setup.server.stats().calls_to("GET /users/@me/guilds"), 4);
}
