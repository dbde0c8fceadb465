//! What a template error means for the person who wrote the template: which value does
//! not exist and what exists in its place, or where a rendered document goes wrong.

use serde_json::Value;

/// For a value that does not exist, raised at byte `at` of `source`: the first dotted
/// path of the tag around it that does not resolve in `context`, and what exists there,
/// e.g. `instance.idd: the row has no column idd (the row of table orders holds: id,
/// customer, total)`: the row a change saved, which may not have the table's columns of
/// today.
/// `any_json` columns of `instance`/`old` accept any key. None when no path explains it.
pub fn explain_undefined(
    source: &str,
    at: usize,
    context: &Value,
    any_json: &[&str],
) -> Option<String> {
    let tag = tag_around(source, at)?;
    let local = local_names(source);
    paths(tag)
        .into_iter()
        .filter(|path| !local.contains(&path[0]))
        .find_map(|path| missing(&path, context, any_json))
}

/// The `{{ … }}` or `{% … %}` tag that holds byte `at`.
fn tag_around(source: &str, at: usize) -> Option<&str> {
    let at = (0..=at.min(source.len()))
        .rev()
        .find(|i| source.is_char_boundary(*i))?;
    let head = &source[..at];
    let start = head.rfind("{{").max(head.rfind("{%"))?;
    let end = source[start..]
        .find("}}")
        .into_iter()
        .chain(source[start..].find("%}"))
        .min()
        .map_or(source.len(), |e| start + e + 2);
    Some(&source[start..end])
}

/// Names the template defines itself (`{% for x in … %}`, `{% set x = … %}`), which the
/// context cannot explain.
fn local_names(source: &str) -> Vec<String> {
    let words: Vec<&str> = source
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|pair| matches!(pair[0], "for" | "set" | "macro"))
        .map(|pair| pair[1].to_owned())
        .collect()
}

const KEYWORDS: [&str; 17] = [
    "if", "elif", "else", "endif", "for", "endfor", "in", "not", "and", "or", "is", "true",
    "false", "none", "True", "False", "None",
];

/// The dotted paths a tag reads (`instance.profile.name`), leaving out string
/// literals, keywords, filters (`| upper`), tests (`is defined`) and calls.
fn paths(tag: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = tag.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let mut previous = ' ';
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            i += 1;
            previous = c;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut path = Vec::new();
            loop {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                path.push(chars[start..i].iter().collect::<String>());
                if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_alphabetic() {
                    i += 1;
                } else {
                    break;
                }
            }
            let called = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
            let after_word = tag[..]
                .chars()
                .take(i)
                .collect::<String>()
                .trim_end_matches(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
                .trim_end()
                .ends_with(" is");
            if previous != '|' && !called && !after_word && !KEYWORDS.contains(&path[0].as_str()) {
                found.push(path);
            }
            previous = 'a';
            continue;
        }
        if !c.is_whitespace() {
            previous = c;
        }
        i += 1;
    }
    found
}

/// Why `path` does not resolve in `context`, or None when it does.
fn missing(path: &[String], context: &Value, any_json: &[&str]) -> Option<String> {
    let full = path.join(".");
    let Some(mut value) = context.get(&path[0]) else {
        return Some(format!(
            "{full}: there is no value {} (values: {})",
            path[0],
            keys(context)
        ));
    };
    for (depth, segment) in path.iter().enumerate().skip(1) {
        let prefix = path[..depth].join(".");
        let row = matches!(path[0].as_str(), "instance" | "old");
        if row && depth == 2 && any_json.contains(&path[1].as_str()) {
            return None;
        }
        value = match value {
            Value::Object(fields) => match fields.get(segment) {
                Some(next) => next,
                None if row && depth == 1 && table_of(context).is_some() => {
                    let table = table_of(context).unwrap_or_default();
                    return Some(format!(
                        "{full}: the row has no column {segment} (the row of table {table} holds: {})",
                        keys(value)
                    ));
                }
                None if prefix == "data" => {
                    return Some(format!(
                        "{full}: the event data has no key {segment} (keys: {})",
                        keys(value)
                    ))
                }
                None => {
                    return Some(format!(
                        "{full}: {prefix} has no key {segment} (keys: {})",
                        keys(value)
                    ))
                }
            },
            Value::Null => {
                let event = context.get("event_type").and_then(Value::as_str);
                return Some(format!(
                    "{full}: {prefix} is empty{}; test it first with {{% if {prefix} %}}",
                    event
                        .map(|e| format!(" for {e} events"))
                        .unwrap_or_default()
                ));
            }
            _ => {
                return Some(format!(
                    "{full}: {prefix} is a single value, not an object with key {segment}"
                ))
            }
        };
    }
    None
}

fn table_of(context: &Value) -> Option<&str> {
    context
        .get("table")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

fn keys(value: &Value) -> String {
    match value.as_object() {
        Some(fields) if !fields.is_empty() => fields
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".to_owned(),
    }
}

/// The rendered text around (`line`, `column`), both 1-based, with `>>>` where the
/// problem was found, on one line: what the template made, not what it says.
pub fn around(document: &str, line: usize, column: usize) -> String {
    const SPAN: usize = 40;
    let line_start: usize = document
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let mut at = (line_start + column.saturating_sub(1)).min(document.len());
    while !document.is_char_boundary(at) {
        at -= 1;
    }
    let before: String = document[..at]
        .chars()
        .rev()
        .take(SPAN)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after: String = document[at..].chars().take(SPAN).collect();
    let cut_before = if before.len() < at { "…" } else { "" };
    let cut_after = if at + after.len() < document.len() {
        "…"
    } else {
        ""
    };
    format!("{cut_before}{before}>>>{after}{cut_after}").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({"instance": {"id": 1, "customer": "x", "total": 2, "meta": {}}, "old": null,
               "data": {"score": 1}, "event_type": "insert", "table": "orders"})
    }

    #[test]
    fn the_missing_value_and_what_exists_are_named() {
        let cases = [
            (
                "{{ instance.idd }}",
                "instance.idd: the row has no column idd (the row of table orders holds: id, customer, total, meta)",
            ),
            (
                "{{ instance.idd | upper }}",
                "instance.idd: the row has no column idd",
            ),
            (
                "{{ data.user.name }}",
                "data.user.name: the event data has no key user (keys: score)",
            ),
            (
                "{{ old.id }}",
                "old.id: old is empty for insert events; test it first with {% if old %}",
            ),
            (
                "{{ nope }}",
                "nope: there is no value nope (values: instance, old, data, event_type, table)",
            ),
            (
                "{% for x in [1] %}{{ x.y }}{{ instance.id.z }}{% endfor %}",
                "instance.id.z: instance.id is a single value",
            ),
        ];
        for (template, expected) in cases {
            let at = template.rfind("}}").unwrap() - 1;
            let explained = explain_undefined(template, at, &context(), &[]).unwrap();
            assert!(explained.starts_with(expected), "{template}: {explained}");
        }
        assert_eq!(
            explain_undefined("{{ instance.meta.x }}", 5, &context(), &["meta"]),
            None
        );
    }

    #[test]
    fn the_rendered_text_around_an_error_is_shown() {
        let document = "{\"id\": 1 \"x\": 2}";
        let error = serde_json::from_str::<Value>(document).unwrap_err();
        assert_eq!(
            around(document, error.line(), error.column()),
            "{\"id\": 1 >>>\"x\": 2}"
        );
    }
}
