//! What the Discord cache saves a bot and its dashboard, measured against a local Discord-like API.
//!
//! `cargo run --release -p examples --bin discord_demo`
//!
//! No token and no network: the program starts `cache_discord::server` on 127.0.0.1 (realistic JSON,
//! a few ms of latency, Discord's rate-limit headers, 50 requests/s global limit per account, per-route
//! buckets, 429 with `retry_after`) and talks to it through hyper-util's HTTP client, a tower service.
//!
//! The workload is a dashboard morning: users arrive over a few seconds, each loads their guild list
//! (with their own OAuth2 token), then opens one of their guilds, picked with a Zipf skew towards the
//! popular ones, and the backend reads that guild's channels, roles and the user's member with the bot
//! token. Some users are far more active than others (Zipf again), announcements send bursts of users
//! at once, admins make edits (nicknames, roles, channels) and the bot polls its own guild list. The
//! same workload, on the same schedule, runs twice against a fresh server: first straight to the API,
//! then through the Discord cache.
//!
//! Progress goes to stderr; stdout gets one JSON line:
//! `{"requests":N,"upstream_calls":N,"upstream_calls_without_cache":N,"rate_limited":N,
//! "rate_limited_without_cache":N,"hits":N,"misses":N,"dedupes":N,"p50_ms":F,"p99_ms":F,"backend":"memory|redis"}`
//! where `requests` is the number of requests the workload sends in each run, `rate_limited` counts the
//! 429 answers callers received, and the latency percentiles are those of the cached run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{BoxError, Store};
use cache_discord::server::{DiscordServer, FixtureGuild, FixtureUser, ServerConfig, ServerStats};
use cache_discord::{BufferResponseLayer, CachedResponse, DiscordCache, Snowflake};
use cache_redis::EnvStore;
use http::Method;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

/// Seed of the server's data and of the workload: every run of the demo sends the same requests.
const SEED: u64 = 0x00D1_5C0D;
/// Length of one run.
const RUN: Duration = Duration::from_secs(8);
/// The workload is released in ticks.
const TICK: Duration = Duration::from_millis(100);
/// Dashboard page loads per second once every user has arrived.
const PEAK_LOADS_PER_SECOND: f64 = 28.0;
/// Users arrive over this long.
const RAMP_UP: Duration = Duration::from_secs(3);
/// Announcements: at these times, this many extra users open the dashboard at once.
const BURSTS: [(Duration, usize); 3] = [
    (Duration::from_millis(2_500), 12),
    (Duration::from_millis(4_500), 16),
    (Duration::from_millis(6_500), 16),
];
/// One admin edit per this many page loads.
const LOADS_PER_EDIT: usize = 12;
/// The bot polls its own guild list every this many ticks.
const TICKS_PER_BOT_POLL: usize = 5;

fn server_config() -> ServerConfig {
    ServerConfig {
        seed: SEED,
        guilds: 40,
        users: 120,
        guilds_per_user: 6,
        latency: Duration::from_millis(4),
        ..ServerConfig::default()
    }
}

/// The HTTP client every run uses: hyper-util's client, buffered, maybe cached, type-erased.
type DiscordClient = BoxCloneSyncService<http::Request<Full<Bytes>>, CachedResponse, BoxError>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    let plan_server = DiscordServer::start(server_config()).await?;
    let plan = Plan::generate(&plan_server.users(), &plan_server.guilds(), SEED);
    drop(plan_server);
    eprintln!(
        "discord demo: {} requests per run over {:?} ({} page loads, {} edits, {} bot polls)",
        plan.requests(),
        RUN,
        plan.count(|a| matches!(a, Action::PageLoad { .. })),
        plan.count(|a| matches!(a, Action::Edit(_))),
        plan.count(|a| matches!(a, Action::BotGuilds)),
    );

    // Run 1: straight to the API.
    let server = DiscordServer::start(server_config()).await?;
    let uncached = run("without cache", buffered_client(), &server, &plan).await;
    let without = server.stats();
    drop(server);

    // Run 2: the same workload through the Discord cache.
    let (cached, with, cache_stats, backend) = cached_run(&plan).await?;

    let report = json!({
        "requests": cached.samples.len(),
        "upstream_calls": with.requests,
        "upstream_calls_without_cache": without.requests,
        "rate_limited": cached.rate_limited(),
        "rate_limited_without_cache": uncached.rate_limited(),
        "hits": cache_stats.hits,
        "misses": cache_stats.misses,
        "dedupes": cache_stats.dedupes,
        "p50_ms": round3(cached.percentile(0.50)),
        "p99_ms": round3(cached.percentile(0.99)),
        "backend": backend,
    });
    eprintln!(
        "without cache: p50 {:.2} ms, p99 {:.2} ms; server saw {} route and {} global 429s",
        uncached.percentile(0.50),
        uncached.percentile(0.99),
        without.route_rate_limited,
        without.global_rate_limited,
    );
    eprintln!(
        "with cache:    p50 {:.2} ms, p99 {:.2} ms; server saw {} route and {} global 429s",
        cached.percentile(0.50),
        cached.percentile(0.99),
        with.route_rate_limited,
        with.global_rate_limited,
    );
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    println!("{report}");
    Ok(())
}

