//! [`Proxy`] and [`RunningProxy`]: the listeners, their connections, and a graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cache_core::config::env::ProcessEnv;
use cache_discord::{
    CachedResponse, DiscordBody, DiscordCacheLayer, DiscordRateLimitLayer, DEFAULT_NEAR_SIZE,
};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::Layer;
use tower_cache::EnvStore;

use crate::admin::{self, AdminService};
use crate::client::upstream_client;
use crate::credentials::Accepted;
use crate::service::ProxyService;
use crate::{Error, ProxySettings};

/// The proxy, assembled: the store, the Discord cache, the rate limiter and the upstream client.
pub struct Proxy {
    settings: ProxySettings,
    store: EnvStore<CachedResponse>,
    discord: DiscordCacheLayer<EnvStore<CachedResponse>>,
    limits: DiscordRateLimitLayer,
}

impl Proxy {
    /// Everything from the environment: the store (`REDIS_URL` or `REDIS_CLUSTER_URLS`, memory
    /// otherwise), the cache (`CACHE_ENABLED`, `CACHE_DISCORD_*`) and the rate limiter (shared in
    /// Redis when there is one).
    ///
    /// # Errors
    /// A bad setting, naming its variable.
    pub fn from_env(settings: ProxySettings) -> Result<Self, Error> {
        // A near tier over Redis unless CACHE_NEAR_SIZE says otherwise: Discord entries are read far
        // more often than they change, and each near hit saves a round trip.
        let near = DEFAULT_NEAR_SIZE.to_string();
        let env = (ProcessEnv, [(cache_redis::CACHE_NEAR_SIZE, near.as_str())]);
        let store = EnvStore::<CachedResponse>::from_env_source(&env)?;
        let discord = DiscordCacheLayer::from_env(store.clone())?
            .events(cache_core::metrics::MetricsEvents::new("discord"));
        let limits = DiscordRateLimitLayer::from_env()?;
        let limits = match store.redis_scripts() {
            Some(scripts) => limits.shared(scripts),
            None => limits,
        };
        Ok(Self::new(settings, store, discord, limits))
    }

    /// A proxy from parts made in code.
    pub fn new(
        settings: ProxySettings,
        store: EnvStore<CachedResponse>,
        discord: DiscordCacheLayer<EnvStore<CachedResponse>>,
        limits: DiscordRateLimitLayer,
    ) -> Self {
        Self {
            settings,
            store,
            discord,
            limits,
        }
    }

    /// Binds the listeners and serves until [`RunningProxy::shutdown`].
    ///
    /// # Errors
    /// A listener cannot be bound; the upstream's TLS settings are unusable.
    pub async fn start(self) -> Result<RunningProxy, Error> {
        let _ = admin::prometheus();
        let client = upstream_client(self.settings.ca_pem.as_deref())?;
        let paced = self.limits.layer(client);
        let service = ProxyService {
            upstream: self.settings.upstream.clone(),
            cached: self.discord.layer(paced.clone()),
            paced,
            accepted: Arc::new(Accepted::default()),
        };
        let (stop, stopped) = watch::channel(false);
        let limits = ConnectionLimits {
            header_read_timeout: self.settings.header_read_timeout,
            shutdown_grace: self.settings.shutdown_grace,
            max_connections: self.settings.max_connections,
        };
        let mut tasks = JoinSet::new();
        let listener = bind(self.settings.listen).await?;
        let addr = local_addr(&listener, self.settings.listen)?;
        tasks.spawn(serve(listener, stopped.clone(), limits, move |request| {
            service.clone().handle(request)
        }));
        let mut admin_addr = None;
        if let Some((listen, token)) = &self.settings.admin {
            let admin = AdminService {
                token: token.as_str().into(),
                discord: self.discord.clone(),
                limits: self.limits.clone(),
                store: self.store.clone(),
                upstream: self.settings.upstream.clone(),
            };
            let listener = bind(*listen).await?;
            admin_addr = Some(local_addr(&listener, *listen)?);
            tasks.spawn(serve(listener, stopped, limits, move |request| {
                admin.clone().handle(request)
            }));
        }
        tracing::info!(%addr, admin = ?admin_addr, upstream = %self.settings.upstream, backend = self.store.backend(), "discord proxy: listening");
        Ok(RunningProxy {
            addr,
            admin_addr,
            stop,
            tasks,
        })
    }
}

/// A proxy serving. Dropping it stops it at once, closing every connection; [`shutdown`](Self::shutdown)
/// lets in-flight requests finish first.
pub struct RunningProxy {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningProxy {
    /// Where bots connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the control routes listen, when on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting connections, lets in-flight requests finish within the shutdown grace, then
    /// returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

impl std::fmt::Debug for RunningProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProxy")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })
}

/// Accepts connections (HTTP/1.1 with keep-alive, or HTTP/2 without TLS) until `stopped`, then gives
/// in-flight requests `grace` to finish and ends every connection still open.
///
/// The task owns its connections: aborting it (dropping [`RunningProxy`]) ends them all at once.
async fn serve<F, Fut>(
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
    limits: ConnectionLimits,
    handle: F,
) where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<DiscordBody>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    // HTTP/2 streams run as tasks of their own; hyper ends each one when its connection goes.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that sends its request head slowly, or not at all, is cut off; an HTTP/2 peer that
    // stops answering pings is dropped.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(HTTP2_KEEP_ALIVE))
        .keep_alive_timeout(limits.header_read_timeout);
    let mut connections = JoinSet::new();
    // One permit per open connection: past the cap, connections wait in the listen queue.
    let open = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        tokio::select! {
            accepted = accept(&listener, &open) => {
                let (stream, permit) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "discord proxy: accept failed");
                        if !is_per_connection(&error) {
                            // Out of file descriptors or memory: give the process time to close
                            // some instead of spinning.
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                        }
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let first_bytes = limits.header_read_timeout;
                let handle = handle.clone();
                let service = hyper::service::service_fn(move |request| {
                    let answer = handle(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                connections.spawn(async move {
                    // The protocol is chosen from the first bytes, a wait the HTTP/1 header timeout
                    // does not cover: a client that sends nothing is cut off here.
                    let mut first = [0; 1];
                    match tokio::time::timeout(first_bytes, stream.peek(&mut first)).await {
                        Ok(Ok(1..)) => {}
                        _ => return,
                    }
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%error, "discord proxy: connection ended");
                    }
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, open = connections.len(), "discord proxy: requests still in flight at the end of the shutdown grace; closing their connections");
        }
    }
    connections.shutdown().await;
}

/// An `accept` error that concerns one connection only (it went away before it was taken).
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionRefused
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
    )
}

/// How often an idle HTTP/2 connection is pinged.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The bounds a listener puts on its connections.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    header_read_timeout: Duration,
    shutdown_grace: Duration,
    max_connections: usize,
}

/// The next connection, once fewer than the cap are open.
async fn accept(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
) -> std::io::Result<(tokio::net::TcpStream, OwnedSemaphorePermit)> {
    let permit = Arc::clone(open)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let (stream, _) = listener.accept().await?;
    Ok((stream, permit))
}

/// The pause after a failed `accept` (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
