//! SQLite: connection settings, table introspection, per-table triggers, claims.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use diesel::SqliteConnection;

use super::backend::{
    inline_payload, quote_ident, quote_literal, timestamp_literal, BackfillSql, CachedSql, Claim,
    ClaimFilter, Claimed, ColumnRow, IdRow, Outcome, Profile, UNCAPTURED,
};
use super::models::{Attempt, Callback};
use super::{
    connection_error, now, primary_key, CaptureState, Column, ColumnKind, Table, TableEvent,
    Watched,
};
use crate::error::Result;

impl super::backend::Embedded for SqliteConnection {
    const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/sqlite");
}

/// The expression of the due index (see the migration): it must be written the same
/// way in queries for SQLite to use the index.
const DUE_KEY: &str = "coalesce(next_attempt_at, '1970-01-01 00:00:00')";

/// SQLite limits a function call to 127 arguments; a row is built from objects of at
/// most this many columns, merged with json_patch.
const COLUMNS_PER_JSON_OBJECT: usize = 60;

const SQLITE_FIX: &str = "that the path is a SQLite database file you may write";

/// Opens the file; a lock another connection holds is waited for up to `busy` at a
/// time (the busy timeout makes concurrent writers wait instead of failing).
pub fn open(path: &str, busy: std::time::Duration) -> Result<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| connection_error("SQLite", path, SQLITE_FIX, e))?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON;",
        busy.as_millis()
    ))
    .map_err(|e| connection_error("SQLite", path, SQLITE_FIX, e))?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct TableInfo {
    #[diesel(embed)]
    column: ColumnRow,
    #[diesel(sql_type = Integer)]
    without_rowid: i32,
}

fn table_columns(conn: &mut SqliteConnection, table: &str) -> Result<Option<Vec<Column>>> {
    let rows: Vec<TableInfo> = diesel::sql_query(
        "SELECT p.name AS name, p.type AS declared, p.pk AS pk, l.wr AS without_rowid \
         FROM sqlite_master m, pragma_table_info(m.name) p, pragma_table_list(m.name) l \
         WHERE m.type = 'table' AND m.name = ? AND l.schema = 'main' ORDER BY p.cid",
    )
    .bind::<Text, _>(table)
    .load(conn)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let single_key = rows.iter().filter(|r| r.column.pk > 0).count() == 1;
    Ok(Some(
        rows.into_iter()
            .map(|r| {
                // An INTEGER PRIMARY KEY of a rowid table is the rowid itself.
                let rowid = single_key
                    && r.column.pk == 1
                    && r.without_rowid == 0
                    && r.column.declared.eq_ignore_ascii_case("INTEGER");
                r.column.into_column(rowid)
            })
            .collect(),
    ))
}

fn trigger_name(table: &str, event: TableEvent) -> String {
    quote_ident(&format!("httphooks_{table}_{event}"))
}

/// A JSON value for one column of `row` (NEW or OLD) that never makes json_object
/// fail: blobs become hex, JSON text is embedded as JSON, booleans as true/false.
/// Any column of a table that is not STRICT may hold a blob; `>= x''` is the cheapest
/// test for one (every blob sorts at or after the empty blob; NULL, numbers and text
/// before it), and triggers run on every write.
fn column_value(row: &str, column: &Column) -> String {
    let c = format!("{row}.{}", quote_ident(&column.name));
    if column.always_integer {
        return c;
    }
    let guarded = format!("CASE WHEN {c} >= x'' THEN hex({c}) ELSE {c} END");
    match column.kind {
        ColumnKind::Json => format!("CASE WHEN json_valid({c}) THEN json({c}) ELSE {guarded} END"),
        ColumnKind::Boolean => {
            format!(
                "CASE {c} WHEN 1 THEN json('true') WHEN 0 THEN json('false') ELSE {guarded} END"
            )
        }
        // Blobs as hex; NULL, and whatever else a BLOB column holds, as they are.
        _ => guarded,
    }
}

