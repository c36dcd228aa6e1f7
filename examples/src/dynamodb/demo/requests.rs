//! The requests and the response summaries of the scenario, one order at a time.

use super::TABLE;
use crate::dynamodb::{
    attributes, item, AttributeValue, DynamoRequest, DynamoResponse, Item, ReturnValues,
};

/// An order item.
pub fn order_item(customer: &str, order: &str, status: &str) -> Item {
    item([
        ("customer", AttributeValue::s(customer)),
        ("order", AttributeValue::n(order)),
        ("status", AttributeValue::s(status)),
    ])
}

/// An eventually consistent `GetItem` of one order, key attributes in the order `customer`, `order`.
pub fn get_order(customer: &str, order: &str) -> DynamoRequest {
    DynamoRequest::GetItem {
        table: TABLE.to_owned(),
        key: attributes([
            ("customer", AttributeValue::s(customer)),
            ("order", AttributeValue::n(order)),
        ]),
        consistent_read: false,
    }
}

/// The same read with the key attributes the other way round.
pub fn get_order_reversed(customer: &str, order: &str) -> DynamoRequest {
    DynamoRequest::GetItem {
        table: TABLE.to_owned(),
        key: attributes([
            ("order", AttributeValue::n(order)),
            ("customer", AttributeValue::s(customer)),
        ]),
        consistent_read: false,
    }
}

/// A strongly consistent `GetItem` of one order.
pub fn get_order_consistent(customer: &str, order: &str) -> DynamoRequest {
    let DynamoRequest::GetItem { table, key, .. } = get_order(customer, order) else {
        unreachable!("get_order builds a GetItem")
    };
    DynamoRequest::GetItem {
        table,
        key,
        consistent_read: true,
    }
}

/// Every order of a customer, ascending.
pub fn query_orders(customer: &str) -> DynamoRequest {
    DynamoRequest::Query {
        table: TABLE.to_owned(),
        partition: ("customer".to_owned(), AttributeValue::s(customer)),
        sort: None,
        scan_forward: true,
        limit: None,
        consistent_read: false,
    }
}

/// Sets an order's status.
pub fn set_status(
    customer: &str,
    order: &str,
    status: &str,
    return_values: ReturnValues,
) -> DynamoRequest {
    let DynamoRequest::GetItem { table, key, .. } = get_order(customer, order) else {
        unreachable!("get_order builds a GetItem")
    };
    DynamoRequest::UpdateItem {
        table,
        key,
        set: attributes([("status", AttributeValue::s(status))]),
        return_values,
    }
}

/// Creates or replaces an order.
pub fn put_order(customer: &str, order: &str, status: &str) -> DynamoRequest {
    DynamoRequest::PutItem {
        table: TABLE.to_owned(),
        item: order_item(customer, order, status),
    }
}

/// Deletes an order.
pub fn delete_order(customer: &str, order: &str) -> DynamoRequest {
    let DynamoRequest::GetItem { table, key, .. } = get_order(customer, order) else {
        unreachable!("get_order builds a GetItem")
    };
    DynamoRequest::DeleteItem { table, key }
}

/// A response in a line: `#1 placed`, `[#1 placed, #2 shipped]`, `not found`.
pub fn summary(response: &DynamoResponse) -> String {
    let order = |item: &Item| {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(text) | AttributeValue::N(text)) => text.as_str(),
            _ => "?",
        };
        format!("#{} {}", text("order"), text("status"))
    };
    match response {
        DynamoResponse::Item(Some(item)) => order(item),
        DynamoResponse::Item(None) => "not found".to_owned(),
        DynamoResponse::Items(items) => {
            let orders: Vec<String> = items.iter().map(order).collect();
            format!("[{}]", orders.join(", "))
        }
        DynamoResponse::Written(Some(item)) => format!("returned {}", order(item)),
        DynamoResponse::Written(None) => "ok".to_owned(),
    }
}
