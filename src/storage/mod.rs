//! Storage: httphooks' tables, the queue operations on them, and the SQL that differs
//! between backends. Backend differences live in `sqlite.rs` and `postgres.rs`, reached
//! only through the methods of [`Db`] in this file.

use std::path::Path;

use diesel::{PgConnection, SqliteConnection};

use crate::error::{one_line, Error, Result};

pub mod callbacks;
pub mod capture;
pub mod enqueue;
pub mod health;
pub mod hooks;
mod migrations;
pub mod models;
mod postgres;
pub mod runs;
pub mod schema;
mod sqlite;
pub mod text;
pub mod tokens;

pub use migrations::{ensure_migrated, migrate};

/// The file used when no database URL is given (SPEC §1).
pub const DEFAULT_SQLITE_FILE: &str = "httphooks.sqlite3";

/// An open connection to one of the supported backends.
pub enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs the same diesel code on whichever connection `db` holds; the body is compiled
/// once per backend, so it may use anything both backends support.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($conn) => $body,
            $crate::storage::Db::Postgres($conn) => $body,
        }
    };
}
pub(crate) use with_conn;

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(String),
    Postgres(String),
}

impl Target {
    /// Chooses the backend from the URL's scheme (SPEC §1); no URL means the default
    /// SQLite file in the current directory.
    pub fn parse(url: Option<&str>) -> Result<Target> {
        let url = match url.map(str::trim) {
            None | Some("") => return Ok(Target::Sqlite(DEFAULT_SQLITE_FILE.to_owned())),
            Some(url) => url,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Target::Sqlite(path.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(Target::Sqlite(path.to_owned()));
        }
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Err(Error::invalid(
                "MySQL/MariaDB is not supported yet; use a sqlite:// or postgres:// DATABASE_URL",
            ));
        }
        if url.contains("://") {
            return Err(Error::invalid(format!(
                "unsupported database URL scheme in {}; use sqlite://PATH, a file path or postgres://…",
                redact_url(url)
            )));
        }
        Ok(Target::Sqlite(url.to_owned()))
    }
}

/// Whether `url` names a SQLite file that does not exist yet (connecting creates it).
pub fn would_create_sqlite_file(url: Option<&str>) -> bool {
    matches!(Target::parse(url), Ok(Target::Sqlite(path)) if path != ":memory:" && !Path::new(&path).exists())
}

/// Tells the operator on stderr that a new SQLite database file was made, with its full
/// path: a command run in an unexpected directory is noticed at once.
pub fn say_created(path: &str) {
    eprintln!(
        "httphooks: created new database {} (set DATABASE_URL to use another)",
        shown_path(path)
    );
}

/// A SQLite path as messages show it: absolute, so the operator sees where it was.
fn shown_path(path: &str) -> String {
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}

