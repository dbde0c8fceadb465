//! Hook headers: parsed and validated when a hook is saved, with `${VAR}` references
//! resolved from the environment only at send time, so secrets never enter the database.

use serde_json::{Map, Value};

/// Headers httphooks sets itself; a hook may not set them.
const RESERVED: [&str; 6] = [
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "user-agent",
];

/// Headers whose values are always hidden in records and output.
const SENSITIVE: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "webhook-signature",
    "x-api-key",
];

pub const REDACTED: &str = "[redacted]";

/// One header as sent, and whether its value must be hidden in records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

impl Header {
    pub fn new(name: &str, value: impl Into<String>) -> Header {
        Header {
            name: name.to_owned(),
            value: value.into(),
            secret: false,
        }
    }

    /// A header whose value never appears in records or output.
    pub fn secret(name: &str, value: impl Into<String>) -> Header {
        Header {
            name: name.to_owned(),
            value: value.into(),
            secret: true,
        }
    }

    /// The value as records and output show it.
    pub fn shown_value(&self) -> &str {
        if self.secret || SENSITIVE.contains(&self.name.to_ascii_lowercase().as_str()) {
            REDACTED
        } else {
            &self.value
        }
    }
}

/// A response's headers as records and output show them: cookies a receiver sets, and
/// any other header named in [`SENSITIVE`], replaced.
pub fn shown_response_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = Header::new(name, value.as_str()).shown_value().to_owned();
            (name.clone(), shown)
        })
        .collect()
}

/// Parses `--header` arguments: each is one `Name: value`, or a JSON object of them.
/// Returns the headers as the JSON object text that hooks store. A line break inside
/// an argument is refused, not split: it would smuggle in another header.
pub fn parse_header_args(args: &[String]) -> Result<String, String> {
    let mut headers = Map::new();
    for arg in args {
        let trimmed = arg.trim();
        if trimmed.starts_with('{') {
            let object: Map<String, Value> = serde_json::from_str(trimmed)
                .map_err(|e| format!("headers given as JSON must be an object of strings ({e})"))?;
            for (name, value) in object {
                let Value::String(value) = value else {
                    return Err(format!(
                        "header {name:?} must have a string value; quote it in the JSON object"
                    ));
                };
                check_header(&name, &value)?;
                headers.insert(name, Value::String(value));
            }
            continue;
        }
        let (name, value) = trimmed
            .split_once(':')
            .ok_or_else(|| format!("header {trimmed:?} must be written as 'Name: value'"))?;
        let (name, value) = (name.trim(), value.trim());
        check_header(name, value)?;
        headers.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    Ok(Value::Object(headers).to_string())
}

/// Warnings for values that say `$VAR` without braces: sent literally, which is rarely
/// what was meant (`${VAR}` reads the environment).
pub fn literal_dollar_warnings(stored: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, value) in stored_pairs(stored) {
        let mut rest = value.as_str();
        while let Some(at) = rest.find('$') {
            let after = &rest[at + 1..];
            let variable: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !variable.is_empty() && !variable.starts_with(|c: char| c.is_ascii_digit()) {
                warnings.push(format!(
                    "the value of header {name} holds ${variable}, which is sent literally; write ${{{variable}}} to read the environment variable at send time"
                ));
            }
            rest = after;
        }
    }
    warnings
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(format!(
            "{name:?} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        return Err(format!(
            "header {name} is set by httphooks itself; remove it from the hook"
        ));
    }
    if lower == "content-type" {
        return Err("set the content type with --content-type, not as a header".to_owned());
    }
    if value.chars().any(|c| c == '\r' || c == '\n') {
        return Err(format!(
            "the value of header {name} holds a line break (CR or LF), which would start another header; remove it and give each header its own --header"
        ));
    }
    // What the HTTP client itself refuses (other control characters): refused now,
    // not at every attempt.
    if ureq::http::HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value of header {name} holds a control character the HTTP client cannot send; remove it"
        ));
    }
    env_references(value).map(|_| ())
}

/// The variable names a value refers to as `${VAR}`.
pub fn env_references(value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{value:?} has an unclosed ${{ reference; write ${{VAR}}"))?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "${{{name}}} is not a valid environment variable reference"
            ));
        }
        names.push(name.to_owned());
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// A header value that names an environment variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariable(pub String);

/// The stored headers with `${VAR}` resolved from the environment; values that used
/// the environment are marked secret.
pub fn resolve(stored: &str) -> Result<Vec<Header>, MissingVariable> {
    let object: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    let mut headers = Vec::with_capacity(object.len());
    for (name, value) in object {
        let value = value.as_str().unwrap_or_default();
        let references = env_references(value).unwrap_or_default();
        let mut resolved = value.to_owned();
        for variable in &references {
            let secret = std::env::var(variable).map_err(|_| MissingVariable(variable.clone()))?;
            resolved = resolved.replace(&format!("${{{variable}}}"), &secret);
        }
        headers.push(Header {
            name,
            value: resolved,
            secret: !references.is_empty(),
        });
    }
    Ok(headers)
}

/// The stored headers as shown to operators: `${VAR}` references stay as written.
pub fn stored_pairs(stored: &str) -> Vec<(String, String)> {
    let object: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    object
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_headers_and_json_objects_are_accepted() {
        let stored = parse_header_args(&[
            "X-One: 1".into(),
            "X-Two: a: b".into(),
            r#"{"X-Three": "${TOKEN}"}"#.into(),
        ])
        .unwrap();
        assert_eq!(
            stored,
            r#"{"X-One":"1","X-Two":"a: b","X-Three":"${TOKEN}"}"#
        );
    }

    #[test]
    fn bad_headers_are_refused() {
        for bad in [
            "No colon",
            "Bad Name: x",
            "Content-Length: 5",
            "X: ${1BAD}",
            "X: ${OPEN",
            "Content-Type: a/b",
            "X-A: one\r\nX-Injected: two",
            "X-A: one\nX-Injected: two",
            "X-A: bell\u{7}",
            "X-\u{e9}: accented name",
        ] {
            assert!(parse_header_args(&[bad.into()]).is_err(), "{bad} passed");
        }
        assert!(parse_header_args(&[r#"{"X": "a\r\nInjected: 1"}"#.into()]).is_err());
    }

    #[test]
    fn a_dollar_without_braces_is_warned_about() {
        let stored = parse_header_args(&["Authorization: Bearer $TOKEN".into()]).unwrap();
        let warnings = literal_dollar_warnings(&stored);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("${TOKEN}"), "{}", warnings[0]);
        let stored = parse_header_args(&["X: ${TOKEN} costs $5".into()]).unwrap();
        assert!(literal_dollar_warnings(&stored).is_empty());
    }

    #[test]
    fn environment_references_resolve_at_send_time_and_are_secret() {
        std::env::set_var("HTTPHOOKS_UNIT_TOKEN", "s3cret");
        let headers =
            resolve(r#"{"Authorization":"Bearer ${HTTPHOOKS_UNIT_TOKEN}","X-Plain":"p"}"#).unwrap();
        assert_eq!(headers[0].value, "Bearer s3cret");
        assert_eq!(headers[0].shown_value(), REDACTED);
        assert_eq!(headers[1].shown_value(), "p");
        let missing = resolve(r#"{"X":"${HTTPHOOKS_UNIT_SURELY_UNSET}"}"#).unwrap_err();
        assert_eq!(
            missing,
            MissingVariable("HTTPHOOKS_UNIT_SURELY_UNSET".into())
        );
    }
}
