//! application/x-www-form-urlencoded bodies: a JSON document flattened to one level.

use super::PayloadError;
use serde_json::Value;

/// Flattens a JSON object: nested keys joined with `_` (`event_metadata_time`), list
/// items indexed (`items_0_name`); null becomes an empty value.
pub fn flatten_form(document: &Value) -> Result<String, PayloadError> {
    if !document.is_object() {
        return Err(PayloadError::Document(
            "a form-encoded payload must be a JSON object".to_owned(),
        ));
    }
    let mut pairs = Vec::new();
    flatten("", document, &mut pairs);
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in &pairs {
        encoder.append_pair(key, value);
    }
    Ok(encoder.finish())
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}_{key}")
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                flatten(&join(prefix, key), value, out);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                flatten(&join(prefix, &index.to_string()), value, out);
            }
        }
        Value::String(text) => out.push((prefix.to_owned(), text.clone())),
        Value::Null => out.push((prefix.to_owned(), String::new())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_are_joined_and_lists_indexed() {
        let body = flatten_form(&json!({
            "event_metadata": {"time": "2026-01-01T00:00:00Z"},
            "user": {"id": 7, "active": true, "nick": null},
            "items": [{"name": "a b"}, {"name": "c&d"}]
        }))
        .unwrap();
        assert_eq!(
            body,
            "event_metadata_time=2026-01-01T00%3A00%3A00Z&user_id=7&user_active=true&user_nick=&items_0_name=a+b&items_1_name=c%26d"
        );
    }

    #[test]
    fn a_scalar_document_is_refused() {
        assert!(flatten_form(&json!([1, 2])).is_err());
    }
}
