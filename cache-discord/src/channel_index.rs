//! Which guild a channel belongs to, learned from the answers that pass through.
//!
//! `PUT` and `DELETE /channels/{c}/permissions/{o}` change a guild's channel list but name only the
//! channel, and Discord answers them with an empty 204. The index remembers the guild of every channel
//! seen in a channel list, a channel write or a gateway event, so those writes invalidate just that
//! guild's list; for a channel it has not seen, the writer falls back to every channel list
//! ([`tags::CHANNELS`](crate::keys::tags::CHANNELS)). It lives in the process: with a shared store,
//! a process that never saw the channel takes the fallback.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::route::Snowflake;

/// Channels remembered before the index starts over (a few MB at most).
pub const DEFAULT_CHANNEL_INDEX_CAPACITY: usize = 200_000;

/// A bounded map from channel id to guild id.
pub struct ChannelIndex {
    guilds: Mutex<HashMap<Snowflake, Snowflake>>,
    capacity: usize,
}

impl ChannelIndex {
    /// An index of at most `capacity` channels. When full it forgets everything and starts over: the
    /// fallback is correct, only broader.
    pub fn new(capacity: usize) -> Self {
        Self {
            guilds: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// The guild of `channel`, if seen.
    pub fn guild_of(&self, channel: Snowflake) -> Option<Snowflake> {
        self.lock().get(&channel).copied()
    }

    /// Records the guild of each channel.
    pub fn learn(&self, guild: Snowflake, channels: impl IntoIterator<Item = Snowflake>) {
        let mut map = self.lock();
        for channel in channels {
            if map.len() >= self.capacity && !map.contains_key(&channel) {
                map.clear();
            }
            map.insert(channel, guild);
        }
    }

    /// Forgets a deleted channel.
    pub fn forget(&self, channel: Snowflake) {
        self.lock().remove(&channel);
    }

    /// Channels remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Snowflake, Snowflake>> {
        self.guilds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sizes only: the map can hold hundreds of thousands of ids, too many for a log line.
impl fmt::Debug for ChannelIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelIndex")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for ChannelIndex {
    fn default() -> Self {
        Self::new(DEFAULT_CHANNEL_INDEX_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_forgets_and_stays_bounded() {
        let index = ChannelIndex::new(2);
        index.learn(10, [1, 2]);
        assert_eq!(index.guild_of(1), Some(10));
        index.learn(20, [3]);
        assert_eq!(index.len(), 1, "full: started over");
        assert_eq!(index.guild_of(3), Some(20));
        assert_eq!(format!("{index:?}"), "ChannelIndex { len: 1, capacity: 2 }");
        index.forget(3);
        assert!(index.is_empty());
    }
}
