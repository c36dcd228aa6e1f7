//! A local Discord-like REST server, for tests and demos that need no token and no network.
//!
//! It listens on `127.0.0.1` on a port the OS picks and answers the routes the Discord policy handles,
//! their write routes and their look-alikes, with JSON in Discord's shapes generated from a seed:
//! guilds, channels (categories, text, announcement, voice), roles, members, users with OAuth2 tokens and
//! a bot whose token carries its id. Like Discord it
//!
//! - waits a little before answering ([`ServerConfig::latency`]);
//! - enforces a global limit per account and per-route buckets ([`RateLimits`]), sending
//!   `X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Reset-After` and `-Bucket` on answers, and
//!   `429 {"message":"You are being rate limited.","retry_after":F,"global":B}` with `Retry-After`
//!   (and `X-RateLimit-Global: true` for the global limit) past them;
//! - answers 401 without a valid token, 403 `Missing Access` outside the bot's guilds, 404 with
//!   Discord's error codes for unknown objects;
//! - sends headers a cache must not replay (`set-cookie`, `via`);
//! - compresses answers with gzip when the request's `Accept-Encoding` allows it;
//! - answers `GET /gateway` without looking at the token, as Discord does.
//!
//! It counts every request per route ([`ServerStats`]), can fail the next requests on purpose
//! ([`DiscordServer::fail_next`]) and can go through an outage, answering every request with a 429 or a
//! 5xx until it ends ([`DiscordServer::start_outage`]).
//!
//! ```
//! use discord_test_server::{DiscordServer, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = DiscordServer::start(ServerConfig::default()).await?;
//! let bot = server.bot();
//! let guild = server.guilds()[0].id;
//! println!("GET {} with `Authorization: Bot {}`", server.url(&format!("/guilds/{guild}/roles")), "...");
//! assert_eq!(server.stats().requests, 0);
//! # let _ = bot;
//! # Ok(())
//! # }
//! ```

/// A Discord snowflake id (guild, channel, role, user).
pub type Snowflake = u64;

mod api;
mod outage;
mod ratelimit;
mod stats;
mod tls;
mod world;

pub use outage::Outage;
pub use ratelimit::{RateLimits, RouteBucket};
pub use stats::ServerStats;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use ratelimit::Limiter;
use stats::Counters;
use world::{World, WorldSize};

/// What the server holds and how it behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Seed of the generated data: the same seed gives the same ids, names and tokens.
    pub seed: u64,
    /// Guilds, all with the bot as a member.
    pub guilds: usize,
    /// Dashboard users (at least one).
    pub users: usize,
    /// Guilds each user joins (picked at random, repeats merged).
    pub guilds_per_user: usize,
    /// Time taken by every answer.
    pub latency: Duration,
    /// Rate limits.
    pub rate_limits: RateLimits,
}

impl Default for ServerConfig {
    /// 20 guilds, 30 users in about 4 guilds each, 3 ms of latency, Discord's limits.
    fn default() -> Self {
        Self {
            seed: 42,
            guilds: 20,
            users: 30,
            guilds_per_user: 4,
            latency: Duration::from_millis(3),
            rate_limits: RateLimits::default(),
        }
    }
}

/// An account of the server: its id and its token (redacted from `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct FixtureAccount {
    /// The account's user id.
    pub id: Snowflake,
    /// Its token: use as `Bot {token}` or `Bearer {token}`.
    pub token: String,
}

impl FixtureAccount {
    /// The `Authorization` header value for this bot.
    pub fn bot_authorization(&self) -> String {
        format!("Bot {}", self.token)
    }

    /// The `Authorization` header value for this user.
    pub fn bearer_authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

impl fmt::Debug for FixtureAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixtureAccount")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A user and the guilds they are a member of.
#[derive(Debug, Clone)]
pub struct FixtureUser {
    /// The user's id and OAuth2 token.
    pub account: FixtureAccount,
    /// Their guilds, in id order.
    pub guilds: Vec<Snowflake>,
}

/// A guild's ids as the server holds them now.
#[derive(Debug, Clone)]
pub struct FixtureGuild {
    /// The guild.
    pub id: Snowflake,
    /// Its channels.
    pub channels: Vec<Snowflake>,
    /// Its roles, `@everyone` (the guild's id) first.
    pub roles: Vec<Snowflake>,
    /// Its members' user ids.
    pub members: Vec<Snowflake>,
}

/// State shared by the connections.
struct Shared {
    world: Mutex<World>,
    limiter: Mutex<Limiter>,
    stats: Counters,
    latency: Duration,
    failures: Mutex<Vec<StatusCode>>,
    outage: Mutex<Option<Outage>>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limiter(&self) -> MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The account of an `Authorization` value: `Bot` tokens for bots, `Bearer` for users.
    fn authenticate(&self, authorization: &str) -> Option<Snowflake> {
        let (scheme, token) = authorization.split_once(' ')?;
        let world = self.world();
        let account = &world.accounts[*world.by_token.get(token)?];
        match (scheme, account.bot) {
            ("Bot", true) | ("Bearer", false) => Some(account.id),
            _ => None,
        }
    }

    fn outage(&self) -> Option<Outage> {
        *self.outage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_outage(&self, outage: Option<Outage>) {
        *self.outage.lock().unwrap_or_else(PoisonError::into_inner) = outage;
    }

    fn take_failure(&self) -> Option<StatusCode> {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        (!failures.is_empty()).then(|| failures.remove(0))
    }
}

/// A running server; stops (with its connections) when dropped.
pub struct DiscordServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    ca_pem: Option<Vec<u8>>,
}

impl DiscordServer {
    /// Generates the data and starts listening on `127.0.0.1:0`.
    ///
    /// # Errors
    /// The listener could not be bound.
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        Self::start_with(config, None).await
    }

