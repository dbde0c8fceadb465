//! Payloads: what a callback's body says (docs/behaviour.md §3). Templates render with escaping for
//! the content type; the result is checked to be a well-formed document and encoded.

use chrono::{NaiveDateTime, SecondsFormat};
use serde_json::{json, Map, Value};

mod explain;
mod form;
pub mod size;
mod template;
mod xml;

pub use form::flatten_form;
pub use template::{sample_value, Renderer};

use crate::storage::Column;

/// Why a callback's body could not be made; the message is one sentence for the user.
/// Hook validation refuses the hook with it; a run records it on the callback, which
/// no retry would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The stored event data is not the JSON httphooks stores (edited by hand).
    StoredData(String),
    /// The template does not parse, or fails against this event.
    Template(String),
    /// What was made is not a valid document for the content type, or cannot be encoded.
    Document(String),
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::StoredData(message)
            | PayloadError::Template(message)
            | PayloadError::Document(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PayloadError {}

/// The content types a hook may send, each with its own escaping and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Json,
    Xml,
    Form,
    Text,
}

impl ContentType {
    pub const ALLOWED: &'static str =
        "application/json, application/xml, application/x-www-form-urlencoded or text/plain";

    /// Accepts the media type with optional parameters (`; charset=utf-8`).
    pub fn parse(content_type: &str) -> Option<ContentType> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json" => Some(ContentType::Json),
            "application/xml" | "text/xml" => Some(ContentType::Xml),
            "application/x-www-form-urlencoded" => Some(ContentType::Form),
            "text/plain" => Some(ContentType::Text),
            _ => None,
        }
    }
}

/// Everything a payload can refer to for one callback.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub event_type: String,
    pub table: Option<String>,
    pub hook: String,
    pub callback_id: i64,
    pub object_id: Option<String>,
    pub occurred_at: NaiveDateTime,
    /// The new row, or the deleted row for delete.
    pub instance: Option<Value>,
    /// The row before an update or delete.
    pub old: Option<Value>,
    /// A custom event's data.
    pub data: Option<Value>,
}

impl EventContext {
    /// Builds the context from a callback's stored `event_data`.
    pub fn from_stored(
        event_data: &str,
        event_type: &str,
        table: Option<&str>,
        hook: &str,
        callback_id: i64,
        object_id: Option<&str>,
        occurred_at: NaiveDateTime,
    ) -> Result<EventContext, PayloadError> {
        let stored: Value = serde_json::from_str(event_data).map_err(|e| {
            PayloadError::StoredData(format!("the stored event data is not JSON ({e})"))
        })?;
        // Fields are moved out of the parsed document, not cloned: a row is copied only
        // where a delete's old row is its instance.
        let mut stored = match stored {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        let mut field = |name: &str| stored.remove(name).filter(|v| !v.is_null());
        let instance = field("instance");
        // A delete's old row is the deleted row, stored once (as `instance`).
        let old = match event_type {
            "delete" => field("old").or_else(|| instance.clone()),
            _ => field("old"),
        };
        Ok(EventContext {
            event_type: event_type.to_owned(),
            table: table.map(str::to_owned),
            hook: hook.to_owned(),
            callback_id,
            object_id: object_id.map(str::to_owned),
            occurred_at,
            instance,
            old,
            data: field("data"),
        })
    }

    /// A synthetic event with a typed value in every column, for validating templates.
    /// A truncate has no row.
    pub fn sample(hook: &str, table: &str, event_type: &str, columns: &[Column]) -> EventContext {
        let row: Map<String, Value> = columns
            .iter()
            .map(|c| (c.name.clone(), sample_value(c.kind)))
            .collect();
        let row = Some(Value::Object(row)).filter(|_| event_type != "truncate");
        EventContext {
            event_type: event_type.to_owned(),
            table: Some(table.to_owned()),
            hook: hook.to_owned(),
            callback_id: 1,
            object_id: row.as_ref().map(|_| "1".to_owned()),
            occurred_at: chrono::Utc::now().naive_utc(),
            instance: row.clone(),
            old: row.filter(|_| event_type != "insert"),
            data: None,
        }
    }

    /// A custom event with its data, as `enqueue` makes it (the callback id is not
    /// known yet).
    pub fn custom(hook: &str, event_type: &str, data: Value) -> EventContext {
        EventContext {
            event_type: event_type.to_owned(),
            table: None,
            hook: hook.to_owned(),
            callback_id: 0,
            object_id: None,
            occurred_at: chrono::Utc::now().naive_utc(),
            instance: None,
            old: None,
            data: Some(data),
        }
    }

    pub fn time_rfc3339(&self) -> String {
        self.occurred_at
            .and_utc()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The body sent when a hook has no template, as a document.
    pub fn default_payload(&self) -> Value {
        serde_json::to_value(self.default_fields()).expect("a payload serializes")
    }

    /// The default payload's fields, borrowing the rows: written straight to JSON text,
    /// a row of megabytes is not copied on the way.
    fn default_fields(&self) -> DefaultPayload<'_> {
        DefaultPayload {
            event_type: &self.event_type,
            object_type: self.table.as_deref(),
            object_id: self.object_id.as_deref(),
            object_serialization: self.instance.as_ref(),
            old_object_serialization: self.old.as_ref(),
            data: self.data.as_ref(),
            event_metadata: EventMetadata {
                event_type: &self.event_type,
                time: self.time_rfc3339(),
                hook: &self.hook,
                callback_id: self.callback_id,
            },
        }
    }

    /// The variables a template sees.
    pub fn template_context(&self) -> Value {
        json!({
            "instance": self.instance,
            "old": self.old,
            "data": self.data,
            "event_type": self.event_type,
            "table": self.table,
            "hook": self.hook,
            "callback_id": self.callback_id,
            "object_id": self.object_id,
            "occurred_at": self.time_rfc3339(),
        })
    }
}

/// The default payload (docs/behaviour.md §3), its fields in this order.
#[derive(serde::Serialize)]
struct DefaultPayload<'a> {
    event_type: &'a str,
    object_type: Option<&'a str>,
    object_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_serialization: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_object_serialization: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    event_metadata: EventMetadata<'a>,
}

