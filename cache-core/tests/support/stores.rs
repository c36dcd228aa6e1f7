//! Stores for failure tests: one that keeps encoded bytes (so bytes can be corrupted), one that always
//! fails, one that never answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::codec::{envelope, Codec};
use cache_core::{
    CacheKey, Error, FillStamp, Invalidate, Lookup, PutEntry, PutOutcome, Store, StoreFuture,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Holds entries as envelope bytes of codec `C`; no TTL or tags (not needed by the tests using it).
pub struct BytesStore<C, V> {
    pub bytes: Arc<Mutex<HashMap<CacheKey, Vec<u8>>>>,
    codec: C,
    _value: std::marker::PhantomData<fn() -> V>,
}

impl<C: Clone, V> Clone for BytesStore<C, V> {
    fn clone(&self) -> Self {
        Self {
            bytes: Arc::clone(&self.bytes),
            codec: self.codec.clone(),
            _value: std::marker::PhantomData,
        }
    }
}

impl<C, V> BytesStore<C, V> {
    pub fn new(codec: C) -> Self {
        Self {
            bytes: Arc::default(),
            codec,
            _value: std::marker::PhantomData,
        }
    }

    pub fn set_raw(&self, key: &str, bytes: Vec<u8>) {
        self.bytes
            .lock()
            .unwrap()
            .insert(CacheKey::from(key), bytes);
    }
}

impl<C: Codec, V: Send + Sync + 'static> Invalidate for BytesStore<C, V> {
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        self.bytes.lock().unwrap().remove(key);
        StoreFuture::ready(Ok(()))
    }

    fn invalidate_tags(&self, _tags: &[String]) -> StoreFuture<Result<(), Error>> {
        StoreFuture::ready(Ok(()))
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        self.bytes.lock().unwrap().clear();
        StoreFuture::ready(Ok(()))
    }
}

impl<C: Codec, V: Serialize + DeserializeOwned + Send + Sync + 'static> Store for BytesStore<C, V> {
    type Value = V;

    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<V>, Error>> {
        let stamp = FillStamp::new(0);
        let lookup = match self.bytes.lock().unwrap().get(key) {
            None => Lookup::Miss { stamp },
            Some(bytes) => match envelope::decode::<C, V>(&self.codec, bytes) {
                Ok(entry) => Lookup::Hit {
                    value: entry.value,
                    stamp: entry.stamp,
                },
                Err(error) => Lookup::Undecodable { stamp, error },
            },
        };
        StoreFuture::ready(Ok(lookup))
    }

    fn put(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        let stamp = entry.stamp.unwrap_or(FillStamp::new(0));
        let result = envelope::encode(&self.codec, stamp, &entry.tags, &entry.value).map(|bytes| {
            self.bytes.lock().unwrap().insert(key.clone(), bytes);
            PutOutcome::Stored
        });
        StoreFuture::ready(result)
    }

    fn update(&self, key: &CacheKey, entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        self.put(key, entry)
    }
}

/// How a [`BrokenStore`] misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Breakage {
    /// Every operation fails at once (connection refused).
    Fails,
    /// Every operation waits forever (a hung server); only the layer's timeout ends it.
    Hangs,
}

/// A store that never works.
#[derive(Clone)]
pub struct BrokenStore<V> {
    breakage: Breakage,
    _value: std::marker::PhantomData<fn() -> V>,
}

impl<V> BrokenStore<V> {
    pub fn new(breakage: Breakage) -> Self {
        Self {
            breakage,
            _value: std::marker::PhantomData,
        }
    }

    fn answer<T: Send + 'static>(&self, operation: &'static str) -> StoreFuture<Result<T, Error>> {
        match self.breakage {
            Breakage::Fails => {
                StoreFuture::ready(Err(Error::store(operation, "connection refused")))
            }
            Breakage::Hangs => StoreFuture::pending(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(Error::store(operation, "hung"))
            }),
        }
    }
}

impl<V: Send + Sync + 'static> Invalidate for BrokenStore<V> {
    fn remove(&self, _key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        self.answer("remove")
    }

    fn invalidate_tags(&self, _tags: &[String]) -> StoreFuture<Result<(), Error>> {
        self.answer("invalidate")
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        self.answer("clear")
    }
}

impl<V: Send + Sync + 'static> Store for BrokenStore<V> {
    type Value = V;

    fn get(&self, _key: &CacheKey) -> StoreFuture<Result<Lookup<V>, Error>> {
        self.answer("get")
    }

    fn put(&self, _key: &CacheKey, _entry: PutEntry<V>) -> StoreFuture<Result<PutOutcome, Error>> {
        self.answer("put")
    }

    fn update(
        &self,
        _key: &CacheKey,
        _entry: PutEntry<V>,
    ) -> StoreFuture<Result<PutOutcome, Error>> {
        self.answer("put")
    }
}

/// Wraps a working store and makes its reads or its write updates fail on demand, as a store whose
/// circuit opened would.
pub struct Flaky<S> {
    pub inner: S,
    pub fail_gets: Arc<std::sync::atomic::AtomicBool>,
    pub fail_updates: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: Clone> Clone for Flaky<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            fail_gets: Arc::clone(&self.fail_gets),
            fail_updates: Arc::clone(&self.fail_updates),
        }
    }
}

impl<S> Flaky<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            fail_gets: Arc::default(),
            fail_updates: Arc::default(),
        }
    }
}

fn failing<T>(
    on: &std::sync::atomic::AtomicBool,
    operation: &'static str,
) -> Option<StoreFuture<Result<T, Error>>> {
    on.load(std::sync::atomic::Ordering::SeqCst)
        .then(|| StoreFuture::ready(Err(Error::store(operation, "failing fast"))))
}

impl<S: Invalidate> Invalidate for Flaky<S> {
    fn remove(&self, key: &CacheKey) -> StoreFuture<Result<(), Error>> {
        self.inner.remove(key)
    }

    fn invalidate_tags(&self, tags: &[String]) -> StoreFuture<Result<(), Error>> {
        self.inner.invalidate_tags(tags)
    }

    fn clear(&self) -> StoreFuture<Result<(), Error>> {
        self.inner.clear()
    }
}

impl<S: Store> Store for Flaky<S> {
    type Value = S::Value;

    fn get(&self, key: &CacheKey) -> StoreFuture<Result<Lookup<S::Value>, Error>> {
        failing(&self.fail_gets, "get").unwrap_or_else(|| self.inner.get(key))
    }

    fn put(
        &self,
        key: &CacheKey,
        entry: PutEntry<S::Value>,
    ) -> StoreFuture<Result<PutOutcome, Error>> {
        self.inner.put(key, entry)
    }

    fn update(
        &self,
        key: &CacheKey,
        entry: PutEntry<S::Value>,
    ) -> StoreFuture<Result<PutOutcome, Error>> {
        failing(&self.fail_updates, "put").unwrap_or_else(|| self.inner.update(key, entry))
    }
}
