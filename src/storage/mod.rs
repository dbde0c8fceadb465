//! Storage: httphooks' tables, the queue operations on them, and the SQL that differs
//! between backends. Each backend implements [`backend::Backend`] in its own file
//! (`sqlite.rs`, `postgres.rs`, `mysql.rs`), reached only through the methods of [`Db`]
//! in this file; queries every backend runs as they are use diesel's DSL in the other
//! modules (`with_conn!`).

use std::path::Path;
use std::time::Duration;

use diesel::{PgConnection, SqliteConnection};

use crate::error::{one_line, Error, Result};

pub mod backend;
pub mod callbacks;
pub mod capture;
pub mod enqueue;
pub mod health;
pub mod hooks;
mod migrations;
pub mod models;
#[cfg(feature = "mysql")]
mod mysql;
mod postgres;
pub mod runs;
pub mod schema;
mod sqlite;
pub mod text;
pub mod tokens;

pub(crate) use backend::CountRow;
pub use backend::{
    Backend, CaptureState, Column, ColumnKind, Table, Watched, ROW_EVENTS, TABLE_EVENTS,
};
pub use migrations::{ensure_migrated, migrate};

/// The file used when no database URL is given (docs/behaviour.md §1).
pub const DEFAULT_SQLITE_FILE: &str = "httphooks.sqlite3";

/// How long a command waits for a SQLite lock another connection holds.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// An open connection to one of the supported backends.
pub enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    #[cfg(feature = "mysql")]
    Mysql(diesel::MysqlConnection),
}

/// Runs the same diesel code on whichever connection `db` holds; the body is compiled
/// once per backend, so it may use only what every backend supports (what does not
/// goes through [`Backend`]).
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($conn) => $body,
            $crate::storage::Db::Postgres($conn) => $body,
            #[cfg(feature = "mysql")]
            $crate::storage::Db::Mysql($conn) => $body,
        }
    };
}
pub(crate) use with_conn;

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(String),
    Postgres(String),
    Mysql(String),
}

