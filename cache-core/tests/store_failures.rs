//! A store that fails, hangs or returns garbage never fails a request.

mod support;

use std::time::Duration;

use cache_core::codec::{envelope, Bincode, MessagePack};
use cache_core::{CacheLayer, FillStamp, Policy};
use support::stores::{Breakage, BrokenStore, BytesStore};
use support::Upstream;
use tower::{Layer, ServiceExt};

fn policy() -> Policy<fn(&u64) -> Option<String>> {
    Policy::new((|id: &u64| Some(format!("item:{id}"))) as fn(&u64) -> Option<String>)
}

#[tokio::test]
async fn a_failing_store_is_a_pass_through_and_is_counted() {
    let upstream = Upstream::new();
    let layer = CacheLayer::new(BrokenStore::<String>::new(Breakage::Fails), policy());
    let stats = layer.stats();
    let handle = layer.handle();
    let service = layer.layer(upstream.clone());

    for call in 1..=3 {
        assert_eq!(
            service.clone().oneshot(1).await.unwrap(),
            format!("value 1 #{call}")
        );
    }
    // Each request: the lookup failed; with no stamp, no put was attempted.
    assert_eq!(stats.snapshot().store_errors, 3);
    // Manual operations report the failure to their caller.
    assert!(handle.invalidate_tags(["t"]).await.is_err());
    assert_eq!(stats.snapshot().store_errors, 4);
}

#[tokio::test(start_paused = true)]
async fn a_hung_store_times_out_and_the_request_goes_on() {
    let upstream = Upstream::new();
    let layer = CacheLayer::new(BrokenStore::<String>::new(Breakage::Hangs), policy())
        .store_timeout(Duration::from_millis(20));
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    let started = tokio::time::Instant::now();
    assert_eq!(service.clone().oneshot(1).await.unwrap(), "value 1 #1");
    // On the paused clock this is exact: one store timeout, then the inner call.
    assert_eq!(started.elapsed(), Duration::from_millis(20));
    assert_eq!(stats.snapshot().store_errors, 1);
}

#[tokio::test]
async fn an_undecodable_entry_is_a_miss_and_is_replaced() {
    let upstream = Upstream::new();
    let store = BytesStore::<Bincode, String>::new(Bincode);
    let layer = CacheLayer::new(store.clone(), policy());
    let stats = layer.stats();
    let service = layer.layer(upstream.clone());

    let written_by_other_codec =
        envelope::encode(&MessagePack, FillStamp::new(0), &[], "other").unwrap();
    let mut other_version = envelope::encode(&Bincode, FillStamp::new(0), &[], "old").unwrap();
    other_version[1] += 1;
    let mut truncated =
        envelope::encode(&Bincode, FillStamp::new(0), &["t".to_owned()], "cut").unwrap();
    truncated.truncate(truncated.len() - 2);
    let garbage = b"\xff\x00not an entry".to_vec();

    let cases = [written_by_other_codec, other_version, truncated, garbage];
    for (i, bytes) in cases.into_iter().enumerate() {
        let id = i as u64;
        store.set_raw(&format!("item:{id}"), bytes);
        let calls = upstream.calls();
        assert_eq!(
            service.clone().oneshot(id).await.unwrap(),
            format!("value {id} #{}", calls + 1)
        );
        // The fill replaced the bad bytes: the next read is a hit.
        assert_eq!(
            service.clone().oneshot(id).await.unwrap(),
            format!("value {id} #{}", calls + 1)
        );
    }
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.store_errors, snapshot.misses, snapshot.hits),
        (4, 4, 4)
    );
}

#[test]
fn both_codecs_round_trip_through_the_envelope() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Member {
        id: u64,
        roles: Vec<String>,
        nick: Option<String>,
    }
    let member = Member {
        id: 80351110224678912,
        roles: vec!["41771983423143936".into()],
        nick: None,
    };
    let tags = vec!["guild:1".to_owned(), "guild:1:member:2".to_owned()];

    let bytes = envelope::encode(&Bincode, FillStamp::new(42), &tags, &member).unwrap();
    let entry = envelope::decode::<_, Member>(&Bincode, &bytes).unwrap();
    assert_eq!(
        (entry.value, entry.stamp, entry.tags),
        (member, FillStamp::new(42), tags.clone())
    );

    // MessagePack carries what bincode cannot: untagged enums.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(untagged)]
    enum Json {
        Number(u64),
        Text(String),
        List(Vec<Json>),
    }
    let value = Json::List(vec![Json::Number(1), Json::Text("two".into())]);
    let bytes = envelope::encode(&MessagePack, FillStamp::new(1), &tags, &value).unwrap();
    assert_eq!(
        envelope::decode::<_, Json>(&MessagePack, &bytes)
            .unwrap()
            .value,
        value
    );
    assert!(
        envelope::decode::<_, Json>(&Bincode, &bytes).is_err(),
        "the codec id is checked"
    );
}