fn row_json(row: &str, columns: &[Column]) -> String {
    let objects: Vec<String> = columns
        .chunks(COLUMNS_PER_JSON_OBJECT)
        .map(|chunk| {
            let pairs: Vec<String> = chunk
                .iter()
                .map(|c| format!("{}, {}", quote_literal(&c.name), column_value(row, c)))
                .collect();
            format!("json_object({})", pairs.join(", "))
        })
        .collect();
    objects
        .into_iter()
        .reduce(|merged, next| format!("json_patch({merged}, {next})"))
        .unwrap_or_else(|| "json_object()".to_owned())
}

/// The row's key as the row holds it (admission makes it text, a BLOB hex); NULL for a
/// table without a key (hooks made before `--key` existed), as on PostgreSQL.
fn object_id(row: &str, columns: &[Column]) -> String {
    let keys = primary_key(columns);
    match keys.as_slice() {
        [] => "NULL".to_owned(),
        [key] => format!("{row}.{}", quote_ident(&key.name)),
        // json_array() fails on a BLOB: each part is guarded like a row's columns.
        keys => {
            let parts: Vec<String> = keys.iter().map(|k| column_value(row, k)).collect();
            format!("json_array({})", parts.join(", "))
        }
    }
}

/// A trigger records the change in httphooks_new_callbacks and does nothing else: the
/// application pays for it on every write, so it reads no table. Which hooks the change
/// goes to is decided on admission (see the migration). An update trigger fires only
/// when a watched column changed (`watched.update_columns`). Everything here must work
/// in any SQLite an application may run it with (JSON1 of 3.38, julianday).
fn event_trigger_sql(
    table: &str,
    columns: &[Column],
    event: TableEvent,
    watched: &Watched,
) -> String {
    let row = if event == TableEvent::Delete {
        "OLD"
    } else {
        "NEW"
    };
    let old_row = if event == TableEvent::Update {
        row_json("OLD", columns)
    } else {
        "NULL".to_owned()
    };
    let tests = watched.update_tests(columns, |name| {
        let q = quote_ident(name);
        format!("OLD.{q} IS NOT NEW.{q}")
    });
    let when = match (tests, event) {
        (Some(tests), TableEvent::Update) => {
            format!(
                " WHEN {}",
                if tests.is_empty() {
                    "0".to_owned()
                } else {
                    tests.join(" OR ")
                }
            )
        }
        _ => String::new(),
    };
    format!(
        "CREATE TRIGGER {name} AFTER {op} ON {table_ident} FOR EACH ROW{when} BEGIN \
         INSERT INTO httphooks_new_callbacks (table_name, event_type, object_id, row_data, old_row_data, created_at) \
         VALUES ({table_literal}, '{event}', {object_id}, {row_data}, {old_row}, julianday('now')); END;",
        name = trigger_name(table, event),
        op = event.as_str().to_ascii_uppercase(),
        table_ident = quote_ident(table),
        table_literal = quote_literal(table),
        object_id = object_id(row, columns),
        row_data = row_json(row, columns),
    )
}

/// The triggers `watched` needs: one per event the table's enabled hooks listen to.
pub fn trigger_sql(table: &Table, watched: &Watched) -> Vec<String> {
    TableEvent::ROW
        .into_iter()
        .filter(|event| watched.events.contains(event))
        .map(|event| event_trigger_sql(&table.name, &table.columns, event, watched))
        .collect()
}

pub fn drop_trigger_sql(table: &str) -> Vec<String> {
    TableEvent::ROW
        .iter()
        .map(|&event| format!("DROP TRIGGER IF EXISTS {};", trigger_name(table, event)))
        .collect()
}

#[derive(QueryableByName)]
struct TriggerRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    sql: Option<String>,
}

