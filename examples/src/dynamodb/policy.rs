//! [`DynamoPolicy`]: which DynamoDB requests are cached, under which key and tags, and what writes change.

use std::collections::HashMap;
use std::time::Duration;

use cache_core::{CachePolicy, Classified, EntryUpdate, FillPlan, WriteEffects};
use serde::Serialize;

use super::{DynamoRequest, DynamoResponse, Item, PrimaryKey, SortCondition, TableSchema};

/// Caches eventually consistent `GetItem` and `Query` reads of the tables it knows, and keeps them right
/// across the writes that go through the same client.
///
/// - **Keys**: `dynamodb:{table}:item:{key}` with the key attributes sorted by name and numbers
///   normalised (see [`TableSchema::key_of`]), so `{pk, sk}` and `{sk, pk}`, or `1` and `1.0`, are one
///   entry. Queries: `dynamodb:{table}:query:{…}` over the partition, the sort key condition,
///   `ScanIndexForward` and `Limit`: everything that changes the answer.
/// - **Tags**: every entry carries [`table_tag`] and [`partition_tag`]; queries also carry the
///   partition's query tag, which writes invalidate. Item entries do not, so a write to one item leaves
///   the cached siblings in its partition alone.
/// - **Pass-through**: `ConsistentRead: true` (the caller asked to see every acknowledged write, which a
///   cache cannot promise for writes made by other clients), tables the policy does not know, and requests
///   whose key does not fit the table (DynamoDB rejects them).
/// - **Writes**: `PutItem` stores the item it wrote (the request holds the whole new item; DynamoDB's
///   `PutItem` cannot return `ALL_NEW`); `UpdateItem` with `ALL_NEW` stores the item it returned, without
///   it removes the entry; `DeleteItem` removes the entry. Each also invalidates its partition's queries.
#[derive(Debug, Clone)]
pub struct DynamoPolicy {
    tables: HashMap<String, TableSchema>,
    ttl: Duration,
}

/// What the policy keeps of a cached read: where its entry belongs, for its tags.
#[derive(Debug)]
pub struct DynamoRead {
    table: String,
    partition: String,
    query: bool,
}

/// What the policy keeps of a write until it succeeds.
#[derive(Debug)]
pub struct DynamoWrite {
    table: String,
    key: PrimaryKey,
    change: Change,
}

#[derive(Debug)]
enum Change {
    /// The whole new item, from the request.
    Put(Item),
    /// The new item if the response carries it.
    Update,
    Delete,
}

impl DynamoPolicy {
    /// A policy caching reads of `tables` for `ttl`.
    pub fn new(tables: impl IntoIterator<Item = TableSchema>, ttl: Duration) -> Self {
        let tables = tables
            .into_iter()
            .map(|schema| (schema.name.clone(), schema))
            .collect();
        Self { tables, ttl }
    }

    fn classify_read(&self, request: &DynamoRequest) -> Option<(String, DynamoRead)> {
        match request {
            DynamoRequest::GetItem {
                table,
                key,
                consistent_read: false,
            } => {
                let key = self.tables.get(table)?.key_of(key)?;
                let read = DynamoRead {
                    table: table.clone(),
                    partition: key.partition.clone(),
                    query: false,
                };
                Some((item_key(table, &key), read))
            }
            DynamoRequest::Query {
                table,
                partition: (name, value),
                sort,
                scan_forward,
                limit,
                consistent_read: false,
            } => {
                let partition = self.tables.get(table)?.partition_of(name, value)?;
                let shape = QueryShape {
                    partition: &partition,
                    sort: sort.as_ref(),
                    scan_forward: *scan_forward,
                    limit: *limit,
                };
                let key = format!(
                    "dynamodb:{table}:query:{}",
                    serde_json::to_string(&shape).ok()?
                );
                let read = DynamoRead {
                    table: table.clone(),
                    partition,
                    query: true,
                };
                Some((key, read))
            }
            _ => None,
        }
    }