/// What the cached run reports: its results, the server's counters, the cache's, and the backend name.
type CachedRun = (
    RunResult,
    ServerStats,
    cache_core::StatsSnapshot,
    &'static str,
);

// ─── Backend selection: the one place that picks the store. ───────────────────────────────────────
// Redis when REDIS_URL is set (two demo processes on one Redis share entries), in process otherwise.
async fn cached_run(plan: &Plan) -> Result<CachedRun, BoxError> {
    let store = EnvStore::<CachedResponse>::from_env()?;
    let backend = store.backend();
    run_with_store(store, backend, plan).await
}

async fn run_with_store<St>(
    store: St,
    backend: &'static str,
    plan: &Plan,
) -> Result<CachedRun, BoxError>
where
    St: Store<Value = CachedResponse> + Clone,
{
    // CACHE_ENABLED and the CACHE_DISCORD_*_TTL variables apply.
    let discord = DiscordCache::from_env(store)?;
    let server = DiscordServer::start(server_config()).await?;
    let client = BoxCloneSyncService::new(discord.layer(buffered_client()));
    let result = run("with cache", client, &server, plan).await;
    Ok((result, server.stats(), discord.stats(), backend))
}

fn buffered_client() -> DiscordClient {
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http::<Full<Bytes>>();
    BoxCloneSyncService::new(BufferResponseLayer::new().layer(http))
}

// ─── The workload ─────────────────────────────────────────────────────────────────────────────────

/// One thing a user, an admin or the bot does.
#[derive(Debug, Clone)]
enum Action {
    /// A user opens the dashboard: their guild list, then one guild's channels, roles and their member.
    PageLoad { user: usize, guild: Snowflake },
    /// An admin edit, sent with the bot token.
    Edit(Edit),
    /// The bot reads its own guild list.
    BotGuilds,
}

#[derive(Debug, Clone)]
enum Edit {
    Nickname {
        guild: Snowflake,
        user: Snowflake,
        nick: String,
    },
    GiveRole {
        guild: Snowflake,
        user: Snowflake,
        role: Snowflake,
    },
    RenameRole {
        guild: Snowflake,
        role: Snowflake,
        name: String,
    },
    CreateChannel {
        guild: Snowflake,
        name: String,
    },
}

/// The whole schedule: the actions released at each tick.
struct Plan {
    users: Vec<FixtureUser>,
    ticks: Vec<Vec<Action>>,
}

