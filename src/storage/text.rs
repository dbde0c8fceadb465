//! Reading text that came from application rows. A database can hold text that is not
//! valid UTF-8 (SQLite stores whatever bytes it is given; a PostgreSQL database with
//! `SQL_ASCII` encoding does too), and some SQLite versions write infinities into JSON
//! as tokens that are not JSON. None of that may stop a command: such text is read as
//! bytes and turned into a faithful, documented form (docs/capture.md, "Values that are not
//! plain JSON"):
//! - a byte that is not part of valid UTF-8 becomes `\xHH` (in JSON, a string holding
//!   a backslash, `x` and two hex digits);
//! - an infinity or NaN becomes the JSON string `"Infinity"`, `"-Infinity"` or `"NaN"`,
//!   the form PostgreSQL's `to_jsonb` uses.

use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::sql_types::{Nullable, Text};
use diesel::sqlite::Sqlite;

/// Text of an application row (a key, say); see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default, diesel::deserialize::FromSqlRow)]
pub struct RowText(pub String);

/// A nullable [`RowText`].
#[derive(Debug, Clone, PartialEq, Eq, Default, diesel::deserialize::FromSqlRow)]
pub struct OptionalRowText(pub Option<String>);

/// JSON made by a trigger from an application row; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default, diesel::deserialize::FromSqlRow)]
pub struct RowJson(pub String);

impl From<RowText> for String {
    fn from(text: RowText) -> String {
        text.0
    }
}

impl From<OptionalRowText> for Option<String> {
    fn from(text: OptionalRowText) -> Option<String> {
        text.0
    }
}

impl From<RowJson> for String {
    fn from(json: RowJson) -> String {
        json.0
    }
}

/// Text from bytes: valid UTF-8 as it is, any other byte as `\xHH`.
pub fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => escape_invalid(bytes, "\\x"),
    }
}

/// JSON text from bytes: invalid UTF-8 escaped inside strings (as `\\xHH`, so the
/// document stays valid JSON), infinities and NaN as strings.
pub fn decode_row_json(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !["Inf", "NaN", "e+999", "e999"]
            .iter()
            .any(|spelling| text.contains(spelling))
        {
            return text.to_owned();
        }
    }
    repair_json(bytes)
}

fn escape_invalid(bytes: &[u8], prefix: &str) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("{prefix}{byte:02x}"));
        }
    }
    out
}

/// The non-JSON spellings of special numbers that SQLite writes outside strings
/// (3.40 writes `Inf`; 3.42 and later `9.0e+999`), and what they become.
const SPECIAL_NUMBERS: [(&str, &str); 9] = [
    ("-Infinity", "\"-Infinity\""),
    ("Infinity", "\"Infinity\""),
    ("-Inf", "\"-Infinity\""),
    ("Inf", "\"Infinity\""),
    ("NaN", "\"NaN\""),
    ("-9.0e+999", "\"-Infinity\""),
    ("9.0e+999", "\"Infinity\""),
    ("-9e999", "\"-Infinity\""),
    ("9e999", "\"Infinity\""),
];

fn repair_json(bytes: &[u8]) -> String {
    let text = escape_invalid(bytes, "\\\\x");
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some((spelling, replacement)) =
            SPECIAL_NUMBERS.iter().find(|(spelling, _)| {
                rest.starts_with(spelling)
                    && !rest[spelling.len()..]
                        .starts_with(|n: char| n.is_ascii_alphanumeric() || n == '.')
            })
        {
            // Only where a value starts, not inside a longer number such as 19e999.
            if !out.ends_with(|p: char| p.is_ascii_digit() || p == '.') {
                out.push_str(replacement);
                rest = &rest[spelling.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl FromSql<Text, Sqlite> for RowText {
    fn from_sql(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        Ok(RowText(decode_text(value.read_blob())))
    }
}

impl FromSql<Text, Pg> for RowText {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
        Ok(RowText(decode_text(value.as_bytes())))
    }
}

impl FromSql<Text, Sqlite> for RowJson {
    fn from_sql(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        Ok(RowJson(decode_row_json(value.read_blob())))
    }
}

impl FromSql<Text, Pg> for RowJson {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
        Ok(RowJson(decode_row_json(value.as_bytes())))
    }
}

#[cfg(feature = "mysql")]
impl FromSql<Text, diesel::mysql::Mysql> for RowText {
    fn from_sql(value: diesel::mysql::MysqlValue<'_>) -> deserialize::Result<Self> {
        Ok(RowText(decode_text(value.as_bytes())))
    }
}

#[cfg(feature = "mysql")]
impl FromSql<Text, diesel::mysql::Mysql> for RowJson {
    fn from_sql(value: diesel::mysql::MysqlValue<'_>) -> deserialize::Result<Self> {
        Ok(RowJson(decode_row_json(value.as_bytes())))
    }
}

impl<DB: diesel::backend::Backend> FromSql<Nullable<Text>, DB> for OptionalRowText
where
    RowText: FromSql<Text, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(OptionalRowText(Some(RowText::from_sql(value)?.0)))
    }

    fn from_nullable_sql(value: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match value {
            Some(value) => Self::from_sql(value),
            None => Ok(OptionalRowText(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_becomes_escaped_bytes() {
        assert_eq!(decode_text(b"A\xffB"), "A\\xffB");
        assert_eq!(decode_text("Zoë".as_bytes()), "Zoë");
        let json = decode_row_json(b"{\"v\":\"A\xffB\",\"w\":\"\xc3\"}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["v"], "A\\xffB");
        assert_eq!(value["w"], "\\xc3");
    }

    #[test]
    fn infinities_become_strings_wherever_sqlite_wrote_them() {
        for (written, expected) in [
            (
                r#"{"x":Inf,"y":-Inf,"z":NaN}"#,
                r#"{"x":"Infinity","y":"-Infinity","z":"NaN"}"#,
            ),
            (
                r#"{"x":9.0e+999,"y":-9.0e+999}"#,
                r#"{"x":"Infinity","y":"-Infinity"}"#,
            ),
            (r#"[9e999,-9e999,1.5]"#, r#"["Infinity","-Infinity",1.5]"#),
            // Inside strings and inside longer numbers nothing changes.
            (
                r#"{"Inf":"NaN Inf 9e999","n":19e999}"#,
                r#"{"Inf":"NaN Inf 9e999","n":19e999}"#,
            ),
        ] {
            assert_eq!(decode_row_json(written.as_bytes()), expected);
        }
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let written = r#"{"s":"a \"Inf\" b","t":Inf}"#;
        assert_eq!(
            decode_row_json(written.as_bytes()),
            r#"{"s":"a \"Inf\" b","t":"Infinity"}"#
        );
    }
}
