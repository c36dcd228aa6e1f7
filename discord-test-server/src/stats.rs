//! What the server was asked: the counters tests and demos read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    http2: AtomicU64,
    route_limited: AtomicU64,
    global_limited: AtomicU64,
    outage_answers: AtomicU64,
    by_route: Mutex<HashMap<&'static str, u64>>,
    processed: Mutex<HashMap<&'static str, u64>>,
}

impl Counters {
    pub(crate) fn request(&self, version: http::Version) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if version == http::Version::HTTP_2 {
            self.http2.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn route(&self, template: &'static str) {
        *self
            .by_route
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(template)
            .or_default() += 1;
    }

    /// A request a handler answered: past the outage, the planned failures and the limits.
    pub(crate) fn processed(&self, template: &'static str) {
        *self
            .processed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(template)
            .or_default() += 1;
    }

    pub(crate) fn rate_limited(&self, global: bool) {
        let counter = if global {
            &self.global_limited
        } else {
            &self.route_limited
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn outage_answer(&self) {
        self.outage_answers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        let by_route = self
            .by_route
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(route, count)| ((*route).to_owned(), *count))
            .collect();
        let processed = self
            .processed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(route, count)| ((*route).to_owned(), *count))
            .collect();
        ServerStats {
            processed,
            requests: self.requests.load(Ordering::Relaxed),
            http2_requests: self.http2.load(Ordering::Relaxed),
            route_rate_limited: self.route_limited.load(Ordering::Relaxed),
            global_rate_limited: self.global_limited.load(Ordering::Relaxed),
            outage_answers: self.outage_answers.load(Ordering::Relaxed),
            by_route,
        }
    }
}

/// The server's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Every request received, whatever its answer.
    pub requests: u64,
    /// Those received over HTTP/2.
    pub http2_requests: u64,
    /// Requests answered 429 by a route bucket.
    pub route_rate_limited: u64,
    /// Requests answered 429 by the global limit.
    pub global_rate_limited: u64,
    /// Requests answered by an outage ([`DiscordServer::start_outage`](super::DiscordServer::start_outage)),
    /// whatever its status; its 429s are not counted as route or global ones.
    pub outage_answers: u64,
    /// Requests per route, named as Discord documents them (`GET /guilds/{guild.id}/roles`);
    /// unknown paths count under `unknown`.
    pub by_route: BTreeMap<String, u64>,
    /// Requests per route that Discord would have processed: answered by their handler, not by an
    /// outage, a planned failure ([`DiscordServer::fail_next`](super::DiscordServer::fail_next)) or
    /// a limit. A write sent twice shows here twice.
    pub processed: BTreeMap<String, u64>,
}

impl ServerStats {
    /// Requests answered 429, by a bucket or the global limit.
    pub fn rate_limited(&self) -> u64 {
        self.route_rate_limited + self.global_rate_limited
    }

    /// Requests to `route` that Discord would have processed ([`processed`](Self::processed)).
    pub fn processed_by(&self, route: &str) -> u64 {
        self.processed.get(route).copied().unwrap_or(0)
    }

    /// Requests to `route` (`"GET /guilds/{guild.id}/roles"`).
    pub fn calls_to(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }
}
