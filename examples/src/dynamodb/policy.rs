//! [`DynamoPolicy`]: which DynamoDB requests are cached, under which key and tags, and what writes change.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use cache_core::{CachePolicy, Classified, EntryUpdate, FillPlan, WriteEffects};
use serde::Serialize;

use super::key::{canonical_item, canonical_value, to_json};
use super::{item_from_sdk, DynamoRequest, DynamoResponse, Item, PrimaryKey, TableSchema, Value};

/// Caches eventually consistent `GetItem` and `Query` reads of the tables it knows, and keeps them right
/// across the writes that go through the same client.
///
/// - **Keys**: `dynamodb:{table}:item:{key}` with the key attributes sorted by name and numbers
///   normalised (see [`TableSchema::key_of`]), so `{pk, sk}` and `{sk, pk}`, or `1` and `1.0`, are one
///   entry. Queries: `dynamodb:{table}:query:{…}` over everything that changes the answer: the key
///   condition and filter expressions, their names and values (numbers normalised), the projection,
///   `Select`, `ScanIndexForward`, `Limit` and `ExclusiveStartKey`.
/// - **Tags**: every entry carries [`table_tag`] and [`partition_tag`]; queries also carry the
///   partition's query tag, which writes invalidate. Item entries do not, so a write to one item leaves
///   the cached siblings in its partition alone.
/// - **Pass-through**: `ConsistentRead: true` (the caller asked to see every acknowledged write, which a
///   cache cannot promise for writes made by other clients), tables the policy does not know, keys that
///   do not fit the table (DynamoDB rejects them), `GetItem` with a projection, queries of an index or
///   with the legacy parameters (`KeyConditions`, `QueryFilter`, `AttributesToGet`), and queries whose
///   key condition does not name the partition as `pk = :value`.
/// - **Writes**: `UpdateItem` with `ReturnValues: ALL_NEW` stores the item it returned (DynamoDB's own
///   rendering of it); `PutItem`, `DeleteItem`, other `UpdateItem`s and `TransactWriteItems` remove the
///   entry of every item they touch (a put's request holds the item in the caller's spelling, not in
///   DynamoDB's: `1.50` is read back as `1.5`). Each also invalidates the queries of every partition it
///   touched.
/// - **Failed writes** do the same removals and invalidations: an error does not prove that nothing
///   was written (a timeout after DynamoDB applied the write, an SDK retry whose first attempt
///   succeeded and whose second one failed its condition).
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

/// What the policy keeps of a write until it succeeds: the items it changes.
#[derive(Debug)]
pub struct DynamoWrite {
    items: Vec<(String, PrimaryKey)>,
    change: Change,
}

#[derive(Debug)]
enum Change {
    /// `UpdateItem` with `ALL_NEW`: the answer carries the whole new item.
    UpdateAllNew,
    /// The items are gone, or changed in ways only a new read tells.
    Remove,
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

    fn classify_get(&self, input: &GetItemInput) -> Option<(String, DynamoRead)> {
        let plain = input.consistent_read != Some(true)
            && input.projection_expression.is_none()
            && input.attributes_to_get.is_none();
        if !plain {
            return None;
        }
        let table = input.table_name.as_deref()?;
        let key = self.tables.get(table)?.key_of(input.key.as_ref()?)?;
        let read = DynamoRead {
            table: table.to_owned(),
            partition: key.partition.clone(),
            query: false,
        };
        Some((item_key(table, &key), read))
    }

    fn classify_query(&self, input: &QueryInput) -> Option<(String, DynamoRead)> {
        let plain = input.consistent_read != Some(true)
            && input.index_name.is_none()
            && input.key_conditions.is_none()
            && input.query_filter.is_none()
            && input.attributes_to_get.is_none()
            && input.conditional_operator.is_none();
        if !plain {
            return None;
        }
        let table = input.table_name.as_deref()?;
        let schema = self.tables.get(table)?;
        let condition = input.key_condition_expression.as_deref()?;
        let names = input.expression_attribute_names.clone().unwrap_or_default();
        let values = input.expression_attribute_values.as_ref();
        let partition = query_partition(schema, condition, &names, values?)?;
        let shape = QueryShape {
            condition,
            filter: input.filter_expression.as_deref(),
            projection: input.projection_expression.as_deref(),
            names: names.iter().collect(),
            values: canonical_sdk_map(values?)?,
            select: input.select.as_ref().map(|select| select.as_str()),
            scan_forward: input.scan_index_forward.unwrap_or(true),
            limit: input.limit,
            start: match &input.exclusive_start_key {
                Some(start) => Some(canonical_item(&item_from_sdk(start).ok()?)),
                None => None,
            },
        };
        let read = DynamoRead {
            table: table.to_owned(),
            partition,
            query: true,
        };
        Some((format!("dynamodb:{table}:query:{}", to_json(&shape)), read))
    }

