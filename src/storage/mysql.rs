//! MySQL 8 / MariaDB 10.6+ (cargo feature `mysql`): connection settings, table
//! introspection, per-table triggers, admission, and claims with FOR UPDATE SKIP
//! LOCKED so that runs on several hosts share the work.
//!
//! Like SQLite, a table's triggers record the change and read nothing (the
//! application pays for them on every write); the change is matched to hooks when it
//! is admitted (the `httphooks_new_callback_matches` view). Like PostgreSQL, several
//! `send_callbacks` runs may claim at once: row locks, skipped when held, and leases
//! set with the database's clock.
//!
//! MariaDB has no `UPDATE … RETURNING`: claims and renewals lock the rows with a
//! SELECT, then update them by id, in one transaction.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

/// Times are bound as DATETIME: diesel's `Timestamp` binds MySQL's TIMESTAMP type,
/// whose range (1970–2038) does not hold the far dates the due rule uses.
type Datetime = diesel::sql_types::Datetime;
use diesel::MysqlConnection;

use super::backend::{
    lease_ms_sql, timestamp_literal, ClaimFilter, Claimed, StartMarks, UNCAPTURED,
};
use super::models::Callback;
use super::{
    connection_error, primary_key, CaptureState, Column, ColumnKind, Table, Watched, ROW_EVENTS,
};
use crate::error::{Error, Result};

const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/mysql");

/// The claim order: a generated column (see the migration), indexed after status.
const DUE_KEY: &str = "httphooks_callbacks.due_at";

/// The database's clock, in the UTC the timestamps hold.
const NOW: &str = "UTC_TIMESTAMP(6)";

/// MySQL limits identifiers (trigger names among them) to 64 characters.
const MAX_IDENTIFIER: usize = 64;

/// The session every httphooks connection runs with:
/// - UTC, so that DATETIME values and UNIX_TIMESTAMP() agree with the other backends;
/// - READ COMMITTED, as PostgreSQL: a locking read takes no gap locks (which would
///   stop the application's inserts while a claim or admission runs) and each
///   statement sees what has committed;
/// - an SQL mode of our own: the triggers httphooks creates keep the mode they were
///   created with, and its SQL is written for backticks and backslash escapes;
/// - a metadata lock waited for 5 s at most: DDL (a table's triggers, the ordered
///   hooks' index, migrations) waits for every open transaction on its table, and every
///   statement on that table queues behind the waiting DDL, the application's writes
///   too; the server's default wait is a day.
const SESSION: &str = "SET time_zone = '+00:00'; \
    SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
    SET SESSION lock_wait_timeout = 5; \
    SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

pub fn open(url: &str) -> Result<MysqlConnection> {
    let fail = |e: &dyn std::fmt::Display| {
        connection_error(
            "MySQL",
            url,
            "that the server is running, the database exists and accepts you",
            e,
        )
    };
    let mut conn = MysqlConnection::establish(url).map_err(|e| fail(&e))?;
    conn.batch_execute(SESSION).map_err(|e| fail(&e))?;
    Ok(conn)
}

/// An identifier quoted for MySQL (backticks; ANSI_QUOTES is off in our session).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal for MySQL, whose strings treat backslash as an escape.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct NamedPosition {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
}

/// Spatial types: their values are binary (WKB), which JSON cannot hold as text.
const SPATIAL: [&str; 8] = [
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
];

/// MySQL's spelling of types: `tinyint(1)` is BOOLEAN, binary strings and spatial values
/// are blobs, ENUM and SET text (whatever their values spell: `enum('print')` is no
/// integer).
fn column_kind(declared: &str, json_check: bool) -> ColumnKind {
    let t = declared.to_ascii_lowercase();
    let base = t.split(['(', ' ']).next().unwrap_or_default();
    if json_check || t == "json" {
        ColumnKind::Json
    } else if base == "enum" || base == "set" {
        ColumnKind::Text
    } else if SPATIAL.contains(&base) {
        ColumnKind::Blob
    } else if t.starts_with("tinyint(1)") || t == "bit(1)" {
        ColumnKind::Boolean
    } else if t.contains("binary") || t.contains("blob") || t.starts_with("bit") {
        ColumnKind::Blob
    } else if t.starts_with("year") {
        ColumnKind::Integer
    } else {
        ColumnKind::from_declared(&t)
    }
}

