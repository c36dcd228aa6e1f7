//! Reading ids out of Discord JSON, and editing a cached JSON list in place of refetching it.

use bytes::Bytes;
use serde_json::Value;

use crate::route::{path_snowflake, Snowflake};

/// The snowflake in string field `field` of a JSON object (Discord sends ids as strings).
pub(crate) fn id_field(object: &Value, field: &str) -> Option<Snowflake> {
    object.get(field)?.as_str().and_then(path_snowflake)
}

/// The ids of the objects of a JSON array body.
pub(crate) fn ids_of_list(body: &[u8]) -> Option<Vec<Snowflake>> {
    let list: Vec<Value> = serde_json::from_slice(body).ok()?;
    Some(
        list.iter()
            .filter_map(|item| id_field(item, "id"))
            .collect(),
    )
}

/// Parses a JSON object body.
pub(crate) fn object(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// What to do to the list entry with a given id.
#[derive(Debug)]
pub(crate) enum ListEdit {
    /// Replace the object with the same id, or append it when absent.
    Upsert(Value),
    /// Remove the object with this id.
    Remove(Snowflake),
}

/// Applies `edit` to the JSON array `list`; `None` when `list` is not an array of objects or the edit has
/// no id (the caller then drops the entry rather than keep one it cannot vouch for).
pub(crate) fn edit_list(list: &[u8], edit: ListEdit) -> Option<Bytes> {
    let mut items: Vec<Value> = serde_json::from_slice(list).ok()?;
    match edit {
        ListEdit::Upsert(object) => {
            let id = Some(id_field(&object, "id")?);
            match items.iter_mut().find(|item| id_field(item, "id") == id) {
                Some(item) => *item = object,
                None => items.push(object),
            }
        }
        ListEdit::Remove(id) => items.retain(|item| id_field(item, "id") != Some(id)),
    }
    serde_json::to_vec(&items).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(body: &[u8]) -> Vec<String> {
        let items: Vec<Value> = serde_json::from_slice(body).unwrap();
        items
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn upsert_replace_and_remove_by_id() {
        let list = serde_json::to_vec(&json!([{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]))
            .unwrap();
        let up = edit_list(&list, ListEdit::Upsert(json!({"id": "2", "name": "B"}))).unwrap();
        assert_eq!(names(&up), ["a", "B"]);
        let added = edit_list(&list, ListEdit::Upsert(json!({"id": "3", "name": "c"}))).unwrap();
        assert_eq!(names(&added), ["a", "b", "c"]);
        let removed = edit_list(&list, ListEdit::Remove(1)).unwrap();
        assert_eq!(names(&removed), ["b"]);
    }

    #[test]
    fn refuses_what_it_cannot_vouch_for() {
        assert!(edit_list(b"{}", ListEdit::Remove(1)).is_none());
        assert!(edit_list(b"[]", ListEdit::Upsert(json!({"name": "no id"}))).is_none());
    }

    #[test]
    fn keeps_field_order() {
        let list = br#"[{"id":"1","name":"a","position":0}]"#;
        let out = edit_list(list, ListEdit::Remove(9)).unwrap();
        assert_eq!(&out[..], &list[..]);
    }
}
