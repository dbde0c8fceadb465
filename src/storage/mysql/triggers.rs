//! MySQL's capture triggers: the SQL that turns a row into JSON inside a trigger
//! without ever failing the application's write, and what no trigger sees (changes
//! made by foreign-key actions).

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::MysqlConnection;

use super::{quote_ident, quote_literal, MAX_IDENTIFIER};
use crate::error::Result;
use crate::storage::{primary_key, Column, ColumnKind, Table, TableEvent, Watched};

/// `httphooks_<table>_<event>`, shortened with a hash of the table's name where that
/// would exceed MySQL's 64 characters.
pub(super) fn trigger_name(table: &str, event: TableEvent) -> String {
    let name = format!("httphooks_{table}_{event}");
    if name.len() <= MAX_IDENTIFIER {
        return name;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = table.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let mut end = 30;
    while !table.is_char_boundary(end) {
        end -= 1;
    }
    format!("httphooks_{}_{:08x}_{event}", &table[..end], hash as u32)
}

/// A JSON value for one column of `row` (NEW or OLD): JSON columns embedded as JSON,
/// booleans as true/false, binary strings as hex (JSON has no bytes), the rest as
/// JSON_OBJECT makes them.
fn column_value(row: &str, column: &Column) -> String {
    let c = format!("{row}.{}", quote_ident(&column.name));
    match column.kind {
        ColumnKind::Json => format!("JSON_EXTRACT({c}, '$')"),
        ColumnKind::Boolean => {
            format!("IF({c} IS NULL, NULL, JSON_EXTRACT(IF({c}, 'true', 'false'), '$'))")
        }
        ColumnKind::Blob => format!("HEX({c})"),
        _ => c,
    }
}

pub(super) fn row_json(row: &str, columns: &[Column]) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("{}, {}", quote_literal(&c.name), column_value(row, c)))
        .collect();
    format!("JSON_OBJECT({})", pairs.join(", "))
}

/// The row's key as text, the same on every backend: the value of a one-column key;
/// for several columns a compact JSON array (`[1,"a"]`, as SQLite's json_array()
/// writes it; MySQL's JSON_ARRAY() adds spaces). NULL for a table without a key.
pub(super) fn object_id(row: &str, columns: &[Column]) -> String {
    let keys = primary_key(columns);
    let part = |key: &Column| {
        let c = format!("{row}.{}", quote_ident(&key.name));
        match key.kind {
            ColumnKind::Integer | ColumnKind::Real | ColumnKind::Boolean => {
                format!("COALESCE(CAST({c} AS CHAR), 'null')")
            }
            ColumnKind::Blob => format!("COALESCE(JSON_QUOTE(HEX({c})), 'null')"),
            _ => format!("COALESCE(JSON_QUOTE(CAST({c} AS CHAR)), 'null')"),
        }
    };
    match keys.as_slice() {
        [] => "NULL".to_owned(),
        [key] if key.kind == ColumnKind::Blob => format!("HEX({row}.{})", quote_ident(&key.name)),
        [key] => format!("{row}.{}", quote_ident(&key.name)),
        keys => {
            let parts: Vec<String> = keys.iter().map(|k| part(k)).collect();
            format!("CONCAT('[', {}, ']')", parts.join(", ',', "))
        }
    }
}

/// One trigger: its name, event and body (the body is what information_schema shows
/// as ACTION_STATEMENT, so `capture_state` compares it).
pub(super) struct Trigger {
    pub(super) name: String,
    pub(super) event: TableEvent,
    pub(super) body: String,
}

/// JSON escaping makes text at most six times as long (a control character becomes
/// `\u00XX`), HEX makes binary strings twice as long; a number, date or boolean takes
/// at most this much, and every column its quoted name and punctuation besides.
const TEXT_GROWTH: usize = 6;
const BINARY_GROWTH: usize = 2;
const SMALL_VALUE: usize = 64;

