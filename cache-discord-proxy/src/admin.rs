//! The control routes, on a listener of their own: invalidations, gateway events, stats, metrics,
//! health. Every route but `/healthz` and `/readyz` needs `Authorization: Bearer <CACHE_PROXY_ADMIN_TOKEN>`.
//!
//! | route | does |
//! |---|---|
//! | `POST /invalidate/guild/{guild id}` | forgets a guild's channels, roles and members, for every credential |
//! | `POST /invalidate/user/{user key}` | forgets what one user's token fetched (the key: 32 hex digits, `UserKey`) |
//! | `POST /invalidate/tags` `{"tags": ["discord:guild:1:roles", ...]}` | forgets the entries of these tags |
//! | `POST /events` | a gateway dispatch as the bot receives it, `{"t": "GUILD_ROLE_UPDATE", "d": {...}}`, or an array of them |
//! | `GET /stats` | the cache's and the rate limiter's counters, as JSON |
//! | `GET /metrics` | the same and more, in Prometheus text format |
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when the store answers and the upstream accepts a connection, 503 otherwise |

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cache_discord::{
    CachedResponse, DiscordBody, DiscordCacheLayer, DiscordRateLimitLayer, Snowflake, UserKey,
};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use tower_cache::EnvStore;

use crate::service::json_answer;

/// The largest control request body read (a batch of gateway events).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The process's Prometheus recorder, installed by the first proxy that asks.
pub(crate) fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

#[derive(Clone)]
pub(crate) struct AdminService {
    pub(crate) token: Arc<str>,
    pub(crate) discord: DiscordCacheLayer<EnvStore<CachedResponse>>,
    pub(crate) limits: DiscordRateLimitLayer,
    pub(crate) store: EnvStore<CachedResponse>,
    pub(crate) upstream: http::Uri,
}

impl AdminService {
    pub(crate) async fn handle(
        self,
        request: http::Request<Incoming>,
    ) -> http::Response<DiscordBody> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok"),
            (&Method::GET, "/readyz") => return self.ready().await,
            _ => {}
        }
        if !self.authorized(request.headers()) {
            return json_answer(
                StatusCode::UNAUTHORIZED,
                &json!({"message": "401: Unauthorized"}),
            );
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (Method::GET, ["stats"]) => self.stats(),
            (Method::GET, ["metrics"]) => match prometheus() {
                Some(handle) => text(StatusCode::OK, &handle.render()),
                None => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "another metrics recorder is installed",
                ),
            },
            (Method::POST, ["invalidate", "guild", id]) => match id.parse::<Snowflake>() {
                Ok(guild) => done(
                    self.discord
                        .invalidate_discord_guild_cache(guild)
                        .await
                        .map(|()| json!({"guild": id})),
                ),
                Err(_) => bad("not a guild id"),
            },
            (Method::POST, ["invalidate", "user", key]) => match UserKey::from_hex(key) {
                Some(user) => done(
                    self.discord
                        .invalidate_discord_user_cache(&user)
                        .await
                        .map(|()| json!({"user": user.as_str()})),
                ),
                None => bad("not a user key (32 hex digits)"),
            },
            (Method::POST, ["invalidate", "tags"]) => {
                let Some(body) = read_json(request).await else {
                    return bad("expected {\"tags\": [...]}");
                };
                let tags: Vec<String> = body["tags"]
                    .as_array()
                    .map(|tags| {
                        tags.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if tags.is_empty() {
                    return bad("expected {\"tags\": [...]}");
                }
                let result = self.discord.handle().invalidate_tags(tags.clone()).await;
                done(
                    result
                        .map(|()| json!({"tags": tags}))
                        .map_err(cache_discord::Error::from),
                )
            }
            (Method::POST, ["events"]) => {
                let Some(body) = read_json(request).await else {
                    return bad(
                        "expected a gateway dispatch {\"t\": ..., \"d\": ...} or an array of them",
                    );
                };
                self.events(body).await
            }
            _ => json_answer(StatusCode::NOT_FOUND, &json!({"message": "404: Not Found"})),
        }
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let Some(given) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        // Constant time in the token's length: no byte is learned from timing.
        let expected = self.token.as_bytes();
        let given = given.as_bytes();
        let mut differs = u8::from(given.len() != expected.len());
        for (i, byte) in expected.iter().enumerate() {
            differs |= byte ^ given.get(i).copied().unwrap_or(0);
        }
        differs == 0
    }

    async fn events(&self, body: Value) -> http::Response<DiscordBody> {
        let events = match body {
            Value::Array(events) => events,
            event => vec![event],
        };
        let mut applied = 0;
        let mut tags = Vec::new();
        let mut errors = Vec::new();
        for event in &events {
            let (Some(name), Some(payload)) = (event["t"].as_str(), event.get("d")) else {
                errors.push("an event without \"t\" and \"d\"".to_owned());
                continue;
            };
            match self.discord.apply_gateway_event(name, payload).await {
                Ok(invalidated) => {
                    applied += 1;
                    tags.extend(invalidated);
                }
                Err(error) => errors.push(error.to_string()),
            }
        }
        let status = if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        json_answer(
            status,
            &json!({"applied": applied, "invalidated": tags, "errors": errors}),
        )
    }

    fn stats(&self) -> http::Response<DiscordBody> {
        let cache = self.discord.stats().snapshot();
        let pacing = self.limits.stats().snapshot();
        json_answer(
            StatusCode::OK,
            &json!({
                "backend": self.store.backend(),
                "cache": {
                    "hits": cache.hits, "misses": cache.misses, "dedupes": cache.dedupes,
                    "stale_served": cache.stale_served, "store_errors": cache.store_errors,
                    "invalidations": cache.invalidations, "passthrough": cache.passthrough,
                },
                "rate_limit": {
                    "admitted": pacing.admitted, "waited": pacing.waited,
                    "wait_ms": pacing.wait_time.as_secs_f64() * 1000.0,
                    "rate_limited": pacing.rate_limited, "retried": pacing.retried,
                    "refused": pacing.refused, "fallbacks": pacing.fallbacks,
                    "shared": self.limits.is_shared(),
                },
            }),
        )
    }

    async fn ready(&self) -> http::Response<DiscordBody> {
        let store = self.store.ping().await.map_err(|error| error.to_string());
        let authority = self
            .upstream
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let port =
            self.upstream
                .port_u16()
                .unwrap_or(if self.upstream.scheme_str() == Some("http") {
                    80
                } else {
                    443
                });
        let host = self
            .upstream
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let connect = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await;
        let upstream = match connect {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_owned()),
        };
        let ready = store.is_ok() && upstream.is_ok();
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json_answer(
            status,
            &json!({
                "ready": ready,
                "store": store.err().unwrap_or_else(|| "ok".to_owned()),
                "upstream": upstream.err().unwrap_or_else(|| "ok".to_owned()),
                "upstream_host": authority,
            }),
        )
    }
}

async fn read_json(request: http::Request<Incoming>) -> Option<Value> {
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

fn done(result: Result<Value, cache_discord::Error>) -> http::Response<DiscordBody> {
    match result {
        Ok(value) => json_answer(StatusCode::OK, &json!({"invalidated": value})),
        Err(error) => json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": error.to_string()}),
        ),
    }
}

fn bad(message: &str) -> http::Response<DiscordBody> {
    json_answer(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

fn text(status: StatusCode, body: &str) -> http::Response<DiscordBody> {
    let mut response = http::Response::new(DiscordBody::full(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
