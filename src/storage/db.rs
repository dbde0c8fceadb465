//! An open connection to one of the supported backends. What differs between them is
//! reached through [`Db::backend`], the [`Backend`] interface; diesel code every backend
//! runs as it is goes through `with_conn!`.

use std::path::Path;
use std::time::Duration;

use diesel::{PgConnection, SqliteConnection};

use super::location::{
    say_created, shown_path, sqlite_file_to_create, DatabaseLocation, DEFAULT_SQLITE_FILE,
};
#[cfg(feature = "mysql")]
use super::mysql;
use super::{ensure_migrated, migrate, Backend, Table, Watched};
use super::{postgres, sqlite};
use crate::error::{Error, Result};

/// How long a command waits for a SQLite lock another connection holds.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// An open connection to one of the supported backends.
pub struct Db {
    pub(super) conn: Conn,
}

/// The connection itself; only storage looks at which it is.
pub(super) enum Conn {
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
        match &mut $db.conn {
            $crate::storage::db::Conn::Sqlite($conn) => $body,
            $crate::storage::db::Conn::Postgres($conn) => $body,
            #[cfg(feature = "mysql")]
            $crate::storage::db::Conn::Mysql($conn) => $body,
        }
    };
}
pub(crate) use with_conn;

/// Opens connections to one database, its URL read once: what a run that connects
/// again and again (reconnecting, a second connection, the token cache) holds.
#[derive(Debug, Clone)]
pub struct Connector {
    location: DatabaseLocation,
}

impl Connector {
    pub fn new(url: Option<&str>) -> Result<Connector> {
        Ok(Connector {
            location: DatabaseLocation::parse(url)?,
        })
    }

    /// A connection to the migrated database, waiting up to `busy` at a time for a
    /// SQLite lock (see [`Db::open_migrated_waiting`]).
    pub fn open_migrated(&self, busy: Duration) -> Result<Db> {
        let mut db = Db::connect_to(&self.location, false, busy)?;
        ensure_migrated(&mut db)?;
        db.backend().prepare_for_use()?;
        Ok(db)
    }

    /// The database, the same text for every run against it from this host: the
    /// file's absolute path (SQLite) or the URL without its password.
    pub fn identity(&self) -> String {
        self.location.identity()
    }
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
        Db::connect_to(&DatabaseLocation::parse(url)?, create, busy)
    }

    fn connect_to(location: &DatabaseLocation, create: bool, busy: Duration) -> Result<Db> {
        let conn = match location.clone() {
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
                sqlite::open(&path, busy).map(Conn::Sqlite)
            }
            DatabaseLocation::Postgres(url) => postgres::open(&url).map(Conn::Postgres),
            #[cfg(feature = "mysql")]
            DatabaseLocation::Mysql(url) => mysql::open(&url).map(Conn::Mysql),
            #[cfg(not(feature = "mysql"))]
            DatabaseLocation::Mysql(_) => Err(Error::invalid(
                "this httphooks was built without MySQL/MariaDB support; rebuild it with `cargo build --release --features mysql` (see the README: On MySQL or MariaDB)",
            )),
        }?;
        Ok(Db { conn })
    }

    /// Connects, making the SQLite file if there is none and saying so on stderr
    /// (`migrate`).
    pub fn connect_creating(url: Option<&str>) -> Result<Db> {
        let created = sqlite_file_to_create(url);
        let db = Db::connect(url, true)?;
        if let Some(path) = created {
            say_created(&path, url.is_some_and(|u| !u.trim().is_empty()));
        }
        Ok(db)
    }

    /// Connects and checks that the schema is current: what every command but
    /// `migrate` does first. It never creates a database, so that a command run in the
    /// wrong directory fails (exit 3) instead of reporting on an empty one (docs/behaviour.md §1).
    pub fn open_migrated(url: Option<&str>) -> Result<Db> {
        Db::open_migrated_waiting(url, LOCK_WAIT)
    }

    /// [`Db::open_migrated`], waiting up to `busy` at a time for a SQLite lock.
    pub fn open_migrated_waiting(url: Option<&str>, busy: Duration) -> Result<Db> {
        Connector::new(url)?.open_migrated(busy)
    }

    /// As [`Db::open_migrated_waiting`], but the default SQLite file (no database URL
    /// given) is created and migrated on first use, saying so on stderr: what the main
    /// job, `send_callbacks`, does (docs/behaviour.md §1).
    pub fn open_creating_default(url: Option<&str>, busy: Duration) -> Result<Db> {
        let default_target = url.is_none_or(|u| u.trim().is_empty());
        if default_target && !Path::new(DEFAULT_SQLITE_FILE).exists() {
            let mut db = Db::connect_waiting(url, true, busy)?;
            migrate(&mut db)?;
            say_created(DEFAULT_SQLITE_FILE, false);
            return Ok(db);
        }
        Db::open_migrated_waiting(url, busy)
    }
    /// The backend this connection is to: what differs between backends, as one
    /// interface.
    pub fn backend(&mut self) -> &mut dyn Backend {
        match &mut self.conn {
            Conn::Sqlite(conn) => conn,
            Conn::Postgres(conn) => conn,
            #[cfg(feature = "mysql")]
            Conn::Mysql(conn) => conn,
        }
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
        let relabel = self.backend().rename_pending_sql(from, &table.name);
        self.execute_all(relabel.as_slice())
    }

    pub fn drop_triggers(&mut self, table: &Table) -> Result<()> {
        let statements = self.backend().drop_trigger_sql(table);
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

    /// Whether triggers or enqueue wrote callbacks not admitted yet: one indexed read
    /// (a following run asks every few milliseconds).
    pub fn has_new_callbacks(&mut self) -> Result<bool> {
        use super::schema::httphooks_new_callbacks::dsl as n;
        use diesel::{OptionalExtension, QueryDsl, RunQueryDsl};
        let first: Option<i64> = with_conn!(self, |conn| n::httphooks_new_callbacks
            .select(n::id)
            .order(n::id)
            .first(conn)
            .optional())?;
        Ok(first.is_some())
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
