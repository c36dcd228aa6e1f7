//! The DynamoDB example's scenario: reads, a consistent read and writes of an `orders` table through the
//! cache, recording what the cache and the table did at each step.

mod report;
mod requests;

pub use report::{DynamoReport, Step};
pub use requests::{
    delete_order, get_order, get_order_consistent, get_order_reversed, order_item, put_order,
    query_orders, set_status, summary,
};

use std::time::Duration;

use cache_core::{BoxError, Cache, CacheLayer, Stats};
use cache_memory::MemoryStore;
use tower::{Layer, Service, ServiceExt};

use super::{
    DynamoPolicy, DynamoRequest, DynamoResponse, InMemoryDynamo, ReturnValues, TableSchema,
};
use report::outcome;

/// The simulated round trip of one call.
pub const LATENCY: Duration = Duration::from_millis(5);
/// How long reads stay cached.
pub const TTL: Duration = Duration::from_secs(60);
/// The example's table.
pub const TABLE: &str = "orders";

/// `orders`: partition key `customer` (string), sort key `order` (number).
pub fn orders_schema() -> TableSchema {
    TableSchema {
        name: TABLE.to_owned(),
        partition_key: "customer".to_owned(),
        sort_key: Some("order".to_owned()),
    }
}

/// The client the example uses: the simulated table behind the cache.
pub type CachedDynamo = Cache<InMemoryDynamo, MemoryStore<DynamoResponse>, DynamoPolicy>;

/// A seeded table, the cache in front of it, and both sides' counters.
#[derive(Debug)]
pub struct Setup {
    /// The table simulation (its [`calls`](InMemoryDynamo::calls) are what the cache saves).
    pub dynamo: InMemoryDynamo,
    /// The cached client.
    pub service: CachedDynamo,
    /// The cache's counters.
    pub stats: Stats,
}

/// Customer `c1` with orders 1 to 3 and `c2` with orders 1 and 2, all `placed`.
pub fn setup() -> Setup {
    let dynamo = InMemoryDynamo::new(LATENCY);
    let orders = [("c1", 1), ("c1", 2), ("c1", 3), ("c2", 1), ("c2", 2)];
    dynamo.create_table(
        orders_schema(),
        orders.map(|(customer, order)| order_item(customer, &order.to_string(), "placed")),
    );
    let layer = CacheLayer::new(
        MemoryStore::new(10_000),
        DynamoPolicy::new([orders_schema()], TTL),
    );
    let stats = layer.stats();
    let service = layer.layer(dynamo.clone());
    Setup {
        dynamo,
        service,
        stats,
    }
}

/// Runs the scenario on a fresh [`setup`].
///
/// # Errors
/// A call that failed (none does in this scenario).
pub async fn run_demo() -> Result<DynamoReport, BoxError> {
    let mut run = Runner::new(setup());
    run.send("GetItem c1 #1", get_order("c1", "1")).await?;
    run.send(
        "GetItem c1 #1, key attributes in the other order",
        get_order_reversed("c1", "1"),
    )
    .await?;
    run.send(
        "GetItem c1 #1.0 (one number, two spellings)",
        get_order("c1", "1.0"),
    )
    .await?;
    run.send(
        "GetItem c1 #1, ConsistentRead",
        get_order_consistent("c1", "1"),
    )
    .await?;
    run.send("Query c1", query_orders("c1")).await?;
    run.send_many("Query c1, 10 more times", 10, || query_orders("c1"))
        .await?;
    run.send("Query c2", query_orders("c2")).await?;
    run.send("GetItem c2 #1", get_order("c2", "1")).await?;

    let update = set_status("c1", "1", "shipped", ReturnValues::AllNew);
    run.send("UpdateItem c1 #1 status=shipped, ALL_NEW", update)
        .await?;
    let read = run.send("GetItem c1 #1", get_order("c1", "1")).await?;
    run.check(summary(&read) == "#1 shipped");
    let read = run.send("Query c1", query_orders("c1")).await?;
    run.check(summary(&read) == "[#1 shipped, #2 placed, #3 placed]");
    run.send("Query c2 (another partition)", query_orders("c2"))
        .await?;

    let update = set_status("c2", "1", "cancelled", ReturnValues::None);
    run.send("UpdateItem c2 #1 status=cancelled, NONE", update)
        .await?;
    let read = run.send("GetItem c2 #1", get_order("c2", "1")).await?;
    run.check(summary(&read) == "#1 cancelled");

    run.send("PutItem c1 #4", put_order("c1", "4", "placed"))
        .await?;
    let read = run.send("GetItem c1 #4", get_order("c1", "4")).await?;
    run.check(summary(&read) == "#4 placed");

    run.send("DeleteItem c1 #2", delete_order("c1", "2"))
        .await?;
    let read = run.send("GetItem c1 #2", get_order("c1", "2")).await?;
    run.check(summary(&read) == "not found");
    let read = run.send("Query c1", query_orders("c1")).await?;
    run.check(summary(&read) == "[#1 shipped, #3 placed, #4 placed]");
    Ok(run.report())
}

/// Sends requests and records what each did.
struct Runner {
    setup: Setup,
    steps: Vec<Step>,
}

impl Runner {
    fn new(setup: Setup) -> Self {
        Self {
            setup,
            steps: Vec::new(),
        }
    }

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
        let (stats_before, calls_before) = (self.setup.stats.snapshot(), self.setup.dynamo.calls());
        let is_write = !matches!(
            request(),
            DynamoRequest::GetItem { .. } | DynamoRequest::Query { .. }
        );
        let mut response = None;
        for _ in 0..count {
            let service = self.setup.service.ready().await?;
            response = Some(service.call(request()).await?);
        }
        let response = response.expect("at least one request");
        let stats = self.setup.stats.snapshot();
        self.steps.push(Step {
            request: label.to_owned(),
            requests: count,
            cache: outcome(&stats_before, &stats, is_write),
            service_calls: self.setup.dynamo.calls() - calls_before,
            result: summary(&response),
            sees_write: None,
        });
        Ok(response)
    }

    /// Records whether the last read saw the write before it.
    fn check(&mut self, sees_write: bool) {
        if let Some(step) = self.steps.last_mut() {
            step.sees_write = Some(sees_write);
        }
    }

    fn report(self) -> DynamoReport {
        let stats = self.setup.stats.snapshot();
        let checked = self.steps.iter().filter_map(|step| step.sees_write);
        let ok = checked.clone().filter(|ok| *ok).count() as u64;
        DynamoReport {
            requests: self.steps.iter().map(|step| step.requests).sum(),
            service_calls: self.setup.dynamo.calls(),
            hits: stats.hits,
            misses: stats.misses,
            passthrough: stats.passthrough,
            invalidations: stats.invalidations,
            reads_after_writes: (ok, checked.count() as u64),
            steps: self.steps,
        }
    }
}
