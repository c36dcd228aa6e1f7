//! The crate's error type.

/// Everything in `cache-discord` that can fail.
///
/// Request handling never fails because of the cache: store failures are counted by the layer and the
/// request goes to Discord. These errors reach callers from configuration, from the invalidation
/// helpers (which report the store's failure to whoever asked) and from gateway events whose payload
/// lacks what the event promises.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is bad (the message names the variable), or the store failed an invalidation.
    #[error(transparent)]
    Cache(#[from] cache_core::Error),
    /// A gateway event's payload does not have the field the event always carries.
    #[error("gateway event {event}: {reason}")]
    EventPayload {
        /// The event's name, such as `GUILD_ROLE_DELETE`.
        event: String,
        /// What is missing or malformed.
        reason: String,
    },
    /// A response body was larger than the buffering limit.
    #[error("response body exceeds the buffering limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}