/// Makes the callbacks of the new callbacks up to `?1` (see the view in the migration),
/// ids in creation order (`--ordered` relies on it), each with its webhook-id: the
/// change's time in milliseconds (12 hex digits) and 80 random bits. The row data is JSON made by
/// json_object() or json(), so it is pasted into the event data as it is (parsing it
/// again would cost a tenth of the admission). A change whose data is larger than its
/// hook allows becomes a failed callback that says so: it stops nothing else.
fn admit_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        // One level of subquery: each level copies the row's registers, megabytes each.
        let refused = "(problem IS NOT NULL OR size > max_payload_size)";
        format!(
            "INSERT INTO httphooks_callbacks \
              (hook_id, version_id, event_type, object_id, ordered, event_data, created_at, webhook_id, \
               status, status_details, updated_at) \
             SELECT hook_id, version_id, event_type, object_id, ordered, \
               CASE WHEN {refused} THEN '{UNCAPTURED}' \
                 WHEN event_type IN ('insert', 'backfill') THEN concat('{{\"instance\":', row_data, ',\"old\":null}}') \
                 WHEN event_type = 'update' THEN concat('{{\"instance\":', row_data, ',\"old\":', coalesce(old_row_data, 'null'), '}}') \
                 WHEN event_type = 'delete' THEN concat('{{\"instance\":', row_data, ',\"old\":null}}') \
                 ELSE concat('{{\"data\":', row_data, '}}') END, \
               strftime('%Y-%m-%d %H:%M:%f', made_at), \
               'msg_' || printf('%012x', CAST((made_at - 2440587.5) * 86400000 AS INTEGER)) \
                 || lower(hex(randomblob(10))), \
               CASE WHEN {refused} THEN 'error' ELSE 'waiting' END, \
               CASE WHEN {refused} THEN 'hook ' || hook_name \
                 || CASE WHEN table_name IS NULL THEN ' (event ' || event_type || ')' \
                    ELSE ' (table ' || table_name || coalesce(', row ' || object_id, '') || ')' END || ': ' \
                 || coalesce(problem, 'the change''s data is ' || {size} \
                    || ', more than the hook''s --max-payload-size of ' || {limit} \
                    || '; raise it with `httphooks hooks edit ' || hook_name \
                    || ' --max-payload-size SIZE` to send such changes') \
                 || '; nothing was sent' ELSE '' END, \
               CASE WHEN {refused} THEN strftime('%Y-%m-%d %H:%M:%f', 'now') END \
             FROM (SELECT seq, hook_id, version_id, event_type, ordered, row_data, old_row_data, problem, \
                     max_payload_size, hook_name, table_name, \
                     CASE WHEN typeof(object_id) = 'blob' THEN hex(object_id) ELSE CAST(object_id AS TEXT) END AS object_id, \
                     coalesce(julianday(created_at), julianday('now')) AS made_at, \
                     octet_length(row_data) \
                       + coalesce(octet_length(old_row_data), 0) + 32 AS size \
                   FROM httphooks_new_callback_matches WHERE seq BETWEEN ?1 AND ?2) \
             ORDER BY seq, hook_id",
            size = size_text("size"),
            limit = size_text("max_payload_size"),
        )
    })
}

/// A size in bytes (an SQL expression) as text for messages: "12.0 MB", "512.0 KB".
fn size_text(bytes: &str) -> String {
    format!(
        "(CASE WHEN {bytes} >= 1048576 THEN printf('%.1f MB (%d bytes)', {bytes} / 1048576.0, {bytes}) \
               WHEN {bytes} >= 1024 THEN printf('%.1f KB (%d bytes)', {bytes} / 1024.0, {bytes}) \
               ELSE {bytes} || ' bytes' END)"
    )
}

