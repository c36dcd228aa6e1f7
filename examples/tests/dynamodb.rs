//! The DynamoDB example: keys, pass-through of consistent reads, and reads after writes through the cache.

use std::time::Duration;

use cache_core::{CacheLayer, CachePolicy, Classified};
use cache_memory::MemoryStore;
use examples::dynamodb::demo::{
    delete_order, get_order, get_order_consistent, get_order_reversed, orders_schema, put_order,
    query_orders, run_demo, set_status, setup, summary, Setup, TTL,
};
use examples::dynamodb::{
    attributes, partition_tag, table_tag, AttributeValue, DynamoPolicy, DynamoRequest,
    DynamoResponse, InMemoryDynamo, ReturnValues, SortCondition,
};
use tower::{Layer, ServiceExt};

fn policy() -> DynamoPolicy {
    DynamoPolicy::new([orders_schema()], TTL)
}

fn key_of(request: &DynamoRequest) -> Option<String> {
    match policy().classify(request) {
        Classified::Read { key, .. } => Some(key),
        _ => None,
    }
}

/// Sends one request through the cached client.
async fn send(setup: &Setup, request: DynamoRequest) -> String {
    let response = setup.service.clone().oneshot(request).await.unwrap();
    summary(&response)
}

#[test]
fn attribute_order_and_number_spelling_do_not_change_the_key() {
    let key = key_of(&get_order("c1", "1")).unwrap();
    assert_eq!(key_of(&get_order_reversed("c1", "1")).unwrap(), key);
    assert_eq!(key_of(&get_order("c1", "1.0")).unwrap(), key);
    assert_eq!(key_of(&get_order("c1", "10e-1")).unwrap(), key);
    assert_ne!(key_of(&get_order("c1", "2")).unwrap(), key);
    assert_ne!(key_of(&get_order("c2", "1")).unwrap(), key);
}

#[test]
fn query_keys_cover_what_changes_the_answer() {
    let query = |sort: Option<SortCondition>, scan_forward: bool, limit: Option<usize>| {
        key_of(&DynamoRequest::Query {
            table: "orders".into(),
            partition: ("customer".into(), AttributeValue::s("c1")),
            sort,
            scan_forward,
            limit,
            consistent_read: false,
        })
        .unwrap()
    };
    let all = query(None, true, None);
    let between = Some(SortCondition::Between(
        AttributeValue::n(1),
        AttributeValue::n(2),
    ));
    assert_eq!(query(None, true, None), all);
    assert_ne!(query(between, true, None), all);
    assert_ne!(query(None, false, None), all);
    assert_ne!(query(None, true, Some(1)), all);
}

#[test]
fn requests_the_table_would_reject_and_unknown_tables_pass_through() {
    let wrong_key = DynamoRequest::GetItem {
        table: "orders".into(),
        key: attributes([("customer", AttributeValue::s("c1"))]),
        consistent_read: false,
    };
    let bool_key = DynamoRequest::GetItem {
        table: "orders".into(),
        key: attributes([
            ("customer", AttributeValue::s("c1")),
            ("order", AttributeValue::Bool(true)),
        ]),
        consistent_read: false,
    };
    let other_table = DynamoRequest::GetItem {
        table: "invoices".into(),
        key: attributes([("id", AttributeValue::s("i1"))]),
        consistent_read: false,
    };
    for request in [wrong_key, bool_key, other_table] {
        assert!(matches!(policy().classify(&request), Classified::Pass));
    }
}