impl DatabaseLocation {
    /// Chooses the backend from the URL's scheme (docs/behaviour.md §1); no URL means the default
    /// SQLite file in the current directory.
    pub fn parse(url: Option<&str>) -> Result<DatabaseLocation> {
        let url = match url.map(str::trim) {
            None | Some("") => return Ok(DatabaseLocation::Sqlite(DEFAULT_SQLITE_FILE.to_owned())),
            Some(url) => url,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(DatabaseLocation::Sqlite(path.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(DatabaseLocation::Sqlite(path.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("mysql://") {
            // MySQL connects without a database and then fails on every statement.
            let database = rest
                .split_once('/')
                .map_or("", |(_, path)| path.split('?').next().unwrap_or(""));
            if database.is_empty() || database.contains('/') {
                return Err(Error::invalid(format!(
                    "the MySQL URL {} names no database; end it with one, as in mysql://USER@HOST:3306/DATABASE",
                    redact_url(url)
                )));
            }
            return Ok(DatabaseLocation::Mysql(url.to_owned()));
        }
        if url.contains("://") {
            return Err(Error::invalid(format!(
                "unsupported database URL scheme in {}; use sqlite://PATH, a file path, postgres://… or mysql://…",
                redact_url(url)
            )));
        }
        Ok(DatabaseLocation::Sqlite(url.to_owned()))
    }
}

/// Whether `url` names a SQLite file that does not exist yet (connecting creates it).
pub fn would_create_sqlite_file(url: Option<&str>) -> bool {
    matches!(DatabaseLocation::parse(url), Ok(DatabaseLocation::Sqlite(path)) if path != ":memory:" && !Path::new(&path).exists())
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
        Db::connect_waiting(url, create, LOCK_WAIT)
    }

    /// [`Db::connect`], waiting up to `busy` at a time for a SQLite lock another
    /// connection holds (callers that keep a deadline wait less and try again).
    pub fn connect_waiting(url: Option<&str>, create: bool, busy: Duration) -> Result<Db> {
        match DatabaseLocation::parse(url)? {
            DatabaseLocation::Sqlite(path) => {
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
                sqlite::open(&path, busy).map(Db::Sqlite)
            }
            DatabaseLocation::Postgres(url) => postgres::open(&url).map(Db::Postgres),
            #[cfg(feature = "mysql")]
            DatabaseLocation::Mysql(url) => mysql::open(&url).map(Db::Mysql),
            #[cfg(not(feature = "mysql"))]
            DatabaseLocation::Mysql(_) => Err(Error::invalid(
                "this httphooks was built without MySQL/MariaDB support; rebuild it with `cargo build --release --features mysql` (see README: MySQL and MariaDB)",
            )),
        }
    }

    /// Connects and checks that the schema is current: what every command but
    /// `migrate` does first. It never creates a database, so that a command run in the
    /// wrong directory fails (exit 3) instead of reporting on an empty one (docs/behaviour.md §1).
    pub fn open_migrated(url: Option<&str>) -> Result<Db> {
        Db::open_migrated_waiting(url, LOCK_WAIT)
    }

    /// [`Db::open_migrated`], waiting up to `busy` at a time for a SQLite lock.
    pub fn open_migrated_waiting(url: Option<&str>, busy: Duration) -> Result<Db> {
        let mut db = Db::connect_waiting(url, false, busy)?;
        ensure_migrated(&mut db)?;
        db.backend().prepare_for_use()?;
        Ok(db)
    }

    /// As [`Db::open_migrated_waiting`], but the default SQLite file (no database URL
    /// given) is created and migrated on first use, saying so on stderr: what the main
    /// job, `send_callbacks`, does (docs/behaviour.md §1).
    pub fn open_creating_default(url: Option<&str>, busy: Duration) -> Result<Db> {
        let default_target = url.is_none_or(|u| u.trim().is_empty());
        if default_target && !Path::new(DEFAULT_SQLITE_FILE).exists() {
            let mut db = Db::connect_waiting(url, true, busy)?;
            migrate(&mut db)?;
            say_created(DEFAULT_SQLITE_FILE);
            return Ok(db);
        }
        Db::open_migrated_waiting(url, busy)
    }
    /// The backend this connection is to: the one place that looks at the variant.
    pub fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Db::Sqlite(conn) => conn,
            Db::Postgres(conn) => conn,
            #[cfg(feature = "mysql")]
            Db::Mysql(conn) => conn,
        }
    }

    fn backend_ref(&self) -> &dyn Backend {
        match self {
            Db::Sqlite(conn) => conn,
            Db::Postgres(conn) => conn,
            #[cfg(feature = "mysql")]
            Db::Mysql(conn) => conn,
        }
    }

    /// For the delivery engine's connections: commit without waiting for the disk.
    /// A crash of the machine (SQLite) or of the server (PostgreSQL, MySQL) can then
    /// undo the last few claims and recorded outcomes; those callbacks are sent again
    /// with the same webhook-id, which at-least-once delivery allows. Never corrupts
    /// anything. On SQLite a lock held by another connection is waited for one second
    /// at a time (the engine retries within its deadline instead of blocking past it).
    pub fn tune_for_delivery(&mut self) -> Result<()> {
        self.backend().tune_for_delivery()
    }

    /// See [`Backend::index_for_ordered_hooks`].
    pub fn index_for_ordered_hooks(&mut self) -> Result<()> {
        self.backend().index_for_ordered_hooks()
    }

    /// See [`Backend::commits_on_ddl`].
    pub fn commits_on_ddl(&self) -> bool {
        self.backend_ref().commits_on_ddl()
    }

    /// See [`Backend::captures_truncate`].
    pub fn captures_truncate(&self) -> bool {
        self.backend_ref().captures_truncate()
    }

    /// See [`Backend::max_callback_bytes`].
    pub fn max_callback_bytes(&mut self) -> Result<Option<i64>> {
        self.backend().max_callback_bytes()
    }

    /// See [`Backend::partition_relatives`].
    pub fn partition_relatives(&mut self, table: &Table) -> Result<Vec<String>> {
        self.backend().partition_relatives(table)
    }

    /// See [`Backend::uncaptured_paths`].
    pub fn uncaptured_paths(&mut self, table: &Table, events: &[String]) -> Result<Vec<String>> {
        self.backend().uncaptured_paths(table, events)
    }

    /// See [`Backend::allows_concurrent_writers`].
    pub fn allows_concurrent_writers(&self) -> bool {
        self.backend_ref().allows_concurrent_writers()
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend_ref().name()
    }

    /// See [`Backend::other_schema_hint`].
    pub fn other_schema_hint(&self) -> Option<&'static str> {
        self.backend_ref().other_schema_hint()
    }

    /// The columns of an application table, or None when there is no such table.
    pub fn table_columns(&mut self, table: &str) -> Result<Option<Vec<Column>>> {
        Ok(self.find_table(table)?.map(|t| t.columns))
    }

    /// An application table by the name a user gives or a hook stores (on PostgreSQL
    /// `schema.table` for one outside the schema httphooks works in), or None.
    pub fn find_table(&mut self, name: &str) -> Result<Option<Table>> {
        self.backend().find_table(name)
    }

    /// The table with this identity whatever it is called now (PostgreSQL; elsewhere
    /// tables have no identity but their name, so None there).
    pub fn table_by_oid(&mut self, oid: i64) -> Result<Option<Table>> {
        self.backend().table_by_oid(oid)
    }

    /// The table now carrying the capture triggers made for `stored_name`, when it was
    /// renamed (MySQL); None otherwise.
    pub fn table_by_triggers(&mut self, stored_name: &str) -> Result<Option<Table>> {
        self.backend().table_by_triggers(stored_name)
    }

    /// The SQL that creates the triggers turning row changes on `table` into callbacks
    /// (after dropping any it has). SQLite and MySQL triggers record only what
    /// `watched` says; the PostgreSQL trigger reads the hooks when it fires.
    pub fn trigger_sql(&self, table: &Table, watched: &Watched) -> Vec<String> {
        self.backend_ref().trigger_sql(table, watched)
    }

    /// The SQL that drops the triggers of `table`.
    pub fn drop_trigger_sql(&self, table: &Table) -> Vec<String> {
        self.backend_ref().drop_trigger_sql(table)
    }

    /// (Re-)creates the triggers of `table`.
    pub fn install_triggers(&mut self, table: &Table, watched: &Watched) -> Result<()> {
        let statements = self.backend().replace_trigger_sql(table, watched)?;
        self.execute_all(&statements)
    }

    /// Capture of a table renamed behind httphooks' back goes on under its new name,
    /// which its hooks now hold: triggers made for the old name (which MySQL moved with
    /// the table) are remade, and what they wrote is given the new name.
    pub fn move_capture(&mut self, from: &str, table: &Table, watched: &Watched) -> Result<()> {
        self.install_triggers(table, watched)?;
        let relabel = self.backend_ref().rename_pending_sql(from, &table.name);
        self.execute_all(relabel.as_slice())
    }

    pub fn drop_triggers(&mut self, table: &Table) -> Result<()> {
        let statements = self.drop_trigger_sql(table);
        self.execute_all(&statements)
    }

    /// Runs SQL statements one after the other.
    fn execute_all(&mut self, statements: &[String]) -> Result<()> {
        use diesel::connection::SimpleConnection;
        for statement in statements {
            with_conn!(self, |conn| conn.batch_execute(statement))?;
        }
        Ok(())
    }

    /// Whether the table's triggers are the ones [`Db::install_triggers`] would make
    /// now: a cheap look at the catalog (SQLite compares the stored trigger SQL, so a
    /// column added, renamed or dropped since makes them stale).
    pub fn capture_state(&mut self, table: &Table, watched: &Watched) -> Result<CaptureState> {
        self.backend().capture_state(table, watched)
    }

    /// Moves up to `limit` of the oldest new callbacks from where triggers and
    /// `enqueue` write them (httphooks_new_callbacks, cheap for the application to
    /// insert into) into the queue. Returns how many.
    pub fn admit_new_callbacks(&mut self, limit: i64) -> Result<usize> {
        self.backend().admit(limit)
    }

    /// New callbacks not admitted yet (made at or after `since`): waiting callbacks
    /// that the queue table does not show yet.
    pub fn count_new_callbacks(&mut self, since: Option<chrono::NaiveDateTime>) -> Result<i64> {
        self.backend().count_new(since)
    }

    /// When the oldest new callback not admitted yet was made (the same SQL on every
    /// backend: no parameters, the primary key's order).
    pub fn oldest_new_callback(&mut self) -> Result<Option<chrono::NaiveDateTime>> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct CreatedAt {
            #[diesel(sql_type = diesel::sql_types::Timestamp)]
            created_at: chrono::NaiveDateTime,
        }
        let rows: Vec<CreatedAt> = with_conn!(self, |conn| diesel::sql_query(
            "SELECT created_at FROM httphooks_new_callbacks ORDER BY id LIMIT 1"
        )
        .load(conn))?;
        Ok(rows.first().map(|row| row.created_at))
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
        self.backend().claim(filter, limit, token, marks)
    }

