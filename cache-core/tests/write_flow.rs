//! The write hook: successful writes update entries from their response and invalidate what they say.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::{
    AfterWrite, BoxError, CacheLayer, EntryUpdate, Policy, StalePeriods, WriteEffects,
};
use cache_memory::MemoryStore;
use tower::{service_fn, Layer, ServiceExt};

#[derive(Debug, Clone)]
enum Req {
    Get(u64),
    List,
    Rename(u64, String),
    Add(u64, String),
    Delete(u64),
    Fail(u64),
}

#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Item(String),
    List(Vec<String>),
    Deleted,
}

const TTL: Duration = Duration::from_secs(600);

fn key(req: &Req) -> Option<String> {
    match req {
        Req::Get(id) => Some(format!("item:{id}")),
        Req::List => Some("items".to_owned()),
        _ => None,
    }
}

fn tags(key: &str, _: &Resp) -> Vec<String> {
    vec![key.to_owned()]
}

fn writes(req: &Req) -> Option<AfterWrite<Resp>> {
    let after: AfterWrite<Resp> = match req.clone() {
        // The write returns the new object: update its entry and its place in the list.
        Req::Rename(id, _) | Req::Add(id, _) => Box::new(move |resp: &Resp| {
            let Resp::Item(name) = resp.clone() else {
                return WriteEffects::none();
            };
            let in_list = name.clone();
            WriteEffects::none()
                .update(EntryUpdate::Put {
                    key: format!("item:{id}"),
                    value: resp.clone(),
                    ttl: TTL,
                    tags: vec![format!("item:{id}")],
                    stale: StalePeriods::NONE,
                })
                .update(EntryUpdate::Modify {
                    key: "items".to_owned(),
                    modify: Box::new(move |list: Resp| {
                        let Resp::List(mut names) = list else {
                            return None;
                        };
                        names.retain(|n| !n.starts_with(&format!("{id}=")));
                        names.push(in_list);
                        names.sort();
                        Some(Resp::List(names))
                    }),
                    ttl: TTL,
                    tags: vec!["items".to_owned()],
                    stale: StalePeriods::NONE,
                })
        }),
        // The write returns nothing to update from: invalidate.
        Req::Delete(id) | Req::Fail(id) => Box::new(move |_: &Resp| {
            WriteEffects::none()
                .invalidate_tag(format!("item:{id}"))
                .remove_key("items")
        }),
        Req::Get(_) | Req::List => return None,
    };
    Some(after)
}

struct Db {
    items: Mutex<BTreeMap<u64, String>>,
    calls: AtomicUsize,
}

fn upstream(
    db: Arc<Db>,
) -> impl tower::Service<Req, Response = Resp, Error = BoxError, Future: Send> + Clone {
    service_fn(move |req: Req| {
        let db = Arc::clone(&db);
        async move {
            db.calls.fetch_add(1, Ordering::SeqCst);
            let mut items = db.items.lock().unwrap();
            let entry = |id: u64, name: &str| format!("{id}={name}");
            Ok(match req {
                Req::Get(id) => Resp::Item(entry(id, &items[&id])),
                Req::List => Resp::List(items.iter().map(|(id, name)| entry(*id, name)).collect()),
                Req::Rename(id, name) | Req::Add(id, name) => {
                    items.insert(id, name.clone());
                    Resp::Item(entry(id, &name))
                }
                Req::Delete(id) => {
                    items.remove(&id);
                    Resp::Deleted
                }
                Req::Fail(_) => return Err("write rejected".into()),
            })
        }
    })
}

