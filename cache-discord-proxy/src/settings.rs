//! [`ProxySettings`]: where the proxy listens, where it relays, and its control routes, from the
//! environment.

use std::net::SocketAddr;
use std::time::Duration;

use cache_core::config::env::{
    invalid, read_millis, read_positive_millis, Environment, ProcessEnv,
};

use crate::Error;

/// Where the proxy listens (default `127.0.0.1:8080`).
pub const CACHE_PROXY_ADDR: &str = "CACHE_PROXY_ADDR";
/// Where requests go: `https://discord.com` by default; `http://` is accepted for local upstreams.
pub const DISCORD_API_URL: &str = "DISCORD_API_URL";
/// A PEM file of the authorities to trust for an `https://` upstream, in place of the web PKI roots.
pub const CACHE_PROXY_CA_FILE: &str = "CACHE_PROXY_CA_FILE";
/// The control routes' listener; unset: no control routes.
pub const CACHE_PROXY_ADMIN_ADDR: &str = "CACHE_PROXY_ADMIN_ADDR";
/// The bearer token the control routes require (needed with `CACHE_PROXY_ADMIN_ADDR`).
pub const CACHE_PROXY_ADMIN_TOKEN: &str = "CACHE_PROXY_ADMIN_TOKEN";
/// `plain` (default) or `json` logs.
pub const CACHE_PROXY_LOG_FORMAT: &str = "CACHE_PROXY_LOG_FORMAT";
/// How long in-flight requests have to finish after a shutdown signal, in milliseconds.
pub const CACHE_PROXY_SHUTDOWN_GRACE_MS: &str = "CACHE_PROXY_SHUTDOWN_GRACE_MS";
/// How long a client has to send a request's head on HTTP/1.1 before its connection is closed, in
/// milliseconds (30,000 by default).
pub const CACHE_PROXY_HEADER_TIMEOUT_MS: &str = "CACHE_PROXY_HEADER_TIMEOUT_MS";

/// Connections served at once on the bots' listener (10,000 by default); past it, new connections
/// wait to be accepted until one closes.
pub const CACHE_PROXY_MAX_CONNECTIONS: &str = "CACHE_PROXY_MAX_CONNECTIONS";

/// The shortest control-route token accepted.
const MIN_ADMIN_TOKEN: usize = 16;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Plain,
    /// One JSON object per event.
    Json,
}

