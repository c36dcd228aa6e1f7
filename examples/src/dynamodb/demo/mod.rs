//! The DynamoDB example's scenario: reads, a consistent read and writes of an `orders` table through the
//! cache, against a real DynamoDB-compatible server, recording what the cache and the table did at each
//! step; then the same requests without the cache, for what it saved.

mod report;
mod requests;

pub use report::{DynamoReport, Step};
pub use requests::{
    delete_order, get_order, get_order_consistent, move_and_delete, order_item, order_key,
    put_order, query_orders, set_status, summary,
};

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use cache_core::{BoxError, Cache, CacheLayer, Stats};
use cache_memory::MemoryStore;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceExt};
use tower_cache::EnvStore;

use super::{DynamoClient, DynamoPolicy, DynamoRequest, DynamoResponse, TableSchema, Usage};
use report::outcome;

/// How long reads stay cached.
pub const TTL: Duration = Duration::from_secs(60);

/// A table of orders: partition key `customer` (string), sort key `order` (number).
pub fn orders_schema(table: &str) -> TableSchema {
    TableSchema {
        name: table.to_owned(),
        partition_key: "customer".to_owned(),
        sort_key: Some("order".to_owned()),
    }
}

/// Creates `table` (on demand capacity) with customer `c1`'s orders 1 to 3 and `c2`'s 1 and 2, all
/// `placed`. Made through the SDK client directly: neither cached nor counted.
///
/// # Errors
/// The server refused (the table exists already, say).
pub async fn create_orders_table(client: &DynamoClient, table: &str) -> Result<(), BoxError> {
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    client
        .sdk()
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute("customer", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("order", ScalarAttributeType::N)?)
        .key_schema(key("customer", KeyType::Hash)?)
        .key_schema(key("order", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    for (customer, order) in [
        ("c1", "1"),
        ("c1", "2"),
        ("c1", "3"),
        ("c2", "1"),
        ("c2", "2"),
    ] {
        client
            .sdk()
            .put_item()
            .table_name(table)
            .set_item(Some(order_item(customer, order, "placed")))
            .send()
            .await?;
    }
    Ok(())
}

/// The client the example uses: the SDK client behind the cache.
pub type CachedDynamo = Cache<DynamoClient, EnvStore<DynamoResponse>, DynamoPolicy>;

/// A seeded table, the cache in front of it, and both sides' counters.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The table's name.
    pub table: String,
    /// The SDK client as a service (its [`usage`](DynamoClient::usage) is what reached DynamoDB).
    pub client: DynamoClient,
    /// The cached client.
    pub service: CachedDynamo,
    /// The cache's counters.
    pub stats: Stats,
}

/// Creates and seeds `table` on the server at `endpoint` and puts the cache, on `store`, in front.
///
/// # Errors
/// The table could not be created.
pub async fn setup(
    endpoint: &str,
    table: &str,
    store: EnvStore<DynamoResponse>,
) -> Result<Setup, BoxError> {
    let client = DynamoClient::local(endpoint);
    create_orders_table(&client, table).await?;
    let layer = CacheLayer::new(store, DynamoPolicy::new([orders_schema(table)], TTL));
    Ok(Setup {
        table: table.to_owned(),
        stats: layer.stats(),
        service: layer.layer(client.clone()),
        client,
    })
}

/// Runs the scenario through the cache (memory store) on a new table of the server at `endpoint`,
/// then the same requests on another new table without the cache.
///
/// # Errors
/// A call that failed (none does in this scenario, but for the conditional put it expects to fail).
pub async fn run_demo(endpoint: &str) -> Result<DynamoReport, BoxError> {
    run_demo_on(endpoint, EnvStore::Memory(MemoryStore::new(10_000))).await
}

/// Like [`run_demo`], with the cache on `store` (Redis, say).
///
/// # Errors
/// A call that failed, but for the conditional put the scenario expects to fail.
pub async fn run_demo_on(
    endpoint: &str,
    store: EnvStore<DynamoResponse>,
) -> Result<DynamoReport, BoxError> {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let suffix = format!("{}_{run}", std::process::id());
    let cached = setup(endpoint, &format!("orders_{suffix}"), store).await?;
    let mut run = Runner {
        service: BoxCloneService::new(cached.service.clone()),
        stats: Some(cached.stats.clone()),
        client: cached.client.clone(),
        steps: Vec::new(),
    };
    scenario(&mut run, &cached.table).await?;
    let cached_usage = cached.client.usage();
    let steps = run.steps;

    let uncached_table = format!("orders_uncached_{suffix}");
    let client = DynamoClient::local(endpoint);
    create_orders_table(&client, &uncached_table).await?;
    let mut bare = Runner {
        service: BoxCloneService::new(client.clone()),
        stats: None,
        client: client.clone(),
        steps: Vec::new(),
    };
    scenario(&mut bare, &uncached_table).await?;

    let stats = cached.stats.snapshot();
    let checked = steps.iter().filter_map(|step| step.sees_write);
    let ok = checked.clone().filter(|ok| *ok).count() as u64;
    Ok(DynamoReport {
        requests: steps.iter().map(|step| step.requests).sum(),
        cached: cached_usage,
        uncached: client.usage(),
        hits: stats.hits,
        misses: stats.misses,
        passthrough: stats.passthrough,
        invalidations: stats.invalidations,
        reads_after_writes: (ok, checked.count() as u64),
        steps,
    })
}

/// The requests, the same with or without the cache.
async fn scenario(run: &mut Runner, table: &str) -> Result<(), BoxError> {
    run.send("GetItem c1 #1", get_order(table, "c1", "1"))
        .await?;
    run.send(
        "GetItem c1 #1.0 (one number, two spellings)",
        get_order(table, "c1", "1.0"),
    )
    .await?;
    run.send_many("GetItem c1 #1, 10 more times", 10, || {
        get_order(table, "c1", "1")
    })
    .await?;
    run.send(
        "GetItem c1 #1, ConsistentRead",
        get_order_consistent(table, "c1", "1"),
    )
    .await?;
    run.send("Query c1", query_orders(table, "c1")).await?;
    run.send_many("Query c1, 10 more times", 10, || query_orders(table, "c1"))
        .await?;
    run.send("Query c2", query_orders(table, "c2")).await?;
    run.send("GetItem c2 #1", get_order(table, "c2", "1"))
        .await?;

    let update = set_status(table, "c1", "1", "shipped", true);
    run.send("UpdateItem c1 #1 status=shipped, ALL_NEW", update)
        .await?;
    let read = run
        .send("GetItem c1 #1", get_order(table, "c1", "1"))
        .await?;
    run.check(summary(&read) == "#1 shipped");
    let read = run.send("Query c1", query_orders(table, "c1")).await?;
    run.check(summary(&read) == "[#1 shipped, #2 placed, #3 placed]");
    run.send("Query c2 (another partition)", query_orders(table, "c2"))
        .await?;

    let update = set_status(table, "c2", "1", "cancelled", false);
    run.send("UpdateItem c2 #1 status=cancelled, NONE", update)
        .await?;
    let read = run
        .send("GetItem c2 #1", get_order(table, "c2", "1"))
        .await?;
    run.check(summary(&read) == "#1 cancelled");

    let refused = run
        .send(
            "PutItem c2 #1 only if new (refused)",
            put_order(table, "c2", "1", "placed", true),
        )
        .await;
    if refused.is_ok() {
        return Err("a conditional put of an existing item was not refused".into());
    }
    let read = run
        .send("GetItem c2 #1", get_order(table, "c2", "1"))
        .await?;
    run.check(summary(&read) == "#1 cancelled");

    // Each write below finds what it changes cached: the reads before it fill the entries.
    run.send("GetItem c1 #4 (none yet)", get_order(table, "c1", "4"))
        .await?;
    run.send("Query c1", query_orders(table, "c1")).await?;
    run.send(
        "PutItem c1 #4",
        put_order(table, "c1", "4", "placed", false),
    )
    .await?;
    let read = run
        .send("GetItem c1 #4", get_order(table, "c1", "4"))
        .await?;
    run.check(summary(&read) == "#4 placed");
    let read = run.send("Query c1", query_orders(table, "c1")).await?;
    run.check(summary(&read) == "[#1 shipped, #2 placed, #3 placed, #4 placed]");

    run.send("GetItem c1 #2", get_order(table, "c1", "2"))
        .await?;
    run.send("DeleteItem c1 #2", delete_order(table, "c1", "2"))
        .await?;
    let read = run
        .send("GetItem c1 #2", get_order(table, "c1", "2"))
        .await?;
    run.check(summary(&read) == "not found");
    let read = run.send("Query c1", query_orders(table, "c1")).await?;
    run.check(summary(&read) == "[#1 shipped, #3 placed, #4 placed]");

    run.send("GetItem c1 #3", get_order(table, "c1", "3"))
        .await?;
    run.send("Query c2", query_orders(table, "c2")).await?;
    run.send(
        "TransactWriteItems: c1 #3 moved, c2 #2 deleted",
        move_and_delete(table, ("c1", "3"), ("c2", "2")),
    )
    .await?;
    let read = run
        .send("GetItem c1 #3", get_order(table, "c1", "3"))
        .await?;
    run.check(summary(&read) == "#3 moved");
    let read = run.send("Query c1", query_orders(table, "c1")).await?;
    run.check(summary(&read) == "[#1 shipped, #3 moved, #4 placed]");
    let read = run.send("Query c2", query_orders(table, "c2")).await?;
    run.check(summary(&read) == "[#1 cancelled]");
    Ok(())
}

/// Sends requests and records what each did.
struct Runner {
    service: BoxCloneService<DynamoRequest, DynamoResponse, BoxError>,
    stats: Option<Stats>,
    client: DynamoClient,
    steps: Vec<Step>,
}

impl Runner {
    async fn send(
        &mut self,
        label: &str,
        request: DynamoRequest,
    ) -> Result<DynamoResponse, BoxError> {
        self.send_many(label, 1, || request.clone()).await
    }

    async fn send_many(
        &mut self,
        label: &str,
        count: u64,
        request: impl Fn() -> DynamoRequest,
    ) -> Result<DynamoResponse, BoxError> {
        let stats_before = self.stats.as_ref().map(Stats::snapshot);
        let calls_before = self.client.usage().calls;
        let is_write = !request().is_read();
        let mut response = Ok(DynamoResponse::Written(None));
        for _ in 0..count {
            let service = self.service.ready().await?;
            response = service.call(request()).await;
        }
        let cache = match (&stats_before, &self.stats) {
            (Some(before), Some(stats)) => outcome(before, &stats.snapshot(), is_write),
            _ => "none".to_owned(),
        };
        self.steps.push(Step {
            request: label.to_owned(),
            requests: count,
            cache,
            table_calls: self.client.usage().calls - calls_before,
            result: match &response {
                Ok(response) => summary(response),
                Err(error) => error.to_string(),
            },
            sees_write: None,
        });
        response
    }

    /// Records whether the last read saw the write before it.
    fn check(&mut self, sees_write: bool) {
        if let Some(step) = self.steps.last_mut() {
            step.sees_write = Some(sees_write);
        }
    }
}

/// What the uncached run cost beside the cached one.
pub fn saved(report: &DynamoReport) -> (u64, f64) {
    let Usage {
        calls, read_units, ..
    } = report.cached;
    (
        report.uncached.calls.saturating_sub(calls),
        report.uncached.read_units - read_units,
    )
}