/// The callbacks of a change that admission could not read (say, a value that breaks
/// SQLite's JSON functions): one failed callback per hook the change may have gone to,
/// saying why, so that it stops nothing else.
const QUARANTINE: &str = "INSERT INTO httphooks_callbacks \
    (hook_id, version_id, event_type, object_id, ordered, event_data, created_at, webhook_id, \
     status, status_details, updated_at) \
    SELECT h.id, v.id, n.event_type, \
      CASE WHEN typeof(n.object_id) = 'blob' THEN hex(n.object_id) ELSE CAST(n.object_id AS TEXT) END, \
      v.ordered, '{\"instance\":null,\"old\":null}', \
      strftime('%Y-%m-%d %H:%M:%f', coalesce(julianday(n.created_at), julianday('now'))), \
      'msg_' || printf('%012x', CAST((coalesce(julianday(n.created_at), julianday('now')) - 2440587.5) * 86400000 AS INTEGER)) \
        || lower(hex(randomblob(10))), \
      'error', ?2, strftime('%Y-%m-%d %H:%M:%f', 'now') \
    FROM httphooks_new_callbacks n \
    JOIN httphooks_hooks h ON h.table_name = n.table_name AND h.enabled \
      AND instr(h.events, ',' || n.event_type || ',') > 0 \
    JOIN httphooks_hook_versions v ON v.id = h.version_id \
    WHERE n.id = ?1";

fn admit_range(conn: &mut SqliteConnection, first: i64, last: i64) -> Result<usize> {
    Ok(diesel::sql_query(admit_sql())
        .bind::<BigInt, _>(first)
        .bind::<BigInt, _>(last)
        .execute(conn)?)
}

/// The callbacks of `ids` (a JSON array) with their settings. Read by position
/// through diesel's DSL, not by name: looking up each of some fifty columns by name
/// was half the cost of reading a claimed row.
fn claimed_callbacks(conn: &mut SqliteConnection, ids: &str) -> Result<Vec<Callback>> {
    use super::schema::{httphooks_callback_details as d, httphooks_hook_versions as v};
    Ok(d::table
        .inner_join(v::table.on(v::id.eq(d::settings_version_id)))
        .select(Callback::as_select())
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "httphooks_callback_details.id IN (SELECT value FROM json_each(",
            )
            .bind::<Text, _>(ids)
            .sql("))"),
        )
        .load(conn)?)
}

/// Ids as a JSON array, for `json_each(?)`.
fn id_array(ids: impl Iterator<Item = i64>) -> String {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    format!("[{}]", ids.join(","))
}

/// The due rule (see `ClaimFilter::sql_condition`) with SQLite's spelling, the due time
/// and the clock as literals (SQLite compares timestamps as text).
fn due_condition(filter: &ClaimFilter, now: chrono::NaiveDateTime) -> String {
    filter.sql_condition(
        DUE_KEY,
        &timestamp_literal(filter.due_before(now)),
        &timestamp_literal(now),
    )
}

/// `claimed_until` for a new or renewed lease: the bound time plus the lease of the
/// callback's hook (as it is now).
fn lease_until_sql() -> String {
    format!(
        "strftime('%Y-%m-%d %H:%M:%f', ?, '+' || ({} / 1000.0) || ' seconds')",
        super::backend::lease_ms_sql(
            "(SELECT v.timeout_ms FROM httphooks_hooks h JOIN httphooks_hook_versions v ON v.id = h.version_id \
              WHERE h.id = httphooks_callbacks.hook_id)"
        )
    )
}

static PROFILE: Profile = Profile {
    name: "SQLite",
    // One writer at a time: a second connection would only wait for the first.
    allows_concurrent_writers: false,
    other_schema_hint: None,
    commits_on_ddl: false,
    captures_truncate: false,
    delivery_session: "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 1000",
    due_key: DUE_KEY,
};