/// The proxy's own settings (the cache's, the store's and the rate limiter's are read by their crates).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxySettings {
    /// The address bots connect to.
    pub listen: SocketAddr,
    /// The upstream: scheme, host and port only.
    pub upstream: http::Uri,
    /// Authorities trusted for an `https://` upstream (PEM), if not the web PKI roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The control routes' address and token, when on.
    pub admin: Option<(SocketAddr, String)>,
    /// Log lines or JSON.
    pub log_format: LogFormat,
    /// The bound on finishing in-flight requests at shutdown.
    pub shutdown_grace: Duration,
    /// The bound on reading a request's head (HTTP/1.1); a slower client is disconnected.
    pub header_read_timeout: Duration,
    /// Connections served at once; past it, new ones wait to be accepted.
    pub max_connections: usize,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("listen", &self.listen)
            .field("upstream", &self.upstream)
            .field("custom_ca", &self.ca_pem.is_some())
            .field("admin", &self.admin.as_ref().map(|(addr, _)| addr))
            .field("log_format", &self.log_format)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl ProxySettings {
    /// Reads the `CACHE_PROXY_*` variables and `DISCORD_API_URL` from the process environment.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is bad.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Like [`from_env`](Self::from_env), reading from `env`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is bad.
    pub fn from_env_source(env: &impl Environment) -> Result<Self, Error> {
        let address = |name: &str, default: Option<&str>| -> Result<Option<SocketAddr>, Error> {
            let Some(value) = env.var(name)?.or(default.map(str::to_owned)) else {
                return Ok(None);
            };
            value.trim().parse().map(Some).map_err(|_| {
                invalid(
                    name,
                    &value,
                    "expected an address and port, such as 127.0.0.1:8080",
                )
                .into()
            })
        };
        let listen = address(CACHE_PROXY_ADDR, Some("127.0.0.1:8080"))?.expect("a default");
        let upstream = upstream(
            env.var(DISCORD_API_URL)?
                .as_deref()
                .unwrap_or("https://discord.com"),
        )?;
        let ca_pem = match env.var(CACHE_PROXY_CA_FILE)? {
            Some(path) => Some(std::fs::read(path.trim()).map_err(|error| {
                invalid(
                    CACHE_PROXY_CA_FILE,
                    &path,
                    format!("cannot be read: {error}"),
                )
            })?),
            None => None,
        };
        if ca_pem.is_some() && upstream.scheme_str() != Some("https") {
            return Err(invalid(
                CACHE_PROXY_CA_FILE,
                "<set>",
                format!("only used with an https:// {DISCORD_API_URL}"),
            )
            .into());
        }
        let token = env.var(CACHE_PROXY_ADMIN_TOKEN)?;
        let admin = match (address(CACHE_PROXY_ADMIN_ADDR, None)?, token) {
            (Some(addr), token) => Some((addr, admin_token(&token.unwrap_or_default())?)),
            (None, Some(_)) => {
                return Err(invalid(
                    CACHE_PROXY_ADMIN_ADDR,
                    "",
                    format!(
                        "required with {CACHE_PROXY_ADMIN_TOKEN}: where the control routes listen"
                    ),
                )
                .into())
            }
            (None, None) => None,
        };
        let log_format = match env.var(CACHE_PROXY_LOG_FORMAT)?.as_deref().map(str::trim) {
            None | Some("plain") => LogFormat::Plain,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(CACHE_PROXY_LOG_FORMAT, other, "expected plain or json").into())
            }
        };
        let shutdown_grace =
            read_millis(env, CACHE_PROXY_SHUTDOWN_GRACE_MS, Duration::from_secs(10))?;
        let header_read_timeout =
            read_positive_millis(env, CACHE_PROXY_HEADER_TIMEOUT_MS, HEADER_READ_TIMEOUT)?;
        let max_connections = match env.var(CACHE_PROXY_MAX_CONNECTIONS)? {
            None => MAX_CONNECTIONS,
            Some(value) => match value.trim().parse::<usize>() {
                Ok(count) if count > 0 => count,
                _ => {
                    return Err(invalid(
                        CACHE_PROXY_MAX_CONNECTIONS,
                        &value,
                        "expected a positive number of connections",
                    )
                    .into())
                }
            },
        };
        Ok(Self {
            listen,
            upstream,
            ca_pem,
            admin,
            log_format,
            shutdown_grace,
            header_read_timeout,
            max_connections,
        })
    }

    /// Settings for a proxy on `listen` in front of `upstream` (`http://` or `https://`, no path),
    /// without control routes.
    ///
    /// # Errors
    /// [`Error::Config`] naming `DISCORD_API_URL` when `upstream` is not such a URL.
    pub fn new(listen: SocketAddr, upstream: &str) -> Result<Self, Error> {
        Ok(Self {
            listen,
            upstream: self::upstream(upstream)?,
            ca_pem: None,
            admin: None,
            log_format: LogFormat::Plain,
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        })
    }

    /// Turns the control routes on, at `addr`, guarded by `token`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `CACHE_PROXY_ADMIN_TOKEN` when the token is shorter than 16
    /// characters.
    pub fn admin(mut self, addr: SocketAddr, token: &str) -> Result<Self, Error> {
        self.admin = Some((addr, admin_token(token)?));
        Ok(self)
    }
}

/// The default [`ProxySettings::max_connections`].
const MAX_CONNECTIONS: usize = 10_000;

/// The default [`ProxySettings::header_read_timeout`].
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A control-route token: long enough not to be guessed.
fn admin_token(token: &str) -> Result<String, Error> {
    let token = token.trim();
    if token.chars().count() < MIN_ADMIN_TOKEN {
        return Err(invalid(
            CACHE_PROXY_ADMIN_TOKEN,
            "<hidden>",
            format!(
                "required with {CACHE_PROXY_ADMIN_ADDR}: at least {MIN_ADMIN_TOKEN} characters"
            ),
        )
        .into());
    }
    Ok(token.to_owned())
}