    fn classify_write(&self, request: &DynamoRequest) -> Option<DynamoWrite> {
        let one = |table: &Option<String>, key: Option<PrimaryKey>| -> Option<Vec<_>> {
            Some(vec![(table.clone()?, key?)])
        };
        let schema = |table: &Option<String>| self.tables.get(table.as_deref()?);
        let (items, change) = match request {
            DynamoRequest::PutItem(input) => {
                let key = schema(&input.table_name)?.key_of_sdk_item(input.item.as_ref()?);
                (one(&input.table_name, key)?, Change::Remove)
            }
            DynamoRequest::UpdateItem(input) => {
                let key = schema(&input.table_name)?.key_of(input.key.as_ref()?);
                let change = match input.return_values {
                    Some(ReturnValue::AllNew) => Change::UpdateAllNew,
                    _ => Change::Remove,
                };
                (one(&input.table_name, key)?, change)
            }
            DynamoRequest::DeleteItem(input) => {
                let key = schema(&input.table_name)?.key_of(input.key.as_ref()?);
                (one(&input.table_name, key)?, Change::Remove)
            }
            DynamoRequest::TransactWriteItems(input) => {
                let mut items = Vec::new();
                for write in input.transact_items.iter().flatten() {
                    let (table, key) = if let Some(put) = &write.put {
                        let key = self
                            .tables
                            .get(&put.table_name)
                            .and_then(|schema| schema.key_of_sdk_item(&put.item));
                        (&put.table_name, key)
                    } else if let Some(update) = &write.update {
                        let key = self
                            .tables
                            .get(&update.table_name)
                            .and_then(|schema| schema.key_of(&update.key));
                        (&update.table_name, key)
                    } else if let Some(delete) = &write.delete {
                        let key = self
                            .tables
                            .get(&delete.table_name)
                            .and_then(|schema| schema.key_of(&delete.key));
                        (&delete.table_name, key)
                    } else {
                        continue; // a condition check changes nothing
                    };
                    if let Some(key) = key {
                        items.push((table.clone(), key));
                    }
                }
                if items.is_empty() {
                    return None;
                }
                (items, Change::Remove)
            }
            DynamoRequest::GetItem(_) | DynamoRequest::Query(_) => return None,
        };
        Some(DynamoWrite { items, change })
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
        let read = match request {
            DynamoRequest::GetItem(input) => self.classify_get(input),
            DynamoRequest::Query(input) => self.classify_query(input),
            _ => None,
        };
        if let Some((key, read)) = read {
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
        let new_item = match (&write.change, value) {
            (Change::UpdateAllNew, DynamoResponse::Written(Some(item))) => Some(item.clone()),
            _ => None,
        };
        let effects = queries_of(&write);
        match (new_item, write.items.as_slice()) {
            (Some(item), [(table, key)]) => {
                let FillPlan {
                    ttl, tags, stale, ..
                } = self.plan(table, &key.partition, false);
                effects.update(EntryUpdate::Put {
                    key: item_key(table, key),
                    value: DynamoResponse::Item(Some(item)),
                    ttl,
                    tags,
                    stale,
                })
            }
            _ => removals(&write, effects),
        }
    }

    /// The write may have happened: nothing it could have changed is served any more.
    fn after_write_error(
        &self,
        write: DynamoWrite,
        _error: &cache_core::BoxError,
    ) -> WriteEffects<DynamoResponse> {
        removals(&write, queries_of(&write))
    }
}

/// The query invalidations of a write: every partition it touches.
fn queries_of(write: &DynamoWrite) -> WriteEffects<DynamoResponse> {
    write
        .items
        .iter()
        .fold(WriteEffects::none(), |effects, (table, key)| {
            effects.invalidate_tag(queries_tag(table, &key.partition))
        })
}

/// `effects` and the removal of every item entry the write touches.
fn removals(
    write: &DynamoWrite,
    effects: WriteEffects<DynamoResponse>,
) -> WriteEffects<DynamoResponse> {
    write.items.iter().fold(effects, |effects, (table, key)| {
        effects.remove_key(item_key(table, key))
    })
}

/// The canonical partition text of a query's key condition: the clause `pk = :value` (either way
/// round, the name maybe an `#alias`) where `pk` is the table's partition key.
fn query_partition(
    schema: &TableSchema,
    condition: &str,
    names: &HashMap<String, String>,
    values: &HashMap<String, AttributeValue>,
) -> Option<String> {
    let resolve = |name: &str| -> String {
        match name.strip_prefix('#') {
            Some(_) => names.get(name).cloned().unwrap_or_default(),
            None => name.to_owned(),
        }
    };
    split_and(condition).find_map(|clause| {
        let clause = clause.trim().trim_matches(['(', ')']).trim();
        if clause.contains(['<', '>']) {
            return None;
        }
        let (left, right) = clause.split_once('=')?;
        let (left, right) = (left.trim(), right.trim());
        let (name, placeholder) = match (left.starts_with(':'), right.starts_with(':')) {
            (false, true) => (left, right),
            (true, false) => (right, left),
            _ => return None,
        };
        let name = resolve(name);
        schema.partition_of(&name, values.get(placeholder)?)
    })
}

/// The clauses of a key condition, split at `AND` in any case (a `BETWEEN … AND …` splits too, into
/// parts that are never an equality of the partition).
fn split_and(condition: &str) -> impl Iterator<Item = &str> {
    let mut rest = condition;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let lower = rest.to_ascii_lowercase();
        match lower.find(" and ") {
            Some(at) => {
                let clause = &rest[..at];
                rest = &rest[at + 5..];
                Some(clause)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

/// Expression values in canonical form, by placeholder.
fn canonical_sdk_map(values: &HashMap<String, AttributeValue>) -> Option<BTreeMap<&str, Value>> {
    values
        .iter()
        .map(|(name, value)| {
            Some((
                name.as_str(),
                canonical_value(&Value::from_sdk(value).ok()?),
            ))
        })
        .collect()
}

/// What a query's key is made of.
#[derive(Serialize)]
struct QueryShape<'a> {
    condition: &'a str,
    filter: Option<&'a str>,
    projection: Option<&'a str>,
    names: BTreeMap<&'a String, &'a String>,
    values: BTreeMap<&'a str, Value>,
    select: Option<&'a str>,
    scan_forward: bool,
    limit: Option<i32>,
    start: Option<Item>,
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