/// An upper bound of how long `row_json(row, columns)` can be, as SQL. A JSON function
/// whose result would exceed max_allowed_packet fails the application's write, and
/// MariaDB then returns NULL from that function in the cached trigger for every later
/// row until the table leaves the table cache (its NULL flag is never cleared), so
/// every later write to the table failed too: the triggers never call it when this
/// bound exceeds max_allowed_packet.
fn json_bound(row: &str, columns: &[Column]) -> String {
    let mut fixed = 2;
    let mut parts = Vec::new();
    for column in columns {
        fixed += column.name.len() * TEXT_GROWTH + 4;
        let c = format!("{row}.{}", quote_ident(&column.name));
        match column.kind {
            ColumnKind::Text | ColumnKind::Json => {
                parts.push(format!("{TEXT_GROWTH} * COALESCE(LENGTH({c}), 0)"))
            }
            ColumnKind::Blob => parts.push(format!("{BINARY_GROWTH} * COALESCE(LENGTH({c}), 0)")),
            _ => fixed += SMALL_VALUE,
        }
    }
    parts.push(fixed.to_string());
    parts.join(" + ")
}

/// The text and binary bytes of `row`, for the message about a row too large.
fn row_bytes(row: &str, columns: &[Column]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .filter(|c| {
            matches!(
                c.kind,
                ColumnKind::Text | ColumnKind::Json | ColumnKind::Blob
            )
        })
        .map(|c| format!("COALESCE(LENGTH({row}.{}), 0)", quote_ident(&c.name)))
        .collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(" + ")
    }
}

/// A trigger per event the enabled hooks listen to; an update trigger records only
/// when a watched column changed (`watched.update_columns`), and none is made when no
/// watched column exists. A row too large to turn into JSON safely (see [`json_bound`])
/// is recorded with the reason instead, which admission turns into a failed callback.
pub(super) fn triggers(table: &Table, watched: &Watched) -> Vec<Trigger> {
    let columns = &table.columns;
    TableEvent::ROW
        .into_iter()
        .filter(|event| watched.events.contains(event))
        .filter_map(|event| {
            let row = if event == TableEvent::Delete { "OLD" } else { "NEW" };
            let (old_row, bound, bytes) = if event == TableEvent::Update {
                (
                    row_json("OLD", columns),
                    format!("{} + {}", json_bound("NEW", columns), json_bound("OLD", columns)),
                    format!("{} + {}", row_bytes("NEW", columns), row_bytes("OLD", columns)),
                )
            } else {
                ("NULL".to_owned(), json_bound(row, columns), row_bytes(row, columns))
            };
            let insert = |row_data: &str, old_row: &str, problem: &str| {
                format!(
                    "INSERT INTO httphooks_new_callbacks \
                     (table_name, event_type, object_id, row_data, old_row_data, problem, created_at) \
                     VALUES ({table}, '{event}', {object_id}, {row_data}, {old_row}, {problem}, UTC_TIMESTAMP(6))",
                    table = quote_literal(&table.name),
                    object_id = object_id(row, columns),
                )
            };
            let captured = insert(&row_json(row, columns), &old_row, "NULL");
            let too_large = insert(
                "'null'",
                "NULL",
                &format!(
                    "CONCAT('the change holds ', {bytes}, ' bytes of text and binary values, more than \
                     MySQL can turn into JSON in a trigger with max_allowed_packet = ', \
                     @@max_allowed_packet, ' (text counts six times, binary twice); raise \
                     max_allowed_packet on the server to capture such rows')"
                ),
            );
            // Whatever else stops the JSON (a value it cannot hold as text, a function
            // MariaDB's table cache left failing) must not fail the application's write:
            // the change is recorded as not captured, saying why.
            let failed = insert(
                "'null'",
                "NULL",
                "CONCAT('the trigger could not turn the row into JSON (', message, '); the \
                 application''s write went through without its change; if every change of the \
                 table fails so, run FLUSH TABLES on it (MariaDB keeps a failed JSON function in \
                 its table cache)')",
            );
            let handler = format!(
                "DECLARE EXIT HANDLER FOR 1048, 1301, 1366 BEGIN DECLARE message TEXT; \
                 GET DIAGNOSTICS CONDITION 1 message = MESSAGE_TEXT; {failed}; END;"
            );
            let guarded = format!(
                "IF {bound} <= @@max_allowed_packet THEN {captured}; ELSE {too_large}; END IF;"
            );
            let tests = watched.update_tests(columns, |name| {
                let q = quote_ident(name);
                format!("NOT (OLD.{q} <=> NEW.{q})")
            });
            let body = match (tests, event) {
                (Some(tests), TableEvent::Update) => {
                    if tests.is_empty() {
                        return None;
                    }
                    format!(
                        "BEGIN {handler} IF {} THEN {guarded} END IF; END",
                        tests.join(" OR ")
                    )
                }
                _ => format!("BEGIN {handler} {guarded} END"),
            };
            Some(Trigger {
                name: trigger_name(&table.name, event),
                event,
                body,
            })
        })
        .collect()
}

