//! [`Value`] and [`Item`]: DynamoDB's attribute values as serde types, the one place where the SDK's
//! types are converted. The SDK's `AttributeValue` and output types are not serde types, so what the
//! cache stores (in memory or in Redis, through a codec) is this mirror of them.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

/// One attribute value, shaped like DynamoDB's JSON (`{"S":"c1"}`, `{"N":"42"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A string.
    S(String),
    /// A number, as DynamoDB carries it: decimal text.
    N(String),
    /// Binary.
    B(Vec<u8>),
    /// A boolean.
    #[serde(rename = "BOOL")]
    Bool(bool),
    /// Null.
    #[serde(rename = "NULL")]
    Null,
    /// A map.
    M(Item),
    /// A list.
    L(Vec<Value>),
    /// A string set.
    SS(Vec<String>),
    /// A number set.
    NS(Vec<String>),
    /// A binary set.
    BS(Vec<Vec<u8>>),
}

/// An item: attributes by name, in name order.
pub type Item = BTreeMap<String, Value>;

/// An attribute type this example does not know (a newer SDK's): the answer is not converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an attribute of a type this client does not know: {0}")]
pub struct UnknownAttributeType(pub String);

impl Value {
    /// The SDK's value as a [`Value`].
    ///
    /// # Errors
    /// An attribute type added after this code was written.
    pub fn from_sdk(value: &AttributeValue) -> Result<Self, UnknownAttributeType> {
        Ok(match value {
            AttributeValue::S(text) => Value::S(text.clone()),
            AttributeValue::N(number) => Value::N(number.clone()),
            AttributeValue::B(blob) => Value::B(blob.as_ref().to_vec()),
            AttributeValue::Bool(flag) => Value::Bool(*flag),
            AttributeValue::Null(_) => Value::Null,
            AttributeValue::M(map) => Value::M(item_from_sdk(map)?),
            AttributeValue::L(list) => {
                Value::L(list.iter().map(Value::from_sdk).collect::<Result<_, _>>()?)
            }
            AttributeValue::Ss(set) => Value::SS(set.clone()),
            AttributeValue::Ns(set) => Value::NS(set.clone()),
            AttributeValue::Bs(set) => {
                Value::BS(set.iter().map(|blob| blob.as_ref().to_vec()).collect())
            }
            other => return Err(UnknownAttributeType(format!("{other:?}"))),
        })
    }

    /// The value as the SDK's.
    pub fn to_sdk(&self) -> AttributeValue {
        match self {
            Value::S(text) => AttributeValue::S(text.clone()),
            Value::N(number) => AttributeValue::N(number.clone()),
            Value::B(bytes) => AttributeValue::B(Blob::new(bytes.clone())),
            Value::Bool(flag) => AttributeValue::Bool(*flag),
            Value::Null => AttributeValue::Null(true),
            Value::M(item) => AttributeValue::M(item_to_sdk(item)),
            Value::L(list) => AttributeValue::L(list.iter().map(Value::to_sdk).collect()),
            Value::SS(set) => AttributeValue::Ss(set.clone()),
            Value::NS(set) => AttributeValue::Ns(set.clone()),
            Value::BS(set) => {
                AttributeValue::Bs(set.iter().map(|bytes| Blob::new(bytes.clone())).collect())
            }
        }
    }
}

/// The SDK's attribute map as an [`Item`].
///
/// # Errors
/// An attribute type added after this code was written.
pub fn item_from_sdk(map: &HashMap<String, AttributeValue>) -> Result<Item, UnknownAttributeType> {
    map.iter()
        .map(|(name, value)| Ok((name.clone(), Value::from_sdk(value)?)))
        .collect()
}

/// An [`Item`] as the SDK's attribute map.
pub fn item_to_sdk(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(name, value)| (name.clone(), value.to_sdk()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_goes_to_the_sdk_and_back() {
        let item: Item = [
            ("s", Value::S("text".into())),
            ("n", Value::N("1.5".into())),
            ("b", Value::B(vec![0, 255])),
            ("bool", Value::Bool(true)),
            ("null", Value::Null),
            ("l", Value::L(vec![Value::N("1".into()), Value::Null])),
            ("ss", Value::SS(vec!["a".into(), "b".into()])),
            ("ns", Value::NS(vec!["1".into()])),
            ("bs", Value::BS(vec![vec![1], vec![2]])),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        let nested: Item = [("m".to_owned(), Value::M(item.clone()))].into();
        assert_eq!(item_from_sdk(&item_to_sdk(&nested)).unwrap(), nested);
    }
}
