//! The `cache-discord-proxy` process: a bad setting stops it with the variable's name, logs are JSON
//! without a token in them, and SIGTERM lets it finish gracefully.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use discord_test_server::{DiscordServer, RateLimits, ServerConfig};
use http::StatusCode;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const BINARY: &str = env!("CARGO_BIN_EXE_cache-discord-proxy");

/// A proxy process, killed when dropped (a failed assertion leaves no process behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the proxy listens on `port`.
async fn listening(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the proxy never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_bad_setting_is_a_startup_error_naming_the_variable() {
    let output = Command::new(BINARY)
        .env("DISCORD_API_URL", "ftp://discord.com")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DISCORD_API_URL"), "{stderr}");
    let output = Command::new(BINARY)
        .env("CACHE_PROXY_ADDR", "127.0.0.1:0")
        .env("CACHE_DISCORD_GLOBAL_LIMIT", "many")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let logs = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("CACHE_DISCORD_GLOBAL_LIMIT"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_never_show_a_token_and_sigterm_stops_it_gracefully() {
    let server = DiscordServer::start(ServerConfig {
        latency: Duration::from_millis(1),
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let mut child = Running(
        Command::new(BINARY)
            .env("CACHE_PROXY_ADDR", format!("127.0.0.1:{port}"))
            .env("DISCORD_API_URL", format!("http://{}", server.addr()))
            .env("CACHE_PROXY_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    listening(port).await;
    let bot = server.bot();
    let guild = server.guilds()[0].id;
    let webhook_token = "aB3dEfGhIjKlMnOpQrStUvWxYz0123456789webhookTOKEN";
    let forged = format!(
        "Bot {}.Zm9yZ2Vk.c2lnbmF0dXJl",
        bot.token.split('.').next().unwrap()
    );
    // Vouching read, cache fill, a forged token (Discord's 401), a route the local server does not
    // know (its 404).
    for (path, authorization, expected) in [
        (
            format!("/guilds/{guild}/roles"),
            bot.bot_authorization(),
            StatusCode::OK,
        ),
        (
            format!("/guilds/{guild}/roles"),
            bot.bot_authorization(),
            StatusCode::OK,
        ),
        (
            format!("/guilds/{guild}/roles"),
            forged.clone(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/webhooks/1/{webhook_token}"),
            bot.bot_authorization(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let request = http::Request::get(format!("http://127.0.0.1:{port}/api/v10{path}"))
            .header("authorization", authorization)
            .body(Full::default())
            .unwrap();
        let status = client.request(request).await.unwrap().status();
        assert_eq!(status, expected, "{path}");
    }
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("shutting down"), "{logs}");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    for secret in [
        bot.token.as_str(),
        forged.trim_start_matches("Bot "),
        webhook_token,
    ] {
        assert!(!logs.contains(secret), "a token in the logs");
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token's part in the logs");
    }
}

/// The high-water mark of a process's resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A 64 MB upload streamed through the proxy process (chunked, of unknown size) arrives whole, and
/// the proxy's peak memory grows by a fraction of it: it streams, it does not buffer.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_streams_through_without_growing_the_proxys_memory() {
    use futures_util::stream;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let server = DiscordServer::start(ServerConfig {
        latency: Duration::ZERO,
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let child = spawn_quiet(port, &server);
    listening(port).await;
    let channel = server.guilds()[0].channels[0];
    let url = format!("http://127.0.0.1:{port}/api/v10/channels/{channel}/messages");
    let client = Client::builder(TokioExecutor::new()).build_http::<StreamBody<
        stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>>,
    >>();
    let upload = |chunks: usize| {
        let chunk = Bytes::from(vec![0x5a_u8; 64 * 1024]);
        let frames: Vec<_> = (0..chunks)
            .map(|_| Ok(Frame::data(chunk.clone())))
            .collect();
        http::Request::post(&url)
            .header("authorization", server.bot().bot_authorization())
            .header("content-type", "application/octet-stream")
            .body(StreamBody::new(stream::iter(frames)))
            .unwrap()
    };
    // A small upload first, so the peak below is the proxy's working size.
    let answer = client.request(upload(16)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let before = peak_rss_kib(child.0.id());
    let answer = client.request(upload(1024)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(answer.into_body())
        .await
        .unwrap()
        .to_bytes();
    let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        message["attachments"][0]["size"],
        64 * 1024 * 1024,
        "arrived whole"
    );
    let after = peak_rss_kib(child.0.id());
    eprintln!("proxy peak memory: {before} KiB before a 64 MiB upload, {after} KiB after");
    assert!(
        after - before < 16 * 1024,
        "the proxy grew by {} KiB",
        after - before
    );
}

fn spawn_quiet(port: u16, server: &DiscordServer) -> Running {
    Running(
        Command::new(BINARY)
            .env("CACHE_PROXY_ADDR", format!("127.0.0.1:{port}"))
            .env("DISCORD_API_URL", format!("http://{}", server.addr()))
            .env("CACHE_MEMORY_SIZE", "2000")
            // The local server has no limits: the proxy's pacing would be the whole test's time.
            .env("CACHE_DISCORD_GLOBAL_LIMIT", "100000")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The resident memory of a process now, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `count` requests from 64 connections: cached reads of every guild's roles, channels and
/// members, pass-through reads, role writes, unknown tokens and forged ones. Returns the statuses seen.
async fn mixed_load(port: u16, server: &DiscordServer, count: usize) -> Vec<StatusCode> {
    let bot = server.bot();
    let guilds = server.guilds();
    let forged = format!(
        "Bot {}.Zm9yZ2Vk.c2lnbmF0dXJl",
        bot.token.split('.').next().unwrap()
    );
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let (next, guilds, bot, forged) =
            (next.clone(), guilds.clone(), bot.clone(), forged.clone());
        workers.spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return statuses;
                }
                let guild = &guilds[i % guilds.len()];
                let member = guild.members[i % guild.members.len()];
                let (method, path, authorization) = match i % 10 {
                    0 => (
                        http::Method::PATCH,
                        format!("/guilds/{}/roles/{}", guild.id, guild.roles[1]),
                        bot.bot_authorization(),
                    ),
                    1 => (
                        http::Method::GET,
                        format!("/guilds/{}/roles/member-counts", guild.id),
                        bot.bot_authorization(),
                    ),
                    2 => (
                        http::Method::GET,
                        format!("/guilds/{}/roles", guild.id),
                        format!("{forged}{i}"),
                    ),
                    3 | 4 => (
                        http::Method::GET,
                        format!("/guilds/{}/members/{member}", guild.id),
                        bot.bot_authorization(),
                    ),
                    5 | 6 => (
                        http::Method::GET,
                        format!("/guilds/{}/channels", guild.id),
                        bot.bot_authorization(),
                    ),
                    _ => (
                        http::Method::GET,
                        format!("/guilds/{}/roles", guild.id),
                        bot.bot_authorization(),
                    ),
                };
                let body = match method {
                    http::Method::PATCH => Full::new(Bytes::from(format!("{{\"name\":\"r{i}\"}}"))),
                    _ => Full::default(),
                };
                let request = http::Request::builder()
                    .method(method)
                    .uri(format!("http://127.0.0.1:{port}/api/v10{path}"))
                    .header("authorization", authorization)
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap();
                let answer = client.request(request).await.expect("answered");
                statuses.push(answer.status());
                let _ = http_body_util::BodyExt::collect(answer.into_body()).await;
            }
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = workers.join_next().await {
        statuses.extend(done.unwrap());
    }
    statuses
}

/// Memory stays bounded under load: after a warm-up, 10,000 more requests (a 5xx storm among them)
/// grow the proxy's resident memory by a few MiB at most.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_ten_thousand_requests() {
    let server = DiscordServer::start(ServerConfig {
        latency: Duration::from_millis(1),
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let child = spawn_quiet(port, &server);
    listening(port).await;
    let warm = mixed_load(port, &server, 5_000).await;
    assert!(warm.contains(&StatusCode::OK));
    let before = rss_kib(child.0.id());
    server.fail_next(500, StatusCode::SERVICE_UNAVAILABLE);
    let statuses = mixed_load(port, &server, 10_000).await;
    let after = rss_kib(child.0.id());
    assert_eq!(statuses.len(), 10_000, "every request answered");
    let count = |status: StatusCode| statuses.iter().filter(|s| **s == status).count();
    eprintln!(
        "proxy resident memory: {before} KiB after 5,000 requests, {after} KiB after 10,000 more \
         ({} answered 200, {} 401, {} 503)",
        count(StatusCode::OK),
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::SERVICE_UNAVAILABLE),
    );
    assert!(
        count(StatusCode::SERVICE_UNAVAILABLE) > 0,
        "the storm reached clients"
    );
    assert_eq!(
        count(StatusCode::UNAUTHORIZED),
        1_000,
        "every forged token refused"
    );
    assert!(
        after.saturating_sub(before) < 8 * 1024,
        "the proxy grew by {} KiB",
        after.saturating_sub(before)
    );
}