impl super::Backend for SqliteConnection {
    fn profile(&self) -> &'static Profile {
        &PROFILE
    }

    /// WAL lets `send_callbacks` read and write while the application writes. Set once
    /// the database is known to be httphooks' (a command that refuses an application's
    /// file leaves its journal as it was); a database another connection holds locked
    /// keeps its journal until a later command.
    fn prepare_for_use(&mut self) -> Result<()> {
        match self
            .batch_execute("PRAGMA journal_mode = WAL")
            .map_err(crate::Error::from)
        {
            Err(error) if error.db_failure() == Some(crate::error::DbFailure::Busy) => {
                log::debug!("journal_mode stays as it is for now: {error}");
                Ok(())
            }
            other => other,
        }
    }

    /// Takes the write lock up front, so that concurrent writers wait for
    /// `busy_timeout` instead of failing half-way.
    fn begin_write(&mut self) -> Result<()> {
        diesel::connection::AnsiTransactionManager::begin_transaction_sql(self, "BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn find_table(&mut self, name: &str) -> Result<Option<Table>> {
        Ok(table_columns(self, name)?.map(|columns| Table {
            name: name.to_owned(),
            sql_name: quote_ident(name),
            oid: None,
            captured_as: None,
            columns,
        }))
    }

    fn trigger_sql(&self, table: &Table, watched: &Watched) -> Vec<String> {
        trigger_sql(table, watched)
    }

    fn drop_trigger_sql(&self, table: &Table) -> Vec<String> {
        drop_trigger_sql(&table.name)
    }

    /// Compares the SQL SQLite keeps for the table's triggers with what `trigger_sql`
    /// makes now: SQLite rewrites a trigger when a column is renamed, drops it with its
    /// table (a rebuild), and an added column is missing from it.
    fn capture_state(&mut self, table: &Table, watched: &Watched) -> Result<CaptureState> {
        let names: Vec<String> = TableEvent::ROW
            .iter()
            .map(|event| quote_literal(&format!("httphooks_{}_{event}", table.name)))
            .collect();
        let found: Vec<String> = diesel::sql_query(format!(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({}) ORDER BY name",
            names.join(", ")
        ))
        .load::<TriggerRow>(self)?
        .into_iter()
        .map(|row| row.sql.unwrap_or_default())
        .collect();
        let expected: Vec<String> = trigger_sql(table, watched)
            .into_iter()
            .map(|sql| sql.trim_end_matches(';').to_owned())
            .collect();
        Ok(CaptureState::comparing(found, expected))
    }

    /// Admits up to `limit` of the oldest new callbacks; returns how many callbacks that
    /// made. Callers hold the write lock (a write transaction), so no trigger adds a row in
    /// between. A batch that fails for what a change holds is admitted change by change,
    /// and a change that cannot be read becomes failed callbacks that say why.
    fn admit(&mut self, limit: i64) -> Result<usize> {
        let ids: Vec<IdRow> =
            diesel::sql_query("SELECT id FROM httphooks_new_callbacks ORDER BY id LIMIT ?")
                .bind::<BigInt, _>(limit)
                .load(self)?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(0);
        };
        let made = match admit_range(self, first.id, last.id) {
            Ok(made) => made,
            Err(error) if error.db_failure().is_some_and(|f| f.is_transient()) => {
                return Err(error)
            }
            Err(_) => {
                let mut made = 0;
                for id in ids.iter().map(|row| row.id) {
                    made += match admit_range(self, id, id) {
                        Ok(made) => made,
                        Err(error) if error.db_failure().is_some_and(|f| f.is_transient()) => {
                            return Err(error)
                        }
                        Err(error) => diesel::sql_query(QUARANTINE)
                            .bind::<BigInt, _>(id)
                            .bind::<Text, _>(format!(
                                "this change could not be read for delivery ({error}); its row holds a value httphooks cannot turn into JSON"
                            ))
                            .execute(self)?,
                    };
                }
                made
            }
        };
        diesel::sql_query("DELETE FROM httphooks_new_callbacks WHERE id <= ?")
            .bind::<BigInt, _>(last.id)
            .execute(self)?;
        Ok(made)
    }

    /// Counts the callbacks that admitting the new callbacks would make, of changes made at
    /// or after `since` (all without it).
    fn count_new(&mut self, since: Option<chrono::NaiveDateTime>) -> Result<i64> {
        let count = |conn: &mut SqliteConnection, from: &str| -> Result<i64> {
            let row: super::CountRow = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM {from} WHERE ? IS NULL OR created_at >= julianday(?)"
            ))
            .bind::<diesel::sql_types::Nullable<Timestamp>, _>(since)
            .bind::<diesel::sql_types::Nullable<Timestamp>, _>(since)
            .get_result(conn)?;
            Ok(row.n)
        };
        match count(self, "httphooks_new_callback_matches") {
            // A change that cannot be matched (admission will quarantine it) still counts,
            // once per change: a probe must not fail on it.
            Err(error) if !error.db_failure().is_some_and(|f| f.is_transient()) => {
                count(self, "httphooks_new_callbacks")
            }
            other => other,
        }
    }

    /// SQLite has one writer at a time: selecting and then updating inside the caller's
    /// write transaction (`Db::write_transaction`, BEGIN IMMEDIATE) is atomic against other
    /// `send_callbacks` runs.
    fn claim(&mut self, claim: &Claim) -> Result<Vec<Claimed>> {
        let (filter, limit, token, marks) = (claim.filter, claim.limit, claim.token, claim.marks);
        let now = now();
        let condition = due_condition(filter, now);
        {
            // New callbacks join the queue as the run needs them.
            self.admit(limit * super::backend::ADMIT_AHEAD)?;
            let due: Vec<super::backend::DueRow> = match filter.after {
                None => diesel::sql_query(format!(
                    "SELECT id, hook_id, claim_token, claim_started FROM httphooks_callbacks \
                     WHERE {condition} ORDER BY {DUE_KEY}, id LIMIT ?"
                ))
                .bind::<BigInt, _>(limit)
                .load(self)?,
                // After a position: SQLite seeks an expression index with a row value only
                // on its first column, so the rest of the position's due time and the later
                // ones are two index ranges.
                Some((due_at, id)) => {
                    let columns =
                        format!("id, hook_id, claim_token, claim_started, {DUE_KEY} AS due");
                    diesel::sql_query(format!(
                        "SELECT id, hook_id, claim_token, claim_started FROM ( \
                           SELECT * FROM (SELECT {columns} FROM httphooks_callbacks \
                             WHERE {condition} AND {DUE_KEY} = ? AND id > ? ORDER BY id LIMIT ?) \
                           UNION ALL \
                           SELECT * FROM (SELECT {columns} FROM httphooks_callbacks \
                             WHERE {condition} AND {DUE_KEY} > ? ORDER BY {DUE_KEY}, id LIMIT ?)) \
                         ORDER BY due, id LIMIT ?"
                    ))
                    .bind::<Timestamp, _>(due_at)
                    .bind::<BigInt, _>(id)
                    .bind::<BigInt, _>(limit)
                    .bind::<Timestamp, _>(due_at)
                    .bind::<BigInt, _>(limit)
                    .bind::<BigInt, _>(limit)
                    .load(self)?
                }
            };
            if due.is_empty() {
                return Ok(Vec::new());
            }
            // The ids as JSON arrays, so that the statements' text stays the same and
            // they stay prepared (`CachedSql`).
            let ids = id_array(due.iter().map(|d| d.id));
            let marked = marks.pick(&due);
            let marked_ids = id_array(marked.iter().copied());
            CachedSql::new(format!(
                "UPDATE httphooks_callbacks SET claim_token = ?, \
                 claim_started = id IN (SELECT value FROM json_each(?)), claimed_until = {lease} \
                 WHERE id IN (SELECT value FROM json_each(?))",
                lease = lease_until_sql(),
            ))
            .text(token)
            .text(&marked_ids)
            .timestamp(now)
            .text(&ids)
            .execute(self)?;
            let callbacks = claimed_callbacks(self, &ids)?;
            Ok(super::backend::claimed_in_order(callbacks, &due, &marked))
        }
    }

    fn renew(&mut self, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>> {
        let ids = id_array(ids.iter().copied());
        let enabled = if started {
            " AND EXISTS (SELECT 1 FROM httphooks_hooks h WHERE h.id = hook_id AND h.enabled)"
        } else {
            ""
        };
        let rows: Vec<IdRow> = CachedSql::new(format!(
            "UPDATE httphooks_callbacks SET claimed_until = {lease}, \
             claim_started = (claim_started OR {started}) \
             WHERE id IN (SELECT value FROM json_each(?)) AND claim_token = ? \
             AND status = 'waiting'{enabled} RETURNING id",
            lease = lease_until_sql(),
            started = i32::from(started),
        ))
        .timestamp(now())
        .text(&ids)
        .text(token)
        .load(self)?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    fn due_condition(&self, filter: &ClaimFilter) -> String {
        due_condition(filter, now())
    }

    /// One cached UPDATE per callback by primary key: in-process, a prepared statement
    /// run again costs less than writing the outcomes as JSON and reading them back.
    fn apply_outcomes(&mut self, token: &str, outcomes: &[&Outcome]) -> Result<usize> {
        let updated_at = now();
        let mut updated = 0;
        for outcome in outcomes {
            updated += CachedSql::new(
                "UPDATE httphooks_callbacks SET status = ?, status_details = ?, \
                 attempts = attempts + ?, next_attempt_at = ?, updated_at = ?, \
                 claimed_until = NULL, claim_token = NULL, claim_started = 0, \
                 payload = COALESCE(?, payload) WHERE id = ? AND claim_token = ?",
            )
            .text(outcome.status.as_str())
            .text(&outcome.status_details)
            .integer(outcome.attempts.len() as i64)
            .optional_timestamp(outcome.next_attempt_at)
            .timestamp(updated_at)
            .optional_text(inline_payload(outcome))
            .integer(outcome.callback_id)
            .text(token)
            .execute(self)?;
        }
        Ok(updated)
    }

    /// One cached INSERT per attempt, for the same reason.
    fn insert_attempts(&mut self, attempts: &[&Attempt]) -> Result<()> {
        for a in attempts {
            CachedSql::new(
                "INSERT INTO httphooks_attempts (callback_id, attempt, started_at, elapsed_ms, \
                 request_method, request_url, request_headers, request_body, \
                 response_status_code, response_reason, response_headers, response_body, \
                 error_kind, error_message, batch, response_body_callback_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .integer(a.callback_id)
            .integer(a.attempt.into())
            .timestamp(a.started_at)
            .integer(a.elapsed_ms)
            .text(&a.request_method)
            .text(&a.request_url)
            .text(&a.request_headers)
            .text(&a.request_body)
            .optional_integer(a.response_status_code.map(i64::from))
            .optional_text(a.response_reason.as_deref())
            .optional_text(a.response_headers.as_deref())
            .optional_text(a.response_body.as_deref())
            .optional_text(a.error_kind.as_deref())
            .optional_text(a.error_message.as_deref())
            .optional_text(a.batch.as_deref())
            .optional_integer(a.response_body_callback_id)
            .execute(self)?;
        }
        Ok(())
    }

    /// Where the triggers write too (see the migrations); matched to the hook version
    /// now, since a custom event names its hook.
    fn backfill_sql(&self, table: &Table, version_id: i64) -> BackfillSql {
        let keys: Vec<String> = primary_key(&table.columns)
            .iter()
            .map(|k| format!("t.{}", quote_ident(&k.name)))
            .collect();
        BackfillSql {
            table: quote_ident(&table.name),
            key_columns: keys.join(", "),
            key_list: keys.clone(),
            key_json: format!("json_array({})", keys.join(", ")),
            insert_select: format!(
                "INSERT INTO httphooks_new_callbacks (version_id, event_type, object_id, row_data, created_at) \
                 SELECT {version_id}, 'backfill', {}, {}, julianday('now')",
                object_id("t", &table.columns),
                row_json("t", &table.columns)
            ),
            lock: "",
            quote_literal,
        }
    }

    fn enqueue(&mut self, hook: &str, event: &str, data: &serde_json::Value) -> Result<usize> {
        Ok(diesel::sql_query(
            "INSERT INTO httphooks_new_callbacks (version_id, event_type, row_data, created_at) \
             SELECT h.version_id, ?, json(?), julianday('now') \
             FROM httphooks_hooks h WHERE h.name = ? AND h.enabled",
        )
        .bind::<Text, _>(event)
        .bind::<Text, _>(data.to_string())
        .bind::<Text, _>(hook)
        .execute(self)?)
    }
}
