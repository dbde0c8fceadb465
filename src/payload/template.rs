//! Templates (minijinja): `{{ instance.name }}` and friends, escaped for the content
//! type. In JSON, strings are escaped *without* adding quotes, so templates written the
//! infi way (`"{{ instance.name }}"`) stay valid whatever the value holds, and numbers,
//! booleans and null print as JSON literals.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::{Object, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

use super::explain::explain_undefined;
use super::ContentType;
use super::PayloadError;
use crate::storage::ColumnKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Escaping {
    Json,
    Xml,
    Plain,
}

impl From<ContentType> for Escaping {
    fn from(content_type: ContentType) -> Self {
        match content_type {
            // A form body is rendered as JSON first, then flattened.
            ContentType::Json | ContentType::Form => Escaping::Json,
            ContentType::Xml => Escaping::Xml,
            ContentType::Text => Escaping::Plain,
        }
    }
}

/// Renders templates, compiling each distinct template text once per run.
pub struct Renderer {
    environments: HashMap<Escaping, Environment<'static>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let environments = [Escaping::Json, Escaping::Xml, Escaping::Plain]
            .into_iter()
            .map(|escaping| (escaping, environment(escaping)))
            .collect();
        Renderer { environments }
    }

    /// Checks the template's syntax only.
    pub fn check_syntax(
        &mut self,
        template: &str,
        content_type: ContentType,
    ) -> Result<(), PayloadError> {
        self.compiled(template, content_type).map(|_| ())
    }

    /// Renders `template` with the variables `context` holds. `any_json` names the
    /// columns of a sample row whose JSON structure is unknown (see [`AnyJson`]).
    pub fn render(
        &mut self,
        template: &str,
        content_type: ContentType,
        context: &serde_json::Value,
        any_json: &[&str],
    ) -> Result<String, PayloadError> {
        let env = self.compiled(template, content_type)?;
        let compiled = env.get_template(template).map_err(|e| describe(&e))?;
        let variables = if any_json.is_empty() {
            json_value(context)
        } else {
            sample_context(context, any_json)
        };
        let rendered = compiled.render(variables).map_err(|e| {
            // Name the value that does not exist and what does, which the template
            // engine cannot: it only knows that something printed is undefined.
            let explained = (e.kind() == ErrorKind::UndefinedError)
                .then(|| e.range())
                .flatten()
                .and_then(|range| explain_undefined(template, range.start, context, any_json));
            match (explained, e.line()) {
                (Some(explained), Some(line)) => {
                    PayloadError::Template(format!("{explained} (template line {line})"))
                }
                (Some(explained), None) => PayloadError::Template(explained),
                (None, _) => describe(&e),
            }
        })?;
        Ok(match Escaping::from(content_type) {
            Escaping::Json => place_special_numbers(rendered),
            _ => rendered,
        })
    }

    fn compiled(
        &mut self,
        template: &str,
        content_type: ContentType,
    ) -> Result<&Environment<'static>, PayloadError> {
        let env = self
            .environments
            .get_mut(&content_type.into())
            .expect("one environment per escaping");
        if env.get_template(template).is_err() {
            env.add_template_owned(template.to_owned(), template.to_owned())
                .map_err(|e| describe(&e))?;
        }
        Ok(env)
    }
}

fn environment(escaping: Escaping) -> Environment<'static> {
    let mut env = Environment::new();
    // Printing a missing value is an error (a misspelt column must not send ""), while
    // `{% if old %}` still works.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_formatter(move |out, state, value| format_value(escaping, out, state, value));
    env
}

/// One sentence about a template error, with its line.
fn describe(error: &Error) -> PayloadError {
    let what = match error.kind() {
        ErrorKind::UndefinedError => "refers to a value that does not exist".to_owned(),
        ErrorKind::SyntaxError => "has a syntax error".to_owned(),
        // minijinja's own words are a noun phrase ("invalid operation").
        kind => format!("fails: {kind}"),
    };
    let mut message = format!("the template {what}");
    if let Some(detail) = error.detail() {
        message.push_str(&format!(" ({detail})"));
    }
    if let Some(line) = error.line() {
        message.push_str(&format!(" at line {line}"));
    }
    PayloadError::Template(message)
}

/// Encloses, in JSON output, a value that stands for a special number (see
/// [`place_special_numbers`]).
const SPECIAL: char = '\u{F8FF}';