/// The URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    // libpq also takes the password as a parameter (`?password=…`).
    let secret =
        |key: &str| key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword");
    if parsed.query_pairs().any(|(key, _)| secret(&key)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if secret(&key) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

impl Db {
    /// Connects to the database. `create` allows making a new SQLite file (only
    /// `migrate` does; every other command expects an existing database).
    pub fn connect(url: Option<&str>, create: bool) -> Result<Db> {
        match Target::parse(url)? {
            Target::Sqlite(path) => {
                if path.trim().is_empty() {
                    return Err(Error::invalid(
                        "the SQLite URL names no file; give one, as in sqlite://httphooks.sqlite3 or sqlite:///var/lib/app/db.sqlite3",
                    ));
                }
                let directory = Path::new(&path)
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty());
                if let Some(directory) = directory.filter(|d| !d.is_dir()) {
                    return Err(Error::environment(format!(
                        "the directory {} of the SQLite database does not exist; create it, or point DATABASE_URL (or --database-url) elsewhere",
                        shown_path(&directory.to_string_lossy())
                    )));
                }
                if !create && path != ":memory:" && !Path::new(&path).exists() {
                    return Err(Error::environment(format!(
                        "there is no httphooks database at {}; set DATABASE_URL (or --database-url) to your database, or create one there with `httphooks migrate`",
                        shown_path(&path)
                    )));
                }
                sqlite::open(&path).map(Db::Sqlite)
            }
            Target::Postgres(url) => postgres::open(&url).map(Db::Postgres),
        }
    }

    /// Connects and checks that the schema is current: what every command but
    /// `migrate` does first. It never creates a database, so that a command run in the
    /// wrong directory fails (exit 3) instead of reporting on an empty one (SPEC §1).
    pub fn open_migrated(url: Option<&str>) -> Result<Db> {
        let mut db = Db::connect(url, false)?;
        ensure_migrated(&mut db)?;
        Ok(db)
    }

    /// As [`Db::open_migrated`], but the default SQLite file (no database URL given)
    /// is created and migrated on first use, saying so on stderr: what the main job,
    /// `send_callbacks`, does (SPEC §1).
    pub fn open_creating_default(url: Option<&str>) -> Result<Db> {
        let default_target = url.is_none_or(|u| u.trim().is_empty());
        if default_target && !Path::new(DEFAULT_SQLITE_FILE).exists() {
            let mut db = Db::connect(url, true)?;
            migrate(&mut db)?;
            say_created(DEFAULT_SQLITE_FILE);
            return Ok(db);
        }
        Db::open_migrated(url)
    }
    /// For the delivery engine's connections: commit without waiting for the disk.
    /// A crash of the machine (SQLite) or of the server (PostgreSQL) can then undo the
    /// last few claims and recorded outcomes; those callbacks are sent again with the
    /// same webhook-id, which at-least-once delivery allows. Never corrupts anything.
    /// On SQLite a lock held by another connection is waited for one second at a time
    /// (the engine retries within its deadline instead of blocking past it).
    pub fn tune_for_delivery(&mut self) -> Result<()> {
        use diesel::connection::SimpleConnection;
        match self {
            Db::Sqlite(conn) => {
                conn.batch_execute("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 1000")?
            }
            // A lock on httphooks' tables (a long transaction, a migration) must not
            // hold a run past its deadline: statements give up waiting after a second
            // and the run retries them until its deadline, like SQLite's busy timeout.
            Db::Postgres(conn) => {
                conn.batch_execute("SET synchronous_commit = off; SET lock_timeout = '1s'")?
            }
        }
        Ok(())
    }

    /// Whether a second connection may write while the first claims (PostgreSQL);
    /// SQLite has one writer at a time, and two connections would only wait on each
    /// other.
    pub fn allows_concurrent_writers(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres(_) => "PostgreSQL",
        }
    }

    /// The columns of an application table, or None when there is no such table.
    pub fn table_columns(&mut self, table: &str) -> Result<Option<Vec<Column>>> {
        Ok(self.find_table(table)?.map(|t| t.columns))
    }

    /// An application table by the name a user gives or a hook stores (on PostgreSQL
    /// `schema.table` for one outside the schema httphooks works in), or None.
    pub fn find_table(&mut self, name: &str) -> Result<Option<Table>> {
        match self {
            Db::Sqlite(conn) => sqlite::find_table(conn, name),
            Db::Postgres(conn) => postgres::find_table(conn, name),
        }
    }

    /// The table with this identity whatever it is called now (PostgreSQL; SQLite
    /// tables have no identity but their name, so None there).
    pub fn table_by_oid(&mut self, oid: i64) -> Result<Option<Table>> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(conn) => postgres::table_by_oid(conn, oid),
        }
    }

    /// The SQL that creates the triggers turning row changes on `table` into callbacks
    /// (after dropping any it has). SQLite triggers record only what `watched` says; the
    /// PostgreSQL trigger reads the hooks when it fires.
    pub fn trigger_sql(&self, table: &Table, watched: &Watched) -> Vec<String> {
        match self {
            Db::Sqlite(_) => sqlite::trigger_sql(table, watched),
            Db::Postgres(_) => postgres::trigger_sql(table),
        }
    }

    /// The SQL that drops the triggers of `table`.
    pub fn drop_trigger_sql(&self, table: &Table) -> Vec<String> {
        match self {
            Db::Sqlite(_) => sqlite::drop_trigger_sql(&table.name),
            Db::Postgres(_) => postgres::drop_trigger_sql(table),
        }
    }

    /// (Re-)creates the triggers of `table`.
    pub fn install_triggers(&mut self, table: &Table, watched: &Watched) -> Result<()> {
        use diesel::connection::SimpleConnection;
        let mut statements = self.drop_trigger_sql(table);
        statements.extend(self.trigger_sql(table, watched));
        with_conn!(self, |conn| conn.batch_execute(&statements.join("\n")))?;
        Ok(())
    }

    pub fn drop_triggers(&mut self, table: &Table) -> Result<()> {
        use diesel::connection::SimpleConnection;
        let statements = self.drop_trigger_sql(table);
        with_conn!(self, |conn| conn.batch_execute(&statements.join("\n")))?;
        Ok(())
    }

    /// Whether the table's triggers are the ones [`Db::install_triggers`] would make
    /// now: a cheap look at the catalog (SQLite compares the stored trigger SQL, so a
    /// column added, renamed or dropped since makes them stale).
    pub fn capture_state(&mut self, table: &Table, watched: &Watched) -> Result<CaptureState> {
        match self {
            Db::Sqlite(conn) => sqlite::capture_state(conn, table, watched),
            Db::Postgres(conn) => postgres::capture_state(conn, table),
        }
    }

    /// Moves up to `limit` of the oldest new callbacks from where triggers and
    /// `enqueue` write them (httphooks_new_callbacks, cheap for the application to
    /// insert into) into the queue. Returns how many.
    pub fn admit_new_callbacks(&mut self, limit: i64) -> Result<usize> {
        match self {
            Db::Sqlite(conn) => sqlite::admit(conn, limit),
            Db::Postgres(conn) => postgres::admit(conn, limit),
        }
    }

    /// New callbacks not admitted yet (made at or after `since`): waiting callbacks
    /// that the queue table does not show yet.
    pub fn count_new_callbacks(&mut self, since: Option<chrono::NaiveDateTime>) -> Result<i64> {
        match self {
            Db::Sqlite(conn) => sqlite::count_new(conn, since),
            Db::Postgres(conn) => postgres::count_new(conn, since),
        }
    }

    /// Claims up to `limit` due callbacks for `token`, each with a lease (see
    /// `callbacks::lease_for`), marking some as started (`marks`). Call it inside
    /// [`Db::write_transaction`].
    pub fn claim(
        &mut self,
        filter: &callbacks::ClaimFilter,
        limit: i64,
        token: &str,
        marks: &callbacks::StartMarks,
    ) -> Result<Vec<callbacks::Claimed>> {
        match self {
            Db::Sqlite(conn) => sqlite::claim(conn, filter, limit, token, marks),
            Db::Postgres(conn) => postgres::claim(conn, filter, limit, token, marks),
        }
    }

    /// See `callbacks::renew`.
    pub fn renew_claims(&mut self, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>> {
        match self {
            Db::Sqlite(conn) => sqlite::renew(conn, token, ids, started),
            Db::Postgres(conn) => postgres::renew(conn, token, ids, started),
        }
    }

    /// Due callbacks in claim order, without claiming them.
    pub fn peek_due(
        &mut self,
        filter: &callbacks::ClaimFilter,
        limit: i64,
    ) -> Result<Vec<models::Callback>> {
        match self {
            Db::Sqlite(conn) => sqlite::peek_due(conn, filter, limit),
            Db::Postgres(conn) => postgres::peek_due(conn, filter, limit),
        }
    }

    /// Applies a JSON array of outcomes (see `callbacks::record`) to the callbacks this
    /// run still holds with `token`, in one statement.
    pub fn apply_outcomes(
        &mut self,
        token: &str,
        changes: &str,
        now: chrono::NaiveDateTime,
    ) -> Result<usize> {
        match self {
            Db::Sqlite(conn) => sqlite::apply_outcomes(conn, token, changes, now),
            Db::Postgres(conn) => postgres::apply_outcomes(conn, token, changes, now),
        }
    }

    /// Runs `f` in a transaction that takes the write lock up front on SQLite, so that
    /// concurrent writers wait for `busy_timeout` instead of failing half-way. Goes
    /// through diesel's transaction manager, so diesel's own nested transactions (SQLite
    /// batch inserts) become savepoints.
    pub fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        match self {
            Db::Sqlite(conn) => {
                AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE")?
            }
            Db::Postgres(conn) => AnsiTransactionManager::begin_transaction(conn)?,
        }
        let result = f(self);
        let end = match &result {
            Ok(_) => with_conn!(self, |conn| AnsiTransactionManager::commit_transaction(
                conn
            )),
            Err(_) => with_conn!(self, |conn| AnsiTransactionManager::rollback_transaction(
                conn
            )),
        };
        let value = result?;
        end?;
        Ok(value)
    }
}