    /// Like [`start`](Self::start), serving HTTPS only (HTTP/2 or HTTP/1.1 by ALPN) with a
    /// certificate for `localhost` and `127.0.0.1` signed by an authority made on the spot
    /// ([`ca_pem`](Self::ca_pem)); [`url`](Self::url) is then `https://localhost:PORT/...`.
    ///
    /// # Errors
    /// The listener could not be bound.
    pub async fn start_tls(config: ServerConfig) -> std::io::Result<Self> {
        let (acceptor, ca_pem) = tls::acceptor();
        let mut server = Self::start_with(config, Some(acceptor)).await?;
        server.ca_pem = Some(ca_pem);
        Ok(server)
    }

    async fn start_with(
        config: ServerConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let size = WorldSize {
            guilds: config.guilds,
            users: config.users.max(1),
            guilds_per_user: config.guilds_per_user,
        };
        let shared = Arc::new(Shared {
            world: Mutex::new(World::generate(config.seed, size)),
            limiter: Mutex::new(Limiter::new(config.rate_limits)),
            stats: Counters::default(),
            latency: config.latency,
            failures: Mutex::default(),
            outage: Mutex::default(),
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(accept(listener, Arc::clone(&shared), tls));
        Ok(Self {
            addr,
            shared,
            accept,
            ca_pem: None,
        })
    }

    /// The authority a client must trust for a server started with [`start_tls`](Self::start_tls).
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` for a TLS server.
    pub fn base_url(&self) -> String {
        match self.ca_pem {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of `path` under `/api/v10`, such as `http://127.0.0.1:PORT/api/v10/users/@me/guilds`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v10{path}", self.base_url())
    }

    /// The bot: a member of every generated guild.
    pub fn bot(&self) -> FixtureAccount {
        let world = self.shared.world();
        let bot = world.accounts.iter().find(|a| a.bot).expect("generated");
        FixtureAccount {
            id: bot.id,
            token: bot.token.clone(),
        }
    }

    /// Adds another bot, a member of `guilds` only.
    pub fn add_bot(&self, name: &str, guilds: &[Snowflake]) -> FixtureAccount {
        let mut world = self.shared.world();
        let id = world.add_bot(name);
        for guild in guilds {
            world.join(*guild, id);
        }
        let token = world.account(id).expect("just added").token.clone();
        FixtureAccount { id, token }
    }

    /// Resets a bot's token, as Discord's "Reset Token" does: the old token gets 401 from now on.
    ///
    /// # Panics
    /// `bot` is not a bot of this server.
    pub fn reset_token(&self, bot: Snowflake) -> FixtureAccount {
        let token = self
            .shared
            .world()
            .reset_token(bot)
            .expect("a bot of this server");
        FixtureAccount { id: bot, token }
    }

    /// The users, with their guilds.
    pub fn users(&self) -> Vec<FixtureUser> {
        let world = self.shared.world();
        world
            .accounts
            .iter()
            .filter(|account| !account.bot)
            .map(|account| FixtureUser {
                account: FixtureAccount {
                    id: account.id,
                    token: account.token.clone(),
                },
                guilds: world
                    .guilds
                    .values()
                    .filter(|guild| guild.members.contains_key(&account.id))
                    .map(|guild| guild.id)
                    .collect(),
            })
            .collect()
    }

    /// The guilds, as they are now.
    pub fn guilds(&self) -> Vec<FixtureGuild> {
        let world = self.shared.world();
        let id = |value: &serde_json::Value| value["id"].as_str().and_then(|id| id.parse().ok());
        world
            .guilds
            .values()
            .map(|guild| FixtureGuild {
                id: guild.id,
                channels: guild.channels.iter().filter_map(id).collect(),
                roles: guild.roles.iter().filter_map(id).collect(),
                members: guild.members.keys().copied().collect(),
            })
            .collect()
    }

    /// Answers the next `count` authenticated requests with `status` (a 5xx, say) and an error body.
    pub fn fail_next(&self, count: usize, status: StatusCode) {
        let mut failures = self
            .shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failures.extend((0..count).map(|_| status));
    }

    /// Answers every authenticated request as `outage` says until [`end_outage`](Self::end_outage)
    /// (or another `start_outage`). Requests without a valid token still get 401; requests queued by
    /// [`fail_next`](Self::fail_next) wait for the outage to end. Outage answers count in
    /// [`ServerStats::outage_answers`] and nowhere against the rate limits.
    pub fn start_outage(&self, outage: Outage) {
        tracing::debug!(?outage, "local discord server: outage starts");
        self.shared.set_outage(Some(outage));
    }

    /// Ends the outage, if any: requests are answered as before it.
    pub fn end_outage(&self) {
        tracing::debug!("local discord server: outage ends");
        self.shared.set_outage(None);
    }

    /// The outage in progress, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.shared.outage()
    }

    /// The counters so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats.snapshot()
    }
}

impl fmt::Debug for DiscordServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordServer")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for DiscordServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections until aborted; aborting drops the set, which ends every connection. HTTP/1.1
/// or HTTP/2 (prior knowledge in plain text, ALPN with TLS).
async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "local discord server: accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(api::handle(&shared, request).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let served = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => builder.serve_connection(TokioIo::new(stream), service).await,
                    Err(error) => {
                        tracing::debug!(%error, "local discord server: TLS handshake failed");
                        return;
                    }
                },
                None => builder.serve_connection(TokioIo::new(stream), service).await,
            };
            if let Err(error) = served {
                tracing::debug!(%error, "local discord server: connection ended");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}