#[test]
fn items_are_tagged_by_table_and_partition_and_queries_by_their_partition_too() {
    let policy = policy();
    let Classified::Read { key, read } = policy.classify(&get_order("c1", "1")) else {
        panic!("a cached read")
    };
    let plan = policy.fill(&key, &read, &DynamoResponse::Item(None));
    let partition = r#"{"customer":{"S":"c1"}}"#;
    assert_eq!(plan.ttl, TTL);
    assert_eq!(
        plan.tags,
        [table_tag("orders"), partition_tag("orders", partition)]
    );

    let Classified::Read { key, read } = policy.classify(&query_orders("c1")) else {
        panic!("a cached read")
    };
    let plan = policy.fill(&key, &read, &DynamoResponse::Items(Vec::new()));
    assert_eq!(plan.tags.len(), 3);
    assert_eq!(
        plan.tags[..2],
        [table_tag("orders"), partition_tag("orders", partition)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_read_with_the_attributes_reordered_is_a_hit() {
    let setup = setup();
    assert_eq!(send(&setup, get_order("c1", "1")).await, "#1 placed");
    assert_eq!(
        send(&setup, get_order_reversed("c1", "1")).await,
        "#1 placed"
    );
    assert_eq!(send(&setup, get_order("c1", "1.00")).await, "#1 placed");
    assert_eq!(setup.dynamo.calls(), 1);
    assert_eq!(setup.stats.snapshot().hits, 2);
}

#[tokio::test(start_paused = true)]
async fn consistent_reads_reach_the_table_every_time() {
    let setup = setup();
    send(&setup, get_order("c1", "1")).await; // cached
    for _ in 0..3 {
        assert_eq!(
            send(&setup, get_order_consistent("c1", "1")).await,
            "#1 placed"
        );
    }
    assert_eq!(setup.dynamo.calls(), 4);
    let stats = setup.stats.snapshot();
    assert_eq!((stats.hits, stats.misses, stats.passthrough), (0, 1, 3));
}

#[tokio::test(start_paused = true)]
async fn concurrent_identical_reads_make_one_call() {
    let setup = setup();
    let reads = (0..10).map(|_| setup.service.clone().oneshot(query_orders("c1")));
    let mut tasks = tokio::task::JoinSet::new();
    for read in reads {
        tasks.spawn(read);
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(
            summary(&result.unwrap().unwrap()),
            "[#1 placed, #2 placed, #3 placed]"
        );
    }
    assert_eq!(setup.dynamo.calls(), 1);
    assert_eq!(setup.stats.snapshot().dedupes, 9);
}

#[tokio::test(start_paused = true)]
async fn an_update_returning_all_new_is_read_back_without_a_call() {
    let setup = setup();
    send(&setup, get_order("c1", "1")).await;
    let update = set_status("c1", "1", "shipped", ReturnValues::AllNew);
    assert_eq!(send(&setup, update).await, "returned #1 shipped");
    assert_eq!(setup.dynamo.calls(), 2);

    assert_eq!(
        send(&setup, get_order_reversed("c1", "1")).await,
        "#1 shipped"
    );
    assert_eq!(
        setup.dynamo.calls(),
        2,
        "served from the entry the write stored"
    );
}

#[tokio::test(start_paused = true)]
async fn an_update_without_return_values_removes_the_entry() {
    let setup = setup();
    send(&setup, get_order("c1", "1")).await;
    send(&setup, set_status("c1", "1", "shipped", ReturnValues::None)).await;
    assert_eq!(send(&setup, get_order("c1", "1")).await, "#1 shipped");
    assert_eq!(
        setup.dynamo.calls(),
        3,
        "the read after the write is a miss"
    );
}

#[tokio::test(start_paused = true)]
async fn a_put_replaces_a_cached_not_found() {
    let setup = setup();
    assert_eq!(send(&setup, get_order("c1", "4")).await, "not found");
    send(&setup, put_order("c1", "4", "placed")).await;
    assert_eq!(send(&setup, get_order("c1", "4")).await, "#4 placed");
    assert_eq!(setup.dynamo.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_delete_removes_the_item_and_refreshes_its_partitions_queries() {
    let setup = setup();
    send(&setup, get_order("c1", "2")).await;
    send(&setup, query_orders("c1")).await;
    send(&setup, delete_order("c1", "2")).await;
    assert_eq!(send(&setup, get_order("c1", "2")).await, "not found");
    assert_eq!(
        send(&setup, query_orders("c1")).await,
        "[#1 placed, #3 placed]"
    );
    assert_eq!(setup.dynamo.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_write_leaves_other_partitions_and_sibling_items_cached() {
    let setup = setup();
    for read in [get_order("c1", "2"), query_orders("c1"), query_orders("c2")] {
        send(&setup, read).await;
    }
    send(
        &setup,
        set_status("c1", "1", "shipped", ReturnValues::AllNew),
    )
    .await;
    let calls = setup.dynamo.calls();

    send(&setup, get_order("c1", "2")).await;
    send(&setup, query_orders("c2")).await;
    assert_eq!(
        setup.dynamo.calls(),
        calls,
        "sibling item and other partition hit"
    );
    assert_eq!(
        send(&setup, query_orders("c1")).await,
        "[#1 shipped, #2 placed, #3 placed]"
    );
    assert_eq!(
        setup.dynamo.calls(),
        calls + 1,
        "the written partition's query misses"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_changes_nothing_in_the_cache() {
    let setup = setup();
    send(&setup, get_order("c1", "1")).await;
    let rejected = DynamoRequest::UpdateItem {
        table: "orders".into(),
        key: attributes([
            ("customer", AttributeValue::s("c1")),
            ("order", AttributeValue::n(1)),
        ]),
        set: attributes([("order", AttributeValue::n(9))]),
        return_values: ReturnValues::AllNew,
    };
    assert!(setup.service.clone().oneshot(rejected).await.is_err());
    assert_eq!(send(&setup, get_order("c1", "1")).await, "#1 placed");
    assert_eq!(setup.dynamo.calls(), 2, "the cached item is still served");
}

#[tokio::test(start_paused = true)]
async fn invalidating_a_partition_or_a_table_by_hand_drops_its_entries() {
    let dynamo = InMemoryDynamo::new(Duration::from_millis(5));
    dynamo.create_table(orders_schema(), []);
    let layer = CacheLayer::new(MemoryStore::new(100), policy());
    let handle = layer.handle();
    let service = layer.layer(dynamo.clone());
    let read = |request| service.clone().oneshot(request);

    read(get_order("c1", "1")).await.unwrap();
    read(query_orders("c2")).await.unwrap();
    handle
        .invalidate_tags([partition_tag("orders", r#"{"customer":{"S":"c1"}}"#)])
        .await
        .unwrap();
    read(get_order("c1", "1")).await.unwrap();
    read(query_orders("c2")).await.unwrap();
    assert_eq!(dynamo.calls(), 3, "c1 was dropped, c2 was not");

    handle.invalidate_tags([table_tag("orders")]).await.unwrap();
    read(get_order("c1", "1")).await.unwrap();
    read(query_orders("c2")).await.unwrap();
    assert_eq!(dynamo.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn entries_expire_after_the_ttl() {
    let setup = setup();
    send(&setup, get_order("c1", "1")).await;
    tokio::time::advance(TTL - Duration::from_secs(1)).await;
    send(&setup, get_order("c1", "1")).await;
    assert_eq!(setup.dynamo.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    send(&setup, get_order("c1", "1")).await;
    assert_eq!(setup.dynamo.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_demo_reports_what_the_cache_did() {
    let report = run_demo().await.unwrap();
    assert_eq!(report.requests, 28);
    assert_eq!(report.service_calls, 13);
    assert_eq!((report.hits, report.misses, report.passthrough), (15, 8, 5));
    assert_eq!(report.invalidations, 6);
    assert_eq!(report.reads_after_writes, (6, 6));
    let step = |label: &str| {
        report
            .steps
            .iter()
            .find(|step| step.request == label)
            .unwrap_or_else(|| panic!("no step {label:?}"))
    };
    let consistent = step("GetItem c1 #1, ConsistentRead");
    assert_eq!(
        (consistent.cache.as_str(), consistent.service_calls),
        ("pass", 1)
    );
    let reordered = step("GetItem c1 #1, key attributes in the other order");
    assert_eq!(
        (reordered.cache.as_str(), reordered.service_calls),
        ("hit", 0)
    );
    let text = report.to_string();
    assert!(
        text.contains("requests 28, table calls 13 (15 saved)"),
        "{text}"
    );
}