/// `httphooks_<table>_<event>`, shortened with a hash of the table's name where that
/// would exceed MySQL's 64 characters.
fn trigger_name(table: &str, event: &str) -> String {
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

fn row_json(row: &str, columns: &[Column]) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("{}, {}", quote_literal(&c.name), column_value(row, c)))
        .collect();
    format!("JSON_OBJECT({})", pairs.join(", "))
}

/// The row's key as text, the same on every backend: the value of a one-column key;
/// for several columns a compact JSON array (`[1,"a"]`, as SQLite's json_array()
/// writes it; MySQL's JSON_ARRAY() adds spaces). NULL for a table without a key.
fn object_id(row: &str, columns: &[Column]) -> String {
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
struct Trigger {
    name: String,
    event: &'static str,
    body: String,
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
fn triggers(table: &Table, watched: &Watched) -> Vec<Trigger> {
    let columns = &table.columns;
    ROW_EVENTS
        .iter()
        .filter(|event| watched.events.iter().any(|e| e == *event))
        .filter_map(|&event| {
            let row = if event == "delete" { "OLD" } else { "NEW" };
            let (old_row, bound, bytes) = if event == "update" {
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
            let body = match (&watched.update_columns, event) {
                (Some(names), "update") => {
                    let tests: Vec<String> = columns
                        .iter()
                        .filter(|c| names.contains(&c.name))
                        .map(|c| {
                            let q = quote_ident(&c.name);
                            format!("NOT (OLD.{q} <=> NEW.{q})")
                        })
                        .collect();
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

fn trigger_sql(table: &Table, watched: &Watched) -> Vec<String> {
    triggers(table, watched)
        .into_iter()
        .map(|t| {
            format!(
                "CREATE TRIGGER {} AFTER {} ON {} FOR EACH ROW {}",
                quote_ident(&t.name),
                t.event.to_ascii_uppercase(),
                table.sql_name,
                t.body
            )
        })
        .collect()
}

/// Drops the triggers made for the table's name, and those made for the name it had
/// when it was renamed.
fn drop_trigger_sql(table: &Table) -> Vec<String> {
    std::iter::once(&table.name)
        .chain(&table.captured_as)
        .flat_map(|name| {
            ROW_EVENTS.iter().map(move |event| {
                format!(
                    "DROP TRIGGER IF EXISTS {}",
                    quote_ident(&trigger_name(name, event))
                )
            })
        })
        .collect()
}

#[derive(QueryableByName)]
struct TriggerRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Text)]
    body: String,
}

/// A row the claim may lock, and its place in claim order.
#[derive(QueryableByName)]
struct DueCandidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Datetime)]
    due_at: chrono::NaiveDateTime,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The rows of the view `httphooks_new_callback_matches` (see the migration) for the
/// new callbacks `ids`: spelt out so that each branch reads those rows by primary key,
/// whatever the optimizer would make of a condition on the view.
fn matches_of(ids: &str) -> String {
    format!(
        "SELECT n.id AS seq, v.hook_id, v.id AS version_id, v.ordered, n.event_type, n.object_id, \
           n.row_data, n.old_row_data, n.created_at, n.problem, v.max_payload_size, \
           v.name AS hook_name, v.table_name \
         FROM httphooks_new_callbacks n JOIN httphooks_hook_versions v ON v.id = n.version_id \
         WHERE n.id IN ({ids}) AND n.version_id IS NOT NULL \
         UNION ALL \
         SELECT n.id, h.id, v.id, v.ordered, n.event_type, n.object_id, \
           n.row_data, n.old_row_data, n.created_at, n.problem, v.max_payload_size, \
           v.name, v.table_name \
         FROM httphooks_new_callbacks n \
         JOIN httphooks_hooks h ON h.table_name = n.table_name AND h.enabled \
           AND LOCATE(CONCAT(',', n.event_type, ','), h.events) > 0 \
           AND (n.event_type <> 'update' OR h.when_changed IS NULL OR n.problem IS NOT NULL OR EXISTS ( \
             SELECT 1 FROM JSON_TABLE(h.when_changed, '$[*]' COLUMNS (col VARCHAR(255) PATH '$')) w \
             WHERE NOT (JSON_EXTRACT(n.row_data, CONCAT('$.', JSON_QUOTE(w.col))) \
                        <=> JSON_EXTRACT(n.old_row_data, CONCAT('$.', JSON_QUOTE(w.col)))))) \
         JOIN httphooks_hook_versions v ON v.id = h.version_id \
         WHERE n.id IN ({ids}) AND n.version_id IS NULL"
    )
}

/// A size in bytes (an SQL expression) as text for messages: "12.0 MB", "512.0 KB".
fn size_text(bytes: &str) -> String {
    format!(
        "CASE WHEN {bytes} >= 1048576 THEN CONCAT(ROUND({bytes} / 1048576, 1), ' MB (', {bytes}, ' bytes)') \
              WHEN {bytes} >= 1024 THEN CONCAT(ROUND({bytes} / 1024, 1), ' KB (', {bytes}, ' bytes)') \
              ELSE CONCAT({bytes}, ' bytes') END"
    )
}

/// The most a callback's event data may take on MySQL: half of what one row of the
/// callback (event data and stored body together) may be read back in, a packet.
pub(super) const PACKET_HEADROOM: i64 = 65_536;

/// The due rule (see `ClaimFilter::sql_condition`) with MySQL's spelling and clock, the
/// due time a literal. A position to start after is spelt as two ranges, which MySQL
/// reads from the due index (a row-value comparison it may not).
fn due_condition(filter: &ClaimFilter, due_before: chrono::NaiveDateTime) -> String {
    let mut condition = filter.sql_condition(DUE_KEY, &timestamp_literal(due_before), NOW, "<=>");
    if let Some((due_at, id)) = filter.after {
        let at = timestamp_literal(due_at);
        condition.push_str(&format!(
            " AND ({DUE_KEY} > {at} OR ({DUE_KEY} = {at} AND httphooks_callbacks.id > {id}))"
        ));
    }
    condition
}

/// `claimed_until` for a new or renewed lease, with the database's clock: the lease
/// of the callback's hook (as it is now).
fn lease_until_sql() -> String {
    format!(
        "DATE_ADD({NOW}, INTERVAL {} * 1000 MICROSECOND)",
        lease_ms_sql(
            "(SELECT v.timeout_ms FROM httphooks_hooks h JOIN httphooks_hook_versions v ON v.id = h.version_id \
              WHERE h.id = httphooks_callbacks.hook_id)"
        )
    )
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Nullable<Integer>)]
    locked: Option<i32>,
}

impl super::Backend for MysqlConnection {
    fn name(&self) -> &'static str {
        "MySQL"
    }

    /// Row locks: runs on several hosts claim and record at the same time.
    fn allows_concurrent_writers(&self) -> bool {
        true
    }

    /// Durability is a server setting here (innodb_flush_log_at_trx_commit), not a
    /// session's: nothing to change.
    fn tune_for_delivery(&mut self) -> Result<()> {
        // As on PostgreSQL: a lock on httphooks' tables makes a statement give up after
        // a second, and the run retries it until its deadline instead of waiting past it.
        self.batch_execute(
            "SET SESSION innodb_lock_wait_timeout = 1, SESSION lock_wait_timeout = 1",
        )?;
        Ok(())
    }

    fn commits_on_ddl(&self) -> bool {
        true
    }

    /// A row larger than max_allowed_packet cannot be read back (the server drops the
    /// connection), so a callback's event data and stored body must fit in one, with
    /// room for its other columns.
    fn max_callback_bytes(&mut self) -> Result<Option<i64>> {
        let row: super::CountRow = diesel::sql_query(format!(
            "SELECT CAST(@@max_allowed_packet - {PACKET_HEADROOM} AS SIGNED) AS n"
        ))
        .get_result(self)?;
        Ok(Some(row.n))
    }

    /// InnoDB fires no trigger for the rows a foreign key's ON DELETE / ON UPDATE
    /// action changes (CASCADE, SET NULL, SET DEFAULT): those changes make no callback.
    fn uncaptured_paths(&mut self, table: &Table, events: &[String]) -> Result<Vec<String>> {
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
        .load(self)?;
        let listens = |event: &str| events.iter().any(|e| e == event);
        let mut paths = Vec::new();
        for action in actions {
            let changes = |rule: &str| matches!(rule, "CASCADE" | "SET NULL" | "SET DEFAULT");
            let mut missed = Vec::new();
            if action.on_delete == "CASCADE" && listens("delete") {
                missed.push(format!(
                    "deleted by ON DELETE CASCADE when rows of {} are deleted",
                    action.parent
                ));
            } else if changes(&action.on_delete) && listens("update") {
                missed.push(format!(
                    "updated by ON DELETE {} when rows of {} are deleted",
                    action.on_delete, action.parent
                ));
            }
            if changes(&action.on_update) && listens("update") {
                missed.push(format!(
                    "updated by ON UPDATE {} when keys of {} change",
                    action.on_update, action.parent
                ));
            }
            // Watching the parent tells of the change that set the cascade off (not for
            // a table whose foreign key points at itself).
            let fix = if action.parent == table.name {
                "change such rows in the application rather than by the foreign key".to_owned()
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

    /// Made with the first ordered hook (see the migration), online: InnoDB builds it
    /// while the application and runs go on writing.
    fn index_for_ordered_hooks(&mut self) -> Result<()> {
        let exists = |conn: &mut MysqlConnection| -> Result<bool> {
            let row: super::CountRow = diesel::sql_query(
                "SELECT COUNT(*) AS n FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'httphooks_callbacks' \
                   AND INDEX_NAME = 'httphooks_callbacks_ordered'",
            )
            .get_result(conn)?;
            Ok(row.n > 0)
        };
        if exists(self)? {
            return Ok(());
        }
        // Behind a long transaction it gives up after the session's lock_wait_timeout.
        let made = self.batch_execute(
            "ALTER TABLE httphooks_callbacks \
             ADD INDEX httphooks_callbacks_ordered (hook_id, status, object_id(191), id), \
             ALGORITHM=INPLACE, LOCK=NONE",
        );
        let Err(error) = made else {
            return Ok(());
        };
        // Another command made it meanwhile.
        if exists(self)? {
            return Ok(());
        }
        let message = error.to_string();
        if message.contains("denied") {
            return Err(Error::environment(
                "ordered hooks on MySQL need an index on httphooks_callbacks that the first \
                 ordered hook adds, and this user may not ALTER that table: grant it ALTER, \
                 or add the first ordered hook as a user who may",
            ));
        }
        if message.contains("Lock wait timeout") {
            return Err(Error::environment(
                "a long transaction holds httphooks_callbacks, so the index ordered hooks \
                 need could not be added; end that transaction (SHOW PROCESSLIST names it) \
                 and run the command again",
            ));
        }
        Err(error.into())
    }

    fn begin_write(&mut self) -> Result<()> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        AnsiTransactionManager::begin_transaction(self)?;
        Ok(())
    }

    fn migration_versions(&self) -> Result<Vec<String>> {
        super::migrations::version_names::<diesel::mysql::Mysql>(&MIGRATIONS)
    }

    /// DDL commits on its own in MySQL, so a transaction cannot keep two `migrate`
    /// runs apart: a named lock does (the second waits, then finds nothing to do; the
    /// lock goes with the connection).
    fn lock_migrations(&mut self) -> Result<()> {
        let row: Locked =
            diesel::sql_query("SELECT CAST(GET_LOCK('httphooks_migrate', 60) AS SIGNED) AS locked")
                .get_result(self)?;
        if row.locked != Some(1) {
            return Err(Error::environment(
                "another `httphooks migrate` has held the migration lock for a minute; let it finish and run `httphooks migrate` again",
            ));
        }
        Ok(())
    }

    fn run_migrations(&mut self, applied: &[String]) -> Result<usize> {
        super::migrations::run_pending(self, &MIGRATIONS, applied)
    }

    /// The columns of a base table of the current database, in order, with their
    /// primary-key position. MariaDB's JSON is LONGTEXT with a json_valid() check, which
    /// marks the column as JSON here. Three plain lookups, each naming the schema and
    /// table: joined or correlated, MariaDB reads information_schema for every table of
    /// every database (20 ms with a few dozen, on every command that checks capture).
    fn find_table(&mut self, name: &str) -> Result<Option<Table>> {
        let rows: Vec<ColumnRow> = diesel::sql_query(
            "SELECT CAST(c.COLUMN_NAME AS CHAR) AS name, CAST(c.COLUMN_TYPE AS CHAR) AS declared \
             FROM information_schema.COLUMNS c \
             WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = ? \
               AND EXISTS (SELECT 1 FROM information_schema.TABLES t \
                 WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = ? AND t.TABLE_TYPE = 'BASE TABLE') \
             ORDER BY c.ORDINAL_POSITION",
        )
        .bind::<Text, _>(name)
        .bind::<Text, _>(name)
        .load(self)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let primary_key: Vec<NamedPosition> = diesel::sql_query(
            "SELECT CAST(COLUMN_NAME AS CHAR) AS name, CAST(ORDINAL_POSITION AS SIGNED) AS position \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'",
        )
        .bind::<Text, _>(name)
        .load(self)?;
        let json_checked: Vec<NamedPosition> = diesel::sql_query(
            "SELECT CAST(CONSTRAINT_NAME AS CHAR) AS name, 0 AS position \
             FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CHECK_CLAUSE LIKE 'json_valid(%'",
        )
        .bind::<Text, _>(name)
        .load(self)?;
        Ok(Some(Table {
            name: name.to_owned(),
            sql_name: quote_ident(name),
            oid: None,
            captured_as: None,
            columns: rows
                .into_iter()
                .map(|r| Column {
                    kind: column_kind(
                        &r.declared,
                        json_checked.iter().any(|check| check.name == r.name),
                    ),
                    always_integer: false,
                    primary_key: primary_key
                        .iter()
                        .find(|key| key.name == r.name)
                        .map_or(0, |key| key.position),
                    name: r.name,
                })
                .collect(),
        }))
    }

    /// The table now carrying the triggers made for `stored_name`: MySQL keeps a table's
    /// triggers (names, bodies and the name they write) through `RENAME TABLE`, so they
    /// say where the table went.
    fn table_by_triggers(&mut self, stored_name: &str) -> Result<Option<Table>> {
        let names: Vec<String> = ROW_EVENTS
            .iter()
            .map(|event| quote_literal(&trigger_name(stored_name, event)))
            .collect();
        let carriers: Vec<NamedPosition> = diesel::sql_query(format!(
            "SELECT DISTINCT CAST(EVENT_OBJECT_TABLE AS CHAR) AS name, 0 AS position \
             FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN ({})",
            names.join(", ")
        ))
        .load(self)?;
        let [carrier] = carriers.as_slice() else {
            return Ok(None);
        };
        if carrier.name == stored_name {
            return Ok(None);
        }
        Ok(self.find_table(&carrier.name)?.map(|table| Table {
            captured_as: Some(stored_name.to_owned()),
            ..table
        }))
    }

    /// Run after the old triggers are gone, so that none writes the old name later. (A
    /// run admitting between the hooks' rename and this statement, milliseconds, would
    /// drop what was written meanwhile as matching no hook.)
    fn rename_pending_sql(&self, from: &str, to: &str) -> Option<String> {
        Some(format!(
            "UPDATE httphooks_new_callbacks SET table_name = {} WHERE table_name = {} AND version_id IS NULL",
            quote_literal(to),
            quote_literal(from)
        ))
    }

    fn trigger_sql(&self, table: &Table, watched: &Watched) -> Vec<String> {
        trigger_sql(table, watched)
    }

    /// DDL commits on its own in MySQL, so a drop and a create leave a moment in which
    /// the table's writes make no callback. MariaDB replaces a trigger in one statement
    /// (`CREATE OR REPLACE`), during which writes wait: its triggers are replaced so,
    /// and only those no longer wanted are dropped, afterwards. MySQL has no such
    /// statement.
    fn replace_trigger_sql(&mut self, table: &Table, watched: &Watched) -> Result<Vec<String>> {
        let version: VersionRow =
            diesel::sql_query("SELECT VERSION() AS version").get_result(self)?;
        let mut statements = trigger_sql(table, watched);
        if !version.version.contains("MariaDB") {
            let mut replaced = drop_trigger_sql(table);
            replaced.append(&mut statements);
            return Ok(replaced);
        }
        for statement in &mut statements {
            *statement = statement.replacen("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", 1);
        }
        let names: Vec<String> = triggers(table, watched)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let drop_of = |name: &String| format!("DROP TRIGGER IF EXISTS {}", quote_ident(name));
        // A name another table carries (tables that swapped names) is dropped first:
        // MariaDB replaces a trigger only on its own table.
        let quoted: Vec<String> = names.iter().map(|name| quote_literal(name)).collect();
        let elsewhere: Vec<NamedPosition> = if names.is_empty() {
            Vec::new()
        } else {
            diesel::sql_query(format!(
                "SELECT CAST(TRIGGER_NAME AS CHAR) AS name, 0 AS position \
                 FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN ({}) AND EVENT_OBJECT_TABLE <> ?",
                quoted.join(", ")
            ))
            .bind::<Text, _>(&table.name)
            .load(self)?
        };
        let mut replaced: Vec<String> = elsewhere.iter().map(|t| drop_of(&t.name)).collect();
        replaced.append(&mut statements);
        let kept: Vec<String> = names.iter().map(drop_of).collect();
        replaced.extend(
            drop_trigger_sql(table)
                .into_iter()
                .filter(|drop| !kept.contains(drop)),
        );
        Ok(replaced)
    }

    fn drop_trigger_sql(&self, table: &Table) -> Vec<String> {
        drop_trigger_sql(table)
    }

    /// Compares the table's triggers (by name, event and body) with what `triggers` makes
    /// now: a column renamed, added or dropped since, or a hook changed, makes them stale.
    /// MySQL drops a table's triggers with it.
    fn capture_state(&mut self, table: &Table, watched: &Watched) -> Result<CaptureState> {
        // A renamed table's triggers still capture under the name they were made for.
        let as_captured = Table {
            name: table
                .captured_as
                .clone()
                .unwrap_or_else(|| table.name.clone()),
            ..table.clone()
        };
        let names: Vec<String> = ROW_EVENTS
            .iter()
            .map(|event| quote_literal(&trigger_name(&as_captured.name, event)))
            .collect();
        let found: Vec<(String, String, String)> = diesel::sql_query(format!(
            "SELECT CAST(TRIGGER_NAME AS CHAR) AS name, CAST(EVENT_MANIPULATION AS CHAR) AS event, \
               CAST(ACTION_STATEMENT AS CHAR) AS body \
             FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? AND ACTION_TIMING = 'AFTER' \
               AND TRIGGER_NAME IN ({})",
            names.join(", ")
        ))
        .bind::<Text, _>(&table.name)
        .load::<TriggerRow>(self)?
        .into_iter()
        .map(|t| (t.name, t.event.to_ascii_lowercase(), t.body))
        .collect();
        let expected: Vec<(String, String, String)> = triggers(&as_captured, watched)
            .into_iter()
            .map(|t| (t.name, t.event.to_owned(), t.body))
            .collect();
        Ok(CaptureState::comparing(found, expected))
    }

    /// Moves up to `limit` of the oldest new callbacks into httphooks_callbacks. One
    /// admitter at a time (the `admit` row of httphooks_locks, held until the caller's
    /// transaction ends), so that callback ids follow the order of the changes. Exactly
    /// the rows read are admitted and deleted: a trigger's insert that commits meanwhile
    /// waits for the next admission.
    fn admit(&mut self, limit: i64) -> Result<usize> {
        self.transaction(|conn| {
            diesel::sql_query("SELECT 1 FROM httphooks_locks WHERE name = 'admit' FOR UPDATE")
                .execute(conn)?;
            let ids: Vec<IdRow> =
                diesel::sql_query("SELECT id FROM httphooks_new_callbacks ORDER BY id LIMIT ?")
                    .bind::<BigInt, _>(limit)
                    .load(conn)?;
            if ids.is_empty() {
                return Ok(0);
            }
            let list = id_list(ids.iter().map(|r| r.id));
            // The row data is JSON made by JSON_OBJECT(), pasted into the event data as it
            // is. The webhook-id: the change's time in milliseconds (12 hex digits) and 80
            // random bits.
            // A change that could not be captured (too large for its trigger), or whose data
            // is larger than its hook allows or than a packet can carry back, becomes a failed
            // callback that says why: it stops nothing else. CASE evaluates only the branch
            // it takes, so no CONCAT of a too large change is ever made.
            let size = "(LENGTH(row_data) + COALESCE(LENGTH(old_row_data), 0) + 32)";
            let packet_limit = format!("((@@max_allowed_packet - {PACKET_HEADROOM}) DIV 2)");
            let refusal = format!(
                "CASE WHEN problem IS NOT NULL THEN problem \
                   WHEN {size} > max_payload_size THEN CONCAT('the change''s data is ', {size_text}, \
                     ', more than the hook''s --max-payload-size of ', {limit_text}, \
                     '; raise it with `httphooks hooks edit ', hook_name, ' --max-payload-size SIZE` to send such changes') \
                   WHEN {size} > {packet_limit} THEN CONCAT('the change''s data is ', {size_text}, \
                     ', more than half of the server''s max_allowed_packet of ', {packet_text}, \
                     ', since a callback must fit in one packet with its body; raise max_allowed_packet on the server to send such changes') \
                 END",
                size_text = size_text(size),
                limit_text = size_text("max_payload_size"),
                packet_text = size_text("@@max_allowed_packet"),
            );
            let made = diesel::sql_query(format!(
                "INSERT INTO httphooks_callbacks \
                   (hook_id, version_id, event_type, object_id, ordered, event_data, created_at, webhook_id, \
                    status, status_details, updated_at) \
                 SELECT hook_id, version_id, event_type, object_id, ordered, \
                   CASE WHEN refusal IS NOT NULL THEN '{UNCAPTURED}' \
                     WHEN event_type = 'insert' THEN CONCAT('{{\"instance\":', row_data, ',\"old\":null}}') \
                     WHEN event_type = 'update' THEN CONCAT('{{\"instance\":', row_data, ',\"old\":', COALESCE(old_row_data, 'null'), '}}') \
                     WHEN event_type = 'delete' THEN CONCAT('{{\"instance\":', row_data, ',\"old\":null}}') \
                     ELSE CONCAT('{{\"data\":', row_data, '}}') END, \
                   created_at, \
                   LOWER(CONCAT('msg_', LPAD(HEX(FLOOR(UNIX_TIMESTAMP(created_at) * 1000)), 12, '0'), \
                     LPAD(HEX(FLOOR(RAND() * 1099511627776)), 10, '0'), \
                     LPAD(HEX(FLOOR(RAND() * 1099511627776)), 10, '0'))), \
                   IF(refusal IS NULL, 'waiting', 'error'), \
                   IF(refusal IS NULL, '', CONCAT('hook ', hook_name, ' (table ', COALESCE(table_name, '-'), \
                     ', row ', COALESCE(object_id, '-'), '): ', refusal, '; nothing was sent')), \
                   IF(refusal IS NULL, NULL, {NOW}) \
                 FROM (SELECT m.*, {refusal} AS refusal FROM ({matches}) m) r ORDER BY seq, hook_id",
                matches = matches_of(&list),
            ))
            .execute(conn)?;
            diesel::sql_query(format!(
                "DELETE FROM httphooks_new_callbacks WHERE id IN ({list})"
            ))
            .execute(conn)?;
            Ok(made)
        })
    }

    fn count_new(&mut self, since: Option<chrono::NaiveDateTime>) -> Result<i64> {
        let row: super::CountRow = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM httphooks_new_callback_matches WHERE ? IS NULL OR created_at >= ?",
        )
        .bind::<Nullable<Datetime>, _>(since)
        .bind::<Nullable<Datetime>, _>(since)
        .get_result(self)?;
        Ok(row.n)
    }

    /// Finds the due rows in claim order without locking them, then locks those still
    /// due by primary key, skipping those another run holds, and marks them claimed; the
    /// caller's transaction (`Db::write_transaction`) holds the locks until it commits.
    /// A locking scan of the due index would lock the index entries of callbacks in
    /// flight as it passed them, entries the recorder must change: the two deadlocked
    /// (about one claim in 30,000 rolled back, each costing the run a retry). Locking by
    /// primary key only, in id order as the recorder does, never waits on a recorder.
    fn claim(
        &mut self,
        filter: &ClaimFilter,
        limit: i64,
        token: &str,
        marks: &StartMarks,
    ) -> Result<Vec<Claimed>> {
        // New callbacks join the queue as runs need them.
        self.admit(limit * super::backend::ADMIT_AHEAD)?;
        let due_before = filter.due_before(super::now());
        let mut due: Vec<super::backend::DueRow> = Vec::new();
        let mut from = filter.clone();
        // The candidates are looked up by id: where they are in claim order is known.
        let anywhere = ClaimFilter {
            after: None,
            ..filter.clone()
        };
        // Rows another run locked meanwhile are skipped: read on past them, as SKIP
        // LOCKED on the index would.
        while (due.len() as i64) < limit {
            let want = limit - due.len() as i64;
            let candidates: Vec<DueCandidate> = diesel::sql_query(format!(
                "SELECT id, {DUE_KEY} AS due_at FROM httphooks_callbacks \
                 WHERE {} ORDER BY {DUE_KEY}, id LIMIT ?",
                due_condition(&from, due_before)
            ))
            .bind::<BigInt, _>(want)
            .load(self)?;
            let Some(last) = candidates.last() else {
                break;
            };
            from.after = Some((last.due_at, last.id));
            let mut locked: Vec<super::backend::DueRow> = diesel::sql_query(format!(
                "SELECT id, hook_id, claim_token, claim_started FROM httphooks_callbacks \
                 WHERE id IN ({}) AND {} ORDER BY id FOR UPDATE SKIP LOCKED",
                id_list(candidates.iter().map(|c| c.id)),
                due_condition(&anywhere, due_before)
            ))
            .load(self)?;
            for candidate in &candidates {
                if let Some(at) = locked.iter().position(|d| d.id == candidate.id) {
                    due.push(locked.swap_remove(at));
                }
            }
            if (candidates.len() as i64) < want {
                break;
            }
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_list(due.iter().map(|d| d.id));
        let marked = marks.pick(&due);
        // `IN ()` is not SQL: 0 is no callback's id.
        let marked_list = if marked.is_empty() {
            "0".to_owned()
        } else {
            id_list(marked.iter().copied())
        };
        diesel::sql_query(format!(
            "UPDATE httphooks_callbacks SET claim_token = ?, \
             claim_started = id IN ({marked_list}), claimed_until = {lease} WHERE id IN ({ids})",
            lease = lease_until_sql(),
        ))
        .bind::<Text, _>(token)
        .execute(self)?;
        let callbacks: Vec<Callback> =
            diesel::sql_query(super::backend::callbacks_by_ids_sql(&ids)).load(self)?;
        Ok(super::backend::claimed_in_order(callbacks, &due, &marked))
    }

    fn renew(&mut self, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>> {
        let enabled = if started {
            " AND EXISTS (SELECT 1 FROM httphooks_hooks h WHERE h.id = hook_id AND h.enabled)"
        } else {
            ""
        };
        self.transaction(|conn| {
            let held: Vec<IdRow> = diesel::sql_query(format!(
                "SELECT id FROM httphooks_callbacks \
                 WHERE id IN ({}) AND claim_token = ? AND status = 'waiting'{enabled} ORDER BY id FOR UPDATE",
                id_list(ids.iter().copied())
            ))
            .bind::<Text, _>(token)
            .load(conn)?;
            if held.is_empty() {
                return Ok(Vec::new());
            }
            let held: Vec<i64> = held.into_iter().map(|r| r.id).collect();
            diesel::sql_query(format!(
                "UPDATE httphooks_callbacks SET claimed_until = {lease}, \
                 claim_started = (claim_started OR ?) WHERE id IN ({})",
                id_list(held.iter().copied()),
                lease = lease_until_sql(),
            ))
            .bind::<diesel::sql_types::Bool, _>(started)
            .execute(conn)?;
            Ok(held)
        })
    }

    fn due_key(&self) -> &'static str {
        DUE_KEY
    }

    fn due_condition(&self, filter: &ClaimFilter) -> String {
        due_condition(filter, filter.due_before(super::now()))
    }

    /// One UPDATE joined to the changes: STRAIGHT_JOIN reads JSON_TABLE first and finds
    /// each callback by primary key, so the rows are locked in the order of the array,
    /// which `record` sorts by id as claims and renewals lock them (opposite orders would
    /// deadlock).
    fn apply_outcomes(
        &mut self,
        token: &str,
        changes: &str,
        now: chrono::NaiveDateTime,
    ) -> Result<usize> {
        Ok(diesel::sql_query(
            "UPDATE JSON_TABLE(?, '$[*]' COLUMNS ( \
                 id BIGINT PATH '$.id', status VARCHAR(16) PATH '$.status', \
                 details LONGTEXT PATH '$.details', attempted INT PATH '$.attempted', \
                 next_attempt_at DATETIME(6) PATH '$.next_attempt_at', \
                 payload LONGTEXT PATH '$.payload')) v \
             STRAIGHT_JOIN httphooks_callbacks c ON c.id = v.id \
             SET c.status = v.status, c.status_details = v.details, \
                 c.attempts = c.attempts + v.attempted, c.next_attempt_at = v.next_attempt_at, \
                 c.updated_at = ?, c.claimed_until = NULL, c.claim_token = NULL, \
                 c.claim_started = FALSE, c.payload = COALESCE(v.payload, c.payload) \
             WHERE c.claim_token = ?",
        )
        .bind::<Text, _>(changes)
        .bind::<Datetime, _>(now)
        .bind::<Text, _>(token)
        .execute(self)?)
    }

    /// The stored procedure applications in any language call (see the migration);
    /// it writes where the triggers write. Callers have checked hook and event, so
    /// the count is the hook's enabled rows.
    fn enqueue(&mut self, hook: &str, event: &str, data: &serde_json::Value) -> Result<usize> {
        diesel::sql_query("CALL httphooks_enqueue(?, ?, ?)")
            .bind::<Text, _>(hook)
            .bind::<Text, _>(event)
            .bind::<Text, _>(data.to_string())
            .execute(self)?;
        use super::schema::httphooks_hooks::dsl as h;
        let enabled: i64 = h::httphooks_hooks
            .filter(h::name.eq(hook))
            .filter(h::enabled)
            .count()
            .get_result(self)?;
        Ok(enabled as usize)
    }
}
