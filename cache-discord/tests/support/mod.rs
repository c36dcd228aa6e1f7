//! The local Discord-like server behind the real HTTP client, wrapped in the Discord cache.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cache_core::layer::Cache;
use cache_core::{CacheKey, Lookup, Store as _};
use cache_discord::{
    BufferResponse, BufferResponseLayer, CachedResponse, DiscordCacheLayer, DiscordPolicy,
    DiscordTtls,
};
use cache_memory::MemoryStore;
use discord_test_server::{DiscordServer, FixtureAccount, RateLimits, ServerConfig};
use http::Method;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;
pub type Upstream = Recorder<BufferResponse<HttpClient>>;
pub type TestStore = MemoryStore<CachedResponse>;
pub type CachedService = Cache<Upstream, TestStore, Arc<DiscordPolicy>>;

/// The real client (hyper-util's legacy client), as a tower service.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Remembers every answer the upstream gave, to compare with what callers got.
#[derive(Clone)]
pub struct Recorder<S> {
    inner: S,
    seen: Arc<Mutex<Vec<CachedResponse>>>,
}

impl<S, Req> Service<Req> for Recorder<S>
where
    S: Service<Req, Response = CachedResponse, Error = cache_core::BoxError>,
    S::Future: Send + 'static,
{
    type Response = CachedResponse;
    type Error = cache_core::BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<CachedResponse, cache_core::BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let call = self.inner.call(req);
        let seen = Arc::clone(&self.seen);
        Box::pin(async move {
            let response = call.await?;
            seen.lock().unwrap().push(response.clone());
            Ok(response)
        })
    }
}

/// A server, the cache in front of it, and the cache's store.
pub struct Harness {
    pub server: DiscordServer,
    pub discord: DiscordCacheLayer<TestStore>,
    pub store: TestStore,
    pub service: CachedService,
    seen: Arc<Mutex<Vec<CachedResponse>>>,
}

/// Fast answers, no rate limits: tests that are not about rate limits must not trip them.
pub fn quiet() -> ServerConfig {
    ServerConfig {
        latency: std::time::Duration::ZERO,
        rate_limits: RateLimits::unlimited(),
        ..ServerConfig::default()
    }
}

impl Harness {
    pub async fn start(config: ServerConfig) -> Self {
        let store = MemoryStore::new(10_000);
        let discord =
            DiscordCacheLayer::from_env_source(store.clone(), &[("CACHE_ENABLED", "true")])
                .expect("default settings");
        Self::with_cache(config, store, discord).await
    }

    /// A harness whose cache keeps entries as `ttls` say (stale periods included).
    pub async fn with_ttls(config: ServerConfig, ttls: DiscordTtls) -> Self {
        let store = MemoryStore::new(10_000);
        let discord = DiscordCacheLayer::new(store.clone(), DiscordPolicy::new(ttls));
        Self::with_cache(config, store, discord).await
    }

    /// A harness around `discord`, which caches in `store`.
    pub async fn with_cache(
        config: ServerConfig,
        store: TestStore,
        discord: DiscordCacheLayer<TestStore>,
    ) -> Self {
        let server = DiscordServer::start(config).await.expect("server starts");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let upstream = Recorder {
            inner: BufferResponseLayer::new().layer(http_client()),
            seen: Arc::clone(&seen),
        };
        let service = discord.cache_layer().layer(upstream);
        Self {
            server,
            discord,
            store,
            service,
            seen,
        }
    }

    pub fn bot(&self) -> FixtureAccount {
        self.server.bot()
    }

    /// Sends `method path` with `authorization` and an optional JSON body through the cache.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Option<Value>,
    ) -> CachedResponse {
        let request = self.request(method, path, authorization, body);
        self.service
            .clone()
            .oneshot(request)
            .await
            .expect("the request completes")
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Option<Value>,
    ) -> http::Request<Full<Bytes>> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        http::Request::builder()
            .method(method)
            .uri(self.uri(path))
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap()
    }

    /// The server's URL of `path` (under `/api/v10`), or `path` itself when it is a full URL.
    fn uri(&self, path: &str) -> String {
        if path.starts_with("http://") {
            path.to_owned()
        } else {
            self.server.url(path)
        }
    }

    /// The full URL of `path` under unversioned `/api`.
    #[allow(dead_code)] // not every test binary sends unversioned requests
    pub fn unversioned_url(&self, path: &str) -> String {
        let versioned = self.server.url(path);
        versioned.replacen("/api/v10/", "/api/", 1)
    }

    pub async fn get(&self, path: &str, authorization: &str) -> CachedResponse {
        self.send(Method::GET, path, authorization, None).await
    }

    /// Sends `count` concurrent reads of `path` through the cache, each from a task of its own.
    pub async fn get_concurrently(
        &self,
        path: &str,
        authorization: &str,
        count: usize,
    ) -> Vec<CachedResponse> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..count {
            let request = self.request(Method::GET, path, authorization, None);
            set.spawn(self.service.clone().oneshot(request));
        }
        let mut answers = Vec::new();
        while let Some(answer) = set.join_next().await {
            answers.push(answer.unwrap().expect("the request completes"));
        }
        answers
    }

    /// Sends `method path` straight to the server, as another process would: the cache never sees it.
    pub async fn send_direct(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Option<Value>,
    ) -> CachedResponse {
        let request = self.request(method, path, authorization, body);
        BufferResponseLayer::new()
            .layer(http_client())
            .oneshot(request)
            .await
            .expect("the request completes")
    }

    /// Upstream requests so far.
    pub fn upstream(&self) -> u64 {
        self.server.stats().requests
    }

    /// The last answer the upstream gave.
    pub fn last_upstream_answer(&self) -> CachedResponse {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("an upstream call")
    }

    /// Whether the store holds a live entry for `key`.
    pub async fn cached(&self, key: &str) -> bool {
        matches!(
            self.store.get(&CacheKey::from(key)).await.unwrap(),
            Lookup::Hit { .. }
        )
    }
}

/// The JSON body of a response.
pub fn json(response: &CachedResponse) -> Value {
    serde_json::from_slice(response.body()).expect("a JSON body")
}

/// The ids of a JSON array body.
pub fn ids(response: &CachedResponse) -> Vec<String> {
    json(response)
        .as_array()
        .expect("an array")
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}