impl Plan {
    fn generate(users: &[FixtureUser], guilds: &[FixtureGuild], seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        // Popularity ranks: a few guilds and a few users account for most of the traffic.
        let mut guild_rank: Vec<Snowflake> = guilds.iter().map(|g| g.id).collect();
        rng.shuffle(&mut guild_rank);
        let popularity = |guild: Snowflake| {
            let rank = guild_rank.iter().position(|g| *g == guild).unwrap_or(0);
            1.0 / ((rank + 1) as f64).powf(1.1)
        };
        let mut user_order: Vec<usize> = (0..users.len()).collect();
        rng.shuffle(&mut user_order);
        let activity = Zipf::new(users.len(), 1.0);

        let ticks = (RUN.as_millis() / TICK.as_millis()) as usize;
        let mut plan = Vec::with_capacity(ticks);
        let mut owed = 0.0;
        let mut loads = 0usize;
        // Counters rather than `%`: the crate's minimum Rust has no `is_multiple_of`.
        let mut next_edit = LOADS_PER_EDIT;
        let mut next_poll = 0;
        for tick in 0..ticks {
            let at = TICK * tick as u32;
            let ramp = (at.as_secs_f64() / RAMP_UP.as_secs_f64()).min(1.0);
            owed += PEAK_LOADS_PER_SECOND * TICK.as_secs_f64() * ramp.max(0.1);
            let mut count = owed.floor() as usize;
            owed -= count as f64;
            count += BURSTS
                .iter()
                .filter(|(when, _)| *when == at)
                .map(|(_, extra)| extra)
                .sum::<usize>();
            let mut actions = Vec::new();
            for _ in 0..count {
                let user = user_order[activity.sample(&mut rng)];
                let own: Vec<(Snowflake, f64)> = users[user]
                    .guilds
                    .iter()
                    .map(|g| (*g, popularity(*g)))
                    .collect();
                let Some(guild) = rng.weighted(&own) else {
                    continue;
                };
                actions.push(Action::PageLoad { user, guild });
                loads += 1;
                if loads == next_edit {
                    next_edit += LOADS_PER_EDIT;
                    let fixture = guilds
                        .iter()
                        .find(|g| g.id == guild)
                        .expect("a generated guild");
                    actions.push(Action::Edit(edit(
                        &mut rng,
                        fixture,
                        users[user].account.id,
                        loads,
                    )));
                }
            }
            if tick == next_poll {
                next_poll += TICKS_PER_BOT_POLL;
                actions.push(Action::BotGuilds);
            }
            plan.push(actions);
        }
        Self {
            users: users.to_vec(),
            ticks: plan,
        }
    }

    fn count(&self, which: impl Fn(&Action) -> bool) -> usize {
        self.ticks.iter().flatten().filter(|a| which(a)).count()
    }

    /// HTTP requests the plan sends.
    fn requests(&self) -> usize {
        self.ticks
            .iter()
            .flatten()
            .map(|action| match action {
                Action::PageLoad { .. } => 4,
                Action::Edit(_) | Action::BotGuilds => 1,
            })
            .sum()
    }
}

fn edit(rng: &mut SplitMix, guild: &FixtureGuild, user: Snowflake, serial: usize) -> Edit {
    let role = guild.roles[1 + rng.below(guild.roles.len() - 1)];
    match rng.below(4) {
        0 => Edit::Nickname {
            guild: guild.id,
            user,
            nick: format!("raider #{serial}"),
        },
        1 => Edit::GiveRole {
            guild: guild.id,
            user,
            role,
        },
        2 => Edit::RenameRole {
            guild: guild.id,
            role,
            name: format!("Crew {serial}"),
        },
        _ => Edit::CreateChannel {
            guild: guild.id,
            name: format!("event-{serial}"),
        },
    }
}

// ─── Running it ───────────────────────────────────────────────────────────────────────────────────

/// What callers saw in one run.
#[derive(Debug, Default)]
struct RunResult {
    samples: Vec<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    millis: f64,
    status: u16,
}

impl RunResult {
    fn rate_limited(&self) -> usize {
        self.samples.iter().filter(|s| s.status == 429).count()
    }

    fn percentile(&self, quantile: f64) -> f64 {
        let mut millis: Vec<f64> = self.samples.iter().map(|s| s.millis).collect();
        if millis.is_empty() {
            return 0.0;
        }
        millis.sort_by(f64::total_cmp);
        let index = ((millis.len() - 1) as f64 * quantile).round() as usize;
        millis[index]
    }
}