    /// See `callbacks::renew`.
    pub fn renew_claims(&mut self, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>> {
        self.backend().renew(token, ids, started)
    }

    /// Due callbacks in claim order, without claiming them.
    pub fn peek_due(
        &mut self,
        filter: &callbacks::ClaimFilter,
        limit: i64,
    ) -> Result<Vec<models::Callback>> {
        self.backend().peek_due(filter, limit)
    }

    /// Applies a JSON array of outcomes (see `callbacks::record`) to the callbacks this
    /// run still holds with `token`, in one statement.
    pub fn apply_outcomes(
        &mut self,
        token: &str,
        changes: &str,
        now: chrono::NaiveDateTime,
    ) -> Result<usize> {
        self.backend().apply_outcomes(token, changes, now)
    }

    /// Runs `f` in a transaction that takes the write lock up front on SQLite, so that
    /// concurrent writers wait for `busy_timeout` instead of failing half-way. Goes
    /// through diesel's transaction manager, so diesel's own nested transactions (SQLite
    /// batch inserts) become savepoints.
    pub fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        self.backend().begin_write()?;
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

    /// Runs a short write transaction (`op` opens it) again when the database rolled
    /// it back for a deadlock or a lock it could not get, a few times with growing
    /// pauses (about 5 s in all) before the error is the caller's: what a command that
    /// writes in batches beside running senders needs.
    pub fn retry_when_busy<T>(&mut self, mut op: impl FnMut(&mut Db) -> Result<T>) -> Result<T> {
        let mut pause = std::time::Duration::from_millis(20);
        for _ in 0..8 {
            match op(self) {
                Err(error) if error.db_failure() == Some(crate::error::DbFailure::Busy) => {
                    log::debug!("retrying after {pause:?}: {error}");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                }
                other => return other,
            }
        }
        op(self)
    }
}

/// Quotes an SQL identifier for SQLite and PostgreSQL (MySQL's are in `mysql.rs`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal for SQLite and PostgreSQL (which runs with
/// standard_conforming_strings on); MySQL's are in `mysql.rs`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The primary-key columns of a table, in key order.
pub fn primary_key(columns: &[Column]) -> Vec<&Column> {
    let mut keys: Vec<&Column> = columns.iter().filter(|c| c.primary_key > 0).collect();
    keys.sort_by_key(|c| c.primary_key);
    keys
}

/// What a connection error says of the problem, without the fix that sends the user to
/// DATABASE_URL: for a database that was reachable before and went away.
pub(crate) fn connection_problem(message: &str) -> &str {
    message
        .split("; check DATABASE_URL")
        .next()
        .unwrap_or(message)
}

/// `fix` completes "check DATABASE_URL and …" for the backend (see
/// [`connection_problem`]).
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