#[tokio::test]
async fn writes_update_and_invalidate_as_the_hook_says() {
    let db = Arc::new(Db {
        items: Mutex::new(BTreeMap::from([
            (1, "ada".to_owned()),
            (2, "bob".to_owned()),
        ])),
        calls: AtomicUsize::new(0),
    });
    let policy = Policy::new(key).tags(tags).ttl(TTL).writes(writes);
    let layer = CacheLayer::new(MemoryStore::new(100), policy);
    let stats = layer.stats();
    let service = layer.layer(upstream(Arc::clone(&db)));
    let calls = || db.calls.load(Ordering::SeqCst);
    let call = |req: Req| service.clone().oneshot(req);

    // Fill item 1, item 2 and the list.
    assert_eq!(call(Req::Get(1)).await.unwrap(), Resp::Item("1=ada".into()));
    call(Req::Get(2)).await.unwrap();
    assert_eq!(
        call(Req::List).await.unwrap(),
        Resp::List(vec!["1=ada".into(), "2=bob".into()])
    );
    assert_eq!(calls(), 3);

    // Rename: the item entry and the list are updated from the response, no refetch.
    call(Req::Rename(1, "ana".into())).await.unwrap();
    assert_eq!(calls(), 4);
    assert_eq!(call(Req::Get(1)).await.unwrap(), Resp::Item("1=ana".into()));
    assert_eq!(
        call(Req::List).await.unwrap(),
        Resp::List(vec!["1=ana".into(), "2=bob".into()])
    );
    assert_eq!(calls(), 4, "both reads were hits");

    // Add: a new entry, and the list gains it.
    call(Req::Add(3, "cy".into())).await.unwrap();
    assert_eq!(call(Req::Get(3)).await.unwrap(), Resp::Item("3=cy".into()));
    assert_eq!(
        call(Req::List).await.unwrap(),
        Resp::List(vec!["1=ana".into(), "2=bob".into(), "3=cy".into()])
    );
    assert_eq!(calls(), 5);

    // Delete returns nothing to update from: item 2 is invalidated and the list removed.
    call(Req::Delete(2)).await.unwrap();
    assert_eq!(
        call(Req::List).await.unwrap(),
        Resp::List(vec!["1=ana".into(), "3=cy".into()])
    );
    assert_eq!(calls(), 7, "the list was fetched again");
    call(Req::Get(1)).await.unwrap();
    assert_eq!(calls(), 7, "item 1 was not touched");

    // A failed write changes nothing in the cache.
    assert!(call(Req::Fail(1)).await.is_err());
    call(Req::Get(1)).await.unwrap();
    call(Req::List).await.unwrap();
    assert_eq!(calls(), 8, "only the failed write itself reached upstream");

    let snapshot = stats.snapshot();
    assert_eq!(snapshot.invalidations, 2, "one tag and one key");
    assert_eq!(snapshot.passthrough, 4, "the four writes");
}

#[tokio::test]
async fn a_modify_of_an_uncached_entry_does_nothing() {
    let db = Arc::new(Db {
        items: Mutex::new(BTreeMap::new()),
        calls: AtomicUsize::new(0),
    });
    let policy = Policy::new(key).tags(tags).ttl(TTL).writes(writes);
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(upstream(Arc::clone(&db)));
    service
        .clone()
        .oneshot(Req::Add(1, "ada".into()))
        .await
        .unwrap();
    // The list was never cached: it is fetched, not fabricated from the one added item.
    assert_eq!(
        service.clone().oneshot(Req::List).await.unwrap(),
        Resp::List(vec!["1=ada".into()])
    );
    assert_eq!(db.calls.load(Ordering::SeqCst), 2);
}

/// A gate for `Get` calls of the `Db` upstream, to hold a fill in flight while a write happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_in_flight_during_a_write_never_overwrites_the_write() {
    use tokio::sync::Semaphore;

    let db = Arc::new(Db {
        items: Mutex::new(BTreeMap::from([(1, "ada".to_owned())])),
        calls: AtomicUsize::new(0),
    });
    let gate = Arc::new(Semaphore::new(0));
    let reads_started = Arc::new(AtomicUsize::new(0));
    let inner = upstream(Arc::clone(&db));
    let (gate_for_reads, started) = (Arc::clone(&gate), Arc::clone(&reads_started));
    // Reads take their answer from the database at once, then wait at the gate before returning it.
    let gated = tower::service_fn(move |req: Req| {
        let (inner, gate, started) = (
            inner.clone(),
            Arc::clone(&gate_for_reads),
            Arc::clone(&started),
        );
        async move {
            let is_read = matches!(req, Req::Get(_) | Req::List);
            let answer = inner.oneshot(req).await;
            if is_read {
                started.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
            }
            answer
        }
    });
    let policy = Policy::new(key).tags(tags).ttl(TTL).writes(writes);
    let service = CacheLayer::new(MemoryStore::new(100), policy).layer(gated);

    // A read of item 1 and of the list fetch the old name, and are held before they can store it.
    let old_item = tokio::spawn(service.clone().oneshot(Req::Get(1)));
    let old_list = tokio::spawn(service.clone().oneshot(Req::List));
    while reads_started.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    // The rename lands and updates both entries from its answer.
    service
        .clone()
        .oneshot(Req::Rename(1, "ana".into()))
        .await
        .unwrap();
    gate.add_permits(2);
    assert_eq!(
        old_item.await.unwrap().unwrap(),
        Resp::Item("1=ada".into()),
        "the early caller gets its answer"
    );
    old_list.await.unwrap().unwrap();

    // The late fills did not overwrite what the write stored: reads see the new name without a refetch
    // of stale data.
    gate.add_permits(10);
    assert_eq!(
        service.clone().oneshot(Req::Get(1)).await.unwrap(),
        Resp::Item("1=ana".into())
    );
    assert_eq!(
        service.clone().oneshot(Req::List).await.unwrap(),
        Resp::List(vec!["1=ana".into()])
    );
}