    fn classify_write(&self, request: &DynamoRequest) -> Option<DynamoWrite> {
        let (table, key, change) = match request {
            DynamoRequest::PutItem { table, item } => {
                let key = self.tables.get(table)?.key_of_item(item)?;
                (table, key, Change::Put(item.clone()))
            }
            DynamoRequest::UpdateItem { table, key, .. } => {
                let key = self.tables.get(table)?.key_of(key)?;
                (table, key, Change::Update)
            }
            DynamoRequest::DeleteItem { table, key } => {
                let key = self.tables.get(table)?.key_of(key)?;
                (table, key, Change::Delete)
            }
            _ => return None,
        };
        Some(DynamoWrite {
            table: table.clone(),
            key,
            change,
        })
    }

    /// The item entry a write leaves behind: what a `GetItem` of that key would have cached.
    fn item_entry(&self, write: &DynamoWrite, item: Item) -> EntryUpdate<DynamoResponse> {
        let plan = self.plan(&write.table, &write.key.partition, false);
        let FillPlan {
            ttl, tags, stale, ..
        } = plan;
        EntryUpdate::Put {
            key: item_key(&write.table, &write.key),
            value: DynamoResponse::Item(Some(item)),
            ttl,
            tags,
            stale,
        }
    }

    /// TTL and tags of an entry: the one place that builds a [`FillPlan`].
    fn plan(&self, table: &str, partition: &str, query: bool) -> FillPlan {
        let mut tags = vec![table_tag(table), partition_tag(table, partition)];
        if query {
            tags.push(queries_tag(table, partition));
        }
        FillPlan::new(self.ttl, tags)
    }
}

impl CachePolicy<DynamoRequest, DynamoResponse> for DynamoPolicy {
    type Read = DynamoRead;
    type Write = DynamoWrite;

    fn classify(&self, request: &DynamoRequest) -> Classified<DynamoRead, DynamoWrite> {
        if let Some((key, read)) = self.classify_read(request) {
            return Classified::Read { key, read };
        }
        match self.classify_write(request) {
            Some(write) => Classified::Write(write),
            None => Classified::Pass,
        }
    }

    fn fill(&self, _key: &str, read: &DynamoRead, _value: &DynamoResponse) -> FillPlan {
        self.plan(&read.table, &read.partition, read.query)
    }

    fn after_write(
        &self,
        write: DynamoWrite,
        value: &DynamoResponse,
    ) -> WriteEffects<DynamoResponse> {
        let effects =
            WriteEffects::none().invalidate_tag(queries_tag(&write.table, &write.key.partition));
        let new_item = match (&write.change, value) {
            (Change::Put(item), _) => Some(item.clone()),
            (Change::Update, DynamoResponse::Written(Some(item))) => Some(item.clone()),
            (Change::Update | Change::Delete, _) => None,
        };
        match new_item {
            Some(item) => {
                let entry = self.item_entry(&write, item);
                effects.update(entry)
            }
            None => effects.remove_key(item_key(&write.table, &write.key)),
        }
    }
}

/// What a query's key is made of.
#[derive(Serialize)]
struct QueryShape<'a> {
    partition: &'a str,
    sort: Option<&'a SortCondition>,
    scan_forward: bool,
    limit: Option<usize>,
}

/// The key of one item's `GetItem` entry.
pub fn item_key(table: &str, key: &PrimaryKey) -> String {
    format!("dynamodb:{table}:item:{}", key.full)
}

/// The tag on every entry of `table`: invalidate it after changing the table behind the client's back
/// (a bulk import, another service's writes).
pub fn table_tag(table: &str) -> String {
    format!("dynamodb:{table}")
}

/// The tag on every entry of one partition (`partition` as in [`PrimaryKey::partition`]).
pub fn partition_tag(table: &str, partition: &str) -> String {
    format!("dynamodb:{table}:partition:{partition}")
}

/// The tag on the query entries of one partition: what a write to an item of it makes stale.
fn queries_tag(table: &str, partition: &str) -> String {
    format!("dynamodb:{table}:queries:{partition}")
}
