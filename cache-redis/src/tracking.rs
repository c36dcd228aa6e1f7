//! Hearing about invalidations from Redis itself, so that a hit can be a plain `GET`.
//!
//! Each connection of the store's own pool speaks RESP3 and asks for
//! `CLIENT TRACKING ON BCAST PREFIX {prefix}:epoch`: whenever the invalidation clock changes, Redis pushes
//! a notice down every such connection. Redis queues broadcast notices at the end of the event-loop turn
//! that made the change, before it reads any further command; so on each connection the notice arrives
//! ahead of the reply to every command handled after that turn. A read handled in the same turn as the
//! invalidation was sent before the invalidation returned, overlaps it, and may see the state just
//! before it. redis-rs hands a push over (here: bumps a counter) before it completes the reply that
//! follows it. A reader that checks the counter after its `GET` returned therefore knows whether an
//! invalidation that returned before its read started might be missing from its view, and only then reads
//! the records.
//!
//! A new connection counts as a notice of its own (what happened before it was tracking is unknown), and
//! so does a lost one. A server that refuses RESP3 or tracking (Redis before 6, some proxies) turns the
//! feature off for the store, whose reads then fetch the clock with every entry (`MGET`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redis::aio::{AsyncPushSender, SendError};
use redis::{PushInfo, PushKind};

/// Shared by a store and its connections.
pub(crate) struct Tracking {
    enabled: AtomicBool,
    notices: AtomicU64,
    /// The key whose changes are pushed: the invalidation clock.
    pub(crate) watched: String,
}

impl Tracking {
    pub(crate) fn new(enabled: bool, watched: String) -> Arc<Self> {
        Arc::new(Self {
            enabled: AtomicBool::new(enabled),
            notices: AtomicU64::new(0),
            watched,
        })
    }

    /// Whether new connections should be tracked.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The server cannot track: fall back to reading the clock with every entry.
    pub(crate) fn disable(&self, why: &RedisErrorText) {
        if self.enabled.swap(false, Ordering::AcqRel) {
            tracing::warn!(reason = %why.0, "Redis refused client tracking; every read fetches the invalidation clock");
        }
    }

    /// Notices so far: invalidation pushes, new connections, lost connections.
    pub(crate) fn notices(&self) -> u64 {
        self.notices.load(Ordering::Acquire)
    }

    pub(crate) fn notice(&self) {
        self.notices.fetch_add(1, Ordering::AcqRel);
    }

    /// The push sender given to each tracked connection.
    pub(crate) fn listener(self: &Arc<Self>) -> PushListener {
        PushListener(Arc::clone(self))
    }
}

/// A displayable reason, kept separate so `Tracking` needs no error type of its own.
pub(crate) struct RedisErrorText(pub(crate) String);

/// Counts the pushes that matter; runs inside the connection's reader, so it must not block.
pub(crate) struct PushListener(Arc<Tracking>);

impl AsyncPushSender for PushListener {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        if matches!(info.kind, PushKind::Invalidate | PushKind::Disconnection) {
            self.0.notice();
        }
        Ok(())
    }
}
