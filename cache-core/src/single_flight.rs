//! One inner call per key among concurrent callers.
//!
//! The first caller of a key becomes the [`Leader`] and does the work; later callers become [`Waiter`]s
//! and receive a clone of its result. Errors are shared with the waiters of that flight and never
//! remembered: once the flight settles, the next caller leads a new one.
//!
//! A flight remembers the [`FillStamp`] its leader's lookup returned. A caller whose own lookup is newer
//! (an invalidation happened in between) still joins it, and learns the flight's stamp
//! ([`Waiter::started_before_me`]): once the value arrives, the caller checks whether that invalidation
//! concerned the value's key or tags, and fetches again only then. So unrelated invalidations never
//! split a flight. A caller without a stamp (its lookup failed) joins only a flight as blind as itself.
//!
//! The leader runs in its caller's task, so nothing is spawned. If the leader's future is dropped
//! (cancelled) before it publishes, its waiters see [`WaitOutcome::Abandoned`] and one of them leads the
//! retry; if it panics, they receive an error saying so. Either way the key leaves the map: the map holds
//! nothing once all flights have settled.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::watch;

use crate::{FillStamp, SharedError};

type Slot<V> = Option<Result<V, SharedError>>;

/// A flight in the map: the stamp its leader started from, and where its result will appear.
struct Flight<V> {
    stamp: Option<FillStamp>,
    receiver: watch::Receiver<Slot<V>>,
    /// Made when a caller newer than the flight joins it.
    tags: Option<FlightTags>,
}

/// The in-flight calls, by key.
pub(crate) struct SingleFlight<V> {
    flights: Mutex<HashMap<String, Flight<V>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> fmt::Debug for SingleFlight<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("in_flight", &self.len())
            .finish()
    }
}

/// The role of a caller in the flight of its key.
#[derive(Debug)]
pub(crate) enum Join<V> {
    /// No flight was running: this caller does the work and publishes the result.
    Leader(Leader<V>),
    /// A flight is running: this caller waits for its result.
    Waiter(Waiter<V>),
}

/// What a waiter receives.
#[derive(Debug)]
pub(crate) enum WaitOutcome<V> {
    /// The leader's value.
    Value(V),
    /// The leader's error (or a report that it panicked).
    Failed(SharedError),
    /// The leader was dropped before publishing; try again (one of the retries will lead).
    Abandoned,
}

impl<V> SingleFlight<V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The number of keys in flight.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Flight<V>>> {
        // Nothing runs user code under this lock, so a poisoned lock still holds a consistent map.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V: Clone> SingleFlight<V> {
    /// Joins the flight of `key`, or starts it. `stamp` is what the caller's lookup returned (`None` when
    /// the store could not be asked): a flight started from an older stamp is joined, and the waiter
    /// says so; a flight whose stamp and the caller's cannot be compared (one is `None`) is replaced, as
    /// is one the caller already found outdated (`rejected`: a flight started at or before it).
    pub(crate) fn join(
        self: &Arc<Self>,
        key: &str,
        stamp: Option<FillStamp>,
        rejected: Option<FillStamp>,
    ) -> Join<V> {
        let mut flights = self.lock();
        if let Some(flight) = flights.get_mut(key) {
            let joined = match (flight.stamp, stamp) {
                (Some(started), _) if rejected.is_some_and(|rejected| started <= rejected) => None,
                (Some(started), Some(now)) => Some((now > started).then_some(started)),
                // Without a stamp the caller cannot tell whether the flight predates an invalidation it
                // must honour: only flights as blind as itself are safe to join.
                (None, None) => Some(None),
                (Some(_), None) | (None, Some(_)) => None,
            };
            if let Some(started_before_me) = joined {
                // Only a caller newer than the flight needs its tags: the flight's leader never pays.
                let tags =
                    started_before_me.map(|_| Arc::clone(flight.tags.get_or_insert_default()));
                return Join::Waiter(Waiter {
                    receiver: flight.receiver.clone(),
                    started_before_me,
                    tags,
                });
            }
        }
        Join::Leader(self.start(&mut flights, key, stamp))
    }
}

