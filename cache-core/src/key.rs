//! The key type stores are addressed by.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// A cache key: an owned string that stores can hash and compare without copying it.
///
/// Policies produce plain `String`s; the layer wraps them for free. An in-process store can look a
/// `&CacheKey` up directly, where a `&str` would force it to allocate a key of its own on every hit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for CacheKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<&str> for CacheKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl Deref for CacheKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CacheKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for CacheKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
