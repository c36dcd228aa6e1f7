//! [`DynamoRequest`] and [`DynamoResponse`]: what goes through the cached client. Requests are the SDK's
//! own input types; responses are serde types (the SDK's outputs are not), so the cache can store them.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use serde::{Deserialize, Serialize};

use super::Item;

/// A request to DynamoDB, as the SDK's input of its operation: build it with the SDK's builders
/// (`GetItemInput::builder()...build()?`).
#[derive(Debug, Clone, PartialEq)]
pub enum DynamoRequest {
    /// `GetItem`: one item by its primary key.
    GetItem(GetItemInput),
    /// `Query`: the items of one partition.
    Query(QueryInput),
    /// `PutItem`: creates or replaces a whole item.
    PutItem(PutItemInput),
    /// `UpdateItem`: changes attributes of an item.
    UpdateItem(UpdateItemInput),
    /// `DeleteItem`: deletes an item.
    DeleteItem(DeleteItemInput),
    /// `TransactWriteItems`: puts, updates, deletes and condition checks, all or none.
    TransactWriteItems(TransactWriteItemsInput),
}

impl DynamoRequest {
    /// The operation's name, as DynamoDB's API spells it.
    pub fn operation(&self) -> &'static str {
        match self {
            DynamoRequest::GetItem(_) => "GetItem",
            DynamoRequest::Query(_) => "Query",
            DynamoRequest::PutItem(_) => "PutItem",
            DynamoRequest::UpdateItem(_) => "UpdateItem",
            DynamoRequest::DeleteItem(_) => "DeleteItem",
            DynamoRequest::TransactWriteItems(_) => "TransactWriteItems",
        }
    }

    /// True for `GetItem` and `Query`.
    pub fn is_read(&self) -> bool {
        matches!(self, DynamoRequest::GetItem(_) | DynamoRequest::Query(_))
    }
}

/// DynamoDB's answer, in the form the cache stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DynamoResponse {
    /// `GetItem`: the item, or `None` when there is none.
    Item(Option<Item>),
    /// `Query`: one page of items, and where the next page starts.
    Page {
        /// The items, in the order asked for (none with `Select: COUNT`).
        items: Vec<Item>,
        /// `Count`: the items matched (after the filter).
        count: i32,
        /// `ScannedCount`: the items read (before the filter).
        scanned_count: i32,
        /// `LastEvaluatedKey`: pass it as `ExclusiveStartKey` for the next page.
        last_evaluated_key: Option<Item>,
    },
    /// A write, with the attributes its `ReturnValues` asked for (none for a transaction).
    Written(Option<Item>),
}
