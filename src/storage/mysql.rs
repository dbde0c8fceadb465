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

mod admission;
mod triggers;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

/// Times are bound as DATETIME: diesel's `Timestamp` binds MySQL's TIMESTAMP type,
/// whose range (1970–2038) does not hold the far dates the due rule uses.
type Datetime = diesel::sql_types::Datetime;
use diesel::MysqlConnection;

use super::backend::{
    id_list, lease_ms_sql, outcomes_json, timestamp_literal, BackfillSql, Claim, ClaimFilter,
    Claimed, IdRow, Outcome, Profile,
};
use super::models::{Attempt, Callback};
use super::{connection_error, CaptureState, Column, ColumnKind, Table, TableEvent, Watched};
use crate::error::{Error, Result};
use triggers::{drop_trigger_sql, trigger_name, trigger_sql, triggers, TriggerRow};

/// The claim order: a generated column (see the migration), indexed after status.
const DUE_KEY: &str = "httphooks_callbacks.due_at";

/// The database's clock, in the UTC the timestamps hold.
pub(super) const NOW: &str = "UTC_TIMESTAMP(6)";

/// MySQL limits identifiers (trigger names among them) to 64 characters.
pub(super) const MAX_IDENTIFIER: usize = 64;

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
    let check = "that the server is running, the database exists and accepts you";
    let fail = |e: &dyn std::fmt::Display| connection_error("MySQL", url, check, e);
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

/// A row the claim may lock, and its place in claim order.
#[derive(QueryableByName)]
struct DueCandidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Datetime)]
    due_at: chrono::NaiveDateTime,
}

/// The most a callback's event data may take on MySQL: half of what one row of the
/// callback (event data and stored body together) may be read back in, a packet.
pub(super) const PACKET_HEADROOM: i64 = 65_536;

/// The due rule (see `ClaimFilter::sql_condition`) with MySQL's spelling and clock, the
/// due time a literal. A position to start after is spelt as two ranges, which MySQL
/// reads from the due index (a row-value comparison it may not).
fn due_condition(filter: &ClaimFilter, due_before: chrono::NaiveDateTime) -> String {
    let mut condition = filter.sql_condition(DUE_KEY, &timestamp_literal(due_before), NOW);
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

static PROFILE: Profile = Profile {
    name: "MySQL",
    // Row locks: runs on several hosts claim and record at the same time.
    allows_concurrent_writers: true,
    other_schema_hint: None,
    commits_on_ddl: true,
    captures_truncate: false,
    // Durability is a server setting here (innodb_flush_log_at_trx_commit), not a
    // session's. As on PostgreSQL, a lock on httphooks' tables makes a statement give
    // up after a second, and the run retries it until its deadline instead of waiting
    // past it.
    delivery_session: "SET SESSION innodb_lock_wait_timeout = 1, SESSION lock_wait_timeout = 1",
    due_key: DUE_KEY,
};

impl super::backend::Embedded for MysqlConnection {
    const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/mysql");
}

impl super::Backend for MysqlConnection {
    fn profile(&self) -> &'static Profile {
        &PROFILE
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

    fn uncaptured_paths(&mut self, table: &Table, events: &[TableEvent]) -> Result<Vec<String>> {
        triggers::uncaptured_paths(self, table, events)
    }

    /// Made with the first ordered hook (see the migration), online: InnoDB builds it
    /// while the application and runs go on writing.
    /// The ordered hooks' index (hook, status, row, id) serves coalescing too.
    fn index_for_coalescing(&mut self) -> Result<()> {
        self.index_for_ordered_hooks()
    }

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
        let names: Vec<String> = TableEvent::ROW
            .into_iter()
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
        let names: Vec<String> = TableEvent::ROW
            .into_iter()
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
            .map(|t| (t.name, t.event.to_string(), t.body))
            .collect();
        Ok(CaptureState::comparing(found, expected))
    }

    fn admit(&mut self, limit: i64) -> Result<usize> {
        admission::admit(self, limit)
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
    fn claim(&mut self, claim: &Claim) -> Result<Vec<Claimed>> {
        let (filter, limit, token, marks) = (claim.filter, claim.limit, claim.token, claim.marks);
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

    fn due_condition(&self, filter: &ClaimFilter) -> String {
        due_condition(filter, filter.due_before(super::now()))
    }

    /// As on the others (`keep_answers_sql`), as a self-join: MySQL refuses an UPDATE
    /// whose subquery reads the table it changes.
    fn keep_answers_of(&mut self, holders: &[i64], staying: &[i64]) -> Result<()> {
        let (holders, staying) = (
            id_list(holders.iter().copied()),
            id_list(staying.iter().copied()),
        );
        self.batch_execute(&format!(
            "UPDATE httphooks_attempts m JOIN httphooks_attempts h \
               ON h.callback_id = m.response_body_callback_id AND h.started_at = m.started_at \
               AND h.response_body IS NOT NULL \
             SET m.response_body = h.response_body, m.response_body_callback_id = NULL \
             WHERE m.response_body_callback_id IN ({holders}) AND m.callback_id IN ({staying})"
        ))?;
        Ok(())
    }

    /// One INSERT of many rows: a round trip per attempt would cost more than the
    /// statement's planning.
    fn insert_attempts(&mut self, attempts: &[&Attempt]) -> Result<()> {
        diesel::insert_into(super::schema::httphooks_attempts::table)
            .values(attempts.to_vec())
            .execute(self)?;
        Ok(())
    }

    /// One UPDATE joined to the changes: STRAIGHT_JOIN reads JSON_TABLE first and finds
    /// each callback by primary key, so the rows are locked in the order of the array,
    /// which `record` sorts by id as claims and renewals lock them (opposite orders would
    /// deadlock).
    fn apply_outcomes(&mut self, token: &str, outcomes: &[&Outcome]) -> Result<usize> {
        let changes = outcomes_json(outcomes, |text| text.into());
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
        .bind::<Text, _>(&changes)
        .bind::<Datetime, _>(super::now())
        .bind::<Text, _>(token)
        .execute(self)?)
    }

    /// The row as the capture trigger records it; the rows read are share-locked
    /// (`LOCK IN SHARE MODE`, which MariaDB and MySQL 8 both take).
    fn backfill_sql(&self, table: &Table, version_id: i64) -> BackfillSql {
        let keys: Vec<String> = super::primary_key(&table.columns)
            .iter()
            .map(|k| format!("t.{}", quote_ident(&k.name)))
            .collect();
        BackfillSql {
            table: quote_ident(&table.name),
            key_columns: keys.join(", "),
            key_list: keys.clone(),
            key_json: format!("CAST(JSON_ARRAY({}) AS CHAR)", keys.join(", ")),
            insert_select: format!(
                "INSERT INTO httphooks_new_callbacks (version_id, event_type, object_id, row_data, created_at) \
                 SELECT {version_id}, 'backfill', {}, {}, UTC_TIMESTAMP(6)",
                triggers::object_id("t", &table.columns),
                triggers::row_json("t", &table.columns)
            ),
            lock: "LOCK IN SHARE MODE",
            quote_literal,
        }
    }

    fn lock_unheld(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        super::backend::lock_unheld_rows(self, ids)
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