#[derive(serde::Serialize)]
struct EventMetadata<'a> {
    event_type: &'a str,
    time: String,
    hook: &'a str,
    callback_id: i64,
}

/// Renders a callback's body: the template (or the default payload), checked to be a
/// valid document for the content type, then encoded for the wire.
pub fn render_body(
    renderer: &mut Renderer,
    template: Option<&str>,
    content_type: ContentType,
    context: &EventContext,
) -> Result<String, PayloadError> {
    let document = match template {
        Some(template) => {
            renderer.render(template, content_type, &context.template_context(), &[])?
        }
        None => return default_body(content_type, context),
    };
    encode(document, content_type)
}

/// Renders a table hook's template (or default payload) against a sample row of
/// `columns` for each of its `events`, as hook validation and the capture checks do.
/// Returns the first event that fails, with why.
pub fn check_against_columns(
    renderer: &mut Renderer,
    template: Option<&str>,
    content_type: ContentType,
    hook: &str,
    table: &str,
    events: &[String],
    columns: &[Column],
) -> Result<(), (String, PayloadError)> {
    for event in events {
        let sample = EventContext::sample(hook, table, event, columns);
        render_sample(renderer, template, content_type, &sample, columns)
            .map_err(|problem| (event.clone(), problem))?;
    }
    Ok(())
}

/// Renders a template against a sample event, as hook validation does. Columns of
/// kind JSON accept any nested key.
pub fn render_sample(
    renderer: &mut Renderer,
    template: Option<&str>,
    content_type: ContentType,
    context: &EventContext,
    columns: &[Column],
) -> Result<String, PayloadError> {
    let json_columns: Vec<&str> = columns
        .iter()
        .filter(|c| c.kind == crate::storage::ColumnKind::Json)
        .map(|c| c.name.as_str())
        .collect();
    let document = match template {
        Some(template) => renderer.render(
            template,
            content_type,
            &context.template_context(),
            &json_columns,
        )?,
        None => return default_body(content_type, context),
    };
    encode(document, content_type)
}

/// The default payload, encoded for the content type. Made by serializing, so it is
/// valid JSON without parsing it again (a row may be megabytes).
fn default_body(content_type: ContentType, context: &EventContext) -> Result<String, PayloadError> {
    match content_type {
        ContentType::Xml => Err(PayloadError::Document(
            "an application/xml hook needs a template, since the default payload is JSON"
                .to_owned(),
        )),
        ContentType::Form => flatten_form(&context.default_payload()),
        ContentType::Json | ContentType::Text => {
            Ok(serde_json::to_string(&context.default_fields()).expect("a payload serializes"))
        }
    }
}

fn encode(document: String, content_type: ContentType) -> Result<String, PayloadError> {
    check_document(&document, content_type)?;
    match content_type {
        ContentType::Form => {
            let value: Value = serde_json::from_str(&document)
                .map_err(|e| PayloadError::Document(format!("not valid JSON: {e}")))?;
            flatten_form(&value)
        }
        _ => Ok(document),
    }
}

/// Checks that a rendered document is well-formed for its content type.
pub fn check_document(document: &str, content_type: ContentType) -> Result<(), PayloadError> {
    match content_type {
        ContentType::Json | ContentType::Form => serde_json::from_str::<Value>(document)
            .map(|_| ())
            .map_err(|e| {
                PayloadError::Document(format!(
                    "the rendered template is not valid JSON ({e}), here: {}",
                    explain::around(document, e.line(), e.column())
                ))
            }),
        ContentType::Xml => xml::check_well_formed(document).map_err(|e| {
            PayloadError::Document(format!(
                "the rendered template is not well-formed XML ({e})"
            ))
        }),
        ContentType::Text => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(event_data: &str, event_type: &str) -> Result<EventContext, PayloadError> {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc();
        EventContext::from_stored(event_data, event_type, Some("t"), "h", 7, Some("1"), at)
    }

    #[test]
    fn stored_event_data_gives_each_row_its_place() {
        let update = stored(
            r#"{"instance":{"q":4},"old":{"q":3},"data":null}"#,
            "update",
        )
        .unwrap();
        assert_eq!(update.instance, Some(json!({"q": 4})));
        assert_eq!(update.old, Some(json!({"q": 3})));
        assert_eq!(update.data, None, "a null field is no field");

        // A delete stores the deleted row once, as its instance: it is the old row too.
        let delete = stored(r#"{"instance":{"q":3}}"#, "delete").unwrap();
        assert_eq!(delete.instance, Some(json!({"q": 3})));
        assert_eq!(delete.old, delete.instance);
        let insert = stored(r#"{"instance":{"q":3}}"#, "insert").unwrap();
        assert_eq!(insert.old, None);

        let custom = stored(r#"{"data":[1,{"a":"b"}]}"#, "paid").unwrap();
        assert_eq!(custom.data, Some(json!([1, {"a": "b"}])));
        assert_eq!((custom.instance, custom.old), (None, None));

        let not_an_object = stored("[1,2]", "insert").unwrap();
        assert_eq!(
            (
                not_an_object.instance,
                not_an_object.old,
                not_an_object.data
            ),
            (None, None, None)
        );
        assert!(matches!(
            stored("{not json", "insert"),
            Err(PayloadError::StoredData(_))
        ));
    }
}
