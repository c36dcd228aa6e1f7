//! The DynamoDB example: the official SDK client behind the cache, against a real DynamoDB-compatible
//! server (moto, started here on a free port), on the memory store and on a private Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use aws_sdk_dynamodb::operation::get_item::builders::GetItemInputBuilder;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::query::builders::QueryInputBuilder;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::{upstream_error, BoxError, CacheLayer, CachePolicy, Classified};
use cache_memory::MemoryStore;
use cache_redis::{RedisOptions, RedisStore};
use examples::dynamodb::demo::{
    get_order, get_order_consistent, order_key, orders_schema, put_order, query_orders,
    run_demo_on, setup, summary, TTL,
};
use examples::dynamodb::{
    partition_tag, table_tag, DynamoClient, DynamoError, DynamoPolicy, DynamoRequest,
    DynamoResponse, LocalDynamo,
};
use redis_test_server::RedisServer;
use tower::{Layer, ServiceExt};
use tower_cache::EnvStore;

/// One server for the whole test binary: it stops when the binary exits.
fn endpoint() -> String {
    static SERVER: OnceLock<LocalDynamo> = OnceLock::new();
    SERVER
        .get_or_init(|| LocalDynamo::start().unwrap_or_else(|error| panic!("{error}")))
        .endpoint()
}

/// A table name no other test uses.
fn table(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{name}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Each store the tests run on: in process, and a private Redis (kept alive by the returned server).
fn stores() -> Vec<(&'static str, EnvStore<DynamoResponse>, Option<RedisServer>)> {
    let redis = RedisServer::start();
    let options = RedisOptions::default().key_prefix("dynamodb").unwrap();
    let store = RedisStore::<DynamoResponse>::connect(&redis.url(), options).unwrap();
    vec![
        ("memory", EnvStore::Memory(MemoryStore::new(10_000)), None),
        ("redis", EnvStore::Redis(store), Some(redis)),
    ]
}

fn policy() -> DynamoPolicy {
    DynamoPolicy::new([orders_schema("orders")], TTL)
}

fn key_of(request: &DynamoRequest) -> Option<String> {
    match policy().classify(request) {
        Classified::Read { key, .. } => Some(key),
        _ => None,
    }
}

fn query(build: impl FnOnce(QueryInputBuilder) -> QueryInputBuilder) -> DynamoRequest {
    let input = QueryInput::builder()
        .table_name("orders")
        .key_condition_expression("customer = :c")
        .expression_attribute_values(":c", AttributeValue::S("c1".into()));
    DynamoRequest::Query(build(input).build().unwrap())
}

#[test]
fn number_spelling_does_not_change_the_key_and_other_items_have_theirs() {
    let key = key_of(&get_order("orders", "c1", "1")).unwrap();
    for same in ["1.0", "10e-1", "01"] {
        assert_eq!(key_of(&get_order("orders", "c1", same)).unwrap(), key);
    }
    assert_ne!(key_of(&get_order("orders", "c1", "2")).unwrap(), key);
    assert_ne!(key_of(&get_order("orders", "c2", "1")).unwrap(), key);
}

#[test]
fn query_keys_cover_what_changes_the_answer() {
    let all = key_of(&query(|q| q)).unwrap();
    assert_eq!(key_of(&query(|q| q)).unwrap(), all);
    // An `#alias` names the partition as well as the attribute itself: the same tags, which the
    // partition's writes invalidate.
    let tags = |request: &DynamoRequest| {
        let Classified::Read { key, read } = policy().classify(request) else {
            panic!("a read: {request:?}")
        };
        policy().fill(&key, &read, &DynamoResponse::Item(None)).tags
    };
    assert_eq!(tags(&query_orders("orders", "c1")), tags(&query(|q| q)));
    assert_ne!(
        tags(&query_orders("orders", "c2")),
        tags(&query(|q| q)),
        "another partition"
    );
    for other in [
        query(|q| q.limit(1)),
        query(|q| q.scan_index_forward(false)),
        query(|q| {
            q.filter_expression("#s = :s")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":s", AttributeValue::S("placed".into()))
        }),
        query(|q| q.projection_expression("customer")),
        query(|q| {
            q.exclusive_start_key("customer", AttributeValue::S("c1".into()))
                .exclusive_start_key("order", AttributeValue::N("2".into()))
        }),
        query(|q| q.expression_attribute_values(":c", AttributeValue::S("c2".into()))),
    ] {
        assert_ne!(key_of(&other).unwrap(), all, "{other:?}");
    }
}

