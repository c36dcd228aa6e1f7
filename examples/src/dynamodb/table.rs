//! [`InMemoryDynamo`]: a stand-in for a DynamoDB client, so the example runs without network or
//! credentials. It keeps tables in memory, waits a little per call like a real round trip, and counts
//! its calls so the example can show what the cache saved.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::{
    AttributeValue, Attributes, DynamoRequest, DynamoResponse, Item, PrimaryKey, ReturnValues,
    SortCondition, TableSchema,
};

/// What the simulated client rejects, as DynamoDB would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamoError {
    /// The table does not exist.
    #[error("table {table:?} not found")]
    ResourceNotFound {
        /// The table asked for.
        table: String,
    },
    /// The request does not fit the table (wrong key attributes, an update of a key attribute).
    #[error("invalid request on table {table:?}: {reason}")]
    Validation {
        /// The table asked for.
        table: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Items of one partition, by the canonical text of their full key.
type Partition = BTreeMap<String, Item>;

struct Table {
    schema: TableSchema,
    partitions: BTreeMap<String, Partition>,
}

struct Inner {
    tables: Mutex<BTreeMap<String, Table>>,
    latency: Duration,
    calls: AtomicU64,
}

/// An in-memory DynamoDB client: a [`Service`] of [`DynamoRequest`]s. Clones share the tables.
#[derive(Clone)]
pub struct InMemoryDynamo {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InMemoryDynamo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryDynamo")
            .field("latency", &self.inner.latency)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl InMemoryDynamo {
    /// A client without tables whose every call takes `latency`.
    pub fn new(latency: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                tables: Mutex::default(),
                latency,
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// Creates (or replaces) a table holding `items`, without counting calls.
    ///
    /// # Panics
    /// When an item lacks the table's key attributes.
    pub fn create_table(&self, schema: TableSchema, items: impl IntoIterator<Item = Item>) {
        let mut table = Table {
            schema,
            partitions: BTreeMap::new(),
        };
        for item in items {
            let key = table
                .schema
                .key_of_item(&item)
                .expect("seed items carry the table's key");
            table.insert(key, item);
        }
        let mut tables = self
            .inner
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tables.insert(table.schema.name.clone(), table);
    }

    /// Calls received so far.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    fn execute(&self, request: DynamoRequest) -> Result<DynamoResponse, DynamoError> {
        let mut tables = self
            .inner
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let name = table_name(&request);
        let table = tables
            .get_mut(name)
            .ok_or_else(|| DynamoError::ResourceNotFound {
                table: name.to_owned(),
            })?;
        table.execute(request)
    }
}

impl Service<DynamoRequest> for InMemoryDynamo {
    type Response = DynamoResponse;
    type Error = DynamoError;
    type Future = Pin<Box<dyn Future<Output = Result<DynamoResponse, DynamoError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), DynamoError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: DynamoRequest) -> Self::Future {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        Box::pin(async move {
            tokio::time::sleep(this.inner.latency).await;
            this.execute(request)
        })
    }
}

fn table_name(request: &DynamoRequest) -> &str {
    match request {
        DynamoRequest::GetItem { table, .. }
        | DynamoRequest::Query { table, .. }
        | DynamoRequest::PutItem { table, .. }
        | DynamoRequest::UpdateItem { table, .. }
        | DynamoRequest::DeleteItem { table, .. } => table,
    }
}