/// An upstream URL: `http` or `https`, a host, maybe a port, and nothing after it.
fn upstream(value: &str) -> Result<http::Uri, Error> {
    if value.contains(['@', '?']) {
        // Credentials in the URL: Discord takes none there, and they would show in logs and /readyz.
        return Err(invalid(
            DISCORD_API_URL,
            "<hidden: it holds an @ or a query>",
            "expected scheme, host and port only: no user, password or query",
        )
        .into());
    }
    let bad = |reason: &str| invalid(DISCORD_API_URL, value, reason.to_owned()).into();
    let uri: http::Uri = value
        .trim()
        .trim_end_matches('/')
        .parse()
        .map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("expected http:// or https://")),
    }
    if uri.authority().is_none() {
        return Err(bad("expected a host"));
    }
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(bad("expected no path: requests keep theirs (/api/v10/...)"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values_name_their_variable() {
        let settings = ProxySettings::from_env_source(&[("CACHE_KEY_PREFIX", "x")]).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(settings.upstream, "https://discord.com");
        assert!(settings.admin.is_none());
        for (name, value) in [
            (CACHE_PROXY_ADDR, "localhost"),
            (DISCORD_API_URL, "ftp://discord.com"),
            (DISCORD_API_URL, "https://discord.com/api"),
            (CACHE_PROXY_LOG_FORMAT, "xml"),
            (CACHE_PROXY_ADMIN_ADDR, "127.0.0.1:9"),
            (CACHE_PROXY_CA_FILE, "/nonexistent/ca.pem"),
            (CACHE_PROXY_HEADER_TIMEOUT_MS, "0"),
            (CACHE_PROXY_HEADER_TIMEOUT_MS, "soon"),
            (CACHE_PROXY_ADMIN_TOKEN, "a-long-enough-admin-token"),
            (CACHE_PROXY_MAX_CONNECTIONS, "0"),
            (CACHE_PROXY_MAX_CONNECTIONS, "many"),
        ] {
            let error = ProxySettings::from_env_source(&[(name, value)]).unwrap_err();
            let shown = error.to_string();
            let named = match name {
                CACHE_PROXY_ADMIN_ADDR => CACHE_PROXY_ADMIN_TOKEN,
                CACHE_PROXY_ADMIN_TOKEN => CACHE_PROXY_ADMIN_ADDR,
                _ => name,
            };
            assert!(shown.contains(named), "{shown}");
        }
        let secret = "a-long-enough-admin-token";
        let settings = ProxySettings::from_env_source(&[
            (CACHE_PROXY_ADMIN_ADDR, "127.0.0.1:9090"),
            (CACHE_PROXY_ADMIN_TOKEN, secret),
        ])
        .unwrap();
        assert!(!format!("{settings:?}").contains(secret));
        let short = ProxySettings::new(settings.listen, "http://127.0.0.1:1")
            .unwrap()
            .admin(settings.listen, "too-short")
            .unwrap_err();
        assert!(
            short.to_string().contains(CACHE_PROXY_ADMIN_TOKEN),
            "{short}"
        );
        let with_password = "https://user:hunter2-password@discord.com";
        let error = ProxySettings::from_env_source(&[(DISCORD_API_URL, with_password)])
            .unwrap_err()
            .to_string();
        assert!(error.contains(DISCORD_API_URL), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let some_file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let plain = [
            (CACHE_PROXY_CA_FILE, some_file),
            (DISCORD_API_URL, "http://127.0.0.1:1"),
        ];
        let error = ProxySettings::from_env_source(&plain)
            .unwrap_err()
            .to_string();
        assert!(error.contains(CACHE_PROXY_CA_FILE), "{error}");
        let with_query = "https://discord.com/?token=hunter2";
        let error = ProxySettings::from_env_source(&[(DISCORD_API_URL, with_query)])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(DISCORD_API_URL) && !error.contains("hunter2"),
            "{error}"
        );
    }
}