#[test]
fn what_the_cache_cannot_answer_rightly_passes_through() {
    fn get(build: impl FnOnce(GetItemInputBuilder) -> GetItemInputBuilder) -> DynamoRequest {
        let input = GetItemInput::builder()
            .table_name("orders")
            .set_key(Some(order_key("c1", "1")));
        DynamoRequest::GetItem(build(input).build().unwrap())
    }
    let partial_key = HashMap::from([("customer".to_owned(), AttributeValue::S("c1".into()))]);
    let passes = [
        ("consistent read", get_order_consistent("orders", "c1", "1")),
        ("projection", get(|g| g.projection_expression("customer"))),
        ("unknown table", get_order("invoices", "c1", "1")),
        ("partial key", get(|g| g.set_key(Some(partial_key.clone())))),
        ("index query", query(|q| q.index_name("by_status"))),
        ("consistent query", query(|q| q.consistent_read(true))),
        (
            "no partition equality",
            query(|q| q.key_condition_expression("customer > :c")),
        ),
    ];
    for (what, request) in passes {
        assert!(
            matches!(policy().classify(&request), Classified::Pass),
            "{what}"
        );
    }
}

#[test]
fn entries_are_tagged_by_table_and_partition() {
    let Classified::Read { key, read } = policy().classify(&get_order("orders", "c1", "1")) else {
        panic!("a read")
    };
    let plan = policy().fill(&key, &read, &DynamoResponse::Item(None));
    assert_eq!(plan.ttl, TTL);
    assert!(plan.tags.contains(&table_tag("orders")));
    assert!(plan
        .tags
        .contains(&partition_tag("orders", r#"{"customer":{"S":"c1"}}"#)));
}

/// The whole scenario on each store: every read after a write sees it, and the cache saves calls and
/// read units against the same requests without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_reads_its_writes_and_saves_calls_on_each_store() {
    let endpoint = endpoint();
    for (name, store, _redis) in stores() {
        let report = run_demo_on(&endpoint, store).await.unwrap();
        let (ok, checked) = report.reads_after_writes;
        assert_eq!(ok, checked, "{name}: {report}");
        assert_eq!(checked, 11, "{name}: reads after a write checked");
        assert!(report.hits >= 20, "{name}: {report}");
        // The 20 repeated reads (10 items, 10 queries) are what the cache saves at least.
        assert!(
            report.cached.calls + 20 <= report.uncached.calls,
            "{name}: {:?} against {:?}",
            report.cached,
            report.uncached
        );
        assert!(
            report.cached.read_units + 10.0 <= report.uncached.read_units,
            "{name}: {report}"
        );
        let consistent = report
            .steps
            .iter()
            .find(|step| step.request.contains("ConsistentRead"))
            .unwrap();
        assert_eq!(
            (consistent.cache.as_str(), consistent.table_calls),
            ("pass", 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_reads_make_one_call_on_each_store() {
    let endpoint = endpoint();
    for (name, store, _redis) in stores() {
        let setup = setup(&endpoint, &table("concurrent"), store).await.unwrap();
        let reads = (0..32).map(|_| {
            let service = setup.service.clone();
            let request = get_order(&setup.table, "c1", "2");
            tokio::spawn(service.oneshot(request))
        });
        for read in futures_util::future::join_all(reads).await {
            assert_eq!(summary(&read.unwrap().unwrap()), "#2 placed", "{name}");
        }
        assert_eq!(setup.client.usage().calls, 1, "{name}");
    }
}

/// A write whose condition fails reaches the caller as DynamoDB's error, and what it might have changed
/// is read again (the item unchanged); a failed read is not cached either (the next one asks again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_and_reads_are_never_cached_on_each_store() {
    let endpoint = endpoint();
    for (name, store, _redis) in stores() {
        let setup = setup(&endpoint, &table("failures"), store.clone())
            .await
            .unwrap();
        let read = || {
            setup
                .service
                .clone()
                .oneshot(get_order(&setup.table, "c1", "1"))
        };
        assert_eq!(summary(&read().await.unwrap()), "#1 placed");
        for _ in 0..2 {
            let refused = setup
                .service
                .clone()
                .oneshot(put_order(&setup.table, "c1", "1", "forged", true))
                .await
                .unwrap_err();
            let refused = refused
                .downcast_ref::<DynamoError>()
                .expect("DynamoDB's error");
            assert!(refused.is_conditional_check_failed(), "{name}: {refused}");
        }
        assert_eq!(
            setup.client.usage().calls,
            3,
            "{name}: both writes reached the table"
        );
        // An error does not prove the write did not happen: the entry is read again, unchanged.
        assert_eq!(summary(&read().await.unwrap()), "#1 placed", "{name}");
        assert_eq!(setup.client.usage().calls, 4, "{name}: read again");
        assert_eq!(summary(&read().await.unwrap()), "#1 placed", "{name}");
        assert_eq!(setup.client.usage().calls, 4, "{name}: cached again");

        // A read of a table that does not exist (but the policy knows): an error, asked again each time.
        let missing = table("missing");
        let layer = CacheLayer::new(store, DynamoPolicy::new([orders_schema(&missing)], TTL));
        let service = layer.layer(setup.client.clone());
        for _ in 0..2 {
            let error = service
                .clone()
                .oneshot(get_order(&missing, "c1", "1"))
                .await
                .unwrap_err();
            let error = upstream_error::<DynamoError>(error.as_ref()).unwrap();
            assert_eq!(error.code, "ResourceNotFoundException", "{name}");
        }
        assert_eq!(setup.client.usage().calls, 6, "{name}");
    }
}

/// DynamoDB answers a throttled call with `ProvisionedThroughputExceededException`. The local server
/// never throttles, so a layer below the cache answers the first call that way, as the client maps it:
/// the error reaches the caller, nothing is cached, and the next read asks DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_read_is_not_cached_on_each_store() {
    let endpoint = endpoint();
    for (name, store, _redis) in stores() {
        let table = table("throttled");
        let client = DynamoClient::local(&endpoint);
        examples::dynamodb::demo::create_orders_table(&client, &table)
            .await
            .unwrap();
        let throttle_next = Arc::new(AtomicU32::new(1));
        let throttling = tower::service_fn({
            let (client, throttle_next) = (client.clone(), throttle_next.clone());
            move |request: DynamoRequest| {
                let (client, throttle_next) = (client.clone(), throttle_next.clone());
                async move {
                    let throttled = throttle_next
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok();
                    if throttled {
                        return Err(BoxError::from(DynamoError {
                            operation: request.operation(),
                            code: "ProvisionedThroughputExceededException".to_owned(),
                            message: "The level of configured provisioned throughput for the table was exceeded.".to_owned(),
                        }));
                    }
                    client.oneshot(request).await
                }
            }
        });
        let layer = CacheLayer::new(store, DynamoPolicy::new([orders_schema(&table)], TTL));
        let service = layer.layer(throttling);
        let error = service
            .clone()
            .oneshot(get_order(&table, "c1", "1"))
            .await
            .unwrap_err();
        let error = upstream_error::<DynamoError>(error.as_ref()).unwrap();
        assert!(error.is_throttling(), "{name}");
        assert_eq!(client.usage().calls, 0);
        for _ in 0..3 {
            let read = service.clone().oneshot(get_order(&table, "c1", "1")).await;
            assert_eq!(summary(&read.unwrap()), "#1 placed", "{name}");
        }
        assert_eq!(
            client.usage().calls,
            1,
            "{name}: asked again once, then cached"
        );
    }
}