/// The events of a table's rows.
pub const ROW_EVENTS: [&str; 3] = ["insert", "update", "delete"];

/// What the enabled hooks of a table listen to: its row events, and for updates the
/// columns they watch (None when some hook takes any update).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    pub events: Vec<String>,
    pub update_columns: Option<Vec<String>>,
}

/// The row of a `SELECT count(*) AS n` written in SQL.
#[derive(diesel::QueryableByName)]
pub(crate) struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// An application table as httphooks finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The name hooks store and messages show: on PostgreSQL schema-qualified
    /// (`sales.orders`) when the table is not in the schema httphooks works in.
    pub name: String,
    /// PostgreSQL: how DDL names it (quoted, qualified where needed).
    pub sql_name: String,
    /// PostgreSQL: the table's oid, which renames keep.
    pub oid: Option<i64>,
    /// Its columns; `primary_key` marks the key that `object_id` is made of (the
    /// table's primary key, or the hooks' `--key` columns, see [`Table::keyed_by`]).
    pub columns: Vec<Column>,
}

impl Table {
    /// The table with `key` (column names) as the key triggers record, in place of
    /// its primary key; None keeps the primary key.
    pub fn keyed_by(mut self, key: Option<&[String]>) -> Table {
        if let Some(key) = key {
            for column in &mut self.columns {
                column.primary_key = key
                    .iter()
                    .position(|k| k == &column.name)
                    .map_or(0, |p| p as i32 + 1);
            }
        }
        self
    }

