//! The official DynamoDB client (`aws-sdk-dynamodb`) behind the cache: eventually consistent reads cached
//! per item and per query, consistent reads passed through, writes updating or invalidating what they
//! change.
//!
//! - [`DynamoClient`] makes the SDK's `Client` a tower service over [`DynamoRequest`], an enum of the
//!   SDK's own input types (`GetItemInput`, `QueryInput`, `PutItemInput`, `UpdateItemInput`,
//!   `DeleteItemInput`, `TransactWriteItemsInput`), answering [`DynamoResponse`].
//! - The SDK's outputs and `AttributeValue` are not serde types; [`Value`] and [`Item`] mirror them, and
//!   `value.rs` holds the one conversion, so answers can be stored by any store and codec (the memory
//!   store, or Redis with bincode or MessagePack).
//! - [`DynamoPolicy`] keys, tags and TTLs requests from those inputs.
//! - [`LocalDynamo`] starts a DynamoDB-compatible server (moto, from PyPI) for the example and its
//!   tests; [`demo::run_demo`] is what `cargo run --release -p examples --bin dynamodb` prints.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use aws_sdk_dynamodb::operation::get_item::GetItemInput;
//! use aws_sdk_dynamodb::types::AttributeValue;
//! use cache_core::{CachePolicy, Classified};
//! use examples::dynamodb::{DynamoPolicy, DynamoRequest, TableSchema};
//!
//! let schema = TableSchema { name: "orders".into(), partition_key: "customer".into(), sort_key: Some("order".into()) };
//! let policy = DynamoPolicy::new([schema], Duration::from_secs(60));
//! let get = |order: &str, consistent: bool| {
//!     let key = HashMap::from([
//!         ("customer".to_owned(), AttributeValue::S("c1".into())),
//!         ("order".to_owned(), AttributeValue::N(order.into())),
//!     ]);
//!     let input = GetItemInput::builder().table_name("orders").set_key(Some(key)).consistent_read(consistent).build();
//!     DynamoRequest::GetItem(input.expect("a table name"))
//! };
//!
//! // The spelling of a number does not change the key.
//! let (Classified::Read { key: a, .. }, Classified::Read { key: b, .. }) = (policy.classify(&get("1", false)), policy.classify(&get("1.0", false))) else { panic!() };
//! assert_eq!(a, b);
//! assert_eq!(a, r#"dynamodb:orders:item:{"customer":{"S":"c1"},"order":{"N":"1e0"}}"#);
//!
//! // A consistent read is not served from the cache.
//! assert!(matches!(policy.classify(&get("1", true)), Classified::Pass));
//! ```

mod client;
pub mod demo;
mod key;
mod local_server;
mod policy;
mod request;
mod value;

pub use client::{DynamoClient, DynamoError, Usage};
pub use key::{canonical_number, PrimaryKey, TableSchema};
pub use local_server::{LocalDynamo, LocalDynamoError};
pub use policy::{item_key, partition_tag, table_tag, DynamoPolicy, DynamoRead, DynamoWrite};
pub use request::{DynamoRequest, DynamoResponse};
pub use value::{item_from_sdk, item_to_sdk, Item, UnknownAttributeType, Value};
