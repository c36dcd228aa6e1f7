//! Canonical primary keys: one text per item, whatever the order of the attributes or the spelling of a
//! number, so a read and a write of one item always meet under one cache key.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, Value};

/// The key attributes of a table, as its `KeySchema` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The table's name.
    pub name: String,
    /// The partition (hash) key attribute.
    pub partition_key: String,
    /// The sort (range) key attribute, if the table has one.
    pub sort_key: Option<String>,
}

/// The canonical texts of one item's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrimaryKey {
    /// The partition key alone, e.g. `{"customer":{"S":"c1"}}`.
    pub partition: String,
    /// Every key attribute, sorted by name, e.g. `{"customer":{"S":"c1"},"order":{"N":"1e0"}}`.
    pub full: String,
}

impl TableSchema {
    /// The primary key named by a request's `Key`, or `None` when it is not exactly this table's key
    /// attributes with string, number or binary values (a request DynamoDB would reject).
    pub fn key_of(&self, key: &HashMap<String, AttributeValue>) -> Option<PrimaryKey> {
        self.key_from(
            key.iter()
                .map(|(name, value)| Some((name.as_str(), canonical_sdk_value(value)?))),
        )
    }

    /// The primary key of a whole item, as the SDK carries it (its key attributes; the others are
    /// ignored).
    pub fn key_of_sdk_item(&self, item: &HashMap<String, AttributeValue>) -> Option<PrimaryKey> {
        self.key_from(
            item.iter()
                .filter(|(name, _)| self.is_key(name))
                .map(|(name, value)| Some((name.as_str(), canonical_sdk_value(value)?))),
        )
    }

    fn key_from<'a>(
        &self,
        attributes: impl IntoIterator<Item = Option<(&'a str, Value)>>,
    ) -> Option<PrimaryKey> {
        let mut sorted = BTreeMap::new();
        for attribute in attributes {
            let (name, value) = attribute?;
            if sorted.insert(name, value).is_some() {
                return None; // the same attribute twice
            }
        }
        let expected = 1 + usize::from(self.sort_key.is_some());
        let partition = sorted.get(self.partition_key.as_str())?;
        let sort_ok = self
            .sort_key
            .as_deref()
            .is_none_or(|sort| sorted.contains_key(sort));
        if sorted.len() != expected || !sort_ok {
            return None;
        }
        Some(PrimaryKey {
            partition: to_json(&BTreeMap::from([(self.partition_key.as_str(), partition)])),
            full: to_json(&sorted),
        })
    }

    /// The canonical text of a partition, as in [`PrimaryKey::partition`], from the partition key's
    /// name and value.
    pub fn partition_of(&self, name: &str, value: &AttributeValue) -> Option<String> {
        (name == self.partition_key)
            .then(|| canonical_sdk_value(value))
            .flatten()
            .map(|value| to_json(&BTreeMap::from([(name, value)])))
    }

    /// True when `name` is one of the key attributes.
    pub fn is_key(&self, name: &str) -> bool {
        name == self.partition_key || self.sort_key.as_deref() == Some(name)
    }
}

/// A key value as DynamoDB compares it: strings and binaries as they are, numbers normalised; `None`
/// for types that cannot be key attributes.
fn canonical_sdk_value(value: &AttributeValue) -> Option<Value> {
    match value {
        AttributeValue::S(text) => Some(Value::S(text.clone())),
        AttributeValue::N(text) => canonical_number(text).map(Value::N),
        AttributeValue::B(blob) => Some(Value::B(blob.as_ref().to_vec())),
        _ => None,
    }
}

/// Any value in the canonical form keys use: numbers normalised wherever they are (a query's
/// expression values, a start key), so spellings DynamoDB treats as one make one key.
pub(super) fn canonical_value(value: &Value) -> Value {
    match value {
        Value::N(text) => Value::N(canonical_number(text).unwrap_or_else(|| text.clone())),
        Value::NS(set) => {
            let mut set: Vec<String> = set
                .iter()
                .map(|n| canonical_number(n).unwrap_or_else(|| n.clone()))
                .collect();
            set.sort();
            Value::NS(set)
        }
        Value::SS(set) => {
            let mut set = set.clone();
            set.sort();
            Value::SS(set)
        }
        Value::BS(set) => {
            let mut set = set.clone();
            set.sort();
            Value::BS(set)
        }
        Value::M(item) => Value::M(canonical_item(item)),
        Value::L(list) => Value::L(list.iter().map(canonical_value).collect()),
        other => other.clone(),
    }
}

/// An item with every value in canonical form.
pub(super) fn canonical_item(item: &Item) -> Item {
    item.iter()
        .map(|(name, value)| (name.clone(), canonical_value(value)))
        .collect()
}

/// Normalises decimal text to `[-]digitsE` form (`"1"`, `"1.0"` and `"0.1e1"` all give `"1e0"`), or
/// `None` when it is not a number. DynamoDB treats those spellings as one key; keying them apart would
/// let a write under one spelling leave a stale entry under another.
pub fn canonical_number(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".to_owned());
    }
    let significant = digits.trim_end_matches('0');
    let trailing_zeros = i32::try_from(digits.len() - significant.len()).ok()?;
    let exponent = exponent
        .checked_sub(i32::try_from(frac.len()).ok()?)?
        .checked_add(trailing_zeros)?;
    let sign = if negative { "-" } else { "" };
    Some(format!("{sign}{significant}e{exponent}"))
}

pub(super) fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("maps of strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_dynamodb_treats_as_equal_have_one_text() {
        for spelling in ["1", "1.0", "01", "0.1e1", "10E-1", "+1"] {
            assert_eq!(
                canonical_number(spelling).as_deref(),
                Some("1e0"),
                "{spelling}"
            );
        }
        assert_eq!(canonical_number("-2500").as_deref(), Some("-25e2"));
        assert_eq!(canonical_number("0.000").as_deref(), Some("0"));
        assert_eq!(canonical_number("-0").as_deref(), Some("0"));
        for not_a_number in ["", ".", "1.2.3", "abc", "1e", "--1"] {
            assert_eq!(canonical_number(not_a_number), None, "{not_a_number}");
        }
    }
}