    /// The names of the key columns, in key order.
    pub fn key_names(&self) -> Vec<String> {
        primary_key(&self.columns)
            .into_iter()
            .map(|c| c.name.clone())
            .collect()
    }
}

/// What a table's triggers are, compared with what httphooks would install now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureState {
    Intact,
    /// No trigger of httphooks' on the table.
    Missing,
    /// Triggers that do not match the table's columns, key or hooks.
    Stale,
}

/// What httphooks knows of an application table's column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// 1-based position in the primary key, 0 when not part of it.
    pub primary_key: i32,
    /// The database holds only integers here whatever is written (SQLite's rowid
    /// alias), so triggers need not guard against other types.
    pub always_integer: bool,
}

/// Column types as far as payloads care: what a sample value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Real,
    Boolean,
    Text,
    Timestamp,
    Json,
    Blob,
}

impl ColumnKind {
    /// Maps a declared SQL type (either backend's spelling) to its kind.
    pub fn from_declared(declared: &str) -> ColumnKind {
        let t = declared.to_ascii_lowercase();
        if t.starts_with("json") {
            ColumnKind::Json
        } else if t.contains("bool") {
            ColumnKind::Boolean
        } else if t.contains("int") || t == "serial" || t == "bigserial" || t == "smallserial" {
            ColumnKind::Integer
        } else if t.contains("real")
            || t.contains("floa")
            || t.contains("doub")
            || t.contains("numeric")
            || t.contains("decimal")
        {
            ColumnKind::Real
        } else if t.contains("time") || t.contains("date") {
            ColumnKind::Timestamp
        } else if t.contains("blob") || t == "bytea" {
            ColumnKind::Blob
        } else {
            ColumnKind::Text
        }
    }
}

/// Quotes an SQL identifier; works for both backends.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal; works for both backends (PostgreSQL runs with
/// standard_conforming_strings on).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The primary-key columns of a table, in key order.
pub fn primary_key(columns: &[Column]) -> Vec<&Column> {
    let mut keys: Vec<&Column> = columns.iter().filter(|c| c.primary_key > 0).collect();
    keys.sort_by_key(|c| c.primary_key);
    keys
}

/// `fix` completes "check DATABASE_URL and …" for the backend.
pub(crate) fn connection_error(
    backend: &str,
    target: &str,
    fix: &str,
    error: impl std::fmt::Display,
) -> Error {
    Error::Database {
        failure: crate::error::DbFailure::Connection,
        message: format!(
            "cannot open the {backend} database at {}: {}; check DATABASE_URL and {fix}",
            redact_url(target),
            one_line(&error.to_string())
        ),
    }
}

/// `span` before now, never earlier than the year 1: no callback is older, every
/// backend stores that date, and SQLite, which compares timestamps as text, would sort
/// negative years wrongly. A span too large to represent (None) means the year 1 too.
pub(crate) fn before_now(span: Option<chrono::TimeDelta>) -> chrono::NaiveDateTime {
    let year_one = chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(chrono::NaiveDateTime::MIN);
    span.and_then(|span| now().checked_sub_signed(span))
        .map_or(year_one, |time| time.max(year_one))
}

pub(crate) fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        let shown = super::redact_url("postgres://h/db?user=u&password=secret&sslmode=require");
        assert!(
            !shown.contains("secret") && shown.contains("sslmode=require"),
            "{shown}"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