pub(super) fn trigger_sql(table: &Table, watched: &Watched) -> Vec<String> {
    triggers(table, watched)
        .into_iter()
        .map(|t| {
            format!(
                "CREATE TRIGGER {} AFTER {} ON {} FOR EACH ROW {}",
                quote_ident(&t.name),
                t.event.as_str().to_ascii_uppercase(),
                table.sql_name,
                t.body
            )
        })
        .collect()
}

/// Drops the triggers made for the table's name, and those made for the name it had
/// when it was renamed.
pub(super) fn drop_trigger_sql(table: &Table) -> Vec<String> {
    std::iter::once(&table.name)
        .chain(&table.captured_as)
        .flat_map(|name| {
            TableEvent::ROW.into_iter().map(move |event| {
                format!(
                    "DROP TRIGGER IF EXISTS {}",
                    quote_ident(&trigger_name(name, event))
                )
            })
        })
        .collect()
}

#[derive(QueryableByName)]
pub(super) struct TriggerRow {
    #[diesel(sql_type = Text)]
    pub(super) name: String,
    #[diesel(sql_type = Text)]
    pub(super) event: String,
    #[diesel(sql_type = Text)]
    pub(super) body: String,
}

/// InnoDB fires no trigger for the rows a foreign key's ON DELETE / ON UPDATE
/// action changes (CASCADE, SET NULL, SET DEFAULT): those changes make no callback.
pub(super) fn uncaptured_paths(
    conn: &mut MysqlConnection,
    table: &Table,
    events: &[TableEvent],
) -> Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Action {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        parent: String,
        #[diesel(sql_type = Text)]
        on_delete: String,
        #[diesel(sql_type = Text)]
        on_update: String,
    }
    let actions: Vec<Action> = diesel::sql_query(
        "SELECT CAST(CONSTRAINT_NAME AS CHAR) AS name, CAST(REFERENCED_TABLE_NAME AS CHAR) AS parent, \
           CAST(DELETE_RULE AS CHAR) AS on_delete, CAST(UPDATE_RULE AS CHAR) AS on_update \
         FROM information_schema.REFERENTIAL_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY CONSTRAINT_NAME",
    )
    .bind::<Text, _>(&table.name)
    .load(conn)?;
    let listens = |event: TableEvent| events.contains(&event);
    let mut paths = Vec::new();
    for action in actions {
        let changes = |rule: &str| matches!(rule, "CASCADE" | "SET NULL" | "SET DEFAULT");
        let mut missed = Vec::new();
        if action.on_delete == "CASCADE" && listens(TableEvent::Delete) {
            missed.push(format!(
                "deleted by ON DELETE CASCADE when rows of {} are deleted",
                action.parent
            ));
        } else if changes(&action.on_delete) && listens(TableEvent::Update) {
            missed.push(format!(
                "updated by ON DELETE {} when rows of {} are deleted",
                action.on_delete, action.parent
            ));
        }
        if changes(&action.on_update) && listens(TableEvent::Update) {
            missed.push(format!(
                "updated by ON UPDATE {} when keys of {} change",
                action.on_update, action.parent
            ));
        }
        // Watching the parent tells of the change that set the cascade off (not for
        // a table whose foreign key points at itself).
        let parent_watched: crate::storage::CountRow =
            diesel::sql_query("SELECT COUNT(*) AS n FROM httphooks_hooks WHERE table_name = ?")
                .bind::<Text, _>(&action.parent)
                .get_result(conn)?;
        let fix = if action.parent == table.name {
            "change such rows in the application rather than by the foreign key".to_owned()
        } else if parent_watched.n > 0 {
            format!(
                "the hooks of {} get the change that set it off; change such rows in the \
                 application rather than by the foreign key to get callbacks of their own",
                action.parent
            )
        } else {
            format!(
                "watch {} too, or change such rows in the application rather than by the \
                 foreign key",
                action.parent
            )
        };
        for what in missed {
            paths.push(format!(
                "rows of table {} {what} (foreign key {}) make no callback: MySQL fires no \
                 trigger for changes a foreign key makes; {fix}",
                table.name, action.name
            ));
        }
    }
    Ok(paths)
}
