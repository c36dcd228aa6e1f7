//! The proxy's error type.

/// What can keep the proxy from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad setting (the message names the variable) or a store that cannot be set up.
    #[error(transparent)]
    Config(#[from] cache_core::Error),
    /// A bad setting of the Discord cache or rate limiter.
    #[error(transparent)]
    Discord(#[from] cache_discord::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The upstream's TLS settings are unusable.
    #[error("TLS to the upstream: {0}")]
    Tls(String),
}