#[tokio::test]
async fn an_edit_based_on_an_entry_changed_since_is_dropped_not_stored() {
    use cache_core::{CacheKey, Lookup, PutEntry, PutOutcome, Store};

    let store = MemoryStore::<Resp>::new(100);
    let key = CacheKey::from("items");
    let fresh = |value| PutEntry {
        value,
        ttl: TTL,
        stale: cache_core::StalePeriods::NONE,
        tags: vec!["items".to_owned()],
        stamp: None,
    };
    store
        .update(&key, fresh(Resp::List(vec!["1=ada".into()])))
        .await
        .unwrap();
    let Lookup::Hit { stamp: base, .. } = store.get(&key).await.unwrap() else {
        panic!("cached")
    };

    // Two writers edit the list they both read; the first edit lands.
    let first = PutEntry {
        stamp: Some(base),
        ..fresh(Resp::List(vec!["1=ada".into(), "2=bob".into()]))
    };
    assert_eq!(store.update(&key, first).await.unwrap(), PutOutcome::Stored);
    // The second, based on the same read, would drop bob: it is refused.
    let second = PutEntry {
        stamp: Some(base),
        ..fresh(Resp::List(vec!["1=ada".into(), "3=cy".into()]))
    };
    assert_eq!(
        store.update(&key, second).await.unwrap(),
        PutOutcome::Superseded
    );
    let Lookup::Hit { value, .. } = store.get(&key).await.unwrap() else {
        panic!("cached")
    };
    assert_eq!(value, Resp::List(vec!["1=ada".into(), "2=bob".into()]));
}

#[path = "support/stores.rs"]
#[allow(dead_code, unreachable_pub)]
mod stores;

#[tokio::test]
async fn a_write_whose_update_cannot_be_stored_removes_the_old_entry() {
    use std::sync::atomic::Ordering;

    let db = Arc::new(Db {
        items: Mutex::new(BTreeMap::from([(1, "ada".to_owned())])),
        calls: AtomicUsize::new(0),
    });
    let store = stores::Flaky::new(MemoryStore::<Resp>::new(100));
    let policy = Policy::new(key).tags(tags).ttl(TTL).writes(writes);
    let service = CacheLayer::new(store.clone(), policy).layer(upstream(Arc::clone(&db)));
    assert_eq!(
        service.clone().oneshot(Req::Get(1)).await.unwrap(),
        Resp::Item("1=ada".into())
    );
    assert_eq!(
        service.clone().oneshot(Req::List).await.unwrap(),
        Resp::List(vec!["1=ada".into()])
    );

    // The store refuses updates for a moment (a circuit that just opened): the write still succeeds,
    // and neither the item nor the list it would have edited may keep serving the old name.
    store.fail_updates.store(true, Ordering::SeqCst);
    service
        .clone()
        .oneshot(Req::Rename(1, "ana".into()))
        .await
        .unwrap();
    store.fail_updates.store(false, Ordering::SeqCst);
    assert_eq!(
        service.clone().oneshot(Req::Get(1)).await.unwrap(),
        Resp::Item("1=ana".into())
    );
    assert_eq!(
        service.clone().oneshot(Req::List).await.unwrap(),
        Resp::List(vec!["1=ana".into()])
    );
}

/// A write that fails may still have happened (a lost answer): the policy's error hook runs, its
/// effects apply, and the caller still gets the error.
#[tokio::test]
async fn a_failed_write_applies_the_error_hooks_effects() {
    use cache_core::{CachePolicy, Classified, FillPlan};

    struct RemovesOnError;
    impl CachePolicy<Req, Resp> for RemovesOnError {
        type Read = ();
        type Write = u64;
        fn classify(&self, req: &Req) -> Classified<(), u64> {
            match req {
                Req::Get(id) => Classified::Read {
                    key: format!("item:{id}"),
                    read: (),
                },
                Req::Fail(id) => Classified::Write(*id),
                _ => Classified::Pass,
            }
        }
        fn fill(&self, key: &str, _: &(), _: &Resp) -> FillPlan {
            FillPlan::new(TTL, vec![key.to_owned()])
        }
        fn after_write(&self, _: u64, _: &Resp) -> WriteEffects<Resp> {
            WriteEffects::none()
        }
        fn after_write_error(&self, id: u64, error: &BoxError) -> WriteEffects<Resp> {
            assert_eq!(error.to_string(), "write rejected");
            WriteEffects::none().remove_key(format!("item:{id}"))
        }
    }

    let db = Arc::new(Db {
        items: Mutex::new(BTreeMap::from([(1, "ada".to_owned())])),
        calls: AtomicUsize::new(0),
    });
    let layer = CacheLayer::new(MemoryStore::new(100), RemovesOnError);
    let service = layer.layer(upstream(Arc::clone(&db)));
    let calls = || db.calls.load(Ordering::SeqCst);
    service.clone().oneshot(Req::Get(1)).await.unwrap();
    service.clone().oneshot(Req::Get(1)).await.unwrap();
    assert_eq!(calls(), 1, "cached");
    let error = service.clone().oneshot(Req::Fail(1)).await.unwrap_err();
    assert_eq!(error.to_string(), "write rejected");
    service.clone().oneshot(Req::Get(1)).await.unwrap();
    assert_eq!(calls(), 3, "the entry was removed by the error hook");
}
