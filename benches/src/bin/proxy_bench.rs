//! The Discord proxy against @discordjs/proxy 2.1.1 (from npm, `benches/node`), in front of the same
//! local upstream, driven by the same load generator, in one run:
//!
//! - `upstream`: the local Discord-like server itself, the baseline of cached reads;
//! - `discordjs_proxy/pass_through` and `proxy/pass_through`: a read neither caches
//!   (`GET /guilds/{g}/roles/member-counts`), relayed;
//! - `proxy/cached`: a cached read (`GET /guilds/{g}/roles`);
//! - `discord_like_upstream` and `proxy/cached_over_discord_like`: the same cached read straight from
//!   an upstream that takes Discord's time to answer (`--discord-latency-ms`, 40 by default; still no
//!   limits, which would only widen the gap), and through a proxy in front of it.
//!
//! `cargo run --release -p benches --bin proxy_bench [-- --seconds 3 --connections 64 --discord-latency-ms 40]`
//!
//! Each target gets the connections for the given time after a warm-up; one JSON line per target
//! (requests per second, p50, p99), then the ratios. The upstream answers at once and has no limits;
//! both proxies' global pacing is lifted, so the figures are the proxies' own cost. Needs Node.js (the
//! packages are installed with `npm ci` when missing).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_discord::{CachedResponse, DiscordCacheLayer, DiscordRateLimitLayer, RateLimitConfig};
use cache_discord_proxy::{Proxy, ProxySettings};
use cache_memory::MemoryStore;
use discord_test_server::{DiscordServer, RateLimits, ServerConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tower_cache::EnvStore;

struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `connections` keep-alive connections, each sending `GET url` back to back for `duration`.
async fn drive(url: &str, authorization: &str, connections: usize, duration: Duration) -> Figures {
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = Instant::now() + duration;
    for _ in 0..connections {
        let (url, authorization) = (url.to_owned(), authorization.to_owned());
        tasks.spawn(async move {
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http::<Full<Bytes>>();
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let request = http::Request::get(&url)
                    .header("authorization", &authorization)
                    .body(Full::default())
                    .expect("a request");
                let started = Instant::now();
                let response = client.request(request).await.expect("answered");
                assert!(response.status().is_success(), "{}", response.status());
                response.into_body().collect().await.expect("a body");
                latencies.push(started.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("a load task"));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Figures {
        per_second: latencies.len() as f64 / duration.as_secs_f64(),
        p50_ms: at(0.5).as_secs_f64() * 1000.0,
        p99_ms: at(0.99).as_secs_f64() * 1000.0,
    }
}

fn report(target: &str, figures: &Figures) {
    println!(
        "{}",
        json!({"target": target, "per_second": figures.per_second.round(), "p50_ms": (figures.p50_ms * 1000.0).round() / 1000.0, "p99_ms": (figures.p99_ms * 1000.0).round() / 1000.0})
    );
}

/// The proxy with a memory store in front of `upstream`, its global pacing lifted.
async fn start_proxy(upstream: &str) -> cache_discord_proxy::RunningProxy {
    let store = EnvStore::Memory(MemoryStore::<CachedResponse>::new(10_000));
    let discord = DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")])
        .expect("defaults");
    let limits = DiscordRateLimitLayer::new(RateLimitConfig::default().global_limit(1_000_000));
    let settings = ProxySettings::new("127.0.0.1:0".parse().expect("an address"), upstream)
        .expect("an upstream");
    Proxy::new(settings, store, discord, limits)
        .start()
        .await
        .expect("the proxy starts")
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut connections, mut discord_latency_ms) = (3u64, 64usize, 40u64);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--seconds", Some(v)) => seconds = v,
            ("--connections", Some(v)) => connections = v as usize,
            ("--discord-latency-ms", Some(v)) => discord_latency_ms = v,
            _ => panic!(
                "usage: proxy_bench [--seconds N] [--connections N] [--discord-latency-ms N]"
            ),
        }
    }
    let duration = Duration::from_secs(seconds);
    if !node_dir().join("node_modules/@discordjs/proxy").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(node_dir())
            .status()
            .expect("npm (Node.js) is needed to run @discordjs/proxy");
        assert!(status.success(), "npm ci failed");
    }

    let server = DiscordServer::start(ServerConfig {
        latency: Duration::ZERO,
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .expect("the upstream starts");
    let bot = server.bot().bot_authorization();
    let guild = server.guilds()[0].id;
    let upstream = format!("http://{}", server.addr());

    let proxy = start_proxy(&upstream).await;
    let discord_like = DiscordServer::start(ServerConfig {
        latency: Duration::from_millis(discord_latency_ms),
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .expect("the upstream starts");
    let discord_like_url = format!("http://{}", discord_like.addr());
    let proxy_over_discord_like = start_proxy(&discord_like_url).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut node = tokio::process::Command::new("node")
        .arg("discordjs-proxy.mjs")
        .arg(port.to_string())
        .arg(format!("{upstream}/api"))
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts @discordjs/proxy");
    let mut lines = tokio::io::BufReader::new(node.stdout.take().expect("stdout")).lines();
    let ready = lines.next_line().await.expect("its output");
    assert_eq!(ready.as_deref(), Some("listening"));

    let pass_through = format!("/api/v10/guilds/{guild}/roles/member-counts");
    let cached = format!("/api/v10/guilds/{guild}/roles");
    let ours = format!("http://{}", proxy.addr());
    let theirs = format!("http://127.0.0.1:{port}");
    let warm_up = Duration::from_millis(500);
    let run = |label: &'static str, url: String| {
        let bot = bot.clone();
        async move {
            drive(&url, &bot, connections, warm_up).await;
            let figures = drive(&url, &bot, connections, duration).await;
            report(label, &figures);
            figures
        }
    };
    let upstream_figures = run("upstream", format!("{upstream}{cached}")).await;
    let theirs_figures = run(
        "discordjs_proxy/pass_through",
        format!("{theirs}{pass_through}"),
    )
    .await;
    let ours_figures = run("proxy/pass_through", format!("{ours}{pass_through}")).await;
    let cached_figures = run("proxy/cached", format!("{ours}{cached}")).await;
    let discord_like_figures = run(
        "discord_like_upstream",
        format!("{discord_like_url}{cached}"),
    )
    .await;
    let over_discord_like_figures = run(
        "proxy/cached_over_discord_like",
        format!("http://{}{cached}", proxy_over_discord_like.addr()),
    )
    .await;
    println!(
        "{}",
        json!({
            "pass_through_throughput_vs_discordjs_proxy": (ours_figures.per_second / theirs_figures.per_second * 100.0).round() / 100.0,
            "pass_through_p99_vs_discordjs_proxy": (ours_figures.p99_ms / theirs_figures.p99_ms * 100.0).round() / 100.0,
            "cached_throughput_vs_upstream": (cached_figures.per_second / upstream_figures.per_second * 100.0).round() / 100.0,
            "cached_throughput_vs_discord_like_upstream": (over_discord_like_figures.per_second / discord_like_figures.per_second * 100.0).round() / 100.0,
            "discord_latency_ms": discord_latency_ms,
            "connections": connections,
            "seconds": seconds,
        })
    );
    let _ = node.kill().await;
}