impl<V> SingleFlight<V> {
    /// Starts a flight of `key` only if none is running, whatever its stamp: for background refreshes,
    /// which need *a* fetch of the key under way, not one newer than the running one. (A running fetch
    /// whose result an invalidation supersedes leaves the entry stale, and the next stale hit refreshes
    /// again.)
    pub(crate) fn lead_if_idle(
        self: &Arc<Self>,
        key: &str,
        stamp: Option<FillStamp>,
    ) -> Option<Leader<V>> {
        let mut flights = self.lock();
        if flights.contains_key(key) {
            return None;
        }
        Some(self.start(&mut flights, key, stamp))
    }

    /// Puts a new flight of `key` in the map (replacing an overtaken one) and returns its leader.
    fn start(
        self: &Arc<Self>,
        flights: &mut HashMap<String, Flight<V>>,
        key: &str,
        stamp: Option<FillStamp>,
    ) -> Leader<V> {
        let (sender, receiver) = watch::channel(None);
        flights.insert(
            key.to_owned(),
            Flight {
                stamp,
                receiver,
                tags: None,
            },
        );
        Leader {
            flights: Arc::clone(self),
            key: key.to_owned(),
            sender,
            published: false,
        }
    }
}

/// The caller doing the work for a key. Dropping it ends the flight.
pub(crate) struct Leader<V> {
    flights: Arc<SingleFlight<V>>,
    key: String,
    sender: watch::Sender<Slot<V>>,
    published: bool,
}

impl<V> Leader<V> {
    /// Hands `result` to every waiter, present and future, until this leader is dropped.
    ///
    /// Keeping the leader alive after publishing (while the value is being stored, say) lets callers that
    /// arrive meanwhile take the value instead of starting another flight.
    pub(crate) fn publish(&mut self, result: Result<V, SharedError>) {
        self.sender.send_replace(Some(result));
        self.published = true;
    }
}

impl<V> Drop for Leader<V> {
    fn drop(&mut self) {
        {
            let mut flights = self.flights.lock();
            if flights
                .get(&self.key)
                .is_some_and(|flight| flight.receiver.same_channel(&self.sender.subscribe()))
            {
                flights.remove(&self.key);
            }
        }
        if !self.published && std::thread::panicking() {
            self.sender
                .send_replace(Some(Err(SharedError::leader_panicked(&self.key))));
        }
        // Dropping the sender wakes waiters that got nothing: they see `Abandoned`.
    }
}

impl<V> fmt::Debug for Leader<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leader")
            .field("key", &self.key)
            .field("published", &self.published)
            .finish()
    }
}

/// A caller waiting for the leader of its key.
pub(crate) struct Waiter<V> {
    receiver: watch::Receiver<Slot<V>>,
    started_before_me: Option<FillStamp>,
    tags: Option<FlightTags>,
}

impl<V> Waiter<V> {
    /// The flight's stamp, when it is older than the caller's: its value answers the caller only if
    /// nothing it depends on was invalidated since.
    pub(crate) fn started_before_me(&self) -> Option<FillStamp> {
        self.started_before_me
    }

    /// The tags of the flight's value, worked out once by the first waiter that needs them: there for
    /// a waiter the flight [`started_before`](Self::started_before_me).
    pub(crate) fn tags(&self) -> Option<FlightTags> {
        self.tags.clone()
    }
}

/// The tags of a flight's value, shared by its waiters.
pub(crate) type FlightTags = Arc<OnceLock<Vec<String>>>;

impl<V: Clone> Waiter<V> {
    /// Waits for the leader's result.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only stops this caller waiting.
    pub(crate) async fn wait(mut self) -> WaitOutcome<V> {
        match self.receiver.wait_for(Option::is_some).await {
            Ok(slot) => match slot.as_ref() {
                Some(Ok(value)) => WaitOutcome::Value(value.clone()),
                Some(Err(error)) => WaitOutcome::Failed(error.clone()),
                None => WaitOutcome::Abandoned,
            },
            Err(_closed) => WaitOutcome::Abandoned,
        }
    }
}

impl<V> fmt::Debug for Waiter<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_gets_the_leaders_value_and_the_map_empties() {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let flights = Arc::new(SingleFlight::<u32>::new());
                let Join::Leader(mut leader) = flights.join("answer", None, None) else {
                    unreachable!()
                };
                let Join::Waiter(waiter) = flights.join("answer", None, None) else {
                    unreachable!()
                };
                leader.publish(Ok(42));
                drop(leader);
                assert!(matches!(waiter.wait().await, WaitOutcome::Value(42)));
                assert_eq!(flights.len(), 0);
            });
    }
}
