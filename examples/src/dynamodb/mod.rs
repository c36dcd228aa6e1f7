//! A cache policy for a DynamoDB client: eventually consistent reads are cached per item and per query,
//! consistent reads go through, writes update or invalidate what they change.
//!
//! The client is [`InMemoryDynamo`], a local stand-in with the same shape as a tower-wrapped SDK client
//! (typed requests in, typed responses out), so the example needs no network or credentials. The policy
//! is [`DynamoPolicy`]; [`demo::run_demo`] is what `cargo run --release -p examples --bin dynamodb` prints.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{CachePolicy, Classified};
//! use examples::dynamodb::{attributes, AttributeValue, DynamoPolicy, DynamoRequest, TableSchema};
//!
//! let schema = TableSchema { name: "orders".into(), partition_key: "customer".into(), sort_key: Some("order".into()) };
//! let policy = DynamoPolicy::new([schema], Duration::from_secs(60));
//! let get = |key, consistent_read| DynamoRequest::GetItem { table: "orders".into(), key, consistent_read };
//!
//! // Attribute order and number spelling do not change the key.
//! let a = get(attributes([("customer", AttributeValue::s("c1")), ("order", AttributeValue::n("1"))]), false);
//! let b = get(attributes([("order", AttributeValue::n("1.0")), ("customer", AttributeValue::s("c1"))]), false);
//! let (Classified::Read { key: key_a, .. }, Classified::Read { key: key_b, .. }) = (policy.classify(&a), policy.classify(&b)) else { panic!() };
//! assert_eq!(key_a, key_b);
//! assert_eq!(key_a, r#"dynamodb:orders:item:{"customer":{"S":"c1"},"order":{"N":"1e0"}}"#);
//!
//! // A consistent read is not served from the cache.
//! let DynamoRequest::GetItem { key, .. } = a else { unreachable!() };
//! assert!(matches!(policy.classify(&get(key, true)), Classified::Pass));
//! ```

pub mod demo;
mod key;
mod model;
mod policy;
mod table;

pub use key::{canonical_number, PrimaryKey};
pub use model::{
    attributes, item, AttributeValue, Attributes, DynamoRequest, DynamoResponse, Item,
    ReturnValues, SortCondition, TableSchema,
};
pub use policy::{item_key, partition_tag, table_tag, DynamoPolicy, DynamoRead, DynamoWrite};
pub use table::{DynamoError, InMemoryDynamo};