/// Infinities and NaN reach templates as the strings `"Infinity"`, `"-Infinity"` and
/// `"NaN"` (the form of PostgreSQL's to_jsonb, and httphooks' for SQLite). Where a
/// template prints such a value as a number (`{{ instance.ratio }}`), it gets quotes,
/// so the document stays valid JSON; inside a JSON string it is printed as it is.
fn place_special_numbers(rendered: String) -> String {
    if !rendered.contains(SPECIAL) {
        return rendered;
    }
    let mut out = String::with_capacity(rendered.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = rendered.chars();
    while let Some(c) = chars.next() {
        if c == SPECIAL {
            let value: String = chars.by_ref().take_while(|&c| c != SPECIAL).collect();
            if in_string {
                out.push_str(&value);
            } else {
                out.push('"');
                out.push_str(&value);
                out.push('"');
            }
            continue;
        }
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ => {}
        }
        out.push(c);
    }
    out
}

fn json_string_contents(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn format_value(
    escaping: Escaping,
    out: &mut Output,
    _state: &State,
    value: &Value,
) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "a value printed by the template does not exist",
        ));
    }
    if value.downcast_object_ref::<AnyJson>().is_some() {
        return out.write_str(AnyJson::TEXT).map_err(Error::from);
    }
    let text = match (escaping, value.kind()) {
        (_, ValueKind::String) if value.is_safe() => value.to_string(),
        // minijinja prints booleans the Python way (True); every content type wants true.
        (_, ValueKind::Bool) => value.is_true().to_string(),
        (Escaping::Json, ValueKind::String) => match value.as_str().unwrap_or_default() {
            special @ ("Infinity" | "-Infinity" | "NaN") => format!("{SPECIAL}{special}{SPECIAL}"),
            text => json_string_contents(text),
        },
        (Escaping::Json, ValueKind::None) => "null".to_owned(),
        (Escaping::Json, ValueKind::Map | ValueKind::Seq) => serde_json::to_string(value)
            .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?,
        (Escaping::Json, _) => value.to_string(),
        (Escaping::Xml, ValueKind::None) | (Escaping::Plain, ValueKind::None) => String::new(),
        (Escaping::Xml, _) => xml_escape(&value.to_string()),
        (Escaping::Plain, _) => value.to_string(),
    };
    out.write_str(&text).map_err(Error::from)
}

/// Stands for a JSON column in a sample row: its structure is unknown, so any key
/// exists. It prints as `0`, which is valid JSON both inside quotes and outside.
#[derive(Debug)]
pub(super) struct AnyJson;

impl AnyJson {
    const TEXT: &'static str = "0";
}

impl Object for AnyJson {
    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_object(AnyJson))
    }
}

/// A JSON value as a template value. Numbers keep their exact digits: one that an
/// integer or an f64 holds exactly becomes that number, any other (a PostgreSQL
/// numeric beyond f64, `1.50` with its scale) prints exactly as it was written.
fn json_value(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let written = n.to_string();
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(exact) if exact.to_string() == written => {
                        Value::from(exact.as_f64().unwrap_or_default())
                    }
                    _ => Value::from_safe_string(written),
                }
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => items.iter().map(json_value).collect(),
        Json::Object(fields) => fields
            .iter()
            .map(|(k, v)| (k.as_str(), json_value(v)))
            .collect(),
    }
}

/// The variables for a sample event: JSON columns of `instance` and `old` become
/// [`AnyJson`], since their keys cannot be known in advance.
fn sample_context(context: &serde_json::Value, json_columns: &[&str]) -> Value {
    let Some(fields) = context.as_object() else {
        return json_value(context);
    };
    let vars: std::collections::BTreeMap<String, Value> = fields
        .iter()
        .map(|(key, value)| {
            let value = match (key.as_str(), value.as_object()) {
                ("instance" | "old", Some(row)) => {
                    let row: std::collections::BTreeMap<String, Value> = row
                        .iter()
                        .map(|(column, v)| {
                            let v = if json_columns.contains(&column.as_str()) {
                                Value::from_object(AnyJson)
                            } else {
                                json_value(v)
                            };
                            (column.clone(), v)
                        })
                        .collect();
                    Value::from(row)
                }
                _ => json_value(value),
            };
            (key.clone(), value)
        })
        .collect();
    Value::from(vars)
}

