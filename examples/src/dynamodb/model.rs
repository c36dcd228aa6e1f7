//! Requests and responses of the simulated DynamoDB client: a small, typed subset of the real API.

use std::collections::BTreeMap;

use serde::Serialize;

/// One attribute value, serialised like DynamoDB's JSON (`{"S":"c1"}`, `{"N":"42"}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AttributeValue {
    /// A string.
    S(String),
    /// A number, as DynamoDB carries it: decimal text (`"1"`, `"1.50"`, `"2e3"`).
    N(String),
    /// A boolean.
    #[serde(rename = "BOOL")]
    Bool(bool),
    /// Null.
    #[serde(rename = "NULL")]
    Null,
}

impl AttributeValue {
    /// A string value.
    pub fn s(text: impl Into<String>) -> Self {
        Self::S(text.into())
    }

    /// A number value from its decimal text.
    pub fn n(number: impl ToString) -> Self {
        Self::N(number.to_string())
    }
}

/// A stored item: attributes by name.
pub type Item = BTreeMap<String, AttributeValue>;

/// Attributes as a caller writes them in a request: name and value pairs in the caller's order, as in the
/// JSON object of a real request. The order carries no meaning; the cache key must not depend on it.
pub type Attributes = Vec<(String, AttributeValue)>;

/// Builds [`Attributes`] from pairs, keeping their order.
pub fn attributes<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Attributes {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// Builds an [`Item`] from pairs.
pub fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// The key attributes of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The table's name.
    pub name: String,
    /// The partition (hash) key attribute.
    pub partition_key: String,
    /// The sort (range) key attribute, if the table has one.
    pub sort_key: Option<String>,
}

/// The `ReturnValues` of an `UpdateItem` (the subset this example models).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnValues {
    /// Return nothing.
    None,
    /// Return the whole item as it is after the update.
    AllNew,
}

/// A sort key condition of a `Query` (`KeyConditionExpression` after the partition's equality).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SortCondition {
    /// `sk = value`.
    Eq(AttributeValue),
    /// `begins_with(sk, prefix)` (string sort keys).
    BeginsWith(String),
    /// `sk BETWEEN low AND high`, both inclusive.
    Between(AttributeValue, AttributeValue),
}

/// A request to the DynamoDB client.
#[derive(Debug, Clone, PartialEq)]
pub enum DynamoRequest {
    /// Reads one item by its primary key.
    GetItem {
        /// The table.
        table: String,
        /// The primary key attributes.
        key: Attributes,
        /// Strongly consistent read: must see every write acknowledged before it.
        consistent_read: bool,
    },
    /// Reads the items of one partition, in sort key order.
    Query {
        /// The table.
        table: String,
        /// The partition key attribute and the value it must equal.
        partition: (String, AttributeValue),
        /// The condition on the sort key, if any.
        sort: Option<SortCondition>,
        /// `ScanIndexForward`: ascending sort key order when true.
        scan_forward: bool,
        /// At most this many items.
        limit: Option<usize>,
        /// Strongly consistent read.
        consistent_read: bool,
    },
    /// Creates or replaces a whole item.
    PutItem {
        /// The table.
        table: String,
        /// The item, key attributes included.
        item: Item,
    },
    /// Sets attributes of an item, creating it if needed (`SET a = :a, b = :b`).
    UpdateItem {
        /// The table.
        table: String,
        /// The primary key attributes.
        key: Attributes,
        /// Attributes to set.
        set: Attributes,
        /// What the response carries.
        return_values: ReturnValues,
    },
    /// Deletes an item.
    DeleteItem {
        /// The table.
        table: String,
        /// The primary key attributes.
        key: Attributes,
    },
}

/// A response of the DynamoDB client.
#[derive(Debug, Clone, PartialEq)]
pub enum DynamoResponse {
    /// `GetItem`: the item, or `None` when there is none.
    Item(Option<Item>),
    /// `Query`: the matching items in the requested order.
    Items(Vec<Item>),
    /// A write, with the attributes `ReturnValues` asked for.
    Written(Option<Item>),
}