impl Table {
    fn execute(&mut self, request: DynamoRequest) -> Result<DynamoResponse, DynamoError> {
        match request {
            DynamoRequest::GetItem { key, .. } => {
                let key = self.key(&key)?;
                let item = self.partition(&key).and_then(|p| p.get(&key.full));
                Ok(DynamoResponse::Item(item.cloned()))
            }
            DynamoRequest::Query {
                partition: (name, value),
                sort,
                scan_forward,
                limit,
                ..
            } => {
                let partition = self.schema.partition_of(&name, &value).ok_or_else(|| {
                    self.invalid("the partition is not the table's partition key")
                })?;
                Ok(DynamoResponse::Items(self.query(
                    &partition,
                    sort.as_ref(),
                    scan_forward,
                    limit,
                )))
            }
            DynamoRequest::PutItem { item, .. } => {
                let key = self
                    .schema
                    .key_of_item(&item)
                    .ok_or_else(|| self.invalid("the item lacks the table's key attributes"))?;
                self.insert(key, item);
                Ok(DynamoResponse::Written(None))
            }
            DynamoRequest::UpdateItem {
                key: attributes,
                set,
                return_values,
                ..
            } => {
                let key = self.key(&attributes)?;
                if set.iter().any(|(name, _)| self.schema.is_key(name)) {
                    return Err(self.invalid("key attributes cannot be updated"));
                }
                let mut item = self
                    .partition(&key)
                    .and_then(|p| p.get(&key.full))
                    .cloned()
                    .unwrap_or_else(|| attributes.into_iter().collect());
                item.extend(set);
                self.insert(key, item.clone());
                Ok(DynamoResponse::Written(
                    (return_values == ReturnValues::AllNew).then_some(item),
                ))
            }
            DynamoRequest::DeleteItem { key, .. } => {
                let key = self.key(&key)?;
                if let Some(partition) = self.partitions.get_mut(&key.partition) {
                    partition.remove(&key.full);
                }
                Ok(DynamoResponse::Written(None))
            }
        }
    }

    fn query(
        &self,
        partition: &str,
        sort: Option<&SortCondition>,
        scan_forward: bool,
        limit: Option<usize>,
    ) -> Vec<Item> {
        let sort_key = self.schema.sort_key.as_deref();
        let mut items: Vec<Item> = self
            .partitions
            .get(partition)
            .into_iter()
            .flat_map(|p| p.values())
            .filter(|item| {
                sort.is_none_or(|condition| matches(condition, sort_value(sort_key, item)))
            })
            .cloned()
            .collect();
        items.sort_by(|a, b| compare_opt(sort_value(sort_key, a), sort_value(sort_key, b)));
        if !scan_forward {
            items.reverse();
        }
        items.truncate(limit.unwrap_or(usize::MAX));
        items
    }

    fn key(&self, attributes: &Attributes) -> Result<PrimaryKey, DynamoError> {
        self.schema
            .key_of(attributes)
            .ok_or_else(|| self.invalid("the key is not the table's key attributes"))
    }

    fn partition(&self, key: &PrimaryKey) -> Option<&Partition> {
        self.partitions.get(&key.partition)
    }

    fn insert(&mut self, key: PrimaryKey, item: Item) {
        self.partitions
            .entry(key.partition)
            .or_default()
            .insert(key.full, item);
    }

    fn invalid(&self, reason: &'static str) -> DynamoError {
        DynamoError::Validation {
            table: self.schema.name.clone(),
            reason,
        }
    }
}

fn sort_value<'a>(sort_key: Option<&str>, item: &'a Item) -> Option<&'a AttributeValue> {
    item.get(sort_key?)
}

fn matches(condition: &SortCondition, value: Option<&AttributeValue>) -> bool {
    let Some(value) = value else { return false };
    match condition {
        SortCondition::Eq(expected) => compare(value, expected) == Some(CmpOrdering::Equal),
        SortCondition::BeginsWith(prefix) => {
            matches!(value, AttributeValue::S(text) if text.starts_with(prefix.as_str()))
        }
        SortCondition::Between(low, high) => {
            compare(value, low).is_some_and(CmpOrdering::is_ge)
                && compare(value, high).is_some_and(CmpOrdering::is_le)
        }
    }
}

fn compare_opt(a: Option<&AttributeValue>, b: Option<&AttributeValue>) -> CmpOrdering {
    match (a, b) {
        (Some(a), Some(b)) => compare(a, b).unwrap_or(CmpOrdering::Equal),
        _ => a.is_some().cmp(&b.is_some()),
    }
}

/// Sort key order: numbers by value (as `f64`, enough for a simulation), strings by bytes; `None` for
/// values of different types, which never match a condition.
fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<CmpOrdering> {
    match (a, b) {
        (AttributeValue::N(a), AttributeValue::N(b)) => {
            let parse = |text: &str| text.parse::<f64>().unwrap_or(f64::NAN);
            Some(parse(a).total_cmp(&parse(b)))
        }
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    }
}
