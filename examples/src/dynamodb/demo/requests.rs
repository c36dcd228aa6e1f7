//! The requests and the response summaries of the scenario, one order at a time, as SDK inputs.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, ReturnValue, TransactWriteItem, Update};

use crate::dynamodb::{DynamoRequest, DynamoResponse, Item, Value};

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: &str) -> AttributeValue {
    AttributeValue::N(number.to_owned())
}

/// An order's key, attributes in the order given.
pub fn order_key(customer: &str, order: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("customer".to_owned(), s(customer)),
        ("order".to_owned(), n(order)),
    ])
}

/// A whole order item, as the SDK carries it.
pub fn order_item(customer: &str, order: &str, status: &str) -> HashMap<String, AttributeValue> {
    let mut item = order_key(customer, order);
    item.insert("status".to_owned(), s(status));
    item
}

/// An eventually consistent `GetItem` of one order.
pub fn get_order(table: &str, customer: &str, order: &str) -> DynamoRequest {
    get(table, customer, order, false)
}

/// A strongly consistent `GetItem` of one order.
pub fn get_order_consistent(table: &str, customer: &str, order: &str) -> DynamoRequest {
    get(table, customer, order, true)
}

fn get(table: &str, customer: &str, order: &str, consistent: bool) -> DynamoRequest {
    let input = GetItemInput::builder()
        .table_name(table)
        .set_key(Some(order_key(customer, order)))
        .consistent_read(consistent)
        .build()
        .expect("a table name");
    DynamoRequest::GetItem(input)
}

/// Every order of a customer, ascending.
pub fn query_orders(table: &str, customer: &str) -> DynamoRequest {
    let input = QueryInput::builder()
        .table_name(table)
        .key_condition_expression("#c = :c")
        .expression_attribute_names("#c", "customer")
        .expression_attribute_values(":c", s(customer))
        .build()
        .expect("a table name");
    DynamoRequest::Query(input)
}

/// Sets an order's status; with `all_new`, the answer carries the whole item.
pub fn set_status(
    table: &str,
    customer: &str,
    order: &str,
    status: &str,
    all_new: bool,
) -> DynamoRequest {
    let returned = if all_new {
        ReturnValue::AllNew
    } else {
        ReturnValue::None
    };
    let input = UpdateItemInput::builder()
        .table_name(table)
        .set_key(Some(order_key(customer, order)))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", s(status))
        .return_values(returned)
        .build()
        .expect("a table name");
    DynamoRequest::UpdateItem(input)
}

/// Creates or replaces an order; with `only_new`, only if it does not exist yet.
pub fn put_order(
    table: &str,
    customer: &str,
    order: &str,
    status: &str,
    only_new: bool,
) -> DynamoRequest {
    let mut input = PutItemInput::builder()
        .table_name(table)
        .set_item(Some(order_item(customer, order, status)));
    if only_new {
        input = input.condition_expression("attribute_not_exists(customer)");
    }
    DynamoRequest::PutItem(input.build().expect("a table name"))
}

/// Deletes an order.
pub fn delete_order(table: &str, customer: &str, order: &str) -> DynamoRequest {
    let input = DeleteItemInput::builder()
        .table_name(table)
        .set_key(Some(order_key(customer, order)))
        .build()
        .expect("a table name");
    DynamoRequest::DeleteItem(input)
}

/// One transaction: `first` is marked `moved`, `second` is deleted.
pub fn move_and_delete(table: &str, first: (&str, &str), second: (&str, &str)) -> DynamoRequest {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(order_key(first.0, first.1)))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", s("moved"))
        .build()
        .expect("complete");
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(order_key(second.0, second.1)))
        .build()
        .expect("complete");
    let input = TransactWriteItemsInput::builder()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .transact_items(TransactWriteItem::builder().delete(delete).build())
        .build()
        .expect("complete");
    DynamoRequest::TransactWriteItems(input)
}

/// A response in a line: `#1 placed`, `[#1 placed, #2 shipped]`, `not found`.
pub fn summary(response: &DynamoResponse) -> String {
    let order = |item: &Item| {
        let text = |name: &str| match item.get(name) {
            Some(Value::S(text) | Value::N(text)) => text.as_str(),
            _ => "?",
        };
        format!("#{} {}", text("order"), text("status"))
    };
    match response {
        DynamoResponse::Item(Some(item)) => order(item),
        DynamoResponse::Item(None) => "not found".to_owned(),
        DynamoResponse::Page { items, .. } => {
            let orders: Vec<String> = items.iter().map(order).collect();
            format!("[{}]", orders.join(", "))
        }
        DynamoResponse::Written(Some(item)) => format!("returned {}", order(item)),
        DynamoResponse::Written(None) => "ok".to_owned(),
    }
}