/// Releases the plan tick by tick on the wall clock and waits for every request to finish.
async fn run(label: &str, client: DiscordClient, server: &DiscordServer, plan: &Plan) -> RunResult {
    let context = Arc::new(Context {
        base: server.url(""),
        bot: server.bot().bot_authorization(),
        users: plan
            .users
            .iter()
            .map(|u| (u.account.bearer_authorization(), u.account.id))
            .collect(),
    });
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut result = RunResult::default();
    for (tick, actions) in plan.ticks.iter().enumerate() {
        tokio::time::sleep_until(start + TICK * tick as u32).await;
        for action in actions {
            let (client, context, action) = (client.clone(), Arc::clone(&context), action.clone());
            tasks.spawn(async move { perform(&client, &context, action).await });
        }
        while let Some(done) = tasks.try_join_next() {
            result
                .samples
                .extend(done.expect("a workload task panicked"));
        }
        if tick % 10 == 9 {
            let stats = server.stats();
            eprintln!(
                "[{label:>13}] {:>4.1} s  answered {:>4}  upstream {:>4}  429s {:>3}",
                start.elapsed().as_secs_f64(),
                result.samples.len(),
                stats.requests,
                result.rate_limited(),
            );
        }
    }
    while let Some(done) = tasks.join_next().await {
        result
            .samples
            .extend(done.expect("a workload task panicked"));
    }
    result
}

/// What every request of a run needs: where the server is and the tokens of its accounts.
struct Context {
    base: String,
    bot: String,
    /// Each user's `Authorization` value and id, in the plan's order.
    users: Vec<(String, Snowflake)>,
}

async fn perform(client: &DiscordClient, context: &Context, action: Action) -> Vec<Sample> {
    let get =
        |path: String, auth: &str| send(client, context, Method::GET, path, auth.to_owned(), None);
    match action {
        Action::PageLoad { user, guild } => {
            let (user_auth, user_id) = &context.users[user];
            let list = get("/users/@me/guilds".to_owned(), user_auth).await;
            let (channels, roles, member) = tokio::join!(
                get(format!("/guilds/{guild}/channels"), &context.bot),
                get(format!("/guilds/{guild}/roles"), &context.bot),
                get(format!("/guilds/{guild}/members/{user_id}"), &context.bot),
            );
            vec![list, channels, roles, member]
        }
        Action::BotGuilds => vec![get("/users/@me/guilds".to_owned(), &context.bot).await],
        Action::Edit(edit) => {
            let bot = context.bot.clone();
            let (method, path, body) = match edit {
                Edit::Nickname { guild, user, nick } => (
                    Method::PATCH,
                    format!("/guilds/{guild}/members/{user}"),
                    Some(json!({"nick": nick})),
                ),
                Edit::GiveRole { guild, user, role } => (
                    Method::PUT,
                    format!("/guilds/{guild}/members/{user}/roles/{role}"),
                    None,
                ),
                Edit::RenameRole { guild, role, name } => (
                    Method::PATCH,
                    format!("/guilds/{guild}/roles/{role}"),
                    Some(json!({"name": name})),
                ),
                Edit::CreateChannel { guild, name } => (
                    Method::POST,
                    format!("/guilds/{guild}/channels"),
                    Some(json!({"name": name, "type": 0})),
                ),
            };
            vec![send(client, context, method, path, bot, body).await]
        }
    }
}

async fn send(
    client: &DiscordClient,
    context: &Context,
    method: Method,
    path: String,
    authorization: String,
    body: Option<serde_json::Value>,
) -> Sample {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", context.base))
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "DiscordBot (https://github.com/tower-cache/tower-cache, 0.1)",
        )
        .body(Full::new(body))
        .expect("a valid request");
    let started = Instant::now();
    let status = match client.clone().oneshot(request).await {
        Ok(response) => response.status(),
        Err(error) => {
            eprintln!("request failed: {error}");
            0
        }
    };
    Sample {
        millis: started.elapsed().as_secs_f64() * 1000.0,
        status,
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

// ─── Randomness: a seedable generator and a Zipf sampler, small enough to read ───────────────────

/// SplitMix64.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// One item, with probability proportional to its weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, f64)]) -> Option<T> {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut target = self.unit() * total;
        for (item, weight) in items {
            if target < *weight {
                return Some(*item);
            }
            target -= weight;
        }
        items.last().map(|(item, _)| *item)
    }
}

/// Ranks `0..n` with probability proportional to `1 / (rank + 1)^s`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(s);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut SplitMix) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.unit() * total;
        self.cumulative
            .partition_point(|c| *c <= target)
            .min(self.cumulative.len() - 1)
    }
}