/// A typed sample value for a column, for validating templates.
pub fn sample_value(kind: ColumnKind) -> serde_json::Value {
    use serde_json::json;
    match kind {
        ColumnKind::Integer => json!(1),
        ColumnKind::Real => json!(1.5),
        ColumnKind::Boolean => json!(true),
        ColumnKind::Text => json!("sample \"text\"\nwith <markup> & unicode é"),
        ColumnKind::Timestamp => json!("2026-01-01T00:00:00Z"),
        ColumnKind::Blob => json!("00ff"),
        // Replaced by AnyJson in template contexts; see `sample_context`.
        ColumnKind::Json => json!({"sample": 1}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(
        template: &str,
        content_type: ContentType,
        context: serde_json::Value,
    ) -> Result<String, String> {
        Renderer::new()
            .render(template, content_type, &context, &[])
            .map_err(|e| e.to_string())
    }

    #[test]
    fn json_strings_are_escaped_without_quotes() {
        let out = render(
            r#"{"name": "{{ instance.name }}", "id": {{ instance.id }}, "ok": {{ instance.ok }}, "none": {{ instance.none }}}"#,
            ContentType::Json,
            json!({"instance": {"name": "a \"quoted\"\nline é", "id": 7, "ok": true, "none": null}}),
        )
        .unwrap();
        let parsed: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            parsed,
            json!({"name": "a \"quoted\"\nline é", "id": 7, "ok": true, "none": null})
        );
    }

    #[test]
    fn nested_json_columns_are_reachable() {
        let out = render(
            r#"{"n": "{{ instance.profile.name }}", "p": {{ instance.profile }}}"#,
            ContentType::Json,
            json!({"instance": {"profile": {"name": "Zoë"}}}),
        )
        .unwrap();
        assert_eq!(out, r#"{"n": "Zoë", "p": {"name":"Zoë"}}"#);
    }

    #[test]
    fn xml_values_are_escaped_for_xml() {
        let out = render(
            "<a>{{ instance.name }}</a>",
            ContentType::Xml,
            json!({"instance": {"name": "<b>&\"'"}}),
        )
        .unwrap();
        assert_eq!(out, "<a>&lt;b&gt;&amp;&quot;&apos;</a>");
    }

    #[test]
    fn a_missing_field_is_an_error_naming_the_line() {
        let error = render(
            "{\n\"x\": \"{{ instance.nope }}\"}",
            ContentType::Json,
            json!({"instance": {"id": 1}}),
        )
        .unwrap_err();
        assert_eq!(
            error,
            "instance.nope: instance has no key nope (keys: id) (template line 2)"
        );
    }

    #[test]
    fn a_failing_operation_is_one_sentence_naming_the_line() {
        let error = render(
            r#"{"x": {{ 10 // instance.z }}}"#,
            ContentType::Json,
            json!({"instance": {"z": 0}}),
        )
        .unwrap_err();
        assert!(
            error.starts_with("the template fails: invalid operation (")
                && error.ends_with(" at line 1"),
            "{error}"
        );
    }

    #[test]
    fn old_is_testable_when_absent() {
        let out = render(
            "{% if old %}{{ old.id }}{% else %}new{% endif %}",
            ContentType::Text,
            json!({"old": null}),
        )
        .unwrap();
        assert_eq!(out, "new");
    }

    #[test]
    fn json_columns_of_a_sample_accept_any_key() {
        let context = json!({"instance": {"profile": {}, "id": 1}});
        let out = Renderer::new()
            .render(
                r#"{"a": "{{ instance.profile.x.y }}", "b": {{ instance.profile }}}"#,
                ContentType::Json,
                &context,
                &["profile"],
            )
            .unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );
    }

    #[test]
    fn special_numbers_get_quotes_where_a_number_stands() {
        let out = render(
            r#"{"r": {{ instance.r }}, "s": "{{ instance.r }} and {{ instance.n }}", "n": [{{ instance.n }}]}"#,
            ContentType::Json,
            json!({"instance": {"r": "Infinity", "n": "NaN"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"r": "Infinity", "s": "Infinity and NaN", "n": ["NaN"]}"#
        );
    }

    #[test]
    fn numbers_print_with_their_exact_digits() {
        let context: serde_json::Value = serde_json::from_str(
            r#"{"instance": {"big": 123456789012345678901234567890.123456789, "huge": 1e400,
                "scaled": 1.50, "f": 0.1, "i": -7, "u": 18446744073709551615}}"#,
        )
        .unwrap();
        let out = render(
            "{{ instance.big }} {{ instance.huge }} {{ instance.scaled }} {{ instance.f }} {{ instance.i }} {{ instance.u }}",
            ContentType::Json,
            context,
        )
        .unwrap();
        assert_eq!(
            out,
            "123456789012345678901234567890.123456789 1e+400 1.50 0.1 -7 18446744073709551615"
        );
    }

    #[test]
    fn a_syntax_error_is_reported() {
        let error = Renderer::new()
            .check_syntax("{{ instance.name ", ContentType::Json)
            .unwrap_err();
        assert!(matches!(error, PayloadError::Template(_)), "{error:?}");
        assert!(error.to_string().contains("syntax error"), "{error}");
    }
}
